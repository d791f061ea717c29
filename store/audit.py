"""The audit log: append-only rows, one per deterministic entry id.

Every function takes a pool or a connection made by `store.db.create_pool`
(its json codec turns the `before`/`after` dicts into jsonb and back).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.audit import AuditEntry, AuditRow

# A pool, a connection, or a connection acquired from a pool.
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_COLUMNS = (
    "entry_id, workflow_id, process, case_id, actor, role, action, reason, "
    "before, after, occurred_at, recorded_at, order_id"
)


async def insert_entry(db: Executor, entry: AuditEntry) -> bool:
    """Append `entry`; False when its entry_id is already there (a retried write)."""
    row = await db.fetchrow(
        """
        INSERT INTO audit_log (entry_id, workflow_id, process, case_id, actor, role,
                               action, reason, before, after, occurred_at, order_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (entry_id) DO NOTHING
        RETURNING id
        """,
        entry.entry_id,
        entry.workflow_id,
        entry.process,
        entry.case_id,
        entry.actor,
        entry.role.value,
        entry.action,
        entry.reason,
        entry.before,
        entry.after,
        entry.occurred_at,
        entry.order_id,
    )
    return row is not None


async def insert_entries(db: Executor, entries: list[AuditEntry]) -> None:
    """Append a step's entries in one pipelined round trip; entry ids already
    there (a retried write) are skipped, as in `insert_entry`."""
    if not entries:
        return
    await db.executemany(
        """
        INSERT INTO audit_log (entry_id, workflow_id, process, case_id, actor, role,
                               action, reason, before, after, occurred_at, order_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (entry_id) DO NOTHING
        """,
        [
            (
                e.entry_id,
                e.workflow_id,
                e.process,
                e.case_id,
                e.actor,
                e.role.value,
                e.action,
                e.reason,
                e.before,
                e.after,
                e.occurred_at,
                e.order_id,
            )
            for e in entries
        ],
    )


def _rows(records: list[asyncpg.Record]) -> list[AuditRow]:
    return [AuditRow.model_validate(dict(r)) for r in records]


async def list_by_case(
    db: Executor, case_id: str, *, process: str | None = None, limit: int = 1000
) -> list[AuditRow]:
    """A case's trail in the order things happened (id breaks ties in one instant).

    `process` narrows it when two processes share a business key (an order id
    is also the key of its return or failed delivery). Entries of processes
    keyed otherwise (a failed delivery's shipment id) match on their order_id.
    """
    records = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM audit_log
        WHERE (case_id = $1 OR order_id = $1) AND ($2::text IS NULL OR process = $2)
        ORDER BY occurred_at, id
        LIMIT $3
        """,
        case_id,
        process,
        limit,
    )
    return _rows(records)


async def list_by_workflow(db: Executor, workflow_id: str, *, limit: int = 1000) -> list[AuditRow]:
    records = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM audit_log
        WHERE workflow_id = $1
        ORDER BY occurred_at, id
        LIMIT $2
        """,
        workflow_id,
        limit,
    )
    return _rows(records)


async def list_between(
    db: Executor,
    start: datetime,
    end: datetime,
    *,
    process: str | None = None,
    limit: int = 10_000,
) -> list[AuditRow]:
    """Entries with start <= occurred_at < end, for exports and reports."""
    records = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM audit_log
        WHERE occurred_at >= $1 AND occurred_at < $2 AND ($3::text IS NULL OR process = $3)
        ORDER BY occurred_at, id
        LIMIT $4
        """,
        start,
        end,
        process,
        limit,
    )
    return _rows(records)
