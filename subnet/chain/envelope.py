"""The signed-call envelope, shared by the chain (which checks it) and ChainClient (which signs it).

Envelope (JSON): {"call": NAME, "params": {...}, "signer": SS58, "nonce": INT, "signature": HEX}.
The signature is ed25519 over `call_message(...)`: the canonical JSON (`subnet.wire.signing`) of
call, params, signer, nonce and the chain's genesis hash, so a call cannot be replayed on another
chain. Pure: no sqlite, no amm, no server, so a client process loads none of them.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from subnet.errors import InputRejected
from subnet.keys import Keypair, is_valid_address, ss58_decode, verify
from subnet.wire.signing import canonical_json

MAX_NONCE = 2**63 - 1
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{128}$")
ENVELOPE_KEYS = frozenset({"call", "params", "signer", "nonce", "signature"})


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


def call_message(call: str, params: dict, signer: str, nonce: int, genesis_hash: str) -> bytes:
    """The bytes a call's signature covers."""
    return canonical_json({"call": call, "params": params, "signer": signer, "nonce": nonce,
                           "genesis": genesis_hash})


def sign_envelope(signer: Keypair, call: str, params: dict, nonce: int, genesis_hash: str) -> dict:
    """The JSON body of `POST /call` for this call, signed by `signer`."""
    signature = signer.sign(call_message(call, params, signer.address, nonce, genesis_hash))
    return {"call": call, "params": params, "signer": signer.address, "nonce": nonce,
            "signature": signature.hex()}


@dataclass(frozen=True)
class Envelope:
    call: str
    params: dict
    signer: str
    nonce: int
    signature: str


def parse_envelope(body: object, known_calls: Collection[str]) -> Envelope:
    """A call body's structure checked (not yet its signature); `known_calls` are the call names."""
    if not isinstance(body, dict):
        raise ChainError("malformed", "call must be a JSON object")
    if set(body) != ENVELOPE_KEYS:
        raise ChainError("malformed", f"call must have exactly the keys {sorted(ENVELOPE_KEYS)}, got {sorted(body)}")
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
    return Envelope(call, params, signer, nonce, signature)


def check_signature(env: Envelope, genesis_hash: str) -> None:
    message = call_message(env.call, env.params, env.signer, env.nonce, genesis_hash)
    if not verify(ss58_decode(env.signer), message, bytes.fromhex(env.signature)):
        raise ChainError("bad_signature", "signature does not verify for this signer, call, nonce and chain", 401)
