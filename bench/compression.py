#!/usr/bin/env python3
"""Compression figures per preset: ratio, index bits vs the floor, encode+decode throughput.

For each preset, a pseudo-gradient with the preset's parameter shapes (Gaussian, a different scale per
tensor) goes through the full wire path: encode -> safetensors bytes -> parse/validate -> decode.
ratio = dense fp32 bytes / whole packet bytes (header included). Timing is the best of --repeat runs.

  python bench/compression.py [--presets tiny,small,base150m] [--repeat 3] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from subnet.compression.codec import (  # noqa: E402
    decode_packet,
    encode_tensors,
    packet_from_bytes,
    packet_stats,
    packet_to_bytes,
)
from subnet.compression.spec import CodecSpec  # noqa: E402
from subnet.config import load_preset  # noqa: E402
from subnet.model import param_shapes  # noqa: E402


def pseudo_gradient(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for i, (name, shape) in enumerate(shapes.items()):
        scale = 10 ** (-3 + 2 * torch.rand((), generator=gen).item())
        out[name] = torch.randn(shape, generator=gen) * scale
    return out


def bench_preset(name: str, repeat: int) -> dict:
    preset = load_preset(name)
    shapes = param_shapes(preset.model)
    grad = pseudo_gradient(shapes, preset.seed)
    params = sum(t.numel() for t in grad.values())
    best_enc = best_dec = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        packet, transmitted = encode_tensors(grad, preset.compression)
        wire = packet_to_bytes(packet)
        t1 = time.perf_counter()
        decoded = decode_packet(packet_from_bytes(wire, CodecSpec(shapes, preset.compression)))
        t2 = time.perf_counter()
        best_enc, best_dec = min(best_enc, t1 - t0), min(best_dec, t2 - t1)
    exact = all(torch.equal(decoded[n], transmitted[n]) for n in shapes)
    stats = packet_stats(packet, len(wire))
    return {
        "parameters": params,
        "packet_bytes": len(wire),
        "ratio": stats.ratio,
        "index_bits_per_value": stats.index_bits_per_value,
        "index_bits_floor": stats.index_floor_bits_per_value,
        "index_overhead_pct": (stats.index_bits_per_value / stats.index_floor_bits_per_value - 1) * 100,
        "density": stats.kept_values / params,
        "encode_s": best_enc,
        "decode_s": best_dec,
        "params_per_s": params / (best_enc + best_dec),
        "decode_exact": exact,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="tiny,small,base150m")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    header = (f"{'preset':<10} {'params':>12} {'packet B':>11} {'ratio':>8} {'idx bits':>9} {'floor':>7} "
              f"{'over':>6} {'enc s':>7} {'dec s':>7} {'Mparam/s':>9} exact")
    print(header)
    results = {}
    for name in args.presets.split(","):
        r = bench_preset(name, args.repeat)
        results[name] = r
        print(f"{name:<10} {r['parameters']:>12,} {r['packet_bytes']:>11,} {r['ratio']:>7.1f}x "
              f"{r['index_bits_per_value']:>9.3f} {r['index_bits_floor']:>7.3f} {r['index_overhead_pct']:>5.1f}% "
              f"{r['encode_s']:>7.3f} {r['decode_s']:>7.3f} {r['params_per_s'] / 1e6:>9.1f} {r['decode_exact']}")
    if args.json:
        args.json.write_text(json.dumps({"presets": results}, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
