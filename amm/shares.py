"""How the block's TAO emission is split across subnets, for each selectable model.

Models (see docs/amm.md and ../shared/research/dtao.md §3 for sources):

* ``launch``  - dTAO launch, Feb 2025 (subtensor e2b8367b8 / f95810a25, `stake_utils.rs`
  `update_moving_price`): share_i = EMA price_i / sum EMA price, EMA factor a constant
  `SubnetMovingAlpha` (3e-6), spot price capped at 1 before it enters the EMA.
* ``flow``    - TAO flow, Nov 2025 - Jun 2026 (PRs #2160/#2161/#2171, `subnet_emissions.rs`
  `get_shares_flow`): S_i <- (1-f) S_i + f F_i with F_i the net user TAO staked this block and
  f = 29,597,889,189,277 / 2^63 (30-day half-life); shares proportional to S_i shifted by the most
  negative S (so the worst subnet gets 0). If every shifted value is 0 (e.g. at the start) the split
  is equal, so a fresh network still emits.
* ``current`` - price EMA again since Jun 2026 (PR #2779): as launch but the EMA factor warms up as
  a * b / (b + h), b = blocks since the subnet started, h = `EMAPriceHalvingBlocks` (201,600).
  The (1 - MinerBurned) weighting is an epoch (Yuma) quantity and is left to the chain.

Shares are floats (subtensor uses fixed point); TAO amounts derived from them are floored to rao.
The same functions serve the exact per-block path and, written as the same IEEE operations in the
same order, the vectorised simulator, so the two agree bit for bit on these floats.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

MODELS = ("launch", "flow", "current")


def check_model(model: str) -> str:
    if model not in MODELS:
        raise ValueError(f"unknown emission model {model!r}; choose one of {', '.join(MODELS)}")
    return model


def moving_price_factor(moving_alpha: float, blocks_since_start: int, halving_blocks: int) -> float:
    """EMA factor of the `current` model: moving_alpha * b / (b + h)."""
    b = float(blocks_since_start)
    return moving_alpha * b / (b + float(halving_blocks))


def update_moving_price(ema: float, spot_price: float, factor: float, cap: float = 1.0) -> float:
    """One EMA step of the subnet's moving price; the spot price is capped (at 1 TAO) first."""
    capped = min(spot_price, cap)
    return factor * capped + (1.0 - factor) * ema


def update_flow_ema(ema: float, flow: float, factor: float) -> float:
    """One EMA step of net TAO flow (rao per block)."""
    return factor * flow + (1.0 - factor) * ema


def price_weights(emas: Sequence[float], eligible: Sequence[bool]) -> np.ndarray:
    """Share weights of the price models: the EMA price of each eligible subnet, 0 otherwise."""
    return np.asarray(emas, dtype=np.float64) * np.asarray(eligible, dtype=np.float64)


def flow_weights(flow_emas: Sequence[float], eligible: Sequence[bool]) -> np.ndarray:
    """Share weights of the flow model: flow EMA shifted by the most negative eligible one."""
    s = np.asarray(flow_emas, dtype=np.float64)
    mask = np.asarray(eligible, dtype=bool)
    if not mask.any():
        return np.zeros_like(s)
    lowest = min(float(s[mask].min()), 0.0)
    z = np.maximum(s - lowest, 0.0) * mask
    if not z.sum() > 0.0:
        z = mask.astype(np.float64)  # nothing to rank on yet: split equally
    return z


def shares(weights: Sequence[float]) -> np.ndarray:
    """Normalise weights to shares summing to 1 (all zero if every weight is zero)."""
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if total <= 0.0:
        return np.zeros_like(w)
    return w / total


def split_emission(block_emission: int, weights: Sequence[float]) -> list[int]:
    """TAO emission per subnet: floor(E * w_i / sum w), in rao. The floors leave a few rao of the
    block unissued (they are never minted, so issuance stays exact)."""
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if total <= 0.0 or block_emission <= 0:
        return [0] * len(w)
    e = float(block_emission)
    return [int(math.floor(e * float(x) / total)) for x in w]
