"""The bench's worker process: `python -m bench.worker_proc`, started by bench/stack.py.

It is `steward worker` plus the bench-only workflows and activity, configured
from the same environment variables (TEMPORAL_ADDRESS, DATABASE_URL,
STEWARD_TASK_QUEUE, STEWARD_CODEC_KEYRING...). It runs in its own process, as
in production, so the load generator's own work (building and encrypting
orders, decoding results) never competes with the worker for the GIL and is
not charged to the workflows being measured.

Prints `ready` on stdout once it polls, followed by how it runs
(`ready event_loop=uvloop gc_threshold=50000`); stops gracefully on SIGTERM
or SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import warnings

from temporalio.client import Client

import workflows
from bench.workflows import BENCH_ACTIVITIES, BENCH_WORKFLOWS
from store.db import create_pool
from workers.activities import build_activities, create_world_pool
from workers.codec import load_or_create_keyring
from workers.converter import build_data_converter
from workers.event_loop import run_on_event_loop, running_loop_kind
from workers.logging import configure_logging
from workers.personal_keys import configure_personal_data
from workers.settings import Settings
from workers.worker import build_worker, tune_garbage_collector

READY = "ready"


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    client = await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=build_data_converter(load_or_create_keyring(settings.keyring_path)),
    )
    pool = await create_pool(settings.database_dsn)
    # As `steward worker` does: the personal-data keyring (the release keeps
    # the order's personal values there since issue 16's fulfilment start).
    configure_personal_data(settings)
    # As `steward worker` does: the simulated world on connections of its own.
    world_pool = await create_world_pool(settings)
    try:
        worker = build_worker(
            client,
            settings,
            [*workflows.ALL_WORKFLOWS, *BENCH_WORKFLOWS],
            [*build_activities(pool, settings, world_pool=world_pool), *BENCH_ACTIVITIES],
        )
        # As `steward worker` does (workers/worker.py: run_worker).
        tune_garbage_collector(settings.gc_threshold)
        async with worker:
            print(
                f"{READY} event_loop={running_loop_kind()} gc_threshold={settings.gc_threshold}",
                flush=True,
            )
            await stop.wait()
    finally:
        await world_pool.close()
        await pool.close()


def main() -> int:
    settings = Settings()
    configure_logging(settings.log_level)
    # See bench/run.py: sandbox re-import warnings are reported, not printed per run.
    warnings.filterwarnings("ignore", message=r"Module .* was imported after initial workflow load")
    # As `steward worker` does (STEWARD_EVENT_LOOP, uvloop by default).
    run_on_event_loop(serve(settings), settings.event_loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
