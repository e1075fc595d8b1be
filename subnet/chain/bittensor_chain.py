"""BittensorChain: the chain interface of `ChainClient`, on a real subtensor through the Bittensor SDK.

The miner and validator call the same methods with the same arguments and get the same types back
(`Metagraph`, `ValidatorSet`, rao integers, commitment strings); they never know which chain they
talk to. Underneath, `bittensor.Client` (SDK 11.x) does the work: runtime-API and storage reads
pinned to a block, and intents for every write (`BurnedRegister`, `AddStake`, `RemoveStake`,
`SetWeights`, which commits timelocked weights by itself when the subnet runs commit-reveal) or a
raw `Commitments.set_commitment` for the bucket commitment.

Failures keep the local chain's contract: a connection that cannot be made or is lost raises
`ChainUnavailable` after bounded retries; a refused call raises `ChainCallError` whose `reason` is
the local chain's name for the same refusal (`rate_limited`, `insufficient_balance`,
`not_registered`, ...), so the processes retry or report as they already do.

Amounts are rao. Stakes are the metagraph's total stake (alpha plus the root TAO weighted as the chain
weighs it), the figure that gives validator permits and that the lead rule orders by.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import bittensor as bt
from bittensor.error_map import ErrorCode

from amm.units import RAO_PER_TAO
from subnet.aio import gather_all
from subnet.chain.client import ChainCallError, ChainUnavailable, Metagraph, ValidatorSet
from subnet.keys import Signer

T = TypeVar("T")
MAX_RAW_FIELD = 128        # the Commitments pallet's largest Raw variant: longer text is split over fields
_U16_MAX = 65535
_INCLUDED = {"wait_for_inclusion": True, "wait_for_finalization": False}

# The chain's own error names where the local chain has a sharper reason than the SDK's code.
_NAME_REASONS = {
    "HotKeyAlreadyRegisteredInSubNet": "already_registered",
    "NeuronNoValidatorPermit": "no_validator_permit",
    "NotEnoughStakeToSetWeights": "insufficient_stake",
    "NotEnoughStake": "insufficient_stake",
    "NotEnoughStakeToWithdraw": "insufficient_stake",
    "UidVecContainInvalidOne": "unknown_uid",
    "WeightVecNotEqualSize": "bad_weights",
    "DuplicateUids": "bad_weights",
    "WeightVecLengthIsLow": "bad_weights",
    "MaxWeightExceeded": "bad_weights",
    "UidsLengthExceedUidsInSubNet": "bad_weights",
    "SpaceLimitExceeded": "commitment_too_large",
    "TooManyFieldsInCommitmentInfo": "commitment_too_large",
    "AccountNotAllowedCommit": "not_registered",
    "NonAssociatedColdKey": "hotkey_owned",
}
_CODE_REASONS = {
    ErrorCode.INSUFFICIENT_BALANCE: "insufficient_balance",
    ErrorCode.INSUFFICIENT_LIQUIDITY: "pool_refused",
    ErrorCode.RATE_LIMITED: "rate_limited",
    ErrorCode.NOT_REGISTERED: "not_registered",
    ErrorCode.ALREADY_EXISTS: "already_registered",
    ErrorCode.SUBNET_NOT_EXISTS: "unknown_subnet",
    ErrorCode.INVALID_ARGUMENT: "bad_params",
    ErrorCode.UNIT_MISMATCH: "bad_params",
    ErrorCode.LIMIT_EXCEEDED: "too_large",
}
# HTTP-like statuses, as the local chain serves the same reasons.
_STATUS = {"rate_limited": 429, "no_validator_permit": 403, "not_authorized": 403, "unknown_subnet": 404,
           "not_found": 404, "not_kept": 404}
# What a node says when asked about a block whose state it no longer keeps.
_PRUNED = ("discard", "unknown block", "state already", "not found in the database")


def chain_call_error(error: bt.BittensorError, what: str) -> ChainCallError:
    """The local chain's refusal for an SDK error: the chain's error name first, then the SDK's code."""
    name = getattr(error, "name", None)
    code = getattr(error, "code", ErrorCode.UNKNOWN)
    reason = _NAME_REASONS.get(name) or _CODE_REASONS.get(code) or getattr(code, "value", "unknown")
    detail = f"{what}: {name + ': ' if name else ''}{error}"
    return ChainCallError(reason, detail[:500], _STATUS.get(reason, 400))


def _is_pruned(error: Exception) -> bool:
    text = str(error).lower()
    return any(marker in text for marker in _PRUNED)


