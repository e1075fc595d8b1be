"""Which samples each miner trains on in each window: a pure function of (seed, window, uid).

Window w draws a pseudo-random permutation P_w of all sample ids; uid u trains on positions
[u*m, (u+1)*m) of it, where m = samples per window, so different uids never share a sample. The
permutation is a keyed Feistel network with cycle-walking, evaluated only at the positions asked for,
so the cost is O(m) however large the dataset is, and any validator can recompute it.

The miner consumes its m samples in order, batch after batch, so every sample it is assigned is one
it trained on; `eval_subset` draws the validator's own-data probe from exactly that set.
"""
from __future__ import annotations

import hashlib

import numpy as np

_ROUNDS = 4
_MULT = np.uint64(0x9E3779B97F4A7C15)


def _round_keys(seed: int, window: int) -> list[np.uint64]:
    digest = hashlib.sha256(f"tessera-sampler:{seed}:{window}".encode()).digest()
    return [np.uint64(int.from_bytes(digest[8 * i: 8 * i + 8], "little")) for i in range(_ROUNDS)]


def _feistel(x: np.ndarray, half_bits: int, keys: list[np.uint64]) -> np.ndarray:
    mask = np.uint64((1 << half_bits) - 1)
    shift = np.uint64(half_bits)
    left, right = x >> shift, x & mask
    with np.errstate(over="ignore"):
        for key in keys:
            mixed = (right ^ key) * _MULT
            mixed ^= mixed >> np.uint64(29)
            left, right = right, left ^ (mixed & mask)
    return (left << shift) | right


def permute(positions: np.ndarray, domain: int, seed: int, window: int) -> np.ndarray:
    """P_w(positions): a bijection of [0, domain) keyed by (seed, window)."""
    if domain < 1:
        raise ValueError("domain must be >= 1")
    half_bits = max(1, -(-max(1, (domain - 1).bit_length()) // 2))
    keys = _round_keys(seed, window)
    out = _feistel(positions.astype(np.uint64), half_bits, keys)
    # Cycle-walk: re-apply until the value falls inside the domain (expected < 4 passes).
    outside = out >= np.uint64(domain)
    while outside.any():
        out[outside] = _feistel(out[outside], half_bits, keys)
        outside = out >= np.uint64(domain)
    return out.astype(np.int64)


def max_uids(num_samples: int, samples_per_window: int) -> int:
    return num_samples // samples_per_window


def assigned_samples(seed: int, window: int, uid: int, samples_per_window: int,
                     num_samples: int) -> np.ndarray:
    """The sample ids uid trains on in window, in training order (batch after batch)."""
    if uid < 0 or window < 0:
        raise ValueError(f"uid ({uid}) and window ({window}) must be >= 0")
    if (uid + 1) * samples_per_window > num_samples:
        raise ValueError(f"dataset of {num_samples} samples holds disjoint windows for "
                         f"{max_uids(num_samples, samples_per_window)} uids of {samples_per_window} samples; "
                         f"uid {uid} does not fit (prepare more data or lower batch_size x inner_steps)")
    positions = np.arange(uid * samples_per_window, (uid + 1) * samples_per_window, dtype=np.int64)
    return permute(positions, num_samples, seed, window)


def eval_subset(assigned: np.ndarray, count: int, validator_seed: int) -> np.ndarray:
    """A validator's probe of `count` samples drawn from those the miner trained on."""
    if count > assigned.size:
        raise ValueError(f"cannot draw {count} evaluation samples from {assigned.size} assigned")
    rng = np.random.default_rng(validator_seed)
    return assigned[rng.choice(assigned.size, size=count, replace=False)]
