"""The carrier event ingest path: register shipments, record each carrier
event once, route it, and start or signal the process it belongs to (a failed
delivery, a carrier claim, or the process already following the parcel); the
silence sweep that opens a lost-parcel claim for a parcel with no scan.

Used by the API's carrier webhooks and `POST /v1/carrier/sweep`, the CLI, the
simulator, and the sweep activity the `carrier-silence-sweep` schedule runs
(activities/carrier_sweep.py). It records events in the store and starts
workflows by their registered names (clients/failed_delivery.py,
clients/carrier_claim.py), so it never loads workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog
from temporalio.client import Client

from clients.calls import signal_if_running
from clients.carrier_claim import start_claim
from clients.failed_delivery import start_failed_delivery
from clients.fulfilment import relay_warehouse_event
from domain.carrier_events import (
    CarrierEvent,
    EventSource,
    Route,
    TrackingStatus,
    route_event,
)
from domain.carrier_sweep import DEFAULT_SILENCE as SWEEP_DEFAULT_SILENCE
from domain.claims import CarrierClaimContract
from domain.deliveries import FailedDeliveryContract, ShipmentRecord
from domain.fulfilment import WarehouseEvent, WarehouseEventKind
from domain.ids import carrier_claim_id
from domain.outcomes import OrderOutcome, OutcomeWrite, outcome_key
from store import deliveries as delivery_store
from store import outcomes as outcome_store

log = structlog.get_logger(__name__)

# No scan for this long after the expected delivery: the parcel is presumed lost.
DEFAULT_SILENCE = SWEEP_DEFAULT_SILENCE
# The signal a process following a parcel (a failed delivery, or a claim its
# shipment is tracked by) takes carrier events under; one name for both, which
# tests/unit/test_contracts.py checks.
TRACKING_SIGNAL = FailedDeliveryContract.SIGNAL_CARRIER_EVENT


class UnknownShipment(LookupError):
    """No registered shipment matches the event; the message names the field."""


@dataclass(frozen=True)
class IngestResult:
    event_id: str
    shipment_id: str
    duplicate: bool
    # False: an older event than the shipment's latest (it changed nothing).
    applied: bool
    route: Route
    workflow_id: str | None


# ---------------------------------------------------------------- shipments


async def register_shipment(pool: asyncpg.Pool, record: ShipmentRecord) -> bool:
    """True when registered now, False when it already was (a repeat)."""
    return await delivery_store.register_shipment(pool, record)


async def _find_shipment(pool: asyncpg.Pool, event: CarrierEvent) -> delivery_store.ShipmentRow:
    if event.shipment_id:
        row = await delivery_store.get_shipment(pool, event.shipment_id)
        if row is None:
            raise UnknownShipment(f"shipment_id: no shipment {event.shipment_id} is registered")
        if (row.record.carrier, row.record.tracking_number) != (
            event.carrier,
            event.tracking_number,
        ):
            raise UnknownShipment(
                f"tracking_number: shipment {event.shipment_id} is "
                f"{row.record.carrier} {row.record.tracking_number}, not "
                f"{event.carrier} {event.tracking_number}"
            )
        return row
    row = await delivery_store.find_by_tracking(pool, event.carrier, event.tracking_number)
    if row is None:
        raise UnknownShipment(
            f"tracking_number: no shipment is registered for {event.carrier} "
            f"{event.tracking_number}"
        )
    return row


# ----------------------------------------------------------- carrier events


async def ingest_event(
    client: Client, pool: asyncpg.Pool, event: CarrierEvent, task_queue: str
) -> IngestResult:
    """Record a carrier event once and send it where it belongs.

    A repeat of a routed event changes nothing. An event older than the
    shipment's latest never opens a case (its news is stale); a process that
    follows the shipment still gets it and orders it by carrier time itself.
    """
    row = await _find_shipment(pool, event)
    shipment = row.record
    receipt = await delivery_store.record_event(pool, event, shipment.shipment_id)
    if receipt is delivery_store.EventReceipt.DUPLICATE:
        return IngestResult(
            event.event_id, shipment.shipment_id, True, False, Route.RECORD_ONLY, None
        )
    applied = await delivery_store.apply_status(
        pool, shipment.shipment_id, event.status, event.occurred_at
    )
    if receipt is delivery_store.EventReceipt.RETRY and not applied:
        # Its first delivery updated the shipment, then routing failed (Temporal
        # unreachable): it is still the latest news if the shipment says so.
        applied = row.status == event.status.value and row.last_event_at == event.occurred_at
    if event.status is TrackingStatus.DELIVERED:
        await _record_delivered(pool, shipment, event)
    if applied:
        await _tell_fulfilment(client, shipment, event)
    route = route_event(event.status, row.tracked_by)
    if not applied and route in (Route.FAILED_DELIVERY, Route.CARRIER_CLAIM):
        route = Route.RECORD_ONLY
    workflow_id: str | None = None
    if route is Route.FAILED_DELIVERY:
        # Issue 21: the workflow gets the record pseudonymised and the
        # shipment's subject id.
        workflow_id = await start_failed_delivery(
            client, shipment, event, task_queue, subject_id=row.subject_id
        )
    elif route is Route.CARRIER_CLAIM:
        workflow_id = await start_claim(
            client,
            shipment,
            event,
            task_queue,
            registered_at=row.created_at,
            subject_id=row.subject_id,
        )
    elif route is Route.TRACKING_WORKFLOW and row.tracked_by:
        workflow_id = row.tracked_by
        if not await signal_if_running(client, workflow_id, TRACKING_SIGNAL, event):
            # The failed delivery that followed the parcel has closed; a claim
            # it opened for this parcel still waits (weeks) and must hear of a
            # late delivery. It de-duplicates by event id.
            claim_id = carrier_claim_id(shipment.carrier, shipment.tracking_number)
            if claim_id != workflow_id and await signal_if_running(
                client, claim_id, CarrierClaimContract.SIGNAL_CARRIER_EVENT, event
            ):
                workflow_id = claim_id
            else:
                route, workflow_id = Route.RECORD_ONLY, None
    if workflow_id is not None:
        await delivery_store.set_tracked_by(pool, shipment.shipment_id, workflow_id)
    await delivery_store.mark_routed(pool, event, workflow_id or route.value)
    log.info(
        "carrier_event_ingested",
        event_id=event.event_id,
        shipment_id=shipment.shipment_id,
        status=event.status.value,
        route=route.value,
        applied=applied,
        workflow_id=workflow_id,
    )
    return IngestResult(event.event_id, shipment.shipment_id, False, applied, route, workflow_id)


# Carrier scans close the fulfilment's loop (issue 16): a first scan says the
# parcel left with the carrier, delivered says delivered.
_FULFILMENT_EVENT = {
    TrackingStatus.IN_TRANSIT: WarehouseEventKind.HANDED_TO_CARRIER,
    TrackingStatus.OUT_FOR_DELIVERY: WarehouseEventKind.HANDED_TO_CARRIER,
    TrackingStatus.DELIVERED: WarehouseEventKind.DELIVERED,
}


async def _tell_fulfilment(client: Client, shipment: ShipmentRecord, event: CarrierEvent) -> None:
    kind = _FULFILMENT_EVENT.get(event.status)
    if kind is None or shipment.attempt != 1:
        return
    # The fulfilment orders events by time and drops stale ones and repeats.
    await relay_warehouse_event(
        client,
        WarehouseEvent(
            event_id=f"carrier:{event.event_id}"[:200],
            order_id=shipment.order.order_id,
            kind=kind,
            occurred_at=event.occurred_at,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
        ),
    )


async def _record_delivered(
    pool: asyncpg.Pool, shipment: ShipmentRecord, event: CarrierEvent
) -> None:
    """The order's `delivered` outcome and the customer's completed orders:
    once per order (keyed by the order, not the parcel or the event), however
    many parcels, scans or redeliveries of the webhook say so."""
    order_id = shipment.order.order_id
    await outcome_store.record(
        pool,
        OutcomeWrite(
            key=outcome_key(f"order:{order_id}", OrderOutcome.DELIVERED),
            order_id=order_id,
            outcome=OrderOutcome.DELIVERED,
            process="carrier_events",
            occurred_at=event.occurred_at,
        ),
    )


async def sweep_silent_shipments(
    client: Client,
    pool: asyncpg.Pool,
    task_queue: str,
    *,
    now: datetime,
    silence: timedelta = DEFAULT_SILENCE,
) -> list[IngestResult]:
    """Open a lost-parcel claim for every shipment with no scan for `silence`
    after its expected delivery. Safe to run again: the synthetic event id is
    per shipment, so a second sweep finds it a duplicate."""
    results: list[IngestResult] = []
    for row in await delivery_store.list_silent(pool, now, silence):
        shipment = row.record
        event = CarrierEvent(
            event_id=f"silence:{shipment.shipment_id}",
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            shipment_id=shipment.shipment_id,
            status=TrackingStatus.LOST,
            exception_code=f"no_scan_{silence.days}d",
            occurred_at=now,
            source=EventSource.STEWARD,
        )
        results.append(await ingest_event(client, pool, event, task_queue))
    return results
