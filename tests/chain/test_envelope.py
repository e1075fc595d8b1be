"""The signed-call envelope (shared by chain and client), and the client's import footprint."""
import json
import subprocess
import sys

import pytest

from subnet.chain.envelope import ChainError, call_message, check_signature, parse_envelope, sign_envelope
from subnet.errors import InputRejected
from subnet.keys import SR25519, CoreKeypair, Keypair

GENESIS = "ab" * 32
CALLS = {"transfer", "commit"}


def test_call_message_is_the_documented_canonical_json():
    # docs/chain-api.md: keys sorted, no spaces, non-ASCII as \uXXXX (what the chain has always signed)
    params = {"netuid": 1, "data": "café", "nested": {"b": [1, 2], "a": True}}
    message = call_message("commit", params, "5Signer", 7, GENESIS)
    assert message == (b'{"call":"commit","genesis":"' + GENESIS.encode() + b'","nonce":7,'
                       b'"params":{"data":"caf\\u00e9","nested":{"a":true,"b":[1,2]},"netuid":1},'
                       b'"signer":"5Signer"}')
    legacy = json.dumps({"call": "commit", "params": params, "signer": "5Signer", "nonce": 7, "genesis": GENESIS},
                        sort_keys=True, separators=(",", ":")).encode()
    assert message == legacy


def test_signed_envelope_verifies_and_any_change_breaks_it():
    key = Keypair.generate()
    body = sign_envelope(key, "transfer", {"dest": key.address, "amount": 5}, 3, GENESIS)
    env = parse_envelope(body, CALLS)
    check_signature(env, GENESIS)
    for changed in ({"genesis": "cd" * 32}, {"nonce": 4}, {"params": {"dest": key.address, "amount": 6}}):
        body2 = {**body, **{k: v for k, v in changed.items() if k != "genesis"}}
        with pytest.raises(ChainError) as err:
            check_signature(parse_envelope(body2, CALLS), changed.get("genesis", GENESIS))
        assert err.value.reason == "bad_signature" and err.value.status == 401


def test_sr25519_envelope_names_its_scheme_and_verifies_only_under_it():
    key = CoreKeypair.generate(SR25519)
    body = sign_envelope(key, "transfer", {"dest": key.address, "amount": 5}, 3, GENESIS)
    assert body["scheme"] == "sr25519"
    check_signature(parse_envelope(body, CALLS), GENESIS)
    stripped = {k: v for k, v in body.items() if k != "scheme"}   # the same signature read as ed25519
    with pytest.raises(ChainError) as err:
        check_signature(parse_envelope(stripped, CALLS), GENESIS)
    assert err.value.reason == "bad_signature"
    with pytest.raises(ChainError):   # the scheme is covered: another nonce breaks it as for ed25519
        check_signature(parse_envelope({**body, "nonce": 4}, CALLS), GENESIS)
    ed = sign_envelope(Keypair.generate(), "transfer", {"dest": key.address, "amount": 5}, 3, GENESIS)
    assert "scheme" not in ed   # ed25519 envelopes are byte-for-byte what they were


@pytest.mark.parametrize("mutate,reason,names", [
    (lambda b: [b], "malformed", "call must be a JSON object"),
    (lambda b: {**b, "extra": 1}, "malformed",
     r"call must have exactly the keys \['call', 'nonce', 'params', 'signature', 'signer'\] \(and optionally "
     r"\['scheme'\]\), got \[.*'extra'"),
    (lambda b: {**b, "scheme": "ed25519"}, "bad_signature", "scheme 'ed25519' is not 'sr25519'"),
    (lambda b: {**b, "scheme": "ecdsa"}, "bad_signature", "scheme 'ecdsa' is not 'sr25519'"),
    (lambda b: {**b, "call": "mint"}, "unknown_call", "unknown call 'mint'; known: commit, transfer"),
    (lambda b: {**b, "params": [1]}, "malformed", "params must be an object"),
    (lambda b: {**b, "signer": "nope"}, "bad_address", "signer 'nope' is not an SS58 address"),
    (lambda b: {**b, "nonce": True}, "bad_nonce", r"nonce must be an integer in \[1, 2\^63\)"),
    (lambda b: {**b, "nonce": 0}, "bad_nonce", r"nonce must be an integer in \[1, 2\^63\)"),
    (lambda b: {**b, "nonce": 2**63}, "bad_nonce", r"nonce must be an integer in \[1, 2\^63\)"),
    (lambda b: {**b, "signature": "AB" * 64}, "bad_signature", "signature must be 128 lowercase hex characters"),
])
def test_malformed_envelopes_are_input_rejections_that_say_why(mutate, reason, names):
    key = Keypair.generate()
    body = sign_envelope(key, "transfer", {"dest": key.address, "amount": 5}, 3, GENESIS)
    with pytest.raises(InputRejected, match=names) as err:
        parse_envelope(mutate(body), CALLS)
    assert isinstance(err.value, ChainError) and err.value.reason == reason and err.value.status == 400
    assert err.value.code == reason  # the API's field name, kept as an alias
    assert err.value.to_json() == {"error": {"code": reason, "message": err.value.detail}}   # docs/chain-api.md


def test_the_largest_nonce_is_accepted_and_a_bad_signature_is_401_and_says_so():
    key = Keypair.generate()
    body = sign_envelope(key, "transfer", {"dest": key.address, "amount": 5}, 2**63 - 1, GENESIS)
    env = parse_envelope(body, CALLS)
    assert env.nonce == 2**63 - 1
    check_signature(env, GENESIS)
    with pytest.raises(ChainError, match="signature does not verify for this signer, call, nonce and chain") as err:
        check_signature(env, "cd" * 32)
    assert err.value.status == 401 and err.value.message == err.value.detail


def test_client_import_loads_no_server_code():
    banned = ["sqlite3", "amm", "subnet.chain.store", "subnet.chain.genesis", "subnet.chain.calls",
              "subnet.chain.node", "subnet.chain.server", "aiohttp.web", "torch"]
    code = ("import sys, json, subnet.chain.client; "
            f"print(json.dumps([m for m in {banned!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout) == []
