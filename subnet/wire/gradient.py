"""A miner's gradient object: ``gradient-{window}-{uid}.safetensors`` in the miner's bucket.

The codec packet (subnet/compression/codec.py) plus metadata kind/window/uid/hotkey/base_model_hash,
signed by the miner's hotkey. A reader must state what it expects (`GradientExpectation`: window,
uid, hotkey, base model, norm bound); there is no way to decode one with a check left out.

Decoding goes cheapest first and touches no model memory until every check passed: byte limit,
header, canonical form, signature, metadata against the expectation, the codec's header and stream
checks, the norm bound (computed from the tables and code counts, no scatter), and exactly k
in-range indices per chunk. Every rejection is a `WireError` with a short `reason` code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from subnet.compression.codec import (
    CodecError,
    Packet,
    check_packet_header,
    decode_packet_codes,
    decode_packet_indices,
    packet_from_header,
    packet_norm,
    packet_to_bytes,
    reconstruct_all,
)
from subnet.compression.spec import PACKET_MAX_HEADER_BYTES, CodecSpec
from subnet.hashing import is_hex64, sha256_hex
from subnet.keys import Keypair
from subnet.wire.signing import WIRE_VERSION, WireError, sign_json, sign_safetensors, verify_safetensors

_MAX_UINT_DIGITS = 18


def check_norm_bound(bound: float) -> None:
    if bound != bound:  # NaN would make every bound check pass
        raise ValueError("norm_bound must not be NaN")


@dataclass(frozen=True)
class GradientExpectation:
    """What the reader knows an upload must be; every field is required."""
    window: int
    uid: int
    hotkey: str
    base_model_hash: str
    norm_bound: float          # math.inf only where the caller has decided there is no bound

    def __post_init__(self):
        check_norm_bound(self.norm_bound)


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
        return reconstruct_all(self.packet, self.indices, self.codes)


def encode_gradient(packet: Packet, keypair: Keypair, window: int, uid: int, base_model_hash: str) -> bytes:
    if not is_hex64(base_model_hash):
        raise ValueError("base_model_hash must be 64 lowercase hex digits")
    metadata = {"wire_format": WIRE_VERSION, "kind": "gradient", "window": str(int(window)),
                "uid": str(int(uid)), "base_model_hash": base_model_hash}
    return sign_safetensors(packet_to_bytes(packet), keypair, metadata)


def encode_intent(gradient: bytes, keypair: Keypair, window: int, uid: int) -> bytes:
    """The signed note of a gradient's sha256 a miner stores a second before the gradient itself
    (`names.gradient_intent_key`; why: docs/neurons.md)."""
    return sign_json({"wire_format": WIRE_VERSION, "kind": "gradient_intent", "window": int(window),
                      "uid": int(uid), "gradient_sha256": sha256_hex(gradient)}, keypair)


def uint_field(metadata: dict, key: str) -> int:
    value = metadata.get(key)
    if (not isinstance(value, str) or not value.isascii() or not value.isdigit()
            or len(value) > _MAX_UINT_DIGITS or (len(value) > 1 and value[0] == "0")):
        raise WireError("bad_metadata", f"metadata {key!r} must be a non-negative decimal integer")
    return int(value)


def check_kind(metadata: dict, kind: str) -> None:
    if metadata.get("wire_format") != WIRE_VERSION:
        raise WireError("wrong_version", f"wire_format {metadata.get('wire_format')!r}, expected {WIRE_VERSION!r}")
    if metadata.get("kind") != kind:
        raise WireError("wrong_kind", f"kind {metadata.get('kind')!r}, expected {kind!r}")


def decode_gradient(data: bytes, spec: CodecSpec, expect: GradientExpectation) -> Gradient:
    """Check a gradient object completely and return it unscattered; ``Gradient.dense()`` scatters."""
    data = bytes(data)
    signed = verify_safetensors(data, spec.max_gradient_bytes, PACKET_MAX_HEADER_BYTES, expect.hotkey)
    metadata = signed.metadata
    check_kind(metadata, "gradient")
    got_window, got_uid = uint_field(metadata, "window"), uint_field(metadata, "uid")
    got_base = metadata.get("base_model_hash", "")
    if not is_hex64(got_base):
        raise WireError("bad_metadata", "base_model_hash must be 64 lowercase hex digits")
    if got_window != expect.window:
        raise WireError("wrong_window", f"object is for window {got_window}, expected {expect.window}")
    if got_uid != expect.uid:
        raise WireError("wrong_uid", f"object is for uid {got_uid}, expected {expect.uid}")
    if got_base != expect.base_model_hash:
        raise WireError("wrong_base_model",
                        f"made against model {got_base[:16]}..., expected {expect.base_model_hash[:16]}...")
    try:
        check_packet_header(signed.parsed, spec)
        packet = packet_from_header(data, signed.parsed, spec)
        codes = decode_packet_codes(packet)
    except CodecError as exc:
        raise WireError(exc.reason, exc.detail) from None
    norm = packet_norm(packet, codes)
    if not math.isfinite(norm):
        raise WireError("non_finite", "update norm is not finite")
    if norm > expect.norm_bound:
        raise WireError("norm_bound", f"update norm {norm:.4g} exceeds the bound {expect.norm_bound:.4g}")
    try:
        indices = decode_packet_indices(packet)
    except CodecError as exc:
        raise WireError(exc.reason, exc.detail) from None
    return Gradient(window=got_window, uid=got_uid, hotkey=signed.hotkey, base_model_hash=got_base,
                    sha256=signed.sha256, norm=norm, packet=packet, indices=indices, codes=codes)
