"""Block emission: the halving curve (subtensor `coinbase/block_emission.rs`).

    E(I) = 1 TAO * 2^-k,   k = floor(log2(1 / (1 - I / 21M)))

so 1 TAO per block until issuance I reaches 10.5M TAO, 0.5 until 15.75M, 0.25 until 18.375M, ...
and 0 once I reaches 21M. The same curve applied to a subnet's alpha issuance (alpha in the pool
plus alpha outstanding) gives that subnet's alpha emission per block.

Everything here is exact integer arithmetic: r * 2^j <= S  <=>  r <= floor(S / 2^j) for integers.
"""

from __future__ import annotations

import numpy as np

from amm.units import RAO_PER_TAO, TOTAL_SUPPLY_RAO


def halvings(issuance: int, total_supply: int = TOTAL_SUPPLY_RAO) -> int | None:
    """Number of halvings so far (k above), or None once the supply is exhausted."""
    if issuance < 0:
        raise ValueError(f"issuance must be >= 0, got {issuance}")
    remaining = total_supply - issuance
    if remaining <= 0:
        return None
    k = 0
    while remaining <= total_supply >> (k + 1):
        k += 1
    return k


def block_emission(total_issuance: int, total_supply: int = TOTAL_SUPPLY_RAO,
                   base: int = RAO_PER_TAO) -> int:
    """Rao emitted by one block when `total_issuance` rao have been issued."""
    k = halvings(total_issuance, total_supply)
    if k is None:
        return 0
    return base >> k


def next_halving_issuance(total_issuance: int, total_supply: int = TOTAL_SUPPLY_RAO) -> int:
    """Issuance at which the block emission next changes (the supply cap once exhausted)."""
    k = halvings(total_issuance, total_supply)
    if k is None:
        return total_supply
    return total_supply - (total_supply >> (k + 1))


def _halvings_array(remaining: np.ndarray, total_supply: int) -> np.ndarray:
    """Halvings so far per entry: the number of j >= 1 with remaining <= total_supply >> j."""
    k = np.zeros(remaining.shape, dtype=np.int64)
    for j in range(1, 64):
        threshold = total_supply >> j
        if threshold == 0:
            break
        k += remaining <= threshold
    return k


def block_emission_array(issuance: np.ndarray, total_supply: int = TOTAL_SUPPLY_RAO,
                         base: int = RAO_PER_TAO) -> np.ndarray:
    """`block_emission` over an array of issuances (int64 or whole-rao float64), as int64."""
    remaining = total_supply - np.asarray(issuance, dtype=np.int64)
    k = _halvings_array(remaining, total_supply)
    emission = np.right_shift(np.int64(base), np.minimum(k, 62))
    return np.where(remaining > 0, emission, 0).astype(np.int64)


def next_halving_issuance_array(issuance: np.ndarray, total_supply: int = TOTAL_SUPPLY_RAO) -> np.ndarray:
    remaining = total_supply - np.asarray(issuance, dtype=np.int64)
    k = _halvings_array(remaining, total_supply)
    nxt = total_supply - np.right_shift(np.int64(total_supply), np.minimum(k + 1, 62))
    return np.where(remaining > 0, nxt, total_supply).astype(np.int64)


def emission_step_array(issuance: np.ndarray, total_supply: int = TOTAL_SUPPLY_RAO,
                        base: int = RAO_PER_TAO) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(emission, lower, upper) per issuance: the emission holds while lower <= issuance < upper,
    so a caller only has to recompute it when issuance leaves that interval."""
    issuance = np.asarray(issuance, dtype=np.int64)
    remaining = total_supply - issuance
    k = _halvings_array(remaining, total_supply)
    k = np.minimum(k, 62)
    exhausted = remaining <= 0
    emission = np.where(exhausted, 0, np.right_shift(np.int64(base), k))
    lower = np.where(k > 0, total_supply - np.right_shift(np.int64(total_supply), k), 0)
    upper = total_supply - np.right_shift(np.int64(total_supply), k + 1)
    lower = np.where(exhausted, total_supply, lower)
    upper = np.where(exhausted, np.iinfo(np.int64).max, upper)
    return emission.astype(np.int64), lower.astype(np.int64), upper.astype(np.int64)
