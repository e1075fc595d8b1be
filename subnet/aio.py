"""Small asyncio helpers shared by the processes' I/O shells."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def gather_all(*awaitables: Awaitable[Any]) -> list[Any]:
    """`asyncio.gather` that lets every awaitable finish before raising the first failure. A plain
    gather raises at the first one and leaves the rest running: their later failures are "never
    retrieved" and asyncio prints them as tracebacks at exit, after the one-line error."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)
