"""Canonical JSON, signed safetensors and signed JSON.

Signing keeps objects plain safetensors. The header (8-byte little-endian length, then JSON) is
always written in canonical form: ``json.dumps(sort_keys=True, separators=(",", ":"))``, padded with
spaces to a multiple of 8 bytes. The signed digest is

    sha256(canonical JSON of the header with ``__metadata__["signature"]`` removed || data section)

and ``__metadata__`` carries ``hotkey`` (the author's SS58 address, covered by the digest) and
``signature`` (128 lowercase hex digits). An sr25519 author also writes ``scheme: "sr25519"``
(covered by the digest too); without it the signature is ed25519, so ed25519 objects are unchanged. A reader rejects a header that is not exactly canonical, so
any change to any byte either fails a check or changes the digest. JSON documents are signed the
same way over their canonical JSON without the ``signature`` field, and must be byte-canonical too.

This module needs neither torch nor the codec: chain calls use `canonical_json` too.
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from subnet.errors import InputRejected
from subnet.hashing import sha256_hex
from subnet.keys import ED25519, SCHEMES, Signer, is_valid_address, verify_address
from subnet.safetensors_header import HeaderError, read_header, strict_json

WIRE_VERSION = "tessera-wire-v1"
MAX_JSON_BYTES = 1 << 20

_SIGNATURE_HEX = re.compile(r"^[0-9a-f]{128}$")


class WireError(InputRejected):
    """An object is malformed, unsigned, forged or not the expected one; `reason` is a short code."""


def canonical_json(obj) -> bytes:
    """The one byte encoding of a JSON value that is signed (objects and chain calls alike)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def parse_json(raw: bytes, what: str):
    """Strict JSON (no duplicate keys, no NaN/Infinity) with failures as `WireError`."""
    try:
        return strict_json(raw, what)
    except HeaderError as exc:
        raise WireError(exc.reason, exc.detail) from None


def _canonical_of_untrusted(obj) -> bytes:
    try:
        return canonical_json(obj)
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a number that parsed to infinity
        raise WireError("bad_header", f"cannot be put in canonical form: {exc}") from None


def _frame(header: dict, data_section: bytes | memoryview) -> bytes:
    text = canonical_json(header)
    text += b" " * (-len(text) % 8)  # keep the data section 8-byte aligned, as safetensors does
    return struct.pack("<Q", len(text)) + text + bytes(data_section)


def _signed_digest(header: dict, data_section) -> bytes:
    unsigned = dict(header)
    metadata = dict(unsigned.get("__metadata__") or {})
    metadata.pop("signature", None)
    unsigned["__metadata__"] = metadata
    digest = hashlib.sha256(canonical_json(unsigned))
    digest.update(data_section)
    return digest.digest()


def _document_digest(document: dict) -> bytes:
    """What a signed JSON document's signature covers: its canonical JSON without `signature`."""
    return hashlib.sha256(canonical_json({k: v for k, v in document.items() if k != "signature"})).digest()


@dataclass(frozen=True)
class SignedObject:
    header: dict            # tensors (name -> {dtype, shape, data_offsets}) and __metadata__
    metadata: dict[str, str]
    data_start: int         # offset of the data section in the object
    sha256: str             # sha256 of the whole object as stored
    hotkey: str
    parsed: object = None   # the `SafetensorsHeader`, for the codec's later stages


def _mark_scheme(fields: dict, keypair: Signer) -> None:
    """Name the signature scheme in the signed fields unless it is ed25519 (the default)."""
    if keypair.scheme == ED25519:
        fields.pop("scheme", None)
    else:
        fields["scheme"] = keypair.scheme


def sign_safetensors(data: bytes, keypair: Signer, metadata: dict[str, str] | None = None) -> bytes:
    """Rewrite a (trusted, locally made) safetensors object with canonical header, extra
    ``metadata``, the author's hotkey and the signature. The data section is unchanged."""
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    merged = dict(header.get("__metadata__") or {})
    merged.update(metadata or {})
    merged["hotkey"] = keypair.address
    _mark_scheme(merged, keypair)
    merged.pop("signature", None)
    header["__metadata__"] = merged
    data_section = memoryview(data)[8 + header_len:]
    merged["signature"] = keypair.sign(_signed_digest(header, data_section)).hex()
    return _frame(header, data_section)


