"""The per-block coinbase: emission, injection into pools, pending buckets and tempo payouts.

This is the exact integer path the chain calls once per block. Sources: subtensor
`coinbase/run_coinbase.rs` (`get_subnet_terms`, `inject_and_maybe_swap`, `emit_to_subnets`,
`drain_pending_emission`) and `staking/stake_utils.rs` (`update_moving_price`); see
../shared/research/dtao.md §3-5 and docs/amm.md.

One block, in order (`run_block`):

1. E = block_emission(total issuance); shares of E by the model (amm.shares); tao_emission_i =
   floor(E * w_i / sum w). Subnets with emission off get nothing at all (no TAO, no alpha).
2. Injection per subnet (`subnet_injection`), model by model:
   * launch:  alpha_in = min(tao_emission / price, alpha_emission); all tao_emission is injected
     (so the price rises when the cap binds).
   * flow:    cap = min(alpha_emission, E); alpha_in = min(tao_emission / price, cap), tao_in =
     min(tao_emission, cap * price); the excess TAO buys alpha (fee free) and that alpha is
     recycled (burned).
   * current: cap = root_proportion * alpha_emission with root_proportion = w*tau_root /
     (w*tau_root + alpha_issuance); as flow, but the bought alpha is kept as protocol alpha.
   tao_in and alpha_in go in together at the current price, so only the excess buy moves it.
   These price conversions are float64 ratios floored to whole rao (subtensor uses fixed point);
   every amount that moves is an integer, so the ledger stays exact.
3. alpha_out = alpha_emission is minted into pending buckets: owner 11796/65535, then miners and
   validators half of the rest each.
4. Moving averages: the price EMA takes the post-coinbase spot price; the flow EMA takes the net
   user TAO flow recorded since the previous block.
5. Every subnet whose epoch is due, (block + netuid + 1) % (tempo + 1) == 0 as in subtensor, pays
   its pending buckets out (the per-hotkey split by Yuma is the chain's job).

`run_block` never mutates its input; it returns a new `ChainState` plus what moved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from amm.emission import block_emission as curve_emission
from amm.pool import Pool
from amm.shares import (check_model, flow_weights, moving_price_factor, price_weights,
                        split_emission, update_flow_ema, update_moving_price)
from amm.units import (DEFAULT_EMA_HALVING_BLOCKS, DEFAULT_FLOW_EMA_FACTOR, DEFAULT_MOVING_ALPHA,
                       DEFAULT_OWNER_CUT, DEFAULT_TAO_WEIGHT, DEFAULT_TEMPO, U16_MAX)


@dataclass(frozen=True)
class Params:
    """Protocol parameters of the economics (defaults are subtensor's, TaoWeight as in its docs)."""

    model: str = "current"
    tao_weight: float = DEFAULT_TAO_WEIGHT
    moving_alpha: float = DEFAULT_MOVING_ALPHA
    ema_halving_blocks: int = DEFAULT_EMA_HALVING_BLOCKS
    flow_ema_factor: float = DEFAULT_FLOW_EMA_FACTOR
    owner_cut: int = DEFAULT_OWNER_CUT  # out of 65535
    price_cap: float = 1.0  # spot price is capped here before entering the price EMA
    block_emission: int | None = None  # fixed TAO emission per block instead of the halving curve

    def __post_init__(self) -> None:
        check_model(self.model)
        if not 0 <= self.owner_cut <= U16_MAX:
            raise ValueError("owner_cut must be in [0, 65535]")


@dataclass(frozen=True)
class Pending:
    """Alpha emitted to a subnet since its last epoch, not yet paid."""

    owner: int = 0
    miner: int = 0
    validator: int = 0

    @property
    def total(self) -> int:
        return self.owner + self.miner + self.validator

    def __add__(self, other: "Pending") -> "Pending":
        return Pending(self.owner + other.owner, self.miner + other.miner,
                       self.validator + other.validator)


@dataclass
class SubnetState:
    netuid: int
    pool: Pool
    alpha_issuance: int  # minted minus recycled: pool + stakes + pending + protocol alpha
    ema_price: float = 0.0
    flow_ema: float = 0.0
    flow_this_block: int = 0  # net user TAO staked (rao) since the last block
    blocks_since_start: int = 0
    tempo: int = DEFAULT_TEMPO
    emission_enabled: bool = True
    pending: Pending = field(default_factory=Pending)
    protocol_alpha: int = 0  # alpha bought by the chain with excess TAO (current model)
    alpha_recycled: int = 0  # cumulative alpha burned by chain buys (flow model)

    def copy(self) -> "SubnetState":
        return replace(self, pool=self.pool.copy())

    def record_flow(self, tao_delta: int) -> None:
        """Record net user TAO staked into (+) or unstaked from (-) this subnet this block."""
        self.flow_this_block += tao_delta


@dataclass
class ChainState:
    block: int  # the block `run_block` will produce next
    total_issuance: int  # TAO rao: balances + root stake + pool reserves
    root: Pool  # netuid 0; its tao is the total root stake
    subnets: list[SubnetState]

    def copy(self) -> "ChainState":
        return ChainState(self.block, self.total_issuance, self.root.copy(),
                          [s.copy() for s in self.subnets])

    def subnet(self, netuid: int) -> SubnetState:
        for s in self.subnets:
            if s.netuid == netuid:
                return s
        raise KeyError(f"no subnet {netuid}")


@dataclass(frozen=True)
class Injection:
    """What the coinbase did to one subnet in one block."""

    netuid: int
    tao_emission: int  # TAO share of the block: tao_in + excess_tao
    tao_in: int  # injected with alpha_in at the current price
    alpha_in: int
    excess_tao: int  # spent on a fee-free chain buy
    alpha_bought: int  # by that buy: protocol alpha (current) or recycled (flow)
    alpha_out: int  # minted into the pending buckets
    pending: Pending  # how alpha_out was split


@dataclass(frozen=True)
class TempoPayout:
    netuid: int
    block: int
    owner: int
    miner: int
    validator: int


@dataclass(frozen=True)
class BlockResult:
    state: ChainState
    block_emission: int  # E for this block
    tao_minted: int  # sum of tao_emission (E minus the rounding dust)
    injections: tuple[Injection, ...]
    payouts: tuple[TempoPayout, ...]


# ----- pure pieces ---------------------------------------------------------------------------
def root_proportion(tao_weight: float, root_tao: int, alpha_issuance: int) -> float:
    """w * tau_root / (w * tau_root + alpha_issuance): how much of the subnet root stake backs."""
    weighted_root = tao_weight * float(root_tao)
    denominator = weighted_root + float(alpha_issuance)
    return weighted_root / denominator if denominator > 0.0 else 0.0


def alpha_cap(model: str, alpha_emission: int, block_emission: int, root_prop: float) -> int:
    """Most alpha the protocol may inject into the pool this block."""
    if model == "launch":
        return alpha_emission
    if model == "flow":
        return min(alpha_emission, block_emission)
    return int(math.floor(root_prop * float(alpha_emission)))


def alpha_for_tao(tao_amount: int, pool: Pool) -> int:
    """Alpha worth `tao_amount` at the spot price, floor(tao * alpha / tao_reserve), with the ratio
    taken in float64 (subtensor converts at an I96F32 fixed-point price). The amount is a whole rao
    and is moved exactly, so conservation does not depend on this rounding."""
    return int(math.floor(float(tao_amount) * (float(pool.alpha) / float(pool.tao))))


def tao_for_alpha(alpha_amount: int, pool: Pool) -> int:
    """TAO worth `alpha_amount` at the spot price (float64 price, floored to rao)."""
    return int(math.floor(float(alpha_amount) * (float(pool.tao) / float(pool.alpha))))


def subnet_injection(model: str, tao_emission: int, pool: Pool, alpha_emission: int,
                     block_emission: int, root_prop: float) -> tuple[int, int, int]:
    """(tao_in, alpha_in, excess_tao) for one subnet: inject as much of the TAO as the alpha cap
    allows at the spot price; the rest is excess (see the module docstring for each model)."""
    if tao_emission == 0:
        return 0, 0, 0
    cap = alpha_cap(model, alpha_emission, block_emission, root_prop)
    alpha_in = min(alpha_for_tao(tao_emission, pool), cap)
    if model == "launch":
        return tao_emission, alpha_in, 0  # all TAO goes in even when alpha is capped: price rises
    tao_in = min(tao_emission, tao_for_alpha(cap, pool))
    return tao_in, alpha_in, tao_emission - tao_in


def chain_buy(pool: Pool, excess_tao: int) -> int:
    """Alpha a fee-free buy of `excess_tao` gets from the pool: floor(alpha * excess / (tao + excess)),
    evaluated in float64 like the other protocol conversions; 0 if it would break the minimum
    reserve (then the TAO is simply added to the pool)."""
    if excess_tao == 0:
        return 0
    bought = int(math.floor(float(pool.alpha) * float(excess_tao) / float(pool.tao + excess_tao)))
    if pool.alpha - bought < pool.min_reserve:
        return 0
    return bought


def split_alpha_out(alpha_out: int, owner_cut: int = DEFAULT_OWNER_CUT) -> Pending:
    owner = alpha_out * owner_cut // U16_MAX
    rest = alpha_out - owner
    miner = rest // 2
    return Pending(owner=owner, miner=miner, validator=rest - miner)


def epoch_due(block: int, netuid: int, tempo: int) -> bool:
    """subtensor's schedule: subnets' epochs are staggered by netuid."""
    return (block + netuid + 1) % (tempo + 1) == 0


def share_weights(params: Params, subnets: list[SubnetState]) -> list[float]:
    eligible = [s.emission_enabled for s in subnets]
    if params.model == "flow":
        return list(flow_weights([s.flow_ema for s in subnets], eligible))
    return list(price_weights([s.ema_price for s in subnets], eligible))


def ema_factor(params: Params, blocks_since_start: int) -> float:
    if params.model == "launch":
        return params.moving_alpha
    return moving_price_factor(params.moving_alpha, blocks_since_start, params.ema_halving_blocks)


# ----- one block ---------------------------------------------------------------------------
def run_block(state: ChainState, params: Params) -> BlockResult:
    new = state.copy()
    block = new.block
    emission = (params.block_emission if params.block_emission is not None
                else curve_emission(new.total_issuance))
    tao_emissions = split_emission(emission, share_weights(params, new.subnets))

    injections = []
    minted = 0
    for subnet, tao_emission in zip(new.subnets, tao_emissions):
        if not subnet.emission_enabled:
            continue
        pool = subnet.pool
        alpha_emission = curve_emission(subnet.alpha_issuance)
        root_prop = root_proportion(params.tao_weight, new.root.tao, subnet.alpha_issuance)
        tao_in, alpha_in, excess = subnet_injection(params.model, tao_emission, pool,
                                                    alpha_emission, emission, root_prop)
        pool.inject(tao_in, alpha_in)
        bought = chain_buy(pool, excess)
        pool.tao += excess
        pool.alpha -= bought
        if params.model == "flow":
            subnet.alpha_recycled += bought
            subnet.alpha_issuance -= bought
        else:
            subnet.protocol_alpha += bought
        split = split_alpha_out(alpha_emission, params.owner_cut)
        subnet.pending = subnet.pending + split
        subnet.alpha_issuance += alpha_in + alpha_emission
        minted += tao_emission
        injections.append(Injection(subnet.netuid, tao_emission, tao_in, alpha_in, excess, bought,
                                    alpha_emission, split))
    new.total_issuance += minted

    for subnet in new.subnets:
        factor = ema_factor(params, subnet.blocks_since_start)
        subnet.ema_price = update_moving_price(subnet.ema_price, subnet.pool.price, factor,
                                               params.price_cap)
        if params.model == "flow":
            subnet.flow_ema = update_flow_ema(subnet.flow_ema, float(subnet.flow_this_block),
                                              params.flow_ema_factor)
        subnet.flow_this_block = 0
        subnet.blocks_since_start += 1

    payouts = []
    for subnet in new.subnets:
        if epoch_due(block, subnet.netuid, subnet.tempo):
            p = subnet.pending
            if p.total:
                payouts.append(TempoPayout(subnet.netuid, block, p.owner, p.miner, p.validator))
            subnet.pending = Pending()

    new.block = block + 1
    return BlockResult(new, emission, minted, tuple(injections), tuple(payouts))
