"""The embedded platform: PostgreSQL, migrations, the dev server, encryption on the wire."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from store.migrate import MigrationError, apply_migrations
from tests.integration.conftest import free_port
from workers.codec import ENCODING
from workers.dev_server import TemporalDevServer
from workers.embedded_postgres import EmbeddedPostgres
from workflows.visibility import DEV_SERVER_TYPES


async def _fetchval(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_postgres_restart_keeps_data(integration_dir: Path) -> None:
    server = EmbeddedPostgres(integration_dir / "pg-restart", free_port(), fast=True)
    dsn = await asyncio.to_thread(server.start)
    try:
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE kept (note text)")
        await conn.execute("INSERT INTO kept VALUES ('survives a restart')")
        await conn.close()
    finally:
        await asyncio.to_thread(server.stop)
    assert not server.is_running

    restarted = EmbeddedPostgres(integration_dir / "pg-restart", server.port, fast=True)
    dsn = await asyncio.to_thread(restarted.start)
    try:
        assert await _fetchval(dsn, "SELECT note FROM kept") == "survives a restart"
        assert await _fetchval(dsn, "SHOW server_encoding") == "UTF8"
        assert await _fetchval(dsn, "SHOW listen_addresses") == "127.0.0.1"
    finally:
        await asyncio.to_thread(restarted.stop)


async def test_session_database_has_steward_migrations(db_pool: asyncpg.Pool) -> None:
    versions = [r["version"] for r in await db_pool.fetch("SELECT version FROM schema_migrations")]
    assert versions, "the session fixture applies store/migrations"
    # Applying again is a no-op.
    assert await apply_migrations(db_pool) == []


@pytest.fixture
async def scratch_dsn(postgres_dsn: str) -> str:
    """A database of its own, so migration tests never touch the shared schema."""
    name = f"mig_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return postgres_dsn.rsplit("/", 1)[0] + f"/{name}"


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


async def test_migrations_apply_in_order_once(scratch_dsn: str, tmp_path: Path) -> None:
    migrations = _write(
        tmp_path / "m",
        {
            "0002_add_column.sql": "ALTER TABLE t ADD COLUMN b int; INSERT INTO t VALUES (1, 2);",
            "0001_create.sql": "CREATE TABLE t (a int);",
            "README.md": "not a migration",
        },
    )
    conn = await asyncpg.connect(scratch_dsn)
    try:
        assert await apply_migrations(conn, migrations) == ["0001_create", "0002_add_column"]
        assert await apply_migrations(conn, migrations) == []
        _write(migrations, {"0003_more.sql": "INSERT INTO t VALUES (3, 4);"})
        assert await apply_migrations(conn, migrations) == ["0003_more"]
        assert await conn.fetchval("SELECT count(*) FROM t") == 2
        recorded = await conn.fetch("SELECT version, applied_at FROM schema_migrations")
        assert sorted(r["version"] for r in recorded) == [
            "0001_create",
            "0002_add_column",
            "0003_more",
        ]
        assert all(r["applied_at"] is not None for r in recorded)
    finally:
        await conn.close()


async def test_failed_migration_is_rolled_back_and_retried(
    scratch_dsn: str, tmp_path: Path
) -> None:
    migrations = _write(
        tmp_path / "m",
        {
            "0001_ok.sql": "CREATE TABLE ok (a int);",
            "0002_bad.sql": "CREATE TABLE half (a int); SELECT * FROM missing_table;",
        },
    )
    conn = await asyncpg.connect(scratch_dsn)
    try:
        with pytest.raises(MigrationError, match="0002_bad"):
            await apply_migrations(conn, migrations)
        # 0001 stays applied; nothing of 0002 remains, not even its first statement.
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 1
        _write(migrations, {"0002_bad.sql": "CREATE TABLE half (a int);"})
        assert await apply_migrations(conn, migrations) == ["0002_bad"]
    finally:
        await conn.close()


async def test_concurrent_starters_apply_each_migration_once(
    scratch_dsn: str, tmp_path: Path
) -> None:
    # pg_sleep widens the window in which a second starter would race.
    migrations = _write(
        tmp_path / "m",
        {
            "0001_slow.sql": "SELECT pg_sleep(0.2); CREATE TABLE once (a int);",
            "0002_next.sql": "INSERT INTO once VALUES (1);",
        },
    )
    conns = [await asyncpg.connect(scratch_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c, migrations) for c in conns))
        assert sorted(v for applied in results for v in applied) == ["0001_slow", "0002_next"]
        assert await conns[0].fetchval("SELECT count(*) FROM once") == 1
    finally:
        for c in conns:
            await c.close()


async def test_duplicate_migration_numbers_are_refused(scratch_dsn: str, tmp_path: Path) -> None:
    migrations = _write(tmp_path / "m", {"0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 1;"})
    conn = await asyncpg.connect(scratch_dsn)
    try:
        with pytest.raises(MigrationError, match="share 0001"):
            await apply_migrations(conn, migrations)
    finally:
        await conn.close()


async def test_dev_server_has_steward_search_attributes(client: Client) -> None:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    registered = {
        name: IndexedValueType.Name(kind) for name, kind in listed.custom_attributes.items()
    }
    for name, kind in DEV_SERVER_TYPES.items():
        assert registered.get(name) == f"INDEXED_VALUE_TYPE_{_upper_snake(kind)}", name


def _upper_snake(kind: str) -> str:
    return {"KeywordList": "KEYWORD_LIST"}.get(kind, kind.upper())


async def test_restart_on_existing_db_registers_new_search_attributes(
    integration_dir: Path,
) -> None:
    # The CLI only applies --search-attribute when it creates the SQLite file;
    # TemporalDevServer adds what is missing after a restart.
    data_dir = integration_dir / "temporal-restart"
    port = free_port()
    first = TemporalDevServer(
        data_dir, port, 0, None, headless=True, search_attributes={"StewardProcess": "Keyword"}
    )
    async with first:
        pass
    async with TemporalDevServer(data_dir, port, 0, None, headless=True) as second:
        plain = await Client.connect(second.target)
        listed = await plain.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        assert set(DEV_SERVER_TYPES) <= set(listed.custom_attributes)


@workflow.defn(sandboxed=False)
class _EchoWorkflow:
    @workflow.run
    async def run(self, secret: str) -> str:
        if secret.startswith("fail:"):
            raise ApplicationError(f"cannot ship to {secret[5:]}", type="Undeliverable")
        return f"echo {secret}"


async def test_payloads_and_failures_are_encrypted_on_the_server(
    client: Client, dev_server: TemporalDevServer
) -> None:
    task_queue = f"it-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[_EchoWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        result = await client.execute_workflow(
            _EchoWorkflow.run,
            "4 Rue du Faubourg",
            id=f"it-echo-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=30),
        )
        assert result == "echo 4 Rue du Faubourg"

        failing_id = f"it-fail-{uuid.uuid4().hex[:8]}"
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(
                _EchoWorkflow.run,
                "fail:Via Roma 1",
                id=failing_id,
                task_queue=task_queue,
                execution_timeout=timedelta(seconds=30),
            )
        assert "cannot ship to Via Roma 1" in str(failed.value.cause)

    # What the server stores, read without the codec: ciphertext only.
    raw = await Client.connect(dev_server.target)
    history = await raw.get_workflow_handle(failing_id).fetch_history()
    serialized = b"".join(event.SerializeToString() for event in history.events)
    assert b"Via Roma" not in serialized
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata["encoding"] == ENCODING
