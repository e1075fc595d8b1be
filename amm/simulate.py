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
from amm.plan import Plan, ScriptedEvent, Trades
from amm.pool import swap
from amm.result import SimResult
from amm.units import DEFAULT_FEE_RATE, DEFAULT_MIN_RESERVE, U16_MAX

F64 = np.float64
EXACT_LIMIT = 2.0**53  # float64 holds every integer below this exactly


def run_vectorised(plan: Plan, progress: Callable[[int], None] | None = None,
                   progress_every: int = 10_000) -> SimResult:
    """Run ``plan``: per block the coinbase, the moving averages, the tempo payouts, then the users'
    and traders' flows, sampling the series every ``plan.record_every`` blocks."""
    p = plan.params
    model = p.model
    n = plan.n_subnets
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

    accrued = np.zeros((3, n))  # owner / miner / validator alpha accrued so far
    paid = np.zeros((3, n))  # ... of which paid at epochs (pending = accrued - paid)
    protocol = np.zeros(n)
    recycled = np.zeros(n)
    cumulative = np.zeros((3, n))  # (tao_emission, tao_in, alpha_in) summed over blocks
    total_issuance = plan.initial_issuance
    epochs = _EpochSchedule(plan.tempo, plan.netuid)
    users = _UserEvents(plan.events, plan.accounts, plan.root_stake, fee_rate, min_reserve)
    traders = _Traders(plan.trades, plan.trader_tao, plan.trader_alpha, fee_rate, min_reserve)
    series = _Series()

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
    alpha_em, split, alpha_lower, alpha_upper, alpha_check_at = _alpha_emission(issuance_a, enabled,
                                                                                p.owner_cut, 0)

    record_every = plan.record_every
    last_block = plan.blocks - 1
    wt = p.tao_weight * float(users.root_stake)
    moving_alpha = p.moving_alpha
    halving_f = float(p.ema_halving_blocks)
    price_cap = p.price_cap
    flow_f = p.flow_ema_factor
    launch, flow_model = model == "launch", model == "flow"
    largest = 0.0  # largest money value seen, to prove float64 stayed exact

    for block in range(plan.blocks):
        # ---- coinbase -------------------------------------------------------------------------
        if total_issuance >= next_tao_threshold:
            emission = block_emission(total_issuance)
            next_tao_threshold = next_halving_issuance(total_issuance)
        if block >= alpha_check_at:
            largest = max(largest, float(R.max()), float(issuance_a.max()))
            if (issuance_a >= alpha_upper).any() or (issuance_a < alpha_lower).any():
                alpha_em, split, alpha_lower, alpha_upper, alpha_check_at = _alpha_emission(
                    issuance_a, enabled, p.owner_cut, block)
            else:
                alpha_check_at = _next_alpha_check(block, issuance_a, alpha_upper, alpha_em)

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
        due = epochs.due(block)
        if due is not None:
            paid[:, due] = accrued[:, due]

        # ---- user flows (scalar Python ints, one subnet each) --------------------------------
        if block == users.next_block:
            users.run(block, tau, alpha, flow)
            wt = p.tao_weight * float(users.root_stake)
        if block == traders.next_block:
            traders.run(block, tau, alpha, flow)

        if (block + 1) % record_every == 0 or block == last_block:
            largest = max(largest, float(R.max()), float(traders.tao_held.max(initial=0.0)))
            series.record(block, tau, alpha, tao_em, minted, paid)
        if progress is not None and (block + 1) % progress_every == 0:
            progress(block + 1)
    if progress is not None:
        progress(plan.blocks)

    trader_tao, trader_alpha = traders.tao_held, traders.alpha_held
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
        scenario=plan.scenario.name, model=model, seed=plan.seed, blocks=plan.blocks, names=plan.names,
        final=final, total_issuance=total_issuance, root_stake=users.root_stake,
        trades_executed=traders.executed, trades_skipped=traders.skipped, events_skipped=users.skipped,
        sample_blocks=np.array(series.blocks, dtype=np.int64), series_price=np.array(series.price),
        series_share=np.array(series.share), series_paid=np.array(series.paid).astype(np.int64),
        engine="vectorised")
    result.conservation = audit_vectorised(plan, result, users.tao, users.alpha)
    return result


# ---- the rare steps of a block, each touching few subnets ----------------------------------------


