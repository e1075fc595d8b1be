"""A scenario compiled for a run: initial state as arrays and every user flow drawn up front.

Both engines (the vectorised `amm.simulate` and the exact per-block `amm.reference`) consume the
same Plan, so they see identical trades. Stochastic traders are drawn here from the seed: per
subnet, geometric gaps between trades (rate per block p, at most one trade per subnet per block),
a size from the chosen distribution and a side (buy with probability `buy_prob`). Each subnet has
its own stream seeded by (seed, subnet index), so adding a subnet does not change the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from amm.coinbase import Params
from amm.scenario import ROOT_NAME, Scenario
from amm.shares import check_model
from amm.units import BLOCKS_PER_DAY, RAO_PER_TAO


@dataclass(frozen=True)
class ScriptedEvent:
    block: int
    account: str
    subnet: int  # index into the subnet arrays, -1 for root
    action: str  # "stake" | "unstake"
    amount: int | None
    fraction: float | None


@dataclass(frozen=True)
class Trades:
    """Stochastic trades sorted by (block, subnet): one trade per subnet per block at most."""

    block: np.ndarray  # int64
    subnet: np.ndarray  # int64 subnet index
    buy: np.ndarray  # bool
    value: np.ndarray  # int64 rao of TAO (for sells: TAO worth of alpha at the spot price)

    def __len__(self) -> int:
        return len(self.block)


@dataclass(frozen=True)
class Plan:
    scenario: Scenario
    params: Params
    blocks: int
    seed: int
    names: tuple[str, ...]
    netuid: np.ndarray  # subnet index + 1 (netuid 0 is root)
    tempo: np.ndarray
    enabled: np.ndarray
    tao: np.ndarray
    alpha: np.ndarray
    outstanding: np.ndarray
    ema_price: np.ndarray
    age: np.ndarray
    root_stake: int
    accounts: dict[str, int]
    events: tuple[ScriptedEvent, ...]
    trades: Trades
    trader_tao: np.ndarray  # initial TAO of each subnet's traders
    trader_alpha: np.ndarray
    record_every: int

    @property
    def n_subnets(self) -> int:
        return len(self.names)

    @property
    def initial_issuance(self) -> int:
        return (sum(self.accounts.values()) + self.root_stake + int(self.tao.sum())
                + int(self.trader_tao.sum()))


def draw_trades(rate_per_day: np.ndarray, dist: list, mean_tao: np.ndarray, sigma: np.ndarray,
                buy_prob: np.ndarray, blocks: int, seed: int) -> Trades:
    """Draw every stochastic trade of the run (pure: same inputs, same trades)."""
    parts = []
    for i, rate in enumerate(rate_per_day):
        p = rate / BLOCKS_PER_DAY
        if p <= 0:
            continue
        rng = np.random.default_rng([seed, i])
        expected = p * blocks
        gaps = rng.geometric(min(p, 1.0), size=int(expected + 8 * math.sqrt(expected) + 16))
        while gaps.sum() < blocks:  # rarely needed: draw more until the horizon is covered
            gaps = np.concatenate([gaps, rng.geometric(min(p, 1.0), size=len(gaps))])
        at = np.cumsum(gaps) - 1
        at = at[at < blocks]
        n = len(at)
        if dist[i] == "lognormal":
            mu = math.log(mean_tao[i]) - sigma[i] ** 2 / 2  # so the mean is mean_tao
            size = rng.lognormal(mu, sigma[i], n)
        elif dist[i] == "exponential":
            size = rng.exponential(mean_tao[i], n)
        else:
            size = np.full(n, mean_tao[i])
        buy = rng.random(n) < buy_prob[i]
        value = np.floor(size * RAO_PER_TAO).astype(np.int64)
        parts.append((at.astype(np.int64), np.full(n, i, dtype=np.int64), buy, value))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Trades(empty, empty, np.zeros(0, dtype=bool), empty)
    block, subnet, buy, value = (np.concatenate(x) for x in zip(*parts))
    order = np.lexsort((subnet, block))
    return Trades(block[order], subnet[order], buy[order], value[order])


def compile_plan(scenario: Scenario, blocks: int | None = None, model: str | None = None,
                 seed: int | None = None) -> Plan:
    blocks = scenario.blocks if blocks is None else blocks
    if blocks < 1:
        raise ValueError("blocks must be >= 1")
    model = check_model(scenario.model if model is None else model)
    seed = scenario.seed if seed is None else seed
    params = Params(model=model, tao_weight=scenario.tao_weight, moving_alpha=scenario.moving_alpha,
                    ema_halving_blocks=scenario.ema_halving_blocks)
    subs = scenario.subnets
    names = tuple(s.name for s in subs)
    index = {n: i for i, n in enumerate(names)}
    tao = np.array([s.tao for s in subs], dtype=np.int64)
    alpha = np.array([s.alpha for s in subs], dtype=np.int64)
    ema = np.array([s.ema_price if s.ema_price is not None else min(s.tao / s.alpha, 1.0) for s in subs])

    n = len(subs)
    rate, mean, sigma, buy_prob = np.zeros(n), np.ones(n), np.ones(n), np.full(n, 0.5)
    dist = ["fixed"] * n
    trader_tao = np.zeros(n, dtype=np.int64)
    trader_alpha = np.zeros(n, dtype=np.int64)
    for t in scenario.traders:
        for name in t.subnets:
            i = index[name]
            rate[i], mean[i], sigma[i], buy_prob[i] = t.rate_per_day, t.size.mean_tao, t.size.sigma, t.buy_prob
            dist[i] = t.size.dist
            trader_tao[i], trader_alpha[i] = t.balance_tao, t.alpha
    trades = draw_trades(rate, dist, mean, sigma, buy_prob, blocks, seed)

    events = tuple(sorted(
        (ScriptedEvent(e.block, e.account, -1 if e.subnet == ROOT_NAME else index[e.subnet], e.action,
                       e.amount, e.fraction) for e in scenario.events if e.block < blocks),
        key=lambda e: e.block))  # stable: same-block events keep file order
    return Plan(
        scenario=scenario, params=params, blocks=blocks, seed=seed, names=names,
        netuid=np.arange(1, n + 1, dtype=np.int64),
        tempo=np.array([s.tempo for s in subs], dtype=np.int64),
        enabled=np.array([s.emission for s in subs], dtype=bool),
        tao=tao, alpha=alpha,
        outstanding=np.array([s.outstanding_alpha for s in subs], dtype=np.int64),
        ema_price=ema, age=np.array([s.age_blocks for s in subs], dtype=np.int64),
        root_stake=scenario.root_stake, accounts=dict(scenario.accounts), events=events,
        trades=trades, trader_tao=trader_tao, trader_alpha=trader_alpha,
        record_every=max(1, blocks // scenario.record_points))

