"""Constant-product TAO/alpha pool of one subnet, in integer rao.

Formulas (subtensor `staking/stake_utils.rs` at launch; `pallets/swap` balancer pool with the
default weight 0.5, which is exactly constant product):

    price      = tao / alpha                          (TAO per alpha)
    stake      alpha_out = alpha - tao*alpha / (tao + net_in)
    unstake    tao_out   = tao - tao*alpha / (alpha + net_in)
    fee        floor(amount_in * fee_rate / 65535), taken off the input before the swap

Rounding always favours the pool (outputs are floored), so no sequence of swaps can extract value.
The fee is left in the input reserve (it accrues to the protocol's liquidity, as in the swap-v3
era); the swap result reports it so a caller can route it elsewhere if it wants to.

Root (netuid 0) is not a market: stake and unstake are 1:1 at price 1 with no fee, and its
`tao` reserve is the total root stake.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from amm.units import DEFAULT_FEE_RATE, DEFAULT_MIN_RESERVE, U16_MAX


class PoolError(ValueError):
    """A swap the pool refuses (bad amount, reserve would fall below the minimum, price limit)."""


class InsufficientLiquidity(PoolError):
    pass


class PriceLimitExceeded(PoolError):
    pass


@dataclass(frozen=True)
class SwapResult:
    """One swap: what went in (fee included), the fee, what came out, and the pool afterwards."""

    amount_in: int
    fee: int
    amount_out: int
    tao_after: int
    alpha_after: int


def _swap_out(reserve_in: int, reserve_out: int, net_in: int) -> int:
    # reserve_out - ceil(k / (reserve_in + net_in)) == floor(reserve_out * net_in / (reserve_in + net_in))
    return reserve_out * net_in // (reserve_in + net_in) if net_in else 0


def swap(reserve_in: int, reserve_out: int, amount_in: int, fee_rate: int = DEFAULT_FEE_RATE) -> tuple[int, int]:
    """(fee, amount_out) of a constant-product swap; the bare arithmetic behind `Pool`, without
    objects or guards, for hot loops. The pool keeps the whole input (fee included)."""
    fee = amount_in * fee_rate // U16_MAX
    return fee, _swap_out(reserve_in, reserve_out, amount_in - fee)


@dataclass
class Pool:
    """Reserves of one subnet pool. Mutating methods (`stake`, `unstake`, `inject`) change the pool;
    `quote_*` methods are pure and return a `SwapResult` without touching it."""

    tao: int
    alpha: int
    fee_rate: int = DEFAULT_FEE_RATE
    min_reserve: int = DEFAULT_MIN_RESERVE
    is_root: bool = False

    def __post_init__(self) -> None:
        for name in ("tao", "alpha", "fee_rate", "min_reserve"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Pool.{name} must be an int (rao), got {type(value).__name__}")
            if value < 0:
                raise ValueError(f"Pool.{name} must be >= 0, got {value}")
        if self.fee_rate >= U16_MAX:
            raise ValueError(f"Pool.fee_rate must be < {U16_MAX}")

    @classmethod
    def root(cls, tao: int) -> "Pool":
        """The root pool: price 1, no fee; `tao` is the total root stake."""
        return cls(tao=tao, alpha=0, fee_rate=0, min_reserve=0, is_root=True)

    def copy(self) -> "Pool":
        return replace(self)

    # ----- price -----------------------------------------------------------------------------
    @property
    def price(self) -> float:
        """Spot price in TAO per alpha."""
        if self.is_root:
            return 1.0
        # float(tao) / float(alpha): the same IEEE division the vectorised simulator performs
        return float(self.tao) / float(self.alpha) if self.alpha else 0.0

    @property
    def price_fraction(self) -> Fraction:
        if self.is_root:
            return Fraction(1)
        return Fraction(self.tao, self.alpha)

    def fee_for(self, amount_in: int) -> int:
        return amount_in * self.fee_rate // U16_MAX

    def alpha_at_price(self, tao_amount: int) -> int:
        """Alpha worth `tao_amount` at the current price, floored (tao / price)."""
        if self.is_root:
            return tao_amount
        return tao_amount * self.alpha // self.tao

    def tao_at_price(self, alpha_amount: int) -> int:
        """TAO worth `alpha_amount` at the current price, floored (alpha * price)."""
        if self.is_root:
            return alpha_amount
        return alpha_amount * self.tao // self.alpha

    # ----- quotes (pure) -----------------------------------------------------------------------
    def quote_stake(self, tao_in: int) -> SwapResult:
        """TAO -> alpha. Raises InsufficientLiquidity if the alpha reserve would drop below the minimum."""
        _check_amount(tao_in)
        if self.is_root:
            return SwapResult(tao_in, 0, tao_in, self.tao + tao_in, self.alpha)
        fee, alpha_out = swap(self.tao, self.alpha, tao_in, self.fee_rate)
        alpha_after = self.alpha - alpha_out
        if alpha_after < self.min_reserve:
            raise InsufficientLiquidity(
                f"stake of {tao_in} rao would leave {alpha_after} alpha rao (< {self.min_reserve})")
        return SwapResult(tao_in, fee, alpha_out, self.tao + tao_in, alpha_after)

    def quote_unstake(self, alpha_in: int) -> SwapResult:
        """alpha -> TAO. Raises InsufficientLiquidity if the TAO reserve would drop below the minimum."""
        _check_amount(alpha_in)
        if self.is_root:
            if alpha_in > self.tao:
                raise InsufficientLiquidity(f"unstake of {alpha_in} exceeds root stake {self.tao}")
            return SwapResult(alpha_in, 0, alpha_in, self.tao - alpha_in, self.alpha)
        fee, tao_out = swap(self.alpha, self.tao, alpha_in, self.fee_rate)
        tao_after = self.tao - tao_out
        if tao_after < self.min_reserve:
            raise InsufficientLiquidity(
                f"unstake of {alpha_in} alpha rao would leave {tao_after} TAO rao (< {self.min_reserve})")
        return SwapResult(alpha_in, fee, tao_out, tao_after, self.alpha + alpha_in)

    def quote_stake_limit(self, tao_in: int, limit_price: float | Fraction,
                          allow_partial: bool = True) -> SwapResult:
        """Stake at most `tao_in`, stopping before the price rises above `limit_price`.

        With `allow_partial`, the largest input that keeps the price at or below the limit is
        filled (possibly 0); without it, a swap that would cross the limit raises PriceLimitExceeded.
        """
        _check_amount(tao_in)
        limit = Fraction(limit_price)

        def within(res: SwapResult) -> bool:  # price after <= limit, exactly
            return self.is_root or res.tao_after * limit.denominator <= limit.numerator * res.alpha_after

        return self._limit_fill(tao_in, self.quote_stake, within, allow_partial, "above")

    def quote_unstake_limit(self, alpha_in: int, limit_price: float | Fraction,
                            allow_partial: bool = True) -> SwapResult:
        """Unstake at most `alpha_in`, stopping before the price falls below `limit_price`."""
        _check_amount(alpha_in)
        limit = Fraction(limit_price)

        def within(res: SwapResult) -> bool:  # price after >= limit, exactly
            if self.is_root:
                return limit <= 1
            return res.tao_after * limit.denominator >= limit.numerator * res.alpha_after

        return self._limit_fill(alpha_in, self.quote_unstake, within, allow_partial, "below")

    def _limit_fill(self, amount, quote, within, allow_partial, direction) -> SwapResult:
        def ok(x: int):
            try:
                res = quote(x)
            except InsufficientLiquidity:
                return None
            return res if within(res) else None

        full = ok(amount)
        if full is not None:
            return full
        if not allow_partial:
            raise PriceLimitExceeded(f"swap of {amount} would move the price {direction} the limit")
        # The price after a swap is monotone in its size, so bisect for the largest fill that keeps
        # within the limit (and the reserve guard).
        lo, hi = 0, amount  # ok(lo) holds (a zero swap changes nothing), ok(hi) does not
        best = SwapResult(0, 0, 0, self.tao, self.alpha)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            res = ok(mid)
            if res is None:
                hi = mid
            else:
                lo, best = mid, res
        return best

    # ----- mutations ---------------------------------------------------------------------------
    def apply(self, result: SwapResult) -> None:
        self.tao, self.alpha = result.tao_after, result.alpha_after

    def stake(self, tao_in: int) -> int:
        """Swap `tao_in` rao of TAO for alpha; returns alpha_out."""
        res = self.quote_stake(tao_in)
        self.apply(res)
        return res.amount_out

    def unstake(self, alpha_in: int) -> int:
        """Swap `alpha_in` rao of alpha for TAO; returns tao_out."""
        res = self.quote_unstake(alpha_in)
        self.apply(res)
        return res.amount_out

    def stake_limit(self, tao_in: int, limit_price, allow_partial: bool = True) -> SwapResult:
        res = self.quote_stake_limit(tao_in, limit_price, allow_partial)
        self.apply(res)
        return res

    def unstake_limit(self, alpha_in: int, limit_price, allow_partial: bool = True) -> SwapResult:
        res = self.quote_unstake_limit(alpha_in, limit_price, allow_partial)
        self.apply(res)
        return res

    def inject(self, tao_in: int, alpha_in: int) -> None:
        """Protocol liquidity: add both reserves as given. Callers that want the price unchanged pass
        alpha_in = alpha_at_price(tao_in) (or tao_in = tao_at_price(alpha_in)); the launch-era
        coinbase deliberately injected more TAO than that, which raised the price."""
        _check_amount(tao_in)
        _check_amount(alpha_in)
        if self.is_root:
            raise PoolError("root has no protocol injection")
        self.tao += tao_in
        self.alpha += alpha_in

    def inject_at_price(self, tao_in: int) -> int:
        """Add `tao_in` and the alpha worth it at the current price; returns the alpha added."""
        alpha_in = self.alpha_at_price(tao_in)
        self.inject(tao_in, alpha_in)
        return alpha_in


def _check_amount(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError(f"amounts are int rao, got {type(amount).__name__}")
    if amount < 0:
        raise PoolError(f"amount must be >= 0, got {amount}")
