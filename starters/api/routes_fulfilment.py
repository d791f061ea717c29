"""Fulfilment over HTTP (issue 16): read a fulfilment, place and release
holds, change the address, arrange a special delivery, decide an outbound QC;
the order status answer; the warehouse's event webhook.

Who acts comes from the API key (the body's `actor` and `role`, if sent, are
replaced by the key's): the workflow's validators check the role per change
(a fraud hold only a manager releases...) and answer 409 with the reason.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Sequence
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import Field

from clients import fulfilment
from clients.errors import CaseClosed
from domain.audit import CaseRow
from domain.common import BusinessKey, Role, StewardModel
from domain.fulfilment import (
    FULFILMENT,
    ChangeAddressInput,
    FulfilmentState,
    FulfilmentView,
    PlaceHoldInput,
    QcDecisionInput,
    ReleaseHoldInput,
    SpecialDeliveryInput,
    WarehouseEvent,
)
from starters.api.routes_common import (
    AppSettings,
    DbPool,
    TemporalClient,
    case_call,
    error_responses,
)
from starters.auth import Principal, authenticate, require_roles
from store import cases as case_store
from store.order_status import OrderStatusView, order_status

log = structlog.get_logger(__name__)

PREFIX = "/v1/fulfilments"

router = APIRouter(tags=["fulfilment"])
orders_router = APIRouter(prefix="/v1/orders", tags=["fulfilment"])
webhook_router = APIRouter(prefix="/v1/webhooks/warehouse", tags=["webhooks"])

Reader = Annotated[Principal, Depends(authenticate)]
# Who may ask for a change; the workflow checks the role per change and reason.
Changer = Annotated[
    Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER, Role.OPS, Role.SYSTEM))
]
Warehouse = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS))]
OrderId = Annotated[BusinessKey, Path(examples=["A1001"])]
Handle = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$", examples=["outbound-qc"])]


class ReleaseBody(StewardModel):
    note: str = Field(default="", max_length=2000)


class WarehouseEventsBody(StewardModel):
    events: list[WarehouseEvent] = Field(min_length=1, max_length=500)


class WarehouseEventsResult(StewardModel):
    received: int
    delivered: int = Field(description="Events handed to a running fulfilment")
    duplicates: int = Field(description="Event ids seen before: recorded, not applied again")
    unrouted: list[str] = Field(
        default_factory=list,
        description="Order ids with no running fulfilment (events recorded only)",
    )


async def _change(call: Awaitable[FulfilmentState]) -> FulfilmentState:
    """case_call, and a closed fulfilment is a conflict (409), not an error."""
    try:
        return await case_call(call)
    except CaseClosed as err:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(err)) from None


async def _webhook_secret(
    settings: AppSettings,
    secret: Annotated[
        str | None,
        Header(alias="X-Steward-Webhook-Secret", description="The shared webhook secret"),
    ] = None,
) -> None:
    expected = settings.webhook_secret
    if not expected:
        return
    if secret is None or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="X-Steward-Webhook-Secret: missing or wrong shared secret; nothing applied",
        )


@router.get(
    "",
    response_model=list[CaseRow],
    responses=error_responses(401, 422),
    summary="Fulfilments, most recently changed first",
)
async def list_fulfilments(
    principal: Reader,
    pool: DbPool,
    status_filter: Annotated[str | None, Query(alias="status", max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Sequence[CaseRow]:
    return await case_store.list_cases(pool, FULFILMENT, status_filter, limit)


@router.get(
    "/{order_id}",
    response_model=FulfilmentView,
    responses=error_responses(401, 404, 503),
    summary="A fulfilment's current state (holds, address changes, QC, parcel) and its address",
)
async def get_fulfilment(
    order_id: OrderId, principal: Reader, client: TemporalClient, pool: DbPool
) -> FulfilmentView:
    state = await case_call(fulfilment.get_fulfilment(client, order_id))
    # The address is read back from the personal-data store (issue 21).
    return await fulfilment.with_address(pool, state)


@router.post(
    "/{order_id}/holds",
    response_model=FulfilmentState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Place a hold: the warehouse does not pick the order while it is active",
)
async def place_hold(
    order_id: OrderId, body: PlaceHoldInput, principal: Changer, client: TemporalClient
) -> FulfilmentState:
    return await _change(fulfilment.place_hold(client, order_id, body, principal))


@router.post(
    "/{order_id}/holds/{handle}/release",
    response_model=FulfilmentState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Release a hold (the role allowed depends on its reason)",
)
async def release_hold(
    order_id: OrderId,
    handle: Handle,
    body: ReleaseBody,
    principal: Changer,
    client: TemporalClient,
) -> FulfilmentState:
    change = ReleaseHoldInput(handle=handle, note=body.note)
    return await _change(fulfilment.release_hold(client, order_id, change, principal))


@router.post(
    "/{order_id}/address",
    response_model=FulfilmentView,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Change the shipping address (before packing; then a carrier intercept)",
)
async def change_address(
    order_id: OrderId,
    body: ChangeAddressInput,
    principal: Changer,
    client: TemporalClient,
    pool: DbPool,
) -> FulfilmentView:
    """Issue 21: the address is kept in the personal-data store and the
    fulfilment gets only its subject id; the answer reads it back."""
    if body.address_subject_id is not None:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "address_subject_id"),
                    "msg": "set by Steward: send the new address in address",
                }
            ]
        )
    try:
        state = await _change(fulfilment.change_address(client, order_id, body, principal, db=pool))
    except HTTPException as err:
        # An address the country's format refuses is bad input, not a conflict.
        if err.status_code == status.HTTP_409_CONFLICT and str(err.detail).startswith("address."):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=err.detail) from None
        raise
    return await fulfilment.with_address(pool, state)


@router.post(
    "/{order_id}/special-delivery",
    response_model=FulfilmentState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Arrange a timed, named-carrier, signature or in-store delivery",
)
async def special_delivery(
    order_id: OrderId, body: SpecialDeliveryInput, principal: Changer, client: TemporalClient
) -> FulfilmentState:
    return await _change(fulfilment.special_delivery(client, order_id, body, principal))


@router.post(
    "/{order_id}/qc-decision",
    response_model=FulfilmentState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Warehouse QA's outbound QC result (or the senior QA coordinator's decision)",
)
async def qc_decision(
    order_id: OrderId, body: QcDecisionInput, principal: Changer, client: TemporalClient
) -> FulfilmentState:
    return await _change(fulfilment.qc_decision(client, order_id, body, principal))


@orders_router.get(
    "/{order_id}/status",
    response_model=OrderStatusView,
    responses=error_responses(401, 404),
    summary="The order status answer: warehouse state with times, holds, parcel, cases",
)
async def get_order_status(order_id: OrderId, principal: Reader, pool: DbPool) -> OrderStatusView:
    view = await order_status(pool, order_id)
    if not view.known:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"order_id: Steward knows no order {order_id}"
        )
    return view


@webhook_router.post(
    "/events",
    response_model=WarehouseEventsResult,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 413, 422, 503),
    dependencies=[Depends(_webhook_secret)],
    summary="The warehouse's (WMS) events: allocated, picking, packing... by event id",
)
async def warehouse_events(
    body: WarehouseEventsBody, principal: Warehouse, client: TemporalClient, pool: DbPool
) -> WarehouseEventsResult:
    delivered = duplicates = 0
    unrouted: list[str] = []
    for event in body.events:
        new, routed = await fulfilment.deliver_warehouse_event(client, pool, event)
        duplicates += int(not new)
        delivered += int(routed)
        if new and not routed and event.order_id not in unrouted:
            unrouted.append(event.order_id)
    log.info(
        "warehouse_events_received",
        received=len(body.events),
        delivered=delivered,
        duplicates=duplicates,
    )
    return WarehouseEventsResult(
        received=len(body.events), delivered=delivered, duplicates=duplicates, unrouted=unrouted
    )


__all__ = ["PREFIX", "orders_router", "router", "webhook_router"]
