"""Fulfilment under time skipping: the WMS states (out of order, stale,
repeated events), holds that hold (a hold placed while picking is due, a
second hold, roles), address changes (before packing, racing the packing
event, intercept redirected or refused, refused after handover), special
delivery arrangements, outbound QC (pass, fail with a replacement, fail
without one, SLA reminder and escalation) and the early fraud warning
(contest releases, accept cancels and refunds once)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.chargeback import DisputeEventKind, DisputeStatus
from domain.common import Role
from domain.fulfilment import (
    CURRENT_FULFILMENT_REVISION,
    ChangeAddressInput,
    ChangeAddressOutcome,
    CustomerProfile,
    FraudWarning,
    FraudWarningAction,
    FulfilmentContract,
    FulfilmentInput,
    FulfilmentItem,
    FulfilmentPayment,
    FulfilmentResult,
    FulfilmentState,
    FulfilmentStatus,
    HoldReason,
    PlaceHoldInput,
    QcDecisionInput,
    QcOutcome,
    ReleaseHoldInput,
    SpecialDeliveryInput,
    SpecialDeliveryKind,
    WarehouseEvent,
    WarehouseEventKind,
)
from domain.fulfilment_rules import QcVerdict
from domain.orders import Address, ItemCategory
from domain.review import ReviewStatus
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.test_chargeback import event as chargeback_event
from tests.workflows.test_chargeback import start as start_chargeback
from tests.workflows.test_order_review import REVIEW, fresh_order
from tests.workflows.test_order_review import start as start_review
from workflows import visibility
from workflows.chargeback import ChargebackWorkflow
from workflows.fulfilment import FulfilmentWorkflow
from workflows.order_review import OrderReviewWorkflow

pytestmark = pytest.mark.workflows([FulfilmentWorkflow])

COORDINATOR = {"actor": "ana", "role": Role.COORDINATOR}
MANAGER = {"actor": "mo", "role": Role.MANAGER}
QA = {"actor": "quinn", "role": Role.OPS}
PARIS = Address(line1="1 rue de Rivoli", city="Paris", postal_code="75001", country="FR")
LYON = Address(line1="2 place Bellecour", city="Lyon", postal_code="69002", country="FR")


def fulfilment_input(
    harness: Harness, *, qc: bool = False, amount_minor: int = 245_000, **kw: Any
) -> FulfilmentInput:
    order_id = f"F-{uuid.uuid4().hex[:10]}"
    return FulfilmentInput(
        order_id=order_id,
        market="FR",
        destination_country="FR",
        site="PAR-1",
        release_id=f"REL-{order_id}",
        released_at=harness.now(),
        items=[
            FulfilmentItem(
                sku="BAG-1",
                category=ItemCategory.HANDBAGS,
                unit_price_minor=amount_minor,
                quantity=1,
            )
        ],
        amount_minor=amount_minor,
        currency="EUR",
        customer=CustomerProfile(customer_id="C1"),
        payment=FulfilmentPayment(
            provider="simulated",
            authorisation_ref="auth_1",
            captured_minor=amount_minor,
            currency="EUR",
        ),
        address_ref="subj_initial",
        address_fingerprint="fp_initial",
        qc=QcVerdict(needed=qc, reasons=["category:jewellery"] if qc else [], rule_set_version="t"),
        **{"revision": CURRENT_FULFILMENT_REVISION, **kw},
    )


async def start(harness: Harness, input: FulfilmentInput) -> WorkflowHandle[Any, Any]:
    return await harness.start(
        FulfilmentWorkflow.run, input, id=FulfilmentContract.workflow_id(input.order_id)
    )


async def state_of(handle: WorkflowHandle[Any, Any]) -> FulfilmentState:
    state: FulfilmentState = await handle.query(
        FulfilmentContract.QUERY_STATUS, result_type=FulfilmentState
    )
    return state


async def update(handle: WorkflowHandle[Any, Any], name: str, arg: Any) -> FulfilmentState:
    state: FulfilmentState = await handle.execute_update(name, arg, result_type=FulfilmentState)
    return state


def event(
    order_id: str, kind: WarehouseEventKind, at: datetime, n: str = "", **kw: Any
) -> WarehouseEvent:
    return WarehouseEvent(
        event_id=f"{order_id}-{kind}{n}", order_id=order_id, kind=kind, occurred_at=at, **kw
    )


async def holds_attribute_history(handle: WorkflowHandle[Any, Any]) -> list[list[str]]:
    """Each distinct value the workflow upserted for StewardHolds, in order."""
    values: list[list[str]] = []
    async for history_event in handle.fetch_history_events():
        if not history_event.HasField("upsert_workflow_search_attributes_event_attributes"):
            continue
        fields = history_event.upsert_workflow_search_attributes_event_attributes
        payload = fields.search_attributes.indexed_fields.get(visibility.HOLDS.name)
        if payload is None:
            continue
        value = json.loads(payload.data) if payload.data else []
        if not values or values[-1] != (value or []):
            values.append(value or [])
    return values


async def reach(handle: WorkflowHandle[Any, Any], status: FulfilmentStatus) -> FulfilmentState:
    async def check() -> FulfilmentState | None:
        state = await state_of(handle)
        return state if state.status == status else None

    return await eventually(check, what=f"{handle.id} reaching {status}")


async def test_warehouse_events_in_warehouse_time_order(harness: Harness, world: FakeWorld) -> None:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    t0 = harness.now()
    oid = input.order_id
    # Packing arrives before picking; picking (earlier warehouse time) arrives after: stale.
    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT, event(oid, WarehouseEventKind.ALLOCATED, t0)
    )
    await reach(handle, FulfilmentStatus.ALLOCATED)
    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event(oid, WarehouseEventKind.PACKING_STARTED, t0 + timedelta(minutes=50)),
    )
    await reach(handle, FulfilmentStatus.PACKING)
    picking = event(oid, WarehouseEventKind.PICKING_STARTED, t0 + timedelta(minutes=10))
    await handle.signal(FulfilmentContract.SIGNAL_WAREHOUSE_EVENT, picking)
    await handle.signal(FulfilmentContract.SIGNAL_WAREHOUSE_EVENT, picking)  # a redelivery
    await eventually(lambda: world.audit.entries("warehouse_event_stale"), what="stale recorded")
    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event(oid, WarehouseEventKind.PACKED, t0 + timedelta(minutes=70)),
    )
    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event(
            oid,
            WarehouseEventKind.HANDED_TO_CARRIER,
            t0 + timedelta(hours=3),
            carrier="dhl",
            tracking_number="JD0001",
        ),
    )
    await reach(handle, FulfilmentStatus.HANDED_TO_CARRIER)
    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event(oid, WarehouseEventKind.DELIVERED, t0 + timedelta(days=1)),
    )
    result: FulfilmentResult = await handle.result()
    assert result.status is FulfilmentStatus.DELIVERED
    state = await state_of(handle)
    assert [h.status for h in state.history] == [
        FulfilmentStatus.ALLOCATED,
        FulfilmentStatus.PACKING,
        FulfilmentStatus.PACKED,
        FulfilmentStatus.HANDED_TO_CARRIER,
        FulfilmentStatus.DELIVERED,
    ]
    assert state.history[1].occurred_at == t0 + timedelta(minutes=50)
    assert len(world.audit.entries("warehouse_event_stale")) == 1  # the repeat changed nothing
    assert [b.tracking_number for b in world.fulfilment.bookings] == ["JD0001"]
    statuses = [e.after.get("status") for e in world.audit.entries("status_changed")]
    assert statuses[-1] == "delivered"
    # Every row carries the order id, so `steward audit ORDER_ID` lists them.
    assert {e.order_id for e in world.audit.entries(workflow_id=handle.id)} == {oid}


async def test_hold_placed_while_picking_is_due_stops_the_pick(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    oid = input.order_id
    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event(oid, WarehouseEventKind.ALLOCATED, harness.now()),
    )
    await reach(handle, FulfilmentStatus.ALLOCATED)
    assert world.fulfilment.can_pick(oid)  # picking is due
    state = await update(
        handle,
        FulfilmentContract.UPDATE_PLACE_HOLD,
        PlaceHoldInput(
            reason=HoldReason.INCORRECT_ADDRESS, note="flat number missing", **COORDINATOR
        ),
    )
    first = state.active_holds[0].handle
    assert not world.fulfilment.can_pick(oid)
    # A second hold, and a retried request with the same handle places it once.
    second = PlaceHoldInput(
        reason=HoldReason.INVENTORY, handle="inv-check", note="recount", **COORDINATOR
    )
    await update(handle, FulfilmentContract.UPDATE_PLACE_HOLD, second)
    state = await update(handle, FulfilmentContract.UPDATE_PLACE_HOLD, second)
    assert sorted(h.reason for h in state.active_holds) == ["incorrect_address", "inventory"]
    # The warehouse refuses the pick and says so.
    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event(oid, WarehouseEventKind.PICK_REFUSED, harness.now(), note="active holds"),
    )
    await eventually(lambda: world.audit.entries("pick_refused"), what="refusal recorded")
    # An auditor may not release; the first release leaves the second hold holding.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(
            handle,
            FulfilmentContract.UPDATE_RELEASE_HOLD,
            ReleaseHoldInput(handle=first, actor="aud", role=Role.AUDITOR),
        )
    assert "role: auditor may not release" in str(refused.value.cause)
    await update(
        handle,
        FulfilmentContract.UPDATE_RELEASE_HOLD,
        ReleaseHoldInput(handle=first, note="confirmed by phone", **COORDINATOR),
    )
    assert not world.fulfilment.can_pick(oid)
    state = await update(
        handle,
        FulfilmentContract.UPDATE_RELEASE_HOLD,
        ReleaseHoldInput(handle="inv-check", **COORDINATOR),
    )
    assert state.active_holds == []
    assert world.fulfilment.can_pick(oid)
    assert world.fulfilment.picks_refused == 2
    placed = world.audit.entries("hold_placed")
    assert len(placed) == 2 and placed[0].actor == "ana"
    released = world.audit.entries("hold_released")
    assert released[0].reason == "confirmed by phone"
    # The active holds reached the search attributes, then were cleared.
    assert await holds_attribute_history(handle) == [
        [],  # allocated, no hold
        ["incorrect_address"],
        ["incorrect_address", "inventory"],
        ["inventory"],
        [],
    ]


async def test_address_change_before_packing_and_after_handover(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    state = await update(
        handle,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        ChangeAddressInput(address=LYON, note="customer moved", **COORDINATOR),
    )
    change = state.address_changes[-1]
    assert change.outcome is ChangeAddressOutcome.APPLIED
    assert change.before == "fp_initial" and state.address_fingerprint == change.after
    assert world.fulfilment.warehouse_addresses == [f"subj_{input.order_id}_1"]
    assert world.fulfilment.intercepts == []
    # 2,450 EUR is under FR's high-value line and the country is the same: no rescoring.
    assert world.fulfilment.addresses[0].rescore is False
    entry = world.audit.entries("address_changed")[0]
    assert entry.before["address_fingerprint"] == "fp_initial"
    assert "Lyon" not in str(entry.model_dump()) and "Bellecour" not in str(entry.model_dump())

    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event(
            input.order_id,
            WarehouseEventKind.HANDED_TO_CARRIER,
            harness.now(),
            carrier="dhl",
            tracking_number="JD2",
        ),
    )
    await reach(handle, FulfilmentStatus.HANDED_TO_CARRIER)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(
            handle,
            FulfilmentContract.UPDATE_CHANGE_ADDRESS,
            ChangeAddressInput(address=PARIS, **COORDINATOR),
        )
    assert "handed_to_carrier" in str(refused.value.cause)
    assert len(world.fulfilment.addresses) == 1


@pytest.mark.world(packing_races_address=True)
async def test_address_change_racing_packing_becomes_an_intercept(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    state = await update(
        handle,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        ChangeAddressInput(address=LYON, **COORDINATOR),
    )
    assert state.address_changes[-1].outcome is ChangeAddressOutcome.INTERCEPT_REDIRECTED
    assert state.address_changes[-1].fee_minor == 1500
    assert world.fulfilment.warehouse_addresses == []
    assert len(world.fulfilment.intercepts) == 1
    assert world.audit.entries("address_change_raced_packing")


@pytest.mark.world(refuse_intercept=True)
async def test_intercept_refused_keeps_the_address(harness: Harness, world: FakeWorld) -> None:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event(input.order_id, WarehouseEventKind.PACKED, harness.now()),
    )
    await reach(handle, FulfilmentStatus.PACKED)
    state = await update(
        handle,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        ChangeAddressInput(address=LYON, **COORDINATOR),
    )
    assert state.address_changes[-1].outcome is ChangeAddressOutcome.INTERCEPT_REFUSED
    assert state.address_fingerprint == "fp_initial"
    assert world.audit.entries("address_change_refused")


@pytest.mark.world(rescore_high=True)
async def test_high_value_address_change_rescored_high_is_held(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness, amount_minor=900_000)
    handle = await start(harness, input)
    state = await update(
        handle,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        ChangeAddressInput(address=LYON, **COORDINATOR),
    )
    assert world.fulfilment.addresses[0].rescore is True
    assert state.address_changes[-1].outcome is ChangeAddressOutcome.HELD_FOR_REVIEW
    assert [h.reason for h in state.active_holds] == [HoldReason.ADDRESS_CHANGE]


async def test_special_delivery_checked_against_the_site_and_booked_at_handover(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(
            handle,
            FulfilmentContract.UPDATE_SPECIAL_DELIVERY,
            SpecialDeliveryInput(
                kind=SpecialDeliveryKind.NAMED_CARRIER,
                carrier="fedex",
                service="priority_overnight",
                **COORDINATOR,
            ),
        )
    assert "service: fedex/priority_overnight is not offered from PAR-1" in str(refused.value.cause)
    too_early = harness.now() + timedelta(hours=1)
    with pytest.raises(WorkflowUpdateFailedError) as early:
        await update(
            handle,
            FulfilmentContract.UPDATE_SPECIAL_DELIVERY,
            SpecialDeliveryInput(
                kind=SpecialDeliveryKind.TIMED,
                window_start=too_early,
                window_end=too_early + timedelta(hours=2),
                **COORDINATOR,
            ),
        )
    assert "window_start: the earliest window" in str(early.value.cause)
    state = await update(
        handle,
        FulfilmentContract.UPDATE_SPECIAL_DELIVERY,
        SpecialDeliveryInput(
            kind=SpecialDeliveryKind.NAMED_CARRIER,
            carrier="delivengo",
            service="white_glove",
            **COORDINATOR,
        ),
    )
    assert state.special_delivery is not None
    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event(
            input.order_id,
            WarehouseEventKind.HANDED_TO_CARRIER,
            harness.now(),
            carrier="delivengo",
            tracking_number="WG1",
        ),
    )
    await reach(handle, FulfilmentStatus.HANDED_TO_CARRIER)
    await eventually(lambda: world.fulfilment.bookings, what="booking")
    booked = world.fulfilment.bookings[0].special_delivery
    assert booked is not None and booked.service == "white_glove"
    with pytest.raises(WorkflowUpdateFailedError):
        await update(
            handle,
            FulfilmentContract.UPDATE_SPECIAL_DELIVERY,
            SpecialDeliveryInput(kind=SpecialDeliveryKind.SIGNATURE, **COORDINATOR),
        )


async def test_qc_pass_releases_the_hold_after_a_reminder(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness, qc=True)
    handle = await start(harness, input)
    await eventually(lambda: world.audit.opened_task_kinds(), what="qc task")
    assert world.audit.opened_task_kinds() == [("outbound_qc", Role.OPS)]
    assert not world.fulfilment.can_pick(input.order_id)
    await harness.sleep(timedelta(hours=2, minutes=5))
    await eventually(lambda: world.audit.entries("qc_reminder_sent"), what="reminder")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(
            handle,
            FulfilmentContract.UPDATE_QC_DECISION,
            QcDecisionInput(outcome=QcOutcome.PASS, **QA),  # no checklist
        )
    assert "checklist: a pass needs the checklist" in str(
        getattr(refused.value, "cause", None) or refused.value
    )
    state = await update(
        handle,
        FulfilmentContract.UPDATE_QC_DECISION,
        QcDecisionInput(
            outcome=QcOutcome.PASS,
            checklist=["clasp", "stitching", "dust bag"],
            serial_number="SN-1",
            photo_refs=["photo://qc/1.jpg"],
            **QA,
        ),
    )
    assert state.active_holds == []
    assert state.qc is not None and state.qc.serial_number == "SN-1"
    assert world.fulfilment.can_pick(input.order_id)
    assert len(world.audit.closed_tasks()) == 1


@pytest.mark.world(no_replacement=True)
async def test_qc_fail_without_replacement_escalates_and_manager_cancels_with_one_refund(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness, qc=True)
    handle = await start(harness, input)
    await eventually(lambda: world.audit.opened_task_kinds(), what="qc task")
    state = await update(
        handle,
        FulfilmentContract.UPDATE_QC_DECISION,
        QcDecisionInput(outcome=QcOutcome.FAIL, note="scratched clasp", **QA),
    )
    assert state.escalated and state.awaited_role is Role.MANAGER
    assert world.audit.opened_task_kinds()[-1] == ("outbound_qc_escalated", Role.MANAGER)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(
            handle,
            FulfilmentContract.UPDATE_QC_DECISION,
            QcDecisionInput(outcome=QcOutcome.CANCEL_REFUND, **QA),
        )
    assert "role: ops may not decide an escalated QC" in str(
        getattr(refused.value, "cause", None) or refused.value
    )
    state = await update(
        handle,
        FulfilmentContract.UPDATE_QC_DECISION,
        QcDecisionInput(outcome=QcOutcome.CANCEL_REFUND, note="no stock until March", **MANAGER),
    )
    assert state.status is FulfilmentStatus.CANCELLED
    result: FulfilmentResult = await handle.result()
    assert result.refunded_minor == input.payment.captured_minor
    assert [r.idempotency_key for r in world.payments.refunds] == [f"{handle.id}/cancel-refund"]
    assert [m.template for m in world.fulfilment.messages] == ["order_cancelled"]
    assert len(world.fulfilment.cancels) == 1


async def test_qc_fail_with_replacement_then_sla_escalation(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness, qc=True)
    handle = await start(harness, input)
    await eventually(lambda: world.audit.opened_task_kinds(), what="qc task")
    await update(
        handle,
        FulfilmentContract.UPDATE_QC_DECISION,
        QcDecisionInput(outcome=QcOutcome.FAIL, note="dented case", **QA),
    )
    assert len(world.fulfilment.replacements) == 1
    assert [k for k, _ in world.audit.opened_task_kinds()] == ["outbound_qc", "outbound_qc"]
    await harness.sleep(timedelta(hours=4, minutes=5))
    await eventually(lambda: world.audit.escalations(), what="escalation")
    state = await state_of(handle)
    assert state.escalated and state.awaited_role is Role.MANAGER


async def test_fraud_warning_contest_releases_accept_cancels_and_refunds_once(
    harness: Harness, world: FakeWorld
) -> None:
    contested = fulfilment_input(harness)
    handle = await start(harness, contested)
    dispute = "chargeback:stripe:dp_1"
    hold = FraudWarning(
        event_id="efw-1", action=FraudWarningAction.HOLD, dispute_workflow_id=dispute
    )
    await handle.signal(FulfilmentContract.SIGNAL_FRAUD_WARNING, hold)

    async def held() -> bool:
        return [h.reason for h in (await state_of(handle)).active_holds] == [
            HoldReason.HIGH_RISK_OF_FRAUD
        ]

    await eventually(held, what="fraud hold")
    await eventually(lambda: world.fulfilment.holds.get(contested.order_id), what="told")
    assert not world.fulfilment.can_pick(contested.order_id)
    # A coordinator cannot lift a fraud hold by hand.
    handle_name = (await state_of(handle)).active_holds[0].handle
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(
            handle,
            FulfilmentContract.UPDATE_RELEASE_HOLD,
            ReleaseHoldInput(handle=handle_name, **COORDINATOR),
        )
    assert "role: coordinator may not release a high_risk_of_fraud hold" in str(
        getattr(refused.value, "cause", None) or refused.value
    )
    await handle.signal(
        FulfilmentContract.SIGNAL_FRAUD_WARNING,
        FraudWarning(
            event_id="efw-2", action=FraudWarningAction.CONTEST, dispute_workflow_id=dispute
        ),
    )

    async def released() -> bool:
        return not (await state_of(handle)).active_holds

    await eventually(released, what="fraud hold released")
    await eventually(lambda: not world.fulfilment.holds.get(contested.order_id), what="told")
    assert world.fulfilment.can_pick(contested.order_id)

    accepted = fulfilment_input(harness)
    other = await start(harness, accepted)
    await other.signal(FulfilmentContract.SIGNAL_FRAUD_WARNING, hold)
    accept = FraudWarning(
        event_id="efw-3", action=FraudWarningAction.ACCEPT, dispute_workflow_id=dispute
    )
    await other.signal(FulfilmentContract.SIGNAL_FRAUD_WARNING, accept)
    await other.signal(FulfilmentContract.SIGNAL_FRAUD_WARNING, accept)  # redelivered
    result: FulfilmentResult = await other.result()
    assert result.status is FulfilmentStatus.CANCELLED
    assert result.refunded_minor == accepted.amount_minor
    assert len(world.payments.refund_ledger) == 1 and len(world.payments.refunds) == 1
    assert [m.order_id for m in world.fulfilment.messages] == [accepted.order_id]
    # Closed: the update finds no running fulfilment to change.
    with pytest.raises(Exception) as refused:
        await update(
            other,
            FulfilmentContract.UPDATE_PLACE_HOLD,
            PlaceHoldInput(reason=HoldReason.OTHER, **COORDINATOR),
        )
    assert "not found" in str(getattr(refused.value, "cause", None) or refused.value)


async def test_fraud_warning_before_release_holds_from_the_start(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness, fraud_warning_ref="chargeback:stripe:dp_9")
    handle = await start(harness, input)
    await eventually(lambda: world.fulfilment.holds.get(input.order_id), what="hold at start")
    state = await state_of(handle)
    assert [h.reason for h in state.active_holds] == [HoldReason.HIGH_RISK_OF_FRAUD]
    await handle.signal(
        FulfilmentContract.SIGNAL_FRAUD_WARNING,
        FraudWarning(
            event_id="efw-9",
            action=FraudWarningAction.CONTEST,
            dispute_workflow_id="chargeback:stripe:dp_9",
        ),
    )

    async def released() -> bool:
        return not (await state_of(handle)).active_holds

    await eventually(released, what="released on contest")


@pytest.mark.workflows([ChargebackWorkflow])
async def test_early_fraud_warning_tells_the_fulfilment_hold_then_accept(
    harness: Harness, world: FakeWorld
) -> None:
    warning = chargeback_event(
        harness.now(),
        DisputeEventKind.EARLY_FRAUD_WARNING,
        dispute_id=f"issfr_{uuid.uuid4().hex[:10]}",
        due_in=None,
        amount_minor=0,
        order_id="FR-300003",
    )
    handle = await start_chargeback(harness, warning)
    result = await handle.result()
    assert result.status is DisputeStatus.ACCEPTED
    # The hold at the warning; nobody decided within a day: accept, i.e. cancel and refund.
    assert [(r.order_id, r.warning.action) for r in world.fulfilment.relayed] == [
        ("FR-300003", FraudWarningAction.HOLD),
        ("FR-300003", FraudWarningAction.ACCEPT),
    ]
    assert world.fulfilment.relayed[0].warning.dispute_workflow_id == handle.id
    assert world.audit.entries("fulfilment_told")


@pytest.mark.workflows([ChargebackWorkflow, OrderReviewWorkflow, FulfilmentWorkflow])
@pytest.mark.world(risk=REVIEW, relay_for_real=True)
async def test_early_fraud_warning_accepted_while_the_review_is_open_cancels_it_once(
    harness: Harness, world: FakeWorld
) -> None:
    # The order waits for a coordinator: nothing released, no fulfilment yet.
    order = fresh_order(harness.now())
    review = await start_review(harness, order)
    await wait_for_status(review, ReviewStatus.AWAITING_REVIEW)
    warning = chargeback_event(
        harness.now(),
        DisputeEventKind.EARLY_FRAUD_WARNING,
        dispute_id=f"issfr_{uuid.uuid4().hex[:10]}",
        due_in=None,
        amount_minor=0,
        order_id=order.order_id,
    )
    chargeback = await start_chargeback(harness, warning)
    # Nobody decides within a day: the default accepts the warning.
    assert (await chargeback.result()).status is DisputeStatus.ACCEPTED
    # The relay found no fulfilment and cancelled the review, retried until it
    # had closed: the authorisation voided once, nothing captured or released.
    result = await review.result()
    assert result.status is ReviewStatus.CANCELLED
    assert result.captured_minor == 0
    assert world.payments.kinds() == ["void"]
    assert world.warehouse.releases == []
    cancels = world.audit.entries("cancel_requested", workflow_id=review.id)
    assert len(cancels) == 1
    assert "early fraud warning accepted before release" in cancels[0].reason
    assert world.fulfilment.relay_attempts > 2  # hold, accept (cancel asked), accept (closed)
    assert [r.warning.action for r in world.fulfilment.relayed] == [
        FraudWarningAction.HOLD,
        FraudWarningAction.ACCEPT,
    ]
    assert world.audit.entries("fulfilment_not_running", workflow_id=chargeback.id)


@pytest.mark.parametrize(
    ("revision", "upserts", "markers"), [(1, 1, 1), (2, 0, 1), (CURRENT_FULFILMENT_REVISION, 0, 0)]
)
async def test_the_first_step_costs_less_from_revision_to_revision(
    harness: Harness, world: FakeWorld, revision: int, upserts: int, markers: int
) -> None:
    # Revision 2 leaves the search attributes to the starter; revision 3 the
    # audit row and case row too: its first workflow task issues no command.
    input = fulfilment_input(harness, revision=revision)
    handle = await start(harness, input)

    async def first_task() -> list[Any] | None:
        events = [e async for e in handle.fetch_history_events()]
        done = any(e.HasField("workflow_task_completed_event_attributes") for e in events)
        return events if done else None

    events = await eventually(first_task, what="the first workflow task")
    assert [
        sum(e.HasField("upsert_workflow_search_attributes_event_attributes") for e in events),
        sum(e.HasField("marker_recorded_event_attributes") for e in events),
    ] == [upserts, markers]
    assert len(world.audit.entries("fulfilment_started", workflow_id=handle.id)) == (
        1 if revision < 3 else 0
    )
