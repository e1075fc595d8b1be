"""Run as a separate process by test_window.py: build window-7 gradients from fixed seeds, aggregate
them with `aggregate_result`, print the result hash. Usage: python window_job.py THREADS."""
from __future__ import annotations

import sys

import torch

from subnet.compression.spec import CodecSpec
from subnet.config import load_preset
from subnet.keys import Keypair
from subnet.model import build_model, get_params, model_hash
from subnet.protocol.window import aggregate_result, compress_update
from subnet.wire.gradient import GradientExpectation, decode_gradient, encode_gradient


def window_gradients(preset, theta, count=3):
    spec = CodecSpec({n: tuple(t.shape) for n, t in theta.items()}, preset.compression)
    base = model_hash(theta)
    out = []
    for uid in range(count):
        generator = torch.Generator().manual_seed(100 + uid)
        delta = {n: (1e-2 * (uid + 1)) * torch.randn(t.shape, generator=generator) for n, t in theta.items()}
        zeros = {n: torch.zeros_like(t) for n, t in theta.items()}
        _, packet = compress_update(zeros, delta, preset.compression)
        key = Keypair.from_seed(bytes([uid + 1]) * 32)
        data = encode_gradient(packet, key, 7, uid, base)
        out.append(decode_gradient(data, spec, GradientExpectation(7, uid, key.address, base, float("inf"))))
    return out


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]))
    preset = load_preset("tiny")
    theta = get_params(build_model(preset.model, preset.seed))
    print(model_hash(aggregate_result(theta, window_gradients(preset, theta), preset.outer.lr)))


if __name__ == "__main__":
    main()
