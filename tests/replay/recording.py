"""What every recorder of a new history does around its scenario: a fresh
time-skipping server (its clock only moves forward), Steward's search
attributes, a worker on the harness's fake world, and the history written
as `<name>.json`; and how a recorder script runs (`run_recorder`)."""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.conftest import _test_server_binary
from tests.workflows.harness import FakeWorld, Harness
from workers.dev_server import ensure_search_attributes

Scenario = Callable[[Harness], Awaitable[WorkflowHandle[Any, Any]]]


async def record_history(
    name: str, workflows: Sequence[type], world: FakeWorld, scenario: Scenario, out: Path
) -> None:
    """Run `scenario` (it returns the handle of the finished run) and write its history."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_test_server_binary(),
    )
    await ensure_search_attributes(env.client, env.client.namespace)
    try:
        harness = Harness(env, world, await env.get_current_time())
        async with Worker(
            env.client,
            task_queue=harness.task_queue,
            workflows=list(workflows),
            activities=world.activities(),
        ):
            handle = await scenario(harness)
            history = await handle.fetch_history()
        (out / f"{name}.json").write_text(history.to_json())
        print(f"recorded {name}: {len(history.events)} events")
    finally:
        await env.shutdown()


def run_recorder(main: Coroutine[Any, Any, object]) -> None:
    """Run a recorder script's coroutine and exit with its status (0, or 1
    with the traceback), without the interpreter's teardown: the Temporal
    runtime's threads may still reach for the GIL while Python finalizes and
    abort the process after everything was written ("PyGILState_Release:
    thread state ... must be current", temporalio/sdk-python#300), which
    turned a good recording into exit status 134."""
    status = 0
    try:
        asyncio.run(main)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
            status = 1
        else:
            status = stop.code or 0
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
