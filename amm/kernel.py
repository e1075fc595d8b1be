"""The compiled simulator's kernel: every block of a plan, in one numba function over int64 money.

The same rules as the exact per-block path (`amm.coinbase.run_block` with `amm.reference`'s user
flows) and as the vectorised engine (`amm.simulate`), written once more as scalar loops that numba
compiles, so a block of 128 subnets costs tens of nanoseconds per subnet instead of a few dozen
numpy calls. Why it agrees with them to the rao and to the bit of every float:

* money is int64 rao (exact to 9.2e18 rao, 440 times the 21M TAO supply); every amount the chain
  rounds is the same IEEE float64 expression as in amm.coinbase, on float(int) conversions that
  round like Python's `float(int)`;
* products of two amounts (swap outputs, fees, a sell's size) are exact floor(a * b / c) through
  a 128-bit product (`muldiv`), as Python ints would give;
* the sum of the share weights is numpy's pairwise summation, reproduced (`pairwise_sum`), because
  both other engines sum with numpy and floating-point addition is not associative;
* no fastmath: numba then emits plain IEEE operations, no fused multiply-adds or reassociation.

State lives in a few arrays (field names below) that the caller (`amm.compiled`) allocates, so a run
can be cut into chunks for a progress bar and resumed where it stopped.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from amm.units import RAO_PER_TAO, TOTAL_SUPPLY_RAO, U16_MAX

# Columns of the int64 per-subnet state `money` [n, FIELDS]: one subnet's fields side by side, so a
# block's pass over the subnets reads memory in order (at 1024 subnets, twice as fast as [FIELDS, n]).
TAU, ALPHA, ISSUANCE = 0, 1, 2
ACCRUED = 3            # 3..5: owner, miner, validator alpha accrued
PAID = 6               # 6..8: ... of which paid out at epochs
PROTOCOL, RECYCLED = 9, 10
EMITTED, INJECTED_TAO, INJECTED_ALPHA = 11, 12, 13
TRADER_TAO, TRADER_ALPHA = 14, 15
FLOW = 16              # net user TAO this block
TAO_EMISSION = 17      # this block's TAO share
ALPHA_EMISSION = 18    # the subnet's alpha emission per block, valid while LOWER <= issuance < UPPER
SPLIT = 19             # 19..21: its owner / miner / validator split
LOWER, UPPER = 22, 23
NEXT_EPOCH, PERIOD = 24, 25
AGE, ENABLED = 26, 27
FIELDS = 28

# Rows of the float64 per-subnet state `reals` [2, n].
EMA, FLOW_EMA = 0, 1

# Entries of the int64 scalar state `chain`.
(BLOCK, TOTAL_ISSUANCE, ROOT_STAKE, EMISSION, NEXT_HALVING, TRADE_AT, EVENT_AT, RECORD_AT,
 EXECUTED, SKIPPED, EVENTS_SKIPPED) = range(11)
CHAIN_FIELDS = 11

# Entries of the parameter arrays.
MODEL, OWNER_CUT, FEE_RATE, MIN_RESERVE, FIXED_EMISSION, RECORD_EVERY, LAST_BLOCK = range(7)
TAO_WEIGHT, MOVING_ALPHA, HALVING_BLOCKS, PRICE_CAP, FLOW_FACTOR = range(5)
LAUNCH, FLOW_MODEL, CURRENT = 0, 1, 2

INT64_MAX = np.iinfo(np.int64).max
_PAIRWISE_BLOCK = 128  # numpy's PW_BLOCKSIZE

jit = numba.njit(cache=True, error_model="numpy", nogil=True)


# ---- exact integer arithmetic -------------------------------------------------------------------


@jit
def muldiv(a: int, b: int, c: int, limit: int) -> int:
    """min(floor(a * b / c), limit) for 0 <= a, b, limit < 2^63 and c > 0, exactly (the product is
    formed in 128 bits: int64 would wrap, float64 would round)."""
    if a == 0 or b == 0:
        return 0
    if a <= INT64_MAX // b:
        return min(a * b // c, limit)
    ua, ub, uc = np.uint64(a), np.uint64(b), np.uint64(c)
    mask, half = np.uint64(0xFFFFFFFF), np.uint64(32)
    a1, a0 = ua >> half, ua & mask
    b1, b0 = ub >> half, ub & mask
    low = a0 * b0
    mid1 = a1 * b0
    mid2 = a0 * b1
    carry = (low >> half) + (mid1 & mask) + (mid2 & mask)
    lo = (low & mask) | (carry << half)
    hi = a1 * b1 + (mid1 >> half) + (mid2 >> half) + (carry >> half)
    if hi >= uc:            # the quotient needs more than 64 bits: far above any limit
        return limit
    quotient = _divide_128(hi, lo, uc)
    if quotient >= np.uint64(limit):
        return limit
    return np.int64(quotient)


@jit
def _divide_128(u1, u0, v):
    """floor((u1 * 2^64 + u0) / v) for u1 < v (so it fits 64 bits): long division in base 2^32 with
    a normalised divisor, two estimated digits each corrected at most twice (Knuth's algorithm D, as
    `divlu` in Hacker's Delight). All operands uint64."""
    b, mask, half = np.uint64(1 << 32), np.uint64(0xFFFFFFFF), np.uint64(32)
    zero = np.uint64(0)
    shift = np.uint64(0)             # leading zeros of v, so that its top bit is set
    probe = v
    for step in (32, 16, 8, 4, 2, 1):
        width = np.uint64(step)
        if probe >> (np.uint64(64) - width) == zero:
            shift += width
            probe = probe << width
    v = v << shift
    vn1, vn0 = v >> half, v & mask
    un32 = u1 << shift
    if shift > zero:
        un32 |= u0 >> (np.uint64(64) - shift)
    un10 = u0 << shift
    un1, un0 = un10 >> half, un10 & mask

    q1 = _quotient_digit(un32, un1, vn1, vn0)
    un21 = un32 * b + un1 - q1 * v   # wraps modulo 2^64 to the true remainder, which is < v
    return q1 * b + _quotient_digit(un21, un0, vn1, vn0)


@jit
def _quotient_digit(numerator, next_digit, vn1, vn0):
    """One base-2^32 digit of the quotient: estimated from the divisor's top digit `vn1`, then
    lowered (at most twice) while digit * divisor exceeds the two-digit partial remainder."""
    b, one = np.uint64(1 << 32), np.uint64(1)
    q = numerator // vn1
    rhat = numerator - q * vn1
    while q >= b or q * vn0 > b * rhat + next_digit:
        q -= one
        rhat += vn1
        if rhat >= b:
            break
    return q


@jit
def swap_out(reserve_in: int, reserve_out: int, amount_in: int, fee_rate: int) -> int:
    """What a constant-product swap of ``amount_in`` pays out (amm.pool.swap): the fee
    floor(amount * fee_rate / 65535) is taken off the input, the output floored."""
    fee = muldiv(amount_in, fee_rate, U16_MAX, INT64_MAX)
    net = amount_in - fee
    if net == 0:
        return 0
    return muldiv(reserve_out, net, reserve_in + net, INT64_MAX)


@jit
def emission_step(issuance: int, total_supply: int, base: int):
    """(emission per block, lower, upper) of the halving curve at ``issuance``: the emission holds
    while lower <= issuance < upper (amm.emission.emission_step_array)."""
    remaining = total_supply - issuance
    if remaining <= 0:
        return 0, total_supply, INT64_MAX
    k = 0
    while k < 62 and remaining <= total_supply >> (k + 1):
        k += 1
    lower = total_supply - (total_supply >> k) if k > 0 else 0
    return base >> k, lower, total_supply - (total_supply >> (k + 1))


# ---- numpy's float64 sum, bit for bit -----------------------------------------------------------


@jit
def _block_sum(a, start: int, n: int) -> float:
    # numpy's pairwise_sum leaf: below 8 a plain loop; else 8 accumulators, combined as a tree.
    if n < 8:
        total = 0.0
        for i in range(start, start + n):
            total += a[i]
        return total
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    while i < n - (n % 8):
        s = start + i
        r0 += a[s]
        r1 += a[s + 1]
        r2 += a[s + 2]
        r3 += a[s + 3]
        r4 += a[s + 4]
        r5 += a[s + 5]
        r6 += a[s + 6]
        r7 += a[s + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += a[start + i]
        i += 1
    return total


@jit
def pairwise_sum(a, stack_start, stack_n, stack_sum) -> float:
    """np.add.reduce(a) for a contiguous float64 vector, with numpy's exact order of additions:
    halves split at a multiple of 8 down to blocks of 128, each block summed by `_block_sum`.
    Iterative (numba compiles recursion poorly): the stacks are scratch of length >= 64."""
    n = len(a)
    if n <= _PAIRWISE_BLOCK:
        return _block_sum(a, 0, n)
    # Post-order walk of the split tree. A frame is (start, n); a negative n marks a frame whose
    # left half is done and whose partial sum waits in stack_sum.
    depth = 0
    stack_start[0], stack_n[0] = 0, n
    result = 0.0
    have_result = False
    while depth >= 0:
        start, size = stack_start[depth], stack_n[depth]
        if have_result:
            if size > 0:   # the left half just finished: keep it, descend into the right half
                half = size // 2
                half -= half % 8
                stack_sum[depth] = result
                stack_n[depth] = -size
                depth += 1
                stack_start[depth], stack_n[depth] = start + half, size - half
                have_result = False
            else:          # the right half just finished
                result = stack_sum[depth] + result
                depth -= 1
            continue
        if size <= _PAIRWISE_BLOCK:
            result = _block_sum(a, start, size)
            have_result = True
            depth -= 1
            continue
        half = size // 2
        half -= half % 8
        depth += 1
        stack_start[depth], stack_n[depth] = start, half
    return result


# ---- one pool trade -----------------------------------------------------------------------------


@jit
def pool_buy(money, i: int, amount: int, fee_rate: int, min_reserve: int) -> int:
    """Stake ``amount`` TAO into subnet i's pool; the alpha bought, or -1 (nothing changes) when
    there is nothing to spend or the pool would fall below its minimum reserve."""
    if amount <= 0:
        return -1
    t_res, a_res = money[i, TAU], money[i, ALPHA]
    out = swap_out(t_res, a_res, amount, fee_rate)
    if a_res - out < min_reserve:
        return -1
    money[i, TAU] = t_res + amount
    money[i, ALPHA] = a_res - out
    money[i, FLOW] += amount
    return out


@jit
def pool_sell(money, i: int, amount: int, fee_rate: int, min_reserve: int) -> int:
    """Unstake ``amount`` alpha from subnet i's pool, as `pool_buy`; the TAO received or -1."""
    if amount <= 0:
        return -1
    t_res, a_res = money[i, TAU], money[i, ALPHA]
    out = swap_out(a_res, t_res, amount, fee_rate)
    if t_res - out < min_reserve:
        return -1
    money[i, TAU] = t_res - out
    money[i, ALPHA] = a_res + amount
    money[i, FLOW] -= out
    return out


@jit
def _user_events(block, chain, money, events_int, events_fraction, account_tao, account_alpha,
                 fee_rate, min_reserve):
    """The scripted stakes and unstakes of ``block`` (amm.simulate._UserEvents)."""
    n = money.shape[0]
    at = chain[EVENT_AT]
    while at < events_int.shape[0] and events_int[at, 0] == block:
        account, subnet, stake, amount = events_int[at, 1], events_int[at, 2], events_int[at, 3], events_int[at, 4]
        fraction = events_fraction[at]
        at += 1
        column = n if subnet < 0 else subnet
        if stake:
            size = min(amount, account_tao[account])
        else:
            held = account_alpha[account, column]
            size = min(amount, held) if amount >= 0 else np.int64(math.floor(float(held) * fraction))
        filled = False
        if subnet < 0:
            if stake and size > 0:
                account_tao[account] -= size
                chain[ROOT_STAKE] += size
                account_alpha[account, column] += size
                filled = True
            elif not stake and 0 < size <= chain[ROOT_STAKE]:
                chain[ROOT_STAKE] -= size
                account_tao[account] += size
                account_alpha[account, column] -= size
                filled = True
        elif stake:
            out = pool_buy(money, subnet, size, fee_rate, min_reserve)
            if out >= 0:
                account_tao[account] -= size
                account_alpha[account, column] += out
                filled = True
        else:
            out = pool_sell(money, subnet, size, fee_rate, min_reserve)
            if out >= 0:
                account_alpha[account, column] -= size
                account_tao[account] += out
                filled = True
        if not filled:
            chain[EVENTS_SKIPPED] += 1
    chain[EVENT_AT] = at


@jit
def _trades(block, chain, money, trades, fee_rate, min_reserve):
    """The stochastic trades of ``block`` (amm.simulate._Traders); rows (block, subnet, buy, value)."""
    at = chain[TRADE_AT]
    while at < trades.shape[0] and trades[at, 0] == block:
        i, buy, value = trades[at, 1], trades[at, 2], trades[at, 3]
        at += 1
        if buy:
            amount = min(value, money[i, TRADER_TAO])
            out = pool_buy(money, i, amount, fee_rate, min_reserve)
            if out >= 0:
                money[i, TRADER_TAO] -= amount
                money[i, TRADER_ALPHA] += out
        else:   # value is TAO worth at the spot price
            amount = muldiv(value, money[i, ALPHA], money[i, TAU], money[i, TRADER_ALPHA])
            out = pool_sell(money, i, amount, fee_rate, min_reserve)
            if out >= 0:
                money[i, TRADER_ALPHA] -= amount
                money[i, TRADER_TAO] += out
        if out >= 0:
            chain[EXECUTED] += 1
        else:
            chain[SKIPPED] += 1
    chain[TRADE_AT] = at


# ---- the blocks ---------------------------------------------------------------------------------


@jit
def run_blocks(stop, chain, money, reals, int_params, real_params, trades, events_int, events_fraction,
               account_tao, account_alpha, record_block, record_price, record_share, record_paid,
               weights, stack_start, stack_n, stack_sum):
    """Run blocks chain[BLOCK] .. stop-1 in place: per block the coinbase, the moving averages, the
    epochs' payouts, the scripted events, the trades, and a sample every RECORD_EVERY blocks."""
    n = money.shape[0]
    model = int_params[MODEL]
    owner_cut, fee_rate, min_reserve = int_params[OWNER_CUT], int_params[FEE_RATE], int_params[MIN_RESERVE]
    fixed_emission, record_every, last_block = (int_params[FIXED_EMISSION], int_params[RECORD_EVERY],
                                                int_params[LAST_BLOCK])
    tao_weight, moving_alpha, halving = (real_params[TAO_WEIGHT], real_params[MOVING_ALPHA],
                                         real_params[HALVING_BLOCKS])
    price_cap, flow_factor = real_params[PRICE_CAP], real_params[FLOW_FACTOR]
    ema, flow_ema = reals[EMA], reals[FLOW_EMA]

    for block in range(chain[BLOCK], stop):
        # ---- block emission (piecewise constant in total issuance) --------------------------------
        if fixed_emission >= 0:
            emission = fixed_emission
        else:
            if chain[TOTAL_ISSUANCE] >= chain[NEXT_HALVING]:
                e, _, upper = emission_step(chain[TOTAL_ISSUANCE], TOTAL_SUPPLY_RAO, RAO_PER_TAO)
                chain[EMISSION], chain[NEXT_HALVING] = e, (upper if e > 0 else TOTAL_SUPPLY_RAO)
            emission = chain[EMISSION]

        # ---- share weights (amm.shares) -----------------------------------------------------------
        if model == FLOW_MODEL:
            lowest = 0.0
            for i in range(n):
                if money[i, ENABLED] and flow_ema[i] < lowest:
                    lowest = flow_ema[i]
            for i in range(n):
                w = flow_ema[i] - lowest
                weights[i] = (w if w > 0.0 else 0.0) * float(money[i, ENABLED])
            if not pairwise_sum(weights, stack_start, stack_n, stack_sum) > 0.0:
                for i in range(n):
                    weights[i] = float(money[i, ENABLED])
        else:
            for i in range(n):
                weights[i] = ema[i] * float(money[i, ENABLED])
        total_weight = pairwise_sum(weights, stack_start, stack_n, stack_sum)
        emission_f = float(emission)
        weighted_root = tao_weight * float(chain[ROOT_STAKE])

        # ---- coinbase, then the price EMA, subnet by subnet ----------------------------------------
        minted = 0
        for i in range(n):
            if money[i, ENABLED]:
                issuance = money[i, ISSUANCE]
                if issuance < money[i, LOWER] or issuance >= money[i, UPPER]:
                    em, lower, upper = emission_step(issuance, TOTAL_SUPPLY_RAO, RAO_PER_TAO)
                    owner = em * owner_cut // U16_MAX
                    miner = (em - owner) // 2
                    money[i, ALPHA_EMISSION], money[i, LOWER], money[i, UPPER] = em, lower, upper
                    money[i, SPLIT], money[i, SPLIT + 1], money[i, SPLIT + 2] = owner, miner, em - owner - miner
                alpha_em = money[i, ALPHA_EMISSION]
                if total_weight > 0.0 and emission > 0:
                    tao_em = np.int64(math.floor(weights[i] * emission_f / total_weight))
                else:
                    tao_em = 0
                tau, alpha = money[i, TAU], money[i, ALPHA]
                tau_f, alpha_f = float(tau), float(alpha)
                if model == LAUNCH:
                    cap = alpha_em
                elif model == FLOW_MODEL:
                    cap = min(alpha_em, emission)
                else:
                    denominator = weighted_root + float(issuance)
                    proportion = weighted_root / denominator if denominator > 0.0 else 0.0
                    cap = np.int64(math.floor(proportion * float(alpha_em)))
                tao_in = alpha_in = excess = 0
                if tao_em > 0:
                    alpha_in = min(np.int64(math.floor(float(tao_em) * (alpha_f / tau_f))), cap)
                    if model == LAUNCH:
                        tao_in = tao_em
                    else:
                        tao_in = min(tao_em, np.int64(math.floor(float(cap) * (tau_f / alpha_f))))
                        excess = tao_em - tao_in
                tau += tao_in
                alpha += alpha_in
                if excess > 0:   # the excess TAO buys alpha, fee free (amm.coinbase.chain_buy)
                    bought = np.int64(math.floor(float(alpha) * float(excess) / float(tau + excess)))
                    if alpha - bought < min_reserve:
                        bought = 0
                    tau += excess
                    alpha -= bought
                    if model == FLOW_MODEL:
                        money[i, RECYCLED] += bought
                        issuance -= bought
                    else:
                        money[i, PROTOCOL] += bought
                money[i, TAU], money[i, ALPHA] = tau, alpha
                money[i, ACCRUED] += money[i, SPLIT]
                money[i, ACCRUED + 1] += money[i, SPLIT + 1]
                money[i, ACCRUED + 2] += money[i, SPLIT + 2]
                money[i, ISSUANCE] = issuance + alpha_in + alpha_em
                money[i, EMITTED] += tao_em
                money[i, INJECTED_TAO] += tao_in
                money[i, INJECTED_ALPHA] += alpha_in
                money[i, TAO_EMISSION] = tao_em
                minted += tao_em
            else:
                money[i, TAO_EMISSION] = 0

            # moving averages (amm.shares.update_moving_price / update_flow_ema)
            price = float(money[i, TAU]) / float(money[i, ALPHA])
            capped = min(price, price_cap)
            if model == LAUNCH:
                factor = moving_alpha
            else:
                b = float(money[i, AGE] + block)
                factor = moving_alpha * b / (b + halving)
            ema[i] = factor * capped + (1.0 - factor) * ema[i]
            if model == FLOW_MODEL:
                flow_ema[i] = flow_factor * float(money[i, FLOW]) + (1.0 - flow_factor) * flow_ema[i]
            money[i, FLOW] = 0

            # an epoch pays out everything accrued so far
            if block == money[i, NEXT_EPOCH]:
                money[i, PAID] = money[i, ACCRUED]
                money[i, PAID + 1] = money[i, ACCRUED + 1]
                money[i, PAID + 2] = money[i, ACCRUED + 2]
                money[i, NEXT_EPOCH] += money[i, PERIOD]
        chain[TOTAL_ISSUANCE] += minted

        # ---- user flows -----------------------------------------------------------------------------
        if chain[EVENT_AT] < events_int.shape[0] and events_int[chain[EVENT_AT], 0] == block:
            _user_events(block, chain, money, events_int, events_fraction, account_tao, account_alpha,
                         fee_rate, min_reserve)
        if chain[TRADE_AT] < trades.shape[0] and trades[chain[TRADE_AT], 0] == block:
            _trades(block, chain, money, trades, fee_rate, min_reserve)

        if (block + 1) % record_every == 0 or block == last_block:
            k = chain[RECORD_AT]
            record_block[k] = block
            for i in range(n):
                record_price[k, i] = float(money[i, TAU]) / float(money[i, ALPHA])
                record_share[k, i] = float(money[i, TAO_EMISSION]) / float(minted) if minted else 0.0
                record_paid[k, i] = money[i, PAID] + money[i, PAID + 1] + money[i, PAID + 2]
            chain[RECORD_AT] = k + 1
    chain[BLOCK] = stop
