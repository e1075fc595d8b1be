"""Yuma consensus against subtensor's own test vectors, plus behavioural properties.

Vectors come from opentensor/subtensor at commit 14bc6f9f964b9cc362e9635dd110a487fa5d15a0:
pallets/subtensor/src/tests/epoch.rs (test_bonds, test_yuma_3_kappa_moves_*) and
pallets/subtensor/src/tests/math.rs (test_math_weighted_median, test_math_weighted_median_col).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subnet.chain.yuma import (
    U16_MAX,
    LiquidAlpha,
    bonds_to_u16,
    proportion_to_u16,
    u16_to_proportion,
    weighted_median,
    weighted_median_col,
    yuma,
)

# ---------------------------------------------------------------------------
# epoch.rs::test_bonds — classic bonds, 8 uids, validators 0..3 with stake 1..4.
# Each step: (change to the weight matrix, column checked, expected u16 bonds of uids 0..3).
# ---------------------------------------------------------------------------


def _test_bonds_steps():
    def all_weight_servers(w):
        w[:4, 4:] = [U16_MAX // 4, U16_MAX // 2, (U16_MAX // 4) * 3, U16_MAX]

    def self_weight(uid):
        def change(w):
            w[uid] = 0
            w[uid, uid] = U16_MAX

        return change

    def val3_to_server4(w):
        w[2] = 0
        w[2, 7] = U16_MAX

    def unchanged(w):
        pass

    return [
        (all_weight_servers, 4, [16383, 32767, 49151, 65535]),
        (self_weight(0), 4, [14582, 32767, 49151, 65535]),
        (self_weight(1), 4, [12603, 28321, 49151, 65535]),
        (self_weight(2), 7, [12602, 28320, 49150, 65535]),
        (val3_to_server4, 7, [10951, 24609, 49150, 65535]),
        (unchanged, 7, [9559, 21482, 49150, 65535]),
        (unchanged, 7, [8376, 18824, 49150, 65535]),
    ]


def test_subtensor_test_bonds_sequence():
    n = 8
    stake = np.array([1, 2, 3, 4, 0, 0, 0, 0], dtype=float)
    weights = np.zeros((n, n))
    stored = np.zeros((n, n), dtype=np.uint16)
    for epoch, (change, column, expected) in enumerate(_test_bonds_steps()):
        change(weights)
        # bonds_penalty = u16::MAX / u16::MAX in the test; bonds are fed back as stored u16.
        result = yuma(stake, weights, stored.astype(float), kappa=0.5, bond_alpha=0.1, bonds_penalty=1.0)
        stored = bonds_to_u16(result.bonds)
        got = stored[:4, column].astype(int)
        if epoch < 3:
            assert got.tolist() == expected, f"epoch {epoch + 1}"
        else:
            # From epoch 4 uid 2's bond sits exactly on an integer (49151 * 65535 / 65535);
            # subtensor's I32F32 truncation lands just below it, float64 does not.
            assert np.abs(got - np.array(expected)).max() <= 1, f"epoch {epoch + 1}: {got}"


def test_subtensor_test_bonds_first_epoch_outputs():
    # Same first epoch: the log in test_bonds gives I, D and the normalised bonds.
    n = 8
    stake = np.array([1, 2, 3, 4, 0, 0, 0, 0], dtype=float)
    weights = np.zeros((n, n))
    weights[:4, 4:] = [16383, 32767, 49149, 65535]
    result = yuma(stake, weights, np.zeros((n, n)))
    np.testing.assert_allclose(result.incentive[4:], [0.0999975582, 0.2000012207, 0.2999926752, 0.4000085455], atol=1e-8)
    np.testing.assert_allclose(result.dividends[:4], [0.1, 0.2, 0.3, 0.4], atol=1e-8)
    np.testing.assert_allclose(result.validator_trust[:4], 1.0, atol=1e-8)
    np.testing.assert_allclose(result.consensus[4:], result.weights[0, 4:])
    np.testing.assert_allclose(result.bonds[:4, 4], [0.1, 0.2, 0.3, 0.4], atol=1e-8)


# ---------------------------------------------------------------------------
# epoch.rs::test_yuma_3_kappa_moves_{first,second,last} — Yuma3 + liquid alpha.
# setup_yuma_3_scenario: stakes [8, 1, 1, 0, 0], kappa u16::MAX/2, alpha (0.1, 0.3),
# steepness 1000, bonds penalty 0, bonds moving average 975_000; tolerance 1e-3.
# ---------------------------------------------------------------------------
M = U16_MAX
ALL_TO_1 = [[M, 0]] * 3
ALL_TO_2 = [[0, M]] * 3
KAPPA_SCENARIOS = {
    "first": (
        {0: ALL_TO_1, 1: [[0, M], [M, 0], [M, 0]], 2: [[0, M], [0, M], [M, 0]], 3: ALL_TO_2},
        [
            [[0.1013, 0.0], [0.1013, 0.0], [0.1013, 0.0]],
            [[0.0908, 0.1013], [0.3697, 0.0], [0.3697, 0.0]],
            [[0.0815, 0.1924], [0.3170, 0.1013], [0.5580, 0.0]],
            [[0.0731, 0.2742], [0.2765, 0.1924], [0.4306, 0.1013]],
            [[0.0656, 0.3478], [0.2435, 0.2742], [0.3589, 0.1924]],
            [[0.0588, 0.4139], [0.2157, 0.3478], [0.3089, 0.2742]],
        ],
        [
            [0.8000, 0.1000, 0.1000],
            [1.0000, 0.0000, 0.0000],
            [0.9382, 0.0618, 0.0000],
            [0.8819, 0.0773, 0.0407],
            [0.8564, 0.0844, 0.0592],
            [0.8418, 0.0884, 0.0697],
        ],
    ),
    "second": (
        {0: ALL_TO_1, 1: [[M, 0], [0, M], [M, 0]], 2: [[0, M], [0, M], [M, 0]], 3: ALL_TO_2},
        [
            [[0.1013, 0.0], [0.1013, 0.0], [0.1013, 0.0]],
            [[0.1924, 0.0], [0.0908, 0.2987], [0.1924, 0.0]],
            [[0.1715, 0.1013], [0.0815, 0.3697], [0.4336, 0.0]],
            [[0.1531, 0.1924], [0.0731, 0.4336], [0.3608, 0.1013]],
            [[0.1369, 0.2742], [0.0656, 0.4910], [0.3103, 0.1924]],
            [[0.1225, 0.3478], [0.0588, 0.5426], [0.2712, 0.2742]],
        ],
        [
            [0.8000, 0.1000, 0.1000],
            [0.8446, 0.0498, 0.1056],
            [0.6868, 0.3132, 0.0000],
            [0.7421, 0.2090, 0.0489],
            [0.7625, 0.1706, 0.0669],
            [0.7730, 0.1508, 0.0762],
        ],
    ),
    "last": (
        {0: ALL_TO_1, 1: [[M, 0], [0, M], [M, 0]], 2: [[M, 0], [0, M], [0, M]], 3: ALL_TO_2},
        [
            [[0.1013, 0.0], [0.1013, 0.0], [0.1013, 0.0]],
            [[0.1924, 0.0], [0.0908, 0.2987], [0.1924, 0.0]],
            [[0.2742, 0.0], [0.0815, 0.5081], [0.1715, 0.2987]],
            [[0.2416, 0.1013], [0.0731, 0.5580], [0.1531, 0.3697]],
            [[0.2141, 0.1924], [0.0656, 0.6028], [0.1369, 0.4336]],
            [[0.1903, 0.2742], [0.0588, 0.6430], [0.1225, 0.4910]],
        ],
        [
            [0.8000, 0.1000, 0.1000],
            [0.8446, 0.0498, 0.1056],
            [0.8966, 0.0333, 0.0701],
            [0.4663, 0.3210, 0.2127],
            [0.5976, 0.2340, 0.1683],
            [0.6592, 0.1932, 0.1475],
        ],
    ),
}


@pytest.mark.parametrize("scenario", sorted(KAPPA_SCENARIOS))
def test_subtensor_yuma3_kappa_moves(scenario):
    schedule, target_bonds, target_dividends = KAPPA_SCENARIOS[scenario]
    n = 5
    stake = np.array([8, 1, 1, 0, 0], dtype=float)
    params = dict(
        kappa=(U16_MAX // 2) / U16_MAX,
        bond_alpha=1 - 975_000 / 1_000_000,
        bonds_penalty=0.0,
        yuma3=True,
        liquid_alpha=LiquidAlpha(low=0.1, high=0.3, steepness=1000),
    )
    weights = np.zeros((n, n))
    # The scenario's setup runs one epoch before any weights are set.
    bonds = u16_to_proportion(proportion_to_u16(yuma(stake, weights, np.zeros((n, n)), **params).bonds))
    for epoch in range(6):
        if epoch in schedule:
            weights = np.zeros((n, n))
            weights[:3, 3:] = schedule[epoch]
        result = yuma(stake, weights, bonds, **params)
        bonds = u16_to_proportion(proportion_to_u16(result.bonds))  # stored as u16 proportions
        np.testing.assert_allclose(bonds[:3, 3:], target_bonds[epoch], atol=1e-3, err_msg=f"epoch {epoch}")
        np.testing.assert_allclose(result.dividends[:3], target_dividends[epoch], atol=1e-3, err_msg=f"epoch {epoch}")
        assert np.all(result.dividends[3:] == 0)


# ---------------------------------------------------------------------------
# math.rs::test_math_weighted_median / test_math_weighted_median_col
# ---------------------------------------------------------------------------
WEIGHTED_MEDIAN_CASES = [
    # (stake, score, majority, expected)
    ([], [], 0.51, 0.0),
    ([1.0], [1.0], 0.51, 1.0),
    ([0.49, 0.51], [0.5, 1.0], 0.51, 1.0),
    ([0.51, 0.49], [0.5, 1.0], 0.51, 0.5),
    ([0.49, 0.0, 0.51], [0.5, 0.7, 1.0], 0.51, 1.0),
    ([0.49, 0.01, 0.5], [0.5, 0.7, 1.0], 0.51, 0.7),
    ([0.49, 0.51, 0.0], [0.5, 0.7, 1.0], 0.51, 0.7),
    ([0.0, 0.49, 0.51], [0.5, 0.7, 1.0], 0.51, 1.0),
    ([0.0, 0.49, 0.0, 0.51], [0.5, 0.5, 1.0, 1.0], 0.51, 1.0),
    ([0.0, 0.49, 0.0, 0.51, 0.0], [0.5, 0.5, 1.0, 1.0, 0.5], 0.51, 1.0),
    ([0.2] * 5, [0.8, 0.2, 1.0, 0.6, 0.4], 0.51, 0.6),
    ([0.1] * 10, [0.8, 0.8, 0.2, 0.2, 1.0, 1.0, 0.6, 0.6, 0.4, 0.4], 0.51, 0.6),
]


@pytest.mark.parametrize("stake, score, majority, expected", WEIGHTED_MEDIAN_CASES)
def test_subtensor_weighted_median(stake, score, majority, expected):
    assert weighted_median(np.array(stake), np.array(score), majority) == pytest.approx(expected)


COL_STAKE = [0.0, 0.75, 0.25, 0.0]
COL_WEIGHTS = [[0.0, 0.1, 0.0], [0.0, 0.2, 0.4], [0.0, 0.3, 0.1], [0.0, 0.4, 0.5]]


@pytest.mark.parametrize(
    "stake, weights, majority, expected",
    [
        ([0.0, 0.0], [[0.0, 0.0], [0.0, 0.0]], 0.5, [0.0, 0.0]),
        (COL_STAKE, COL_WEIGHTS, 0.24, [0.0, 0.3, 0.4]),
        (COL_STAKE, COL_WEIGHTS, 0.26, [0.0, 0.2, 0.4]),
        (COL_STAKE, COL_WEIGHTS, 0.76, [0.0, 0.2, 0.1]),
        (
            [0.0, 0.3, 0.2, 0.5],
            [[0.0, 0.1, 0.0], [0.0, 0.2, 0.4], [0.0, 0.3, 0.1], [0.0, 0.0, 0.5]],
            0.51,
            [0.0, 0.0, 0.4],
        ),
    ],
)
def test_subtensor_weighted_median_col(stake, weights, majority, expected):
    got = weighted_median_col(np.array(stake), np.array(weights), majority)
    np.testing.assert_allclose(got, expected)


def _exact_weighted_median(stakes: list[int], scores: list[int], majority: Fraction) -> int:
    """Brute-force oracle in exact arithmetic: the value v with
    stake(< v) <= minority < stake(<= v) among positive-stake voters."""
    voters = [(score, stake) for stake, score in zip(stakes, scores) if stake > 0]
    total = sum(stake for _, stake in voters)
    minority = 1 - majority
    for value in sorted({score for score, _ in voters}):
        at_or_below = Fraction(sum(s for sc, s in voters if sc <= value), total)
        below = Fraction(sum(s for sc, s in voters if sc < value), total)
        if below <= minority < at_or_below:
            return value
    return max(score for score, _ in voters)


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 6)), min_size=1, max_size=25),
    majority=st.sampled_from(["0", "0.25", "0.49", "0.5", "0.51", "0.75", "0.9999999", "1"]),
)
def test_weighted_median_matches_exact_oracle(data, majority):
    stakes = [s for s, _ in data]
    scores = [c for _, c in data]
    if sum(stakes) == 0:
        return
    got = weighted_median(np.array(stakes, float), np.array(scores, float), float(majority))
    assert got == _exact_weighted_median(stakes, scores, Fraction(majority))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_weighted_median_col_equals_per_column_median(seed):
    rng = np.random.default_rng(seed)
    stake = rng.integers(0, 5, size=12).astype(float)
    stake[0] = 1.0
    scores = rng.integers(0, 4, size=(12, 7)) / 4.0
    cols = weighted_median_col(stake, scores, 0.5)
    singles = [weighted_median(stake, scores[:, j], 0.5) for j in range(7)]
    np.testing.assert_array_equal(cols, singles)


# ---------------------------------------------------------------------------
# Behaviour of the epoch as a whole.
# ---------------------------------------------------------------------------


def _random_epoch(rng, n=10):
    stake = rng.random(n) * (rng.random(n) < 0.6)
    weights = rng.random((n, n)) * (rng.random((n, n)) < 0.5)
    bonds = rng.random((n, n)) * (rng.random((n, n)) < 0.5)
    return stake, weights, bonds


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kappa=st.floats(0.0, 1.0), penalty=st.floats(0.0, 1.0))
def test_classic_outputs_are_normalised(seed, kappa, penalty):
    stake, weights, bonds = _random_epoch(np.random.default_rng(seed))
    result = yuma(stake, weights, bonds, kappa=kappa, bonds_penalty=penalty)
    for vector in (result.incentive, result.dividends):
        assert vector.sum() == pytest.approx(1.0) or vector.sum() == 0.0
        assert (vector >= 0).all()
    col_sums = result.bonds.sum(axis=0)
    assert np.all(np.isclose(col_sums, 1.0) | (col_sums == 0.0))
    assert np.all(result.clipped_weights <= result.weights + 1e-15)
    assert np.all(result.validator_trust <= 1.0 + 1e-12)


def test_incentive_sums_to_one_when_anyone_scores():
    rng = np.random.default_rng(7)
    n = 6
    weights = rng.random((n, n))
    result = yuma(np.ones(n), weights, np.zeros((n, n)))
    assert result.incentive.sum() == pytest.approx(1.0)
    assert result.dividends.sum() == pytest.approx(1.0)


def _honest_and_deviant():
    # uids 0..2 validators with equal stake; 3..5 miners. Validators 0 and 1 agree;
    # validator 2 puts most of its weight on miner 5, which nobody else rates.
    n = 6
    stake = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    weights = np.zeros((n, n))
    weights[0, 3:] = [0.6, 0.4, 0.0]
    weights[1, 3:] = [0.6, 0.4, 0.0]
    weights[2, 3:] = [0.1, 0.1, 0.8]
    return stake, weights


def test_deviant_validator_is_clipped_and_earns_less():
    stake, weights = _honest_and_deviant()
    result = yuma(stake, weights, np.zeros_like(weights))
    np.testing.assert_allclose(result.consensus[3:], [0.6, 0.4, 0.0])
    assert result.clipped_weights[2, 5] == 0.0
    assert result.validator_trust[2] == pytest.approx(0.2)
    assert result.validator_trust[0] == pytest.approx(1.0)
    assert result.dividends[2] < result.dividends[0]
    assert result.dividends[0] == pytest.approx(result.dividends[1])
    assert result.incentive[5] == 0.0


def test_bonds_penalty_zero_keeps_bonds_on_out_of_consensus_miner():
    stake, weights = _honest_and_deviant()
    penalised = yuma(stake, weights, np.zeros_like(weights), bonds_penalty=1.0)
    unpenalised = yuma(stake, weights, np.zeros_like(weights), bonds_penalty=0.0)
    assert penalised.bonds[2, 5] == 0.0
    assert unpenalised.bonds[2, 5] == pytest.approx(1.0)


def test_kappa_decides_which_side_wins():
    # Validator 0 (stake 0.6) rates miner 2 at 1; validator 1 (stake 0.4) gives it nothing.
    stake = np.array([0.6, 0.4, 0.0])
    weights = np.array([[0, 0, 1.0], [0, 0, 0], [0, 0, 0]])
    weights[1, 0] = 1.0  # validator 1 spends its weight elsewhere
    assert yuma(stake, weights, np.zeros((3, 3)), kappa=0.5).consensus[2] == 1.0
    assert yuma(stake, weights, np.zeros((3, 3)), kappa=0.7).consensus[2] == 0.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_consensus_does_not_increase_with_kappa(seed):
    stake, weights, bonds = _random_epoch(np.random.default_rng(seed))
    previous = None
    for kappa in (0.1, 0.3, 0.5, 0.7, 0.9):
        consensus = yuma(stake, weights, bonds, kappa=kappa).consensus
        if previous is not None:
            assert np.all(consensus <= previous + 1e-15)
        previous = consensus


def test_self_weight_is_masked_except_owner():
    stake = np.array([1.0, 1.0, 0.0])
    weights = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    plain = yuma(stake, weights, np.zeros((3, 3)))
    assert plain.weights[0, 0] == 0.0 and plain.weights[0, 2] == 1.0
    owned = yuma(stake, weights, np.zeros((3, 3)), owner_uid=0)
    assert owned.weights[0, 0] == 0.5 and owned.weights[1, 1] == 0.0


def test_validator_without_permit_is_ignored():
    stake = np.array([1.0, 3.0, 0.0, 0.0])
    weights = np.zeros((4, 4))
    weights[0, 2] = 1.0
    weights[1, 3] = 1.0
    result = yuma(stake, weights, np.zeros((4, 4)), validator_permit=np.array([True, False, True, True]))
    np.testing.assert_allclose(result.active_stake, [1.0, 0.0, 0.0, 0.0])
    assert result.incentive[2] == 1.0 and result.incentive[3] == 0.0
    assert result.dividends[1] == 0.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), liquid=st.booleans())
def test_yuma3_bonds_stay_in_unit_interval(seed, liquid):
    rng = np.random.default_rng(seed)
    n = 8
    stake = rng.random(n)
    bonds = rng.random((n, n))
    params = LiquidAlpha(low=0.2, high=0.6) if liquid else None
    for _ in range(5):
        weights = rng.random((n, n)) * (rng.random((n, n)) < 0.6)
        result = yuma(stake, weights, bonds, bonds_penalty=rng.random(), yuma3=True, liquid_alpha=params)
        bonds = np.array(result.bonds)
        assert bonds.min() >= 0.0 and bonds.max() <= 1.0
        assert result.dividends.sum() == pytest.approx(1.0) or result.dividends.sum() == 0.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), low=st.floats(0.0, 0.5), spread=st.floats(0.0, 0.5))
def test_liquid_alpha_entries_within_bounds(seed, low, spread):
    stake, weights, _ = _random_epoch(np.random.default_rng(seed))
    bonds = np.random.default_rng(seed + 1).random(weights.shape)
    params = LiquidAlpha(low=low, high=low + spread, steepness=50.0)
    result = yuma(stake, weights, bonds, yuma3=True, liquid_alpha=params)
    if result.consensus.any():
        assert result.bond_alpha.min() >= params.low and result.bond_alpha.max() <= params.high
    else:  # subtensor falls back to the fixed rate when consensus is all zero
        assert np.all(result.bond_alpha == 0.1)


def test_liquid_alpha_moves_faster_when_far_ahead_of_consensus():
    # Validator 0 (small) rates miner 3 fully while consensus gives it nothing: d = 1, so
    # its bond there moves at nearly the high rate; an in-consensus bond moves near the low one.
    stake = np.array([0.1, 0.9, 0.0, 0.0])
    weights = np.zeros((4, 4))
    weights[0, 3] = 1.0
    weights[1, 2] = 1.0
    params = LiquidAlpha(low=0.1, high=0.9, steepness=1000)
    result = yuma(stake, weights, np.zeros((4, 4)), bonds_penalty=0.0, yuma3=True, liquid_alpha=params)
    assert result.consensus[3] == 0.0
    # alpha = low + (high - low) * sigmoid(10 * (d - 0.5)) with d = 1 and d = 0.
    assert result.bond_alpha[0, 3] == pytest.approx(0.1 + 0.8 / (1 + np.exp(-5.0)))
    assert result.bond_alpha[1, 2] == pytest.approx(0.1 + 0.8 / (1 + np.exp(5.0)))
    assert result.bonds[0, 3] == pytest.approx(result.bond_alpha[0, 3])  # from zero bonds


def test_bonds_to_u16_upscales_each_column_to_max():
    bonds = np.array([[0.1, 0.0], [0.3, 0.0], [0.6, 0.0]])
    stored = bonds_to_u16(bonds)
    assert stored.dtype == np.uint16
    assert stored[:, 0].tolist() == [10922, 32767, 65535]  # floor(x / 0.6 * 65535)
    assert stored[:, 1].tolist() == [0, 0, 0]


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="Yuma3"):
        yuma(np.ones(2), np.ones((2, 2)), np.zeros((2, 2)), liquid_alpha=LiquidAlpha())
    with pytest.raises(ValueError, match="need stake"):
        yuma(np.ones(3), np.ones((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        yuma(np.ones(2), -np.ones((2, 2)), np.zeros((2, 2)))


def test_result_arrays_are_read_only():
    result = yuma(np.ones(3), np.ones((3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        result.incentive[0] = 1.0


def test_nobody_sets_weights_gives_zero_outputs():
    result = yuma(np.ones(4), np.zeros((4, 4)), np.zeros((4, 4)))
    assert not result.incentive.any() and not result.dividends.any() and not result.bonds.any()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([2.0, 0.5, 1000.0, 1e-3, 3.0]))
def test_outputs_do_not_change_when_every_stake_is_scaled_alike(seed, scale):
    """Yuma reads stake only as shares: the same network with every stake multiplied by one factor (a
    power of two exactly, others to rounding) gives the same incentive, dividends, consensus and bonds."""
    stake, weights, bonds = _random_epoch(np.random.default_rng(seed))
    base = yuma(stake, weights, bonds)
    scaled = yuma(stake * scale, weights, bonds)
    exact = scale in (2.0, 0.5)
    for field in ("incentive", "dividends", "consensus", "bonds", "validator_trust"):
        a, b = getattr(base, field), getattr(scaled, field)
        if exact:
            assert np.array_equal(a, b), field
        else:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=field)
