import numpy as np
import pytest

from amm.emission import block_emission, block_emission_array, halvings, next_halving_issuance
from amm.units import RAO_PER_TAO

TAO = RAO_PER_TAO


@pytest.mark.parametrize("issued_tao, expected", [
    (0, TAO), (10_499_999, TAO), (10_500_000, TAO // 2), (15_749_999, TAO // 2),
    (15_750_000, TAO // 4), (18_375_000, TAO // 8), (19_687_500, TAO // 16),
    (21_000_000, 0), (22_000_000, 0)])
def test_halving_thresholds(issued_tao, expected):
    assert block_emission(issued_tao * TAO) == expected


def test_threshold_is_exact_to_the_rao():
    assert block_emission(10_500_000 * TAO - 1) == TAO
    assert block_emission(10_500_000 * TAO) == TAO // 2
    assert block_emission(20_999_999 * TAO) == TAO >> 24  # 1 TAO left: 2.1e7 ~ 2^24.3
    assert block_emission(21_000_000 * TAO - 1) == 0  # 1e9 rao / 2^54 rounds to nothing
    assert next_halving_issuance(0) == 10_500_000 * TAO
    assert next_halving_issuance(10_500_000 * TAO) == 15_750_000 * TAO
    assert halvings(21_000_000 * TAO) is None


def test_array_matches_scalar():
    rng = np.random.default_rng(0)
    xs = np.concatenate([rng.integers(0, 22_000_000 * TAO, 500),
                         [0, 10_500_000 * TAO - 1, 10_500_000 * TAO, 21_000_000 * TAO]])
    got = block_emission_array(xs)
    assert [int(v) for v in got] == [block_emission(int(x)) for x in xs]
