"""Signed calls: the state transition of each call, behind the envelope checks of envelope.py.

A call's envelope and signature are checked in `subnet/chain/envelope.py` (shared with the client).
The nonce must exceed the signer's last one (no replay); resending the very same envelope returns
the first answer instead of applying it twice. node.py runs each call in one transaction: a call
rejected before its signature and nonce check out changes nothing at all; a signed call that its
handler rejects changes nothing but spend its nonce (as on Substrate), so the envelope cannot be
replayed once it would succeed.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from amm.pool import Pool, PoolError
from subnet.chain import envelope
from subnet.chain.envelope import MAX_NONCE, ChainError, Envelope, call_message, check_signature
from subnet.chain.genesis import ChainParams
from subnet.chain.store import NeuronRow, Store, SubnetRow
from subnet.keys import is_valid_address

__all__ = ["HANDLERS", "MAX_NONCE", "CallContext", "ChainError", "Envelope", "call_message", "check_signature",
           "parse_envelope", "require_subnet"]

U16_MAX = 65535


def parse_envelope(body: object) -> Envelope:
    """The envelope checks of envelope.py against this chain's calls."""
    return envelope.parse_envelope(body, HANDLERS)


# --- parameter checks --------------------------------------------------------------------------

def _only(params: dict, required: set[str], optional: set[str] = frozenset()) -> None:
    missing = required - set(params)
    extra = set(params) - required - set(optional)
    if missing:
        raise ChainError("bad_params", f"missing parameter(s): {', '.join(sorted(missing))}")
    if extra:
        raise ChainError("bad_params", f"unknown parameter(s): {', '.join(sorted(extra))}")


