"""A person closes a task no process will close (domain/task_resolution.py):
the close and its audit row in one transaction, once.

The first close wins (as for every task close, store/tasks.py): a resolution
that finds the task closed meanwhile writes nothing and says so.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from domain.audit import AuditEntry
from domain.common import Role
from domain.task_resolution import (
    TASK_RESOLVED,
    TaskResolutionOutcome,
    audit_after,
    audit_before,
)
from domain.tasks import TaskRow
from store import audit
from store import tasks as task_store


async def _order_of(conn: task_store.Executor, task: TaskRow) -> str | None:
    # So `steward audit ORDER_ID` finds the resolution of a case keyed otherwise
    # (a failed delivery's shipment id): the order its other entries name.
    order_id: str | None = await conn.fetchval(
        "SELECT order_id FROM audit_log WHERE workflow_id = $1 AND order_id IS NOT NULL LIMIT 1",
        task.workflow_id,
    )
    return order_id


async def resolve(
    pool: asyncpg.Pool,
    task: TaskRow,
    *,
    outcome: TaskResolutionOutcome,
    reason: str,
    actor: str,
    role: Role,
    at: datetime,
) -> TaskRow | None:
    """Close the open `task` as resolved by `actor` and audit it; the closed
    row, or None when it was closed meanwhile (nothing written)."""
    async with pool.acquire() as conn, conn.transaction():
        closed = await conn.fetchval(
            """
            UPDATE human_tasks SET closed_at = $2, closed_by = $3, outcome = $4
            WHERE task_id = $1 AND closed_at IS NULL
            RETURNING task_id
            """,
            task.task_id,
            at,
            actor,
            outcome.value,
        )
        if closed is None:
            return None
        await audit.insert_entry(
            conn,
            AuditEntry(
                # One resolution per task: a retried request cannot write two.
                entry_id=f"{task.task_id}/{TASK_RESOLVED}",
                workflow_id=task.workflow_id,
                process=task.process,
                case_id=task.case_id,
                actor=actor,
                role=role,
                action=TASK_RESOLVED,
                reason=f"{outcome.value}: {reason}",
                before=audit_before(task),
                after=audit_after(task.task_id, outcome, actor, at),
                occurred_at=at,
                order_id=await _order_of(conn, task),
            ),
        )
        row = await task_store.get(conn, task.task_id)
    assert row is not None
    return row
