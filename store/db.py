"""asyncpg connection pool for the Steward store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import uuid
from typing import Any

import asyncpg
from pydantic import BaseModel


def _json_default(value: Any) -> Any:
    # Queries pass plain dicts built from domain objects; accept the usual
    # non-JSON types instead of failing deep inside asyncpg.
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        # Money is integer minor units; a Decimal here is a rate or a score.
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Without these, asyncpg hands json/jsonb over as raw strings.
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, schema="pg_catalog", encoder=dumps, decoder=json.loads, format="text"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default session reset (a round trip per
    release: RESET ALL, UNLISTEN, unlock advisory locks...). Steward keeps no
    session state: transactions are rolled back by asyncpg before this runs,
    locks are transaction-scoped except the migration lock, which
    apply_migrations releases itself."""


# The store's pool in every long-running process (worker, API, `steward up`).
# Enough because no code holds one of its connections longer than the
# statements of one short transaction: never across a call to an outside
# system, a sleep, or a wait for a second connection (the pool sizing rule,
# docs/operations.md#database-connections).
STORE_POOL_SIZE = 10


async def create_pool(dsn: str, min_size: int = 1, max_size: int = STORE_POOL_SIZE) -> asyncpg.Pool:
    """A pool whose connections encode/decode json and jsonb as Python objects."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        # Shows who holds a connection in pg_stat_activity.
        server_settings={"application_name": "steward"},
    )
