"""A process's view of the subnet: metagraph, who validates, and where every peer's bucket is.

Refreshed from the chain once a window (and on demand). Peers' buckets come from their on-chain
commitments (`storage/discovery.py`); a reader client is made once per (endpoint, read key). All
storage calls are blocking boto3, so callers run them through `asyncio.to_thread`; every one has the
client's timeouts and bounded retries, so a slow peer costs seconds, never the window.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from subnet.aio import gather_all
from subnet.chain.backend import Chain
from subnet.chain.client import ChainCallError, Metagraph
from subnet.storage.client import RetryPolicy, StorageClient
from subnet.storage.commitment import BucketCommitment
from subnet.storage.discovery import read_bucket_commitments

# Peers' objects are read with few retries: a missing or slow peer must not hold up the window.
PEER_RETRY = RetryPolicy(attempts=2, base_delay=0.1, max_delay=0.5)


def lead_order(uids: list[int], stakes: list[int], permits: list[bool], setters: set[int]) -> list[int]:
    """Validators that may publish the aggregate, most stake first (ties: lower uid): those with a
    validator permit that have set weights (a miner with a permit never publishes aggregates, and
    waiting for one would cost every window its deadline)."""
    if not len(uids) == len(stakes) == len(permits):
        raise ValueError(f"lead_order: {len(uids)} uids, {len(stakes)} stakes, {len(permits)} permits")
    chosen = [(u, s) for u, s, p in zip(uids, stakes, permits) if p and u in setters]
    return [u for u, _ in sorted(chosen, key=lambda us: (-us[1], us[0]))]


@dataclass
class NetworkView:
    chain: Chain
    netuid: int
    metagraph: Metagraph | None = None
    buckets: dict[str, BucketCommitment] = field(default_factory=dict)  # hotkey -> bucket
    weight_setters: set[int] = field(default_factory=set)
    owner_hotkey: str | None = None
    _readers: dict[tuple, StorageClient] = field(default_factory=dict)
    _timestamps: dict[int, float] = field(default_factory=dict)
    _orders: dict[int, list[int]] = field(default_factory=dict)   # block -> lead order at that block

    async def refresh(self) -> None:
        self.metagraph, peers, setters, pool = await gather_all(
            self.chain.metagraph(self.netuid), read_bucket_commitments(self.chain, self.netuid),
            self.chain.weight_setters(self.netuid), self.chain.get_pool(self.netuid))
        self.buckets = peers.buckets
        self.weight_setters = set(setters)
        self.owner_hotkey = pool.get("owner_hotkey")

    @property
    def uids(self) -> list[int]:
        return list(self.metagraph.uids) if self.metagraph else []

    def hotkey_of(self, uid: int) -> str | None:
        mg = self.metagraph
        if mg is None or uid not in mg.uids:
            return None
        return mg.hotkeys[mg.uids.index(uid)]

    def uid_of(self, hotkey: str) -> int | None:
        mg = self.metagraph
        if mg is None or hotkey not in mg.hotkeys:
            return None
        return mg.uids[mg.hotkeys.index(hotkey)]

    @property
    def owner_uid(self) -> int:
        uid = self.uid_of(self.owner_hotkey) if self.owner_hotkey else None
        return 0 if uid is None else uid

    def lead_order(self) -> list[int]:
        mg = self.metagraph
        if mg is None:
            return []
        return lead_order(mg.uids, mg.stake, mg.validator_permit, self.weight_setters)

    async def lead_order_at(self, block: int) -> list[int]:
        """The lead order as of the start of `block` (the aggregate rule reads it at the window's
        first block, so a stake change inside the window cannot make two nodes rank differently).
        A chain that no longer keeps that block's state gives today's order instead."""
        order = self._orders.get(block)
        if order is None:
            try:
                at = await self.chain.validators_at(self.netuid, block)
            except ChainCallError as exc:
                if exc.reason != "not_kept":
                    raise
                return self.lead_order()
            order = lead_order(at.uids, at.stake, at.validator_permit, set(at.weight_setters))
            if len(self._orders) > 64:
                self._orders.clear()
            self._orders[block] = order
        return list(order)

    def miner_uids(self) -> list[int]:
        """Uids that may upload gradients: everyone but the validators that publish aggregates and
        the subnet owner."""
        leads = set(self.lead_order())
        return [u for u in self.uids if u not in leads and u != self.owner_uid]

    def bucket_of(self, uid: int) -> BucketCommitment | None:
        hotkey = self.hotkey_of(uid)
        return self.buckets.get(hotkey) if hotkey else None

    def reader(self, uid: int) -> tuple[StorageClient, str] | None:
        """(client holding the peer's read key, bucket), or None if it committed no bucket."""
        bucket = self.bucket_of(uid)
        if bucket is None:
            return None
        key = (bucket.endpoint, bucket.access_key, bucket.secret_key)
        client = self._readers.get(key)
        if client is None:
            client = self._readers[key] = StorageClient(bucket.s3_config(), retry=PEER_RETRY)
        return client, bucket.bucket

    @property
    def bytes_received(self) -> int:
        """Bytes read from peers' buckets by this view's reader clients so far."""
        return sum(client.bytes_received for client in self._readers.values())

    async def block_timestamp(self, block: int) -> float:
        if block not in self._timestamps:
            self._timestamps[block] = await self.chain.get_block_timestamp(block)
        return self._timestamps[block]
