"""Who leads, whose uploads are aggregated, whom to evaluate, and the weights set on chain.

Lead order and peer selection must come out equal on every validator that holds equal inputs, so
they are total orders with explicit tie-breaks (lower uid first). Evaluation picks are the opposite:
drawn from the validator's own secret randomness, so a miner cannot know when it is being watched.
"""
from __future__ import annotations

import math

import numpy as np

from subnet.config import ProtocolConfig
from validator.ratings import Ratings

U16_MAX = 65535
# A never-evaluated miner weighs this many times the longest-waiting evaluated one: it has no
# rating yet, so measuring it is worth more than re-measuring anyone (relative, so it stays "large"
# whatever the window numbers are).
NEWCOMER_PICK_FACTOR = 10.0


def _excluded(ratings: Ratings, uid: int, protocol: ProtocolConfig) -> bool:
    record = ratings.records.get(uid)
    return record is not None and record.consecutive_negative >= protocol.negative_exclusion


def _is_newcomer(ratings: Ratings, uid: int) -> bool:
    record = ratings.records.get(uid)
    return record is None or record.evaluations == 0


def select_peers(valid: list[int], ratings: Ratings, protocol: ProtocolConfig) -> list[int]:
    """The uploads aggregated this window: top-G valid ones by ordinal, with `newcomer_slots` of the
    G kept for unrated miners (else no newcomer could ever earn the rating that gets it in), minus
    miners on a negative streak. Sorted by uid: the order the aggregate applies them in."""
    size = protocol.peers_per_window
    eligible = sorted({uid for uid in valid if not _excluded(ratings, uid, protocol)})
    newcomers = [uid for uid in eligible if _is_newcomer(ratings, uid)]
    rated = sorted((uid for uid in eligible if not _is_newcomer(ratings, uid)),
                   key=lambda uid: (-ratings.ordinal(uid), uid))
    reserved = newcomers[:min(protocol.newcomer_slots, size)]
    best_rated = rated[:size - len(reserved)]
    # Slots the rated miners could not fill: more newcomers, lowest uid first.
    more = newcomers[len(reserved):][:size - len(reserved) - len(best_rated)]
    return sorted(reserved + best_rated + more)


def evaluation_picks(candidates: list[int], ratings: Ratings, window: int, count: int,
                     rng: np.random.Generator) -> list[int]:
    """`count` distinct miners to evaluate, drawn without replacement with weight = windows since
    each was last evaluated (never evaluated: NEWCOMER_PICK_FACTOR x the largest), in draw order."""
    pool = sorted(set(candidates))
    if count <= 0 or not pool:
        return []
    waits = []
    for uid in pool:
        record = ratings.records.get(uid)
        last = None if record is None else record.last_evaluated
        waits.append(None if last is None else max(1, window - last))
    longest = max((w for w in waits if w is not None), default=1)
    weights = np.array([NEWCOMER_PICK_FACTOR * longest if w is None else w for w in waits], dtype=np.float64)
    picks = rng.choice(len(pool), size=min(count, len(pool)), replace=False, p=weights / weights.sum())
    return [pool[int(i)] for i in picks]


def rank_ramp_weights(final_scores: dict[int, float], top_g: int, ramp: float, owner_uid: int) -> dict[int, float]:
    """Weights for the top-G miners with a positive final score, linear from `ramp` (best) down to 1
    (G-th), summing to 1; all to `owner_uid` when nobody qualifies (the burn, as Templar's)."""
    qualified = [(score, uid) for uid, score in final_scores.items() if math.isfinite(score) and score > 0]
    top = [uid for score, uid in sorted(qualified, key=lambda pair: (-pair[0], pair[1]))][:top_g]
    if not top:
        return {owner_uid: 1.0}
    if len(top) == 1:
        return {top[0]: 1.0}
    step = (ramp - 1.0) / (len(top) - 1)
    raw = [ramp - step * position for position in range(len(top))]
    total = sum(raw)
    return {uid: value / total for uid, value in zip(top, raw)}


def to_u16_weights(weights: dict[int, float]) -> tuple[list[int], list[int]]:
    """Chain form: uids ascending and integer u16 values proportional to the weights, the largest
    65535 (set_weights refuses an all-zero vector, so so does this)."""
    uids = sorted(weights)
    values = [weights[uid] for uid in uids]
    if not values or any(not math.isfinite(v) or v < 0 for v in values) or max(values) <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all zero: {weights!r}")
    top = max(values)
    return uids, [int(round(v / top * U16_MAX)) for v in values]
