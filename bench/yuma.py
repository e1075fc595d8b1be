"""Time one Yuma epoch for a few network sizes (no assertions; prints ms per call).

Run: .venv/bin/python bench/yuma.py
"""

from __future__ import annotations

import time

import numpy as np

from subnet.chain.yuma import LiquidAlpha, yuma


def time_epoch(n: int, repeats: int, **options) -> float:
    rng = np.random.default_rng(0)
    stake = rng.random(n)
    weights = rng.random((n, n)) * (rng.random((n, n)) < 0.3)
    bonds = rng.random((n, n))
    yuma(stake, weights, bonds, **options)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        yuma(stake, weights, bonds, **options)
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    for n in (64, 256, 1024):
        repeats = 50 if n <= 256 else 5
        classic = time_epoch(n, repeats)
        yuma3 = time_epoch(n, repeats, yuma3=True, liquid_alpha=LiquidAlpha())
        print(f"n={n:5d}  classic {classic:7.2f} ms   yuma3+liquid alpha {yuma3:7.2f} ms")


if __name__ == "__main__":
    main()
