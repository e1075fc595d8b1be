"""Units and protocol constants shared by every part of amm/.

Money is integer rao on the exact path: 1 TAO = 1e9 rao, and alpha uses the same 1e9 subdivision.
Ratios that subtensor stores as u16 fractions of 65,535 are kept as (numerator, 65,535) so the
integer arithmetic matches the chain's.
"""

RAO_PER_TAO = 1_000_000_000
U16_MAX = 65_535

# Total TAO (and per-subnet alpha) supply: 21M whole units.
TOTAL_SUPPLY_RAO = 21_000_000 * RAO_PER_TAO

# Swap fee: 33/65535 (~0.05%) of the input, pallets/swap `FeeRate` default.
DEFAULT_FEE_RATE = 33

# Owner cut of each block's alpha_out: 11796/65535 (~18%), `SubnetOwnerCut` default.
DEFAULT_OWNER_CUT = 11_796

# Smallest reserve a swap may leave behind (pallets/swap `MinimumReserve`).
DEFAULT_MIN_RESERVE = 1_000_000

# Price EMA: SubnetMovingAlpha (3e-6 per block) and EMAPriceHalvingBlocks (4 weeks) for the warm-up.
DEFAULT_MOVING_ALPHA = 3e-6
DEFAULT_EMA_HALVING_BLOCKS = 201_600

# TAO-flow EMA: 29,597,889,189,277 / 2^63 per block, a 216,000-block (30-day) half-life.
DEFAULT_FLOW_EMA_FACTOR = 29_597_889_189_277 / 2**63

# TaoWeight: subtensor docs and tests use 0.18 (the runtime default is 0.0527).
DEFAULT_TAO_WEIGHT = 0.18

DEFAULT_TEMPO = 360
BLOCKS_PER_DAY = 7_200
BLOCKS_PER_YEAR = 2_628_000


def tao(amount: float) -> int:
    """Whole TAO (or alpha) to rao, rounded to the nearest rao."""
    return int(round(amount * RAO_PER_TAO))


def to_tao(rao: int | float) -> float:
    return rao / RAO_PER_TAO
