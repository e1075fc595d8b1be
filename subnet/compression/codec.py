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

import math
from dataclasses import dataclass

import numpy as np
import torch
from safetensors.numpy import save as st_save

from subnet.compression.chunking import ChunkLayout
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
from subnet.compression.spec import PACKET_MAX_HEADER_BYTES, CodecSpec, codec_json, layout_digest, layouts_for
from subnet.config import CompressionConfig
from subnet.errors import InputRejected
from subnet.safetensors_header import HeaderError, SafetensorsHeader, read_header, tensor_array

PACKET_FORMAT = "tessera-sparse-v1"


class CodecError(InputRejected):
    """A packet is malformed; `reason` is a short machine-readable code."""


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


def decode_packet_indices(packet: Packet) -> dict[str, np.ndarray]:
    """Decode stage 3: each tensor's (chunks, k) indices, refused unless every chunk has exactly k
    distinct in-range indices."""
    out = {}
    for name, enc in packet.tensors.items():
        layout = enc.layout
        try:
            out[name] = decode_indices(enc.streams, layout.num_chunks, layout.k, layout.chunk_size)
        except IndexCodeError as exc:
            raise CodecError("bad_indices", f"{name}: {exc}") from None
    return out


def decode_packet_codes(packet: Packet) -> dict[str, np.ndarray]:
    """Decode stage 3b: each tensor's value codes (one per kept index)."""
    out = {}
    for name, enc in packet.tensors.items():
        try:
            out[name] = unpack_bits(enc.codes, packet.codec.value_bits, enc.layout.num_kept)
        except IndexCodeError as exc:
            raise CodecError("bad_length", f"{name}: {exc}") from None
    return out


def packet_norm(packet: Packet, codes: dict[str, np.ndarray]) -> float:
    """L2 norm of the transmitted update from the tables and code counts (no scatter): each kept
    value decodes to table[code], and chunking/the orthonormal DCT preserve the norm. Integer counts
    and a fixed order of a few float64 products: the same number on every machine."""
    total = 0.0
    for name, enc in packet.tensors.items():
        counts = np.bincount(codes[name], minlength=1 << packet.codec.value_bits).astype(np.float64)
        total += float((counts * enc.table.astype(np.float64) ** 2).sum())
    return math.sqrt(total)


