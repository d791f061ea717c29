"""Carrier webhooks, shipments, failed deliveries and carrier claims.

- `POST /v1/webhooks/carrier`: Steward's own tracking-event format (API key
  of a system or ops).
- `POST /v1/webhooks/carrier/easypost`: EasyPost tracker events, verified by
  their `X-Hmac-Signature` (no API key: EasyPost cannot send one); the secret
  is `Settings.easypost_webhook_secret` (`STEWARD_EASYPOST_WEBHOOK_SECRET`).
- Coordinators read and decide failed deliveries; upstream systems relay the
  customer's answer, the warehouse's receipt and the carrier's claim outcome.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import Field
from temporalio.client import Client

from clients import carrier_claim, carrier_events, failed_delivery
from clients.errors import CaseNotFound, CaseRefused, CaseUnavailable
from domain.audit import CaseRow
from domain.carrier_events import (
    EASYPOST_SIGNATURE_HEADER,
    CarrierEvent,
    EasyPostFormatError,
    SignatureError,
    parse_easypost_event,
    verify_easypost_signature,
)
from domain.claims import CarrierClaimState, ClaimOutcome
from domain.common import BusinessKey, Role, StewardModel
from domain.deliveries import (
    CustomerReply,
    DeliveryDecideInput,
    DeliveryDecision,
    FailedDeliveryState,
    ParcelReceived,
    ServiceLevel,
    ShipmentRecord,
)
from domain.ids import CARRIER_CLAIM, FAILED_DELIVERY
from domain.orders import Address
from starters.api.routes_common import AppSettings, DbPool, TemporalClient, error_responses
from starters.auth import Principal, authenticate, require_roles
from store import cases as case_store
from store import deliveries as delivery_store

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["deliveries and carrier claims"])

Upstream = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS))]
Decider = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER))]
Relay = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS, Role.COORDINATOR))]
Reader = Annotated[Principal, Depends(authenticate)]
ShipmentId = Annotated[BusinessKey, Path(description="Steward's shipment id", examples=["SH-1001"])]
CarrierCode = Annotated[BusinessKey, Path(examples=["ups"])]
TrackingNumber = Annotated[BusinessKey, Path(examples=["1Z999AA10123456784"])]


class IngestResponse(StewardModel):
    event_id: str
    shipment_id: str | None = None
    duplicate: bool = False
    applied: bool = False
    route: str
    workflow_id: str | None = None


class RegisterShipmentResponse(StewardModel):
    shipment_id: str
    registered: bool = Field(description="False when it was already registered")


class DeliveryDecisionBody(StewardModel):
    """A coordinator's decision; who decides comes from the API key."""

    decision: DeliveryDecision
    address: Address | None = None
    pickup_point_id: str | None = Field(default=None, max_length=64)
    service_level: ServiceLevel = ServiceLevel.STANDARD
    note: str = Field(default="", max_length=2000)


class SweepResponse(StewardModel):
    claims_opened: list[str]


def _field_error(
    message: str, status_code: int = status.HTTP_422_UNPROCESSABLE_CONTENT
) -> JSONResponse:
    field, sep, reason = message.partition(": ")
    detail = [{"field": field, "reason": reason}] if sep and " " not in field else []
    return JSONResponse(
        {
            "message": f"{message}; nothing was started or changed",
            "detail": detail or message,
        },
        status_code=status_code,
    )


async def _ingest(
    client: Client, pool: asyncpg.Pool, event: CarrierEvent, task_queue: str
) -> IngestResponse | JSONResponse:
    try:
        result = await carrier_events.ingest_event(client, pool, event, task_queue)
    except carrier_events.UnknownShipment as unknown:
        log.info("carrier_event_unknown_shipment", event_id=event.event_id)
        return _field_error(str(unknown))
    return IngestResponse(
        event_id=result.event_id,
        shipment_id=result.shipment_id,
        duplicate=result.duplicate,
        applied=result.applied,
        route=result.route.value,
        workflow_id=result.workflow_id,
    )


# ---------------------------------------------------------------- webhooks


@router.post(
    "/webhooks/carrier",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestResponse,
    responses=error_responses(401, 403, 422, 503),
    summary="A tracking event in Steward's format; repeats change nothing",
)
async def carrier_webhook(
    event: CarrierEvent,
    principal: Upstream,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
) -> IngestResponse | JSONResponse:
    return await _ingest(client, pool, event, settings.task_queue)


@router.post(
    "/webhooks/carrier/easypost",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestResponse,
    responses=error_responses(422, 503),
    summary="An EasyPost tracker event, verified by its X-Hmac-Signature",
)
async def easypost_webhook(
    request: Request,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
    signature: Annotated[str | None, Header(alias=EASYPOST_SIGNATURE_HEADER)] = None,
) -> IngestResponse | JSONResponse:
    body = await request.body()
    try:
        verify_easypost_signature(body, signature, settings.easypost_webhook_secret)
    except SignatureError as refused:
        log.warning("easypost_signature_refused", reason=str(refused))
        return JSONResponse({"detail": str(refused)}, status_code=status.HTTP_401_UNAUTHORIZED)
    try:
        payload = json.loads(body)
        event = parse_easypost_event(payload)
    except json.JSONDecodeError:
        return _field_error("body: not JSON")
    except EasyPostFormatError as invalid:
        return _field_error(str(invalid))
    if event is None:
        # Not a tracker event, or a status Steward does not act on: acknowledged,
        # so EasyPost does not retry it.
        event_id = payload.get("id", "") if isinstance(payload, dict) else ""
        return IngestResponse(event_id=str(event_id), route="ignored")
    return await _ingest(client, pool, event, settings.task_queue)


