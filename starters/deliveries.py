"""Typed helpers for failed deliveries and carrier claims, used by the API,
the CLI and the simulator: register shipments, ingest carrier events (route,
de-duplicate, start or signal), decide, relay customer and warehouse events,
read states.

Workflows are addressed by their registered names, as in
starters/order_review.py, so the API process never loads workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.carrier_events import (
    CarrierEvent,
    EventSource,
    Route,
    TrackingStatus,
    route_event,
)
from domain.carrier_sweep import DEFAULT_SILENCE as SWEEP_DEFAULT_SILENCE
from domain.claims import (
    QUERY_CLAIM_STATUS,
    SIGNAL_CLAIM_OUTCOME,
    CarrierClaimInput,
    CarrierClaimState,
    ClaimOutcome,
    ClaimType,
    claim_policy_for,
)
from domain.common import format_amount
from domain.deliveries import (
    QUERY_STATUS,
    SIGNAL_CARRIER_EVENT,
    SIGNAL_CUSTOMER_REPLIED,
    SIGNAL_PARCEL_RECEIVED,
    UPDATE_DECIDE,
    CustomerReply,
    DeliveryDecideInput,
    FailedDeliveryInput,
    FailedDeliveryState,
    ParcelReceived,
    ShipmentRecord,
)
from domain.ids import CARRIER_CLAIM, FAILED_DELIVERY, carrier_claim_id, failed_delivery_id
from starters.case_errors import (
    QUERY_TIMEOUT,
    UPDATE_TIMEOUT,
    CaseNotFound,
    CaseRefused,
    CaseUnavailable,
)
from store import deliveries as delivery_store
from workflows import visibility

log = structlog.get_logger(__name__)

FAILED_DELIVERY_WORKFLOW = "FailedDeliveryWorkflow"
CARRIER_CLAIM_WORKFLOW = "CarrierClaimWorkflow"
# No scan for this long after the expected delivery: the parcel is presumed lost.
DEFAULT_SILENCE = SWEEP_DEFAULT_SILENCE


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
    route = route_event(event.status, row.tracked_by)
    if not applied and route in (Route.FAILED_DELIVERY, Route.CARRIER_CLAIM):
        route = Route.RECORD_ONLY
    workflow_id: str | None = None
    if route is Route.FAILED_DELIVERY:
        workflow_id = await _start_failed_delivery(client, shipment, event, task_queue)
    elif route is Route.CARRIER_CLAIM:
        workflow_id = await _start_claim(client, shipment, event, task_queue)
    elif route is Route.TRACKING_WORKFLOW and row.tracked_by:
        workflow_id = row.tracked_by
        if not await _signal_if_running(client, workflow_id, SIGNAL_CARRIER_EVENT, event):
            # The failed delivery that followed the parcel has closed; a claim
            # it opened for this parcel still waits (weeks) and must hear of a
            # late delivery. It de-duplicates by event id.
            claim_id = carrier_claim_id(shipment.carrier, shipment.tracking_number)
            if claim_id != workflow_id and await _signal_if_running(
                client, claim_id, SIGNAL_CARRIER_EVENT, event
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


async def _start_failed_delivery(
    client: Client, shipment: ShipmentRecord, event: CarrierEvent, task_queue: str
) -> str | None:
    workflow_id = failed_delivery_id(shipment.shipment_id)
    try:
        # Signal-with-start: the first failure starts the case, a racing second
        # event signals it; the workflow de-duplicates by event id.
        await client.start_workflow(
            FAILED_DELIVERY_WORKFLOW,
            FailedDeliveryInput(shipment=shipment, trigger=event),
            id=workflow_id,
            task_queue=task_queue,
            start_signal=SIGNAL_CARRIER_EVENT,
            start_signal_args=[event],
            # One failed-delivery case per shipment, ever: a closed one is not redone.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(visibility.PROCESS, FAILED_DELIVERY),
                    SearchAttributePair(visibility.MARKET, shipment.order.market),
                ]
            ),
            static_summary=(
                f"Failed delivery {shipment.carrier} · "
                f"{format_amount(shipment.order.payment.amount_minor, shipment.order.currency)}"
            ),
        )
    except WorkflowAlreadyStartedError:
        return None
    return workflow_id


async def _start_claim(
    client: Client, shipment: ShipmentRecord, event: CarrierEvent, task_queue: str
) -> str | None:
    claim_type = ClaimType.DAMAGED if event.status is TrackingStatus.DAMAGED else ClaimType.LOST
    workflow_id = carrier_claim_id(shipment.carrier, shipment.tracking_number)
    try:
        await client.start_workflow(
            CARRIER_CLAIM_WORKFLOW,
            CarrierClaimInput(
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                claim_type=claim_type,
                reported_at=event.occurred_at,
                reason=f"carrier reported the parcel {event.status}",
                shipment=shipment,
                policy=claim_policy_for(shipment.carrier, claim_type),
            ),
            id=workflow_id,
            task_queue=task_queue,
            start_signal=SIGNAL_CARRIER_EVENT,
            start_signal_args=[event],
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(visibility.PROCESS, CARRIER_CLAIM),
                    SearchAttributePair(visibility.MARKET, shipment.order.market),
                ]
            ),
            static_summary=f"Carrier claim {shipment.carrier} · {claim_type}",
        )
    except WorkflowAlreadyStartedError:
        return None
    return workflow_id


async def _signal_if_running(client: Client, workflow_id: str, name: str, payload: Any) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).signal(name, payload)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False  # the process has finished: the event is only recorded
        raise
    return True


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


# ------------------------------------------------------- failed deliveries


def _failure_message(err: BaseException | None) -> str:
    if isinstance(err, ApplicationError):
        return err.message
    return str(err) if err else "refused"


async def _query(handle: WorkflowHandle[Any, Any], name: str, result_type: type, what: str) -> Any:
    try:
        return await handle.query(name, result_type=result_type, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(f"no {what}") from err
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise CaseUnavailable(f"{what} did not answer (is a worker running?)") from err
        raise
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
        raise CaseUnavailable(f"{what} could not answer: {err}") from err


async def get_delivery(client: Client, shipment_id: str) -> FailedDeliveryState:
    handle = client.get_workflow_handle(failed_delivery_id(shipment_id))
    state: FailedDeliveryState = await _query(
        handle, QUERY_STATUS, FailedDeliveryState, f"failed delivery for shipment {shipment_id}"
    )
    return state


async def decide_delivery(
    client: Client,
    shipment_id: str,
    decision: DeliveryDecideInput,
    *,
    update_id: str | None = None,
) -> FailedDeliveryState:
    handle = client.get_workflow_handle(failed_delivery_id(shipment_id))
    try:
        state: FailedDeliveryState = await handle.execute_update(
            UPDATE_DECIDE,
            decision,
            id=update_id,
            result_type=FailedDeliveryState,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as err:
        raise CaseRefused(_failure_message(err.cause)) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(
                f"no running failed delivery for shipment {shipment_id} (closed or unknown)"
            ) from err
        raise
    return state


async def _signal(client: Client, workflow_id: str, name: str, payload: Any, what: str) -> None:
    if not await _signal_if_running(client, workflow_id, name, payload):
        raise CaseNotFound(f"no running {what} (closed or unknown)")


async def relay_customer_reply(client: Client, shipment_id: str, reply: CustomerReply) -> None:
    await _signal(
        client,
        failed_delivery_id(shipment_id),
        SIGNAL_CUSTOMER_REPLIED,
        reply,
        f"failed delivery for shipment {shipment_id}",
    )


async def relay_parcel_received(client: Client, shipment_id: str, receipt: ParcelReceived) -> None:
    await _signal(
        client,
        failed_delivery_id(shipment_id),
        SIGNAL_PARCEL_RECEIVED,
        receipt,
        f"failed delivery for shipment {shipment_id}",
    )


# -------------------------------------------------------------------- claims


async def get_claim(client: Client, carrier: str, tracking_number: str) -> CarrierClaimState:
    handle = client.get_workflow_handle(carrier_claim_id(carrier, tracking_number))
    state: CarrierClaimState = await _query(
        handle, QUERY_CLAIM_STATUS, CarrierClaimState, f"claim for {carrier} {tracking_number}"
    )
    return state


async def relay_claim_outcome(
    client: Client, carrier: str, tracking_number: str, outcome: ClaimOutcome
) -> None:
    await _signal(
        client,
        carrier_claim_id(carrier, tracking_number),
        SIGNAL_CLAIM_OUTCOME,
        outcome,
        f"claim for {carrier} {tracking_number}",
    )
