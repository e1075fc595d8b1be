"""Exact ledger: who holds every rao of TAO and of each subnet's alpha.

Invariants checked by `audit` (to the rao):

    TAO:   total_issuance == sum(free balances) + root stake + sum(subnet pool TAO reserves)
    alpha: alpha_issuance[i] == pool alpha + sum(alpha stakes on i) + pending buckets
                                + protocol alpha

Root stake is held as root "alpha" 1:1 with the TAO in the root pool, so it is counted once, on the
TAO side. Swap fees stay inside the pools, so they need no account of their own. Tempo payouts move
pending alpha into the stake accounts `owner`, `miners` and `validators` of the subnet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from amm.coinbase import BlockResult, ChainState
from amm.pool import InsufficientLiquidity, PoolError

PAYOUT_ACCOUNTS = ("owner", "miners", "validators")


class ConservationError(AssertionError):
    pass


class InsufficientBalance(PoolError):
    pass


@dataclass
class Ledger:
    tao_balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    alpha_stakes: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    root_stakes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    # ----- user flows (these also move the pools and record TAO flow) -------------------------
    def stake(self, state: ChainState, account: str, netuid: int, tao_in: int) -> int:
        """`account` stakes `tao_in` TAO rao into subnet `netuid` (0 = root); returns alpha out."""
        if self.tao_balances[account] < tao_in:
            raise InsufficientBalance(f"{account} has {self.tao_balances[account]} rao, needs {tao_in}")
        if netuid == 0:
            out = state.root.stake(tao_in)
            self.root_stakes[account] += out
        else:
            subnet = state.subnet(netuid)
            out = subnet.pool.stake(tao_in)
            subnet.record_flow(tao_in)
            self.alpha_stakes[(netuid, account)] += out
        self.tao_balances[account] -= tao_in
        return out

    def unstake(self, state: ChainState, account: str, netuid: int, alpha_in: int) -> int:
        """`account` sells `alpha_in` of its stake on `netuid` (0 = root); returns TAO out."""
        held = self.root_stakes[account] if netuid == 0 else self.alpha_stakes[(netuid, account)]
        if held < alpha_in:
            raise InsufficientBalance(f"{account} holds {held} alpha rao on {netuid}, sells {alpha_in}")
        if netuid == 0:
            out = state.root.unstake(alpha_in)
            self.root_stakes[account] -= alpha_in
        else:
            subnet = state.subnet(netuid)
            out = subnet.pool.unstake(alpha_in)
            subnet.record_flow(-out)
            self.alpha_stakes[(netuid, account)] -= alpha_in
        self.tao_balances[account] += out
        return out

    def credit_payouts(self, result: BlockResult) -> None:
        for p in result.payouts:
            self.alpha_stakes[(p.netuid, "owner")] += p.owner
            self.alpha_stakes[(p.netuid, "miners")] += p.miner
            self.alpha_stakes[(p.netuid, "validators")] += p.validator

    # ----- the audit -------------------------------------------------------------------------
    def audit(self, state: ChainState) -> None:
        """Raise ConservationError naming the first quantity that does not add up."""
        tao_held = sum(self.tao_balances.values()) + state.root.tao + sum(s.pool.tao for s in state.subnets)
        if tao_held != state.total_issuance:
            raise ConservationError(
                f"block {state.block}: TAO issuance {state.total_issuance} != held {tao_held} "
                f"(diff {state.total_issuance - tao_held})")
        root_held = sum(self.root_stakes.values())
        if root_held != state.root.tao:
            raise ConservationError(f"root pool {state.root.tao} != root stakes {root_held}")
        stakes: dict[int, int] = defaultdict(int)
        for (netuid, _), amount in self.alpha_stakes.items():
            stakes[netuid] += amount
        for s in state.subnets:
            held = s.pool.alpha + stakes[s.netuid] + s.pending.total + s.protocol_alpha
            if held != s.alpha_issuance:
                raise ConservationError(
                    f"block {state.block}: subnet {s.netuid} alpha issuance {s.alpha_issuance} "
                    f"!= held {held} (diff {s.alpha_issuance - held})")


__all__ = ["Ledger", "ConservationError", "InsufficientBalance", "InsufficientLiquidity", "PAYOUT_ACCOUNTS"]
