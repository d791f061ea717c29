"""Return endpoints: create (customer service, upstream systems), carrier and
3PL webhooks, the QC decision (coordinators, senior QA), the finance approval
(finance), cancel, the customer's choice, status and the list."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, status
from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from clients import returns
from domain.audit import CaseRow
from domain.common import (
    BusinessKey,
    MinorUnits,
    NonEmptyStr,
    Role,
    StewardModel,
    market_currency_error,
)
from domain.orders import Order
from domain.returns import (
    CancelReturnRequest,
    CarrierEvent,
    CustomerChoiceInput,
    CustomerContact,
    FinanceApprovalInput,
    QcDecisionInput,
    QcGrade,
    QcOutcome,
    QcResult,
    Resolution,
    ReturnInput,
    ReturnLine,
    ReturnOrder,
    ReturnReason,
    ReturnState,
    ReturnStatus,
    check_return_request,
    return_policy_for,
)
from starters.api.routes_common import (
    AppSettings,
    DbPool,
    TemporalClient,
    error_responses,
)
from starters.auth import Principal, authenticate, require_roles
from store import returns as returns_store
from store.personal_data import SubjectErased

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/returns", tags=["returns"])

RmaId = Annotated[BusinessKey, Path(description="The RMA number", examples=["RMA-240117"])]

Starter = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS))]
Webhook = Annotated[Principal, Depends(require_roles(Role.SYSTEM))]
QcDecider = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER))]
Finance = Annotated[Principal, Depends(require_roles(Role.FINANCE))]
Relay = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS, Role.COORDINATOR))]
Reader = Annotated[Principal, Depends(authenticate)]

_T = TypeVar("_T")


class CreateReturnBody(StewardModel):
    """A return as customer service or order management sends it. Who asked
    comes from the API key; the market's policy is applied by Steward."""

    rma_id: BusinessKey
    order: ReturnOrder
    lines: list[ReturnLine] = Field(min_length=1)
    reason: ReturnReason
    resolution: Resolution
    contact: CustomerContact
    replacement: Order | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CreateReturnBody:
        # Checked here so a bad request gets its 422 before anything starts.
        check_return_request(self.order, self.lines, self.resolution, self.replacement)
        # Market policy at the edge, for the replacement (a new order); not in
        # Order: a running case's input must keep deserialising whatever the
        # policy becomes, and a delivered order's return is not refused by it.
        if self.replacement is not None and (
            error := market_currency_error(self.replacement.market, self.replacement.currency)
        ):
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", error),
                        loc=("replacement", "currency"),
                        input=self.replacement.currency,
                    )
                ],
            )
        return self


class StartReturnResponse(StewardModel):
    workflow_id: str
    rma_id: str
    started: bool = Field(description="False when a return with this RMA already existed")


class QcDecisionBody(StewardModel):
    grade: QcGrade
    reason: NonEmptyStr = Field(max_length=2000)
    outcome: QcOutcome | None = None
    partial_refund_minor: MinorUnits | None = None


class FinanceApprovalBody(StewardModel):
    approved: bool
    note: str = Field(default="", max_length=2000)


class CancelBody(StewardModel):
    event_id: NonEmptyStr
    reason: NonEmptyStr


async def webhook_secret(
    settings: AppSettings,
    secret: Annotated[
        str | None,
        Header(alias="X-Steward-Webhook-Secret", description="The shared webhook secret"),
    ] = None,
) -> None:
    """Carrier and 3PL webhooks carry the shared secret on top of their API key."""
    expected = settings.webhook_secret
    if not expected:
        return
    # Constant time: a caller cannot learn the secret from response times.
    if secret is None or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="X-Steward-Webhook-Secret: missing or wrong shared secret",
        )


WebhookSecret = Depends(webhook_secret)


async def _call(rma_id: str, call: Awaitable[_T]) -> _T:
    """Map the helpers' errors to HTTP: 404 unknown, 409 refused or closed, 503."""
    try:
        return await call
    except returns.ReturnNotFound as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err)) from err
    except returns.ReturnDecisionRefused as err:
        log.info("return_decision_refused", rma_id=rma_id, reason=err.message)
        raise HTTPException(status.HTTP_409_CONFLICT, detail=err.message) from err
    except returns.ReturnClosed as err:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(err)) from err
    except returns.ReturnUnavailable as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(err)) from err


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StartReturnResponse,
    responses=error_responses(401, 403, 409, 422, 503),
    summary="Open a return (idempotent per RMA)",
)
async def create_return(
    body: CreateReturnBody,
    principal: Starter,
    client: TemporalClient,
    settings: AppSettings,
    pool: DbPool,
) -> StartReturnResponse:
    request = ReturnInput(
        rma_id=body.rma_id,
        order=body.order,
        lines=body.lines,
        reason=body.reason,
        resolution=body.resolution,
        contact=body.contact,
        replacement=body.replacement,
        requested_by=principal.actor,
        requester_role=principal.role,
        policy=return_policy_for(
            body.order.market, body.order.currency, starting=datetime.now(UTC).date()
        ),
    )
    # Issue 21: the customer's email and a replacement order's personal values
    # go to the personal-data store; the return (Temporal) gets subject ids.
    try:
        result = await returns.start_return(client, request, settings.task_queue, db=pool)
    except SubjectErased:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"rma_id: personal data of return {body.rma_id} or of its replacement "
            "order was erased by a privacy request; it cannot be started again",
        ) from None
    log.info("return_start", rma_id=result.rma_id, started=result.started)
    return StartReturnResponse(
        workflow_id=result.workflow_id, rma_id=result.rma_id, started=result.started
    )


