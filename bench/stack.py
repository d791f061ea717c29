"""A throw-away embedded stack for one bench run.

Temporal dev server (headless) and PostgreSQL (fast, no fsync) on free
loopback ports in a temp dir, migrations applied, and one worker process
(bench/worker_proc.py) running every Steward workflow and activity plus the
bench-only ones on its own task queue. Everything is stopped and the temp dir
removed on exit, also on Ctrl-C, SIGTERM or a failure half-way through
start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncpg
from temporalio.client import Client

from bench.cpu import CpuMeter, pid_from_file
from bench.worker_proc import READY
from store.db import create_pool
from store.migrate import apply_migrations
from workers.codec import load_or_create_keyring
from workers.converter import build_data_converter
from workers.decision_signing import DecisionSigner
from workers.dev_server import TemporalDevServer
from workers.embedded_postgres import EmbeddedPostgres
from workers.personal_keys import configure_personal_data
from workers.settings import Settings

TASK_QUEUE = "steward-bench"
REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_START_TIMEOUT_S = 60.0
WORKER_STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BenchStack:
    """`async with BenchStack() as stack:` gives `stack.client` and a polling worker process."""

    def __init__(self, *, keep_dir: bool = False) -> None:
        self.keep_dir = keep_dir
        self.root = Path(tempfile.mkdtemp(prefix="steward-bench-"))
        self.postgres = EmbeddedPostgres(self.root / "postgres", free_port(), fast=True)
        self.temporal = TemporalDevServer(
            self.root / "temporal", free_port(), free_port(), None, headless=True
        )
        # The worker process reads these like `steward worker` does.
        self.environment = {
            "TEMPORAL_ADDRESS": self.temporal.target,
            "TEMPORAL_NAMESPACE": "default",
            "DATABASE_URL": self.postgres.dsn,
            "STEWARD_TASK_QUEUE": TASK_QUEUE,
            "STEWARD_DATA_DIR": str(self.root),
            "STEWARD_CODEC_KEYRING": str(self.root / "codec-keyring.json"),
            # The simulated outside world answers at once and never fails:
            # the bench measures Steward and Temporal, not a fake provider.
            "STEWARD_SIM_LATENCY_MS": "0",
            "STEWARD_SIM_FAILURE_RATE": "0",
            "STEWARD_LOG_LEVEL": "ERROR",
        }
        self.settings = Settings.model_validate(self.environment)
        self.startup_s = 0.0
        self._stack = contextlib.AsyncExitStack()
        self._client: Client | None = None
        self._pool: asyncpg.Pool | None = None
        self._worker: asyncio.subprocess.Process | None = None
        self.worker_setup: dict[str, str] = {}

    @property
    def client(self) -> Client:
        assert self._client is not None, "stack not started"
        return self._client

    @property
    def pool(self) -> asyncpg.Pool:
        """The edge's database pool (the API's): an order's personal values go
        to the personal-data store before its review starts (issue 21)."""
        assert self._pool is not None, "stack not started"
        return self._pool

    @property
    def worker_pid(self) -> int | None:
        return self._worker.pid if self._worker else None

    def cpu_meter(self) -> CpuMeter:
        processes = {"load generator": os.getpid()}
        if self._worker is not None:
            processes["worker"] = self._worker.pid
        trees = {}
        # The servers' own pid files: the dev server runs as one process,
        # PostgreSQL as a postmaster with one backend per connection.
        temporal_pid = pid_from_file(self.temporal.data_dir / "server.pid")
        if temporal_pid is not None:
            trees["temporal server"] = temporal_pid
        postgres_pid = pid_from_file(self.postgres.pgdata / "postmaster.pid")
        if postgres_pid is not None:
            trees["postgres"] = postgres_pid
        return CpuMeter(processes=processes, trees=trees)

    @property
    def task_queue(self) -> str:
        return self.settings.task_queue

    async def __aenter__(self) -> Self:
        started = time.monotonic()
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            self._remove_dir()
            raise
        self.startup_s = time.monotonic() - started
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._stack.aclose()
        finally:
            self._remove_dir()

    async def _start(self) -> None:
        stack = self._stack
        # PostgreSQL's start blocks (initdb, pg_ctl); the dev server starts meanwhile.
        postgres_start = asyncio.create_task(asyncio.to_thread(self.postgres.start))
        stack.push_async_callback(asyncio.to_thread, self.postgres.stop)
        stack.push_async_callback(self.temporal.stop)
        try:
            await self.temporal.start()
        finally:
            dsn = await postgres_start

        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            await apply_migrations(pool)
        finally:
            await pool.close()
        # The edge keeps each order's personal values, as the API does, with
        # the keyring file the worker then reads (created here, before it).
        configure_personal_data(self.settings)
        self._pool = await create_pool(dsn, min_size=1, max_size=10)
        stack.push_async_callback(self._pool.close)

        keyring = load_or_create_keyring(self.settings.keyring_path)
        # The bench's reviewers decide as the API would: the worker refuses
        # unsigned decisions (workers/decision_signing.py).
        decision_keys = load_or_create_keyring(self.settings.decision_keyring_file)
        self._client = await Client.connect(
            self.temporal.target,
            namespace=self.settings.temporal_namespace,
            data_converter=build_data_converter(keyring),
            interceptors=[DecisionSigner(decision_keys)],
        )
        await self._start_worker()
        stack.push_async_callback(self._stop_worker)

    async def _start_worker(self) -> None:
        self._worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.worker_proc",
            cwd=REPO_ROOT,
            env={**os.environ, **self.environment},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._worker.stdout is not None
        try:
            line = await asyncio.wait_for(self._worker.stdout.readline(), WORKER_START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        words = line.decode().split()
        if not words or words[0] != READY:
            await self._stop_worker()
            raise RuntimeError(
                f"the bench worker did not start within {WORKER_START_TIMEOUT_S:.0f}s "
                "(its errors are above)"
            )
        # "event_loop=uvloop gc_threshold=50000": what the figures were measured with.
        self.worker_setup = dict(word.split("=", 1) for word in words[1:] if "=" in word)

    async def _stop_worker(self) -> None:
        process, self._worker = self._worker, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), WORKER_STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()

    def _remove_dir(self) -> None:
        if not self.keep_dir:
            shutil.rmtree(self.root, ignore_errors=True)
