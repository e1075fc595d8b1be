"""Units and protocol constants shared by every part of amm/.

Money is integer rao on the exact path: 1 TAO = 1e9 rao, and alpha uses the same 1e9 subdivision.
Ratios that subtensor stores as u16 fractions of 65,535 are kept as (numerator, 65,535) so the
integer arithmetic matches the chain's.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction

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

# Amounts from 1e40 TAO up are refused before any exact arithmetic (no giant integers from a typo).
_MAX_TAO_EXPONENT = 39


def to_rao(amount: int | float | str | Decimal, *, exact: bool = True) -> int:
    """TAO (or alpha) to integer rao: the one conversion rule for every amount read from a file.

    The amount's decimal text is converted exactly (``Decimal(str(amount))``: a float's shortest
    round-trip text, so 0.1 TAO is 100_000_000 rao, not the binary product ``0.1 * 1e9``).

    ``exact=True`` (amounts people write: genesis files, scenarios): an amount finer than one rao
    raises ValueError instead of being rounded, because it is a typo or a unit mix-up, and silently
    rounding it would make the chain and the simulator disagree with what the file says.
    ``exact=False`` (amounts computed from floats, e.g. a geometric spread of pool sizes): rounded
    to the nearest rao, ties to even (Python's ``round``), so rounding adds no bias over many values.

    Negative, non-finite, boolean and non-numeric amounts always raise ValueError.
    """
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str, Decimal)):
        raise ValueError(f"{amount!r} is not an amount")
    try:
        value = Decimal(amount) if isinstance(amount, int) else Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{amount!r} is not a finite amount")
    if value < 0:
        raise ValueError(f"{amount!r} is negative")
    if value and value.adjusted() > _MAX_TAO_EXPONENT:
        raise ValueError(f"{amount!r} is too large to be an amount")
    finer = f"{amount!r} is finer than one rao (at most 9 decimals)"
    if value and value.adjusted() < -12:  # under 1e-11 TAO, below half a rao: no giant denominator
        if exact:
            raise ValueError(finer)
        return 0
    rao = Fraction(value) * RAO_PER_TAO  # exact: Decimal's context precision never applies
    if exact and rao.denominator != 1:
        raise ValueError(finer)
    return round(rao)  # Fraction rounds ties to even


def to_tao(rao: int | float) -> float:
    return rao / RAO_PER_TAO