def commitment_info(text: str) -> dict:
    """`Commitments.set_commitment`'s `info` for a plaintext commitment: its UTF-8 bytes in Raw fields of
    at most 128 bytes, which the SDK's reader joins back into the text."""
    data = text.encode("utf-8")
    chunks = [data[i:i + MAX_RAW_FIELD] for i in range(0, len(data), MAX_RAW_FIELD)] or [b""]
    return {"fields": [{f"Raw{len(chunk)}": "0x" + chunk.hex()} for chunk in chunks]}


def limit_price_rao(limit_price: float) -> int:
    """The chain's limit price (rao per alpha) for the local chain's (TAO per alpha)."""
    if isinstance(limit_price, bool) or not isinstance(limit_price, (int, float)) or not 0 < limit_price < math.inf:
        raise ChainCallError("bad_params", f"limit_price must be a positive finite number, got {limit_price!r}", 400)
    return max(1, round(limit_price * RAO_PER_TAO))


def to_metagraph(mg: bt.Metagraph) -> Metagraph:
    """The SDK's metagraph as the processes read one (scores in 0..1, amounts in rao)."""
    neurons = list(mg.neurons)
    raw_trust = list(mg.raw.get("validator_trust") or [])
    validator_trust = [int(raw_trust[n.uid]) / _U16_MAX if n.uid < len(raw_trust) and raw_trust[n.uid] is not None
                       else 0.0 for n in neurons]
    return Metagraph(
        netuid=mg.netuid, block=mg.block, n=len(neurons), tempo=mg.tempo,
        uids=[n.uid for n in neurons], hotkeys=[n.hotkey for n in neurons], coldkeys=[n.coldkey for n in neurons],
        stake=[int(n.total_stake.rao) for n in neurons], validator_permit=[bool(n.validator_permit) for n in neurons],
        incentive=[float(n.incentive) for n in neurons], dividends=[float(n.dividends) for n in neurons],
        consensus=[float(n.consensus) for n in neurons], validator_trust=validator_trust,
        emission=[int(n.emission.rao) for n in neurons], last_update=[int(n.last_update) for n in neurons],
        registration_block=[int(n.block_at_registration) for n in neurons], active=[bool(n.active) for n in neurons])


