"""Ops requests over HTTP (`/v1/ops-requests`): open one, list and filter
them (JSON or the CSV export), the work queue (priority, then business-time
due), read one, and every decision (claim, assign, reprioritise, escalate,
answer an escalation, recount, resolve, approve a write-off); plus absence
cover. Who acts comes from the API key, never from the body. The same
requests arrive from Slack through routes_slack.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field

from clients import ops_request as ops_client
from domain.common import BusinessKey, FreeText, Role, StewardModel, Text
from domain.ops_request import (
    AssignInput,
    ClaimInput,
    EscalateInput,
    EscalationAnswerInput,
    FinanceApprovalInput,
    InventoryDiscrepancyDetails,
    InventoryResolution,
    OpsRequestContract,
    OpsRequestDraft,
    OpsRequestState,
    OpsRequestStatus,
    OpsRequestType,
    OpsRequestView,
    OutcomeCode,
    Priority,
    RecountInput,
    ReprioritiseInput,
    ResolveInput,
    RootCause,
)
from domain.ops_request import Channel as IntakeChannel
from starters.api.routes_common import (
    AppSettings,
    DbPool,
    TemporalClient,
    case_call,
    error_responses,
)
from starters.auth import Principal, require_roles
from store import ops_requests as ops_store
from store.ops_requests import OpsRequestRow

log = structlog.get_logger(__name__)

PREFIX = "/v1/ops-requests"
DEPRECATED_PREFIXES: tuple[str, ...] = ()

router = APIRouter(tags=["ops requests"])

Requester = Annotated[
    Principal,
    Depends(require_roles(Role.SYSTEM, Role.OPS, Role.COORDINATOR, Role.MANAGER)),
]
Desk = Annotated[Principal, Depends(require_roles(Role.OPS, Role.COORDINATOR, Role.MANAGER))]
Resolver = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER))]
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
Finance = Annotated[Principal, Depends(require_roles(Role.FINANCE))]
Reader = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.SYSTEM, Role.OPS, Role.COORDINATOR, Role.MANAGER, Role.FINANCE, Role.AUDITOR
        )
    ),
]
RequestId = Annotated[
    BusinessKey, Path(description="The ops request's id", examples=["OPS-3F2A9C01B7"])
]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


class OpenedResponse(StewardModel):
    request_id: str
    workflow_id: str
    created: bool


class AssignBody(StewardModel):
    to: Annotated[Text, Field(min_length=1, max_length=80)] | None = None
    reason: Annotated[FreeText, Field(max_length=500)] = ""


class ReprioritiseBody(StewardModel):
    priority: Priority
    reason: Annotated[FreeText, Field(min_length=1, max_length=500)]


class EscalateBody(StewardModel):
    summary: Annotated[FreeText, Field(min_length=1, max_length=500)]
    tried: Annotated[FreeText, Field(min_length=1, max_length=1000)]
    blocker: Annotated[FreeText, Field(min_length=1, max_length=500)]
    needed_from: Annotated[Text, Field(min_length=1, max_length=80)]
    needed_what: Annotated[FreeText, Field(min_length=1, max_length=500)]
    next_check_at: AwareDatetime


class AnswerBody(StewardModel):
    note: Annotated[FreeText, Field(min_length=1, max_length=1000)]


class RecountBody(StewardModel):
    counted_quantity: int = Field(ge=0, le=1_000_000)


class ResolveBody(StewardModel):
    outcome: OutcomeCode
    root_cause: RootCause
    note: Annotated[FreeText, Field(max_length=1000)] = ""
    inventory: InventoryResolution | None = None


class WriteOffBody(StewardModel):
    approved: bool
    note: Annotated[FreeText, Field(max_length=1000)] = ""


class AbsenceBody(StewardModel):
    coordinator: Annotated[Text, Field(min_length=1, max_length=80)]
    # A named colleague, or None: back to the queue.
    cover: Annotated[Text, Field(min_length=1, max_length=80)] | None = None
    reason: Annotated[FreeText, Field(max_length=500)] = ""


def _refused(error: ops_client.IntakeRefused) -> JSONResponse:
    details = [{"field": p.field, "reason": p.reason} for p in error.problems]
    fields = ", ".join(p.field for p in error.problems)
    return JSONResponse(
        {
            "message": f"invalid request: {len(details)} error(s) in {fields}; "
            "nothing was started or changed",
            "detail": details,
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OpenedResponse,
    responses={
        200: {
            "model": OpenedResponse,
            "description": "Already open (the same Idempotency-Key or warehouse count "
            "event): the existing request, nothing opened (`created: false`)",
        },
        **error_responses(401, 403, 422, 503),
    },
    summary="Open an ops request (the type's fields in `details`)",
)
async def open_ops_request(
    body: OpsRequestDraft,
    principal: Requester,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    channel: Annotated[
        IntakeChannel,
        Query(description="api; cli for the CLI; wms for a warehouse count event (system keys)"),
    ] = IntakeChannel.API,
) -> Any:
    request_id = (
        ops_client.derived_request_id(f"api/{principal.actor}", idempotency_key)
        if idempotency_key
        else None
    )
    details = body.details
    if isinstance(details, InventoryDiscrepancyDetails) and details.count_event_id:
        # A warehouse count event opens one request, however often it is sent.
        request_id = ops_client.derived_request_id("wms", details.count_event_id)
    allowed = {IntakeChannel.API, IntakeChannel.CLI}
    if principal.role is Role.SYSTEM:
        allowed.add(IntakeChannel.WMS)
    try:
        opened = await ops_client.open_request(
            client,
            pool,
            body,
            requester=principal.actor,
            channel=channel if channel in allowed else IntakeChannel.API,
            task_queue=settings.task_queue,
            now=datetime.now(UTC),
            request_id=request_id,
            escalation_channel=settings.ops_escalation_channel,
        )
    except ops_client.IntakeRefused as refused:
        log.info("ops_request_refused", fields=[p.field for p in refused.problems])
        return _refused(refused)
    if not opened.created:
        response.status_code = status.HTTP_200_OK
    log.info("ops_request_opened", request_id=opened.request_id, type=body.type.value)
    return OpenedResponse(
        request_id=opened.request_id, workflow_id=opened.workflow_id, created=opened.created
    )


def _filters(
    type: Annotated[OpsRequestType | None, Query()] = None,
    status_filter: Annotated[OpsRequestStatus | None, Query(alias="status")] = None,
    assignee: Annotated[str | None, Query(max_length=80)] = None,
    priority: Annotated[Priority | None, Query()] = None,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    opened_from: Annotated[AwareDatetime | None, Query()] = None,
    opened_to: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> dict[str, Any]:
    return {
        "type": type.value if type else None,
        "status": status_filter.value if status_filter else None,
        "assignee": assignee,
        "priority": priority.value if priority else None,
        "site_id": site_id,
        "order_id": order_id,
        "open_only": open_only,
        "opened_from": opened_from,
        "opened_to": opened_to,
        "limit": limit,
    }


Filters = Annotated[dict[str, Any], Depends(_filters)]


@router.get(
    "",
    response_model=list[OpsRequestRow],
    responses=error_responses(401, 403, 422),
    summary="Ops requests matching the filters, most recently opened first",
)
async def list_ops_requests(
    principal: Reader, pool: DbPool, filters: Filters
) -> Sequence[OpsRequestRow]:
    return await ops_store.search(pool, **filters)


@router.get(
    "/export.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One line per request"},
        **error_responses(401, 403, 422),
    },
    summary="CSV export: type, opened, first response, resolved, business time, SLA, root cause",
)
async def export_ops_requests(principal: Reader, pool: DbPool, filters: Filters) -> Response:
    rows = await ops_store.search(pool, **filters)
    return Response(
        ops_store.as_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="ops-requests.csv"'},
    )


@router.get(
    "/queue",
    response_model=list[OpsRequestRow],
    responses=error_responses(401, 403, 422),
    summary="The desk's work queue: open requests by priority, then business-time due",
)
async def ops_queue(
    principal: Reader,
    pool: DbPool,
    assignee: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Sequence[OpsRequestRow]:
    return await ops_store.search(
        pool, assignee=assignee, open_only=True, queue_order=True, limit=limit
    )


@router.post(
    "/absences",
    response_model=ops_client.CoverResult,
    responses=error_responses(401, 403, 422, 503),
    summary="Cover an absent coordinator: move their open requests and tasks",
)
async def cover_absence(
    body: AbsenceBody, principal: Resolver, client: TemporalClient, pool: DbPool
) -> ops_client.CoverResult:
    result = await ops_client.cover_absence(
        client,
        pool,
        coordinator=body.coordinator,
        cover=body.cover,
        actor=principal.actor,
        role=principal.role,
        reason=body.reason,
        now=datetime.now(UTC),
    )
    log.info(
        "ops_absence_covered",
        coordinator=body.coordinator,
        requests=len(result.requests_moved),
        tasks=len(result.tasks_moved),
    )
    return result


@router.get(
    "/{request_id}",
    response_model=OpsRequestView,
    responses=error_responses(401, 403, 404, 503),
    summary="An ops request's current state, with the requester's description "
    "(and a QC check's reason) read back from the personal-data store",
)
async def get_ops_request(
    request_id: RequestId, principal: Reader, client: TemporalClient, pool: DbPool
) -> OpsRequestView:
    state: OpsRequestState = await case_call(ops_client.get_request(client, request_id))
    return await ops_client.with_request_texts(pool, state)


async def _decide(
    client: Any,
    request_id: str,
    update: str,
    decision: StewardModel,
    principal: Principal,
    idempotency_key: str | None,
) -> OpsRequestState:
    update_id = f"{principal.actor}/{idempotency_key}" if idempotency_key else None
    state: OpsRequestState = await case_call(
        ops_client.decide(client, request_id, update, decision, update_id=update_id)
    )
    log.info("ops_request_decided", request_id=request_id, update=update)
    return state


_DECISION_ERRORS = error_responses(401, 403, 404, 409, 422, 503)


@router.post(
    "/{request_id}/claim",
    response_model=OpsRequestState,
    responses=_DECISION_ERRORS,
    summary="Take the request",
)
async def claim(
    request_id: RequestId,
    principal: Desk,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> OpsRequestState:
    decision = ClaimInput(actor=principal.actor, role=principal.role)
    return await _decide(
        client, request_id, OpsRequestContract.UPDATE_CLAIM, decision, principal, idempotency_key
    )


@router.post(
    "/{request_id}/assign",
    response_model=OpsRequestState,
    responses=_DECISION_ERRORS,
    summary="Reassign to a colleague, or back to the queue (`to` null)",
)
async def assign(
    request_id: RequestId,
    body: AssignBody,
    principal: Desk,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> OpsRequestState:
    decision = AssignInput(actor=principal.actor, role=principal.role, **body.model_dump())
    return await _decide(
        client, request_id, OpsRequestContract.UPDATE_ASSIGN, decision, principal, idempotency_key
    )


@router.post(
    "/{request_id}/reprioritise",
    response_model=OpsRequestState,
    responses=_DECISION_ERRORS,
    summary="Change the priority (the SLA and due time follow)",
)
async def reprioritise(
    request_id: RequestId,
    body: ReprioritiseBody,
    principal: Desk,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> OpsRequestState:
    decision = ReprioritiseInput(actor=principal.actor, role=principal.role, **body.model_dump())
    return await _decide(
        client,
        request_id,
        OpsRequestContract.UPDATE_REPRIORITISE,
        decision,
        principal,
        idempotency_key,
    )


@router.post(
    "/{request_id}/escalate",
    response_model=OpsRequestState,
    responses=_DECISION_ERRORS,
    summary="Escalate to the senior QA coordinator with a structured update",
)
async def escalate(
    request_id: RequestId,
    body: EscalateBody,
    principal: Resolver,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> OpsRequestState:
    decision = EscalateInput(actor=principal.actor, role=principal.role, **body.model_dump())
    return await _decide(
        client, request_id, OpsRequestContract.UPDATE_ESCALATE, decision, principal, idempotency_key
    )


@router.post(
    "/{request_id}/escalation-answer",
    response_model=OpsRequestState,
    responses=_DECISION_ERRORS,
    summary="The senior QA coordinator answers: the request returns to its owner",
)
async def answer_escalation(
    request_id: RequestId,
    body: AnswerBody,
    principal: Manager,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> OpsRequestState:
    decision = EscalationAnswerInput(actor=principal.actor, role=principal.role, note=body.note)
    return await _decide(
        client,
        request_id,
        OpsRequestContract.UPDATE_ANSWER_ESCALATION,
        decision,
        principal,
        idempotency_key,
    )


@router.post(
    "/{request_id}/recount",
    response_model=OpsRequestState,
    responses=_DECISION_ERRORS,
    summary="The warehouse's recount of an inventory discrepancy",
)
async def recount(
    request_id: RequestId,
    body: RecountBody,
    principal: Desk,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> OpsRequestState:
    decision = RecountInput(
        actor=principal.actor, role=principal.role, counted_quantity=body.counted_quantity
    )
    return await _decide(
        client, request_id, OpsRequestContract.UPDATE_RECOUNT, decision, principal, idempotency_key
    )


@router.post(
    "/{request_id}/resolve",
    response_model=OpsRequestState,
    responses=_DECISION_ERRORS,
    summary="Resolve with an outcome and a root cause (runs the fulfilment action)",
)
async def resolve(
    request_id: RequestId,
    body: ResolveBody,
    principal: Resolver,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> OpsRequestState:
    decision = ResolveInput(actor=principal.actor, role=principal.role, **body.model_dump())
    return await _decide(
        client, request_id, OpsRequestContract.UPDATE_RESOLVE, decision, principal, idempotency_key
    )


@router.post(
    "/{request_id}/write-off-approval",
    response_model=OpsRequestState,
    responses=_DECISION_ERRORS,
    summary="Finance approves (or rejects) a write-off above the threshold",
)
async def approve_write_off(
    request_id: RequestId,
    body: WriteOffBody,
    principal: Finance,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> OpsRequestState:
    decision = FinanceApprovalInput(actor=principal.actor, role=principal.role, **body.model_dump())
    return await _decide(
        client, request_id, OpsRequestContract.UPDATE_FINANCE, decision, principal, idempotency_key
    )


__all__ = ["DEPRECATED_PREFIXES", "PREFIX", "router"]