def signed_content_digest(data: bytes) -> bytes | None:
    """What the signature of a signed object (safetensors or JSON document) covers, or None if `data`
    is neither. Two objects with the same digest say the same thing, signed twice: sr25519 signatures
    are randomised, so only this tells a re-signed retry from new content."""
    data = bytes(data)
    try:
        if data[:1] == b"{":
            document = json.loads(data)
            if not isinstance(document, dict):
                return None
            return _document_digest(document)
        (header_len,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + header_len])
    except (struct.error, ValueError, TypeError, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        return None
    return _signed_digest(header, memoryview(data)[8 + header_len:])


def check_signer(hotkey: object, signature: object, expected_hotkey: str, what: str,
                 digest: Callable[[], bytes], scheme: object = None) -> None:
    """Signature checks shared by signed safetensors and signed JSON, cheapest first: presence, hex
    form, scheme, address form, expected author, then the scheme's verification over `digest()`.
    `scheme` is the signed field (None: ed25519)."""
    if not isinstance(hotkey, str) or not isinstance(signature, str):
        raise WireError("unsigned", f"{what} carries no hotkey or no signature")
    if not _SIGNATURE_HEX.fullmatch(signature):
        raise WireError("bad_signature_format", "signature must be 128 lowercase hex digits")
    if scheme is None:
        scheme = ED25519
    elif scheme not in SCHEMES or scheme == ED25519:   # ed25519 is never written: one encoding per object
        raise WireError("bad_scheme", f"signature scheme {str(scheme)[:40]!r} is not {SCHEMES[1]!r}")
    if not is_valid_address(hotkey):
        raise WireError("bad_hotkey", f"hotkey {hotkey[:60]!r} is not a valid SS58 address")
    if expected_hotkey is not ANY_SIGNER and hotkey != expected_hotkey:
        raise WireError("wrong_hotkey", f"signed by {hotkey}, expected {expected_hotkey}")
    if not verify_address(hotkey, digest(), bytes.fromhex(signature), scheme):
        raise WireError("bad_signature", f"signature does not verify for {scheme} hotkey {hotkey}")


class _AnySigner(str):
    """Marker for "any valid signer": a reader must say so explicitly (e.g. a lineage walk that
    checks signers against a set afterwards); leaving the expected author out is not possible."""


ANY_SIGNER = _AnySigner("<any signer>")


def verify_safetensors(data: bytes, max_bytes: int, max_header_bytes: int, expected_hotkey: str) -> SignedObject:
    """Parse a signed safetensors object under strict limits and check its signature."""
    try:
        parsed = read_header(data, max_bytes, max_header_bytes)
    except HeaderError as exc:
        raise WireError(exc.reason, exc.detail) from None
    expected = _canonical_of_untrusted(parsed.header)
    if parsed.raw != expected + b" " * (-len(expected) % 8):
        raise WireError("non_canonical_header", "header is not in canonical form")
    metadata = parsed.metadata
    hotkey = metadata.get("hotkey")
    data_section = memoryview(data)[parsed.data_start:]
    check_signer(hotkey, metadata.get("signature"), expected_hotkey, "object",
                 lambda: _signed_digest(parsed.header, data_section), metadata.get("scheme"))
    return SignedObject(header=parsed.header, metadata=metadata, data_start=parsed.data_start,
                        sha256=sha256_hex(data), hotkey=hotkey, parsed=parsed)


def sign_json(document: dict, keypair: Signer) -> bytes:
    """Canonical JSON bytes of ``document`` plus ``hotkey``, ``scheme`` (sr25519 only) and ``signature``."""
    body = {k: v for k, v in document.items() if k != "signature"}
    body["hotkey"] = keypair.address
    _mark_scheme(body, keypair)
    signature = keypair.sign(_document_digest(body)).hex()
    return canonical_json({**body, "signature": signature})


def verify_json(data: bytes, *, expected_hotkey: str, expected_kind: str, max_bytes: int = MAX_JSON_BYTES) -> dict:
    """The document of a signed JSON object, after size, canonical form, signature, version and
    kind checks. The expected author and kind are required (``ANY_SIGNER`` to accept any)."""
    if len(data) > max_bytes:
        raise WireError("too_large", f"{len(data)} bytes exceeds the limit of {max_bytes}")
    document = parse_json(bytes(data), "document")
    if not isinstance(document, dict):
        raise WireError("bad_header", "document is not a JSON object")
    if bytes(data) != _canonical_of_untrusted(document):
        raise WireError("non_canonical_header", "document is not in canonical form")
    check_signer(document.get("hotkey"), document.get("signature"), expected_hotkey, "document",
                 lambda: _document_digest(document), document.get("scheme"))
    if document.get("wire_format") != WIRE_VERSION:
        raise WireError("wrong_version", f"wire_format {document.get('wire_format')!r}, expected {WIRE_VERSION!r}")
    if document.get("kind") != expected_kind:
        raise WireError("wrong_kind", f"kind {document.get('kind')!r}, expected {expected_kind!r}")
    return document
