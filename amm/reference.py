"""The exact per-block reference: the plan run through `amm.coinbase.run_block`, `Pool` swaps and
the `Ledger`, one block and one subnet at a time, in Python ints. Slow; it exists to check the
vectorised engine (`amm.simulate`) on short horizons and to show the chain's calling pattern.

User flows after each block's coinbase, in this order (the vectorised engine follows the same rules):
* scripted events of the block in file order: a stake is clipped to the account's free TAO, an
  unstake to its holding (`unstake_fraction` takes floor(holding * fraction));
* then stochastic trades by subnet: a buy spends min(size, traders' TAO); a sell offers
  min(size * alpha / tao, traders' alpha) of alpha;
* a swap of 0 or one the pool refuses (minimum reserve) is skipped and counted.
"""

from __future__ import annotations

import math

import numpy as np

from amm.coinbase import ChainState, SubnetState, run_block
from amm.ledger import Ledger
from amm.plan import Plan
from amm.pool import InsufficientLiquidity, Pool
from amm.result import SimResult


def initial_state(plan: Plan) -> tuple[ChainState, Ledger]:
    ledger = Ledger()
    for account, balance in plan.accounts.items():
        ledger.tao_balances[account] = balance
    subnets = []
    for i, name in enumerate(plan.names):
        netuid = int(plan.netuid[i])
        issuance = int(plan.alpha[i] + plan.outstanding[i] + plan.trader_alpha[i])
        subnets.append(SubnetState(
            netuid=netuid, pool=Pool(int(plan.tao[i]), int(plan.alpha[i])), alpha_issuance=issuance,
            ema_price=float(plan.ema_price[i]), blocks_since_start=int(plan.age[i]),
            tempo=int(plan.tempo[i]), emission_enabled=bool(plan.enabled[i])))
        ledger.alpha_stakes[(netuid, "holders")] = int(plan.outstanding[i])
        ledger.tao_balances[trader(name)] = int(plan.trader_tao[i])
        ledger.alpha_stakes[(netuid, trader(name))] = int(plan.trader_alpha[i])
    if plan.root_stake:
        ledger.root_stakes["root-stakers"] = plan.root_stake
    state = ChainState(block=0, total_issuance=plan.initial_issuance, root=Pool.root(plan.root_stake),
                       subnets=subnets)
    ledger.audit(state)
    return state, ledger


def trader(name: str) -> str:
    return f"trader:{name}"


def run_reference(plan: Plan, audit_every: int = 1) -> SimResult:
    state, ledger = initial_state(plan)
    n = plan.n_subnets
    names = plan.names
    tao_emitted = [0] * n
    tao_injected = [0] * n
    alpha_injected = [0] * n
    alpha_out = [0] * n
    paid = np.zeros((3, n), dtype=np.int64)
    samples, s_price, s_share, s_paid = [], [], [], []
    executed = skipped = events_skipped = 0
    events = list(plan.events)
    ev = 0
    tr = plan.trades
    k = 0

    for block in range(plan.blocks):
        result = run_block(state, plan.params)
        state = result.state
        share = [0.0] * n
        minted = result.tao_minted
        for inj in result.injections:
            i = inj.netuid - 1
            tao_emitted[i] += inj.tao_emission
            tao_injected[i] += inj.tao_in
            alpha_injected[i] += inj.alpha_in
            alpha_out[i] += inj.alpha_out
            share[i] = inj.tao_emission / minted if minted else 0.0
        ledger.credit_payouts(result)
        for p in result.payouts:
            paid[:, p.netuid - 1] += (p.owner, p.miner, p.validator)

        while ev < len(events) and events[ev].block == block:
            e = events[ev]
            ev += 1
            netuid = 0 if e.subnet < 0 else e.subnet + 1
            try:
                if e.action == "stake":
                    amount = min(e.amount, ledger.tao_balances[e.account])
                    if amount <= 0:
                        raise InsufficientLiquidity("nothing to stake")
                    ledger.stake(state, e.account, netuid, amount)
                else:
                    held = (ledger.root_stakes[e.account] if netuid == 0
                            else ledger.alpha_stakes[(netuid, e.account)])
                    amount = min(e.amount, held) if e.amount is not None else int(math.floor(held * e.fraction))
                    if amount <= 0:
                        raise InsufficientLiquidity("nothing to unstake")
                    ledger.unstake(state, e.account, netuid, amount)
            except InsufficientLiquidity:
                events_skipped += 1

        while k < len(tr) and tr.block[k] == block:
            i = int(tr.subnet[k])
            netuid = i + 1
            who = trader(names[i])
            pool = state.subnets[i].pool
            value = int(tr.value[k])
            try:
                if tr.buy[k]:
                    amount = min(value, ledger.tao_balances[who])
                    if amount <= 0:
                        raise InsufficientLiquidity("no TAO")
                    ledger.stake(state, who, netuid, amount)
                else:
                    amount = min(value * pool.alpha // pool.tao, ledger.alpha_stakes[(netuid, who)])
                    if amount <= 0:
                        raise InsufficientLiquidity("no alpha")
                    ledger.unstake(state, who, netuid, amount)
                executed += 1
            except InsufficientLiquidity:
                skipped += 1
            k += 1

        if audit_every and (block + 1) % audit_every == 0:
            ledger.audit(state)
        if (block + 1) % plan.record_every == 0 or block == plan.blocks - 1:
            samples.append(block)
            s_price.append([s.pool.price for s in state.subnets])
            s_share.append(share)
            s_paid.append(list(paid.sum(axis=0)))

    ledger.audit(state)
    subs = state.subnets
    final = {
        "price": np.array([s.pool.price for s in subs]),
        "ema_price": np.array([s.ema_price for s in subs]),
        "flow_ema": np.array([s.flow_ema for s in subs]),
        "tao_reserve": np.array([s.pool.tao for s in subs], dtype=np.int64),
        "alpha_reserve": np.array([s.pool.alpha for s in subs], dtype=np.int64),
        "tao_emitted": np.array(tao_emitted, dtype=np.int64),
        "tao_injected": np.array(tao_injected, dtype=np.int64),
        "alpha_injected": np.array(alpha_injected, dtype=np.int64),
        "alpha_out": np.array(alpha_out, dtype=np.int64),
        "owner_paid": paid[0].copy(), "miner_paid": paid[1].copy(), "validator_paid": paid[2].copy(),
        "pending": np.array([s.pending.total for s in subs], dtype=np.int64),
        "protocol_alpha": np.array([s.protocol_alpha for s in subs], dtype=np.int64),
        "alpha_recycled": np.array([s.alpha_recycled for s in subs], dtype=np.int64),
        "alpha_issuance": np.array([s.alpha_issuance for s in subs], dtype=np.int64),
        "trader_tao": np.array([ledger.tao_balances[trader(nm)] for nm in names], dtype=np.int64),
        "trader_alpha": np.array([ledger.alpha_stakes[(i + 1, trader(nm))] for i, nm in enumerate(names)],
                                 dtype=np.int64),
    }
    return SimResult(
        scenario=plan.scenario.name, model=plan.params.model, seed=plan.seed, blocks=plan.blocks,
        names=names, final=final, total_issuance=state.total_issuance, root_stake=state.root.tao,
        trades_executed=executed, trades_skipped=skipped, events_skipped=events_skipped,
        sample_blocks=np.array(samples, dtype=np.int64), series_price=np.array(s_price),
        series_share=np.array(s_share), series_paid=np.array(s_paid, dtype=np.int64),
        conservation="exact (ledger audited every block)" if audit_every == 1 else "exact (ledger audited)",
        engine="reference")
