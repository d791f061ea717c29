"""Employee special sales over HTTP (`/v1/campaigns`): the special-sales team
prepares a campaign, imports the HR roster (CSV) and submits it; a manager
who did not prepare it approves (four eyes); the sale's storefront sends
employee orders, which take quota and stock atomically in PostgreSQL and go
to the normal order review; collaborators' gift and after-sales requests;
reconciliation, the payroll export and the post-mortem figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import Field

from clients import campaign as campaigns
from domain.audit import CaseRow
from domain.campaign import (
    MAX_ROSTER_BYTES,
    ApprovalInput,
    CampaignOrderRequest,
    CampaignParameters,
    CampaignSchedule,
    CampaignState,
    CampaignView,
    CancelInput,
    FileRequestInput,
    QuotaDecision,
    QuotaRelease,
    RequestKind,
    RequestOutcome,
    RequestState,
    ResolveRequestInput,
    RosterFileError,
    RosterIssue,
    Severity,
    SubmitInput,
    WindowChange,
    parse_roster,
    schedule_for,
)
from domain.common import BusinessKey, NonEmptyStr, Role, StewardModel
from domain.ids import CAMPAIGN
from starters.api.routes_common import (
    AppSettings,
    DbPool,
    ErrorResponse,
    TemporalClient,
    case_call,
    error_responses,
)
from starters.auth import Principal, authenticate, require_roles
from store import campaign as campaign_store
from store import cases as case_store
from store.personal_data import SubjectErased

log = structlog.get_logger(__name__)

PREFIX = "/v1/campaigns"

router = APIRouter(prefix=PREFIX, tags=["campaigns"])

Preparer = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER))]
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
Storefront = Annotated[Principal, Depends(require_roles(Role.SYSTEM))]
Finance = Annotated[Principal, Depends(require_roles(Role.FINANCE, Role.MANAGER))]
Desk = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER, Role.SYSTEM))]
Reader = Annotated[Principal, Depends(authenticate)]
CampaignId = Annotated[BusinessKey, Path(description="The campaign id", examples=["ES-2027-03"])]


def _invalid(*errors: tuple[str, str]) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"field": f, "reason": r} for f, r in errors],
    )


def _value_error(err: ValueError) -> HTTPException:
    field, _, reason = str(err).partition(": ")
    return _invalid((field, reason or str(err)))


async def _record(pool: Any, campaign_id: str) -> campaign_store.CampaignRecord:
    try:
        return await campaign_store.get_campaign(pool, campaign_id)
    except campaign_store.CampaignNotFound:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no campaign {campaign_id}"
        ) from None


ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}


class CampaignCreated(StewardModel):
    campaign_id: str
    workflow_id: str
    created: bool
    schedule: CampaignSchedule


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignCreated,
    responses=error_responses(401, 403, 409, 422, 503),
    summary="Prepare a campaign (draft); its local times are in its timezone",
)
async def create_campaign(
    body: CampaignParameters,
    principal: Preparer,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
) -> CampaignCreated:
    try:
        schedule = schedule_for(body)
    except ValueError as err:
        raise _value_error(err) from None
    try:
        created = await campaigns.start_campaign(
            client, pool, body, schedule, principal.actor, settings.task_queue
        )
    except campaign_store.CampaignConflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(err)) from None
    log.info("campaign_created", campaign_id=body.campaign_id, created=created)
    return CampaignCreated(
        campaign_id=body.campaign_id,
        workflow_id=f"{CAMPAIGN}:{body.campaign_id}",
        created=created,
        schedule=schedule,
    )


@router.get(
    "",
    response_model=list[CaseRow],
    responses=error_responses(401, 422),
    summary="Campaigns, most recently changed first",
)
async def list_campaigns(
    principal: Reader,
    pool: DbPool,
    status_filter: Annotated[str | None, Query(alias="status", max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Sequence[CaseRow]:
    return await case_store.list_cases(pool, CAMPAIGN, status_filter, limit)


@router.get(
    "/{campaign_id}",
    response_model=CampaignView,
    responses=error_responses(401, 404, 503),
    summary="A campaign's state: status, schedule, validation report, requests",
)
async def get_campaign(
    campaign_id: CampaignId, principal: Reader, client: TemporalClient, pool: DbPool
) -> CampaignView:
    state: CampaignState = await case_call(campaigns.get_campaign(client, campaign_id))
    # The requests' words are read back from the personal-data store (issue 21).
    return await campaigns.with_request_texts(pool, state)


# ---------------------------------------------------------------- the roster


class RosterReport(StewardModel):
    campaign_id: str
    rows: int
    eligible: int
    excluded: int
    roster_hash: str
    warnings: list[RosterIssue]


@router.post(
    "/{campaign_id}/roster",
    response_model=RosterReport,
    responses=error_responses(401, 403, 404, 409, 413, 422),
    summary="Import the HR roster (UTF-8 CSV): all rows or none",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def import_roster(
    campaign_id: CampaignId, request: Request, principal: Preparer, pool: DbPool
) -> Any:
    record = await _record(pool, campaign_id)
    data = await request.body()
    if len(data) > MAX_ROSTER_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"body: larger than {MAX_ROSTER_BYTES} bytes; nothing was imported",
        )
    params = record.parameters
    try:
        parsed = parse_roster(
            data,
            params,
            sale_opens=record.opens_at.astimezone(UTC).date(),
            sale_closes=record.closes_at.astimezone(UTC).date(),
        )
    except RosterFileError as err:
        raise _value_error(err) from None
    if parsed.errors:
        return JSONResponse(
            {
                "message": f"roster refused: {len(parsed.errors)} row error(s); nothing was "
                "imported",
                "detail": [
                    {"field": f"line {i.line}.{i.field}", "reason": i.reason} for i in parsed.errors
                ],
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    try:
        digest = await campaign_store.import_roster(pool, campaign_id, parsed)
    except campaign_store.CampaignConflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(err)) from None
    warnings = [i for i in parsed.issues if i.severity is Severity.WARNING]
    log.info("roster_imported", campaign_id=campaign_id, rows=len(parsed.rows))
    return RosterReport(
        campaign_id=campaign_id,
        rows=len(parsed.rows),
        eligible=sum(1 for r in parsed.rows if r.eligible),
        excluded=sum(1 for r in parsed.rows if not r.eligible),
        roster_hash=digest,
        warnings=warnings,
    )


# ------------------------------------------------------------- the decisions


class ApprovalBody(StewardModel):
    approve: bool
    acknowledge_warnings: bool = False
    reason: str = Field(default="", max_length=2000)


class WindowBody(StewardModel):
    """`closes_local` a new local closing time (earlier: an early close; later:
    an extension), or `close_now`."""

    closes_local: datetime | None = None
    close_now: bool = False
    reason: str = Field(default="", max_length=2000)


class CancelBody(StewardModel):
    reason: NonEmptyStr = Field(max_length=2000)


def _update_id(principal: Principal, key: str | None) -> str | None:
    return f"{principal.actor}/{key}" if key else None


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


@router.post(
    "/{campaign_id}/submit",
    response_model=CampaignState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Submit the draft for validation (roster and parameters)",
)
async def submit(
    campaign_id: CampaignId,
    principal: Preparer,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> CampaignState:
    state: CampaignState = await case_call(
        campaigns.submit(
            client,
            campaign_id,
            SubmitInput(actor=principal.actor, role=principal.role),
            update_id=_update_id(principal, idempotency_key),
        )
    )
    return state


@router.post(
    "/{campaign_id}/approval",
    response_model=CampaignState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Approve (acknowledging the warnings) or refuse; never the preparer (four eyes)",
)
async def approval(
    campaign_id: CampaignId,
    body: ApprovalBody,
    principal: Manager,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> CampaignState:
    state: CampaignState = await case_call(
        campaigns.approve(
            client,
            campaign_id,
            ApprovalInput(
                approve=body.approve,
                acknowledge_warnings=body.acknowledge_warnings,
                reason=body.reason,
                actor=principal.actor,
                role=principal.role,
            ),
            update_id=_update_id(principal, idempotency_key),
        )
    )
    return state


@router.post(
    "/{campaign_id}/window",
    response_model=CampaignState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Close the sale early or extend it (local time in the campaign's timezone)",
)
async def change_window(
    campaign_id: CampaignId,
    body: WindowBody,
    principal: Manager,
    client: TemporalClient,
    pool: DbPool,
) -> CampaignState:
    if body.close_now == (body.closes_local is not None):
        raise _invalid(("closes_local", "give either closes_local or close_now"))
    closes_at = reminder_at = None
    if body.closes_local is not None:
        record = await _record(pool, campaign_id)
        try:
            if body.closes_local.tzinfo is not None:
                raise ValueError("closes_local: a local wall time without offset")
            schedule = schedule_for(record.parameters, closes_local=body.closes_local)
        except ValueError as err:
            raise _value_error(err) from None
        closes_at, reminder_at = schedule.closes_at, schedule.closing_reminder_at
    state: CampaignState = await case_call(
        campaigns.change_window(
            client,
            campaign_id,
            WindowChange(
                closes_at=closes_at,
                closing_reminder_at=reminder_at,
                reason=body.reason,
                actor=principal.actor,
                role=principal.role,
            ),
        )
    )
    return state


@router.post(
    "/{campaign_id}/cancel",
    response_model=CampaignState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Cancel a campaign before its sale opens",
)
async def cancel(
    campaign_id: CampaignId,
    body: CancelBody,
    principal: Preparer,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> CampaignState:
    state: CampaignState = await case_call(
        campaigns.cancel(
            client,
            campaign_id,
            CancelInput(reason=body.reason, actor=principal.actor, role=principal.role),
            update_id=_update_id(principal, idempotency_key),
        )
    )
    return state


# ------------------------------------------------------------------- orders


@router.post(
    "/{campaign_id}/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=QuotaDecision,
    responses={
        **error_responses(401, 403, 404, 422, 503),
        409: {
            "model": ErrorResponse,
            "description": "Refused: `detail` starts with the reason (window, eligibility, "
            "quota, stock, conflict), then why; or `order_id`: a retried order whose "
            "personal data a privacy request erased",
        },
    },
    summary="An employee's order: takes quota and stock atomically, then the order review",
)
async def place_order(
    campaign_id: CampaignId,
    body: CampaignOrderRequest,
    principal: Storefront,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
) -> Any:
    try:
        decision = await campaigns.place_order(client, pool, campaign_id, body, settings.task_queue)
    except campaign_store.CampaignNotFound:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no campaign {campaign_id}"
        ) from None
    except campaign_store.OrderInvalid as err:
        raise _invalid((err.field, err.reason)) from None
    except SubjectErased:
        # A retried order whose values a privacy request erased (issue 21).
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"order_id: the personal data of order {body.order_id} was erased by a "
            "privacy request; it cannot be reviewed again",
        ) from None
    if not decision.accepted:
        log.info("campaign_order_refused", campaign_id=campaign_id, reason=decision.refusal)
        # The API's one error body: the reason first in `detail` ("stock: ...").
        return JSONResponse(
            {
                "detail": decision.detail,
                "message": f"refused ({decision.refusal}): nothing was taken",
            },
            status_code=status.HTTP_409_CONFLICT,
        )
    code = status.HTTP_201_CREATED if decision.first_time else status.HTTP_200_OK
    return JSONResponse(decision.model_dump(mode="json"), status_code=code)


@router.post(
    "/{campaign_id}/orders/{order_id}/releases",
    responses=error_responses(401, 403, 404, 422),
    summary="An item of an accepted order was cancelled or returned (quota back per the rule)",
)
async def release(
    campaign_id: CampaignId,
    order_id: Annotated[BusinessKey, Path()],
    body: QuotaRelease,
    principal: Storefront,
    pool: DbPool,
) -> dict[str, Any]:
    await _record(pool, campaign_id)
    try:
        applied = await campaign_store.release_quota(pool, campaign_id, order_id, body)
    except campaign_store.OrderInvalid as err:
        raise _invalid((err.field, err.reason)) from None
    return {"release_id": body.release_id, "applied": applied}


# ----------------------------------------------------------------- requests


class RequestBody(StewardModel):
    request_id: BusinessKey
    employee_id: BusinessKey
    kind: RequestKind
    # The collaborator's own words: personal data, kept in the store only.
    description: NonEmptyStr = Field(max_length=4000)


class ResolutionBody(StewardModel):
    outcome: RequestOutcome
    reason: str = Field(default="", max_length=2000)


@router.post(
    "/{campaign_id}/requests",
    status_code=status.HTTP_201_CREATED,
    response_model=RequestState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="A collaborator's gift request or after-sales dossier (own SLA and owner)",
)
async def file_request(
    campaign_id: CampaignId,
    body: RequestBody,
    principal: Desk,
    client: TemporalClient,
    pool: DbPool,
) -> RequestState:
    await _record(pool, campaign_id)
    try:
        await campaign_store.file_request(
            pool,
            request_id=body.request_id,
            campaign_id=campaign_id,
            employee_id=body.employee_id,
            kind=body.kind.value,
            description=body.description,
            opened_by=principal.actor,
        )
    except campaign_store.OrderInvalid as err:
        raise _invalid((err.field, err.reason)) from None
    state: RequestState = await case_call(
        campaigns.file_request(
            client,
            campaign_id,
            FileRequestInput(
                request_id=body.request_id,
                kind=body.kind,
                actor=principal.actor,
                role=principal.role,
            ),
        )
    )
    return state


@router.post(
    "/{campaign_id}/requests/{request_id}/resolution",
    response_model=RequestState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Resolve a request: shipped, or refused with the reason",
)
async def resolve_request(
    campaign_id: CampaignId,
    request_id: Annotated[BusinessKey, Path()],
    body: ResolutionBody,
    principal: Preparer,
    client: TemporalClient,
) -> RequestState:
    try:
        resolve = ResolveRequestInput(
            request_id=request_id,
            outcome=body.outcome,
            reason=body.reason,
            actor=principal.actor,
            role=principal.role,
        )
    except ValueError:
        raise _invalid(("reason", "a refusal says why")) from None
    state: RequestState = await case_call(campaigns.resolve_request(client, campaign_id, resolve))
    return state


# ------------------------------------------------- reconciliation and report


@router.post(
    "/{campaign_id}/reconcile",
    response_model=CampaignState,
    responses=error_responses(401, 403, 404, 409, 503),
    summary="Run the reconciliation again now (after fixing discrepancies)",
)
async def reconcile(
    campaign_id: CampaignId, principal: Finance, client: TemporalClient
) -> CampaignState:
    state: CampaignState = await case_call(
        campaigns.reconcile_again(client, campaign_id, principal.actor)
    )
    return state


@router.get(
    "/{campaign_id}/payroll-export",
    # The CSV is the 200's body; errors keep the API's JSON error body.
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **{
            code: {**entry, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for code, entry in error_responses(401, 403, 404, 409).items()
        },
    },
    summary="The payroll/finance export (CSV) of a clean reconciliation",
)
async def payroll_export(
    campaign_id: CampaignId, principal: Finance, pool: DbPool
) -> PlainTextResponse:
    await _record(pool, campaign_id)
    text = await campaign_store.payroll_export(pool, campaign_id)
    if text is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"campaign {campaign_id} is not reconciled clean yet"
        )
    return PlainTextResponse(text, media_type="text/csv")


class CampaignReport(StewardModel):
    figures: dict[str, Any]
    previous: list[dict[str, Any]]
    stock: list[dict[str, Any]]


@router.get(
    "/{campaign_id}/report",
    response_model=CampaignReport,
    responses=error_responses(401, 404),
    summary="Post-mortem figures, with the previous campaigns' for comparison",
)
async def report(campaign_id: CampaignId, principal: Reader, pool: DbPool) -> CampaignReport:
    await _record(pool, campaign_id)
    return CampaignReport(
        figures=await campaign_store.figures(pool, campaign_id),
        previous=await campaign_store.previous_figures(pool, campaign_id),
        stock=await campaign_store.stock_levels(pool, campaign_id),
    )


__all__ = ["PREFIX", "router"]
