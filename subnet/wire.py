"""Wire format: signed safetensors objects (gradient, aggregate) and signed JSON documents.

Every object a node reads from another node is hostile until checked. Nothing here unpickles.

Signing keeps objects plain safetensors. The header (8-byte little-endian length, then JSON) is
always written in canonical form: ``json.dumps(sort_keys=True, separators=(",", ":"))``, padded with
spaces to a multiple of 8 bytes. The signed digest is

    sha256(canonical JSON of the header with ``__metadata__["signature"]`` removed || data section)

and ``__metadata__`` carries ``hotkey`` (the author's SS58 address, covered by the digest) and
``signature`` (128 lowercase hex digits). A reader rejects a header that is not exactly canonical, so
any change to any byte either fails a check or changes the digest. JSON documents are signed the
same way over their canonical JSON without the ``signature`` field, and must be byte-canonical too.

Objects (names from DESIGN.md section 5):
  gradient-{window}-{uid}.safetensors  the codec packet (see subnet/compression/codec.py) plus
                                       metadata kind/window/uid/hotkey/base_model_hash, signed by the
                                       miner's hotkey.
  aggregate-{window}.safetensors       the lead's selection in sparse form: one U8 tensor per selected
                                       miner holding that miner's signed gradient object byte for
                                       byte, so every part can be re-verified against its miner's
                                       signature; metadata names the window, the parts, the hash of
                                       the model it applies to (base_model_hash), the hash of the
                                       model it produces (result_model_hash) and the sha256 of the
                                       previous aggregate object (prev_aggregate_sha256).
  aggregate-{window}.json              a signed manifest of the aggregate (its sha256, size and the
                                       same hash links), so lineage can be walked without
                                       downloading every aggregate.

Decoders check before they allocate or scatter: byte limit (derived from the model and codec),
header size, canonical header, signature, metadata, tensor names/dtypes/shapes/offsets, stream
lengths, finite tables, norm bound (from the tables and code counts, no scatter), exactly k in-range
indices per chunk. Every rejection is a `WireError` with a short `reason` code.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.numpy import save as st_save

from subnet.compression.codec import (
    MAX_HEADER_BYTES as PACKET_MAX_HEADER_BYTES,
    CodecError,
    Packet,
    layouts_for,
    packet_from_bytes,
    packet_to_bytes,
    reconstruct,
)
from subnet.compression.index_code import IndexCodeError, decode_indices, unpack_bits
from subnet.config import CompressionConfig
from subnet.keys import Keypair, is_valid_address, verify_address

WIRE_VERSION = "tessera-wire-v1"
GENESIS_PREV = "0" * 64  # prev_aggregate_sha256 of the first aggregate
MAX_JSON_BYTES = 1 << 20
AGGREGATE_MAX_HEADER_BYTES = 1 << 20

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURE_HEX = re.compile(r"^[0-9a-f]{128}$")
_UINT = re.compile(r"^(0|[1-9][0-9]{0,17})$")
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2,
                "BF16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}


class WireError(ValueError):
    """An object is malformed, unsigned, forged or not the expected one; `reason` is a short code."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# --- canonical JSON and header framing --------------------------------------------------------

def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def _reject_duplicate_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise WireError("bad_header", f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def _reject_constant(name):
    raise WireError("bad_header", f"JSON constant {name} is not allowed")


def _strict_json(raw: bytes, what: str):
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys,
                          parse_constant=_reject_constant)
    except WireError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise WireError("bad_header", f"{what} is not valid JSON: {exc}") from None


def _canonical_of_untrusted(obj) -> bytes:
    try:
        return canonical_json(obj)
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a number that parsed to infinity
        raise WireError("bad_header", f"cannot be put in canonical form: {exc}") from None


def _frame(header: dict, data_section: bytes | memoryview) -> bytes:
    text = canonical_json(header)
    text += b" " * (-len(text) % 8)  # keep the data section 8-byte aligned, as safetensors does
    return struct.pack("<Q", len(text)) + text + bytes(data_section)


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _signed_digest(header: dict, data_section) -> bytes:
    unsigned = dict(header)
    metadata = dict(unsigned.get("__metadata__") or {})
    metadata.pop("signature", None)
    unsigned["__metadata__"] = metadata
    digest = hashlib.sha256(canonical_json(unsigned))
    digest.update(data_section)
    return digest.digest()


# --- signed safetensors -----------------------------------------------------------------------