class BittensorChain:
    """`ChainClient`'s methods on a subtensor node: `network` is finney, test, local, or a ws(s):// URL.
    `client` replaces the SDK client (tests give one whose substrate is recorded)."""

    def __init__(self, network: str, timeout: float = 30.0, retries: int = 5, backoff: float = 0.5,
                 write_timeout: float = 120.0, head_cache_s: float = 1.0, client: Any = None):
        self.network = network
        self.timeout, self.retries, self.backoff, self.write_timeout = timeout, retries, backoff, write_timeout
        # The processes poll the head several times a second while they wait for a block; a subtensor
        # block is 12 s and public nodes rate-limit, so a head younger than this is answered from memory.
        self.head_cache_s = head_cache_s
        self._head: tuple[float, int] | None = None
        self._client = client
        self._connected = False

    async def __aenter__(self) -> BittensorChain:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._client is not None and self._connected:
            await self._client.close()
        self._connected = False

    async def _sdk(self):
        if self._client is None:
            self._client = bt.Client(self.network)
        if not self._connected:
            await asyncio.wait_for(self._client.connect(), self.timeout)
            self._connected = True
        return self._client

    async def _retry(self, what: str, attempt_call: Callable[[Any], Awaitable[T]], retries: int | None = None,
                     timeout: float | None = None) -> T:
        """One chain operation with bounded retries on a lost connection (reconnecting each time)."""
        retries = self.retries if retries is None else retries
        for attempt in range(retries + 1):
            try:
                client = await self._sdk()
                return await asyncio.wait_for(attempt_call(client), timeout or self.timeout)
            except (bt.RpcConnectionError, bt.ConnectionNotReady, OSError, asyncio.TimeoutError) as exc:
                self._connected = False
                if attempt == retries:
                    raise ChainUnavailable(f"bittensor chain {self.network} unreachable after {attempt + 1} "
                                           f"tries ({what}): {exc!r}") from None
                await asyncio.sleep(self.backoff * 2 ** attempt)
            except ChainCallError:
                raise
            except (bt.BittensorError, bt.PolicyError) as exc:   # a refusal, by the chain or by the SDK's checks
                raise chain_call_error(exc, what) from None
            except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
                # The node's answer did not have the shape the SDK decodes: untrusted input, not our bug.
                raise ChainCallError("bad_reply", f"{what}: the node's reply could not be read "
                                     f"({type(exc).__name__}: {exc})"[:500], 502) from None
        raise AssertionError("unreachable")

    async def _read_at(self, block: int, what: str, read: Callable[[Any], Awaitable[T]]) -> T:
        """A read pinned to `block`; a node that pruned that block's state says `not_kept`."""
        async def at_block(client):
            return await read(await client.at(block))
        try:
            return await self._retry(what, at_block)
        except ChainCallError as exc:
            if _is_pruned(exc):
                raise ChainCallError("not_kept", f"{what}: block {block} is no longer kept by {self.network}",
                                     404) from None
            raise

    async def _submit(self, what: str, submit: Callable[[Any], Awaitable[Any]]) -> dict:
        """One extrinsic, waited for until it is in a block (finality would cost the window ~2 blocks
        more; callers check the state they need). Never resent: on a lost connection nobody can tell
        whether it was included, and a second stake or registration would cost real TAO, so it is
        reported as `ChainUnavailable` and the process's idempotent start-up looks again."""
        result = await self._retry(what, submit, retries=0, timeout=self.write_timeout)
        if not result.success:
            if result.error is not None:
                raise chain_call_error(result.error, what)
            raise ChainCallError("unknown", f"{what}: {result.message or 'the extrinsic failed'}"[:500], 400)
        return {"ok": True, "block_hash": result.block_hash, "extrinsic_id": result.extrinsic_id}

    # --- queries ------------------------------------------------------------------------------
    async def get_current_block(self) -> int:
        now = time.monotonic()
        if self._head is not None and now - self._head[0] < self.head_cache_s:
            return self._head[1]
        block = int(await self._retry("block", lambda c: c.block()))
        self._head = (now, block)
        return block

    async def get_block_timestamp(self, block: int) -> float:
        stamp = await self._retry(f"timestamp of block {block}", lambda c: c.timestamp(block))
        return stamp.timestamp()

    async def _sdk_metagraph(self, view, netuid: int) -> bt.Metagraph:
        mg = await view.subnets.metagraph(netuid, commitments=False)
        if mg is None:
            raise ChainCallError("unknown_subnet", f"subnet {netuid} does not exist on {self.network}", 404)
        return mg

    async def metagraph(self, netuid: int) -> Metagraph:
        return to_metagraph(await self._retry(f"metagraph {netuid}", lambda c: self._sdk_metagraph(c, netuid)))

    async def _setters(self, view, netuid: int) -> set[int]:
        """Uids with weights on chain or a timelocked commit waiting to reveal (commit-reveal subnets)."""
        rows, commits, uids = await gather_all(
            view.query_map(bt.storage.SubtensorModule.Weights, [netuid]),
            view.weights.timelocked_weight_commits(netuid),
            view.query_map(bt.storage.SubtensorModule.Uids, [netuid]))
        uid_of = {str(hotkey): int(uid) for hotkey, uid in uids}
        setters = {int(uid) for uid, row in rows if row}
        setters |= {uid_of[c["hotkey"]] for epoch in commits.values() for c in epoch if c["hotkey"] in uid_of}
        return setters

    async def weight_setters(self, netuid: int) -> set[int]:
        return await self._retry(f"weight setters {netuid}", lambda c: self._setters(c, netuid))

    async def validators_at(self, netuid: int, block: int) -> ValidatorSet:
        async def read(view) -> ValidatorSet:
            mg, setters = await gather_all(self._sdk_metagraph(view, netuid), self._setters(view, netuid))
            graph = to_metagraph(mg)
            return ValidatorSet(netuid=netuid, block=block, recorded_at=block, uids=graph.uids, hotkeys=graph.hotkeys,
                                stake=graph.stake, validator_permit=graph.validator_permit,
                                weight_setters=sorted(setters))
        return await self._read_at(block, f"validators of {netuid} at block {block}", read)

    async def get_all_commitments(self, netuid: int) -> dict[str, str]:
        commitments = await self._retry(f"commitments {netuid}", lambda c: c.subnets.commitments(netuid))
        return {hotkey: c.value for hotkey, c in commitments.items() if c.value is not None}

    async def get_commitment(self, netuid: int, hotkey: str) -> str | None:
        commitment = await self._retry(f"commitment of {hotkey}", lambda c: c.identity.commitment(netuid, hotkey))
        return (commitment.data or None) if commitment is not None else None

    async def get_weights(self, netuid: int) -> dict[int, tuple[list[int], list[int]]]:
        rows = await self._retry(f"weights {netuid}",
                                 lambda c: c.query_map(bt.storage.SubtensorModule.Weights, [netuid]))
        return {int(uid): ([int(d) for d, _ in row], [int(w) for _, w in row]) for uid, row in rows if row}

    async def get_pool(self, netuid: int) -> dict:
        st = bt.storage.SubtensorModule

        async def read(c) -> dict:
            owner, tao_in, alpha_in = await gather_all(
                c.query(st.SubnetOwnerHotkey, [netuid]), c.query(st.SubnetTAO, [netuid]),
                c.query(st.SubnetAlphaIn, [netuid]))
            return {"netuid": netuid, "owner_hotkey": str(owner) if owner else None,
                    "tao_in": int(tao_in or 0), "alpha_in": int(alpha_in or 0)}
        return await self._retry(f"pool {netuid}", read)

    async def get_balance(self, address: str) -> int:
        return int((await self._retry(f"balance of {address}", lambda c: c.balances.get(address))).rao)

    async def get_stake(self, netuid: int, hotkey: str, coldkey: str) -> int:
        stake = await self._retry(f"stake of {coldkey} on {hotkey}", lambda c: c.staking.get(coldkey, hotkey, netuid))
        return int(stake.rao)

    # --- signed calls -------------------------------------------------------------------------
    async def burned_register(self, coldkey: Signer, netuid: int, hotkey: str) -> dict:
        intent = bt.BurnedRegister(netuid=netuid, hotkey_ss58=hotkey)
        return await self._submit(f"burned_register on {netuid}", lambda c: c.execute(intent, coldkey, **_INCLUDED))

    async def add_stake(self, coldkey: Signer, netuid: int, hotkey: str, amount: int,
                        limit_price: float | None = None, allow_partial: bool = True) -> dict:
        """Without `limit_price` the SDK's own slippage protection applies; with it (TAO per alpha,
        as on the local chain) the chain's `add_stake_limit` at that price."""
        tao = bt.Balance.from_rao(amount)
        intent = (bt.AddStake(hotkey_ss58=hotkey, netuid=netuid, amount_tao=tao) if limit_price is None else
                  bt.AddStakeLimit(hotkey_ss58=hotkey, netuid=netuid, amount_tao=tao,
                                   limit_price_rao=limit_price_rao(limit_price), allow_partial=allow_partial))
        return await self._submit(f"add_stake on {netuid}", lambda c: c.execute(intent, coldkey, **_INCLUDED))

    async def unstake(self, coldkey: Signer, netuid: int, hotkey: str, amount: int,
                      limit_price: float | None = None, allow_partial: bool = True) -> dict:
        alpha = bt.Balance.from_rao(amount, netuid)
        intent = (bt.RemoveStake(hotkey_ss58=hotkey, netuid=netuid, amount_alpha=alpha) if limit_price is None else
                  bt.RemoveStakeLimit(hotkey_ss58=hotkey, netuid=netuid, amount_alpha=alpha,
                                      limit_price_rao=limit_price_rao(limit_price), allow_partial=allow_partial))
        return await self._submit(f"remove_stake on {netuid}", lambda c: c.execute(intent, coldkey, **_INCLUDED))

    async def transfer(self, coldkey: Signer, dest: str, amount: int) -> dict:
        intent = bt.Transfer(dest_ss58=dest, amount_tao=bt.Balance.from_rao(amount))
        return await self._submit("transfer", lambda c: c.execute(intent, coldkey, **_INCLUDED))

    async def set_weights(self, hotkey: Signer, netuid: int, uids: list[int], weights: list[int]) -> dict:
        if len(uids) != len(weights) or not uids:
            raise ChainCallError("bad_weights", f"set_weights: {len(uids)} uids and {len(weights)} weights", 400)
        intent = bt.SetWeights(netuid=netuid, uids=[int(u) for u in uids], weights=[float(w) for w in weights])
        return await self._submit(f"set_weights on {netuid}", lambda c: c.execute(intent, hotkey, **_INCLUDED))

    async def commit(self, hotkey: Signer, netuid: int, data: str) -> dict:
        call = bt.calls.Commitments.set_commitment(netuid=netuid, info=commitment_info(data))
        return await self._submit(f"commitment on {netuid}", lambda c: c.submit_call(call, hotkey, signer="hotkey",
                                                                                  **_INCLUDED))
