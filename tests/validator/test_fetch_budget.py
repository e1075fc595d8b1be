"""How long a validator waits for a window's uploads: up to the last moment its aggregate can be stored
and still count, less the aggregate's own time, so a peer that never answers costs only its upload."""
import math

import pytest

from subnet.protocol import clock
from validator.loop import MIN_FETCH_S, fetch_budget


def slot_times(window, p, block_s, start=1000.0):
    first, last = clock.upload_slot(window, p)
    return start, start + (last + 1 - first) * block_s


@pytest.mark.parametrize("block_s", [0.5, 1.0, 12.0])
def test_the_budget_ends_a_stamp_second_and_the_aggregates_time_before_the_deadline(tiny_preset, block_s):
    p = tiny_preset.protocol
    slot = slot_times(7, p, block_s)
    deadline_end = slot[1] + p.aggregate_deadline_blocks * block_s
    closed = slot[1]   # the validator starts reading when the slot closes
    last_store = math.floor(deadline_end - 1.0) + 1.0   # stamped in a second that still passes stored_before
    assert clock.stored_before(math.floor(last_store - 1e-6), deadline_end)
    assert not clock.stored_before(math.floor(last_store), deadline_end)
    expected = last_store - 0.3 - closed
    assert fetch_budget(7, p, slot, closed, 0.3) == pytest.approx(max(MIN_FETCH_S, expected))
    # later start, slower aggregate: less time, never below the floor
    assert fetch_budget(7, p, slot, closed + 0.2, 0.3) == pytest.approx(max(MIN_FETCH_S, expected - 0.2))
    assert fetch_budget(7, p, slot, deadline_end + 5, 0.3) == MIN_FETCH_S


def test_twelve_second_blocks_give_the_reads_most_of_the_deadline(tiny_preset):
    p = tiny_preset.protocol
    slot = slot_times(3, p, 12.0, start=1000.25)   # the deadline ends at a fraction of a second
    deadline_end = slot[1] + p.aggregate_deadline_blocks * 12.0
    assert fetch_budget(3, p, slot, slot[1], 0.5) == pytest.approx(math.floor(deadline_end) - 0.5 - slot[1])


def test_results_within_marks_and_cancels_what_did_not_finish_in_time():
    import asyncio

    from validator.loop import TIMED_OUT, results_within
    cancelled = []

    async def answers(value):
        return value

    async def hangs():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def run():
        got = await results_within([answers(1), hangs(), answers(("missing", None))], 0.2, TIMED_OUT)
        await asyncio.sleep(0)   # let the cancellation land
        return got
    assert asyncio.run(run()) == [1, TIMED_OUT, ("missing", None)]
    assert cancelled == [True]
    assert asyncio.run(results_within([], 0.1, TIMED_OUT)) == []
