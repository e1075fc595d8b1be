"""Encode and decode a whole pseudo-gradient, its safetensors packet, and error feedback.

Encoding a tensor: cut into chunks (optionally DCT), keep the top-k magnitudes per chunk, sort their
indices, quantise the values to a few bits. The decoder rebuilds the transmitted tensor with the very
same `reconstruct` the encoder used, so decode(encode(x)) equals the transmitted tensor bit for bit,
which is what error feedback subtracts.

Packet layout (safetensors, never pickle): six tensors holding every parameter's streams back to back
in the expected parameter order, each stream byte-aligned per parameter:
  unary (u8)  remainder (u8)  codes (u8)  tables (f32 [T, 2**bits])  rice_params (u8 [T])
  unary_bits (i64 [T])
Chunk layouts are not sent: the reader derives them from the model's shapes and the codec parameters,
and the metadata carries a hash of (name, shape) pairs so a packet for another model is refused.
"""
from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass

import numpy as np
import torch
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from subnet.compression.chunking import ChunkLayout, chunk_layout
from subnet.compression.dct import dct_chunks
from subnet.compression.index_code import (
    IndexCodeError,
    RiceStreams,
    decode_indices,
    encode_indices,
    index_floor_bits,
    pack_bits,
    unpack_bits,
)
from subnet.compression.quantize import quantize_values
from subnet.config import CompressionConfig

PACKET_FORMAT = "tessera-sparse-v1"
MAX_HEADER_BYTES = 64 * 1024


class CodecError(ValueError):
    """A packet is malformed; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class EncodedTensor:
    layout: ChunkLayout
    streams: RiceStreams
    codes: np.ndarray   # value codes, bit-packed (uint8)
    table: np.ndarray   # (2**bits,) float32 lookup table


@dataclass(frozen=True)
class Packet:
    codec: CompressionConfig
    tensors: dict[str, EncodedTensor]
    metadata: dict[str, str]


@dataclass(frozen=True)
class CompressStats:
    dense_fp32_bytes: int
    packet_bytes: int
    kept_values: int
    index_bits: int
    index_floor_bits: float

    @property
    def ratio(self) -> float:
        return self.dense_fp32_bytes / self.packet_bytes

    @property
    def index_bits_per_value(self) -> float:
        return self.index_bits / self.kept_values

    @property
    def index_floor_bits_per_value(self) -> float:
        return self.index_floor_bits / self.kept_values


def layouts_for(shapes: dict[str, tuple[int, ...]], codec: CompressionConfig) -> dict[str, ChunkLayout]:
    return {name: chunk_layout(shape, codec.tile, codec.topk) for name, shape in shapes.items()}


def layout_digest(shapes: dict[str, tuple[int, ...]]) -> str:
    text = json.dumps([[name, list(shape)] for name, shape in shapes.items()], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _codec_json(codec: CompressionConfig) -> str:
    return json.dumps({"tile": codec.tile, "topk": codec.topk, "value_bits": codec.value_bits,
                       "use_dct": codec.use_dct}, sort_keys=True)


def reconstruct(indices: torch.Tensor, codes: torch.Tensor, table: torch.Tensor,
                layout: ChunkLayout, codec: CompressionConfig) -> torch.Tensor:
    """The dense tensor that (checked) indices, value codes and table transmit. The encoder and every
    decoder go through here, which is what makes decoding exact."""
    values = table[codes.long()].reshape(indices.shape)
    if codec.use_dct:
        chunks = torch.zeros(layout.num_chunks, layout.chunk_size, dtype=torch.float32)
        chunks.scatter_(1, indices, values)
        return layout.from_chunks(dct_chunks(chunks, layout, inverse=True))
    # Without a transform, write each value straight to its place: one pass, no tile permute.
    dense = torch.zeros(layout.numel, dtype=torch.float32)
    dense[layout.flat_positions(indices).reshape(-1)] = values.reshape(-1)
    return dense.reshape(layout.shape)


def _encode_one(x: torch.Tensor, layout: ChunkLayout, codec: CompressionConfig):
    chunks = layout.to_chunks(x.detach().to(torch.float32))
    if codec.use_dct:
        chunks = dct_chunks(chunks, layout)
    top = torch.topk(chunks.abs(), layout.k, dim=1, sorted=False).indices
    indices = torch.sort(top, dim=1).values
    codes, table = quantize_values(torch.gather(chunks, 1, indices), codec.value_bits)
    transmitted = reconstruct(indices, codes, table, layout, codec)
    encoded = EncodedTensor(layout=layout, streams=encode_indices(indices.numpy()),
                            codes=pack_bits(codes.numpy(), codec.value_bits), table=table.numpy())
    return encoded, transmitted


def encode_tensors(tensors: dict[str, torch.Tensor], codec: CompressionConfig,
                   metadata: dict[str, str] | None = None) -> tuple[Packet, dict[str, torch.Tensor]]:
    """Compress each tensor; returns the packet and the dense tensors it transmits."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    layouts = layouts_for(shapes, codec)
    encoded, transmitted = {}, {}
    for name, tensor in tensors.items():
        encoded[name], transmitted[name] = _encode_one(tensor, layouts[name], codec)
    return Packet(codec=codec, tensors=encoded, metadata=dict(metadata or {})), transmitted


