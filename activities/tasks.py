"""Human tasks (the coordinator work queue): short local writes, run as local
activities. Each is idempotent, so a retry changes nothing."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from activities.context import activity_logger
from domain.tasks import (
    CLOSE_TASK,
    OPEN_TASK,
    UPDATE_TASK,
    CloseTaskInput,
    OpenTaskInput,
    UpdateTaskInput,
)
from store import tasks


class TaskActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name=OPEN_TASK)
    async def open_task(self, input: OpenTaskInput) -> None:
        opened = await tasks.open(self.pool, input)
        activity_logger(task_id=input.task_id).info(
            "task_opened" if opened else "task_already_open",
            kind=input.kind,
            awaited_role=input.awaited_role.value,
            due_at=input.due_at.isoformat(),
        )

    @activity.defn(name=UPDATE_TASK)
    async def update_task(self, input: UpdateTaskInput) -> None:
        updated = await tasks.update(self.pool, input)
        log = activity_logger(task_id=input.task_id)
        if updated:
            log.info("task_updated", **input.model_dump(mode="json", exclude_none=True))
        else:
            # Closed in the meantime (a decision raced the reminder timer):
            # nothing to update, and nothing to retry.
            log.info("task_update_skipped_closed_or_unknown")

    @activity.defn(name=CLOSE_TASK)
    async def close_task(self, input: CloseTaskInput) -> None:
        closed = await tasks.close(self.pool, input)
        activity_logger(task_id=input.task_id).info(
            "task_closed" if closed else "task_already_closed",
            closed_by=input.closed_by,
            outcome=input.outcome,
        )
