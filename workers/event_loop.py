"""The event loop a long-running Steward process runs on.

`steward worker` and `steward up` run on uvloop by default. A worker's own
work outside the workflow sandbox is mostly I/O on that loop: the SDK's
bridge hands every task over through it, and the activities talk to
PostgreSQL through asyncpg (about a dozen round trips per order review),
which was written for uvloop. Workflow code is unaffected: the SDK runs each
workflow on its own deterministic loop whatever the outer one is.

`STEWARD_EVENT_LOOP=asyncio` keeps the standard library's loop, for a
platform without uvloop or to compare (`make bench` measures both ways).
`steward api` alone is left to uvicorn, whose default also picks uvloop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

EventLoopKind = Literal["uvloop", "asyncio"]

_T = TypeVar("_T")


def _loop_factory(kind: EventLoopKind) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory `asyncio.Runner` needs for `kind`; None is the standard loop."""
    if kind == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every platform we ship
        raise RuntimeError(
            "STEWARD_EVENT_LOOP=uvloop but uvloop is not installed: "
            "install it, or set STEWARD_EVENT_LOOP=asyncio"
        ) from None
    return uvloop.new_event_loop


def run_on_event_loop(main: Coroutine[Any, Any, _T], kind: EventLoopKind) -> _T:
    """`asyncio.run(main)`, on the event loop `kind` names."""
    try:
        factory = _loop_factory(kind)
    except RuntimeError:
        main.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def running_loop_kind() -> EventLoopKind:
    """Which kind of loop the caller runs on, for the logs."""
    loop_type = type(asyncio.get_running_loop())
    return "uvloop" if loop_type.__module__.startswith("uvloop") else "asyncio"
