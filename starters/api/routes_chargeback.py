"""Chargeback endpoints: the list by deadline, one case, contest and accept,
and the link of a dispute Steward could not resolve to its order.

Canonical prefix `/v1/chargebacks`; `/v1/disputes`, the first name, is still
served (hidden from the schema) for integrations written against it. The
provider webhooks that open chargebacks are in routes_webhooks.py.

Who answers comes from the API key, never from the body. Refusals by the
workflow's validator (deadline passed, evidence missing, wrong role) are 409
with the validator's message, which names the field and the reason.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, status
from pydantic import Field

from clients import chargeback
from domain.chargeback import (
    ChargebackState,
    DisputeProvider,
    EvidenceItem,
    LinkOrderInput,
    RespondInput,
    ResponseAction,
)
from domain.common import BusinessKey, Role, StewardModel
from starters.api.routes_common import DbPool, TemporalClient, error_responses
from starters.auth import Principal, authenticate, require_roles
from store import disputes as dispute_store
from store.disputes import DisputeRow

log = structlog.get_logger(__name__)

PREFIX = "/v1/chargebacks"
# The first name, still served (hidden from the schema) for integrations.
DEPRECATED_PREFIXES = ("/v1/disputes",)

router = APIRouter(tags=["chargebacks"])

Reader = Annotated[Principal, Depends(authenticate)]
Responder = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER))]
DisputeId = Annotated[BusinessKey, Path(description="The provider's dispute id", examples=["dp_1"])]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Send the same key again when retrying: the answer applies once",
    ),
]


class ContestBody(StewardModel):
    note: str = Field(min_length=1, max_length=4000, description="Sent to the provider")
    extra_evidence: list[EvidenceItem] = Field(default_factory=list, max_length=20)
    override_missing_evidence: bool = Field(
        default=False, description="Managers only: contest although required evidence is missing"
    )


class AcceptBody(StewardModel):
    note: str = Field(default="", max_length=4000)


class LinkBody(StewardModel):
    order_id: BusinessKey = Field(description="An order Steward knows", examples=["FR-100234"])
    note: str = Field(default="", max_length=1000, description="How the order was found")


def _not_found(exc: Exception) -> HTTPException:
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=str(exc))


@router.get(
    "",
    response_model=list[DisputeRow],
    responses=error_responses(401, 422),
    summary="Disputes, soonest provider deadline first",
)
async def list_disputes(
    principal: Reader,
    pool: DbPool,
    open_only: Annotated[bool, Query(alias="open", description="Only open disputes")] = True,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DisputeRow]:
    return await dispute_store.list_disputes(
        pool, open_only=open_only, order_id=order_id, limit=limit
    )


@router.get(
    "/{provider}/{dispute_id}",
    response_model=ChargebackState,
    responses=error_responses(401, 404, 422, 503),
    summary="One dispute: stage, status, deadlines, evidence and what is missing",
)
async def show_dispute(
    provider: DisputeProvider, dispute_id: DisputeId, principal: Reader, client: TemporalClient
) -> ChargebackState:
    try:
        return await chargeback.get_status(client, provider.value, dispute_id)
    except chargeback.DisputeNotFound as exc:
        raise _not_found(exc) from None
    except chargeback.DisputeUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None


async def _respond(
    client: TemporalClient,
    provider: DisputeProvider,
    dispute_id: str,
    answer: RespondInput,
    principal: Principal,
    idempotency_key: str | None,
) -> ChargebackState:
    update_id = f"{principal.actor}/{idempotency_key}" if idempotency_key else None
    try:
        state = await chargeback.respond(
            client, provider.value, dispute_id, answer, update_id=update_id
        )
    except chargeback.ResponseRefused as exc:
        log.info("dispute_response_refused", dispute_id=dispute_id, reason=exc.message)
        raise HTTPException(status.HTTP_409_CONFLICT, detail=exc.message) from None
    log.info(
        "dispute_responded",
        provider=provider.value,
        dispute_id=dispute_id,
        action=answer.action.value,
        status=state.status.value,
    )
    return state


@router.post(
    "/{provider}/{dispute_id}/contest",
    response_model=ChargebackState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Contest with a note and extra evidence (coordinator or manager)",
)
async def contest_dispute(
    provider: DisputeProvider,
    dispute_id: DisputeId,
    body: ContestBody,
    principal: Responder,
    client: TemporalClient,
    idempotency_key: IdempotencyKey = None,
) -> ChargebackState:
    answer = RespondInput(
        action=ResponseAction.CONTEST,
        note=body.note,
        extra_evidence=body.extra_evidence,
        override_missing_evidence=body.override_missing_evidence,
        actor=principal.actor,
        role=principal.role,
    )
    return await _respond(client, provider, dispute_id, answer, principal, idempotency_key)


@router.post(
    "/{provider}/{dispute_id}/accept",
    response_model=ChargebackState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Accept the dispute: the money goes back to the cardholder",
)
async def accept_dispute(
    provider: DisputeProvider,
    dispute_id: DisputeId,
    principal: Responder,
    client: TemporalClient,
    body: AcceptBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> ChargebackState:
    answer = RespondInput(
        action=ResponseAction.ACCEPT,
        note=body.note if body else "",
        actor=principal.actor,
        role=principal.role,
    )
    return await _respond(client, provider, dispute_id, answer, principal, idempotency_key)


@router.post(
    "/{provider}/{dispute_id}/link",
    response_model=ChargebackState,
    responses=error_responses(401, 403, 409, 422, 503),
    summary="Link a dispute Steward could not resolve to its order (coordinator or manager)",
)
async def link_dispute(
    provider: DisputeProvider,
    dispute_id: DisputeId,
    body: LinkBody,
    principal: Responder,
    client: TemporalClient,
    pool: DbPool,
    idempotency_key: IdempotencyKey = None,
) -> ChargebackState:
    link = LinkOrderInput(
        order_id=body.order_id, note=body.note, actor=principal.actor, role=principal.role
    )
    update_id = f"{principal.actor}/{idempotency_key}" if idempotency_key else None
    try:
        state = await chargeback.link_order(
            client, pool, provider.value, dispute_id, link, update_id=update_id
        )
    except chargeback.UnknownOrder as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=exc.message) from None
    except chargeback.LinkRefused as exc:
        log.info("dispute_link_refused", dispute_id=dispute_id, reason=exc.message)
        raise HTTPException(status.HTTP_409_CONFLICT, detail=exc.message) from None
    log.info(
        "dispute_linked",
        provider=provider.value,
        dispute_id=dispute_id,
        order_id=body.order_id,
        actor=principal.actor,
    )
    return state
