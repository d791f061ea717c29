"""Carrier events in: the ingest path (clients/carrier_events.py) over HTTP.

- `POST /v1/webhooks/carrier`: Steward's own tracking-event format (API key
  of a system or ops).
- `POST /v1/webhooks/carrier/easypost`: EasyPost tracker events, verified by
  their `X-Hmac-Signature` (no API key: EasyPost cannot send one); the secret
  is `Settings.easypost_webhook_secret` (`STEWARD_EASYPOST_WEBHOOK_SECRET`).
- `POST /v1/shipments`: register a shipment so its events can be routed.
- `POST /v1/carrier/sweep`: the silence sweep, on demand.

An event opens or feeds a failed delivery or a carrier claim; reading and
deciding those is in routes_failed_delivery.py and routes_carrier_claim.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import asyncpg
import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import Field
from temporalio.client import Client

from clients import carrier_events
from domain.carrier_events import (
    EASYPOST_SIGNATURE_HEADER,
    CarrierEvent,
    EasyPostFormatError,
    SignatureError,
    parse_easypost_event,
    verify_easypost_signature,
)
from domain.common import Role, StewardModel
from domain.deliveries import ShipmentRecord
from starters.api.routes_common import AppSettings, DbPool, TemporalClient, error_responses
from starters.auth import Principal, require_roles
from store import deliveries as delivery_store

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["carrier events"])

Upstream = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS))]


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
    responses=error_responses(401, 422, 503),
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


__all__ = ["router"]