@dataclass(frozen=True)
class SignedObject:
    header: dict            # tensors (name -> {dtype, shape, data_offsets}) and __metadata__
    metadata: dict[str, str]
    data_start: int         # offset of the data section in the object
    sha256: str             # sha256 of the whole object as stored
    hotkey: str


def sign_safetensors(data: bytes, keypair: Keypair, metadata: dict[str, str] | None = None) -> bytes:
    """Rewrite a (trusted, locally made) safetensors object with canonical header, extra
    ``metadata``, the author's hotkey and the signature. The data section is unchanged."""
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    merged = dict(header.get("__metadata__") or {})
    merged.update(metadata or {})
    merged["hotkey"] = keypair.address
    merged.pop("signature", None)
    header["__metadata__"] = merged
    data_section = memoryview(data)[8 + header_len:]
    merged["signature"] = keypair.sign(_signed_digest(header, data_section)).hex()
    return _frame(header, data_section)


def _check_tensor_entries(header: dict, data_len: int) -> None:
    """The safetensors rules, checked on the parsed header before any tensor is touched:
    known dtypes, non-negative shapes, offsets that tile the data section exactly."""
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise WireError("bad_tensor_entry", f"tensor {name!r} entry is malformed")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _DTYPE_BYTES:
            raise WireError("bad_tensor_entry", f"tensor {name!r} has unknown dtype {dtype!r}")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(type(d) is int and 0 <= d < 1 << 40 for d in shape)):
            raise WireError("bad_tensor_entry", f"tensor {name!r} has an invalid shape")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int and 0 <= o <= data_len for o in offsets)
                or offsets[0] > offsets[1]):
            raise WireError("bad_tensor_entry", f"tensor {name!r} has invalid data offsets")
        if offsets[1] - offsets[0] != math.prod(shape) * _DTYPE_BYTES[dtype]:
            raise WireError("bad_tensor_entry", f"tensor {name!r}: offsets do not match dtype and shape")
        spans.append((offsets[0], offsets[1]))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise WireError("bad_tensor_entry", "tensor data overlaps or leaves gaps")
        position = end
    if position != data_len:
        raise WireError("bad_tensor_entry", f"tensors cover {position} of {data_len} data bytes")


def _check_signer(hotkey: object, signature: object, expected_hotkey: str | None, what: str,
                  digest: Callable[[], bytes]) -> None:
    """Signature checks shared by signed safetensors and signed JSON, cheapest first: presence, hex
    form, address form, expected author, then ed25519 over `digest()`."""
    if not isinstance(hotkey, str) or not isinstance(signature, str):
        raise WireError("unsigned", f"{what} carries no hotkey or no signature")
    if not _SIGNATURE_HEX.fullmatch(signature):
        raise WireError("bad_signature_format", "signature must be 128 lowercase hex digits")
    if not is_valid_address(hotkey):
        raise WireError("bad_hotkey", f"hotkey {hotkey[:60]!r} is not a valid SS58 address")
    if expected_hotkey is not None and hotkey != expected_hotkey:
        raise WireError("wrong_hotkey", f"signed by {hotkey}, expected {expected_hotkey}")
    if not verify_address(hotkey, digest(), bytes.fromhex(signature)):
        raise WireError("bad_signature", f"signature does not verify for hotkey {hotkey}")


def verify_safetensors(data: bytes, max_bytes: int, max_header_bytes: int,
                       expected_hotkey: str | None = None) -> SignedObject:
    """Parse a signed safetensors object under strict limits and check its signature."""
    if len(data) > max_bytes:
        raise WireError("too_large", f"{len(data)} bytes exceeds the limit of {max_bytes}")
    if len(data) < 8:
        raise WireError("truncated", f"{len(data)} bytes is shorter than a safetensors header")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > max_header_bytes:
        raise WireError("header_too_large", f"header of {header_len} bytes exceeds {max_header_bytes}")
    if 8 + header_len > len(data):
        raise WireError("truncated", f"header of {header_len} bytes runs past the end ({len(data)} bytes)")
    raw_header = bytes(data[8:8 + header_len])
    header = _strict_json(raw_header, "header")
    if not isinstance(header, dict):
        raise WireError("bad_header", "header is not a JSON object")
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WireError("bad_metadata", "__metadata__ must map strings to strings")
    expected = _canonical_of_untrusted(header)
    if raw_header != expected + b" " * (-len(expected) % 8):
        raise WireError("non_canonical_header", "header is not in canonical form")
    hotkey = metadata.get("hotkey")
    data_start = 8 + header_len
    data_section = memoryview(data)[data_start:]
    _check_signer(hotkey, metadata.get("signature"), expected_hotkey, "object",
                  lambda: _signed_digest(header, data_section))
    _check_tensor_entries(header, len(data) - data_start)
    return SignedObject(header=header, metadata=metadata, data_start=data_start,
                        sha256=sha256_hex(data), hotkey=hotkey)


