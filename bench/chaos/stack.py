"""The real stack of a chaos run, as separate processes it can kill and restart.

The embedded PostgreSQL (workers/embedded_postgres.py) and the Temporal dev
server (workers/dev_server.py, persisted to a SQLite file, so a restart keeps
every workflow), two `steward worker` processes and the API (`steward api`),
all on free loopback ports with their data in one temp dir, configured
through the environment as a deployment would be. What `steward up`
(starters/stack.py) runs in one process, split so each part can die alone.

Every process is stopped at the end, also on a failure, Ctrl-C or the time
limit; the workers and the API also die with this process (PR_SET_PDEATHSIG),
so even a `kill -9` of the chaos run leaves only the two servers, which the
next start on the same dir would reclaim.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from temporalio.client import Client

from activities.simulated import FaultControl
from domain.common import Role
from store.db import create_pool
from store.migrate import apply_migrations
from workers.codec import load_or_create_keyring
from workers.converter import build_data_converter
from workers.dev_server import TemporalDevServer
from workers.embedded_postgres import EmbeddedPostgres

TASK_QUEUE = "steward-chaos"
WORKER_NAMES = ("worker-1", "worker-2")
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
# Who the API keys belong to: an upstream system, a coordinator, a manager,
# finance, ops and an auditor.
ACTORS: dict[Role, str] = {
    Role.SYSTEM: "upstream",
    Role.COORDINATOR: "alice",
    Role.MANAGER: "marc",
    Role.FINANCE: "fiona",
    Role.OPS: "olivia",
    Role.AUDITOR: "audrey",
}
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the chaos run dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Secrets:
    api_keys: dict[Role, str] = field(
        default_factory=lambda: {role: f"chaos_{secrets.token_urlsafe(12)}" for role in ACTORS}
    )
    webhook: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    stripe: str = field(default_factory=lambda: f"whsec_{secrets.token_urlsafe(16)}")
    adyen_hex: str = field(default_factory=lambda: secrets.token_hex(32))
    easypost: str = field(default_factory=lambda: secrets.token_urlsafe(16))


@dataclass
class ChildProcess:
    name: str
    command: list[str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    # Set while we kill or stop it on purpose: its exit is no surprise.
    expected_exit: bool = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None


class ChaosStack:
    """`async with ChaosStack(root) as stack:` the whole stack, up."""

    def __init__(self, root: Path | None = None, *, log_level: str = "INFO") -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="steward-chaos-"))
        # PostgreSQL runs as another user and must traverse to its data dir.
        self.root.chmod(0o711)
        self.secrets = Secrets()
        # Durable, as in production: with fsync or synchronous_commit off, a
        # crash of the server loses transactions it had already confirmed
        # (found by this run: case rows written before the crash went missing).
        self.postgres = EmbeddedPostgres(self.root / "postgres", free_port(), fast=False)
        self.temporal = TemporalDevServer(
            self.root / "temporal", free_port(), 0, None, headless=True
        )
        self.api_port = free_port()
        self.control_file = self.root / "sim" / "faults.json"
        self.in_flight_dir = self.root / "sim" / FaultControl.IN_FLIGHT_DIR
        self.logs = self.root / "logs"
        self.keyring_path = self.root / "codec-keyring.json"
        keys = ",".join(
            f"{key}:{ACTORS[role]}:{role.value}" for role, key in self.secrets.api_keys.items()
        )
        # What each process reads, as `steward worker` and `steward api` would in production.
        self.environment = {
            "TEMPORAL_ADDRESS": self.temporal.target,
            "TEMPORAL_NAMESPACE": "default",
            "DATABASE_URL": self.postgres.dsn,
            "STEWARD_TASK_QUEUE": TASK_QUEUE,
            "STEWARD_DATA_DIR": str(self.root),
            "STEWARD_CODEC_KEYRING": str(self.keyring_path),
            "STEWARD_API_KEYS": keys,
            "STEWARD_API_PORT": str(self.api_port),
            "STEWARD_WEBHOOK_SECRET": self.secrets.webhook,
            "STEWARD_STRIPE_WEBHOOK_SECRET": self.secrets.stripe,
            "STEWARD_ADYEN_HMAC_KEY": self.secrets.adyen_hex,
            "STEWARD_EASYPOST_WEBHOOK_SECRET": self.secrets.easypost,
            "STEWARD_SIM_CONTROL_FILE": str(self.control_file),
            "STEWARD_LOG_LEVEL": log_level,
        }
        cli = [sys.executable, "-m", "starters.cli"]
        self.workers = {
            name: ChildProcess(name, [*cli, "worker"], self.logs / f"{name}.log")
            for name in WORKER_NAMES
        }
        self.api = ChildProcess("api", [*cli, "api"], self.logs / "api.log")
        self.pool: asyncpg.Pool | None = None
        self.client: Client | None = None
        self._exit = contextlib.AsyncExitStack()
        self.startup_s = 0.0
        self.restarts: dict[str, int] = {}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def children(self) -> list[ChildProcess]:
        return [*self.workers.values(), self.api]

    async def __aenter__(self) -> ChaosStack:
        started = time.monotonic()
        try:
            await self._start()
        except BaseException:
            await self.aclose()
            raise
        self.startup_s = time.monotonic() - started
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._exit.aclose()

    def remove_dir(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- start and stop -------------------------------------------------------

    async def _start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.control_file.parent.mkdir(parents=True, exist_ok=True)
        exit_stack = self._exit
        exit_stack.push_async_callback(asyncio.to_thread, self.postgres.stop)
        exit_stack.push_async_callback(self.temporal.stop)
        postgres_start = asyncio.create_task(asyncio.to_thread(self.postgres.start))
        try:
            await self.temporal.start()
        finally:
            await postgres_start
        self.pool = await create_pool(self.postgres.dsn, min_size=1, max_size=4)
        exit_stack.push_async_callback(self._close_pool)
        await apply_migrations(self.pool)
        # Created once here: two workers starting together must not race for it.
        keyring = load_or_create_keyring(self.keyring_path)
        self.client = await Client.connect(
            self.temporal.target, namespace="default", data_converter=build_data_converter(keyring)
        )
        exit_stack.push_async_callback(self._stop_children)
        await asyncio.gather(*(self.start_child(c) for c in self.children))

    async def _close_pool(self) -> None:
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), 10)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                self.pool.terminate()

    async def start_child(self, child: ChildProcess) -> None:
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        with child.log_path.open("ab") as log:
            log.write(f"--- start {child.starts + 1} at {time.time():.3f}\n".encode())
            log.flush()
            child.process = await asyncio.create_subprocess_exec(
                *child.command,
                cwd=self.root,  # no developer's .env is read
                env={**os.environ, **self.environment},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,
            )
        child.starts += 1
        child.expected_exit = False
        if child is self.api:
            await self._wait_api(child)
        else:
            await self._wait_worker(child)

    async def _wait_worker(self, child: ChildProcess) -> None:
        """Until the worker logs that it polls (`worker_started`)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        marker = f"--- start {child.starts} at"
        while time.monotonic() < deadline:
            if not child.alive:
                raise RuntimeError(f"{child.name} exited during start-up; see {child.log_path}")
            text = child.log_path.read_text(errors="replace")
            if '"worker_started"' in text[text.rfind(marker) :]:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{child.name} did not start in {START_TIMEOUT_S:.0f}s")

    async def _wait_api(self, child: ChildProcess) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5) as http:
            while time.monotonic() < deadline:
                if not child.alive:
                    raise RuntimeError(f"the API exited during start-up; see {child.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"the API did not answer /healthz in {START_TIMEOUT_S:.0f}s")

    async def stop_child(self, child: ChildProcess) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        child.expected_exit = True
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def _stop_children(self) -> None:
        await asyncio.gather(*(self.stop_child(c) for c in self.children))

    def kill_everything_now(self) -> None:
        """Last resort (the hard time limit): no waiting, no cleanup."""
        for child in self.children:
            if child.alive and child.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
        self.temporal.stop_sync(timeout=2)
        self.postgres.stop(timeout=2)

    # -- faults ---------------------------------------------------------------

    def worker_by_pid(self, pid: int) -> ChildProcess | None:
        return next((w for w in self.workers.values() if w.alive and w.pid == pid), None)

    async def kill_worker(self, worker: ChildProcess) -> None:
        """`kill -9`: no shutdown, no goodbye to the server."""
        assert worker.process is not None
        worker.expected_exit = True
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGKILL)
        await worker.process.wait()

    async def restart_temporal(self, down_s: float) -> None:
        """A graceful stop of the dev server, `down_s` without it, a start on
        the same SQLite file and port."""
        await self.temporal.stop()
        await asyncio.sleep(down_s)
        await self._start_again(self.temporal.start, "temporal")

    async def restart_postgres(self, down_s: float) -> None:
        """A crash (immediate shutdown, SIGQUIT: no checkpoint, every
        connection cut; recovery on the next start), `down_s` without it, a
        start on the same data dir and port."""
        pid_file = self.postgres.pgdata / "postmaster.pid"
        postmaster = int(pid_file.read_text().splitlines()[0])
        os.kill(postmaster, signal.SIGQUIT)
        deadline = time.monotonic() + 30
        while self.postgres.is_running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(self.postgres.stop)
        await asyncio.sleep(down_s)

        async def start() -> None:
            await asyncio.to_thread(self.postgres.start)

        await self._start_again(start, "postgres")

    async def _start_again(self, start: object, name: str) -> None:
        # The port may stay busy for a moment after the old process is gone.
        assert callable(start)
        for attempt in range(20):
            try:
                await start()
                break
            except Exception:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.5)
        self.restarts[name] = self.restarts.get(name, 0) + 1
