from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from amm.pool import InsufficientLiquidity, Pool, PoolError, PriceLimitExceeded


@pytest.mark.parametrize("amount", [1_000, 2_000, 123_456, 1_000_000_000, 10_000_000_000])
def test_subtensor_swap_cases(amount):
    # subtensor swap vectors: tau = 1e9, alpha = 4e9, fee = floor(amount * 33 / 65535) off the input.
    tau, alpha = 1_000_000_000, 4_000_000_000
    pool = Pool(tao=tau, alpha=alpha)
    fee = amount * 33 // 65535
    expected = alpha * (1 - tau / (tau + amount - fee))
    out = pool.stake(amount)
    assert abs(out - expected) <= 1
    assert pool.tao == tau + amount  # the fee stays in the pool
    assert pool.alpha == alpha - out


def test_unstake_formula_and_fee_rate_configurable():
    pool = Pool(tao=5_000_000_000, alpha=2_000_000_000, fee_rate=0)
    out = pool.unstake(1_000_000_000)
    assert out == 5_000_000_000 * 1_000_000_000 // 3_000_000_000
    free = Pool(tao=10**12, alpha=10**12, fee_rate=0).quote_stake(10**9)
    costly = Pool(tao=10**12, alpha=10**12, fee_rate=10_000).quote_stake(10**9)
    assert costly.fee == 10**9 * 10_000 // 65535 and costly.amount_out < free.amount_out


def test_price_and_injection_at_price_keeps_price():
    pool = Pool(tao=3_000_000_000_000, alpha=7_000_000_000_000)
    before = pool.price_fraction
    alpha_in = pool.inject_at_price(21_000_000)
    assert alpha_in == 49_000_000
    assert pool.price_fraction == before
    assert pool.price == pytest.approx(3 / 7)


def test_minimum_reserve_guard():
    pool = Pool(tao=10**9, alpha=2_000_000)
    with pytest.raises(InsufficientLiquidity):
        pool.stake(10**12)
    assert pool.tao == 10**9 and pool.alpha == 2_000_000  # refused swaps change nothing
    with pytest.raises(PoolError):
        pool.stake(-1)


def test_root_is_one_to_one_without_fee():
    root = Pool.root(10**12)
    assert root.price == 1.0
    assert root.stake(123_456_789) == 123_456_789
    assert root.unstake(23_456_789) == 23_456_789
    assert root.tao == 10**12 + 100_000_000


def test_stake_limit_partial_fill_stops_at_limit():
    pool = Pool(tao=10**12, alpha=10**12)
    limit = Fraction(11, 10)
    res = pool.quote_stake_limit(10**12, limit)
    assert 0 < res.amount_in < 10**12
    assert Fraction(res.tao_after, res.alpha_after) <= limit
    # one more rao would cross the limit
    more = pool.quote_stake(res.amount_in + 1)
    assert Fraction(more.tao_after, more.alpha_after) > limit
    with pytest.raises(PriceLimitExceeded):
        pool.quote_stake_limit(10**12, limit, allow_partial=False)
    small = pool.quote_stake_limit(10**6, limit, allow_partial=False)
    assert small == pool.quote_stake(10**6)


def test_unstake_limit_partial_fill():
    pool = Pool(tao=10**12, alpha=10**12)
    res = pool.unstake_limit(10**12, 0.9)
    assert 0 < res.amount_in < 10**12
    assert Fraction(pool.tao, pool.alpha) >= Fraction(0.9)
    assert pool.quote_unstake_limit(10**9, 1.5).amount_in == 0  # already below the limit


@settings(max_examples=200, deadline=None)
@given(tau=st.integers(10**7, 10**17), alpha=st.integers(10**7, 10**17),
       amount=st.integers(1, 10**16), fee_rate=st.sampled_from([0, 33, 1000]))
def test_stake_then_unstake_never_profits(tau, alpha, amount, fee_rate):
    pool = Pool(tao=tau, alpha=alpha, fee_rate=fee_rate, min_reserve=0)
    alpha_out = pool.stake(amount)
    if alpha_out == 0:
        return
    tao_back = pool.unstake(alpha_out)
    assert tao_back <= amount
    assert pool.tao * pool.alpha >= tau * alpha  # k never shrinks


@settings(max_examples=100, deadline=None)
@given(tau=st.integers(10**9, 10**16), alpha=st.integers(10**9, 10**16),
       amount=st.integers(1, 10**15), ratio=st.fractions(min_value=Fraction(1, 2), max_value=3))
def test_limit_fill_is_largest_within_limit(tau, alpha, amount, ratio):
    pool = Pool(tao=tau, alpha=alpha)
    up = pool.price_fraction * ratio  # a limit above or below the spot price
    res = pool.quote_stake_limit(amount, up)
    assert res.amount_in <= amount
    if res.amount_in:
        assert Fraction(res.tao_after, res.alpha_after) <= up
    if res.amount_in < amount:  # one more rao would cross the limit (or the reserve guard)
        try:
            more = pool.quote_stake(res.amount_in + 1)
            assert Fraction(more.tao_after, more.alpha_after) > up
        except InsufficientLiquidity:
            pass
    down = pool.price_fraction / ratio
    res = pool.quote_unstake_limit(amount, down)
    if res.amount_in:
        assert Fraction(res.tao_after, res.alpha_after) >= down
    if res.amount_in < amount:
        try:
            more = pool.quote_unstake(res.amount_in + 1)
            assert Fraction(more.tao_after, more.alpha_after) < down
        except InsufficientLiquidity:
            pass


@settings(max_examples=150, deadline=None)
@given(tau=st.integers(10**9, 10**15), alpha=st.integers(10**9, 10**15),
       trades=st.lists(st.tuples(st.booleans(), st.integers(1, 10**14)), min_size=1, max_size=30))
def test_a_random_trade_sequence_conserves_both_tokens_and_moves_price_the_right_way(tau, alpha, trades):
    """Every rao a trader pays is in the pool or the trader's hands; a stake never lowers the price and
    an unstake never raises it; reserves never fall to zero (the price stays finite and positive)."""
    pool = Pool(tao=tau, alpha=alpha)
    wallet_tao, wallet_alpha = 10**15, 0
    for is_stake, amount in trades:
        price = pool.price_fraction
        try:
            if is_stake:
                amount = min(amount, wallet_tao)
                if amount == 0:
                    continue
                got = pool.stake(amount)
                wallet_tao, wallet_alpha = wallet_tao - amount, wallet_alpha + got
                assert pool.price_fraction >= price
            else:
                amount = min(amount, wallet_alpha)
                if amount == 0:
                    continue
                got = pool.unstake(amount)
                wallet_alpha, wallet_tao = wallet_alpha - amount, wallet_tao + got
                assert pool.price_fraction <= price
        except InsufficientLiquidity:
            pass   # refused whole: nothing may have moved (checked below)
        assert pool.tao + wallet_tao == tau + 10**15
        assert pool.alpha + wallet_alpha == alpha
        assert pool.tao > 0 and pool.alpha > 0