# --- signed JSON ------------------------------------------------------------------------------

def sign_json(document: dict, keypair: Keypair) -> bytes:
    """Canonical JSON bytes of ``document`` plus ``hotkey`` and ``signature``."""
    body = {k: v for k, v in document.items() if k != "signature"}
    body["hotkey"] = keypair.address
    signature = keypair.sign(hashlib.sha256(canonical_json(body)).digest()).hex()
    return canonical_json({**body, "signature": signature})


def verify_json(data: bytes, max_bytes: int = MAX_JSON_BYTES, expected_hotkey: str | None = None,
                expected_kind: str | None = None) -> dict:
    """The document of a signed JSON object, after size, canonical form and signature checks."""
    if len(data) > max_bytes:
        raise WireError("too_large", f"{len(data)} bytes exceeds the limit of {max_bytes}")
    document = _strict_json(bytes(data), "document")
    if not isinstance(document, dict):
        raise WireError("bad_header", "document is not a JSON object")
    if bytes(data) != _canonical_of_untrusted(document):
        raise WireError("non_canonical_header", "document is not in canonical form")
    body = {k: v for k, v in document.items() if k != "signature"}
    _check_signer(document.get("hotkey"), document.get("signature"), expected_hotkey, "document",
                  lambda: hashlib.sha256(canonical_json(body)).digest())
    if document.get("wire_format") != WIRE_VERSION:
        raise WireError("wrong_version", f"wire_format {document.get('wire_format')!r}, expected {WIRE_VERSION!r}")
    if expected_kind is not None and document.get("kind") != expected_kind:
        raise WireError("wrong_kind", f"kind {document.get('kind')!r}, expected {expected_kind!r}")
    return document


# --- object names -----------------------------------------------------------------------------

def gradient_key(window: int, uid: int) -> str:
    return f"gradient-{window}-{uid}.safetensors"


def aggregate_key(window: int) -> str:
    return f"aggregate-{window}.safetensors"


def aggregate_manifest_key(window: int) -> str:
    return f"aggregate-{window}.json"


# --- gradients --------------------------------------------------------------------------------

