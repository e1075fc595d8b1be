"""ed25519 and sr25519 signing and SS58 addresses (subnet/keys.py)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bittensor_core

from subnet.keys import (
    ED25519,
    SR25519,
    CoreKeypair,
    Keypair,
    base58_decode,
    base58_encode,
    is_valid_address,
    ss58_decode,
    ss58_encode,
    verify,
    verify_address,
)

# Substrate's well-known dev account "Alice" (sr25519 public key; SS58 does not care
# about the curve): published in the Substrate/Polkadot docs and subkey output.
ALICE_PUBLIC_KEY = bytes.fromhex("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")
ALICE_ADDRESS = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"

# RFC 8032 section 7.1, TEST 2: a one-byte message.
RFC8032_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
RFC8032_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
RFC8032_SIGNATURE = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)


def test_alice_ss58_vector():
    assert ss58_encode(ALICE_PUBLIC_KEY) == ALICE_ADDRESS
    assert ss58_decode(ALICE_ADDRESS) == ALICE_PUBLIC_KEY


def test_rfc8032_vector():
    keypair = Keypair.from_seed(RFC8032_SEED)
    assert keypair.public_key == RFC8032_PUBLIC
    assert keypair.sign(bytes([0x72])) == RFC8032_SIGNATURE
    assert verify(RFC8032_PUBLIC, bytes([0x72]), RFC8032_SIGNATURE)


def test_sign_verify_round_trip():
    keypair = Keypair.generate()
    signature = keypair.sign(b"set_weights nonce=7")
    assert len(signature) == 64
    assert verify(keypair.public_key, b"set_weights nonce=7", signature)
    assert verify_address(keypair.address, b"set_weights nonce=7", signature)


def test_tampered_message_signature_or_key_fail():
    keypair = Keypair.generate()
    message = b"stake 100"
    signature = keypair.sign(message)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify(keypair.public_key, b"stake 101", signature)
    assert not verify(keypair.public_key, message, flipped)
    assert not verify(Keypair.generate().public_key, message, signature)


@pytest.mark.parametrize(
    "public_key, message, signature",
    [
        (b"short", b"m", bytes(64)),
        (bytes(32), b"m", b"short"),
        (None, b"m", bytes(64)),
        (bytes(32), "not bytes", bytes(64)),
        (bytes(32), b"m", None),
    ],
)
def test_verify_returns_false_on_garbage(public_key, message, signature):
    assert verify(public_key, message, signature) is False


def test_verify_address_rejects_bad_address():
    keypair = Keypair.generate()
    assert not verify_address("not-an-address", b"m", keypair.sign(b"m"))


def test_seed_determines_key_and_is_hidden_from_repr():
    seed = bytes(range(32))
    assert Keypair.from_seed(seed) == Keypair.from_seed_hex(seed.hex())
    assert seed.hex() not in repr(Keypair.from_seed(seed))
    with pytest.raises(ValueError, match="32 bytes"):
        Keypair.from_seed(b"too short")
    with pytest.raises(ValueError, match="does not belong"):
        Keypair(seed=seed, public_key=bytes(32))


@settings(max_examples=50, deadline=None)
@given(public_key=st.binary(min_size=32, max_size=32), prefix=st.integers(0, 63))
def test_ss58_round_trip(public_key, prefix):
    address = ss58_encode(public_key, prefix)
    assert ss58_decode(address, prefix) == public_key
    assert ss58_decode(address, None) == public_key


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=40))
def test_base58_round_trip(data):
    assert base58_decode(base58_encode(data)) == data


def test_base58_known_vector():
    # "hello world" in Bitcoin base58, and leading zero bytes become "1"s.
    assert base58_encode(b"hello world") == "StV1DL6CwTryKyV"
    assert base58_encode(b"\0\0\x01") == "112"


def test_bad_checksum_rejected():
    # Change the last character: the checksum no longer matches.
    last = ALICE_ADDRESS[-1]
    tampered = ALICE_ADDRESS[:-1] + ("R" if last != "R" else "S")
    with pytest.raises(ValueError, match="checksum"):
        ss58_decode(tampered)
    assert not is_valid_address(tampered)


def test_wrong_prefix_length_and_characters_rejected():
    polkadot_style = ss58_encode(ALICE_PUBLIC_KEY, 0)
    with pytest.raises(ValueError, match="prefix 0, expected 42"):
        ss58_decode(polkadot_style)
    with pytest.raises(ValueError, match="bytes, expected 35"):
        ss58_decode(ALICE_ADDRESS[:-3])
    with pytest.raises(ValueError, match="invalid base58 character '0'"):
        ss58_decode("0" + ALICE_ADDRESS[1:])
    with pytest.raises(ValueError):
        ss58_decode("")


def test_checksum_is_blake2b_of_prefixed_payload():
    raw = base58_decode(ALICE_ADDRESS)
    payload = bytes([42]) + ALICE_PUBLIC_KEY
    assert raw[:33] == payload
    assert raw[33:] == hashlib.blake2b(b"SS58PRE" + payload, digest_size=64).digest()[:2]


def test_sdk_core_derives_alice_from_her_dev_uri():
    # //Alice is Substrate's sr25519 dev key: the SDK core must give the published address.
    alice = CoreKeypair(bittensor_core.Keypair.create_from_uri("//Alice"))
    assert alice.scheme == SR25519 and alice.address == ALICE_ADDRESS and alice.public_key == ALICE_PUBLIC_KEY


def test_sr25519_signatures_verify_only_as_sr25519_and_only_for_their_message():
    key = CoreKeypair.generate(SR25519)
    signature = key.sign(b"aggregate 7")
    assert len(signature) == 64 and key.crypto_type == 1 and key.ss58_address == key.address
    assert verify(key.public_key, b"aggregate 7", signature, SR25519)
    assert verify_address(key.address, b"aggregate 7", signature, SR25519)
    assert not verify(key.public_key, b"aggregate 7", signature)            # read as ed25519
    assert not verify(key.public_key, b"aggregate 8", signature, SR25519)
    assert not verify(CoreKeypair.generate().public_key, b"aggregate 7", signature, SR25519)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify(key.public_key, b"aggregate 7", flipped, SR25519)
    assert not verify(key.public_key, b"aggregate 7", signature, "ecdsa")    # unknown scheme: never valid


@pytest.mark.parametrize("signature", [bytes(64), b"\xff" * 64, b"short", b"x" * 65, None])
def test_sr25519_verify_returns_false_on_garbage(signature):
    assert verify(CoreKeypair.generate().public_key, b"m", signature, SR25519) is False


def test_an_ed25519_key_held_by_the_sdk_core_signs_as_ours_does():
    core = CoreKeypair(bittensor_core.Keypair.create_from_seed(RFC8032_SEED, bittensor_core.CRYPTO_ED25519))
    assert core.scheme == ED25519 and core.public_key == RFC8032_PUBLIC
    assert core.sign(bytes([0x72])) == RFC8032_SIGNATURE == Keypair.from_seed(RFC8032_SEED).sign(bytes([0x72]))
    assert repr(core) == f"CoreKeypair(ed25519, {core.address})"   # never the secret


def test_unknown_scheme_cannot_be_generated():
    with pytest.raises(ValueError, match="unknown key scheme 'ecdsa'"):
        CoreKeypair.generate("ecdsa")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_our_ss58_agrees_with_the_bittensor_sdks(public_key):
    """Ours stays for its refusals that name the fault (length, prefix, checksum) on hostile input;
    it must agree with the SDK's core on every key."""
    address = ss58_encode(public_key)
    assert address == bittensor_core.ss58_encode(public_key, 42)
    assert bytes(bittensor_core.ss58_decode(address)) == ss58_decode(address) == public_key
