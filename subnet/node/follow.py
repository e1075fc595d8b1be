"""Following the global model: the one piece miners and validators share.

Version v is the model after v applied aggregates. For each window w, after (or, for the lead,
before) the aggregate deadline, a node picks aggregate w by one rule that needs no vote: walk the
validators by stake (`NetworkView.lead_order`: permit holders that set weights, most stake first,
ties to the lower uid) and take the first whose `aggregate-w` was stored by the deadline and checks
out (signature, every part, the link to the aggregate this node applied last, the base model, and
the result hash it recomputes). A node may take the first validator's aggregate as soon as it sees
it (nobody ranks above it); it waits for the deadline only while that validator is silent. A window
where nobody qualifies is skipped by all alike: model, version and schedule stay.

Starting or restarting, a node takes its own snapshot if it has one, else the newest checkpoint it
can verify among the validators, else the genesis model; then it lists the validators' aggregate
manifests and applies every window after its start up to the present, including the last one
(Templar's catch-up missed it: tplr #195). The same code runs when a node falls behind mid-run.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from subnet.compression.spec import CodecSpec
from subnet.config import Preset
from subnet.errors import InputRejected
from subnet.model import Params, build_model, get_params, model_hash
from subnet.node.network import NetworkView
from subnet.protocol import clock
from subnet.protocol.settings import genesis_anchor
from subnet.protocol.window import apply_aggregate
from subnet.storage.client import StorageError
from subnet.wire import names
from subnet.wire.aggregate import Aggregate, AggregateExpectation, decode_aggregate

POLL_SECONDS = 0.1           # while waiting for an aggregate (each look is a chain and a storage call)
REFRESH_SECONDS = 0.5        # ...but re-read the metagraph and commitments only this often
# The top validator's aggregate is refused for one of these: it was made on a lineage this node does
# not hold, so this node (not the top validator, whose lineage is the network's) has gone astray.
DIVERGENCE_REASONS = {"result_mismatch", "wrong_base_model", "broken_lineage"}


@dataclass
class ModelState:
    theta: Params
    version: int          # aggregates applied since genesis
    window: int           # last window whose aggregate decision is taken (-1: none yet)
    prev_sha: str         # sha256 of the last applied aggregate, or the genesis anchor
    hash: str = ""
    _norm: float | None = field(default=None, repr=False)  # ||theta||, computed once per model

    def __post_init__(self):
        if not self.hash:
            self.hash = model_hash(self.theta)

    def norm_bound(self, ratio: float) -> float:
        """The largest update norm accepted against this model: ratio x ||theta||."""
        if self._norm is None:
            self._norm = model_norm(self.theta)
        return ratio * self._norm

    def meta(self) -> dict:
        return {"version": self.version, "window": self.window, "prev_sha": self.prev_sha, "hash": self.hash}


def genesis_state(preset: Preset) -> ModelState:
    theta = get_params(build_model(preset.model, preset.seed))
    return ModelState(theta=theta, version=0, window=-1, prev_sha=genesis_anchor(preset, model_hash(theta)))


def model_norm(theta: Params) -> float:
    """||theta|| in float64. numpy's sum is single-threaded and fixed-order, so every node gets the
    same number (it sets the norm bound, which decides which uploads and aggregates are valid)."""
    total = sum(float(np.square(t.numpy().astype(np.float64)).sum()) for _, t in sorted(theta.items()))
    return math.sqrt(total)


@dataclass(frozen=True)
class Decision:
    window: int
    aggregate: Aggregate | None          # None: the window is skipped
    from_uid: int | None
    refused: dict[int, str] = field(default_factory=dict)  # validator uid -> why its aggregate was passed over
    waited_s: float = 0.0


class Diverged(Exception):
    """This node's model no longer reproduces the network's aggregates: re-follow from a checkpoint."""


class Follower:
    def __init__(self, preset: Preset, spec: CodecSpec, view: NetworkView, state: ModelState,
                 log: Callable[[str], None] = print, checkpoint_dir: Path | None = None):
        self.preset, self.spec, self.view, self.state, self.log = preset, spec, view, state, log
        self.protocol = preset.protocol
        self.checkpoint_dir = checkpoint_dir
        self.poll_s = POLL_SECONDS     # a miner training ahead polls less: the loop would slow its steps
        self._refollowing = False

    # --- reading one validator's aggregate ------------------------------------------------------
    async def _fetch(self, uid: int, window: int):
        reader = self.view.reader(uid)
        if reader is None:
            return None
        client, bucket = reader
        key = names.aggregate_key(window)
        try:
            info = await asyncio.to_thread(client.head, bucket, key)
            data = await asyncio.to_thread(client.get, bucket, key,
                                           self.spec.max_aggregate_bytes(self.protocol.peers_per_window))
        except StorageError as exc:
            if exc.reason == "not_found":
                return None
            raise
        return bytes(data), info

    def _check(self, data: bytes, window: int, uid: int) -> tuple[Aggregate, Params]:
        hotkey = self.view.hotkey_of(uid) or ""
        aggregate = decode_aggregate(data, self.spec, AggregateExpectation(
            window=window, hotkey=hotkey, base_model_hash=self.state.hash, prev_aggregate_sha256=self.state.prev_sha,
            max_parts=self.protocol.peers_per_window,
            norm_bound=self.state.norm_bound(self.protocol.norm_bound_ratio)))
        return aggregate, apply_aggregate(self.state.theta, aggregate, self.preset.outer.lr)

    # --- the rule -------------------------------------------------------------------------------
    async def decide(self, window: int, wait: bool = True) -> tuple[Decision, Params | None]:
        """Pick aggregate `window` (see the module docstring); returns the decision and the new model.

        "Stored by the deadline" is `clock.stored_before(LastModified, end of the deadline block)`.
        Before the deadline a node may take the top validator's aggregate only once a block it has
        seen proves that (the block started at least a second after the object's stamp), so an early
        taker and a node reading after the deadline always agree."""
        deadline = clock.aggregate_deadline(window, self.protocol)
        started = refreshed = time.monotonic()
        refused: dict[int, str] = {}
        fetched: dict[int, tuple[bytes, object]] = {}   # read once per decision
        certain_at = None   # wall time from which the top validator's aggregate can be proved in time
        while True:
            head = await self.view.chain.get_current_block()
            passed = head > deadline
            # The latest time known to lie before the deadline's end: the head block's start.
            known_end = await self.view.block_timestamp(min(head, deadline + 1))
            # The stake order at the window's first block: the same for every node, whenever it reads.
            order = await self.view.lead_order_at(clock.first_block(window, self.protocol))
            for uid in order:
                if uid in refused:
                    continue
                got = fetched.get(uid)
                if got is None:
                    try:
                        got = await self._fetch(uid, window)
                    except StorageError as exc:
                        got, reason = None, exc.reason
                    else:
                        reason = "missing"
                if got is None:
                    if passed:
                        refused[uid] = reason
                        continue
                    break  # a higher-ranked validator may still publish in time
                fetched[uid] = got
                data, info = got
                stamp = info.last_modified.timestamp()
                if not clock.stored_before(stamp, known_end):
                    if passed:
                        refused[uid] = "late"
                        continue
                    certain_at = stamp + clock.STORAGE_TIME_RESOLUTION_S
                    break  # in time, or not: a block starting after certain_at tells
                try:
                    aggregate, theta = self._check(data, window, uid)
                except InputRejected as exc:
                    if exc.reason in DIVERGENCE_REASONS and not refused:
                        self.log(f"window {window}: the top validator's aggregate does not follow this node's "
                                 f"model {self.state.hash[:12]}: {exc}")
                        raise Diverged(str(exc)) from None
                    refused[uid] = exc.reason
                    continue
                if not aggregate.parts:
                    # The validator found nothing worth aggregating and says so at once: the window
                    # is skipped now, not at the deadline (miners then start the next window on time).
                    return Decision(window, None, uid, refused, time.monotonic() - started), None
                return Decision(window, aggregate, uid, refused, time.monotonic() - started), theta
            if passed or not wait:
                # Past the deadline nobody qualified: the window is skipped. Before it, a
                # validator may still publish (or join the order), so keep looking.
                return Decision(window, None, None, refused, time.monotonic() - started), None
            # Nothing can change before certain_at but the head: no need to poll faster than that.
            pause = self.poll_s if certain_at is None else min(1.0, max(self.poll_s, certain_at - time.time()))
            await asyncio.sleep(pause)
            if time.monotonic() - refreshed > REFRESH_SECONDS:
                await self.view.refresh()
                refreshed = time.monotonic()

    def apply(self, decision: Decision, theta: Params | None) -> None:
        if decision.aggregate is not None:
            self.state = ModelState(theta=theta, version=self.state.version + 1, window=decision.window,
                                    prev_sha=decision.aggregate.sha256, hash=decision.aggregate.result_model_hash)
        else:
            self.state.window = max(self.state.window, decision.window)

    async def advance(self, window: int, wait: bool = True) -> Decision:
        try:
            decision, theta = await self.decide(window, wait)
        except Diverged:
            if not self._refollowing:  # once per divergence: a checkpoint that diverges too is skipped past
                await self.refollow()
            return Decision(window, None, None, {}, 0.0)
        self.apply(decision, theta)
        return decision

    async def refollow(self) -> None:
        """Start again from the newest verifiable checkpoint (or genesis) and catch up."""
        old = self.state.hash
        state = None
        if self.checkpoint_dir is not None:
            state = await newest_checkpoint_state(self.view, self.checkpoint_dir, self.log)
        self.state = state or genesis_state(self.preset)
        self.log(f"re-following from window {self.state.window} (was at model {old[:12]})")
        self._refollowing = True
        try:
            await self.catch_up()
        finally:
            self._refollowing = False

    # --- catching up ----------------------------------------------------------------------------
    async def aggregate_windows(self, after: int, before: int) -> list[int]:
        """Windows in (after, before) for which any validator stored an aggregate manifest."""
        found: set[int] = set()
        for uid in self.view.lead_order():
            reader = self.view.reader(uid)
            if reader is None:
                continue
            client, bucket = reader
            try:
                listing = await asyncio.to_thread(client.list, bucket, "aggregate-")
            except StorageError:
                continue
            for info in listing:
                w = names.window_of_key(info.key)
                if w is not None and after < w < before and info.key == names.aggregate_key(w):
                    found.add(w)
        return sorted(found)

    async def catch_up(self) -> list[Decision]:
        """Apply every window whose aggregate deadline has passed."""
        await self.view.refresh()
        block = await self.view.chain.get_current_block()
        current = clock.window_of(block, self.protocol)
        # The newest window that is already decided: its aggregate deadline is behind us.
        last_decided = current - 1 if block > clock.aggregate_deadline(current - 1, self.protocol) else current - 2
        decisions = []
        for window in await self.aggregate_windows(self.state.window, last_decided + 1):
            decisions.append(await self.advance(window, wait=False))
        self.state.window = max(self.state.window, last_decided)
        return decisions


# --- where to start ---------------------------------------------------------------------------------

async def newest_checkpoint_state(view: NetworkView, dest: Path, log: Callable[[str], None]) -> ModelState | None:
    """The newest checkpoint that verifies among the validators (by stake order on ties)."""
    from subnet.storage.checkpoint import fetch_checkpoint, load_checkpoint_model, read_latest

    best = None
    for uid in view.lead_order():
        reader, hotkey = view.reader(uid), view.hotkey_of(uid)
        if reader is None or hotkey is None:
            continue
        try:
            window, _, _ = await asyncio.to_thread(read_latest, reader[0], reader[1], hotkey)
        except (InputRejected, OSError) as exc:
            log(f"checkpoint of uid {uid} unusable: {exc}")
            continue
        if best is None or window > best[0]:
            best = (window, uid, reader, hotkey)
    if best is None:
        return None
    window, uid, (client, bucket), hotkey = best
    try:
        info, directory = await asyncio.to_thread(fetch_checkpoint, client, bucket, dest, hotkey, window)
        model = await asyncio.to_thread(load_checkpoint_model, directory, info)
    except (InputRejected, OSError) as exc:
        log(f"checkpoint {window} of uid {uid} unusable: {exc}")
        return None
    log(f"starting from checkpoint {window} of uid {uid} (version {info.version})")
    return ModelState(theta=get_params(model), version=info.version, window=window, prev_sha=info.aggregate_sha256,
                      hash=info.model_hash)