def decode_packet(packet: Packet) -> dict[str, torch.Tensor]:
    """Dense tensors (parameter domain) that the packet transmits."""
    out = {}
    bits = packet.codec.value_bits
    for name, enc in packet.tensors.items():
        layout = enc.layout
        try:
            indices = decode_indices(enc.streams, layout.num_chunks, layout.k, layout.chunk_size)
            codes = unpack_bits(enc.codes, bits, layout.num_kept)
        except IndexCodeError as exc:
            raise CodecError("bad_indices", f"{name}: {exc}") from None
        out[name] = reconstruct(torch.from_numpy(indices), torch.from_numpy(codes),
                                 torch.from_numpy(enc.table), layout, packet.codec)
    return out


def compress_with_feedback(error: dict[str, torch.Tensor], delta: dict[str, torch.Tensor],
                           codec: CompressionConfig, metadata: dict[str, str] | None = None):
    """One error-feedback round: e = beta*e + delta; send Q(topk(e)); e -= sent.

    Returns (new error buffers, packet, transmitted tensors); the inputs are not modified.
    """
    accumulated = {name: codec.ef_decay * error[name] + delta[name] for name in delta}
    packet, transmitted = encode_tensors(accumulated, codec, metadata)
    new_error = {name: accumulated[name] - transmitted[name] for name in accumulated}
    return new_error, packet, transmitted


def packet_stats(packet: Packet, packet_bytes: int) -> CompressStats:
    dense = sum(enc.layout.numel for enc in packet.tensors.values()) * 4
    kept = sum(enc.layout.num_kept for enc in packet.tensors.values())
    index_bits = sum(enc.streams.coded_bits(enc.layout.num_kept) for enc in packet.tensors.values())
    floor = sum(enc.layout.num_chunks * index_floor_bits(enc.layout.chunk_size, enc.layout.k)
                for enc in packet.tensors.values())
    return CompressStats(dense_fp32_bytes=dense, packet_bytes=packet_bytes, kept_values=kept,
                         index_bits=index_bits, index_floor_bits=floor)


# --- safetensors packet ------------------------------------------------------------------------

def packet_to_bytes(packet: Packet) -> bytes:
    encs = list(packet.tensors.values())
    shapes = {name: enc.layout.shape for name, enc in packet.tensors.items()}

    def cat(arrays):
        return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint8)

    arrays = {
        "unary": cat([e.streams.unary for e in encs]),
        "remainder": cat([e.streams.remainder for e in encs]),
        "codes": cat([e.codes for e in encs]),
        "tables": np.stack([e.table for e in encs]).astype(np.float32),
        "rice_params": np.array([e.streams.rice_param for e in encs], dtype=np.uint8),
        "unary_bits": np.array([e.streams.unary_bits for e in encs], dtype=np.int64),
    }
    metadata = dict(packet.metadata)
    metadata.update({"format": PACKET_FORMAT, "codec": _codec_json(packet.codec),
                     "layout_sha256": layout_digest(shapes)})
    return st_save(arrays, metadata=metadata)


def _expect(arrays: dict, name: str, dtype, shape: tuple[int, ...] | None) -> np.ndarray:
    if name not in arrays:
        raise CodecError("missing_tensor", f"packet has no '{name}' tensor")
    a = arrays[name]
    if a.dtype != dtype:
        raise CodecError("bad_dtype", f"'{name}' is {a.dtype}, expected {np.dtype(dtype)}")
    if shape is not None and a.shape != shape:
        raise CodecError("bad_shape", f"'{name}' has shape {a.shape}, expected {shape}")
    if shape is None and a.ndim != 1:
        raise CodecError("bad_shape", f"'{name}' must be one-dimensional, has shape {a.shape}")
    return a