def _alpha_emission(issuance: np.ndarray, enabled: np.ndarray, owner_cut: int, block: int):
    """Each subnet's alpha emission per block at its current issuance, its owner / miner / validator
    split, the issuance range [lower, upper) where that holds, and the block to check it again."""
    em, lower, upper = emission_step_array(issuance.astype(np.int64))
    em = em * enabled
    owner = em * owner_cut // U16_MAX
    miner = (em - owner) // 2
    split = np.stack([owner, miner, em - owner - miner]).astype(F64)
    em, lower, upper = em.astype(F64), lower.astype(F64), upper.astype(F64)
    return em, split, lower, upper, _next_alpha_check(block, issuance, upper, em)


def _next_alpha_check(block: int, issuance: np.ndarray, upper: np.ndarray, em: np.ndarray) -> int:
    # A subnet's alpha emission only changes when its issuance leaves [lower, upper); issuance
    # grows by at most 2 * emission per block, so nothing can change before this block.
    return block + max(1, int((upper - issuance).min()) // (2 * max(1, int(em.max())) + 1))


class _EpochSchedule:
    """Which subnets run their epoch at a block: subnet i at the blocks b with
    (b + netuid_i + 1) % (tempo_i + 1) == 0."""

    def __init__(self, tempo: np.ndarray, netuid: np.ndarray):
        self._period = tempo + 1
        self._by_residue = None
        if (self._period == self._period[0]).all():  # one tempo: a table by block residue
            t1 = int(self._period[0])
            self._by_residue = [due if len(due) else None
                                for due in (np.flatnonzero((r + netuid + 1) % t1 == 0) for r in range(t1))]
        self._next = (-(netuid + 1)) % self._period
        self._next_any = int(self._next.min())

    def due(self, block: int) -> np.ndarray | None:
        """Indices (or a mask) of the subnets whose epoch is at ``block``; None when there are none."""
        if self._by_residue is not None:
            return self._by_residue[block % len(self._by_residue)]
        if block != self._next_any:
            return None
        due = self._next == block
        self._next[due] += self._period[due]
        self._next_any = int(self._next.min())
        return due


class _UserEvents:
    """The scenario's scripted stakes and unstakes by named accounts, applied at their blocks: on
    root 1:1 without fee, on a subnet through its pool (amm.pool.swap). One that cannot be filled
    (nothing to spend, or the pool would fall below its minimum reserve) is skipped and counted."""

    def __init__(self, events: tuple[ScriptedEvent, ...], accounts: dict[str, int], root_stake: int,
                 fee_rate: int, min_reserve: int):
        self._events = events
        self._at = 0
        self._fee_rate, self._min_reserve = fee_rate, min_reserve
        self.tao = dict(accounts)  # account -> free TAO
        self.alpha: dict[tuple[str, int], int] = {}  # (account, subnet index or -1 for root) -> stake
        self.root_stake = root_stake
        self.skipped = 0
        self.next_block = events[0].block if events else -1

    def run(self, block: int, tau: np.ndarray, alpha: np.ndarray, flow: np.ndarray) -> None:
        """Apply the events of ``block`` (the next ones) to the reserves and this block's flow."""
        events = self._events
        while self._at < len(events) and events[self._at].block == block:
            event = events[self._at]
            self._at += 1
            filled = self._on_root(event) if event.subnet < 0 else self._on_subnet(event, tau, alpha, flow)
            if not filled:
                self.skipped += 1
        self.next_block = events[self._at].block if self._at < len(events) else -1

    @staticmethod
    def _unstake_amount(event: ScriptedEvent, held: int) -> int:
        return min(event.amount, held) if event.amount is not None else int(math.floor(held * event.fraction))

    def _on_root(self, e: ScriptedEvent) -> bool:
        key = (e.account, -1)
        if e.action == "stake":
            amount = min(e.amount, self.tao.get(e.account, 0))
            if amount <= 0:
                return False
            self.tao[e.account] -= amount
            self.root_stake += amount
        else:
            amount = self._unstake_amount(e, self.alpha.get(key, 0))
            if amount <= 0 or amount > self.root_stake:
                return False
            self.root_stake -= amount
            self.tao[e.account] += amount
            amount = -amount
        self.alpha[key] = self.alpha.get(key, 0) + amount
        return True

    def _on_subnet(self, e: ScriptedEvent, tau: np.ndarray, alpha: np.ndarray, flow: np.ndarray) -> bool:
        i = e.subnet
        key = (e.account, i)
        if e.action == "stake":
            amount = min(e.amount, self.tao.get(e.account, 0))
            out = pool_buy(tau, alpha, flow, i, amount, self._fee_rate, self._min_reserve)
            if out is None:
                return False
            self.tao[e.account] -= amount
            self.alpha[key] = self.alpha.get(key, 0) + out
        else:
            held = self.alpha.get(key, 0)
            amount = self._unstake_amount(e, held)
            out = pool_sell(tau, alpha, flow, i, amount, self._fee_rate, self._min_reserve)
            if out is None:
                return False
            self.alpha[key] = held - amount
            self.tao[e.account] += out
        return True


def pool_buy(tau: np.ndarray, alpha: np.ndarray, flow: np.ndarray, i: int, amount: int, fee_rate: int,
             min_reserve: int) -> int | None:
    """Stake `amount` TAO into subnet i's pool (reserves and the block's flow updated in place);
    the alpha bought, or None when there is nothing to spend or the pool would fall below its
    minimum reserve (then nothing changes)."""
    t_res, a_res = int(tau[i]), int(alpha[i])
    if amount <= 0:
        return None
    _, out = swap(t_res, a_res, amount, fee_rate)
    if a_res - out < min_reserve:
        return None
    tau[i], alpha[i] = t_res + amount, a_res - out
    flow[i] += amount
    return out


def pool_sell(tau: np.ndarray, alpha: np.ndarray, flow: np.ndarray, i: int, amount: int, fee_rate: int,
              min_reserve: int) -> int | None:
    """Unstake `amount` alpha from subnet i's pool, as `pool_buy`; the TAO received or None."""
    t_res, a_res = int(tau[i]), int(alpha[i])
    if amount <= 0:
        return None
    _, out = swap(a_res, t_res, amount, fee_rate)
    if t_res - out < min_reserve:
        return None
    tau[i], alpha[i] = t_res - out, a_res + amount
    flow[i] -= out
    return out


class _Traders:
    """The plan's stochastic trades in block order, each against one subnet's pool and paid from
    that subnet's traders' balances. One that cannot be filled (nothing to spend, or the pool would
    fall below its minimum reserve) is skipped and counted."""

    def __init__(self, trades: Trades, tao_held: np.ndarray, alpha_held: np.ndarray, fee_rate: int,
                 min_reserve: int):
        self._block, self._subnet, self._buy, self._value = (trades.block.tolist(), trades.subnet.tolist(),
                                                             trades.buy.tolist(), trades.value.tolist())
        self._at = 0
        self._fee_rate, self._min_reserve = fee_rate, min_reserve
        self.tao_held = tao_held.astype(F64)  # per subnet, whole rao
        self.alpha_held = alpha_held.astype(F64)
        self.executed = self.skipped = 0
        self.next_block = self._block[0] if self._block else -1

    def run(self, block: int, tau: np.ndarray, alpha: np.ndarray, flow: np.ndarray) -> None:
        """Make the trades of ``block`` (the next ones) against the reserves and this block's flow."""
        at, count, blocks = self._at, len(self._block), self._block
        while at < count and blocks[at] == block:
            if self._trade(self._subnet[at], self._buy[at], self._value[at], tau, alpha, flow):
                self.executed += 1
            else:
                self.skipped += 1
            at += 1
        self._at = at
        self.next_block = blocks[at] if at < count else -1

    def _trade(self, i: int, buy: bool, value: int, tau: np.ndarray, alpha: np.ndarray,
               flow: np.ndarray) -> bool:
        if buy:
            amount = min(value, int(self.tao_held[i]))
            out = pool_buy(tau, alpha, flow, i, amount, self._fee_rate, self._min_reserve)
            if out is None:
                return False
            self.tao_held[i] -= amount
            self.alpha_held[i] += out
        else:
            # value is TAO worth at the spot price
            amount = min(value * int(alpha[i]) // int(tau[i]), int(self.alpha_held[i]))
            out = pool_sell(tau, alpha, flow, i, amount, self._fee_rate, self._min_reserve)
            if out is None:
                return False
            self.alpha_held[i] -= amount
            self.tao_held[i] += out
        return True


class _Series:
    """The sampled time series: per subnet price, share of the block's TAO emission, alpha paid."""

    def __init__(self):
        self.blocks: list[int] = []
        self.price: list[np.ndarray] = []
        self.share: list[np.ndarray] = []
        self.paid: list[np.ndarray] = []

    def record(self, block: int, tau: np.ndarray, alpha: np.ndarray, tao_em: np.ndarray, minted: int,
               paid: np.ndarray) -> None:
        self.blocks.append(block)
        self.price.append(tau / alpha)
        self.share.append(tao_em / minted if minted else np.zeros(len(tau)))
        self.paid.append(paid.sum(axis=0))


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
