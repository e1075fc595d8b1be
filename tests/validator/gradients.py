"""Signed, decoded `Gradient` objects for the validator tests, made the way a miner makes them."""
from __future__ import annotations

import torch

from subnet.compression.codec import encode_tensors
from subnet.compression.spec import CodecSpec
from subnet.config import Preset
from subnet.keys import Keypair
from subnet.model import build_model, get_params
from subnet.wire.gradient import Gradient, GradientExpectation, decode_gradient, encode_gradient

WINDOW = 7
BASE_MODEL_HASH = "ab" * 32


def tiny_shapes(preset: Preset) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in get_params(build_model(preset.model, preset.seed)).items()}


def random_update(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=generator) for name, shape in shapes.items()}


def signed_gradient(preset: Preset, update: dict[str, torch.Tensor], uid: int) -> Gradient:
    """`update` compressed, signed by uid's key and decoded with every check, as a validator sees it."""
    shapes = {name: tuple(t.shape) for name, t in update.items()}
    packet, _ = encode_tensors(update, preset.compression)
    key = Keypair.from_seed(bytes([uid + 1]) * 32)
    data = encode_gradient(packet, key, WINDOW, uid, BASE_MODEL_HASH)
    spec = CodecSpec(shapes, preset.compression)
    return decode_gradient(data, spec, GradientExpectation(WINDOW, uid, key.address, BASE_MODEL_HASH, float("inf")))
