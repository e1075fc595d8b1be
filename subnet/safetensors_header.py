"""The one reader of a safetensors header from untrusted bytes.

A safetensors object is an 8-byte little-endian header length, a JSON header (tensor entries
``name -> {dtype, shape, data_offsets}`` and an optional ``__metadata__`` of strings), then the data
section. Everything here is checked before any tensor is touched: size limits, strict JSON (no
duplicate keys, no NaN/Infinity), string-only metadata, known dtypes, shapes, and offsets that tile
the data section exactly. The codec and the signed wire objects both read headers through here.
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import numpy as np

from subnet.errors import InputRejected

DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2,
               "BF16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}
NUMPY_DTYPES = {"U8": np.uint8, "I64": np.int64, "F32": np.float32, "U16": np.uint16, "I32": np.int32,
                "F64": np.float64, "U32": np.uint32, "U64": np.uint64, "I8": np.int8, "I16": np.int16}


class HeaderError(InputRejected):
    """A safetensors header (or strict JSON document) is malformed."""


@dataclass(frozen=True)
class TensorEntry:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offsets into the data section
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    header: dict                      # the parsed JSON header as sent
    raw: bytes                        # the header bytes as sent (JSON plus padding)
    metadata: dict[str, str]
    tensors: dict[str, TensorEntry]
    data_start: int                   # offset of the data section in the object


def _reject_duplicate_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise HeaderError("bad_header", f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def _reject_constant(name):
    raise HeaderError("bad_header", f"JSON constant {name} is not allowed")


def strict_json(raw: bytes, what: str):
    """Parse untrusted JSON: UTF-8, no duplicate keys, no NaN/Infinity, bounded nesting."""
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys,
                          parse_constant=_reject_constant)
    except HeaderError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise HeaderError("bad_header", f"{what} is not valid JSON: {exc}") from None


def _tensor_entries(header: dict, data_len: int) -> dict[str, TensorEntry]:
    out, spans = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise HeaderError("bad_tensor_entry", f"tensor {name!r} entry is malformed")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPE_BYTES:
            raise HeaderError("bad_tensor_entry", f"tensor {name!r} has unknown dtype {dtype!r}")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(type(d) is int and 0 <= d < 1 << 40 for d in shape)):
            raise HeaderError("bad_tensor_entry", f"tensor {name!r} has an invalid shape")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int and 0 <= o <= data_len for o in offsets)
                or offsets[0] > offsets[1]):
            raise HeaderError("bad_tensor_entry", f"tensor {name!r} has invalid data offsets")
        if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[dtype]:
            raise HeaderError("bad_tensor_entry", f"tensor {name!r}: offsets do not match dtype and shape")
        out[name] = TensorEntry(dtype, tuple(shape), offsets[0], offsets[1])
        spans.append((offsets[0], offsets[1]))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise HeaderError("bad_tensor_entry", "tensor data overlaps or leaves gaps")
        position = end
    if position != data_len:
        raise HeaderError("bad_tensor_entry", f"tensors cover {position} of {data_len} data bytes")
    return out


def read_header(data: bytes, max_bytes: int, max_header_bytes: int) -> SafetensorsHeader:
    """Parse and check the header of a safetensors object under strict limits."""
    if len(data) > max_bytes:
        raise HeaderError("too_large", f"{len(data)} bytes exceeds the limit of {max_bytes}")
    if len(data) < 8:
        raise HeaderError("truncated", f"{len(data)} bytes is shorter than a safetensors header")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > max_header_bytes:
        raise HeaderError("header_too_large", f"header of {header_len} bytes exceeds {max_header_bytes}")
    if 8 + header_len > len(data):
        raise HeaderError("truncated", f"header of {header_len} bytes runs past the end ({len(data)} bytes)")
    raw = bytes(data[8:8 + header_len])
    header = strict_json(raw, "header")
    if not isinstance(header, dict):
        raise HeaderError("bad_header", "header is not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise HeaderError("bad_metadata", "__metadata__ must map strings to strings")
    data_start = 8 + header_len
    tensors = _tensor_entries(header, len(data) - data_start)
    return SafetensorsHeader(header=header, raw=raw, metadata=metadata, tensors=tensors, data_start=data_start)


def tensor_bytes(data: bytes, parsed: SafetensorsHeader, name: str) -> memoryview:
    entry = parsed.tensors[name]
    return memoryview(data)[parsed.data_start + entry.begin:parsed.data_start + entry.end]


def tensor_array(data: bytes, parsed: SafetensorsHeader, name: str) -> np.ndarray:
    """A tensor of a checked header as a numpy array (a copy, so it is aligned and owns its data)."""
    entry = parsed.tensors[name]
    dtype = NUMPY_DTYPES.get(entry.dtype)
    if dtype is None:
        raise HeaderError("bad_dtype", f"tensor {name!r} has dtype {entry.dtype}, not readable here")
    return np.frombuffer(tensor_bytes(data, parsed, name), dtype=np.dtype(dtype).newbyteorder("<")
                         ).astype(dtype).reshape(entry.shape)
