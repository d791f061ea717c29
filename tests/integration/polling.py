"""Waiting for something the servers do in their own time, in one place.

The workflow under test usually gets there within a few tens of milliseconds:
poll quickly at first, then back off, so a wait costs about what the work
takes rather than a fixed interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

_T = TypeVar("_T")


async def eventually(
    probe: Callable[[], Awaitable[_T]],
    done: Callable[[_T], bool],
    *,
    timeout: float = 30.0,
    what: str = "condition",
) -> _T:
    """Call `probe` until `done` holds for its value, and return that value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.01
    while True:
        value = await probe()
        if done(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