def _int(params: dict, key: str, low: int = 0, high: int = MAX_NONCE) -> int:
    value = params[key]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ChainError("bad_params", f"{key} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _address(params: dict, key: str) -> str:
    value = params[key]
    if not isinstance(value, str) or not is_valid_address(value):
        raise ChainError("bad_address", f"{key} {str(value)[:60]!r} is not an SS58 address")
    return value


@dataclass
class CallContext:
    store: Store
    params: ChainParams
    block: int
    signer: str


def require_subnet(store: Store, netuid: int) -> SubnetRow:
    subnet = store.subnet(netuid)
    if subnet is None:
        raise ChainError("unknown_subnet", f"subnet {netuid} does not exist", 404)
    return subnet


def _subnet(ctx: CallContext, netuid: int) -> SubnetRow:
    return require_subnet(ctx.store, netuid)


def _registered(ctx: CallContext, netuid: int, hotkey: str) -> NeuronRow:
    neuron = ctx.store.neuron_by_hotkey(netuid, hotkey)
    if neuron is None:
        raise ChainError("not_registered", f"hotkey {hotkey} is not registered on subnet {netuid}")
    return neuron


def _debit(ctx: CallContext, amount: int) -> None:
    balance = ctx.store.balance(ctx.signer)
    if amount > balance:
        raise ChainError("insufficient_balance", f"balance {balance} rao is below {amount} rao")
    ctx.store.add_balance(ctx.signer, -amount)


# --- calls ---------------------------------------------------------------------------------------

def transfer(ctx: CallContext, p: dict) -> dict:
    _only(p, {"dest", "amount"})
    dest, amount = _address(p, "dest"), _int(p, "amount", 1)
    _debit(ctx, amount)
    ctx.store.add_balance(dest, amount)
    return {"balance": ctx.store.balance(ctx.signer)}


def burned_register(ctx: CallContext, p: dict) -> dict:
    """Register `hotkey` on a subnet, paying the subnet's burn (recycled: issuance falls)."""
    _only(p, {"netuid", "hotkey"})
    netuid, hotkey = _int(p, "netuid", 1), _address(p, "hotkey")
    subnet = _subnet(ctx, netuid)
    store = ctx.store
    if store.neuron_by_hotkey(netuid, hotkey) is not None:
        raise ChainError("already_registered", f"hotkey {hotkey} is already registered on subnet {netuid}")
    owner = store.hotkey_owner(hotkey)
    if owner is not None and owner != ctx.signer:
        raise ChainError("hotkey_owned", f"hotkey {hotkey} belongs to another coldkey")
    neurons = store.neurons(netuid)
    if len(neurons) < subnet.max_uids:
        uid = len(neurons)
    else:
        # Prune the lowest-emission neuron past its immunity period (oldest first on ties); the
        # owner's hotkey is never pruned (its cut is paid outside incentive, so its emission reads 0).
        candidates = [n for n in neurons if ctx.block - n.registered_block >= subnet.immunity_period
                      and n.hotkey != subnet.owner_hotkey]
        if not candidates:
            raise ChainError("subnet_full", f"subnet {netuid} is full and every neuron is still immune")
        victim = min(candidates, key=lambda n: (n.emission, n.registered_block, n.uid))
        uid = victim.uid
        store.clear_weights(netuid, uid)
        store.clear_commitment(netuid, victim.hotkey)
        bonds = store.bonds(netuid, len(neurons)).astype(np.uint16)   # bonds are u16, as on Bittensor
        bonds[uid, :] = 0
        bonds[:, uid] = 0
        store.set_bonds(netuid, bonds)
    _debit(ctx, subnet.burn)
    store.set_meta("total_issuance", store.get_int("total_issuance") - subnet.burn)
    store.set_hotkey_owner(hotkey, ctx.signer)
    store.save_neuron(NeuronRow(netuid=netuid, uid=uid, hotkey=hotkey, coldkey=ctx.signer,
                                registered_block=ctx.block, last_update=ctx.block))
    return {"uid": uid, "burn": subnet.burn}


def _pool(subnet: SubnetRow) -> Pool:
    return Pool(tao=subnet.pool_tao, alpha=subnet.pool_alpha)


def add_stake(ctx: CallContext, p: dict) -> dict:
    """Stake TAO to a hotkey on a subnet through its pool (netuid 0: root, 1:1)."""
    _only(p, {"netuid", "hotkey", "amount"}, {"limit_price", "allow_partial"})
    netuid, hotkey, amount = _int(p, "netuid"), _address(p, "hotkey"), _int(p, "amount", 1)
    store = ctx.store
    if netuid == 0:
        if not store.is_registered_anywhere(hotkey):
            raise ChainError("not_registered", f"hotkey {hotkey} is not registered on any subnet")
        _debit(ctx, amount)
        store.add_stake(0, hotkey, ctx.signer, amount)
        store.set_meta("root_tao", store.get_int("root_tao") + amount)
        return {"alpha": amount, "tao_spent": amount}
    subnet = _subnet(ctx, netuid)
    _registered(ctx, netuid, hotkey)
    pool = _pool(subnet)
    result = _quote(p, amount, pool.quote_stake, pool.quote_stake_limit)
    _debit(ctx, result.amount_in)
    pool.apply(result)
    subnet.pool_tao, subnet.pool_alpha = pool.tao, pool.alpha
    subnet.flow_this_block += result.amount_in
    store.save_subnet(subnet)
    store.add_stake(netuid, hotkey, ctx.signer, result.amount_out)
    return {"alpha": result.amount_out, "tao_spent": result.amount_in, "fee": result.fee}


def remove_stake(ctx: CallContext, p: dict) -> dict:
    """Unstake alpha from a hotkey back to TAO through the pool (netuid 0: root, 1:1)."""
    _only(p, {"netuid", "hotkey", "amount"}, {"limit_price", "allow_partial"})
    netuid, hotkey, amount = _int(p, "netuid"), _address(p, "hotkey"), _int(p, "amount", 1)
    store = ctx.store
    staked = store.stake(netuid, hotkey, ctx.signer)
    if amount > staked:
        raise ChainError("insufficient_stake", f"stake {staked} rao is below {amount} rao")
    if netuid == 0:
        store.add_stake(0, hotkey, ctx.signer, -amount)
        store.set_meta("root_tao", store.get_int("root_tao") - amount)
        store.add_balance(ctx.signer, amount)
        return {"tao": amount, "alpha_spent": amount}
    subnet = _subnet(ctx, netuid)
    pool = _pool(subnet)
    result = _quote(p, amount, pool.quote_unstake, pool.quote_unstake_limit)
    pool.apply(result)
    subnet.pool_tao, subnet.pool_alpha = pool.tao, pool.alpha
    subnet.flow_this_block -= result.amount_out
    store.save_subnet(subnet)
    store.add_stake(netuid, hotkey, ctx.signer, -result.amount_in)
    store.add_balance(ctx.signer, result.amount_out)
    return {"tao": result.amount_out, "alpha_spent": result.amount_in, "fee": result.fee}


def _quote(p: dict, amount: int, quote, quote_limit):
    """The pool's quote for this call, at market or (with limit_price) up to a limit price."""
    try:
        if "limit_price" in p:
            return quote_limit(amount, _price(p), _bool(p, "allow_partial", True))
        return quote(amount)
    except PoolError as exc:
        raise ChainError("pool_refused", str(exc)) from None


def _price(p: dict) -> float:
    value = p["limit_price"]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < math.inf:
        raise ChainError("bad_params", f"limit_price must be a positive finite number, got {value!r}")
    return float(value)


def _bool(p: dict, key: str, default: bool) -> bool:
    value = p.get(key, default)
    if not isinstance(value, bool):
        raise ChainError("bad_params", f"{key} must be true or false")
    return value


def set_weights(ctx: CallContext, p: dict) -> dict:
    """A validator's weights: sparse uids and u16 values, as on Bittensor."""
    _only(p, {"netuid", "uids", "weights"}, {"version_key"})
    netuid = _int(p, "netuid", 1)
    _subnet(ctx, netuid)
    neuron = _registered(ctx, netuid, ctx.signer)
    if not neuron.validator_permit:
        raise ChainError("no_validator_permit", f"uid {neuron.uid} has no validator permit on subnet {netuid}", 403)
    uids, values = p["uids"], p["weights"]
    n = ctx.store.neuron_count(netuid)
    if not isinstance(uids, list) or not isinstance(values, list) or len(uids) != len(values):
        raise ChainError("bad_weights", "uids and weights must be lists of equal length")
    if len(uids) > n:
        raise ChainError("bad_weights", f"{len(uids)} weights for a subnet of {n} uids")
    for u in uids:
        if not isinstance(u, int) or isinstance(u, bool) or not 0 <= u < n:
            raise ChainError("unknown_uid", f"uid {u!r} is not registered on subnet {netuid} (n={n})")
    if len(set(uids)) != len(uids):
        raise ChainError("bad_weights", "uids must not repeat")
    for w in values:
        if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= U16_MAX:
            raise ChainError("bad_weights", f"weight {w!r} is not a u16")
    if uids and not any(values):
        raise ChainError("bad_weights", "weights are all zero")
    ctx.store.set_weights(netuid, neuron.uid, ctx.block, json.dumps(uids), json.dumps(values))
    ctx.store.touch_neuron(netuid, neuron.uid, ctx.block)
    return {"uid": neuron.uid, "count": len(uids)}


def commit(ctx: CallContext, p: dict) -> dict:
    """A bounded string per hotkey per subnet (e.g. its bucket, endpoint and read key)."""
    _only(p, {"netuid", "data"})
    netuid = _int(p, "netuid", 1)
    _subnet(ctx, netuid)
    _registered(ctx, netuid, ctx.signer)
    data = p["data"]
    if not isinstance(data, str):
        raise ChainError("bad_params", "data must be a string")
    size = len(data.encode())
    if size > ctx.params.max_commitment_bytes:
        raise ChainError("commitment_too_large",
                         f"commitment of {size} bytes exceeds {ctx.params.max_commitment_bytes}")
    ctx.store.commit(netuid, ctx.signer, ctx.block, data)
    return {"bytes": size}


HANDLERS: dict[str, Callable[[CallContext, dict], dict]] = {
    "transfer": transfer,
    "burned_register": burned_register,
    "add_stake": add_stake,
    "remove_stake": remove_stake,
    "set_weights": set_weights,
    "commit": commit,
}
