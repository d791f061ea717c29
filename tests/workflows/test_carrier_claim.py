"""Carrier claim under time skipping: filed early with the CCTV clip, filed at
the deadline default without it, withdrawn when the parcel turns up, and the
remedy case started so the customer never waits for the carrier."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle

from domain.carrier_events import TrackingStatus
from domain.claims import (
    CarrierClaimInput,
    CarrierClaimResult,
    ClaimClock,
    ClaimOutcome,
    ClaimPolicy,
    ClaimStatus,
    ClaimType,
)
from domain.deliveries import FailedDeliveryStatus, ShipmentRecord
from domain.evidence import CctvClipReady, cctv_request_id
from domain.ids import carrier_claim_id, failed_delivery_id
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.inputs import shipment, tracking_event
from workflows.carrier_claim import CarrierClaimWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow

# The remedy a claim may start is a real failed delivery.
pytestmark = pytest.mark.workflows([FailedDeliveryWorkflow, CarrierClaimWorkflow])

POLICY = ClaimPolicy(
    filing_window=timedelta(days=10),
    safety_margin=timedelta(days=1),
    evidence_wait=timedelta(days=2),
    follow_up_every=timedelta(days=7),
    response_deadline=timedelta(days=30),
)

Handle = WorkflowHandle[CarrierClaimWorkflow, CarrierClaimResult]


async def start(
    harness: Harness,
    record: ShipmentRecord,
    *,
    policy: ClaimPolicy = POLICY,
    claim_type: ClaimType = ClaimType.LOST,
    remedy: str | None = "failed-delivery:elsewhere",
    shipped_at: datetime | None = None,
) -> Handle:
    return await harness.start(
        CarrierClaimWorkflow.run,
        CarrierClaimInput(
            carrier=record.carrier,
            tracking_number=record.tracking_number,
            claim_type=claim_type,
            reported_at=harness.now(),
            shipment=record,
            policy=policy,
            remedy_workflow_id=remedy,
            shipped_at=shipped_at,
        ),
        id=carrier_claim_id(record.carrier, record.tracking_number),
    )


def outcome(approved: bool, amount: int = 245_000) -> ClaimOutcome:
    return ClaimOutcome(
        event_id=f"out-{uuid.uuid4().hex[:8]}",
        approved=approved,
        reimbursed_minor=amount if approved else 0,
        currency="EUR",
        carrier_reference="UPS-77",
    )


async def test_claim_filed_before_the_deadline_with_the_cctv_clip(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, ClaimStatus.GATHERING_EVIDENCE)
    await eventually(lambda: world.evidence.cctv_requests, what="the CCTV request")
    request = world.evidence.cctv_requests[0]
    assert request.request_id == cctv_request_id(handle.id)
    assert request.reply_to_workflow_id == handle.id
    clip = CctvClipReady(
        event_id="wh-1",
        request_id=request.request_id,
        order_id=record.order.order_id,
        clip_ref="cctv/PACK-3/clip-1.mp4",
    )
    await handle.signal(CarrierClaimWorkflow.cctv_clip_ready, clip)
    await handle.signal(CarrierClaimWorkflow.cctv_clip_ready, clip)  # a duplicate
    await wait_for_status(handle, ClaimStatus.FILED)
    state = await handle.query(CarrierClaimWorkflow.status)
    assert (
        state.filed_at is not None and state.filed_at < state.filing_deadline - POLICY.safety_margin
    )
    assert [d.kind for d in world.claims.filed[0].documents] == ["invoice", "cctv_clip"]
    assert world.claims.filed[0].amount_minor == record.order.payment.amount_minor

    approved = outcome(True)
    await handle.signal(CarrierClaimWorkflow.claim_outcome, approved)
    await handle.signal(CarrierClaimWorkflow.claim_outcome, approved)  # a duplicate
    result = await handle.result()
    assert result.status is ClaimStatus.APPROVED
    assert result.reimbursed_minor == 245_000
    assert list(world.claims.outcomes) == [f"{handle.id}/outcome"]
    assert world.claims.outcomes[f"{handle.id}/outcome"].outcome == "approved"
    assert world.audit.actions(handle.id).count("cctv_clip_ready") == 1
    assert world.audit.actions(handle.id).count("claim_outcome_received") == 1
    assert world.claims.chases == []


@pytest.mark.world(file_delay=1.0)
async def test_an_outcome_that_arrives_while_the_filing_is_taken_counts(
    harness: Harness, world: FakeWorld
) -> None:
    # The carrier answers before the workflow has taken the filing's result
    # (as after a worker restart, when both arrive in one workflow task).
    record = shipment(harness.now())
    handle = await start(harness, record)
    await eventually(lambda: world.evidence.cctv_requests, what="the CCTV request")
    clip = CctvClipReady(
        event_id="wh-1",
        request_id=world.evidence.cctv_requests[0].request_id,
        order_id=record.order.order_id,
        clip_ref="cctv/PACK-3/clip-1.mp4",
    )
    await handle.signal(CarrierClaimWorkflow.cctv_clip_ready, clip)
    await eventually(lambda: world.claims.filing, what="the filing")
    await handle.signal(CarrierClaimWorkflow.claim_outcome, outcome(True))
    result = await handle.result()

    assert result.status is ClaimStatus.APPROVED
    assert result.reimbursed_minor == 245_000
    assert world.audit.actions(handle.id).count("claim_outcome_received") == 1
    assert "claim_outcome_ignored" not in world.audit.actions(handle.id)


async def test_claim_deadline_default_files_without_clip_then_no_response(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    # The clip wait is longer than the filing window: the deadline decides.
    policy = POLICY.model_copy(
        update={"filing_window": timedelta(days=3), "evidence_wait": timedelta(days=5)}
    )
    handle = await start(harness, record, policy=policy)
    await wait_for_status(handle, ClaimStatus.GATHERING_EVIDENCE)
    await harness.sleep(timedelta(days=2, minutes=1))  # file_by = 3 days - 1 day margin
    await wait_for_status(handle, ClaimStatus.FILED)
    state = await handle.query(CarrierClaimWorkflow.status)
    assert state.filed_at is not None
    # Filed at the safety margin (timer granularity aside), a day before the deadline.
    assert abs(state.filed_at - state.file_by) < timedelta(minutes=1)
    assert state.filing_deadline - state.filed_at > timedelta(hours=23)
    assert [d.kind for d in world.claims.filed[0].documents] == ["invoice"]
    assert "cctv_clip_timeout" in world.audit.actions(handle.id)

    result = await handle.result()  # the carrier never answers
    assert result.status is ClaimStatus.NO_RESPONSE
    assert [c.follow_up for c in world.claims.chases] == [1, 2, 3, 4]
    assert world.claims.outcomes[f"{handle.id}/outcome"].outcome == "no_response"
    assert world.claims.outcomes[f"{handle.id}/outcome"].amount_minor == 0


@pytest.mark.world(footage_expired=True)
async def test_expired_footage_files_without_waiting(harness: Harness, world: FakeWorld) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, ClaimStatus.FILED)
    state = await handle.query(CarrierClaimWorkflow.status)
    assert "CctvFootageExpired" in state.cctv_note
    await handle.signal(CarrierClaimWorkflow.claim_outcome, outcome(False))
    result = await handle.result()
    assert result.status is ClaimStatus.REJECTED and result.reimbursed_minor == 0


async def test_parcel_delivered_before_filing_withdraws_the_claim(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, ClaimStatus.GATHERING_EVIDENCE)
    await handle.signal(
        CarrierClaimWorkflow.carrier_event,
        tracking_event(record, TrackingStatus.DELIVERED, at=harness.now()),
    )
    result = await handle.result()
    assert result.status is ClaimStatus.WITHDRAWN
    assert world.claims.filed == [] and world.claims.outcomes == {}


async def test_claim_without_remedy_starts_the_failed_delivery_for_the_customer(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record, remedy=None)
    await wait_for_status(handle, ClaimStatus.GATHERING_EVIDENCE)
    remedy = harness.client.get_workflow_handle(failed_delivery_id(record.shipment_id))
    # Started by the claim; a moment may pass before it exists.
    await wait_for_status(remedy, FailedDeliveryStatus.AWAITING_CUSTOMER)
    remedy_state = await remedy.query(FailedDeliveryWorkflow.status)
    assert remedy_state is not None
    assert remedy_state.trigger_status is TrackingStatus.LOST
    assert remedy_state.claim_workflow_ids == [handle.id]
    # Customer silent, nobody decides: the lost parcel is refunded without
    # waiting for it to come back, while the claim goes on.
    await harness.sleep(timedelta(days=4))
    final = await remedy.query(FailedDeliveryWorkflow.status)
    assert final.status is FailedDeliveryStatus.REFUNDED
    assert world.deliveries.inspections == []
    assert len(world.payments.refund_ledger) == 1
    assert "remedy_started" in world.audit.actions(handle.id)


async def test_parcel_found_closes_the_claim_and_its_undecided_remedy(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record, remedy=None)
    await wait_for_status(handle, ClaimStatus.GATHERING_EVIDENCE)
    remedy = harness.client.get_workflow_handle(failed_delivery_id(record.shipment_id))
    await wait_for_status(remedy, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        CarrierClaimWorkflow.carrier_event,
        tracking_event(record, TrackingStatus.DELIVERED, at=harness.now()),
    )
    result = await handle.result()
    assert result.status is ClaimStatus.WITHDRAWN
    await wait_for_status(remedy, FailedDeliveryStatus.DELIVERED)
    final = await remedy.query(FailedDeliveryWorkflow.status)
    assert final.status is FailedDeliveryStatus.DELIVERED
    assert world.payments.refund_ledger == {} and world.deliveries.bookings == []


# ----------------------------------------- the carrier's clock (issue 15)

SHIP_CLOCK = POLICY.model_copy(update={"window_from": ClaimClock.SHIPPED})


async def test_the_window_counts_from_the_ship_date_and_files_at_its_margin(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    # Shipped 6 days before the loss was reported: of the 10-day window only
    # 4 days are left, so the claim files 3 days after the report, not 9.
    shipped = harness.now() - timedelta(days=6)
    policy = SHIP_CLOCK.model_copy(update={"evidence_wait": timedelta(days=8)})
    handle = await start(harness, record, policy=policy, shipped_at=shipped)
    await wait_for_status(handle, ClaimStatus.GATHERING_EVIDENCE)
    state = await handle.query(CarrierClaimWorkflow.status)
    assert state.filing_deadline == shipped + POLICY.filing_window
    assert state.file_by == state.filing_deadline - POLICY.safety_margin
    await harness.sleep(timedelta(days=3, minutes=1))
    await wait_for_status(handle, ClaimStatus.FILED)
    state = await handle.query(CarrierClaimWorkflow.status)
    assert state.filed_at is not None and abs(state.filed_at - state.file_by) < timedelta(minutes=1)


async def test_a_claim_discovered_after_the_window_is_recorded_out_of_window(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    shipped = harness.now() - timedelta(days=12)  # the 10-day window closed 2 days ago
    handle = await start(harness, record, policy=SHIP_CLOCK, shipped_at=shipped, remedy=None)
    result = await handle.result()
    assert result.status is ClaimStatus.OUT_OF_WINDOW and result.claim_reference is None
    assert world.claims.filed == []  # never filed late
    entry = world.audit.entries("claim_out_of_window", workflow_id=handle.id)[0]
    assert entry.after["window_from"] == "shipped"
    assert entry.after["filing_deadline"] == (shipped + POLICY.filing_window).isoformat()
    # The customer is still looked after.
    assert "remedy_started" in world.audit.actions(handle.id)
