"""The compiled engine (amm.kernel + amm.compiled) against the per-block reference and the vectorised
engine, to the rao and to the bit; and the kernel's exact-arithmetic pieces against Python ints and
numpy."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amm import kernel
from amm.compiled import run_compiled
from amm.emission import emission_step_array
from amm.plan import compile_plan
from amm.pool import swap
from amm.reference import run_reference
from amm.scenario import load_scenario, parse_scenario
from amm.simulate import run_vectorised
from amm.units import RAO_PER_TAO, TOTAL_SUPPLY_RAO
from tests.amm.test_simulate import MIXED, assert_identical

INT64_MAX = 2**63 - 1


@pytest.mark.parametrize("model", ["launch", "flow", "current"])
def test_compiled_equals_reference_mixed(model):
    """Mixed tempos and ages, a subnet with emission off, root stake moving, a pool at its minimum
    reserve, refused trades and events."""
    plan = compile_plan(parse_scenario(MIXED, "mixed"), blocks=400, model=model, seed=5)
    ref = run_reference(plan)
    assert ref.trades_skipped > 0 and ref.events_skipped > 0
    assert_identical(run_compiled(plan), ref)


@pytest.mark.parametrize("name, blocks, model", [
    ("pump-and-dump", 16_000, "flow"),  # includes the whale's buy at block 14,400
    ("launch-vs-flow", 1_500, "launch"),
    ("year-128", 120, "current"),
    ("mainnet-2026", 40, "current"),     # balances far above 2^53 rao
])
def test_compiled_equals_reference_shipped(name, blocks, model):
    plan = compile_plan(load_scenario(name), blocks=blocks, model=model)
    assert_identical(run_compiled(plan), run_reference(plan, audit_every=10))


@pytest.mark.parametrize("name, blocks, model", [
    ("year-128", 20_000, "current"), ("year-128", 20_000, "flow"), ("year-128", 20_000, "launch"),
    ("pump-and-dump", 120_000, "current"),   # the whale's buy and its sale
])
def test_compiled_equals_vectorised_on_long_horizons(name, blocks, model):
    plan = compile_plan(load_scenario(name), blocks=blocks, model=model)
    assert_identical(run_compiled(plan), run_vectorised(plan))


def test_a_run_cut_into_chunks_equals_one_piece_and_reports_progress():
    plan = compile_plan(parse_scenario(MIXED, "mixed"), blocks=997, model="flow", seed=2)
    seen = []
    assert_identical(run_compiled(plan, progress=seen.append, chunks=7), run_compiled(plan, chunks=1))
    assert seen == sorted(seen) and seen[-1] == 997 and len(seen) == 7


def test_the_halving_inside_a_run_matches_the_reference():
    """Total issuance a few blocks short of 10.5M TAO: the block emission halves mid-run; one subnet's
    alpha issuance crosses its own halving too."""
    near = 10_500_000 - 100   # TAO
    scenario = {"name": "halving", "blocks": 300, "accounts": {"others": near - 60_000},
                "root": {"stake_tao": 50_000, "tao_weight": 0.18},
                "subnets": [{"name": "a", "tao": 4_000, "alpha": 9_000, "outstanding_alpha": 10_500_000 - 9_000 - 150},
                            {"name": "b", "tao": 6_000, "alpha": 30_000, "tempo": 9}]}
    plan = compile_plan(parse_scenario(scenario, "halving"), seed=1)
    ref = run_reference(plan)
    assert ref.total_issuance > 10_500_000 * RAO_PER_TAO and ref.final["alpha_issuance"][0] > 10_500_000 * RAO_PER_TAO
    assert_identical(run_compiled(plan), ref)


def test_balances_the_vectorised_engine_refuses_run_exactly():
    big = {"name": "big", "subnets": [{"name": "a", "tao": 9_500_000, "alpha": 1_000}]}
    plan = compile_plan(parse_scenario(big, "big"), blocks=60)
    with pytest.raises(OverflowError):
        run_vectorised(plan)
    result = run_compiled(plan)
    assert result.final["tao_reserve"][0] > 2**53
    assert_identical(result, run_reference(plan))


def test_a_plan_beyond_int64_is_refused_before_running():
    """A scenario file cannot hold such balances (it refuses issuance above the supply); a plan made
    by hand can, and is refused up front rather than wrapping."""
    plan = compile_plan(parse_scenario({"name": "p", "subnets": [{"name": "a", "tao": 10, "alpha": 10}]}, "p"),
                        blocks=10)
    near = 2**62 - 2 * RAO_PER_TAO * 10
    run_compiled(dataclasses.replace(plan, alpha=np.array([near - 1])))   # just fits
    with pytest.raises(OverflowError, match="reference engine"):
        run_compiled(dataclasses.replace(plan, alpha=np.array([near])))


# --- exact pieces ----------------------------------------------------------------------------------

amounts = st.integers(0, INT64_MAX)


@settings(max_examples=3000, deadline=None)
@given(amounts, amounts, st.integers(1, INT64_MAX), amounts)
def test_muldiv_is_exact_floor_with_a_limit(a, b, c, limit):
    assert kernel.muldiv(a, b, c, limit) == min(a * b // c, limit)


@pytest.mark.parametrize("a, b, c", [
    (INT64_MAX, INT64_MAX, INT64_MAX), (INT64_MAX, INT64_MAX, 1), (2**62, 4, 8), (2**32, 2**32, 3),
    (2**32 - 1, 2**32 + 1, 7), (3 * 10**15, 10**12, 10**15 + 7), (10**16, 65_502, 65_535), (1, 1, 1)])
def test_muldiv_edges(a, b, c):
    assert kernel.muldiv(a, b, c, INT64_MAX) == min(a * b // c, INT64_MAX)
    assert kernel.muldiv(a, b, c, 5) == min(a * b // c, 5)


@settings(max_examples=1000, deadline=None)
@given(st.integers(0, 2**61), st.integers(0, 2**61), st.integers(0, 2**61), st.integers(0, 65_534))
def test_swap_out_equals_the_pool_arithmetic(reserve_in, reserve_out, amount, fee_rate):
    assert kernel.swap_out(reserve_in, reserve_out, amount, fee_rate) == swap(reserve_in, reserve_out, amount,
                                                                              fee_rate)[1]


@pytest.mark.parametrize("n", list(range(0, 300)) + [383, 512, 1000, 1023, 1024, 1025, 4099, 8192])
def test_pairwise_sum_is_numpys_sum_bit_for_bit(n):
    rng = np.random.default_rng(n)
    stacks = np.zeros(64, dtype=np.int64), np.zeros(64, dtype=np.int64), np.zeros(64)
    for values in (rng.random(n), rng.lognormal(0, 8, n), rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)):
        assert kernel.pairwise_sum(values, *stacks) == np.add.reduce(values)


def test_pairwise_sum_differs_from_a_plain_loop_somewhere():
    """The reproduction matters: summed in plain order, these values give another float."""
    rng = np.random.default_rng(0)
    values = rng.lognormal(0, 8, 1000)
    plain = 0.0
    for v in values:
        plain += v
    assert plain != np.add.reduce(values)


@pytest.mark.parametrize("issuance", [0, 1, 10**9, TOTAL_SUPPLY_RAO // 2 - 1, TOTAL_SUPPLY_RAO // 2,
                                      TOTAL_SUPPLY_RAO // 2 + 1, TOTAL_SUPPLY_RAO - (TOTAL_SUPPLY_RAO >> 2),
                                      TOTAL_SUPPLY_RAO - 2, TOTAL_SUPPLY_RAO - 1, TOTAL_SUPPLY_RAO,
                                      TOTAL_SUPPLY_RAO + 5])
def test_emission_step_equals_the_array_version(issuance):
    em, lower, upper = emission_step_array(np.array([issuance]))
    assert kernel.emission_step(issuance, TOTAL_SUPPLY_RAO, RAO_PER_TAO) == (em[0], lower[0], upper[0])


@st.composite
def scenarios(draw):
    """Small random scenarios: pools from dust to deep, any tempo, age and model, traders that empty
    their balances, scripted stakes and unstakes on subnets and root (some of them refused)."""
    amount = st.floats(0.001, 200_000, allow_nan=False).map(lambda x: round(x, 6))
    n = draw(st.integers(1, 4))
    subnets = [{"name": f"s{i}", "tao": draw(amount), "alpha": draw(amount), "tempo": draw(st.integers(1, 30)),
                "emission": draw(st.booleans()) if i else True, "age_blocks": draw(st.integers(0, 400_000)),
                "outstanding_alpha": draw(st.sampled_from([0, 10, 50_000]))} for i in range(n)]
    traders = [{"subnets": "all", "rate_per_day": draw(st.sampled_from([0, 500, 7200])),
                "size_tao": {"dist": draw(st.sampled_from(["lognormal", "exponential", "fixed"])),
                             "mean": draw(st.floats(0.01, 5_000)), "sigma": 1.5},
                "buy_prob": draw(st.floats(0, 1)), "balance_tao": draw(st.sampled_from([0, 100, 100_000])),
                "alpha": draw(st.sampled_from([0, 1_000, 1_000_000]))}]
    targets = [s["name"] for s in subnets] + ["root"]
    events = []
    for _ in range(draw(st.integers(0, 6))):
        action = draw(st.sampled_from(["stake_tao", "unstake_alpha", "unstake_fraction"]))
        value = draw(st.floats(0.01, 1)) if action == "unstake_fraction" else draw(amount)
        events.append({"block": draw(st.integers(0, 150)), "account": "a", "subnet": draw(st.sampled_from(targets)),
                       action: value})
    return {"name": "random", "blocks": draw(st.integers(20, 160)), "model": draw(st.sampled_from(
        ["launch", "flow", "current"])), "seed": draw(st.integers(0, 99)),
            "root": {"stake_tao": draw(st.sampled_from([0, 1_000, 3_000_000])), "tao_weight": draw(st.floats(0, 1))},
            "accounts": {"a": draw(st.sampled_from([0, 500, 50_000]))}, "subnets": subnets, "traders": traders,
            "events": events}


@settings(max_examples=80, deadline=None)
@given(scenarios())
def test_compiled_equals_reference_on_random_scenarios(data):
    """Every output to the rao and the bit, and conservation audited, on scenarios nobody wrote by hand."""
    plan = compile_plan(parse_scenario(data, "random"))
    ref = run_reference(plan)
    got = run_compiled(plan)
    assert got.conservation.startswith("exact")
    assert_identical(got, ref)
