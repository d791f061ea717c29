"""Order review endpoints: start (upstream order management), read, decide
(coordinators, managers), cancel and customer answers (upstream systems)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Path, status
from fastapi.exceptions import RequestValidationError
from pydantic import Field, field_validator

from clients import order_review
from domain.common import (
    BusinessKey,
    NonEmptyStr,
    Role,
    StewardModel,
    market_currency_error,
)
from domain.orders import Order
from domain.review import (
    CancelRequest,
    CustomerAnswer,
    DecideInput,
    DecisionReason,
    OrderReviewState,
    ReviewDecision,
)
from starters.api.routes_common import AppSettings, DbPool, TemporalClient, error_responses
from starters.auth import Principal, authenticate, require_roles
from store.personal_data import SubjectErased

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/order-reviews", tags=["order reviews"])

# Reason codes Steward itself writes; a person may not claim them.
RESERVED_REASONS = frozenset({DecisionReason.POLICY_DEFAULT, DecisionReason.AUTOMATIC})
HUMAN_REASONS: tuple[DecisionReason, ...] = tuple(
    r for r in DecisionReason if r not in RESERVED_REASONS
)

OrderId = Annotated[BusinessKey, Path(description="The upstream order id", examples=["FR-100234"])]

Starter = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS))]
Decider = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER))]
Canceller = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS))]
AnswerRelay = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS, Role.COORDINATOR))]
Reader = Annotated[Principal, Depends(authenticate)]


class StartReviewResponse(StewardModel):
    workflow_id: str
    order_id: str
    started: bool = Field(description="False when a review for this order already existed")


class DecisionBody(StewardModel):
    """A decision. Who decides comes from the API key, never from the body."""

    decision: ReviewDecision
    reason_code: DecisionReason
    note: str = Field(default="", max_length=2000)

    @field_validator("reason_code")
    @classmethod
    def _not_reserved(cls, value: DecisionReason) -> DecisionReason:
        if value in RESERVED_REASONS:
            valid = ", ".join(r.value for r in HUMAN_REASONS)
            raise ValueError(f"{value.value} is reserved for Steward (use one of: {valid})")
        return value


class CancelBody(StewardModel):
    event_id: NonEmptyStr = Field(description="The upstream event id; repeats are ignored")
    reason: NonEmptyStr


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StartReviewResponse,
    responses=error_responses(401, 403, 409, 422, 503),
    summary="Start the review of an order (idempotent per order id)",
)
async def start_order_review(
    order: Order,
    principal: Starter,
    client: TemporalClient,
    settings: AppSettings,
    pool: DbPool,
) -> StartReviewResponse:
    # Market policy, at the edge only: an order a running review already holds
    # must keep deserialising whatever the policy becomes.
    if (error := market_currency_error(order.market, order.currency)) is not None:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "currency"), "msg": error}]
        )
    # Issue 21: the order's personal values go to the personal-data store;
    # the review (Temporal) gets the order pseudonymised and the subject id.
    try:
        result = await order_review.start_review(client, order, settings.task_queue, db=pool)
    except SubjectErased:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"order_id: the personal data of order {order.order_id} was erased "
            "by a privacy request; it cannot be reviewed again",
        ) from None
    log.info(
        "order_review_start",
        order_id=result.order_id,
        workflow_id=result.workflow_id,
        started=result.started,
    )
    return StartReviewResponse(
        workflow_id=result.workflow_id, order_id=result.order_id, started=result.started
    )


@router.get(
    "/{order_id}",
    response_model=OrderReviewState,
    responses=error_responses(401, 404, 503),
    summary="The review's current state",
)
async def get_order_review(
    order_id: OrderId, principal: Reader, client: TemporalClient, pool: DbPool
) -> OrderReviewState:
    # The customer's answers carry their words by subject id (issue 21).
    return await order_review.with_messages(pool, await order_review.get_status(client, order_id))


@router.post(
    "/{order_id}/decision",
    response_model=OrderReviewState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Approve, decline or ask the customer (coordinator or manager)",
)
async def decide_order_review(
    order_id: OrderId,
    body: DecisionBody,
    principal: Decider,
    client: TemporalClient,
    pool: DbPool,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Send the same key again when retrying: the decision applies once",
        ),
    ] = None,
) -> OrderReviewState:
    decision = DecideInput(
        decision=body.decision,
        reason_code=body.reason_code,
        note=body.note,
        actor=principal.actor,
        role=principal.role,
    )
    # Scoped by actor so two people's keys can never collide on one update id.
    update_id = f"{principal.actor}/{idempotency_key}" if idempotency_key else None
    state = await order_review.decide(client, order_id, decision, update_id=update_id)
    log.info(
        "order_review_decided",
        order_id=order_id,
        decision=body.decision.value,
        reason_code=body.reason_code.value,
        status=state.status.value,
    )
    # The customer's answers carry their words by subject id (issue 21).
    return await order_review.with_messages(pool, state)


@router.post(
    "/{order_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderReviewState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Upstream cancellation; voids the authorisation if nothing was captured",
)
async def cancel_order_review(
    order_id: OrderId,
    body: CancelBody,
    principal: Canceller,
    client: TemporalClient,
    pool: DbPool,
) -> OrderReviewState:
    request = CancelRequest(
        event_id=body.event_id, reason=body.reason, requested_by=principal.actor
    )
    await order_review.cancel(client, order_id, request)
    log.info("order_review_cancel_requested", order_id=order_id, event_id=body.event_id)
    # A signal is asynchronous: this is the state as the workflow has it now;
    # poll GET /v1/order-reviews/{order_id} for the outcome.
    return await order_review.with_messages(pool, await order_review.get_status(client, order_id))


@router.post(
    "/{order_id}/customer-answer",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderReviewState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="The customer's answer to a verification request",
)
async def customer_answer(
    order_id: OrderId,
    body: CustomerAnswer,
    principal: AnswerRelay,
    client: TemporalClient,
    pool: DbPool,
) -> OrderReviewState:
    if body.message_subject_id is not None:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "message_subject_id"),
                    "msg": "set by Steward: send the customer's words in message",
                }
            ]
        )
    # Issue 21: the customer's words go to the personal-data store; the
    # review gets the subject id.
    await order_review.answer_customer(client, order_id, body, db=pool)
    log.info("order_review_customer_answer", order_id=order_id, event_id=body.event_id)
    return await order_review.with_messages(pool, await order_review.get_status(client, order_id))
