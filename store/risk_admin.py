"""The risk team's audited changes (issue 15): the lock that serialises
changes to one entry and the audit lookup that makes an Idempotency-Key
replay the first answer. The writes themselves are store/signals.py's;
clients/risk_admin.py runs both in one transaction."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.audit import AuditRow

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


async def lock_entry(conn: Executor, key: str) -> None:
    """Serialise changes to one entry until the transaction ends: the audit's
    before and after are then exactly what each change saw and left."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 15))", key)


async def audit_entry(db: Executor, entry_id: str) -> AuditRow | None:
    row = await db.fetchrow(
        """
        SELECT entry_id, workflow_id, process, case_id, actor, role, action, reason,
               before, after, occurred_at, recorded_at, order_id
        FROM audit_log WHERE entry_id = $1
        """,
        entry_id,
    )
    return AuditRow.model_validate(dict(row)) if row is not None else None
