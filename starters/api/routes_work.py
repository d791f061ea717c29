"""The coordinator work queue and the audit trail, both read from PostgreSQL.

The queue is read from the human-task table, not from Temporal visibility:
visibility is eventually consistent, and a coordinator must never see a task
that was already decided or miss one that just opened.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from clients.errors import CaseNotFound, CaseUnavailable
from clients.task_resolution import ResolutionRefused, resolve_task
from domain.audit import AuditRow
from domain.common import NonEmptyStr, Role, StewardModel
from domain.task_resolution import TaskResolution, TaskResolutionBody
from domain.tasks import TaskRow
from starters.api.routes_common import DbPool, TemporalClient, error_responses
from starters.auth import Principal, authenticate, require_roles
from store import audit as audit_store
from store import tasks as task_store

router = APIRouter(prefix="/v1", tags=["work queue and audit"])

AUDIT_READERS = (Role.AUDITOR, Role.MANAGER, Role.OPS, Role.COORDINATOR)


class Me(StewardModel):
    actor: str
    role: Role


@router.get(
    "/me",
    response_model=Me,
    responses=error_responses(401),
    summary="Who this API key is: its actor and role (`steward login` checks a key with it)",
)
async def whoami(principal: Annotated[Principal, Depends(authenticate)]) -> Me:
    return Me(actor=principal.actor, role=principal.role)


@router.get(
    "/tasks",
    response_model=list[TaskRow],
    responses=error_responses(401, 422),
    summary="Open human tasks, most urgent first",
)
async def list_tasks(
    principal: Annotated[Principal, Depends(authenticate)],
    pool: DbPool,
    role: Annotated[
        Role | None, Query(description="Awaited role; defaults to the caller's role")
    ] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    process: Annotated[str | None, Query(max_length=64, examples=["order-review"])] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[TaskRow]:
    rows = await task_store.list_open(
        pool, role=role or principal.role, assignee=assignee, process=process, limit=limit
    )
    # The store sorts too; sorting here keeps the contract if the query changes.
    return sorted(rows, key=lambda t: (t.due_at, -t.priority))


@router.post(
    "/tasks/{task_id:path}/resolution",
    response_model=TaskResolution,
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 503),
    summary="Close a task no process will close (finance and ops hand-offs, or one its "
    "ended process left open), as the role it awaits; audited, moves no money",
)
async def resolve(
    task_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=500,
            examples=["order-review:FR-100234/late_capture/1"],
            description="The task id as `GET /v1/tasks` lists it (its slashes as they are)",
        ),
    ],
    body: TaskResolutionBody,
    principal: Annotated[Principal, Depends(authenticate)],
    pool: DbPool,
    client: TemporalClient,
) -> TaskResolution:
    """A task Steward handed to a person and never closes (`capture_reversed`,
    `refund_reversed`, `amount_mismatch`, `late_capture`, `step_write_failed`)
    may be resolved at any time; any other task only once its process is no
    longer running (409 while it runs: that process closes it). Only the role
    the task awaits (403 otherwise). The same resolution sent again answers 200
    with `resolved_now` false; another one on a closed task is a 409."""
    try:
        return await resolve_task(
            client, pool, task_id, body, actor=principal.actor, role=principal.role
        )
    except CaseNotFound as err:
        raise HTTPException(404, detail=str(err)) from None
    except ResolutionRefused as err:
        raise HTTPException(err.status, detail=err.detail) from None
    except CaseUnavailable as err:
        raise HTTPException(503, detail=str(err)) from None


@router.get(
    "/audit/{case_id}",
    response_model=list[AuditRow],
    responses=error_responses(401, 403, 422),
    summary="The whole decision path of a case, oldest first",
)
async def case_audit(
    case_id: Annotated[NonEmptyStr, Path(max_length=200, examples=["FR-100234"])],
    principal: Annotated[Principal, Depends(require_roles(*AUDIT_READERS))],
    pool: DbPool,
    process: Annotated[
        str | None,
        Query(
            max_length=64,
            examples=["order-review"],
            description="Only this process (an order id is also the key of its return...)",
        ),
    ] = None,
) -> list[AuditRow]:
    return await audit_store.list_by_case(pool, case_id, process=process)
