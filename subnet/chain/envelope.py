"""The signed-call envelope, shared by the chain (which checks it) and ChainClient (which signs it).

Envelope (JSON): {"call": NAME, "params": {...}, "signer": SS58, "nonce": INT, "signature": HEX},
plus "scheme": "sr25519" when the signer's key is sr25519 (a Bittensor wallet's default). The
signature is over `call_message(...)`: the canonical JSON (`subnet.wire.signing`) of call, params,
signer, nonce, the chain's genesis hash and the scheme when one is named, so a call cannot be
replayed on another chain. Pure: no sqlite, no amm, no server, so a client process loads none of them.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from subnet.errors import InputRejected
from subnet.keys import ED25519, SR25519, Signer, is_valid_address, ss58_decode, verify
from subnet.wire.signing import canonical_json

MAX_NONCE = 2**63 - 1
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{128}$")
ENVELOPE_KEYS = frozenset({"call", "params", "signer", "nonce", "signature"})
OPTIONAL_KEYS = frozenset({"scheme"})


class ChainError(InputRejected):
    """The chain refused a call or query: `reason` is machine-readable (the API's `error.code`),
    `detail` says what was wrong, `status` is the HTTP status it is served with."""

    def __init__(self, reason: str, message: str, status: int = 400):
        super().__init__(reason, message)
        self.status = status

    @property
    def code(self) -> str:  # the HTTP API's name for `reason`
        return self.reason

    @property
    def message(self) -> str:
        return self.detail

    def to_json(self) -> dict:
        return {"error": {"code": self.reason, "message": self.detail}}


def call_message(call: str, params: dict, signer: str, nonce: int, genesis_hash: str,
                 scheme: str = ED25519) -> bytes:
    """The bytes a call's signature covers."""
    message = {"call": call, "params": params, "signer": signer, "nonce": nonce, "genesis": genesis_hash}
    if scheme != ED25519:
        message["scheme"] = scheme
    return canonical_json(message)


def sign_envelope(signer: Signer, call: str, params: dict, nonce: int, genesis_hash: str) -> dict:
    """The JSON body of `POST /call` for this call, signed by `signer`."""
    signature = signer.sign(call_message(call, params, signer.address, nonce, genesis_hash, signer.scheme))
    body = {"call": call, "params": params, "signer": signer.address, "nonce": nonce, "signature": signature.hex()}
    if signer.scheme != ED25519:
        body["scheme"] = signer.scheme
    return body


@dataclass(frozen=True)
class Envelope:
    call: str
    params: dict
    signer: str
    nonce: int
    signature: str
    scheme: str = ED25519


def parse_envelope(body: object, known_calls: Collection[str]) -> Envelope:
    """A call body's structure checked (not yet its signature); `known_calls` are the call names."""
    if not isinstance(body, dict):
        raise ChainError("malformed", "call must be a JSON object")
    if not ENVELOPE_KEYS <= set(body) <= ENVELOPE_KEYS | OPTIONAL_KEYS:
        raise ChainError("malformed", f"call must have exactly the keys {sorted(ENVELOPE_KEYS)} (and optionally "
                                      f"{sorted(OPTIONAL_KEYS)}), got {sorted(body)[:12]}")
    scheme = body.get("scheme", ED25519)
    if "scheme" in body and scheme != SR25519:   # ed25519 is the default and never named
        raise ChainError("bad_signature", f"scheme {str(scheme)[:40]!r} is not {SR25519!r}")
    call, params, signer, nonce, signature = (body[k] for k in ("call", "params", "signer", "nonce", "signature"))
    if not isinstance(call, str) or call not in known_calls:
        raise ChainError("unknown_call", f"unknown call {str(call)[:60]!r}; known: {', '.join(sorted(known_calls))}")
    if not isinstance(params, dict):
        raise ChainError("malformed", "params must be an object")
    if not isinstance(signer, str) or not is_valid_address(signer):
        raise ChainError("bad_address", f"signer {str(signer)[:60]!r} is not an SS58 address")
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 < nonce <= MAX_NONCE:
        raise ChainError("bad_nonce", "nonce must be an integer in [1, 2^63)")
    if not isinstance(signature, str) or not _HEX_SIGNATURE.match(signature):
        raise ChainError("bad_signature", "signature must be 128 lowercase hex characters")
    return Envelope(call, params, signer, nonce, signature, scheme)


def check_signature(env: Envelope, genesis_hash: str) -> None:
    message = call_message(env.call, env.params, env.signer, env.nonce, genesis_hash, env.scheme)
    if not verify(ss58_decode(env.signer), message, bytes.fromhex(env.signature), env.scheme):
        raise ChainError("bad_signature", "signature does not verify for this signer, call, nonce and chain", 401)
