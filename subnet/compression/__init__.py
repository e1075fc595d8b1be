"""SparseLoCo-style compression of pseudo-gradients.

chunking.py    how a tensor is cut into chunks (2-D tiles, 1-D chunks)
dct.py         optional orthonormal DCT-II per chunk (DeMo)
index_code.py  Rice code of sorted per-chunk index gaps, and the log2 C(n, k) floor
quantize.py    few-bit values: sign + magnitude quantile bins, per-tensor lookup table
spec.py        CodecSpec: shapes, codec, layouts, layout digest and byte limits, built once
codec.py       encode/decode of a whole pseudo-gradient; safetensors packet; error feedback
"""
from subnet.compression.spec import CodecSpec
from subnet.compression.codec import (
    CodecError,
    CompressStats,
    Packet,
    compress_with_feedback,
    decode_packet,
    encode_tensors,
    packet_from_bytes,
    packet_to_bytes,
)

__all__ = [
    "CodecError",
    "CodecSpec",
    "CompressStats",
    "Packet",
    "compress_with_feedback",
    "decode_packet",
    "encode_tensors",
    "packet_from_bytes",
    "packet_to_bytes",
]
