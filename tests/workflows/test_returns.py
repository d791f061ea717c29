"""Returns under time skipping: every path and every deadline.

The outside world (eligibility, carrier, warehouse, payment provider,
notifications, the store) is the harness's FakeWorld, registered under the
real activity names; the replacement order's review and the lost parcel's
claim are stand-in workflows registered under the real names, which the
return starts by name.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.claims import CarrierClaimInput, ClaimType
from domain.common import Role
from domain.ids import carrier_claim_id, return_id
from domain.returns import (
    CancelReturnRequest,
    CarrierEvent,
    CarrierEventKind,
    CustomerChoice,
    CustomerChoiceInput,
    CustomerContact,
    Disposition,
    FinanceApprovalInput,
    OrderLine,
    QcDecisionInput,
    QcGrade,
    QcOutcome,
    QcResult,
    Refusal,
    Resolution,
    ReturnInput,
    ReturnLine,
    ReturnOrder,
    ReturnPolicy,
    ReturnReason,
    ReturnResult,
    ReturnStatus,
)
from tests.factories import make_order
from tests.workflows.harness import RETURN_TRACKING as TRACKING
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.stand_ins import StandInCarrierClaim, StandInOrderReview
from workflows.returns import ReturnWorkflow

pytestmark = pytest.mark.workflows([ReturnWorkflow, StandInOrderReview, StandInCarrierClaim])

POLICY = ReturnPolicy(finance_threshold_minor=500_000, qc_high_value_minor=1_000_000)
BAG_PRICE = 245_000  # below the finance threshold
WATCH_PRICE = 780_000  # above it, below the QC high-value threshold


def return_input(
    now: datetime,
    *,
    price: int = BAG_PRICE,
    resolution: Resolution = Resolution.REFUND,
    serial: str | None = None,
    policy: ReturnPolicy = POLICY,
) -> ReturnInput:
    rma = f"RMA-{uuid.uuid4().hex[:10]}"
    replacement = None
    if resolution is Resolution.EXCHANGE:
        replacement = make_order(
            order_id=f"EXC-{uuid.uuid4().hex[:8]}",
            now=now,
            items=[
                {
                    "sku": "HB-TOTE-GM-NOIR",
                    "name": "Tote GM, black grained calfskin",
                    "category": "handbags",
                    "unit_price_minor": price + 30_000,
                    "quantity": 1,
                }
            ],
        )
    return ReturnInput(
        rma_id=rma,
        order=ReturnOrder(
            order_id=f"ORD-{uuid.uuid4().hex[:8]}",
            market="FR",
            currency="EUR",
            delivered_at=now - timedelta(days=3),
            lines=[
                OrderLine(
                    sku="HB-TOTE-MM-NOIR",
                    name="Tote MM, black grained calfskin",
                    unit_price_minor=price,
                    quantity=1,
                    serial_number=serial,
                )
            ],
            authorisation_ref=f"auth-{rma}",
        ),
        lines=[ReturnLine(sku="HB-TOTE-MM-NOIR", quantity=1)],
        reason=ReturnReason.TOO_SMALL,
        resolution=resolution,
        contact=CustomerContact(email="camille.durand@example.fr"),
        requested_by="cs-julie",
        replacement=replacement,
        policy=policy,
    )


Handle = WorkflowHandle[ReturnWorkflow, ReturnResult]


async def start(harness: Harness, request: ReturnInput) -> Handle:
    return await harness.start(ReturnWorkflow.run, request, id=return_id(request.rma_id))


async def current(handle: Handle) -> ReturnStatus:
    return (await handle.query(ReturnWorkflow.status)).status


def scan(harness: Harness, kind: CarrierEventKind, event_id: str | None = None) -> CarrierEvent:
    return CarrierEvent(
        event_id=event_id or f"evt-{uuid.uuid4().hex[:8]}",
        kind=kind,
        tracking_number=TRACKING,
        occurred_at=harness.now(),
    )


def qc(grade: QcGrade = QcGrade.FIRST_CHOICE, **kwargs: Any) -> QcResult:
    return QcResult(event_id=f"qc-{uuid.uuid4().hex[:8]}", grade=grade, **kwargs)


async def deliver(harness: Harness, handle: Handle) -> None:
    await wait_for_status(handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(ReturnWorkflow.carrier_event, scan(harness, CarrierEventKind.IN_TRANSIT))
    await wait_for_status(handle, ReturnStatus.IN_TRANSIT)
    await handle.signal(
        ReturnWorkflow.carrier_event, scan(harness, CarrierEventKind.DELIVERED_TO_WAREHOUSE)
    )
    await wait_for_status(handle, ReturnStatus.RECEIVED)


async def test_first_choice_refund_moves_money_once_and_restocks(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now()))
    await wait_for_status(handle, ReturnStatus.LABEL_ISSUED)
    in_transit = scan(harness, CarrierEventKind.IN_TRANSIT, "evt-1")
    # The carrier delivers its webhook twice: the second changes nothing.
    await handle.signal(ReturnWorkflow.carrier_event, in_transit)
    await handle.signal(ReturnWorkflow.carrier_event, in_transit)
    await handle.signal(
        ReturnWorkflow.carrier_event, scan(harness, CarrierEventKind.DELIVERED_TO_WAREHOUSE)
    )
    await wait_for_status(handle, ReturnStatus.RECEIVED)
    result_event = qc()
    await handle.signal(ReturnWorkflow.qc_result, result_event)
    await handle.signal(ReturnWorkflow.qc_result, result_event)
    result = await handle.result()

    assert result.status is ReturnStatus.REFUNDED
    assert result.refunded_minor == BAG_PRICE
    assert result.disposition is Disposition.RESTOCK
    assert [r.operation_id for r in world.payments.refunds] == ["refund-1"]
    assert world.payments.refunds[0].idempotency_key == f"{handle.id}/refund-1"
    assert [d.disposition for d in world.returns.dispositions] == [Disposition.RESTOCK]
    actions = world.audit.actions()
    assert actions.count("carrier_in_transit") == 1
    assert actions.count("qc_result_received") == 1
    assert "refund_issued" in actions
    assert [o[1:] for o in world.audit.outcomes()] == [("returned", f"{handle.id}#returned")]
    assert world.audit.opened_task_kinds() == []  # no person needed
    assert world.notifications.templates() == ["return_label", "return_refunded"]
    cases = world.audit.cases()
    assert cases[-1].status == ReturnStatus.REFUNDED
    assert cases[-1].awaited_role is None and cases[-1].due_at is None


@pytest.mark.world(refusals=[Refusal(code="final_sale", message="Tote MM was a final sale.")])
async def test_ineligible_return_is_rejected_with_customer_reason(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now()))
    result = await handle.result()
    state = await handle.query(ReturnWorkflow.status)

    assert result.status is ReturnStatus.REJECTED
    assert state.refusals == ["Tote MM was a final sale."]
    assert world.returns.labels == [] and world.payments.refunds == []
    assert world.notifications.templates() == ["return_rejected"]


async def test_label_reminder_then_expiry_closes_the_case(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now()))
    await wait_for_status(handle, ReturnStatus.LABEL_ISSUED)
    await harness.sleep(timedelta(days=22))
    assert world.notifications.templates() == ["return_label", "return_label_reminder"]
    assert await current(handle) is ReturnStatus.LABEL_ISSUED
    result = await handle.result()  # time skips to the 28-day expiry

    assert result.status is ReturnStatus.EXPIRED
    assert "label_expired" in world.audit.actions()
    assert world.payments.refunds == [] and world.returns.dispositions == []


async def test_customer_cancels_before_shipping_but_not_after(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now()))
    await wait_for_status(handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(
        ReturnWorkflow.cancel, CancelReturnRequest(event_id="c-1", reason="kept it")
    )
    result = await handle.result()
    assert result.status is ReturnStatus.CANCELLED
    assert "cancel_requested" in world.audit.actions()

    shipped = await start(harness, return_input(harness.now()))
    await wait_for_status(shipped, ReturnStatus.LABEL_ISSUED)
    await shipped.signal(ReturnWorkflow.carrier_event, scan(harness, CarrierEventKind.IN_TRANSIT))
    await wait_for_status(shipped, ReturnStatus.IN_TRANSIT)
    await shipped.signal(
        ReturnWorkflow.cancel, CancelReturnRequest(event_id="c-2", reason="too late")
    )
    await shipped.signal(
        ReturnWorkflow.carrier_event, scan(harness, CarrierEventKind.DELIVERED_TO_WAREHOUSE)
    )
    # Refused, so the return carries on; the refusal is on record with the next step.
    await wait_for_status(shipped, ReturnStatus.RECEIVED)
    assert "cancel_refused" in world.audit.actions()


async def test_manual_qc_sla_escalates_to_senior_qa_and_validator_enforces_roles(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now(), serial="SN-1"))
    await deliver(harness, handle)
    # KO from the 3PL and the wrong serial: a person must look.
    await handle.signal(ReturnWorkflow.qc_result, qc(QcGrade.KO, serial_number_seen="SN-X"))
    await wait_for_status(handle, ReturnStatus.MANUAL_QC)
    assert world.audit.opened_task_kinds() == [("return_qc", Role.COORDINATOR)]

    with pytest.raises(WorkflowUpdateFailedError) as wrong_role:
        await handle.execute_update(
            ReturnWorkflow.qc_decision,
            QcDecisionInput(grade=QcGrade.KO, reason="x", actor="olga", role=Role.OPS),
        )
    assert "role" in str(wrong_role.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as no_outcome:
        await handle.execute_update(
            ReturnWorkflow.qc_decision,
            QcDecisionInput(grade=QcGrade.KO, reason="torn", actor="alice", role=Role.COORDINATOR),
        )
    assert "outcome" in str(no_outcome.value.cause)

    await harness.sleep(timedelta(hours=49))  # past the 48 h SLA
    state = await handle.query(ReturnWorkflow.status)
    assert state.escalated and state.awaited_role is Role.MANAGER
    assert world.audit.escalations() == [Role.MANAGER]
    # Escalated: a coordinator may no longer decide, the senior QA coordinator may.
    with pytest.raises(WorkflowUpdateFailedError) as junior:
        await handle.execute_update(
            ReturnWorkflow.qc_decision,
            QcDecisionInput(
                grade=QcGrade.SECOND_CHOICE,
                reason="scuffed corner",
                outcome=QcOutcome.PARTIAL_REFUND,
                partial_refund_minor=50_000,
                actor="alice",
                role=Role.COORDINATOR,
            ),
        )
    assert "role" in str(junior.value.cause)
    after = await handle.execute_update(
        ReturnWorkflow.qc_decision,
        QcDecisionInput(
            grade=QcGrade.SECOND_CHOICE,
            reason="scuffed corner",
            outcome=QcOutcome.PARTIAL_REFUND,
            partial_refund_minor=50_000,
            actor="sophie",
            role=Role.MANAGER,
        ),
    )
    assert after.manual_qc is not None and after.manual_qc.actor == "sophie"
    result = await handle.result()

    assert result.status is ReturnStatus.REFUNDED
    assert result.refunded_minor == 50_000
    assert result.disposition is Disposition.QUARANTINE
    assert [r.amount_minor for r in world.payments.refunds] == [50_000]
    assert world.audit.closed_outcomes() == ["second_choice"]


async def test_manual_qc_deadline_quarantines_without_refund(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now()))
    await deliver(harness, handle)
    # No QC result from the 3PL at all: manual QC after 3 days, then the deadline.
    result = await handle.result()

    assert result.status is ReturnStatus.QUARANTINED
    assert result.disposition is Disposition.QUARANTINE
    assert world.payments.refunds == []
    actions = world.audit.actions()
    assert "qc_result_missing" in actions and "qc_default_applied" in actions
    assert world.audit.closed_outcomes() == ["expired"]


async def test_finance_approval_refuses_self_approval_and_missing_finance_role(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now(), price=WATCH_PRICE))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    await wait_for_status(handle, ReturnStatus.AWAITING_FINANCE)
    assert world.audit.opened_task_kinds() == [("refund_approval", Role.FINANCE)]

    with pytest.raises(WorkflowUpdateFailedError) as self_approval:
        await handle.execute_update(
            ReturnWorkflow.finance_approval,
            FinanceApprovalInput(approved=True, actor="cs-julie", role=Role.FINANCE),
        )
    assert "four eyes" in str(self_approval.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as not_finance:
        await handle.execute_update(
            ReturnWorkflow.finance_approval,
            FinanceApprovalInput(approved=True, actor="marc", role=Role.MANAGER),
        )
    assert "role" in str(not_finance.value.cause)
    assert world.payments.refunds == []

    await handle.execute_update(
        ReturnWorkflow.finance_approval,
        FinanceApprovalInput(approved=True, note="ok", actor="fiona", role=Role.FINANCE),
    )
    result = await handle.result()
    assert result.status is ReturnStatus.REFUNDED
    assert [r.amount_minor for r in world.payments.refunds] == [WATCH_PRICE]
    assert "refund_approved" in world.audit.actions()
    assert world.audit.closed_outcomes() == ["approved"]


async def test_finance_deadline_declines_the_refund(harness: Harness, world: FakeWorld) -> None:
    handle = await start(harness, return_input(harness.now(), price=WATCH_PRICE))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()

    assert result.status is ReturnStatus.REFUND_DECLINED
    assert world.payments.refunds == []
    assert world.audit.escalations() == [Role.FINANCE]
    assert "finance_approval_timeout" in world.audit.actions()


# The dispute stays open for 20 daily checks.
@pytest.mark.world(open_dispute=True, frozen_refunds=20)
async def test_dispute_freeze_rechecks_daily_escalates_and_refunds_once_resolved(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now()))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    await wait_for_status(handle, ReturnStatus.REFUND_FROZEN)
    assert (await handle.query(ReturnWorkflow.status)).open_dispute
    result = await handle.result()

    assert result.status is ReturnStatus.REFUNDED
    assert len(world.payments.refund_attempts) == 21
    # Every attempt presents the same key: the freeze never causes a second refund.
    assert {a.idempotency_key for a in world.payments.refund_attempts} == {f"{handle.id}/refund-1"}
    assert len(world.payments.refunds) == 1
    assert world.audit.opened_task_kinds() == [("refund_frozen", Role.MANAGER)]
    assert world.audit.closed_outcomes() == ["refunded"]
    actions = world.audit.actions()
    assert "refund_frozen" in actions and "refund_freeze_escalated" in actions


@pytest.mark.world(frozen_refunds=10_000)
async def test_dispute_freeze_gives_up_at_the_deadline(harness: Harness, world: FakeWorld) -> None:
    handle = await start(harness, return_input(harness.now()))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()

    assert result.status is ReturnStatus.REFUND_FAILED
    assert result.refunded_minor == 0
    assert world.payments.refunds == []
    assert "refund_freeze_deadline" in world.audit.actions()
    assert world.audit.closed_outcomes() == ["refund abandoned"]


@pytest.mark.world(refuse_refund=True)
async def test_a_refund_the_provider_refuses_opens_a_finance_task(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now()))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()

    assert result.status is ReturnStatus.REFUND_FAILED
    assert result.refunded_minor == 0
    assert world.payments.refunds == []
    # Nothing was paid, so finance settles it by hand: the task says why.
    assert world.audit.opened_task_kinds() == [("refund_failed", Role.FINANCE)]
    assert "refund_failed" in world.audit.actions()


async def test_exchange_in_stock_orders_replacement_and_refunds_returned_item(
    harness: Harness, world: FakeWorld
) -> None:
    request = return_input(harness.now(), resolution=Resolution.EXCHANGE)
    assert request.replacement is not None
    handle = await start(harness, request)
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()

    assert result.status is ReturnStatus.EXCHANGED
    assert result.replacement_order_id == request.replacement.order_id
    state = await handle.query(ReturnWorkflow.status)
    assert state.price_difference_minor == 30_000  # the customer pays the difference
    assert [r.amount_minor for r in world.payments.refunds] == [BAG_PRICE]
    review = harness.client.get_workflow_handle(f"order-review:{request.replacement.order_id}")
    assert await review.result() == request.replacement.order_id


@pytest.mark.world(out_of_stock_checks=1_000)
async def test_exchange_out_of_stock_customer_waits_then_default_refund(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now(), resolution=Resolution.EXCHANGE))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    await wait_for_status(handle, ReturnStatus.AWAITING_CUSTOMER)
    # The status is set before the message goes out (an activity): wait for it.
    await eventually(
        lambda: "exchange_out_of_stock" in world.notifications.templates(),
        what="the out-of-stock message",
    )
    await handle.signal(
        ReturnWorkflow.customer_choice,
        CustomerChoiceInput(event_id="ch-1", choice=CustomerChoice.WAIT),
    )
    result = await handle.result()  # 14 days of daily stock checks, then the refund

    assert result.status is ReturnStatus.REFUNDED
    assert result.replacement_order_id is None
    assert len(world.returns.stock_checks) == 15
    assert "exchange_wait_expired" in world.audit.actions()
    assert len(world.payments.refunds) == 1


@pytest.mark.world(out_of_stock_checks=1)
async def test_exchange_out_of_stock_without_answer_refunds_by_default(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now(), resolution=Resolution.EXCHANGE))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()

    assert result.status is ReturnStatus.REFUNDED
    assert "customer_choice_timeout" in world.audit.actions()
    assert len(world.payments.refunds) == 1


async def test_parcel_never_delivered_is_presumed_lost(harness: Harness, world: FakeWorld) -> None:
    handle = await start(harness, return_input(harness.now()))
    await wait_for_status(handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(ReturnWorkflow.carrier_event, scan(harness, CarrierEventKind.IN_TRANSIT))
    result = await handle.result()

    assert result.status is ReturnStatus.LOST_IN_TRANSIT
    assert world.audit.opened_task_kinds() == [("lost_parcel", Role.COORDINATOR)]
    assert world.payments.refunds == []
    # The claim is started by the return itself, and the task closes with it.
    claim_id = carrier_claim_id("sim-dhl", TRACKING)
    state = await handle.query(ReturnWorkflow.status)
    assert state.claim_workflow_id == claim_id
    # A local activity may run twice when the child's completion races it;
    # the store keys rows by id, so count distinct rows.
    assert set(world.audit.closed_outcomes()) == {f"carrier_claim_opened: {claim_id}"}
    opened = {e.entry_id: e for e in world.audit.entries("carrier_claim_opened")}
    assert len(opened) == 1
    assert next(iter(opened.values())).after["claim_workflow_id"] == claim_id
    started = await harness.client.get_workflow_handle(
        claim_id, result_type=CarrierClaimInput
    ).result()
    assert started.tracking_number == TRACKING
    assert started.claim_type is ClaimType.LOST
    assert started.remedy_workflow_id == handle.id  # no failed delivery of its own
    preparations = world.returns.claim_preparations
    assert started.shipment.order.order_id == preparations[0].order_id
    assert preparations[0].lines == [ReturnLine(sku="HB-TOTE-MM-NOIR", quantity=1)]


@pytest.mark.world(order_known=False)
async def test_lost_parcel_of_an_unknown_order_leaves_the_task_open(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now()))
    await wait_for_status(handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(ReturnWorkflow.carrier_event, scan(harness, CarrierEventKind.IN_TRANSIT))
    result = await handle.result()

    assert result.status is ReturnStatus.LOST_IN_TRANSIT
    assert world.audit.opened_task_kinds() == [("lost_parcel", Role.COORDINATOR)]
    assert world.audit.closed_outcomes() == []  # a coordinator claims by hand
    assert "carrier_claim_not_opened" in world.audit.actions()
    assert (await handle.query(ReturnWorkflow.status)).claim_workflow_id is None
