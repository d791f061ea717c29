"""`steward worker` as production runs it: its own process, on uvloop, serving
an order review from start to release, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.service import RPCError

from clients.order_review import start_review
from domain.carrier_sweep import CARRIER_SWEEP_SCHEDULE_ID
from domain.review import ReviewStatus
from tests.factories import make_order
from workers.settings import Settings

STARTUP_TIMEOUT_S = 60.0
STEWARD = Path(sys.executable).with_name("steward")


async def _next_log_event(stream: asyncio.StreamReader, event: str) -> dict[str, Any]:
    """The first JSON log line with `event`; the lines before it are skipped."""
    while line := await stream.readline():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("event") == event:
                return entry
    raise AssertionError(f"the worker exited before logging {event!r}")


async def test_worker_command_runs_a_review_on_uvloop_and_stops_on_sigterm(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> None:
    task_queue = f"test-{uuid.uuid4()}"
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": integration_settings.temporal_target,
        "DATABASE_URL": integration_settings.database_dsn,
        "STEWARD_DATA_DIR": str(integration_settings.data_dir),
        "STEWARD_CODEC_KEYRING": str(integration_settings.keyring_path),
        "STEWARD_TASK_QUEUE": task_queue,
        "STEWARD_LOG_LEVEL": "INFO",
    }
    environment.pop("STEWARD_EVENT_LOOP", None)  # the default is what is under test
    worker = await asyncio.create_subprocess_exec(
        str(STEWARD),
        "worker",
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stderr is not None
        started = await asyncio.wait_for(
            _next_log_event(worker.stderr, "worker_started"), STARTUP_TIMEOUT_S
        )
        assert started["event_loop"] == "uvloop"
        assert started["task_queue"] == task_queue

        unique = uuid.uuid4().hex[:12]
        # Its own customer, card and device: other tests' orders add no velocity.
        order = make_order(
            f"UV-{unique}",
            customer={"customer_id": f"C-{unique}"},
            payment={"card_fingerprint": f"fp-{unique}"},
            device={"device_id": f"dev-{unique}"},
        )
        review = await start_review(client, order, task_queue)
        result = await asyncio.wait_for(
            client.get_workflow_handle(review.workflow_id).result(), STARTUP_TIMEOUT_S
        )
        assert result["status"] == ReviewStatus.RELEASED.value

        # The activities' store writes went through asyncpg on that loop.
        captured = await db_pool.fetchval(
            "SELECT count(*) FROM payment_ledger WHERE order_id = $1 AND kind = 'capture'",
            order.order_id,
        )
        assert captured == 1

        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), STARTUP_TIMEOUT_S) == 0
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        # The worker made the carrier sweep schedule point at this test's queue.
        with contextlib.suppress(RPCError):
            await client.get_schedule_handle(CARRIER_SWEEP_SCHEDULE_ID).delete()
