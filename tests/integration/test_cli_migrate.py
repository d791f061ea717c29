"""`steward migrate`: the production one-shot that prepares the store."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from typer.testing import CliRunner

from starters.cli import app
from workers.settings import get_settings


async def test_migrate_applies_once_then_reports_up_to_date(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = postgres_dsn.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("DATABASE_URL", dsn)
    get_settings.cache_clear()

    # The command runs its own event loop: keep it off this test's loop.
    first = await asyncio.to_thread(CliRunner().invoke, app, ["migrate"])
    assert first.exit_code == 0, first.output
    assert "applied 0001_init" in first.output
    second = await asyncio.to_thread(CliRunner().invoke, app, ["migrate"])
    assert second.exit_code == 0, second.output
    assert "nothing applied" in second.output

    conn = await asyncpg.connect(dsn)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE tablename = 'audit_log'")
    finally:
        await conn.close()
    assert "0001_init" in versions and len(versions) >= 4
    assert tables == 1
