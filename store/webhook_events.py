"""Authentic provider events Steward acknowledged without acting on them.

Stripe retries a non-2xx answer for days and disables failing endpoints;
Adyen queues anything not `[accepted]` for up to 30 days. So every
signature-valid event is acknowledged, and the ones Steward does not act on
(a type it does not handle, an Adyen AUTHORISATION in a batch...) are kept
here with their type and the reason, once per provider event, for auditors.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.common import StewardModel

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


class IgnoredEventRow(StewardModel):
    provider: str
    event_key: str
    event_type: str
    object_ref: str
    reason: str
    occurred_at: datetime | None
    received_at: datetime
    last_received_at: datetime
    deliveries: int


_COLUMNS = (
    "provider, event_key, event_type, object_ref, reason, occurred_at, received_at, "
    "last_received_at, deliveries"
)


async def record_ignored(
    db: Executor,
    *,
    provider: str,
    event_key: str,
    event_type: str,
    object_ref: str,
    reason: str,
    occurred_at: datetime | None,
) -> bool:
    """True the first time this provider event is recorded; a repeat counts the delivery."""
    row = await db.fetchrow(
        """
        INSERT INTO ignored_webhook_events AS e
            (provider, event_key, event_type, object_ref, reason, occurred_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (provider, event_key) DO UPDATE
            SET deliveries = e.deliveries + 1, last_received_at = now()
        RETURNING deliveries
        """,
        provider,
        event_key,
        event_type,
        object_ref,
        reason,
        occurred_at,
    )
    return row is not None and int(row["deliveries"]) == 1


async def list_ignored(
    db: Executor,
    *,
    provider: str | None = None,
    event_type: str | None = None,
    limit: int = 100,
) -> list[IgnoredEventRow]:
    """Newest first."""
    records = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM ignored_webhook_events
        WHERE ($1::text IS NULL OR provider = $1) AND ($2::text IS NULL OR event_type = $2)
        ORDER BY received_at DESC, event_key
        LIMIT $3
        """,
        provider,
        event_type,
        limit,
    )
    return [IgnoredEventRow.model_validate(dict(r)) for r in records]
