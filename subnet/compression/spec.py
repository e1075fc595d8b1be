"""`CodecSpec`: everything a reader needs to check a packet, built once from the preset.

The model's parameter names and shapes, the codec parameters, every parameter's chunk layout, the
layout digest that packets carry, and the byte limits. Gradients, aggregates and the codec take a
spec instead of `(shapes, codec)`, so layouts are computed once per process, not per object.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from subnet.compression.chunking import ChunkLayout, chunk_layout
from subnet.config import CompressionConfig, Preset

# Header cap of a packet or signed gradient: the tensor entries and the metadata (codec JSON, hashes,
# signature) are a few hundred bytes, so 64 KiB bounds the parse of a hostile header.
PACKET_MAX_HEADER_BYTES = 64 * 1024
# An aggregate's header lists its parts (uid, hotkey, sha256 each); 1 MiB holds a thousand.
AGGREGATE_MAX_HEADER_BYTES = 1 << 20
MAX_AGGREGATE_PARTS = 1000


def layouts_for(shapes: dict[str, tuple[int, ...]], codec: CompressionConfig) -> dict[str, ChunkLayout]:
    return {name: chunk_layout(shape, codec.tile, codec.topk) for name, shape in shapes.items()}


def layout_digest(shapes: dict[str, tuple[int, ...]]) -> str:
    """sha256 of the ordered (name, shape) list: a packet for another model is refused by it."""
    text = json.dumps([[name, list(shape)] for name, shape in shapes.items()], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def codec_json(codec: CompressionConfig) -> str:
    """The codec parameters that change the packet format (ef_decay does not: it is the sender's)."""
    return json.dumps({"tile": codec.tile, "topk": codec.topk, "value_bits": codec.value_bits,
                       "use_dct": codec.use_dct}, sort_keys=True)


def _packet_byte_limit(layouts: dict[str, ChunkLayout], codec: CompressionConfig) -> int:
    """Largest valid packet (or signed gradient object) for these layouts.

    Per tensor of n values in chunks of size s with k kept: the unary stream codes the quotients of
    gaps whose per-chunk sum is at most s - k, plus one stop bit per index, so at most n bits; the
    remainders at most 16 bits per index; the codes value_bits per index; a table of 2**bits floats,
    one rice byte and one int64 length. Plus the header cap and byte-alignment slack.
    """
    total = 8 + PACKET_MAX_HEADER_BYTES
    for layout in layouts.values():
        kept = layout.num_kept
        total += -(-layout.numel // 8) + 2 * kept + -(-kept * codec.value_bits // 8)
        total += 4 * (1 << codec.value_bits) + 1 + 8 + 3
    return total


@dataclass(frozen=True, eq=False)
class CodecSpec:
    shapes: dict[str, tuple[int, ...]]
    codec: CompressionConfig
    layouts: dict[str, ChunkLayout] = field(init=False)
    layout_sha256: str = field(init=False)
    codec_json: str = field(init=False)
    max_gradient_bytes: int = field(init=False)

    def __post_init__(self):
        layouts = layouts_for(self.shapes, self.codec)
        object.__setattr__(self, "shapes", dict(self.shapes))
        object.__setattr__(self, "layouts", layouts)
        object.__setattr__(self, "layout_sha256", layout_digest(self.shapes))
        object.__setattr__(self, "codec_json", codec_json(self.codec))
        object.__setattr__(self, "max_gradient_bytes", _packet_byte_limit(layouts, self.codec))

    @classmethod
    def from_preset(cls, preset: Preset) -> CodecSpec:
        from subnet.model import param_shapes  # transformers is only needed to build a spec
        return cls(param_shapes(preset.model), preset.compression)

    def max_aggregate_bytes(self, parts: int) -> int:
        return 8 + AGGREGATE_MAX_HEADER_BYTES + parts * self.max_gradient_bytes

    @property
    def dense_fp32_bytes(self) -> int:
        return 4 * sum(layout.numel for layout in self.layouts.values())
