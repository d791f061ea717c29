"""Forward-only SQL migrations: store/migrations/NNNN_name.sql, applied in order.

Each file runs in its own transaction together with its row in
`schema_migrations`, so a failed migration leaves nothing half-applied and is
retried on the next start. A session-level advisory lock serialises
concurrent starters (worker, API, tests started together): the second one
waits, then finds everything applied.

Applied files must never be edited: add a new file instead. The version
recorded is the file name without `.sql` (e.g. `0001_init`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

log = structlog.get_logger(__name__)

# Arbitrary but fixed 64-bit key: "steward migrations". Only needs to differ
# from any other advisory lock the application takes.
MIGRATION_LOCK_KEY = 0x5354_4557_4D49_4752  # b"STEWMIGR"

_FILE_PATTERN = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The migrations directory is inconsistent or a migration failed."""


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def default_migrations_dir() -> Traversable:
    # Through importlib.resources so it also works from an installed wheel.
    return resources.files("store") / "migrations"


def discover_migrations(directory: Path | Traversable | None = None) -> list[Migration]:
    """The migration files in `directory` (default: store/migrations), in order."""
    root = directory if directory is not None else default_migrations_dir()
    if not root.is_dir():
        return []
    found: dict[str, Migration] = {}
    by_number: dict[str, str] = {}
    for entry in root.iterdir():
        if not entry.is_file() or not entry.name.endswith(".sql"):
            continue
        match = _FILE_PATTERN.match(entry.name)
        if match is None:
            raise MigrationError(
                f"migration file {entry.name!r} must be named NNNN_name.sql (e.g. 0002_tasks.sql)"
            )
        number = match.group(1)
        version = entry.name.removesuffix(".sql")
        if number in by_number:
            # Two files with the same number would apply in an order that
            # depends on their names; make the author pick a new number.
            raise MigrationError(f"migrations {by_number[number]!r} and {version!r} share {number}")
        by_number[number] = version
        found[version] = Migration(version=version, sql=entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def _apply(
    conn: asyncpg.Connection | PoolConnectionProxy, migrations: list[Migration]
) -> list[str]:
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version FROM schema_migrations")
        applied_before = {row["version"] for row in rows}
        applied_now: list[str] = []
        for migration in migrations:
            if migration.version in applied_before:
                continue
            try:
                async with conn.transaction():
                    # No arguments: asyncpg uses the simple query protocol, so
                    # a file may hold many statements.
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES ($1)", migration.version
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {migration.version} failed: {exc}") from exc
            log.info("migration_applied", version=migration.version)
            applied_now.append(migration.version)
        return applied_now
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def apply_migrations(
    pool_or_conn: asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy,
    migrations_dir: Path | Traversable | None = None,
) -> list[str]:
    """Apply pending migrations; returns the versions applied by this call (often none)."""
    migrations = discover_migrations(migrations_dir)
    if isinstance(pool_or_conn, asyncpg.Pool):
        async with pool_or_conn.acquire() as conn:
            return await _apply(conn, migrations)
    return await _apply(pool_or_conn, migrations)