def reconstruct_all(packet: Packet, indices: dict[str, np.ndarray],
                    codes: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Decode stage 4: the dense tensors from checked indices and codes."""
    return {name: reconstruct(torch.from_numpy(indices[name]), torch.from_numpy(codes[name]),
                              torch.from_numpy(enc.table), enc.layout, packet.codec)
            for name, enc in packet.tensors.items()}


def decode_packet(packet: Packet) -> dict[str, torch.Tensor]:
    """Dense tensors (parameter domain) that the packet transmits: stages 3 and 4."""
    return reconstruct_all(packet, decode_packet_indices(packet), decode_packet_codes(packet))


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

PACKET_TENSORS = ("unary", "remainder", "codes", "tables", "rice_params", "unary_bits")


def packet_to_bytes(packet: Packet) -> bytes:
    encs = list(packet.tensors.values())
    shapes = {name: enc.layout.shape for name, enc in packet.tensors.items()}

    arrays = {   # (a packet holds at least one tensor: a model has parameters)
        "unary": np.concatenate([e.streams.unary for e in encs]),
        "remainder": np.concatenate([e.streams.remainder for e in encs]),
        "codes": np.concatenate([e.codes for e in encs]),
        "tables": np.stack([e.table for e in encs]).astype(np.float32),
        "rice_params": np.array([e.streams.rice_param for e in encs], dtype=np.uint8),
        "unary_bits": np.array([e.streams.unary_bits for e in encs], dtype=np.int64),
    }
    metadata = dict(packet.metadata)
    metadata.update({"format": PACKET_FORMAT, "codec": codec_json(packet.codec),
                     "layout_sha256": layout_digest(shapes)})
    return st_save(arrays, metadata=metadata)


def read_packet_header(data: bytes, spec: CodecSpec, max_bytes: int | None = None) -> SafetensorsHeader:
    """Decode stage 1: the header, checked against the spec (format, codec, model layout, tensor
    names) before any array is read."""
    limit = spec.max_gradient_bytes if max_bytes is None else max_bytes
    try:
        parsed = read_header(data, limit, PACKET_MAX_HEADER_BYTES)
    except HeaderError as exc:
        raise CodecError(exc.reason, exc.detail) from None
    check_packet_header(parsed, spec)
    return parsed


def check_packet_header(parsed: SafetensorsHeader, spec: CodecSpec) -> None:
    metadata = parsed.metadata
    if metadata.get("format") != PACKET_FORMAT:
        raise CodecError("bad_format", f"format {metadata.get('format')!r}, expected {PACKET_FORMAT!r}")
    if metadata.get("codec") != spec.codec_json:
        raise CodecError("bad_codec", f"codec {metadata.get('codec')!r} differs from {spec.codec_json}")
    if metadata.get("layout_sha256") != spec.layout_sha256:
        raise CodecError("wrong_model", "packet was made for different parameter names or shapes")
    names = set(parsed.tensors)
    if names != set(PACKET_TENSORS):
        raise CodecError("bad_tensors", f"tensors {sorted(names)}, expected {sorted(PACKET_TENSORS)}")


def _expect(data: bytes, parsed: SafetensorsHeader, name: str, dtype: str,
            shape: tuple[int, ...] | None) -> np.ndarray:
    entry = parsed.tensors[name]
    if entry.dtype != dtype:
        raise CodecError("bad_dtype", f"'{name}' is {entry.dtype}, expected {dtype}")
    if shape is not None and entry.shape != shape:
        raise CodecError("bad_shape", f"'{name}' has shape {entry.shape}, expected {shape}")
    if shape is None and len(entry.shape) != 1:
        raise CodecError("bad_shape", f"'{name}' must be one-dimensional, has shape {entry.shape}")
    return tensor_array(data, parsed, name)


def packet_from_header(data: bytes, parsed: SafetensorsHeader, spec: CodecSpec) -> Packet:
    """Decode stage 2: the per-parameter streams of a checked header, after dtype/shape checks,
    per-parameter stream lengths and finite tables. Indices are checked in stage 3
    (`decode_packet_indices`), before anything is scattered."""
    codec = spec.codec
    count = len(spec.shapes)
    table_size = 1 << codec.value_bits
    rice = _expect(data, parsed, "rice_params", "U8", (count,)).astype(np.int64)
    unary_bits = _expect(data, parsed, "unary_bits", "I64", (count,))
    tables = _expect(data, parsed, "tables", "F32", (count, table_size))
    unary = _expect(data, parsed, "unary", "U8", None)
    remainder = _expect(data, parsed, "remainder", "U8", None)
    codes = _expect(data, parsed, "codes", "U8", None)
    if not np.isfinite(tables).all():
        raise CodecError("non_finite", "value table holds NaN or infinity")

    layouts = spec.layouts
    kept = np.array([layouts[n].num_kept for n in spec.shapes], dtype=np.int64)
    numel = np.array([layouts[n].numel for n in spec.shapes], dtype=np.int64)
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
    for i, name in enumerate(spec.shapes):
        def part(label, stream):
            return stream[offsets[label][i]:offsets[label][i + 1]]
        streams = RiceStreams(rice_param=int(rice[i]), unary_bits=int(unary_bits[i]),
                              unary=part("unary", unary), remainder=part("remainder", remainder))
        tensors[name] = EncodedTensor(layout=layouts[name], streams=streams, codes=part("codes", codes),
                                      table=tables[i].copy())
    extra = {k: v for k, v in parsed.metadata.items() if k not in ("format", "codec", "layout_sha256")}
    return Packet(codec=codec, tensors=tensors, metadata=extra)


def packet_from_bytes(data: bytes, spec: CodecSpec, max_bytes: int | None = None) -> Packet:
    """Stages 1 and 2: parse and check a packet against the spec (see `decode_packet` for stage 3+)."""
    data = bytes(data)
    return packet_from_header(data, read_packet_header(data, spec, max_bytes), spec)
