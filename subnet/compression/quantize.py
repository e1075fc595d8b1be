"""Few-bit quantisation of the kept values with a per-tensor lookup table.

Top-k values are large in magnitude and of either sign, so the code is one sign bit plus
(bits - 1) bits of magnitude level, the levels split at quantiles of |v|. Each code decodes to the
mean of the values that got it (a per-tensor table of 2**bits floats), which is the least-squares
reconstruction for that partition. Decoding is a table lookup, so it is exact and cheap.
"""
from __future__ import annotations

import torch


def quantize_values(values: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """values (n,) float -> (codes (n,) uint8 in [0, 2**bits), table (2**bits,) float32)."""
    levels = 1 << (bits - 1)
    v = values.reshape(-1).float()
    magnitude = v.abs()
    if levels > 1 and v.numel():
        sorted_mag = torch.sort(magnitude).values
        cut_positions = torch.tensor([(j * v.numel()) // levels for j in range(1, levels)])
        cuts = sorted_mag[cut_positions]
        level = torch.bucketize(magnitude, cuts, right=True)
    else:
        level = torch.zeros_like(v, dtype=torch.int64)
    codes = level + levels * (v >= 0).long()
    sums = torch.zeros(2 * levels, dtype=torch.float64).index_add_(0, codes, v.double())
    counts = torch.bincount(codes, minlength=2 * levels).double()
    table = (sums / counts.clamp(min=1)).float()
    return codes.to(torch.uint8), table
