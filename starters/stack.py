"""The embedded dev stack behind `make up` / `steward up`, in one process.

PostgreSQL and the Temporal dev server run as child processes persisted under
`settings.data_dir`; the worker and the HTTP API run in this process's event
loop. `DATABASE_URL` / `TEMPORAL_ADDRESS` replace the embedded servers with
external ones. Ctrl-C (or SIGTERM) stops the API and the worker first, so
nothing is cut off mid-write, then Temporal and PostgreSQL.

It lives in starters/ because it runs the HTTP API (and seeds the API's dev
keys) beside the worker, and `steward up` is its only caller; the worker
itself comes from workers/.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import tempfile
from collections.abc import Generator
from pathlib import Path

import asyncpg
import structlog
import uvicorn
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from temporalio.client import Client

from activities.campaign import seed_demo_sale_world
from starters.auth import API_KEYS_FILE  # the file the API reads keys from
from starters.client import connect
from starters.stack_file import remove_stack_file, write_stack_file
from store.db import create_pool
from store.migrate import apply_migrations
from workers.dev_server import TemporalDevServer
from workers.embedded_postgres import EmbeddedPostgres
from workers.logging import configure_logging
from workers.personal_keys import prepare_personal_data
from workers.settings import Settings

log = structlog.get_logger(__name__)

# Who gets a dev key: (actor, role). One per role the product knows about.
DEV_ACTORS: tuple[tuple[str, str], ...] = (
    ("alice", "coordinator"),
    ("marc", "manager"),
    ("fiona", "finance"),
    ("ops", "ops"),
    ("upstream", "system"),
    ("audrey", "auditor"),
)


def seed_dev_api_keys(data_dir: Path) -> Path:
    """Create `data_dir/api-keys.txt` with one random key per dev actor, once.

    The file is `key:actor:role` per line (what the API reads); it is never
    overwritten, so keys handed to scripts keep working across restarts.
    """
    path = data_dir / API_KEYS_FILE
    if path.exists():
        return path
    lines = [
        "# Dev API keys for the embedded stack: key:actor:role, one per line.",
        "# Send one as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        *(f"stw_{secrets.token_urlsafe(24)}:{actor}:{role}" for actor, role in DEV_ACTORS),
    ]
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{API_KEYS_FILE}.", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        # link(): create-if-absent, so two starters never write different keys.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


class _EmbeddedUvicorn(uvicorn.Server):
    # uvicorn installs its own SIGINT/SIGTERM handlers and re-raises the signal
    # after shutdown; the stack owns signals and shutdown order instead.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _install_signal_handlers(stop: asyncio.Event) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("stack_already_stopping", signal=sig.name)
            return
        log.info("stack_stopping", signal=sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    return installed


def _print_banner(
    console: Console,
    settings: Settings,
    temporal: TemporalDevServer | None,
    database_dsn: str,
    keys_file: Path | None,
) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    if temporal is not None and temporal.ui_url:
        table.add_row("Temporal UI", f"{temporal.ui_url}/namespaces/{settings.temporal_namespace}")
    table.add_row(
        "Temporal", f"{settings.temporal_target}  (namespace {settings.temporal_namespace})"
    )
    table.add_row("API", settings.api_base_url)
    table.add_row("API docs", f"{settings.api_base_url}/docs")
    # Reports and live metrics (issue 19, docs/reports.md).
    table.add_row("Reports", f"{settings.api_base_url}/v1/reports  (steward reports)")
    table.add_row("Report files", str(settings.reports_dir.resolve()))
    metrics = [f"{settings.api_base_url}/metrics"]
    for port in (settings.worker_metrics_port, settings.temporal_metrics_port):
        if port:
            metrics.append(f"http://{settings.metrics_host}:{port}/metrics")
    table.add_row("Metrics", "\n".join(metrics))
    table.add_row("Database", database_dsn)
    table.add_row("Data dir", str(settings.data_dir.resolve()))
    if keys_file is not None:
        table.add_row("API keys", str(keys_file.resolve()))
    table.add_row("Task queue", settings.task_queue)
    console.print(
        Panel(table, title="Steward is up", subtitle="Ctrl-C to stop", border_style="green")
    )


async def _start_api(
    settings: Settings, client: Client, pool: asyncpg.Pool
) -> tuple[_EmbeddedUvicorn, asyncio.Task[None]]:
    # Imported late: the API pulls in FastAPI and every route module.
    from starters.api.app import create_app

    app = create_app(settings, client=client, pool=pool)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        # Keep our structlog JSON set-up; the app logs its own requests.
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = _EmbeddedUvicorn(config)

    async def serve() -> None:
        try:
            await server.serve()
        except SystemExit as exc:
            # uvicorn reports a failed start (port taken, lifespan error) by
            # logging and calling sys.exit(); a SystemExit escaping a task
            # would stop the event loop itself, skipping our orderly shutdown.
            raise RuntimeError(
                f"the API failed to start on {settings.api_base_url} (see the log above)"
            ) from exc

    task = asyncio.create_task(serve(), name="steward-api")
    while not server.started:
        if task.done():
            await task  # raises the start-up failure
            raise RuntimeError(f"the API stopped during start-up on {settings.api_base_url}")
        await asyncio.sleep(0.02)
    return server, task


async def run_stack(settings: Settings) -> None:
    """Run PostgreSQL, Temporal, migrations, the worker and the API until Ctrl-C."""
    configure_logging(settings.log_level, settings.log_format)
    # The Temporal SDK's metrics (issue 19): the runtime must be the process's
    # default before anything connects (the dev server's start checks connect).
    from workers.metrics import install_worker_runtime

    install_worker_runtime(settings)
    console = Console()
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)

    if _port_in_use(settings.api_host, settings.api_port):
        raise RuntimeError(
            f"{settings.api_host}:{settings.api_port} is already in use; "
            "set STEWARD_API_PORT or stop the other process"
        )

    stop = asyncio.Event()
    installed = _install_signal_handlers(stop)
    loop = asyncio.get_running_loop()
    try:
        async with contextlib.AsyncExitStack() as stack:
            postgres = (
                None
                if settings.database_url
                else EmbeddedPostgres(data_dir / "postgres", settings.postgres_port)
            )
            temporal = (
                None
                if settings.temporal_address
                else TemporalDevServer(
                    data_dir / "temporal",
                    settings.temporal_port,
                    settings.temporal_ui_port,
                    # The UI appends /encode and /decode to this endpoint.
                    codec_endpoint=f"{settings.api_base_url}/codec",
                    namespace=settings.temporal_namespace,
                )
            )
            # Registered before starting: stop() is a no-op on a server that
            # never started, and a failure of one start must stop the other.
            if postgres is not None:
                stack.push_async_callback(asyncio.to_thread, postgres.stop)
            if temporal is not None:
                stack.push_async_callback(temporal.stop)

            async def start_postgres() -> None:
                if postgres is not None:
                    await asyncio.to_thread(postgres.start)

            async def start_temporal() -> None:
                if temporal is not None:
                    await temporal.start()

            # Both servers start in parallel: the slow part of each is a child process.
            results = await asyncio.gather(
                start_postgres(), start_temporal(), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            if stop.is_set():
                return

            pool = await create_pool(settings.database_dsn)
            stack.push_async_callback(_close_pool, pool)
            applied = await apply_migrations(pool)
            sealed = await prepare_personal_data(settings, pool)
            log.info("migrations_checked", applied=applied, personal_data_sealed=sealed)
            # The simulated catalogue and stock an employee sale validates
            # against: the demo SKUs they do not know yet (issue 18).
            log.info("demo_sale_world_seeded", skus=await seed_demo_sale_world(pool))

            client = await connect(settings)

            keys_file: Path | None = None
            if not settings.api_keys:
                keys_file = seed_dev_api_keys(data_dir)

            # Imported here: worker imports every workflow and activity module.
            from workers.worker import run_worker

            worker_task = asyncio.create_task(
                run_worker(client, pool, settings, stop), name="steward-worker-main"
            )
            stack.push_async_callback(_finish, worker_task)
            # Unwinding (also on an error below) first tells the worker to stop.
            stack.callback(stop.set)

            server, api_task = await _start_api(settings, client, pool)

            async def stop_api() -> None:
                server.should_exit = True
                await _finish(api_task)

            stack.push_async_callback(stop_api)

            _print_banner(console, settings, temporal, settings.database_dsn, keys_file)
            # For `steward` commands in another terminal (starters/stack_file.py).
            write_stack_file(
                settings,
                api_keys_file=keys_file,
                temporal_ui_url=temporal.ui_url if temporal is not None else None,
            )
            stack.callback(remove_stack_file, data_dir)
            if keys_file is not None:
                console.print(f"Dev API keys (key:actor:role) are in [bold]{keys_file}[/bold]")

            stop_task = loop.create_task(stop.wait())
            done, _ = await asyncio.wait(
                {stop_task, worker_task, api_task}, return_when=asyncio.FIRST_COMPLETED
            )
            stop_task.cancel()
            stop.set()
            for task in (worker_task, api_task):
                if task not in done:
                    continue
                error = task.exception()
                log.error("stack_component_exited", component=task.get_name(), failed=bool(error))
                if error is not None:
                    raise error
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    console.print("Steward stopped.")


async def _close_pool(pool: asyncpg.Pool) -> None:
    try:
        await asyncio.wait_for(pool.close(), timeout=10)
    except TimeoutError:
        # Something still holds a connection; do not hang the shutdown on it.
        pool.terminate()


async def _finish(task: asyncio.Task[None]) -> None:
    """Wait for a component that was told to stop; cancel it if it does not within 30 s."""
    if task.done():
        return
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=30)
    except TimeoutError:
        log.warning("stack_component_cancelled", component=task.get_name())
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    except Exception:
        log.exception("stack_component_failed_on_stop", component=task.get_name())