def packet_from_bytes(data: bytes, shapes: dict[str, tuple[int, ...]], codec: CompressionConfig,
                      max_bytes: int | None = None) -> Packet:
    """Parse and check a packet against the model's parameter shapes and the expected codec.

    Everything is checked before any index is scattered: size, header, tensor names, dtypes and
    shapes, per-parameter stream lengths, finite tables, and (in decode) k in-range indices per chunk.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise CodecError("too_large", f"{len(data)} bytes exceeds the limit of {max_bytes}")
    if len(data) < 8:
        raise CodecError("truncated", f"{len(data)} bytes is shorter than a safetensors header")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES or 8 + header_len > len(data):
        raise CodecError("bad_header", f"header length {header_len} is out of bounds")
    try:
        header = json.loads(data[8:8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError("bad_header", f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise CodecError("bad_header", "header is not a JSON object")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CodecError("bad_metadata", "metadata must map strings to strings")
    if metadata.get("format") != PACKET_FORMAT:
        raise CodecError("bad_format", f"format {metadata.get('format')!r}, expected {PACKET_FORMAT!r}")
    if metadata.get("codec") != _codec_json(codec):
        raise CodecError("bad_codec", f"codec {metadata.get('codec')!r} differs from {_codec_json(codec)}")
    if metadata.get("layout_sha256") != layout_digest(shapes):
        raise CodecError("wrong_model", "packet was made for different parameter names or shapes")
    expected_names = {"unary", "remainder", "codes", "tables", "rice_params", "unary_bits"}
    names = set(header) - {"__metadata__"}
    if names != expected_names:
        raise CodecError("bad_tensors", f"tensors {sorted(names)}, expected {sorted(expected_names)}")
    try:
        arrays = st_load(bytes(data))
    except Exception as exc:  # the safetensors parser rejects inconsistent offsets
        raise CodecError("bad_safetensors", str(exc)) from None

    count = len(shapes)
    table_size = 1 << codec.value_bits
    rice = _expect(arrays, "rice_params", np.uint8, (count,)).astype(np.int64)
    unary_bits = _expect(arrays, "unary_bits", np.int64, (count,))
    tables = _expect(arrays, "tables", np.float32, (count, table_size))
    unary = _expect(arrays, "unary", np.uint8, None)
    remainder = _expect(arrays, "remainder", np.uint8, None)
    codes = _expect(arrays, "codes", np.uint8, None)
    if not np.isfinite(tables).all():
        raise CodecError("non_finite", "value table holds NaN or infinity")

    layouts = layouts_for(shapes, codec)
    kept = np.array([layouts[n].num_kept for n in shapes], dtype=np.int64)
    numel = np.array([layouts[n].numel for n in shapes], dtype=np.int64)
    # k gaps per chunk sum to at most chunk_size - k, so a valid unary stream has at most numel bits;
    # checking this first also keeps the length arithmetic below from overflowing.
    if (unary_bits < kept).any() or (unary_bits > numel).any() or (rice > 16).any():
        raise CodecError("bad_indices", "stream lengths are impossible for the expected k")
    unary_len = (unary_bits + 7) // 8
    remainder_len = (kept * rice + 7) // 8
    codes_len = (kept * codec.value_bits + 7) // 8
    for label, lengths, stream in (("unary", unary_len, unary), ("remainder", remainder_len, remainder),
                                   ("codes", codes_len, codes)):
        if int(lengths.sum()) != stream.size:
            raise CodecError("bad_length", f"'{label}' stream is {stream.size} bytes, "
                                           f"expected {int(lengths.sum())}")
    offsets = {label: np.concatenate([[0], np.cumsum(lengths)])
               for label, lengths in (("unary", unary_len), ("remainder", remainder_len), ("codes", codes_len))}
    tensors = {}
    for i, name in enumerate(shapes):
        def part(label, stream):
            return stream[offsets[label][i]:offsets[label][i + 1]]
        streams = RiceStreams(rice_param=int(rice[i]), unary_bits=int(unary_bits[i]),
                              unary=part("unary", unary), remainder=part("remainder", remainder))
        tensors[name] = EncodedTensor(layout=layouts[name], streams=streams, codes=part("codes", codes),
                                      table=tables[i].copy())
    extra = {k: v for k, v in metadata.items() if k not in ("format", "codec", "layout_sha256")}
    return Packet(codec=codec, tensors=tensors, metadata=extra)


def dense_bytes(shapes: dict[str, tuple[int, ...]]) -> int:
    return 4 * sum(math.prod(s) for s in shapes.values())
