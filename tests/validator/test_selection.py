import dataclasses

import numpy as np
import pytest

from subnet.config import load_preset
from validator.gauntlet import Evaluation
from validator.ratings import Ratings
from validator.selection import evaluation_picks, rank_ramp_weights, select_peers, to_u16_weights


@pytest.fixture
def protocol():
    return load_preset("tiny").protocol  # peers_per_window 4, newcomer_slots 1


def rated(protocol, scores: dict[int, float], newcomers=(), windows: int = 3) -> Ratings:
    """Ratings where `scores` miners have played `windows` matches with these scores; `newcomers` unrated."""
    ratings = Ratings(protocol)
    ratings.sync_hotkeys({uid: f"hk{uid}" for uid in [*scores, *newcomers]})
    for window in range(windows):
        evaluations = [Evaluation(uid, f"hk{uid}", 4.0, 4.0 * (1 - s - 0.01), 4.0, 4.0 * (1 - s))
                       for uid, s in scores.items()]
        ratings.record_window(window, {uid: "ok" for uid in ratings.records}, evaluations)
    return ratings


def test_select_peers_top_by_ordinal_with_newcomer_slot(protocol):
    ratings = rated(protocol, {1: 0.1, 2: 0.5, 3: 0.4, 4: 0.3, 5: 0.2}, newcomers=(9, 8))
    assert ratings.ordinal(2) > ratings.ordinal(3) > ratings.ordinal(4) > ratings.ordinal(5)
    # G = 4, one slot reserved: newcomer 8 (lowest uid) + the best three rated, sorted by uid.
    assert select_peers([1, 2, 3, 4, 5, 8, 9], ratings, protocol) == [2, 3, 4, 8]
    # Without newcomers the slot goes to the next rated miner.
    assert select_peers([1, 2, 3, 4, 5], ratings, protocol) == [2, 3, 4, 5]
    # Only uploads that are valid this window count.
    assert select_peers([1, 3, 9], ratings, protocol) == [1, 3, 9]
    # Too few rated: the remaining slots take more newcomers.
    assert select_peers([2, 8, 9], ratings, protocol) == [2, 8, 9]
    none_reserved = dataclasses.replace(protocol, newcomer_slots=0)
    assert select_peers([1, 2, 3, 4, 5, 8, 9], ratings, none_reserved) == [2, 3, 4, 5]


def test_select_peers_excludes_negative_streak_and_is_deterministic(protocol):
    ratings = rated(protocol, {1: 0.3, 2: -0.2, 3: 0.1, 4: 0.2}, windows=protocol.negative_exclusion)
    assert ratings.records[2].consecutive_negative >= protocol.negative_exclusion
    assert 2 not in select_peers([1, 2, 3, 4], ratings, protocol)
    # Another validator holding the same ratings, with inputs in another order, picks the same.
    twin = Ratings.from_json(ratings.to_json(), protocol)
    assert select_peers([4, 3, 2, 1, 1], twin, protocol) == select_peers([1, 2, 3, 4], ratings, protocol)
    # Equal ordinals: lower uid wins the last slot.
    equal = rated(protocol, {uid: 0.0 for uid in range(10, 16)}, windows=1)
    assert select_peers(list(range(10, 16)), equal, dataclasses.replace(protocol, newcomer_slots=0)) == [10, 11, 12, 13]


def test_evaluation_picks_prefers_long_unevaluated_and_never_repeats(protocol):
    ratings = Ratings(protocol)
    ratings.sync_hotkeys({uid: f"hk{uid}" for uid in range(1, 6)})
    for uid, last in {1: 99, 2: 99, 3: 99, 4: 90}.items():
        ratings.records[uid].last_evaluated = last
        ratings.records[uid].evaluations = 1
    # uid 5 never evaluated; window 100: waits are 1, 1, 1, 10 and newcomer 100.
    rng = np.random.default_rng(7)
    counts = np.zeros(6)
    for _ in range(2000):
        picks = evaluation_picks([1, 2, 3, 4, 5], ratings, 100, 2, rng)
        assert len(picks) == len(set(picks)) == 2
        counts[picks] += 1
    assert counts[5] > counts[4] > 3 * max(counts[1], counts[2], counts[3])
    assert counts[5] > 1900  # newcomer weight dominates
    all_picked = evaluation_picks([3, 1, 2, 2], ratings, 100, 10, np.random.default_rng(1))
    assert sorted(all_picked) == [1, 2, 3]
    assert evaluation_picks([], ratings, 100, 3, rng) == []


def test_evaluation_picks_follow_the_validators_own_rng(protocol):
    ratings = Ratings(protocol)
    ratings.sync_hotkeys({uid: f"hk{uid}" for uid in range(20)})
    draw = lambda seed: evaluation_picks(list(range(20)), ratings, 5, 4, np.random.default_rng(seed))
    assert draw(3) == draw(3)
    assert len({tuple(draw(seed)) for seed in range(10)}) > 1


def test_rank_ramp_ratio_and_owner_fallback():
    scores = {7: 3.0, 2: 5.0, 4: 1.0, 9: 0.0, 5: -1.0, 3: 1.0}
    weights = rank_ramp_weights(scores, top_g=3, ramp=2.0, owner_uid=0)
    assert list(weights) == [2, 7, 3]  # uid 3 beats uid 4 on the tie; 0 and negative never qualify
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights[2] / weights[3] == pytest.approx(2.0)
    assert weights[2] - weights[7] == pytest.approx(weights[7] - weights[3])  # linear
    ramp5 = rank_ramp_weights({uid: float(uid) for uid in range(1, 8)}, top_g=5, ramp=3.0, owner_uid=0)
    assert max(ramp5.values()) / min(ramp5.values()) == pytest.approx(3.0)
    assert set(ramp5) == {3, 4, 5, 6, 7}
    assert rank_ramp_weights({1: 0.0, 2: -3.0}, top_g=3, ramp=2.0, owner_uid=0) == {0: 1.0}
    assert rank_ramp_weights({}, top_g=3, ramp=2.0, owner_uid=4) == {4: 1.0}
    assert rank_ramp_weights({6: 0.5}, top_g=3, ramp=2.0, owner_uid=0) == {6: 1.0}


def test_to_u16_weights_proportional_integers():
    uids, values = to_u16_weights({9: 0.25, 1: 0.5, 4: 0.25})
    assert uids == [1, 4, 9]
    assert values == [65535, 32768, 32768]
    assert all(isinstance(v, int) for v in values)
    assert to_u16_weights({3: 1.0}) == ([3], [65535])
    for bad in ({}, {1: 0.0}, {1: -0.1, 2: 1.0}, {1: float("nan")}):
        with pytest.raises(ValueError):
            to_u16_weights(bad)
