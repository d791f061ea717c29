"""Failed delivery under time skipping: every path and every deadline.

The outside world (notifications, scoring, carrier, warehouse desk, payment
provider, the store, the CCTV archive) is the harness's FakeWorld, registered
under the real activity names; the carrier-claim child runs for real on the
same worker, so paths that open a claim are followed end to end.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.carrier_events import CarrierEvent, TrackingStatus
from domain.claims import CarrierClaimState, ClaimOutcome, ClaimStatus
from domain.common import Role
from domain.deliveries import (
    CustomerOption,
    CustomerReply,
    DeliveryDecideInput,
    DeliveryDecision,
    DeliveryTemplate,
    FailedDeliveryInput,
    FailedDeliveryPolicy,
    FailedDeliveryResult,
    FailedDeliveryStatus,
    ParcelReceived,
    ServiceLevel,
    ShipmentRecord,
)
from domain.ids import carrier_claim_id, failed_delivery_id
from domain.orders import Address
from domain.risk import ReasonCode, RiskAssessment, RiskBand, Routing
from tests.workflows.harness import LOW_RISK, FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.inputs import shipment, tracking_event
from workflows.carrier_claim import CarrierClaimWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow

pytestmark = [
    pytest.mark.workflows([FailedDeliveryWorkflow, CarrierClaimWorkflow]),
    pytest.mark.world(risk=LOW_RISK),
]

POLICY = FailedDeliveryPolicy(
    customer_answer_timeout=timedelta(hours=72),
    customer_reminder_after=timedelta(hours=36),
    decision_sla=timedelta(hours=24),
    high_value_minor=100_000,
    return_timeout=timedelta(days=21),
    reship_tracking_timeout=timedelta(days=14),
    refund_freeze_recheck=timedelta(days=1),
    refund_freeze_deadline=timedelta(days=30),
)
HIGH_RISK = RiskAssessment(
    score=90,
    band=RiskBand.HIGH,
    routing=Routing.AUTO_DECLINE,
    reason_codes=[ReasonCode.FREIGHT_FORWARDER],
    rule_set_version="t",
)
NEW_ADDRESS = Address(line1="1 Rue du Bac", city="Lyon", postal_code="69001", country="FR")

Handle = WorkflowHandle[FailedDeliveryWorkflow, FailedDeliveryResult]


async def start(
    harness: Harness,
    record: ShipmentRecord,
    trigger: CarrierEvent | None = None,
    policy: FailedDeliveryPolicy = POLICY,
) -> Handle:
    trigger = trigger or tracking_event(record, TrackingStatus.DELIVERY_FAILED, at=harness.now())
    return await harness.start(
        FailedDeliveryWorkflow.run,
        FailedDeliveryInput(shipment=record, trigger=trigger, policy=policy),
        id=failed_delivery_id(record.shipment_id),
        start_signal="carrier_event",
        start_signal_args=[trigger],
    )


def reply(option: CustomerOption, **kwargs: Any) -> CustomerReply:
    return CustomerReply(event_id=f"msg-{uuid.uuid4().hex[:8]}", option=option, **kwargs)


def decide(
    decision: DeliveryDecision, *, role: Role = Role.COORDINATOR, **kwargs: Any
) -> DeliveryDecideInput:
    kwargs.setdefault(
        "note", "customer called" if decision is DeliveryDecision.RETURN_TO_STOCK else ""
    )
    return DeliveryDecideInput(decision=decision, actor="lea", role=role, **kwargs)


def received(now: datetime) -> ParcelReceived:
    return ParcelReceived(event_id=f"rcv-{uuid.uuid4().hex[:8]}", received_at=now)


# --------------------------------------------------------------------- tests


async def test_customer_silent_default_returns_to_stock_and_refunds_once(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    # Past the answer deadline and the decision SLA: the default acts.
    await harness.sleep(POLICY.customer_answer_timeout + POLICY.decision_sla + timedelta(minutes=1))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    await handle.signal(FailedDeliveryWorkflow.parcel_received, received(harness.now()))
    result = await handle.result()

    assert result.status is FailedDeliveryStatus.REFUNDED
    assert result.decision is DeliveryDecision.RETURN_TO_STOCK
    assert world.deliveries.templates() == [
        DeliveryTemplate.DELIVERY_OPTIONS,
        DeliveryTemplate.DELIVERY_REMINDER,
        DeliveryTemplate.REFUNDED,
    ]
    options = world.deliveries.notifications[0]
    assert options.options == list(CustomerOption) and options.deadline is not None
    assert list(world.payments.refund_ledger) == [f"{handle.id}/refund-failed-delivery"]
    assert (
        world.payments.refund_ledger[f"{handle.id}/refund-failed-delivery"].amount_minor == 245_000
    )
    assert len(world.deliveries.inspections) == 1 and len(world.deliveries.restocks) == 1
    actions = world.audit.actions()
    for expected in (
        "customer_options_offered",
        "customer_silent",
        "recommendation",
        "decision_return_to_stock",
        "parcel_received",
        "parcel_inspected",
        "restocked",
        "refunded",
    ):
        assert expected in actions, expected
    decision = world.audit.entries("decision_return_to_stock")[0]
    assert decision.actor == "steward" and decision.after["by_default"] is True
    assert all(
        e.order_id == record.order.order_id for t in world.audit.transitions for e in t.entries
    )
    assert world.audit.opened_tasks() == [f"{handle.id}/decision/1"]
    assert world.audit.closed_tasks() == [f"{handle.id}/decision/1"]
    assert world.audit.outcomes() == [
        (record.order.order_id, "delivery_failed", f"{handle.id}#delivery_failed"),
        (record.order.order_id, "refunded", f"{handle.id}#refunded"),
    ]


async def test_new_address_low_risk_reship_is_tracked_to_delivery(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address=NEW_ADDRESS),
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.recommendation is not None
    assert state.recommendation.decision is DeliveryDecision.RESHIP
    # The new address went through the risk rules with the order's other facts.
    assert world.scoring.scored[0].order.shipping_address == NEW_ADDRESS
    assert world.scoring.scored[0].order.order_id == record.order.order_id

    after = await handle.execute_update(
        FailedDeliveryWorkflow.decide,
        decide(
            DeliveryDecision.RESHIP,
            address=NEW_ADDRESS,
            service_level=ServiceLevel.SIGNATURE_REQUIRED,
        ),
    )
    assert after.decision is not None and after.decision.actor == "lea"
    await wait_for_status(handle, FailedDeliveryStatus.RESHIPPED)
    booked = world.deliveries.bookings[0]
    assert booked.destination == NEW_ADDRESS
    assert booked.service_level is ServiceLevel.SIGNATURE_REQUIRED
    assert len(world.scoring.scored) == 1  # the reviewed address is not rescored
    reship_tracking = f"RESHIP-{record.shipment_id}"
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        tracking_event(
            record, TrackingStatus.DELIVERED, tracking=reship_tracking, at=harness.now()
        ),
    )
    result = await handle.result()
    assert result.status is FailedDeliveryStatus.DELIVERED
    assert world.payments.refund_ledger == {}
    assert "address_risk_reviewed" in world.audit.actions()
    assert world.deliveries.templates()[-1] is DeliveryTemplate.RESHIPPED


@pytest.mark.world(risk=HIGH_RISK)
async def test_high_risk_new_address_blocks_reship_to_it(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address=NEW_ADDRESS),
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.recommendation is not None and state.recommendation.reship_blocked

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address=NEW_ADDRESS)
        )
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.message.startswith("address: risk review refused")

    # Nobody else decides: the default follows the recommendation (return).
    await harness.sleep(POLICY.decision_sla + timedelta(minutes=1))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    assert world.deliveries.bookings == []


async def test_decision_validator_refuses_wrong_role_and_missing_note(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    with pytest.raises(WorkflowUpdateFailedError) as wrong_role:
        await handle.execute_update(
            FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, role=Role.OPS)
        )
    assert "role: ops may not decide" in str(wrong_role.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as no_note:
        await handle.execute_update(
            FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RETURN_TO_STOCK, note=" ")
        )
    assert "note:" in str(no_note.value.cause)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.decision is None and state.status is FailedDeliveryStatus.AWAITING_CUSTOMER


async def test_second_failure_never_reships_again(harness: Harness, world: FakeWorld) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(FailedDeliveryWorkflow.customer_replied, reply(CustomerOption.RESCHEDULE))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP))
    await wait_for_status(handle, FailedDeliveryStatus.RESHIPPED)
    reship_tracking = f"RESHIP-{record.shipment_id}"
    failed = tracking_event(
        record, TrackingStatus.DELIVERY_FAILED, tracking=reship_tracking, at=harness.now()
    )
    await handle.signal(FailedDeliveryWorkflow.carrier_event, failed)
    await handle.signal(FailedDeliveryWorkflow.carrier_event, failed)  # a duplicate
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.second_failure
    await handle.signal(FailedDeliveryWorkflow.parcel_received, received(harness.now()))
    result = await handle.result()

    assert result.status is FailedDeliveryStatus.REFUNDED
    assert len(world.deliveries.bookings) == 1
    assert world.deliveries.inspections[0].shipment_id == f"{record.shipment_id}-R2"
    assert len(world.payments.refund_ledger) == 1
    assert world.audit.actions().count("second_failure") == 1
    assert world.audit.actions().count("carrier_event") == 1  # the duplicate changed nothing


async def test_parcel_never_returns_opens_a_claim_and_refunds(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied, reply(CustomerOption.CANCEL_REFUND)
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RETURN_TO_STOCK)
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    await harness.sleep(POLICY.return_timeout + timedelta(minutes=1))
    result = await handle.result()

    assert result.status is FailedDeliveryStatus.REFUNDED
    claim_id = carrier_claim_id(record.carrier, record.tracking_number)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.claim_workflow_ids == [claim_id]
    assert (
        "parcel_not_returned" in world.audit.actions()
        and "carrier_claim_opened" in world.audit.actions()
    )
    assert world.deliveries.inspections == [] and world.deliveries.restocks == []
    # The claim runs on its own, linked to this case (it starts no second remedy).
    claim = harness.client.get_workflow_handle(claim_id)
    claim_state = await claim.query(CarrierClaimWorkflow.status)
    assert claim_state.remedy_workflow_id == handle.id
    assert "remedy_started" not in world.audit.actions(claim_id)


@pytest.mark.world(frozen_refunds=2)
async def test_refund_frozen_by_dispute_rechecks_then_refunds(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RETURN_TO_STOCK)
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    await handle.signal(FailedDeliveryWorkflow.parcel_received, received(harness.now()))
    await wait_for_status(handle, FailedDeliveryStatus.REFUND_FROZEN)
    assert f"{handle.id}/refund_frozen/1" in world.audit.opened_tasks()
    result = await handle.result()

    assert result.status is FailedDeliveryStatus.REFUNDED
    assert len(world.payments.refund_attempts) == 3  # frozen, frozen, refunded
    assert {a.idempotency_key for a in world.payments.refund_attempts} == {
        f"{handle.id}/refund-failed-delivery"
    }
    assert len(world.payments.refund_ledger) == 1
    assert f"{handle.id}/refund_frozen/1" in world.audit.closed_tasks()
    assert world.audit.actions().count("refund_frozen") == 1


async def test_delivered_after_all_closes_the_case_out_of_order_events_ignored(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    failed_at = harness.now()
    handle = await start(
        harness, record, tracking_event(record, TrackingStatus.DELIVERY_FAILED, at=failed_at)
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    # An older scan arriving late must not reopen anything.
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        tracking_event(record, TrackingStatus.IN_TRANSIT, at=failed_at - timedelta(hours=5)),
    )
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        tracking_event(record, TrackingStatus.DELIVERED, at=failed_at + timedelta(hours=20)),
    )
    result = await handle.result()
    assert result.status is FailedDeliveryStatus.DELIVERED
    assert "carrier_event_out_of_order" in world.audit.actions()
    assert world.payments.refund_ledger == {} and world.deliveries.bookings == []


async def test_reship_of_a_second_attempt_is_refused_and_goes_straight_to_return(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now(), attempt=2)
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    assert world.deliveries.notifications == []  # no options to offer: it will not ship again
    await handle.signal(FailedDeliveryWorkflow.parcel_received, received(harness.now()))
    result = await handle.result()
    assert result.status is FailedDeliveryStatus.REFUNDED
    assert world.deliveries.bookings == []


@pytest.mark.world(risk=HIGH_RISK)
async def test_coordinator_new_address_is_reviewed_before_it_ships(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    # Decided on the phone before the customer answered in writing: the new
    # address was never scored, so it is scored now, and it fails.
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address=NEW_ADDRESS)
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    assert [s.order.shipping_address for s in world.scoring.scored] == [NEW_ADDRESS]
    assert world.deliveries.bookings == []
    assert "reship_blocked_by_risk" in world.audit.actions()


async def test_low_value_new_address_ships_without_review(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now(), amount_minor=50_000)  # under the 1,000.00 threshold of POLICY
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address=NEW_ADDRESS)
    )
    await wait_for_status(handle, FailedDeliveryStatus.RESHIPPED)
    assert world.scoring.scored == []
    assert world.deliveries.bookings[0].destination == NEW_ADDRESS


# ------------------------------------------- late delivery after a claim


async def _claim_opened_while_refund_frozen(
    harness: Harness, record: ShipmentRecord
) -> tuple[Handle, WorkflowHandle[Any, Any]]:
    """Return to stock, the carrier loses the parcel: the case opens a claim,
    then waits on a refund frozen by a dispute (so it is still running)."""
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RETURN_TO_STOCK)
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        tracking_event(record, TrackingStatus.LOST, at=harness.now()),
    )
    await wait_for_status(handle, FailedDeliveryStatus.REFUND_FROZEN)
    claim_id = carrier_claim_id(record.carrier, record.tracking_number)
    assert (await handle.query(FailedDeliveryWorkflow.status)).claim_workflow_ids == [claim_id]
    return handle, harness.client.get_workflow_handle(claim_id)


@pytest.mark.world(frozen_refunds=1_000)
async def test_late_delivery_is_forwarded_once_and_withdraws_the_unfiled_claim(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle, claim = await _claim_opened_while_refund_frozen(harness, record)
    await wait_for_status(claim, ClaimStatus.GATHERING_EVIDENCE)
    delivered = tracking_event(
        record, TrackingStatus.DELIVERED, at=harness.now() + timedelta(hours=1)
    )
    # The carrier's webhook repeats itself: the claim hears of it once.
    await handle.signal(FailedDeliveryWorkflow.carrier_event, delivered)
    await handle.signal(FailedDeliveryWorkflow.carrier_event, delivered)
    result = await claim.result()

    assert result["status"] == ClaimStatus.WITHDRAWN
    assert world.claims.filed == [] and world.claims.outcomes == {}
    claim_actions = world.audit.actions(claim.id)
    assert claim_actions.count("parcel_found") == 1
    assert claim_actions.count("carrier_event") == 1
    state = await claim.query(CarrierClaimWorkflow.status, result_type=CarrierClaimState)
    assert state.found_at == delivered.occurred_at
    # The case's own audit goes out with its next step: here, giving up the
    # frozen refund at its deadline.
    assert (await handle.result()).status is FailedDeliveryStatus.CLOSED
    forwarded = world.audit.entries("carrier_event_forwarded")
    assert len(forwarded) == 1
    assert forwarded[0].after == {"event_id": delivered.event_id, "claim_workflow_id": claim.id}


# No clip to wait for (the footage is gone): the claim is filed at once.
@pytest.mark.world(frozen_refunds=1_000, footage_expired=True)
async def test_late_delivery_after_filing_is_recorded_on_the_claim(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle, claim = await _claim_opened_while_refund_frozen(harness, record)
    await wait_for_status(claim, ClaimStatus.FILED)
    delivered = tracking_event(
        record, TrackingStatus.DELIVERED, at=harness.now() + timedelta(hours=1)
    )
    await handle.signal(FailedDeliveryWorkflow.carrier_event, delivered)
    # On record at once, not when the carrier answers weeks later.
    await eventually(
        lambda: "parcel_found_after_filing" in world.audit.actions(claim.id),
        what="the late delivery on the claim's record",
    )
    found = world.audit.entries("parcel_found_after_filing")
    assert len(found) == 1 and "CLM-" in found[0].reason
    state = await claim.query(CarrierClaimWorkflow.status, result_type=CarrierClaimState)
    assert state.status is ClaimStatus.FILED and state.found_at == delivered.occurred_at
    assert world.claims.chases == []  # woken early, but the chase cadence is unchanged

    await claim.signal(
        "claim_outcome",
        ClaimOutcome(event_id="out-1", approved=False, currency="EUR", note="delivered"),
    )
    result = await claim.result()
    assert result["status"] == ClaimStatus.REJECTED
    assert len(world.claims.filed) == 1


# ---------------------------------------------- reship booking (issue 15)


async def test_a_reship_books_the_full_address_and_the_preferred_date(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    preferred = (harness.now() + timedelta(days=5)).date()
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address=NEW_ADDRESS, preferred_date=preferred),
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address=NEW_ADDRESS)
    )
    await wait_for_status(handle, FailedDeliveryStatus.RESHIPPED)
    booked = world.deliveries.bookings[0]
    assert booked.destination == NEW_ADDRESS  # every line, not just the country
    assert booked.earliest_delivery == preferred
    assert booked.booking_attempt == 1
    assert booked.idempotency_key == f"{handle.id}/reship"


@pytest.mark.world(refuse_reship_bookings=1)
async def test_a_refused_label_goes_to_a_coordinator_who_picks_another_service(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(FailedDeliveryWorkflow.customer_replied, reply(CustomerOption.RESCHEDULE))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide,
        decide(DeliveryDecision.RESHIP, service_level=ServiceLevel.EXPRESS),
    )
    # Refused for good: not retried, back to a coordinator with its own task.
    await eventually(lambda: "reship_refused" in world.audit.actions(handle.id))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    assert len(world.deliveries.bookings) == 1
    assert f"{handle.id}/reship_refused_1/1" in world.audit.opened_tasks()
    await handle.execute_update(
        FailedDeliveryWorkflow.decide,
        decide(DeliveryDecision.RESHIP, service_level=ServiceLevel.STANDARD),
    )
    await wait_for_status(handle, FailedDeliveryStatus.RESHIPPED)
    second = world.deliveries.bookings[1]
    assert (second.service_level, second.booking_attempt) == (ServiceLevel.STANDARD, 2)
    assert second.idempotency_key == f"{handle.id}/reship-2"
    assert world.payments.refund_ledger == {}


@pytest.mark.world(refuse_reship_bookings=1)
async def test_nobody_answers_a_refused_label_the_parcel_goes_back_to_stock(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(FailedDeliveryWorkflow.customer_replied, reply(CustomerOption.RESCHEDULE))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP))
    await eventually(lambda: "reship_refused" in world.audit.actions(handle.id))
    await harness.sleep(POLICY.decision_sla + timedelta(minutes=1))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    decision = world.audit.entries("decision_return_to_stock", workflow_id=handle.id)[-1]
    assert decision.after["by_default"] is True
    assert len(world.deliveries.bookings) == 1