# --------------------------------------------------------------- shipments


@router.post(
    "/shipments",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisterShipmentResponse,
    responses=error_responses(401, 403, 409, 422),
    summary="Register a parcel handed to the carrier (with its order)",
)
async def register_shipment(
    record: ShipmentRecord, principal: Upstream, pool: DbPool
) -> RegisterShipmentResponse:
    try:
        registered = await carrier_events.register_shipment(pool, record)
    except delivery_store.ShipmentConflictError as conflict:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(conflict)) from None
    return RegisterShipmentResponse(shipment_id=record.shipment_id, registered=registered)


@router.post(
    "/carrier/sweep",
    response_model=SweepResponse,
    responses=error_responses(401, 403, 422),
    summary="Open lost-parcel claims for shipments with no scan past their expected delivery",
)
async def sweep(
    principal: Upstream,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
    silence_days: Annotated[int, Query(ge=1, le=60)] = carrier_events.DEFAULT_SILENCE.days,
) -> SweepResponse:
    results = await carrier_events.sweep_silent_shipments(
        client,
        pool,
        settings.task_queue,
        now=datetime.now(UTC),
        silence=timedelta(days=silence_days),
    )
    return SweepResponse(claims_opened=[r.workflow_id for r in results if r.workflow_id])


# ------------------------------------------------------- failed deliveries


def _not_found(err: Exception) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err))


async def _call(coro: Any) -> Any:
    try:
        return await coro
    except CaseNotFound as err:
        raise _not_found(err) from None
    except CaseRefused as err:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=err.message) from None
    except CaseUnavailable as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(err)) from None


@router.get(
    "/deliveries",
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
    "/deliveries/{shipment_id}",
    response_model=FailedDeliveryState,
    responses=error_responses(401, 404, 503),
    summary="A failed delivery's current state",
)
async def get_delivery(
    shipment_id: ShipmentId, principal: Reader, client: TemporalClient
) -> FailedDeliveryState:
    state: FailedDeliveryState = await _call(failed_delivery.get_delivery(client, shipment_id))
    return state


@router.post(
    "/deliveries/{shipment_id}/decision",
    response_model=FailedDeliveryState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Reship (address, service level) or return to stock and refund",
)
async def decide_delivery(
    shipment_id: ShipmentId,
    body: DeliveryDecisionBody,
    principal: Decider,
    client: TemporalClient,
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
    state: FailedDeliveryState = await _call(
        failed_delivery.decide_delivery(client, shipment_id, decision, update_id=update_id)
    )
    log.info("failed_delivery_decided", shipment_id=shipment_id, decision=body.decision.value)
    return state


@router.post(
    "/deliveries/{shipment_id}/customer-reply",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="The customer's answer to the delivery options",
)
async def customer_reply(
    shipment_id: ShipmentId, body: CustomerReply, principal: Relay, client: TemporalClient
) -> dict[str, str]:
    await _call(failed_delivery.relay_customer_reply(client, shipment_id, body))
    return {"status": "accepted", "event_id": body.event_id}


@router.post(
    "/deliveries/{shipment_id}/parcel-received",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="The warehouse received the returned parcel",
)
async def parcel_received(
    shipment_id: ShipmentId, body: ParcelReceived, principal: Upstream, client: TemporalClient
) -> dict[str, str]:
    await _call(failed_delivery.relay_parcel_received(client, shipment_id, body))
    return {"status": "accepted", "event_id": body.event_id}


# ------------------------------------------------------------------ claims


@router.get(
    "/claims",
    response_model=list[CaseRow],
    responses=error_responses(401, 422),
    summary="Carrier claims, most recently changed first",
)
async def list_claims(
    principal: Reader,
    pool: DbPool,
    status_filter: Annotated[str | None, Query(alias="status", max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Sequence[CaseRow]:
    return await case_store.list_cases(pool, CARRIER_CLAIM, status_filter, limit)


@router.get(
    "/claims/{carrier}/{tracking_number}",
    response_model=CarrierClaimState,
    responses=error_responses(401, 404, 503),
    summary="A carrier claim's current state",
)
async def get_claim(
    carrier: CarrierCode, tracking_number: TrackingNumber, principal: Reader, client: TemporalClient
) -> CarrierClaimState:
    state: CarrierClaimState = await _call(
        carrier_claim.get_claim(client, carrier.lower(), tracking_number)
    )
    return state


@router.post(
    "/claims/{carrier}/{tracking_number}/outcome",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="The carrier's answer to a filed claim",
)
async def claim_outcome(
    carrier: CarrierCode,
    tracking_number: TrackingNumber,
    body: ClaimOutcome,
    principal: Upstream,
    client: TemporalClient,
) -> dict[str, str]:
    await _call(carrier_claim.relay_claim_outcome(client, carrier.lower(), tracking_number, body))
    return {"status": "accepted", "event_id": body.event_id}


__all__ = ["router"]
