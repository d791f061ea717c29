"""Failed deliveries over HTTP: coordinators list, read and decide them;
upstream systems relay the customer's answer and the warehouse's receipt of
the returned parcel. A failed delivery starts from a carrier event
(routes_carrier_events.py), never from this router.

Canonical prefix `/v1/failed-deliveries`; `/v1/deliveries`, its first name,
is still served (hidden from the schema) for integrations written against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import Field

from clients import failed_delivery
from domain.audit import CaseRow
from domain.common import BusinessKey, Role, StewardModel
from domain.deliveries import (
    CustomerReply,
    DeliveryDecideInput,
    DeliveryDecision,
    FailedDeliveryState,
    ParcelReceived,
    ServiceLevel,
)
from domain.ids import FAILED_DELIVERY
from domain.orders import Address
from starters.api.routes_common import DbPool, TemporalClient, case_call, error_responses
from starters.auth import Principal, authenticate, require_roles
from store import cases as case_store

log = structlog.get_logger(__name__)

PREFIX = "/v1/failed-deliveries"
DEPRECATED_PREFIXES = ("/v1/deliveries",)

router = APIRouter(tags=["failed deliveries"])

Upstream = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS))]
Decider = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER))]
Relay = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS, Role.COORDINATOR))]
Reader = Annotated[Principal, Depends(authenticate)]
ShipmentId = Annotated[BusinessKey, Path(description="Steward's shipment id", examples=["SH-1001"])]


class DeliveryDecisionBody(StewardModel):
    """A coordinator's decision; who decides comes from the API key."""

    decision: DeliveryDecision
    address: Address | None = None
    pickup_point_id: str | None = Field(default=None, max_length=64)
    service_level: ServiceLevel = ServiceLevel.STANDARD
    note: str = Field(default="", max_length=2000)


@router.get(
    "",
    response_model=list[CaseRow],
    responses=error_responses(401, 422),
    summary="Failed deliveries, most recently changed first",
)
async def list_deliveries(
    principal: Reader,
    pool: DbPool,
    status_filter: Annotated[str | None, Query(alias="status", max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Sequence[CaseRow]:
    return await case_store.list_cases(pool, FAILED_DELIVERY, status_filter, limit)


@router.get(
    "/{shipment_id}",
    response_model=FailedDeliveryState,
    responses=error_responses(401, 404, 503),
    summary="A failed delivery's current state",
)
async def get_delivery(
    shipment_id: ShipmentId, principal: Reader, client: TemporalClient, pool: DbPool
) -> FailedDeliveryState:
    state: FailedDeliveryState = await case_call(failed_delivery.get_delivery(client, shipment_id))
    # The customer's words are read back from the personal-data store (issue 21).
    return await failed_delivery.with_reply_message(pool, state)


@router.post(
    "/{shipment_id}/decision",
    response_model=FailedDeliveryState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Reship (address, service level) or return to stock and refund",
)
async def decide_delivery(
    shipment_id: ShipmentId,
    body: DeliveryDecisionBody,
    principal: Decider,
    client: TemporalClient,
    pool: DbPool,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> FailedDeliveryState:
    decision = DeliveryDecideInput(
        decision=body.decision,
        address=body.address,
        pickup_point_id=body.pickup_point_id,
        service_level=body.service_level,
        note=body.note,
        actor=principal.actor,
        role=principal.role,
    )
    update_id = f"{principal.actor}/{idempotency_key}" if idempotency_key else None
    # Issue 21: a reship address goes to the personal-data store; the case
    # gets its reference.
    state: FailedDeliveryState = await case_call(
        failed_delivery.decide_delivery(client, shipment_id, decision, update_id=update_id, db=pool)
    )
    log.info("failed_delivery_decided", shipment_id=shipment_id, decision=body.decision.value)
    # The customer's reply carries their words by subject id (issue 21).
    return await failed_delivery.with_reply_message(pool, state)


@router.post(
    "/{shipment_id}/customer-reply",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="The customer's answer to the delivery options",
)
async def customer_reply(
    shipment_id: ShipmentId,
    body: CustomerReply,
    principal: Relay,
    client: TemporalClient,
    pool: DbPool,
) -> dict[str, str]:
    for field, what in (
        ("message_subject_id", "send the customer's words in message"),
        ("address_ref", "send the customer's new address in address"),
    ):
        if getattr(body, field) is not None:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("body", field), "msg": f"set by Steward: {what}"}]
            )
    # Issue 21: the customer's words and new address go to the personal-data
    # store; the case gets their subject ids.
    await case_call(failed_delivery.relay_customer_reply(client, shipment_id, body, db=pool))
    return {"status": "accepted", "event_id": body.event_id}


@router.post(
    "/{shipment_id}/parcel-received",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="The warehouse received the returned parcel",
)
async def parcel_received(
    shipment_id: ShipmentId, body: ParcelReceived, principal: Upstream, client: TemporalClient
) -> dict[str, str]:
    await case_call(failed_delivery.relay_parcel_received(client, shipment_id, body))
    return {"status": "accepted", "event_id": body.event_id}


__all__ = ["DEPRECATED_PREFIXES", "PREFIX", "router"]
