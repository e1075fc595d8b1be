"""One subnet's tempo epoch: validator permits, Yuma consensus, and the integer alpha payout.

Pure functions over arrays; node.py reads the rows, calls `run_epoch`, and writes the outcome.
Payout rules (subtensor run_coinbase.rs, simplified where noted in docs/chain-api.md):
  - the owner cut is staked to the subnet owner's hotkey;
  - the miner bucket is split by incentive; if nobody has incentive it goes to the validators;
  - the validator bucket is split by dividends, else by active validator stake, else recycled;
  - floor-rounding dust goes to the owner, so every rao of the pending buckets is accounted for.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from subnet.chain.yuma import YumaResult, bonds_to_u16, proportion_to_u16, u16_to_proportion, yuma

_SHARE_SCALE = 1 << 53


@dataclass(frozen=True)
class EpochInputs:
    block: int
    stake: np.ndarray             # (n,) epoch stake per uid (alpha + tao_weight * root stake), rao
    registered_block: np.ndarray  # (n,)
    last_update: np.ndarray       # (n,)
    weights: np.ndarray           # (n, n) raw u16 weights, row = validator
    weights_block: np.ndarray     # (n,) block each row was set (-1: never)
    bonds_u16: np.ndarray         # (n, n) stored bonds
    max_validators: int
    activity_cutoff: int
    kappa: float
    bond_alpha: float
    bonds_penalty: float
    yuma3: bool
    owner_uid: int | None


@dataclass(frozen=True)
class EpochOutcome:
    validator_permit: np.ndarray  # (n,) bool
    active: np.ndarray            # (n,) bool
    result: YumaResult
    bonds_u16: np.ndarray


def validator_permits(stake: np.ndarray, max_validators: int) -> np.ndarray:
    """The top max_validators uids by stake (non-zero stake only; ties broken by lower uid)."""
    order = np.lexsort((np.arange(stake.size), -stake))
    permit = np.zeros(stake.size, dtype=bool)
    top = order[:max_validators]
    permit[top[stake[top] > 0]] = True
    return permit


def run_epoch(inp: EpochInputs) -> EpochOutcome:
    n = inp.stake.size
    permit = validator_permits(inp.stake.astype(np.float64), inp.max_validators)
    active = inp.last_update + inp.activity_cutoff >= inp.block
    stake = np.where(active & permit, inp.stake.astype(np.float64), 0.0)
    weights = inp.weights.astype(np.float64).copy()
    # Weights set at or before the block a uid was (re)registered say nothing about its new owner
    # (a call in the same block may have preceded the registration), as subtensor's `updated <= registered`.
    outdated = inp.weights_block[:, None] <= inp.registered_block[None, :]
    weights[outdated] = 0.0
    bonds = u16_to_proportion(inp.bonds_u16) if inp.yuma3 else inp.bonds_u16.astype(np.float64)
    result = yuma(stake, weights, bonds, kappa=inp.kappa, bond_alpha=inp.bond_alpha,
                  bonds_penalty=inp.bonds_penalty, yuma3=inp.yuma3, validator_permit=permit,
                  owner_uid=inp.owner_uid)
    stored = proportion_to_u16(result.bonds) if inp.yuma3 else bonds_to_u16(result.bonds)
    assert stored.shape == (n, n)
    return EpochOutcome(validator_permit=permit, active=active, result=result, bonds_u16=stored)


def split_by_shares(amount: int, shares: np.ndarray) -> np.ndarray:
    """Integer amounts, floor(amount * share_i / sum(share)), so they never sum above `amount`."""
    weights = [int(w) for w in np.floor(np.clip(shares, 0, None) / max(float(shares.sum()), 1e-300)
                                        * _SHARE_SCALE)]
    total = sum(weights)
    if total == 0:
        return np.zeros(shares.size, dtype=object)
    return np.array([amount * w // total for w in weights], dtype=object)


@dataclass(frozen=True)
class Payout:
    per_uid: list[int]   # alpha staked to each uid's hotkey
    owner: int           # to the owner's hotkey (cut + dust)
    recycled: int        # nobody to pay: removed from alpha issuance


def split_payout(owner_cut: int, miner: int, validator: int, incentive: np.ndarray,
                 dividends: np.ndarray, active_validator_stake: np.ndarray) -> Payout:
    n = incentive.size
    total = miner + validator
    per_uid = np.zeros(n, dtype=object)
    miner_pool = miner if n and incentive.sum() > 0 else 0
    validator_pool = total - miner_pool  # miners' share falls to validators when nobody earned it
    recycled = 0
    if miner_pool:
        per_uid += split_by_shares(miner_pool, incentive)
    if n and dividends.sum() > 0:
        per_uid += split_by_shares(validator_pool, dividends)
    elif n and active_validator_stake.sum() > 0:
        per_uid += split_by_shares(validator_pool, active_validator_stake)
    else:
        recycled = validator_pool
    paid = int(sum(per_uid)) if n else 0
    return Payout(per_uid=[int(x) for x in per_uid], owner=owner_cut + total - recycled - paid,
                  recycled=recycled)
