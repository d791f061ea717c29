"""Typed helpers to start and drive carrier claims from outside Temporal:
open one for a lost or damaged parcel (from the carrier event ingest path,
clients/carrier_events.py), read its state, relay the carrier's outcome.

The workflow is addressed by its registered names, as in
clients/order_review.py, so the API process never loads workflow code.
"""

from __future__ import annotations

from datetime import datetime

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from clients.calls import query_case, signal_running
from domain.carrier_events import CarrierEvent, TrackingStatus
from domain.claims import (
    CarrierClaimContract,
    CarrierClaimInput,
    CarrierClaimState,
    ClaimOutcome,
    ClaimType,
    claim_policy_for,
)
from domain.deliveries import ShipmentRecord, pseudonymise_shipment
from domain.ids import CARRIER_CLAIM, carrier_claim_id
from store import deliveries
from workflows import visibility


async def start_claim(
    client: Client,
    shipment: ShipmentRecord,
    event: CarrierEvent,
    task_queue: str,
    *,
    registered_at: datetime | None = None,
    subject_id: str | None = None,
) -> str | None:
    """Open the parcel's claim with `event`; None when it already had one.
    The carrier's window counts from the ship date: the shipment's own, else
    `registered_at` (when the warehouse registered it). `subject_id` (issue
    21): the subject that keeps the shipment's personal values; the claim
    (and the failed delivery it opens) gets the record pseudonymised."""
    if subject_id is not None:
        shipment = pseudonymise_shipment(
            shipment, subject_id, deliveries.address_fingerprint(shipment.address)
        )
    claim_type = ClaimType.DAMAGED if event.status is TrackingStatus.DAMAGED else ClaimType.LOST
    workflow_id = carrier_claim_id(shipment.carrier, shipment.tracking_number)
    try:
        await client.start_workflow(
            CarrierClaimContract.WORKFLOW_TYPE,
            CarrierClaimInput(
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                claim_type=claim_type,
                reported_at=event.occurred_at,
                reason=f"carrier reported the parcel {event.status}",
                shipment=shipment,
                policy=claim_policy_for(shipment.carrier, claim_type),
                shipped_at=shipment.shipped_at or registered_at,
            ),
            id=workflow_id,
            task_queue=task_queue,
            start_signal=CarrierClaimContract.SIGNAL_CARRIER_EVENT,
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


async def get_claim(client: Client, carrier: str, tracking_number: str) -> CarrierClaimState:
    handle = client.get_workflow_handle(carrier_claim_id(carrier, tracking_number))
    state: CarrierClaimState = await query_case(
        handle,
        CarrierClaimContract.QUERY_STATUS,
        CarrierClaimState,
        f"claim for {carrier} {tracking_number}",
    )
    return state


async def relay_claim_outcome(
    client: Client, carrier: str, tracking_number: str, outcome: ClaimOutcome
) -> None:
    await signal_running(
        client,
        carrier_claim_id(carrier, tracking_number),
        CarrierClaimContract.SIGNAL_CLAIM_OUTCOME,
        outcome,
        f"claim for {carrier} {tracking_number}",
    )
