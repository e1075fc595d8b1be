"""Signing keys, ed25519 (PyNaCl) and sr25519 (the Bittensor SDK's native core), and SS58 addresses.

Bittensor wallets hold sr25519 keys by default and ed25519 ones on request; an SS58 address is the
same 32-byte public key either way, so whoever signs says which scheme it used (`scheme`, written
only when it is not ed25519) and the verifier checks that scheme against the address's key.

An SS58 address is base58(prefix byte + 32-byte public key + 2 checksum bytes), the
checksum being the first two bytes of blake2b-512(b"SS58PRE" + prefix + public key).
Bittensor uses network prefix 42 (addresses start with "5"). Only the one-byte
prefixes 0..63 are supported.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import ClassVar, Union

import bittensor_core
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

SS58_PREFIX = 42
PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
SIGNATURE_BYTES = 64
ED25519, SR25519 = "ed25519", "sr25519"
SCHEMES = (ED25519, SR25519)
_CORE_CRYPTO = {ED25519: bittensor_core.CRYPTO_ED25519, SR25519: bittensor_core.CRYPTO_SR25519}

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: index for index, char in enumerate(_BASE58_ALPHABET)}
_SS58_CHECKSUM_BYTES = 2


def base58_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_BASE58_ALPHABET[remainder])
    # Each leading zero byte is written as a leading "1" (the zero digit).
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(digits))


def base58_decode(text: str) -> bytes:
    number = 0
    for position, char in enumerate(text):
        if char not in _BASE58_INDEX:
            raise ValueError(f"invalid base58 character {char!r} at position {position}")
        number = number * 58 + _BASE58_INDEX[char]
    leading_zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * leading_zeros + body


def _ss58_checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(b"SS58PRE" + payload, digest_size=64).digest()[:_SS58_CHECKSUM_BYTES]


def ss58_encode(public_key: bytes, prefix: int = SS58_PREFIX) -> str:
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"public key must be {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    if not 0 <= prefix < 64:
        raise ValueError(f"SS58 prefix must be in 0..63, got {prefix}")
    payload = bytes([prefix]) + bytes(public_key)
    return base58_encode(payload + _ss58_checksum(payload))


MAX_SS58_CHARS = 50


def ss58_decode(address: str, prefix: int | None = SS58_PREFIX) -> bytes:
    """Public key of an SS58 address. Checks length, prefix (unless ``prefix`` is None)
    and checksum, and raises ValueError naming what is wrong."""
    if not isinstance(address, str) or not address:
        raise ValueError("SS58 address must be a non-empty string")
    # 35 bytes in base58 is at most 48 characters; checking first keeps hostile input cheap
    # (base58 decoding is quadratic in the length).
    if len(address) > MAX_SS58_CHARS:
        raise ValueError(f"SS58 address is {len(address)} characters, at most {MAX_SS58_CHARS}")
    raw = base58_decode(address)
    expected_length = 1 + PUBLIC_KEY_BYTES + _SS58_CHECKSUM_BYTES
    if len(raw) != expected_length:
        raise ValueError(f"SS58 address decodes to {len(raw)} bytes, expected {expected_length}")
    if raw[0] >= 64:
        raise ValueError(f"SS58 address uses a two-byte prefix (first byte {raw[0]}), unsupported")
    if prefix is not None and raw[0] != prefix:
        raise ValueError(f"SS58 address has network prefix {raw[0]}, expected {prefix}")
    payload, checksum = raw[:-_SS58_CHECKSUM_BYTES], raw[-_SS58_CHECKSUM_BYTES:]
    if _ss58_checksum(payload) != checksum:
        raise ValueError("SS58 address checksum mismatch")
    return payload[1:]


def is_valid_address(address: str, prefix: int | None = SS58_PREFIX) -> bool:
    try:
        ss58_decode(address, prefix)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Keypair:
    """An ed25519 keypair. The 32-byte seed is the private key; keep it out of logs."""

    seed: bytes = field(repr=False)
    public_key: bytes
    scheme: ClassVar[str] = ED25519
    crypto_type: ClassVar[int] = bittensor_core.CRYPTO_ED25519  # what the SDK's signers call it

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_BYTES:
            raise ValueError(f"seed must be {SEED_BYTES} bytes, got {len(self.seed)}")
        if bytes(SigningKey(self.seed).verify_key) != self.public_key:
            raise ValueError("public key does not belong to this seed")

    @classmethod
    def from_seed(cls, seed: bytes) -> Keypair:
        seed = bytes(seed)
        if len(seed) != SEED_BYTES:
            raise ValueError(f"seed must be {SEED_BYTES} bytes, got {len(seed)}")
        return cls(seed=seed, public_key=bytes(SigningKey(seed).verify_key))

    @classmethod
    def from_seed_hex(cls, seed_hex: str) -> Keypair:
        try:
            seed = bytes.fromhex(seed_hex.removeprefix("0x"))
        except ValueError as error:
            raise ValueError(f"seed is not valid hex: {error}") from None
        return cls.from_seed(seed)

    @classmethod
    def generate(cls) -> Keypair:
        return cls.from_seed(secrets.token_bytes(SEED_BYTES))

    @property
    def address(self) -> str:
        return ss58_encode(self.public_key)

    @property
    def ss58_address(self) -> str:  # the SDK's name: a Keypair is also an SDK signer
        return self.address

    def sign(self, message: bytes) -> bytes:
        """64-byte detached ed25519 signature of ``message``."""
        return SigningKey(self.seed).sign(bytes(message)).signature


@dataclass(frozen=True, eq=False)
class CoreKeypair:
    """A key held by the Bittensor SDK's native core, sr25519 or ed25519: what an operator's
    Bittensor wallet holds (`subnet.wallet` loads them). Signs like `Keypair`."""

    core: object = field(repr=False)   # bittensor_core.Keypair with its secret

    @classmethod
    def generate(cls, scheme: str = SR25519) -> CoreKeypair:
        if scheme not in SCHEMES:
            raise ValueError(f"unknown key scheme {scheme!r}: use {' or '.join(SCHEMES)}")
        return cls(bittensor_core.Keypair.create_from_seed(secrets.token_bytes(SEED_BYTES), _CORE_CRYPTO[scheme]))

    @property
    def scheme(self) -> str:
        return SR25519 if self.core.crypto_type == bittensor_core.CRYPTO_SR25519 else ED25519

    @property
    def crypto_type(self) -> int:
        return int(self.core.crypto_type)

    @property
    def public_key(self) -> bytes:
        return bytes(self.core.public_key)

    @property
    def address(self) -> str:
        return ss58_encode(self.public_key)

    @property
    def ss58_address(self) -> str:
        return self.address

    def sign(self, message: bytes) -> bytes:
        return bytes(self.core.sign(bytes(message)))

    def __repr__(self) -> str:
        return f"CoreKeypair({self.scheme}, {self.address})"


Signer = Union[Keypair, CoreKeypair]


def verify(public_key: bytes, message: bytes, signature: bytes, scheme: str = ED25519) -> bool:
    """True iff ``signature`` is ``public_key``'s ``scheme`` signature of ``message``; never raises."""
    try:
        if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
            return False
        if scheme == ED25519:
            VerifyKey(bytes(public_key)).verify(bytes(message), bytes(signature))
            return True
        if scheme == SR25519:
            key = bittensor_core.Keypair(public_key=bytes(public_key), crypto_type=bittensor_core.CRYPTO_SR25519)
            return bool(key.verify(bytes(message), bytes(signature)))
    except (CryptoError, ValueError, TypeError):
        return False
    return False


def verify_address(address: str, message: bytes, signature: bytes, scheme: str = ED25519) -> bool:
    """``verify`` with the signer given as an SS58 address; False for a bad address."""
    try:
        public_key = ss58_decode(address)
    except (ValueError, TypeError):
        return False
    return verify(public_key, message, signature, scheme)
