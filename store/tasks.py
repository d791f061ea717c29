"""Human tasks: the coordinator work queue.

Writes are idempotent so the local activities that call them can retry:
opening an existing task, updating or closing a closed one change nothing.
"""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.tasks import CloseTaskInput, OpenTaskInput, TaskRow, UpdateTaskInput

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_COLUMNS = (
    "task_id, process, case_id, workflow_id, kind, title, awaited_role, assignee, due_at, "
    "priority, escalated, reminders_sent, opened_at, closed_at, closed_by, outcome"
)


# Named open/update/close/get so callers read `tasks.open(pool, ...)`.
async def open(db: Executor, task: OpenTaskInput) -> bool:
    """Open `task`; False when it already exists (retried, or reopened by mistake)."""
    row = await db.fetchrow(
        """
        INSERT INTO human_tasks (task_id, process, case_id, workflow_id, kind, title,
                                 awaited_role, assignee, due_at, priority, opened_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11, now()))
        ON CONFLICT (task_id) DO NOTHING
        RETURNING task_id
        """,
        task.task_id,
        task.process,
        task.case_id,
        task.workflow_id,
        task.kind,
        task.title,
        task.awaited_role.value,
        task.assignee,
        task.due_at,
        task.priority,
        task.opened_at,
    )
    return row is not None


async def update(db: Executor, change: UpdateTaskInput) -> bool:
    """Apply the fields set in `change` to an open task; False if closed or unknown.

    `reminders_sent` only grows, so a late retry of an older update cannot
    undo a newer one.
    """
    status = await db.execute(
        """
        UPDATE human_tasks SET
            awaited_role   = COALESCE($2, awaited_role),
            due_at         = COALESCE($3, due_at),
            escalated      = COALESCE($4, escalated),
            reminders_sent = GREATEST(reminders_sent, COALESCE($5, reminders_sent))
        WHERE task_id = $1 AND closed_at IS NULL
        """,
        change.task_id,
        change.awaited_role.value if change.awaited_role is not None else None,
        change.due_at,
        change.escalated,
        change.reminders_sent,
    )
    return status != "UPDATE 0"


async def assign(db: Executor, task_id: str, assignee: str | None) -> bool:
    """A coordinator claims (or releases, with None) an open task."""
    status = await db.execute(
        "UPDATE human_tasks SET assignee = $2 WHERE task_id = $1 AND closed_at IS NULL",
        task_id,
        assignee,
    )
    return status != "UPDATE 0"


async def close(db: Executor, closing: CloseTaskInput) -> bool:
    """Close an open task; False if already closed (the first close wins) or unknown."""
    status = await db.execute(
        """
        UPDATE human_tasks SET closed_at = $2, closed_by = $3, outcome = $4
        WHERE task_id = $1 AND closed_at IS NULL
        """,
        closing.task_id,
        closing.closed_at,
        closing.closed_by,
        closing.outcome,
    )
    return status != "UPDATE 0"


def _rows(records: list[asyncpg.Record]) -> list[TaskRow]:
    return [TaskRow.model_validate(dict(r)) for r in records]


async def get(db: Executor, task_id: str) -> TaskRow | None:
    record = await db.fetchrow(f"SELECT {_COLUMNS} FROM human_tasks WHERE task_id = $1", task_id)
    return TaskRow.model_validate(dict(record)) if record is not None else None


async def list_open(
    db: Executor,
    role: str | None = None,
    assignee: str | None = None,
    process: str | None = None,
    limit: int = 100,
) -> list[TaskRow]:
    """Open tasks, soonest deadline first, then the riskiest (highest priority)."""
    records = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM human_tasks
        WHERE closed_at IS NULL
          AND ($1::text IS NULL OR awaited_role = $1)
          AND ($2::text IS NULL OR assignee = $2)
          AND ($3::text IS NULL OR process = $3)
        ORDER BY due_at, priority DESC, opened_at, task_id
        LIMIT $4
        """,
        # str(): a Role (StrEnum) is sent as its plain value.
        str(role) if role is not None else None,
        assignee,
        process,
        limit,
    )
    return _rows(records)


async def list_for_workflow(db: Executor, workflow_id: str) -> list[TaskRow]:
    """Every task of one process instance, open or closed, in opening order."""
    records = await db.fetch(
        f"SELECT {_COLUMNS} FROM human_tasks WHERE workflow_id = $1 ORDER BY opened_at, task_id",
        workflow_id,
    )
    return _rows(records)
