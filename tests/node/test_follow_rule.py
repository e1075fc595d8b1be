"""The aggregate rule's timing: every node takes the same decision whenever it reads.

`Follower.decide` is a single function over a chain head, block timestamps and storage reads; this
unit test replaces those three with a simulated clock (one object store, blocks every second) so
the race that split a real network can be replayed exactly: an aggregate stored in the deadline
block's last second, stamped (whole seconds, rounded down) before the deadline's end, was missed by
nodes that decided at the deadline and taken by nodes that read it later.
"""
from __future__ import annotations

import asyncio
import math
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from subnet.config import load_preset
from subnet.node.follow import Follower, genesis_state
from subnet.protocol import clock
from subnet.storage.client import ObjectInfo

PRESET = load_preset("tiny")
P = PRESET.protocol
WINDOW = 5
DEADLINE = clock.aggregate_deadline(WINDOW, P)
BLOCK_S = 1.0
GENESIS_TS = 1_000_000.3        # blocks start 0.3 s into a second


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch):
    monkeypatch.setattr("subnet.node.follow.POLL_SECONDS", 0)  # simulated time moves per head read


def block_ts(block: int) -> float:
    return GENESIS_TS + block * BLOCK_S


class SimulatedNetwork:
    """A chain head and a store driven by one simulated clock that moves 50 ms per head read."""

    def __init__(self, start: float, stored_at: dict[int, float]):
        self.now = start
        self.stored_at = stored_at   # validator uid -> time its aggregate-WINDOW is stored

    async def get_current_block(self) -> int:
        self.now += 0.05
        return math.floor((self.now - GENESIS_TS) / BLOCK_S)


class SimulatedView:
    def __init__(self, net: SimulatedNetwork, order: list[int]):
        self.chain, self.net, self.order = net, net, order

    async def lead_order_at(self, block):
        return list(self.order)

    async def block_timestamp(self, block: int) -> float:
        assert block_ts(block) <= self.net.now, "a block's timestamp is read before the block exists"
        return block_ts(block)

    async def refresh(self):
        pass


def follower(net: SimulatedNetwork, order: list[int]) -> Follower:
    f = Follower(PRESET, spec=None, view=SimulatedView(net, order), state=genesis_state(PRESET), log=lambda m: None)

    async def fetch(uid, window):
        at = net.stored_at.get(uid)
        if at is None or net.now < at:
            return None
        stamp = datetime.fromtimestamp(math.floor(at), tz=timezone.utc)
        return b"aggregate", ObjectInfo(key=f"aggregate-{window}", size=9, last_modified=stamp, etag="")

    f._fetch = fetch
    f._check = lambda data, window, uid: (SimpleNamespace(parts=[uid], sha256=f"sha{uid}",
                                                          result_model_hash=f"h{uid}"), {"from": uid})
    return f


def decide(start: float, stored_at: dict[int, float], order=(1, 2), wait=True):
    net = SimulatedNetwork(start, stored_at)
    decision, _ = asyncio.run(follower(net, list(order)).decide(WINDOW, wait=wait))
    return decision.from_uid if decision.aggregate is not None else None, decision.refused, net.now


END = block_ts(DEADLINE + 1)    # the deadline block's end


@pytest.mark.parametrize("stored_at", [
    block_ts(DEADLINE) - 0.4,          # well inside: taken
    END - 1.2,                         # stamp + 1 s before the end: taken
    END - 0.6,                         # stamped 0.6 s before the end, stored 0.3 s before: the race
    END - 0.1,                         # last tenth of the deadline block
    END + 0.2,                         # after the deadline
])
def test_early_and_late_readers_agree(stored_at):
    starts = [block_ts(DEADLINE - 2), stored_at + 0.01, END + 0.01, END + 5.0]
    outcomes = {decide(start, {1: stored_at})[0] for start in starts if start >= block_ts(DEADLINE - 2)}
    assert len(outcomes) == 1, outcomes
    expected = 1 if math.floor(stored_at) + 1 <= END else None
    assert outcomes == {expected}


def test_the_replayed_race_is_late_for_everyone():
    stored_at = END + 0.3                     # after the deadline, in the second the deadline ended in
    assert math.floor(stored_at) <= END       # the old check (stamp <= end) took it when read later,
    assert decide(END + 0.01, {1: stored_at})[0] is None  # while deciders at the deadline had not seen it
    taken, refused, _ = decide(END + 5.0, {1: stored_at})
    assert taken is None and refused == {1: "late", 2: "missing"}


def test_a_certain_top_aggregate_is_taken_before_the_deadline():
    stored_at = block_ts(DEADLINE - 3) + 0.1
    taken, _, now = decide(block_ts(DEADLINE - 3), {1: stored_at})
    assert taken == 1 and now < END          # no need to wait for the deadline
    assert now >= math.floor(stored_at) + 1  # but not before a block proves it was in time


def test_the_next_validator_is_taken_when_the_top_one_is_late():
    taken, refused, _ = decide(block_ts(DEADLINE - 2), {1: END - 0.1, 2: block_ts(DEADLINE) - 0.5})
    assert taken == 2 and refused == {1: "late"}