def gradient_byte_limit(shapes: dict[str, tuple[int, ...]], codec: CompressionConfig) -> int:
    """Largest valid gradient object for this model and codec.

    Per tensor of n values in chunks of size s with k kept: the unary stream codes the quotients of
    gaps whose per-chunk sum is at most s - k, plus one stop bit per index, so at most n bits; the
    remainders at most 16 bits per index; the codes value_bits per index; a table of 2**bits floats,
    one rice byte and one int64 length. Plus the header cap and byte-alignment slack.
    """
    total = 8 + PACKET_MAX_HEADER_BYTES
    for layout in layouts_for(shapes, codec).values():
        kept = layout.num_kept
        total += -(-layout.numel // 8) + 2 * kept + -(-kept * codec.value_bits // 8)
        total += 4 * (1 << codec.value_bits) + 1 + 8 + 3
    return total


def _unpack_codes(packet: Packet) -> dict[str, np.ndarray]:
    codes = {}
    for name, enc in packet.tensors.items():
        try:
            codes[name] = unpack_bits(enc.codes, packet.codec.value_bits, enc.layout.num_kept)
        except IndexCodeError as exc:
            raise WireError("bad_length", f"{name}: {exc}") from None
    return codes


def gradient_norm(packet: Packet, codes: dict[str, np.ndarray] | None = None) -> float:
    """L2 norm of the transmitted update from the tables and code counts (no scatter): each kept
    value decodes to table[code], and chunking/the orthonormal DCT preserve the norm."""
    codes = _unpack_codes(packet) if codes is None else codes
    total = 0.0
    for name, enc in packet.tensors.items():
        counts = np.bincount(codes[name], minlength=1 << packet.codec.value_bits).astype(np.float64)
        total += float((counts * enc.table.astype(np.float64) ** 2).sum())
    return math.sqrt(total)


@dataclass(frozen=True)
class Gradient:
    window: int
    uid: int
    hotkey: str
    base_model_hash: str
    sha256: str
    norm: float
    packet: Packet = field(repr=False)
    indices: dict[str, np.ndarray] = field(repr=False)  # checked (chunks, k) per tensor
    codes: dict[str, np.ndarray] = field(repr=False)

    def dense(self) -> dict[str, torch.Tensor]:
        """The transmitted update as dense tensors (the codec's `reconstruct`, so equal bit for bit
        to `decode_packet`), reusing the indices and codes decoded during the checks."""
        return {name: reconstruct(torch.from_numpy(self.indices[name]), torch.from_numpy(self.codes[name]),
                                  torch.from_numpy(enc.table), enc.layout, self.packet.codec)
                for name, enc in self.packet.tensors.items()}


def encode_gradient(packet: Packet, keypair: Keypair, window: int, uid: int, base_model_hash: str) -> bytes:
    if not _HEX64.fullmatch(base_model_hash):
        raise ValueError("base_model_hash must be 64 lowercase hex digits")
    metadata = {"wire_format": WIRE_VERSION, "kind": "gradient", "window": str(int(window)),
                "uid": str(int(uid)), "base_model_hash": base_model_hash}
    return sign_safetensors(packet_to_bytes(packet), keypair, metadata)


def _uint_field(metadata: dict, key: str) -> int:
    value = metadata.get(key)
    if not isinstance(value, str) or not _UINT.fullmatch(value):
        raise WireError("bad_metadata", f"metadata {key!r} must be a non-negative decimal integer")
    return int(value)


def _check_common(metadata: dict, kind: str) -> None:
    if metadata.get("wire_format") != WIRE_VERSION:
        raise WireError("wrong_version", f"wire_format {metadata.get('wire_format')!r}, expected {WIRE_VERSION!r}")
    if metadata.get("kind") != kind:
        raise WireError("wrong_kind", f"kind {metadata.get('kind')!r}, expected {kind!r}")


def _check_indices(packet: Packet) -> dict[str, np.ndarray]:
    """Each tensor's (chunks, k) indices, after checking exactly k in-range indices per chunk."""
    out = {}
    for name, enc in packet.tensors.items():
        layout = enc.layout
        try:
            out[name] = decode_indices(enc.streams, layout.num_chunks, layout.k, layout.chunk_size)
        except IndexCodeError as exc:
            raise WireError("bad_indices", f"{name}: {exc}") from None
    return out


def decode_gradient(data: bytes, shapes: dict[str, tuple[int, ...]], codec: CompressionConfig, *,
                    window: int | None = None, uid: int | None = None, hotkey: str | None = None,
                    base_model_hash: str | None = None, norm_bound: float | None = None,
                    max_bytes: int | None = None) -> Gradient:
    """Check a gradient object completely (signature, metadata against the expected values,
    packet structure, norm bound, k in-range indices per chunk) and return it undecoded;
    ``Gradient.dense()`` scatters it."""
    limit = gradient_byte_limit(shapes, codec) if max_bytes is None else max_bytes
    signed = verify_safetensors(data, limit, PACKET_MAX_HEADER_BYTES, expected_hotkey=hotkey)
    metadata = signed.metadata
    _check_common(metadata, "gradient")
    got_window, got_uid = _uint_field(metadata, "window"), _uint_field(metadata, "uid")
    got_base = metadata.get("base_model_hash", "")
    if not _HEX64.fullmatch(got_base):
        raise WireError("bad_metadata", "base_model_hash must be 64 lowercase hex digits")
    if window is not None and got_window != window:
        raise WireError("wrong_window", f"object is for window {got_window}, expected {window}")
    if uid is not None and got_uid != uid:
        raise WireError("wrong_uid", f"object is for uid {got_uid}, expected {uid}")
    if base_model_hash is not None and got_base != base_model_hash:
        raise WireError("wrong_base_model",
                        f"made against model {got_base[:16]}..., expected {base_model_hash[:16]}...")
    try:
        packet = packet_from_bytes(data, shapes, codec, max_bytes=limit)
    except CodecError as exc:
        raise WireError(exc.reason, str(exc)) from None
    codes = _unpack_codes(packet)
    norm = gradient_norm(packet, codes)
    if not math.isfinite(norm):
        raise WireError("non_finite", "update norm is not finite")
    if norm_bound is not None and norm > norm_bound:
        raise WireError("norm_bound", f"update norm {norm:.4g} exceeds the bound {norm_bound:.4g}")
    indices = _check_indices(packet)
    return Gradient(window=got_window, uid=got_uid, hotkey=signed.hotkey, base_model_hash=got_base,
                    sha256=signed.sha256, norm=norm, packet=packet, indices=indices, codes=codes)


# --- aggregates --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AggregatePart:
    uid: int
    hotkey: str
    gradient_sha256: str


@dataclass(frozen=True)
class Aggregate:
    window: int
    hotkey: str
    base_model_hash: str
    result_model_hash: str
    prev_aggregate_sha256: str
    sha256: str
    parts: list[AggregatePart]
    gradients: list[Gradient] = field(repr=False)


def aggregate_byte_limit(shapes: dict[str, tuple[int, ...]], codec: CompressionConfig, max_parts: int) -> int:
    return 8 + AGGREGATE_MAX_HEADER_BYTES + max_parts * gradient_byte_limit(shapes, codec)


def encode_aggregate(window: int, gradient_objects: list[bytes], keypair: Keypair, *,
                     base_model_hash: str, result_model_hash: str, prev_aggregate_sha256: str) -> bytes:
    """Sign the lead's selection: each selected miner's signed gradient object is carried verbatim
    (a U8 tensor ``part000``, ``part001``, ...), in the order given (the order of application)."""
    for name, value in (("base_model_hash", base_model_hash), ("result_model_hash", result_model_hash),
                        ("prev_aggregate_sha256", prev_aggregate_sha256)):
        if not _HEX64.fullmatch(value):
            raise ValueError(f"{name} must be 64 lowercase hex digits")
    if len(gradient_objects) > 1000:
        raise ValueError("an aggregate holds at most 1000 parts (part000..part999)")
    parts, arrays = [], {}
    for i, obj in enumerate(gradient_objects):
        (header_len,) = struct.unpack("<Q", obj[:8])
        meta = json.loads(obj[8:8 + header_len])["__metadata__"]
        parts.append({"uid": int(meta["uid"]), "hotkey": meta["hotkey"], "gradient_sha256": sha256_hex(obj)})
        arrays[f"part{i:03d}"] = np.frombuffer(obj, dtype=np.uint8)
    metadata = {"wire_format": WIRE_VERSION, "kind": "aggregate", "window": str(int(window)),
                "base_model_hash": base_model_hash, "result_model_hash": result_model_hash,
                "prev_aggregate_sha256": prev_aggregate_sha256,
                "parts": json.dumps(parts, sort_keys=True, separators=(",", ":"))}
    return sign_safetensors(st_save(arrays, metadata={}), keypair, metadata)


def _parse_parts(text: str, max_parts: int) -> list[AggregatePart]:
    if len(text) > AGGREGATE_MAX_HEADER_BYTES:
        raise WireError("bad_metadata", "parts list is too long")
    parts = _strict_json(text.encode("utf-8"), "parts")
    if not isinstance(parts, list) or len(parts) > max_parts:
        raise WireError("bad_metadata", f"parts must be a list of at most {max_parts} entries")
    out = []
    for entry in parts:
        if (not isinstance(entry, dict) or set(entry) != {"uid", "hotkey", "gradient_sha256"}
                or type(entry["uid"]) is not int or entry["uid"] < 0
                or not isinstance(entry["hotkey"], str) or not is_valid_address(entry["hotkey"])
                or not isinstance(entry["gradient_sha256"], str) or not _HEX64.fullmatch(entry["gradient_sha256"])):
            raise WireError("bad_metadata", "malformed entry in the parts list")
        out.append(AggregatePart(entry["uid"], entry["hotkey"], entry["gradient_sha256"]))
    return out


def decode_aggregate(data: bytes, shapes: dict[str, tuple[int, ...]], codec: CompressionConfig, *,
                     max_parts: int, window: int | None = None, hotkey: str | None = None,
                     norm_bound: float | None = None) -> Aggregate:
    """Check an aggregate and every gradient inside it (each against its miner's signature, the
    aggregate's window and base model)."""
    max_parts = min(max_parts, 1000)
    signed = verify_safetensors(data, aggregate_byte_limit(shapes, codec, max_parts),
                                AGGREGATE_MAX_HEADER_BYTES, expected_hotkey=hotkey)
    metadata = signed.metadata
    _check_common(metadata, "aggregate")
    got_window = _uint_field(metadata, "window")
    if window is not None and got_window != window:
        raise WireError("wrong_window", f"aggregate is for window {got_window}, expected {window}")
    hashes = {}
    for key in ("base_model_hash", "result_model_hash", "prev_aggregate_sha256"):
        hashes[key] = metadata.get(key, "")
        if not _HEX64.fullmatch(hashes[key]):
            raise WireError("bad_metadata", f"{key} must be 64 lowercase hex digits")
    parts = _parse_parts(metadata.get("parts", ""), max_parts)
    names = sorted(n for n in signed.header if n != "__metadata__")
    if names != [f"part{i:03d}" for i in range(len(parts))]:
        raise WireError("bad_tensors", f"aggregate tensors {names[:5]}... do not match its {len(parts)} parts")
    gradients = []
    for i, part in enumerate(parts):
        entry = signed.header[f"part{i:03d}"]
        if entry["dtype"] != "U8" or len(entry["shape"]) != 1:
            raise WireError("bad_dtype", f"part{i:03d} must be a 1-D U8 tensor")
        begin, end = entry["data_offsets"]
        obj = bytes(memoryview(data)[signed.data_start + begin:signed.data_start + end])
        if sha256_hex(obj) != part.gradient_sha256:
            raise WireError("part_mismatch", f"part {i} does not hash to its listed gradient_sha256")
        try:
            gradient = decode_gradient(obj, shapes, codec, window=got_window, uid=part.uid, hotkey=part.hotkey,
                                       base_model_hash=hashes["base_model_hash"], norm_bound=norm_bound)
        except WireError as exc:
            raise WireError(f"part_{exc.reason}", f"part {i} (uid {part.uid}): {exc}") from None
        gradients.append(gradient)
    return Aggregate(window=got_window, hotkey=signed.hotkey, sha256=signed.sha256, parts=parts,
                     gradients=gradients, **hashes)


def aggregate_manifest(aggregate_bytes: bytes, keypair: Keypair) -> bytes:
    """Signed JSON manifest of an aggregate object (read from its own, trusted, header)."""
    (header_len,) = struct.unpack("<Q", aggregate_bytes[:8])
    meta = json.loads(aggregate_bytes[8:8 + header_len])["__metadata__"]
    window = int(meta["window"])
    document = {"wire_format": WIRE_VERSION, "kind": "aggregate_manifest", "window": window,
                "aggregate_key": aggregate_key(window), "aggregate_sha256": sha256_hex(aggregate_bytes),
                "aggregate_size": len(aggregate_bytes), "base_model_hash": meta["base_model_hash"],
                "result_model_hash": meta["result_model_hash"],
                "prev_aggregate_sha256": meta["prev_aggregate_sha256"], "parts": json.loads(meta["parts"])}
    return sign_json(document, keypair)


@dataclass(frozen=True)
class Lineage:
    windows: list[int]
    head_aggregate_sha256: str
    head_model_hash: str


def verify_lineage(manifests: list[bytes], genesis_model_hash: str, lead_hotkeys: set[str] | None = None,
                   aggregates: dict[int, bytes] | None = None) -> Lineage:
    """Walk signed aggregate manifests from genesis to the newest: each must name the previous
    aggregate's sha256 and apply to the model the previous one produced (the first: GENESIS_PREV
    and the genesis model). ``lead_hotkeys`` restricts who may sign; ``aggregates`` (window ->
    object bytes), where given, must hash to what their manifests say."""
    prev_sha, model_hash, last_window, windows = GENESIS_PREV, genesis_model_hash, -1, []
    for raw in manifests:
        document = verify_json(raw, expected_kind="aggregate_manifest")
        window = document.get("window")
        if type(window) is not int or window <= last_window:
            raise WireError("broken_lineage", f"window {window!r} does not follow window {last_window}")
        if lead_hotkeys is not None and document["hotkey"] not in lead_hotkeys:
            raise WireError("wrong_hotkey", f"aggregate {window} signed by {document['hotkey']}, not a lead")
        if document.get("prev_aggregate_sha256") != prev_sha:
            raise WireError("broken_lineage", f"aggregate {window} does not link to the previous aggregate")
        if document.get("base_model_hash") != model_hash:
            raise WireError("broken_lineage", f"aggregate {window} applies to a different model")
        result = document.get("result_model_hash")
        sha = document.get("aggregate_sha256")
        if not all(isinstance(v, str) and _HEX64.fullmatch(v) for v in (result, sha)):
            raise WireError("bad_metadata", f"aggregate {window} manifest has malformed hashes")
        if aggregates is not None and window in aggregates and sha256_hex(aggregates[window]) != sha:
            raise WireError("part_mismatch", f"aggregate {window} object does not match its manifest")
        prev_sha, model_hash, last_window = sha, result, window
        windows.append(window)
    return Lineage(windows=windows, head_aggregate_sha256=prev_sha, head_model_hash=model_hash)
