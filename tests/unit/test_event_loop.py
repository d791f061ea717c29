"""The event loop long-running processes run on (workers/event_loop.py)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from pydantic import ValidationError

from workers.event_loop import run_on_event_loop, running_loop_kind
from workers.settings import Settings


async def _loop_seen_from_inside() -> tuple[type[asyncio.AbstractEventLoop], str]:
    # A real round trip through the loop's scheduler, not only its type.
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()), running_loop_kind()


def test_uvloop_runs_the_coroutine_on_a_uvloop_loop() -> None:
    loop_type, kind = run_on_event_loop(_loop_seen_from_inside(), "uvloop")
    assert issubclass(loop_type, uvloop.Loop)
    assert kind == "uvloop"


def test_asyncio_keeps_the_standard_library_loop() -> None:
    loop_type, kind = run_on_event_loop(_loop_seen_from_inside(), "asyncio")
    assert not issubclass(loop_type, uvloop.Loop)
    assert kind == "asyncio"


def test_the_coroutine_s_error_reaches_the_caller() -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise LookupError("order FR-1 not found")

    with pytest.raises(LookupError, match="FR-1"):
        run_on_event_loop(fails(), "uvloop")


def test_uvloop_is_the_default_and_asyncio_can_be_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).event_loop == "uvloop"
    monkeypatch.setenv("STEWARD_EVENT_LOOP", "asyncio")
    assert Settings(_env_file=None).event_loop == "asyncio"


def test_an_unknown_event_loop_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError, match="STEWARD_EVENT_LOOP") as refused:
        Settings(_env_file=None)
    assert "'uvloop' or 'asyncio'" in str(refused.value)
