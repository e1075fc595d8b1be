"""Scoring maths of one evaluation: relative improvement, proof of training, and its gate.

A validator measures a miner's update on version w twice: on samples the miner was assigned (own
data) and on a random batch it could not predict. The random-data relative improvement is the score;
"own data improved more than random data" is the proof-of-training signal (a miner that did not train
on its assignment has no reason to beat the random batch), averaged over evaluations.

Proof of training does not catch work done against another model: a miner that trains on its own
samples from the model of a few windows ago (declaring the current one) still beats the random
batch. What gives it away is size: measured on tiny (docs/neurons.md), an update made against the
model of 2 versions ago improves the current one by about 0.4x the window's median (bench/scoring.py),
1 version ago about half. So each evaluation is also compared with the window's median score ("at
par": at least `par_ratio` of it), averaged like the proof, and gated the same way.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# A loss that at least doubled is "destroyed" and all such updates rank equal; this also gives a
# non-finite loss after the step (the update blew the model up) a finite, worst-possible score.
WORST_IMPROVEMENT = -1.0


def relative_improvement(before: float, after: float) -> float:
    """(before - after) / before, floored at -1; 0 when `before` is not a positive finite loss
    (nothing to measure against: the validator's own measurement failed, not the miner)."""
    if not math.isfinite(before) or before <= 0:
        return 0.0
    if not math.isfinite(after):
        return WORST_IMPROVEMENT
    return max(WORST_IMPROVEMENT, (before - after) / before)


@dataclass(frozen=True)
class Evaluation:
    """Losses measured for one miner's update in one window."""
    uid: int
    hotkey: str
    own_before: float
    own_after: float
    random_before: float
    random_after: float

    @property
    def own_improvement(self) -> float:
        return relative_improvement(self.own_before, self.own_after)

    @property
    def score(self) -> float:
        """Relative improvement on the random batch: what the update does for everyone."""
        return relative_improvement(self.random_before, self.random_after)

    @property
    def proof(self) -> float:
        """1.0 if the update helps its own assigned data more than random data, else 0.0."""
        return 1.0 if self.own_improvement > self.score else 0.0


# Fewer evaluated miners than this in a window give no median to compare with (two miners: each
# would be judged against the pair's mean, half by itself).
PAR_MIN_EVALUATED = 3


def par_results(scores: dict[int, float], ratio: float) -> dict[int, float]:
    """{uid: 1.0 if its score >= ratio x the window's median score, else 0.0}. Empty (no judgement)
    with fewer than PAR_MIN_EVALUATED scores or a median <= 0: when the typical update does not help,
    the window (model state, batch) says nothing about who fell short."""
    if len(scores) < PAR_MIN_EVALUATED:
        return {}
    median = statistics.median(scores.values())
    if not math.isfinite(median) or median <= 0:
        return {}
    return {uid: 1.0 if score >= ratio * median else 0.0 for uid, score in scores.items()}


def update_pot_average(previous: float | None, proof: float, ema: float) -> float:
    """Exponential moving average of a 0/1 signal (proof of training, at par); the first starts it."""
    if previous is None:
        return float(proof)
    return (1.0 - ema) * previous + ema * proof


def pot_gate(average: float | None, evaluations: int, warmup: int, threshold: float) -> float:
    """Multiplier from the proof-of-training average: 1 during the warm-up (too few evaluations to
    judge, tplr #644), then the average itself, or 0 below `threshold`."""
    if evaluations < warmup:
        return 1.0
    if average is None or not math.isfinite(average):
        return 0.0
    return average if average >= threshold else 0.0
