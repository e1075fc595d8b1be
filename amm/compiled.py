"""The compiled engine: a plan run by the numba kernel (`amm.kernel`) in int64 rao.

Results equal the vectorised engine's (`amm.simulate`) to the rao and to the bit of every float,
and the per-block reference's (`amm.reference`); unlike the vectorised engine, money stays exact
above 2^53 rao (9M TAO), so mainnet-sized scenarios run. This module only lays the plan out as
arrays, runs the kernel in chunks (for the progress bar), and reads the arrays back into a
`SimResult`, audited for conservation in Python ints.

The kernel is compiled on first use and cached on disk (numba's `cache=True`, next to this
module), so later processes load it in a fraction of a second; `warm_up` compiles it explicitly.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from amm import kernel as k
from amm.plan import Plan
from amm.result import SimResult
from amm.simulate import audit_vectorised
from amm.units import DEFAULT_FEE_RATE, DEFAULT_MIN_RESERVE, RAO_PER_TAO, TOTAL_SUPPLY_RAO

MODEL_CODES = {"launch": k.LAUNCH, "flow": k.FLOW_MODEL, "current": k.CURRENT}
# Every balance stays below this, so no sum of two of them can wrap int64.
MONEY_LIMIT = 2**62


def run_compiled(plan: Plan, progress: Callable[[int], None] | None = None, chunks: int = 200) -> SimResult:
    """Run ``plan`` with the compiled kernel; ``progress(blocks_done)`` after each of ``chunks``
    pieces of the horizon."""
    _check_fits_int64(plan)
    p = plan.params
    n = plan.n_subnets
    state = np.zeros((n, k.FIELDS), dtype=np.int64)   # the kernel's layout: one row per subnet
    money = state.T                                   # field-major view: money[k.TAU] is every subnet's
    money[k.TAU], money[k.ALPHA] = plan.tao, plan.alpha
    money[k.ISSUANCE] = plan.alpha + plan.outstanding + plan.trader_alpha
    money[k.TRADER_TAO], money[k.TRADER_ALPHA] = plan.trader_tao, plan.trader_alpha
    money[k.LOWER], money[k.UPPER] = 1, 0       # empty range: the first block computes the emission
    money[k.PERIOD] = plan.tempo + 1
    money[k.NEXT_EPOCH] = (-(plan.netuid + 1)) % money[k.PERIOD]
    money[k.AGE] = plan.age
    money[k.ENABLED] = plan.enabled
    reals = np.zeros((2, n))
    reals[k.EMA] = plan.ema_price
    chain = np.zeros(k.CHAIN_FIELDS, dtype=np.int64)
    chain[k.TOTAL_ISSUANCE], chain[k.ROOT_STAKE] = plan.initial_issuance, plan.root_stake

    int_params = np.zeros(7, dtype=np.int64)
    int_params[k.MODEL] = MODEL_CODES[p.model]
    int_params[k.OWNER_CUT], int_params[k.FEE_RATE] = p.owner_cut, DEFAULT_FEE_RATE
    int_params[k.MIN_RESERVE] = DEFAULT_MIN_RESERVE
    int_params[k.FIXED_EMISSION] = -1 if p.block_emission is None else p.block_emission
    int_params[k.RECORD_EVERY], int_params[k.LAST_BLOCK] = plan.record_every, plan.blocks - 1
    real_params = np.zeros(5)
    real_params[k.TAO_WEIGHT], real_params[k.MOVING_ALPHA] = p.tao_weight, p.moving_alpha
    real_params[k.HALVING_BLOCKS] = float(p.ema_halving_blocks)
    real_params[k.PRICE_CAP], real_params[k.FLOW_FACTOR] = p.price_cap, p.flow_ema_factor

    t = plan.trades
    trades = np.ascontiguousarray(np.stack([t.block, t.subnet, t.buy.astype(np.int64), t.value], axis=1)
                                  .reshape(len(t), 4), dtype=np.int64)
    accounts = sorted(set(plan.accounts) | {e.account for e in plan.events})
    account_index = {name: i for i, name in enumerate(accounts)}
    account_tao = np.array([plan.accounts.get(a, 0) for a in accounts], dtype=np.int64)
    account_alpha = np.zeros((len(accounts), n + 1), dtype=np.int64)   # column n: root
    events_int = np.array([[e.block, account_index[e.account], e.subnet, e.action == "stake",
                            -1 if e.amount is None else e.amount] for e in plan.events],
                          dtype=np.int64).reshape(len(plan.events), 5)
    events_fraction = np.array([np.nan if e.fraction is None else e.fraction for e in plan.events])

    records = plan.blocks // plan.record_every + (plan.blocks % plan.record_every != 0)
    record_block = np.zeros(records, dtype=np.int64)
    record_price, record_share = np.zeros((records, n)), np.zeros((records, n))
    record_paid = np.zeros((records, n), dtype=np.int64)
    scratch = (np.zeros(n), np.zeros(64, dtype=np.int64), np.zeros(64, dtype=np.int64), np.zeros(64))

    arrays = (chain, state, reals, int_params, real_params, trades, events_int, events_fraction, account_tao,
              account_alpha, record_block, record_price, record_share, record_paid, *scratch)
    started = time.perf_counter()
    k.run_blocks(0, *arrays)   # no blocks: compiles the kernel, or loads it from numba's cache
    kernel_seconds = time.perf_counter() - started
    step = max(1, -(-plan.blocks // max(1, chunks)))
    for stop in range(step, plan.blocks + step, step):
        k.run_blocks(min(stop, plan.blocks), *arrays)
        if progress is not None:
            progress(int(chain[k.BLOCK]))

    largest = int(max(money[:k.INJECTED_ALPHA + 1].max(initial=0), money[k.TRADER_TAO:k.TRADER_ALPHA + 1].max(
        initial=0), chain[k.TOTAL_ISSUANCE]))
    if largest >= MONEY_LIMIT:   # _check_fits_int64 bounds this in advance; checked, not assumed
        raise OverflowError(f"a balance reached {largest} rao, beyond the compiled engine's int64 range")

    paid, accrued = money[k.PAID:k.PAID + 3], money[k.ACCRUED:k.ACCRUED + 3]
    tau, alpha = money[k.TAU], money[k.ALPHA]
    final = {
        "price": tau / alpha, "ema_price": reals[k.EMA].copy(), "flow_ema": reals[k.FLOW_EMA].copy(),
        "tao_reserve": tau.copy(), "alpha_reserve": alpha.copy(), "tao_emitted": money[k.EMITTED].copy(),
        "tao_injected": money[k.INJECTED_TAO].copy(), "alpha_injected": money[k.INJECTED_ALPHA].copy(),
        "alpha_out": accrued.sum(axis=0), "owner_paid": paid[0].copy(), "miner_paid": paid[1].copy(),
        "validator_paid": paid[2].copy(), "pending": (accrued - paid).sum(axis=0),
        "protocol_alpha": money[k.PROTOCOL].copy(), "alpha_recycled": money[k.RECYCLED].copy(),
        "alpha_issuance": money[k.ISSUANCE].copy(), "trader_tao": money[k.TRADER_TAO].copy(),
        "trader_alpha": money[k.TRADER_ALPHA].copy(),
    }
    result = SimResult(
        scenario=plan.scenario.name, model=p.model, seed=plan.seed, blocks=plan.blocks, names=plan.names,
        final=final, total_issuance=int(chain[k.TOTAL_ISSUANCE]), root_stake=int(chain[k.ROOT_STAKE]),
        trades_executed=int(chain[k.EXECUTED]), trades_skipped=int(chain[k.SKIPPED]),
        events_skipped=int(chain[k.EVENTS_SKIPPED]), sample_blocks=record_block, series_price=record_price,
        series_share=record_share, series_paid=record_paid, engine="compiled",
        extra={"kernel_seconds": kernel_seconds})
    held_tao = {name: int(account_tao[i]) for i, name in enumerate(accounts)}
    held_alpha = {(name, j if j < n else -1): int(account_alpha[i, j])
                  for i, name in enumerate(accounts) for j in range(n + 1) if account_alpha[i, j]}
    result.conservation = audit_vectorised(plan, result, held_tao, held_alpha)
    return result


def _check_fits_int64(plan: Plan) -> None:
    """Refuse, before running, a plan whose money could leave int64. TAO issuance grows by at most
    1 TAO a block and stops at the supply; a subnet's alpha issuance by at most 2 alpha a block
    (emission plus injection, each capped by an emission that stops at the supply). A scenario file
    cannot get near the limit (it refuses issuance above the supply); a plan built by hand could."""
    tao = plan.initial_issuance + min(RAO_PER_TAO * plan.blocks, TOTAL_SUPPLY_RAO)
    alpha = (int((plan.alpha + plan.outstanding + plan.trader_alpha).max(initial=0))
             + min(2 * RAO_PER_TAO * plan.blocks, 2 * TOTAL_SUPPLY_RAO))
    if max(tao, alpha) >= MONEY_LIMIT:
        raise OverflowError(f"this plan's balances could reach {max(tao, alpha)} rao, beyond the compiled "
                            f"engine's exact range ({MONEY_LIMIT} rao); use the reference engine")
