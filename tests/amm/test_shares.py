import pytest

from amm.shares import (flow_weights, moving_price_factor, price_weights, shares, split_emission,
                        update_moving_price)


def test_moving_price_warmup_vector():
    # subtensor's moving-price case: factor 0.1 scaled by b/(b+h), b = h = 201,600 -> 0.05.
    factor = moving_price_factor(0.1, 201_600, 201_600)
    assert factor == pytest.approx(0.05)
    ema = 0.0
    for _ in range(14):
        ema = update_moving_price(ema, 1.0, factor)
    assert ema == pytest.approx(0.512325, abs=1e-6)


def test_spot_price_capped_at_one_in_ema():
    assert update_moving_price(0.0, 5.0, 0.5) == 0.5


def test_price_shares_split_one_to_two():
    w = price_weights([0.1, 0.2], [True, True])
    s = shares(w)
    assert s[0] == pytest.approx(1 / 3) and s[1] == pytest.approx(2 / 3)
    split = split_emission(1_000_000_000, w)
    assert abs(split[0] - 333_333_333) <= 1 and abs(split[1] - 666_666_666) <= 1
    assert sum(split) <= 1_000_000_000


def test_disabled_subnet_gets_nothing_and_rest_renormalised():
    w = price_weights([0.1, 0.2, 0.3], [True, False, True])
    assert list(shares(w)) == pytest.approx([0.25, 0.0, 0.75])


def test_flow_shares_shifted_by_most_negative():
    w = flow_weights([-10.0, 0.0, 30.0], [True, True, True])
    assert list(shares(w)) == pytest.approx([0.0, 10 / 50, 40 / 50])
    # all positive: no shift
    assert list(shares(flow_weights([1.0, 3.0], [True, True]))) == pytest.approx([0.25, 0.75])
    # nothing to rank on: equal split among eligible
    assert list(shares(flow_weights([0.0, 0.0, 0.0], [True, True, False]))) == pytest.approx([0.5, 0.5, 0])
