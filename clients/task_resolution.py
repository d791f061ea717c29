"""Resolve a work-queue task no process will close (domain/task_resolution.py):
check who may, ask Temporal whether the task's process still runs when that
decides it, then close the task and audit it once (store/task_resolutions.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import structlog
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from clients.errors import QUERY_TIMEOUT, CaseNotFound, CaseUnavailable
from domain.common import Role
from domain.task_resolution import (
    Refusal,
    TaskResolution,
    TaskResolutionBody,
    needs_process_state,
    resolution_refusal,
)
from store import task_resolutions
from store import tasks as task_store

log = structlog.get_logger(__name__)


class ResolutionRefused(Exception):
    """Refused (403 wrong role, 409 closed or owned by a running process)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.status = refusal.status
        self.detail = refusal.detail


async def process_running(client: Client, workflow_id: str) -> bool:
    """Whether the workflow `workflow_id` is running; a history Temporal no
    longer holds (or never had) is not running."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe(
            rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise CaseUnavailable(
            f"Temporal did not say whether {workflow_id} runs ({err.status.name}); "
            "nothing was changed"
        ) from err
    return description.status == WorkflowExecutionStatus.RUNNING


async def resolve_task(
    client: Client,
    pool: asyncpg.Pool,
    task_id: str,
    body: TaskResolutionBody,
    *,
    actor: str,
    role: Role,
) -> TaskResolution:
    """Resolve `task_id` as `actor`; the same resolution again answers the
    task unchanged (`resolved_now` False). Raises CaseNotFound (no such task),
    ResolutionRefused, CaseUnavailable (Temporal did not answer)."""
    task = await task_store.get(pool, task_id)
    if task is None:
        raise CaseNotFound(f"no task {task_id}")
    running = await process_running(client, task.workflow_id) if needs_process_state(task) else None
    refusal = resolution_refusal(
        task, role=role, actor=actor, outcome=body.outcome, process_running=running
    )
    if refusal is not None:
        raise ResolutionRefused(refusal)
    if task.closed_at is not None:
        return TaskResolution(task=task, resolved_now=False)
    closed = await task_resolutions.resolve(
        pool,
        task,
        outcome=body.outcome,
        reason=body.reason,
        actor=actor,
        role=role,
        at=datetime.now(UTC),
    )
    if closed is None:
        # Closed between the read and the write (its process, or another person).
        again = await task_store.get(pool, task_id)
        assert again is not None
        refusal = resolution_refusal(
            again, role=role, actor=actor, outcome=body.outcome, process_running=running
        )
        if refusal is not None:
            raise ResolutionRefused(refusal)
        return TaskResolution(task=again, resolved_now=False)
    log.info(
        "task_resolved",
        task_id=task_id,
        kind=task.kind,
        workflow_id=task.workflow_id,
        outcome=body.outcome.value,
    )
    return TaskResolution(task=closed, resolved_now=True)