@router.get(
    "",
    response_model=list[CaseRow],
    responses=error_responses(401, 422),
    summary="Returns, most recently changed first (from the case table)",
)
async def list_returns(
    principal: Reader,
    pool: DbPool,
    status_filter: Annotated[ReturnStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CaseRow]:
    return await returns_store.list_returns(
        pool, status=status_filter.value if status_filter else None, limit=limit
    )


@router.get(
    "/{rma_id}",
    response_model=ReturnState,
    responses=error_responses(401, 404, 503),
    summary="The return's current state",
)
async def get_return(
    rma_id: RmaId, principal: Reader, client: TemporalClient, pool: DbPool
) -> ReturnState:
    state = await _call(rma_id, returns.get_status(client, rma_id))
    # A customer's reason for cancelling is read back from the personal-data store.
    return await returns.with_cancel_reason(pool, state)


@router.post(
    "/{rma_id}/carrier-events",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Carrier webhook: in transit, delivered to the warehouse (deduplicated by event_id)",
    dependencies=[WebhookSecret],
)
async def carrier_webhook(
    rma_id: RmaId, body: CarrierEvent, principal: Webhook, client: TemporalClient
) -> dict[str, str]:
    await _call(rma_id, returns.carrier_event(client, rma_id, body))
    log.info("return_carrier_event", rma_id=rma_id, event_id=body.event_id, kind=body.kind.value)
    return {"rma_id": rma_id, "event_id": body.event_id, "accepted": "true"}


@router.post(
    "/{rma_id}/qc-results",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="3PL webhook: the QC grade, notes, photos, serial and authenticity checks",
    dependencies=[WebhookSecret],
)
async def qc_webhook(
    rma_id: RmaId, body: QcResult, principal: Webhook, client: TemporalClient
) -> dict[str, str]:
    await _call(rma_id, returns.qc_result(client, rma_id, body))
    log.info("return_qc_result", rma_id=rma_id, event_id=body.event_id, grade=body.grade.value)
    return {"rma_id": rma_id, "event_id": body.event_id, "accepted": "true"}


@router.post(
    "/{rma_id}/qc-decision",
    response_model=ReturnState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Manual QC decision (coordinator; the senior QA coordinator once escalated)",
)
async def qc_decision(
    rma_id: RmaId,
    body: QcDecisionBody,
    principal: QcDecider,
    client: TemporalClient,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> ReturnState:
    decision = QcDecisionInput(**body.model_dump(), actor=principal.actor, role=principal.role)
    update_id = f"{principal.actor}/{idempotency_key}" if idempotency_key else None
    return await _call(rma_id, returns.decide_qc(client, rma_id, decision, update_id=update_id))


@router.post(
    "/{rma_id}/finance-approval",
    response_model=ReturnState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Finance's second approval of a refund above the threshold (never the requester)",
)
async def finance_approval(
    rma_id: RmaId,
    body: FinanceApprovalBody,
    principal: Finance,
    client: TemporalClient,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> ReturnState:
    approval = FinanceApprovalInput(
        approved=body.approved, note=body.note, actor=principal.actor, role=principal.role
    )
    update_id = f"{principal.actor}/{idempotency_key}" if idempotency_key else None
    return await _call(
        rma_id, returns.approve_refund(client, rma_id, approval, update_id=update_id)
    )


@router.post(
    "/{rma_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReturnState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="The customer cancels before the parcel ships",
)
async def cancel_return(
    rma_id: RmaId, body: CancelBody, principal: Relay, client: TemporalClient, pool: DbPool
) -> ReturnState:
    request = CancelReturnRequest(
        event_id=body.event_id, reason=body.reason, requested_by=principal.actor
    )
    # Issue 21: the customer's words go to the personal-data store; the
    # return gets their subject id.
    await _call(rma_id, returns.cancel(client, rma_id, request, db=pool))
    state = await _call(rma_id, returns.get_status(client, rma_id))
    return await returns.with_cancel_reason(pool, state)


@router.post(
    "/{rma_id}/customer-choice",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReturnState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Exchange out of stock: the customer takes a refund or waits",
)
async def customer_choice(
    rma_id: RmaId, body: CustomerChoiceInput, principal: Relay, client: TemporalClient
) -> ReturnState:
    await _call(rma_id, returns.customer_choice(client, rma_id, body))
    return await _call(rma_id, returns.get_status(client, rma_id))
