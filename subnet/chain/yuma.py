"""Yuma consensus: one epoch of subtensor's incentive maths, in dense float64 numpy.

Follows ``pallets/subtensor/src/epoch/run_epoch.rs::epoch_mechanism`` (see
docs/yuma.md for the equations and the test vectors). Pure functions only: the chain shell decides
who is active, holds permits or registered recently, and stores the bonds.

Conventions
-----------
* ``n`` neurons (uids ``0..n-1``); ``weights[i, j]`` is what validator ``i`` set
  for neuron ``j`` (row = validator, column = miner), any non-negative scale.
* ``stake[i]`` is the stake that counts this epoch. The caller zeroes inactive
  uids (``active_stake`` does that and the permit mask); ``yuma`` normalises it
  and also zeroes rows without a validator permit when ``validator_permit`` is given.
* Classic bonds are accepted in any non-negative scale (subtensor feeds its u16
  column-max-upscaled storage straight in) and are column-normalised first.
  Yuma3 bonds are proportions in [0, 1] (``u16 / 65535``). The caller zeroes the
  bond columns of uids registered since the last epoch (subtensor's outdated mask),
  and weights set before the target's registration.
* Zero columns/rows stay zero under normalisation, as in subtensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

U16_MAX = 65535

# Cumulative stake within this much of the minority boundary counts as equal to it.
# Subtensor's I32F32 arithmetic is exact on decimal test stakes where float64 is not;
# 1e-12 is far above float64 summation noise and far below any real stake step.
_MEDIAN_TOLERANCE = 1e-12


@dataclass(frozen=True)
class LiquidAlpha:
    """Per-entry bond EMA rate (subtensor ``alpha_sigmoid``); only used with Yuma3.

    alpha = low + (high - low) * sigmoid((steepness / 100) * (d - 0.5)), where d is
    how far the validator is ahead of consensus when buying (w >= b: w - c) or how far
    it is selling (w < b: b - w), each clamped to [0, 1].
    """

    low: float = 0.7
    high: float = 0.9
    steepness: float = 1000.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise ValueError(f"liquid alpha needs 0 <= low <= high <= 1, got {self.low}, {self.high}")


@dataclass(frozen=True)
class YumaResult:
    """One epoch's outputs; all arrays are read-only float64.

    consensus:       (n,) stake-weighted median of each column at kappa.
    incentive:       (n,) normalised rank (miners' share).
    dividends:       (n,) normalised validator share.
    bonds:           (n, n) new bonds. Classic: column-normalised EMA bonds (store with
                     ``bonds_to_u16`` for subtensor's column-max u16 form). Yuma3: bond
                     proportions in [0, 1] (store with ``proportion_to_u16``).
    validator_trust: (n,) row sums of the clipped weights.
    rank:            (n,) clipped_weights^T . active_stake before normalisation.
    weights:         (n, n) masked, row-normalised weights.
    clipped_weights: (n, n) weights clipped to consensus.
    active_stake:    (n,) normalised stake that took part.
    bond_alpha:      (n, n) EMA rate used for each bond entry.
    """

    consensus: np.ndarray
    incentive: np.ndarray
    dividends: np.ndarray
    bonds: np.ndarray
    validator_trust: np.ndarray
    rank: np.ndarray
    weights: np.ndarray
    clipped_weights: np.ndarray
    active_stake: np.ndarray
    bond_alpha: np.ndarray


def normalize(vector: np.ndarray) -> np.ndarray:
    """Scale to sum 1; an all-zero vector stays zero."""
    total = vector.sum()
    return vector / total if total > 0 else np.zeros_like(vector)


def row_normalize(matrix: np.ndarray) -> np.ndarray:
    sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)


def col_normalize(matrix: np.ndarray) -> np.ndarray:
    sums = matrix.sum(axis=0, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)


def col_max_upscale(matrix: np.ndarray) -> np.ndarray:
    maxes = matrix.max(axis=0, keepdims=True) if matrix.size else np.zeros((1, matrix.shape[1]))
    return np.divide(matrix, maxes, out=np.zeros_like(matrix), where=maxes > 0)


def proportion_to_u16(values: np.ndarray) -> np.ndarray:
    """[0, 1] -> u16 the way subtensor stores proportions (floor of x * 65535)."""
    return np.floor(np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * U16_MAX).astype(np.uint16)


def u16_to_proportion(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64) / U16_MAX


def bonds_to_u16(bonds: np.ndarray) -> np.ndarray:
    """Classic bonds as subtensor stores them: each column max-upscaled to 65535."""
    return proportion_to_u16(col_max_upscale(np.asarray(bonds, dtype=np.float64)))


def active_stake(
    stake: np.ndarray,
    validator_permit: np.ndarray | None = None,
    active: np.ndarray | None = None,
) -> np.ndarray:
    """Normalised stake of active, permitted validators (subtensor's ``active_stake``)."""
    masked = np.asarray(stake, dtype=np.float64).copy()
    if validator_permit is not None:
        masked[~np.asarray(validator_permit, dtype=bool)] = 0.0
    if active is not None:
        masked[~np.asarray(active, dtype=bool)] = 0.0
    return normalize(masked)


def weighted_median_col(stake: np.ndarray, score: np.ndarray, majority: float) -> np.ndarray:
    """Stake-weighted median of each column of ``score`` (rows weighted by ``stake``).

    Only rows with positive stake vote; their stake is renormalised. A column's median
    is the smallest score v whose voters at or below v hold more than
    ``1 - majority`` of the stake, i.e. stake(score < v) <= 1 - majority < stake(score <= v).
    That is the value subtensor's pivot search (``weighted_median``) converges to; if
    no value qualifies (majority <= 0) it is the column maximum. Vectorised: one sort
    per column, no Python loop.
    """
    stake = np.asarray(stake, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    columns = score.shape[1]
    voters = stake > 0
    if not voters.any() or columns == 0:
        return np.zeros(columns)
    voter_stake = normalize(stake[voters])
    voter_score = score[voters]
    order = np.argsort(voter_score, axis=0, kind="stable")
    sorted_score = np.take_along_axis(voter_score, order, axis=0)
    cumulative = np.cumsum(voter_stake[order], axis=0)
    minority = cumulative[-1] - majority
    exceeds = cumulative > minority + _MEDIAN_TOLERANCE
    first = np.where(exceeds.any(axis=0), exceeds.argmax(axis=0), len(voter_stake) - 1)
    return sorted_score[first, np.arange(columns)]


def weighted_median(stake: np.ndarray, score: np.ndarray, majority: float) -> float:
    """Stake-weighted median of one score vector; see ``weighted_median_col``."""
    score = np.asarray(score, dtype=np.float64)
    if score.size == 0:
        return 0.0
    return float(weighted_median_col(stake, score[:, None], majority)[0])


def liquid_alpha_matrix(
    weights: np.ndarray, bonds: np.ndarray, consensus: np.ndarray, params: LiquidAlpha
) -> np.ndarray:
    """Per-entry EMA rate in [low, high] (subtensor ``compute_liquid_alpha_values``)."""
    buying = np.clip(weights - consensus[None, :], 0.0, 1.0)
    selling = np.clip(bonds - weights, 0.0, 1.0)
    distance = np.where(weights >= bonds, buying, selling)
    sigmoid = 1.0 / (1.0 + np.exp(-(params.steepness / 100.0) * (distance - 0.5)))
    alpha = params.low + sigmoid * (params.high - params.low)
    return np.clip(alpha, params.low, params.high)


def yuma(
    stake: np.ndarray,
    weights: np.ndarray,
    bonds: np.ndarray,
    kappa: float = 0.5,
    bond_alpha: float = 0.1,
    bonds_penalty: float = 1.0,
    *,
    yuma3: bool = False,
    liquid_alpha: LiquidAlpha | None = None,
    validator_permit: np.ndarray | None = None,
    owner_uid: int | None = None,
) -> YumaResult:
    """Run one Yuma consensus epoch.

    stake:            (n,) stake per uid, inactive uids already zeroed; normalised here.
    weights:          (n, n) raw weights, row = validator, column = miner.
    bonds:            (n, n) previous bonds (classic: any scale; Yuma3: [0, 1]).
    kappa:            consensus majority (subtensor Kappa / 65535, default 0.5).
    bond_alpha:       bond EMA rate, 1 - BondsMovingAverage / 1e6 (default 0.1).
    bonds_penalty:    0 -> bonds follow raw weights, 1 -> clipped weights.
    yuma3:            per-validator bonds in [0, 1] instead of column-normalised ones.
    liquid_alpha:     per-entry EMA rate (Yuma3 only, as in subtensor).
    validator_permit: (n,) bool; rows without a permit lose their stake and weights.
    owner_uid:        subnet owner, whose self-weight survives the diagonal mask.
    """
    stake = np.asarray(stake, dtype=np.float64)
    raw_weights = np.asarray(weights, dtype=np.float64)
    old_bonds = np.asarray(bonds, dtype=np.float64)
    n = stake.shape[0]
    if stake.ndim != 1 or raw_weights.shape != (n, n) or old_bonds.shape != (n, n):
        raise ValueError(
            f"need stake (n,), weights (n, n), bonds (n, n); got {stake.shape}, "
            f"{raw_weights.shape}, {old_bonds.shape}"
        )
    if (stake < 0).any() or (raw_weights < 0).any() or (old_bonds < 0).any():
        raise ValueError("stake, weights and bonds must be non-negative")
    if liquid_alpha is not None and not yuma3:
        raise ValueError("liquid alpha only applies to Yuma3 bonds (as in subtensor)")

    permitted = (
        np.ones(n, dtype=bool) if validator_permit is None else np.asarray(validator_permit, dtype=bool)
    )
    stake_used = active_stake(stake, permitted)

    # Weights: drop rows without a permit, and self-weights (the owner may keep its own).
    masked = raw_weights.copy()
    masked[~permitted] = 0.0
    diagonal = np.arange(n)
    if owner_uid is not None:
        diagonal = diagonal[diagonal != owner_uid]
    masked[diagonal, diagonal] = 0.0
    weights_norm = row_normalize(masked)

    consensus = weighted_median_col(stake_used, weights_norm, kappa)
    clipped = np.minimum(weights_norm, consensus[None, :])
    validator_trust = clipped.sum(axis=1)
    rank = clipped.T @ stake_used
    incentive = normalize(rank)

    weights_for_bonds = weights_norm + bonds_penalty * (clipped - weights_norm)

    if yuma3:
        use_liquid = liquid_alpha is not None and bool((consensus != 0).any())
        if use_liquid:
            alpha = liquid_alpha_matrix(weights_for_bonds, old_bonds, consensus, liquid_alpha)
            new_bonds = np.minimum((1.0 - alpha) * old_bonds + np.maximum(alpha * weights_for_bonds, 0.0), 1.0)
        else:
            alpha = np.full((n, n), bond_alpha)
            new_bonds = bond_alpha * weights_for_bonds + (1.0 - bond_alpha) * old_bonds
        # A validator earns on each miner in proportion to its share of that miner's bonds,
        # scaled by its own stake.
        bonds_share = col_normalize(new_bonds)
        dividends = normalize((bonds_share @ incentive) * stake_used)
    else:
        alpha = np.full((n, n), bond_alpha)
        bonds_delta = col_normalize(weights_for_bonds * stake_used[:, None])
        new_bonds = col_normalize(bond_alpha * bonds_delta + (1.0 - bond_alpha) * col_normalize(old_bonds))
        dividends = normalize(new_bonds @ incentive)

    return YumaResult(
        consensus=_frozen(consensus),
        incentive=_frozen(incentive),
        dividends=_frozen(dividends),
        bonds=_frozen(new_bonds),
        validator_trust=_frozen(validator_trust),
        rank=_frozen(rank),
        weights=_frozen(weights_norm),
        clipped_weights=_frozen(clipped),
        active_stake=_frozen(stake_used),
        bond_alpha=_frozen(alpha),
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.float64)
    array.setflags(write=False)
    return array
