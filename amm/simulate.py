"""The vectorised simulator: one Python step per block, numpy over subnets.

It runs exactly the rules of the per-block exact path (`amm.coinbase.run_block`, driven by
`amm.reference`), so on the same plan the two give identical results, to the rao and to the bit
of every float (tests/amm/test_simulate.py checks it; bench/amm.py states it). How:

* money is float64 holding whole rao. Sums and differences of integers below 2^53 (9M TAO) are
  exact in float64; the run raises OverflowError if any balance gets near that.
* every rounded amount is the same IEEE expression as in amm.coinbase (spot conversions as
  floor(amount * ratio), the chain buy as floor(alpha * excess / (tau + excess)), shares as
  floor(E * w / sum w)), evaluated elementwise by numpy, which rounds like Python floats.
* trades and scripted events touch one subnet each and run as scalar Python ints (amm.pool.swap).

The per-block cost is a fixed number of numpy calls over S subnets, so time grows with blocks x
(overhead + S); bench/amm.py reports it.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from amm.emission import block_emission, emission_step_array, next_halving_issuance
from amm.plan import Plan
from amm.pool import swap
from amm.result import SimResult
from amm.units import DEFAULT_FEE_RATE, DEFAULT_MIN_RESERVE, U16_MAX

F64 = np.float64
EXACT_LIMIT = 2.0**53  # float64 holds every integer below this exactly


def run_vectorised(plan: Plan, progress: Callable[[int], None] | None = None,
                   progress_every: int = 10_000) -> SimResult:
    p = plan.params
    model = p.model
    n = plan.n_subnets
    names = plan.names
    fee_rate, min_reserve = DEFAULT_FEE_RATE, DEFAULT_MIN_RESERVE
    mul, div, add, sub, floor = np.multiply, np.divide, np.add, np.subtract, np.floor
    minimum, add_reduce = np.minimum, np.add.reduce

    # ---- state: money as float64 holding whole rao (exact below 2^53, checked at the end) ----
    # Row views let related quantities move in one call: R = (tau, alpha) reserves;
    # STEP = (cap, tao_emission, tao_in, alpha_in) of the current block.
    R = np.stack([plan.tao, plan.alpha]).astype(F64)
    tau, alpha = R[0], R[1]
    R_swapped = R[::-1]
    issuance_a = (plan.alpha + plan.outstanding + plan.trader_alpha).astype(F64)
    ema = plan.ema_price.astype(F64).copy()
    flow_ema = np.zeros(n)
    flow = np.zeros(n)  # net user TAO this block
    enabled = plan.enabled.copy()
    enabled_f = enabled.astype(F64)
    all_enabled = bool(enabled.all())
    age0 = plan.age.astype(F64)
    same_age = bool((plan.age == plan.age[0]).all())
    tempo1 = plan.tempo + 1
    netuid = plan.netuid

    accrued = np.zeros((3, n))  # owner / miner / validator alpha accrued so far
    paid = np.zeros((3, n))  # ... of which paid at epochs (pending = accrued - paid)
    protocol = np.zeros(n)
    recycled = np.zeros(n)
    cumulative = np.zeros((3, n))  # (tao_emission, tao_in, alpha_in) summed over blocks
    trader_tao = plan.trader_tao.astype(F64)
    trader_alpha = plan.trader_alpha.astype(F64)
    acct_tao = dict(plan.accounts)
    acct_alpha: dict[tuple[str, int], int] = {}
    root_stake = plan.root_stake
    total_issuance = plan.initial_issuance

    # ---- per-block scratch ----------------------------------------------------------------
    fa = np.empty(n)
    fb = np.empty(n)
    w = np.empty(n)
    STEP = np.zeros((4, n))
    cap, tao_em, tao_in, alpha_in = STEP
    XC = STEP[0:2]  # (cap, tao_emission)
    IN = STEP[2:4]  # (tao_in, alpha_in)
    per_block = STEP[1:4]
    P2 = np.empty((2, n))  # (price, 1 / price) as tau/alpha and alpha/tau
    Q = np.empty((2, n))  # (TAO worth cap, alpha worth tao_emission) at spot
    excess = np.empty(n)
    bought = np.empty(n)
    denom = np.empty(n)
    price = np.empty(n)

    # Block emission is piecewise constant: recompute it only when issuance crosses a threshold.
    emission = block_emission(total_issuance)
    next_tao_threshold = next_halving_issuance(total_issuance)

    def refresh_alpha_emission(block):
        # a subnet's alpha emission only changes when its issuance leaves [lower, upper); issuance
        # grows by at most 2 * emission per block, so nothing can change before `check_at`.
        em, lower, upper = emission_step_array(issuance_a.astype(np.int64))
        em = em * enabled
        owner = em * p.owner_cut // U16_MAX
        miner = (em - owner) // 2
        split = np.stack([owner, miner, em - owner - miner]).astype(F64)
        check_at = block + max(1, int((upper - issuance_a).min()) // (2 * max(1, int(em.max())) + 1))
        return em.astype(F64), split, lower.astype(F64), upper.astype(F64), check_at

    alpha_em, split, alpha_lower, alpha_upper, alpha_check_at = refresh_alpha_emission(0)

    uniform_tempo = bool((tempo1 == tempo1[0]).all())
    if uniform_tempo:  # epoch of subnet i at blocks b with (b + netuid_i + 1) % (tempo + 1) == 0
        t1 = int(tempo1[0])
        due_at_residue = [np.flatnonzero((r + netuid + 1) % t1 == 0) for r in range(t1)]
    next_epoch = (-(netuid + 1)) % tempo1
    next_any_epoch = int(next_epoch.min())

    trades = plan.trades
    t_block, t_sub, t_buy, t_val = (trades.block.tolist(), trades.subnet.tolist(),
                                    trades.buy.tolist(), trades.value.tolist())
    n_trades = len(t_block)
    k = 0
    events = plan.events
    n_events = len(events)
    ev = 0
    executed = skipped = events_skipped = 0

    samples, s_price, s_share, s_paid = [], [], [], []
    record_every = plan.record_every
    wt = p.tao_weight * float(root_stake)
    moving_alpha = p.moving_alpha
    halving_f = float(p.ema_halving_blocks)
    price_cap = p.price_cap
    flow_f = p.flow_ema_factor
    launch, flow_model = model == "launch", model == "flow"
    next_trade_block = t_block[0] if n_trades else -1
    next_event_block = events[0].block if n_events else -1
    largest = 0.0  # largest money value seen, to prove float64 stayed exact

    for block in range(plan.blocks):
        # ---- coinbase -------------------------------------------------------------------------
        if total_issuance >= next_tao_threshold:
            emission = block_emission(total_issuance)
            next_tao_threshold = next_halving_issuance(total_issuance)
        if block >= alpha_check_at:
            largest = max(largest, float(R.max()), float(issuance_a.max()))
            if (issuance_a >= alpha_upper).any() or (issuance_a < alpha_lower).any():
                alpha_em, split, alpha_lower, alpha_upper, alpha_check_at = refresh_alpha_emission(block)
            else:
                alpha_check_at = block + max(1, int((alpha_upper - issuance_a).min())
                                             // (2 * max(1, int(alpha_em.max())) + 1))

        # shares -> tao_emission = floor(E * w / sum w)   (amm.shares.split_emission)
        if flow_model:
            lowest = min(float(flow_ema[enabled].min()), 0.0) if enabled.any() else 0.0
            sub(flow_ema, lowest, out=w)
            np.maximum(w, 0.0, out=w)
            if not all_enabled:
                mul(w, enabled_f, out=w)
            if not add_reduce(w) > 0.0:
                w[...] = enabled_f
            weights = w
        elif all_enabled:
            weights = ema
        else:
            mul(ema, enabled_f, out=w)
            weights = w
        total_w = float(add_reduce(weights))
        if total_w > 0.0 and emission > 0:
            mul(weights, float(emission), out=tao_em)
            div(tao_em, total_w, out=tao_em)
            floor(tao_em, out=tao_em)
        else:
            tao_em[...] = 0.0

        # alpha cap (amm.coinbase.alpha_cap)
        if launch:
            cap[...] = alpha_em
        elif flow_model:
            minimum(alpha_em, float(emission), out=cap)
        else:
            add(issuance_a, wt, out=fb)  # root proportion w*tau_root / (w*tau_root + issuance)
            div(wt, fb, out=fb)
            mul(fb, alpha_em, out=cap)
            floor(cap, out=cap)
        # both spot conversions at once (amm.coinbase.tao_for_alpha / alpha_for_tao)
        div(R, R_swapped, out=P2)
        mul(XC, P2, out=Q)
        floor(Q, out=Q)
        minimum(XC[::-1], Q, out=IN)  # (min(tao_em, TAO worth cap), min(cap, alpha worth tao_em))
        if launch:
            tao_in[...] = tao_em  # all TAO goes in even when alpha is capped
        R += IN
        if not launch:
            # excess TAO buys alpha fee-free (amm.coinbase.chain_buy)
            sub(tao_em, tao_in, out=excess)
            add(tau, excess, out=denom)
            mul(alpha, excess, out=bought)
            div(bought, denom, out=bought)
            floor(bought, out=bought)
            tau += excess
            alpha -= bought
            if alpha.min() < min_reserve:
                short = alpha < min_reserve
                alpha[short] += bought[short]
                bought[short] = 0.0
            if flow_model:
                recycled += bought
                issuance_a -= bought
            else:
                protocol += bought
        accrued += split
        issuance_a += alpha_in
        issuance_a += alpha_em
        cumulative += per_block
        minted = int(add_reduce(tao_em))
        total_issuance += minted

        # ---- moving averages ------------------------------------------------------------------
        div(tau, alpha, out=price)
        minimum(price, price_cap, out=fa)
        if launch:
            factor = moving_alpha
            mul(fa, factor, out=fa)
            mul(ema, 1.0 - factor, out=ema)
        elif same_age:
            b = age0[0] + float(block)
            factor = moving_alpha * b / (b + halving_f)
            mul(fa, factor, out=fa)
            mul(ema, 1.0 - factor, out=ema)
        else:
            add(age0, float(block), out=fb)
            mul(fb, moving_alpha, out=w)
            add(fb, halving_f, out=fb)
            div(w, fb, out=w)  # per-subnet factor
            mul(fa, w, out=fa)
            sub(1.0, w, out=w)
            mul(ema, w, out=ema)
        add(fa, ema, out=ema)
        if flow_model:
            mul(flow, flow_f, out=fa, dtype=F64)
            mul(flow_ema, 1.0 - flow_f, out=flow_ema)
            add(fa, flow_ema, out=flow_ema)
            flow[...] = 0

        # ---- tempo payouts: an epoch pays out everything accrued so far ----------------------
        if uniform_tempo:
            due = due_at_residue[block % t1]
            if len(due):
                paid[:, due] = accrued[:, due]
        elif block == next_any_epoch:
            due = next_epoch == block
            paid[:, due] = accrued[:, due]
            next_epoch[due] += tempo1[due]
            next_any_epoch = int(next_epoch.min())

        # ---- user flows (scalar Python ints, one subnet each) --------------------------------
        if block == next_event_block:
            while ev < n_events and events[ev].block == block:
                e = events[ev]
                ev += 1
                i = e.subnet
                if i < 0:  # root: 1:1, no fee
                    if e.action == "stake":
                        amount = min(e.amount, acct_tao.get(e.account, 0))
                        if amount <= 0:
                            events_skipped += 1
                            continue
                        acct_tao[e.account] -= amount
                        root_stake += amount
                    else:
                        held = acct_alpha.get((e.account, -1), 0)
                        amount = min(e.amount, held) if e.amount is not None else int(math.floor(held * e.fraction))
                        if amount <= 0 or amount > root_stake:
                            events_skipped += 1
                            continue
                        root_stake -= amount
                        acct_tao[e.account] += amount
                        amount = -amount
                    acct_alpha[(e.account, -1)] = acct_alpha.get((e.account, -1), 0) + amount
                    wt = p.tao_weight * float(root_stake)
                    continue
                t_res, a_res = int(tau[i]), int(alpha[i])
                if e.action == "stake":
                    amount = min(e.amount, acct_tao.get(e.account, 0))
                    if amount <= 0:
                        events_skipped += 1
                        continue
                    _, out = swap(t_res, a_res, amount, fee_rate)
                    if a_res - out < min_reserve:
                        events_skipped += 1
                        continue
                    tau[i], alpha[i] = t_res + amount, a_res - out
                    acct_tao[e.account] -= amount
                    acct_alpha[(e.account, i)] = acct_alpha.get((e.account, i), 0) + out
                    flow[i] += amount
                else:
                    held = acct_alpha.get((e.account, i), 0)
                    amount = min(e.amount, held) if e.amount is not None else int(math.floor(held * e.fraction))
                    if amount <= 0:
                        events_skipped += 1
                        continue
                    _, out = swap(a_res, t_res, amount, fee_rate)
                    if t_res - out < min_reserve:
                        events_skipped += 1
                        continue
                    tau[i], alpha[i] = t_res - out, a_res + amount
                    acct_alpha[(e.account, i)] = held - amount
                    acct_tao[e.account] += out
                    flow[i] -= out
            next_event_block = events[ev].block if ev < n_events else -1

        if block == next_trade_block:
            while k < n_trades and t_block[k] == block:
                i = t_sub[k]
                t_res, a_res = int(tau[i]), int(alpha[i])
                done = False
                if t_buy[k]:
                    amount = min(t_val[k], int(trader_tao[i]))
                    if amount > 0:
                        _, out = swap(t_res, a_res, amount, fee_rate)
                        if a_res - out >= min_reserve:
                            tau[i], alpha[i] = t_res + amount, a_res - out
                            trader_tao[i] -= amount
                            trader_alpha[i] += out
                            flow[i] += amount
                            done = True
                else:
                    amount = min(t_val[k] * a_res // t_res, int(trader_alpha[i]))
                    if amount > 0:
                        _, out = swap(a_res, t_res, amount, fee_rate)
                        if t_res - out >= min_reserve:
                            tau[i], alpha[i] = t_res - out, a_res + amount
                            trader_alpha[i] -= amount
                            trader_tao[i] += out
                            flow[i] -= out
                            done = True
                if done:
                    executed += 1
                else:
                    skipped += 1
                k += 1
            next_trade_block = t_block[k] if k < n_trades else -1

        if (block + 1) % record_every == 0 or block == plan.blocks - 1:
            largest = max(largest, float(R.max()), float(trader_tao.max(initial=0.0)))
            samples.append(block)
            s_price.append(tau / alpha)
            s_share.append(tao_em / minted if minted else np.zeros(n))
            s_paid.append(paid.sum(axis=0))
        if progress is not None and (block + 1) % progress_every == 0:
            progress(block + 1)
    if progress is not None:
        progress(plan.blocks)

    largest = max(largest, float(R.max()), float(issuance_a.max()), float(cumulative.max()),
                  float(accrued.max()), float(trader_tao.max(initial=0.0)), float(trader_alpha.max(initial=0.0)))
    if largest >= EXACT_LIMIT:
        raise OverflowError(f"a balance reached {largest:.3g} rao, beyond float64's exact integers; "
                            "use amm.reference.run_reference for this scenario")

    def money(x):
        return np.asarray(x).astype(np.int64)

    pending = accrued - paid
    final = {
        "price": tau / alpha, "ema_price": ema, "flow_ema": flow_ema, "tao_reserve": money(tau),
        "alpha_reserve": money(alpha), "tao_emitted": money(cumulative[0]),
        "tao_injected": money(cumulative[1]), "alpha_injected": money(cumulative[2]),
        "alpha_out": money(accrued.sum(axis=0)), "owner_paid": money(paid[0]),
        "miner_paid": money(paid[1]), "validator_paid": money(paid[2]),
        "pending": money(pending.sum(axis=0)), "protocol_alpha": money(protocol),
        "alpha_recycled": money(recycled), "alpha_issuance": money(issuance_a),
        "trader_tao": money(trader_tao), "trader_alpha": money(trader_alpha),
    }
    result = SimResult(
        scenario=plan.scenario.name, model=model, seed=plan.seed, blocks=plan.blocks, names=names,
        final=final, total_issuance=total_issuance, root_stake=root_stake,
        trades_executed=executed, trades_skipped=skipped, events_skipped=events_skipped,
        sample_blocks=np.array(samples, dtype=np.int64), series_price=np.array(s_price),
        series_share=np.array(s_share), series_paid=np.array(s_paid).astype(np.int64),
        engine="vectorised")
    result.conservation = audit_vectorised(plan, result, acct_tao, acct_alpha)
    return result


def audit_vectorised(plan: Plan, r: SimResult, acct_tao: dict, acct_alpha: dict) -> str:
    """Check conservation to the rao at the end of a vectorised run (Python ints, no overflow)."""
    f = r.final
    tao_held = (sum(acct_tao.values()) + r.root_stake + sum(int(x) for x in f["tao_reserve"])
                + sum(int(x) for x in f["trader_tao"]))
    problems = []
    if tao_held != r.total_issuance:
        problems.append(f"TAO issuance {r.total_issuance} != held {tao_held}")
    root_held = sum(v for (a, i), v in acct_alpha.items() if i == -1) + plan.root_stake
    if root_held != r.root_stake:
        problems.append(f"root stake {r.root_stake} != root stakes {root_held}")
    for i, name in enumerate(r.names):
        staked = sum(v for (a, j), v in acct_alpha.items() if j == i)
        held = (int(f["alpha_reserve"][i]) + int(plan.outstanding[i]) + int(f["trader_alpha"][i]) + staked
                + int(f["pending"][i]) + int(f["owner_paid"][i]) + int(f["miner_paid"][i])
                + int(f["validator_paid"][i]) + int(f["protocol_alpha"][i]))
        if held != int(f["alpha_issuance"][i]):
            problems.append(f"subnet {name}: alpha issuance {int(f['alpha_issuance'][i])} != held {held}")
    if problems:
        raise AssertionError("conservation broken: " + "; ".join(problems))
    return "exact (TAO and every subnet's alpha balance to the rao)"
