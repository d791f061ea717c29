"""Real servers for integration tests: embedded PostgreSQL and the Temporal dev server.

Both start once per test session in throw-away directories on free loopback
ports, so the suite never touches a developer's `.steward` data or ports.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import FrameType

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client

from store.db import create_pool
from store.migrate import apply_migrations
from workers.codec import load_or_create_keyring
from workers.converter import build_data_converter
from workers.dev_server import TemporalDevServer
from workers.embedded_postgres import EmbeddedPostgres
from workers.settings import Settings

_INTEGRATION_DIR = Path(__file__).parent


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # `pytest -m "not integration"` then runs the fast suites only.
    for item in items:
        if _INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _sigterm_stops_servers() -> Iterator[None]:
    """Turn SIGTERM (CI cancel, `timeout`) into KeyboardInterrupt.

    Python's default SIGTERM action kills the process without running atexit
    hooks, which would leave PostgreSQL and the dev server running as orphans
    (they live in their own sessions). An interrupt ends the run normally, and
    the servers' atexit hooks stop them.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def integration_dir() -> Iterator[Path]:
    # Not tmp_path_factory: PostgreSQL runs as another user and must traverse
    # to its data dir, and pytest's base temp dir is private (0700).
    path = Path(tempfile.mkdtemp(prefix="steward-it-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(integration_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(integration_dir / "postgres", free_port(), fast=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_dsn(postgres_server: EmbeddedPostgres) -> str:
    """DSN of the session's database, with Steward's migrations applied."""
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return postgres_server.dsn


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db_pool(postgres_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(postgres_dsn, min_size=1, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_server(integration_dir: Path) -> AsyncIterator[TemporalDevServer]:
    server = TemporalDevServer(
        integration_dir / "temporal",
        free_port(),
        ui_port=0,
        codec_endpoint=None,
        headless=True,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
def keyring_path(integration_dir: Path) -> Path:
    path = integration_dir / "codec-keyring.json"
    load_or_create_keyring(path)
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(dev_server: TemporalDevServer, keyring_path: Path) -> AsyncIterator[Client]:
    """A client with Steward's converter (pydantic + AES-GCM codec + encoded failures)."""
    yield await Client.connect(
        dev_server.target,
        namespace=dev_server.namespace,
        data_converter=build_data_converter(load_or_create_keyring(keyring_path)),
    )
    # Let the SDK's Rust runtime finish callbacks before the interpreter
    # finalises (temporalio/sdk-python#300).
    await asyncio.sleep(0.1)


@pytest.fixture(scope="session")
def integration_settings(
    integration_dir: Path, dev_server: TemporalDevServer, postgres_dsn: str, keyring_path: Path
) -> Settings:
    """Settings pointing at the session's servers, as an app or worker under test sees them."""
    return Settings(
        _env_file=None,
        TEMPORAL_ADDRESS=dev_server.target,
        DATABASE_URL=postgres_dsn,
        STEWARD_DATA_DIR=integration_dir / "data",
        STEWARD_CODEC_KEYRING=keyring_path,
        STEWARD_TASK_QUEUE="steward-it",
    )


@pytest_asyncio.fixture(loop_scope="session")
async def clean_db(db_pool: asyncpg.Pool) -> asyncpg.Pool:
    """Empty every application table (not schema_migrations) before the test."""
    tables = await db_pool.fetch(
        """
        SELECT quote_ident(tablename) AS name
        FROM pg_tables
        WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
        """
    )
    if tables:
        names = ", ".join(row["name"] for row in tables)
        await db_pool.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    return db_pool
