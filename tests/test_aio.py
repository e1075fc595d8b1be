"""subnet/aio.py: gather_all lets every awaitable finish, then raises the first failure."""
from __future__ import annotations

import asyncio

import pytest

from subnet.aio import gather_all


class Unreachable(ConnectionError):
    pass


async def fails_fast():
    raise Unreachable("first")


async def slow_read():
    """A read retrying with backoff whose library turns a cancellation into its own error, as the
    SDK's connection code does: left running, it fails during asyncio.run's shutdown."""
    try:
        await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        raise Unreachable("second, at shutdown") from None


def run_and_report(gather) -> tuple[list[str], list[dict]]:
    reported: list[dict] = []

    async def scenario():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
        await gather(fails_fast(), slow_read())

    with pytest.raises(Unreachable) as err:
        asyncio.run(scenario())
    return [str(err.value)], reported


def test_nothing_is_left_running_to_fail_after_the_error_is_reported():
    raised, reported = run_and_report(gather_all)
    assert raised == ["first"] and reported == []   # the one-line error is the last word


def test_a_plain_gather_leaves_a_failure_for_shutdown_to_print():
    # Why gather_all exists: asyncio prints this one as a traceback after the process's error line.
    _, reported = run_and_report(asyncio.gather)
    assert [c["message"] for c in reported] == ["unhandled exception during asyncio.run() shutdown"]


def test_results_come_back_in_order():
    async def value(delay: float, v: int) -> int:
        await asyncio.sleep(delay)
        return v
    assert asyncio.run(gather_all(value(0.02, 1), value(0.0, 2))) == [1, 2]
