"""The vectorised engine against the exact per-block reference loop, on short horizons."""

import numpy as np
import pytest

from amm.plan import compile_plan
from amm.reference import run_reference
from amm.result import FINAL_FIELDS
from amm.scenario import load_scenario, parse_scenario
from amm.simulate import run_vectorised

MIXED = {
    # non-uniform tempo and age, emission off on one subnet, root stake moves, tiny pool that
    # hits the minimum reserve, big trades
    "name": "mixed",
    "root": {"stake_tao": 50_000, "tao_weight": 0.18},
    "accounts": {"w": 5_000},
    "subnets": [
        {"name": "a", "tao": 200, "alpha": 4_000, "tempo": 7, "age_blocks": 10},
        {"name": "b", "tao": 3_000, "alpha": 1_000, "tempo": 13, "age_blocks": 0},
        {"name": "c", "tao": 0.002, "alpha": 0.005, "tempo": 5, "emission": False},
        {"name": "d", "tao": 50, "alpha": 500_000, "tempo": 360, "ema_price": 0.9},
    ],
    "traders": [{"subnets": "all", "rate_per_day": 3000, "buy_prob": 0.45,
                 "size_tao": {"dist": "lognormal", "mean": 30, "sigma": 1.5},
                 "balance_tao": 2_000, "alpha": 3_000}],
    "events": [
        {"block": 3, "account": "w", "subnet": "a", "stake_tao": 1_000},
        {"block": 3, "account": "w", "subnet": "root", "stake_tao": 1_000},
        {"block": 40, "account": "w", "subnet": "a", "unstake_fraction": 0.5},
        {"block": 41, "account": "w", "subnet": "c", "stake_tao": 10},
        {"block": 90, "account": "w", "subnet": "root", "unstake_alpha": 400},
        {"block": 150, "account": "w", "subnet": "a", "unstake_alpha": 1_000_000},
    ],
}


def assert_identical(vec, ref):
    for key in FINAL_FIELDS:
        assert np.array_equal(vec.final[key], ref.final[key]), key
    assert vec.total_issuance == ref.total_issuance
    assert vec.root_stake == ref.root_stake
    assert (vec.trades_executed, vec.trades_skipped, vec.events_skipped) == \
        (ref.trades_executed, ref.trades_skipped, ref.events_skipped)
    assert np.array_equal(vec.sample_blocks, ref.sample_blocks)
    for key in ("series_price", "series_share", "series_paid"):
        assert np.array_equal(getattr(vec, key), getattr(ref, key)), key


@pytest.mark.parametrize("model", ["launch", "flow", "current"])
def test_vectorised_equals_reference_mixed(model):
    plan = compile_plan(parse_scenario(MIXED, "mixed"), blocks=400, model=model, seed=5)
    ref = run_reference(plan)
    vec = run_vectorised(plan)
    assert ref.trades_executed > 100 and ref.trades_skipped > 0
    assert ref.final["owner_paid"].sum() > 0
    assert_identical(vec, ref)


@pytest.mark.parametrize("name, blocks, model", [
    ("pump-and-dump", 16_000, "flow"),  # includes the whale's buy at block 14,400
    ("launch-vs-flow", 1_500, "current"),
    ("year-128", 120, "current"),
])
def test_vectorised_equals_reference_shipped(name, blocks, model):
    plan = compile_plan(load_scenario(name), blocks=blocks, model=model)
    assert_identical(run_vectorised(plan), run_reference(plan, audit_every=50))


def test_same_seed_same_result_and_seed_matters():
    scenario = parse_scenario(MIXED, "mixed")
    a = run_vectorised(compile_plan(scenario, blocks=300, seed=1)).to_dict()
    b = run_vectorised(compile_plan(scenario, blocks=300, seed=1)).to_dict()
    c = run_vectorised(compile_plan(scenario, blocks=300, seed=2)).to_dict()
    assert a == b
    assert a != c


def test_trades_follow_rate_and_bias():
    scenario = parse_scenario(dict(MIXED, events=[]), "mixed")
    plan = compile_plan(scenario, blocks=7200, seed=3)
    trades = plan.trades
    per_subnet = np.bincount(trades.subnet, minlength=4)
    assert np.all(np.abs(per_subnet - 3000) < 300)  # Poisson(3000): 5+ sigma
    assert abs(trades.buy.mean() - 0.45) < 0.02
    assert abs(trades.value.mean() / 1e9 - 30) < 5
    assert np.all(np.diff(trades.block) >= 0)
    for i in range(4):  # at most one trade per subnet per block
        blocks = trades.block[trades.subnet == i]
        assert len(np.unique(blocks)) == len(blocks)


def test_vectorised_refuses_balances_beyond_float_exactness():
    big = {"name": "big", "subnets": [{"name": "a", "tao": 9_500_000, "alpha": 1_000}]}
    plan = compile_plan(parse_scenario(big, "big"), blocks=10)
    with pytest.raises(OverflowError):
        run_vectorised(plan)
    assert run_reference(plan).final["tao_reserve"][0] > 2**53  # the exact path copes
