"""Returns under time skipping: every path and every deadline.

The outside world (eligibility, carrier, warehouse, payment provider,
notifications, the store) is replaced by in-memory activities registered under
the real names; the replacement order's review is a stand-in workflow
registered as "OrderReviewWorkflow", which the return starts by name.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.audit import RECORD_TRANSITION, RecordTransitionInput
from domain.claims import CarrierClaimInput, ClaimType
from domain.common import Role
from domain.deliveries import ShipmentRecord
from domain.ids import carrier_claim_id, return_id
from domain.notifications import NOTIFY_CUSTOMER, NotifyCustomerInput, NotifyCustomerResult
from domain.payments import (
    REFUND_FROZEN_BY_DISPUTE,
    REFUND_PAYMENT,
    PaymentOperationInput,
    PaymentOperationKind,
    PaymentOperationResult,
    PaymentOperationStatus,
)
from domain.returns import (
    CHECK_RETURN_ELIGIBILITY,
    CHECK_STOCK,
    ISSUE_RETURN_LABEL,
    PREPARE_RETURN_PARCEL_CLAIM,
    RECORD_DISPOSITION,
    CancelReturnRequest,
    CarrierEvent,
    CarrierEventKind,
    CheckEligibilityInput,
    CheckStockInput,
    CheckStockResult,
    CustomerChoice,
    CustomerChoiceInput,
    CustomerContact,
    Disposition,
    EligibilityResult,
    FinanceApprovalInput,
    IssueLabelInput,
    IssueLabelResult,
    OrderLine,
    QcDecisionInput,
    QcGrade,
    QcOutcome,
    QcResult,
    RecordDispositionInput,
    RecordDispositionResult,
    Refusal,
    Resolution,
    ReturnInput,
    ReturnLine,
    ReturnOrder,
    ReturnParcelClaimInput,
    ReturnParcelClaimResult,
    ReturnPolicy,
    ReturnReason,
    ReturnResult,
    ReturnStatus,
)
from domain.review import OrderReviewInput
from tests.factories import make_order
from workflows.returns import ReturnWorkflow

POLICY = ReturnPolicy(finance_threshold_minor=500_000, qc_high_value_minor=1_000_000)
BAG_PRICE = 245_000  # below the finance threshold
WATCH_PRICE = 780_000  # above it, below the QC high-value threshold


@workflow.defn(name="OrderReviewWorkflow")
class StandInOrderReview:
    """The replacement order's review: started by name, finishes at once."""

    @workflow.run
    async def run(self, input: OrderReviewInput) -> str:
        return input.order.order_id


@workflow.defn(name="CarrierClaimWorkflow")
class StandInCarrierClaim:
    """The lost parcel's claim: started by name, answers with its input."""

    @workflow.run
    async def run(self, input: CarrierClaimInput) -> CarrierClaimInput:
        return input


class FakeWorld:
    """In-memory outside world that records every call."""

    def __init__(self) -> None:
        self.order_known = True  # whether the store knows the order a lost parcel claims
        self.claim_preparations: list[ReturnParcelClaimInput] = []
        self.refusals: list[Refusal] = []
        self.open_dispute = False
        self.frozen_refunds = 0  # how many refund calls the dispute freeze refuses
        self.out_of_stock_checks = 0  # how many stock checks answer "missing"
        self.refund_attempts: list[PaymentOperationInput] = []
        self.refunds: list[PaymentOperationInput] = []
        self.labels: list[IssueLabelInput] = []
        self.dispositions: list[RecordDispositionInput] = []
        self.stock_checks: list[CheckStockInput] = []
        self.notifications: list[NotifyCustomerInput] = []
        self.transitions: list[RecordTransitionInput] = []

    @activity.defn(name=CHECK_RETURN_ELIGIBILITY)
    async def check_return_eligibility(self, input: CheckEligibilityInput) -> EligibilityResult:
        value = sum(
            line.quantity * (input.request.order.line(line.sku) or _missing()).unit_price_minor
            for line in input.request.lines
        )
        return EligibilityResult(
            eligible=not self.refusals,
            refusals=self.refusals,
            open_dispute=self.open_dispute,
            full_return=True,
            value_minor=value,
            refund_minor=value + input.request.order.shipping_minor,
        )

    @activity.defn(name=ISSUE_RETURN_LABEL)
    async def issue_return_label(self, input: IssueLabelInput) -> IssueLabelResult:
        self.labels.append(input)
        return IssueLabelResult(
            carrier="sim-dhl",
            tracking_number=TRACKING,
            label_url="https://labels.example/x.pdf",
            expires_at=input.expires_at,
        )

    @activity.defn(name=RECORD_DISPOSITION)
    async def record_disposition(self, input: RecordDispositionInput) -> RecordDispositionResult:
        self.dispositions.append(input)
        return RecordDispositionResult(reference=f"DSP-{input.disposition}", warehouse="PAR")

    @activity.defn(name=CHECK_STOCK)
    async def check_stock(self, input: CheckStockInput) -> CheckStockResult:
        self.stock_checks.append(input)
        if self.out_of_stock_checks > 0:
            self.out_of_stock_checks -= 1
            return CheckStockResult(in_stock=False, missing_skus=[line.sku for line in input.lines])
        return CheckStockResult(in_stock=True)

    @activity.defn(name=REFUND_PAYMENT)
    async def refund_payment(self, input: PaymentOperationInput) -> PaymentOperationResult:
        self.refund_attempts.append(input)
        if self.frozen_refunds > 0:
            self.frozen_refunds -= 1
            raise ApplicationError(
                "order has an open dispute", type=REFUND_FROZEN_BY_DISPUTE, non_retryable=True
            )
        self.refunds.append(input)
        return PaymentOperationResult(
            kind=PaymentOperationKind.REFUND,
            idempotency_key=input.idempotency_key,
            provider_reference=f"psp_refund_{len(self.refunds)}",
            status=PaymentOperationStatus.SUCCEEDED,
            amount_minor=input.amount_minor,
            currency=input.currency,
        )

    @activity.defn(name=NOTIFY_CUSTOMER)
    async def notify_customer(self, input: NotifyCustomerInput) -> NotifyCustomerResult:
        self.notifications.append(input)
        return NotifyCustomerResult(message_id=input.message_id, delivered=True)

    @activity.defn(name=RECORD_TRANSITION)
    async def record_transition(self, input: RecordTransitionInput) -> None:
        self.transitions.append(input)

    @activity.defn(name=PREPARE_RETURN_PARCEL_CLAIM)
    async def prepare_claim(self, input: ReturnParcelClaimInput) -> ReturnParcelClaimResult:
        self.claim_preparations.append(input)
        if not self.order_known:
            return ReturnParcelClaimResult(reason=f"order_id: no shipment of {input.order_id}")
        return ReturnParcelClaimResult(
            shipment=ShipmentRecord(
                shipment_id=f"{input.rma_id}-RETURN",
                carrier=input.carrier,
                tracking_number=input.tracking_number,
                expected_delivery_at=input.expected_delivery_at,
                order=make_order(order_id=input.order_id),
            )
        )

    def activities(self) -> list[object]:
        return [
            self.check_return_eligibility,
            self.issue_return_label,
            self.record_disposition,
            self.check_stock,
            self.refund_payment,
            self.notify_customer,
            self.record_transition,
            self.prepare_claim,
        ]

    def actions(self) -> list[str]:
        return [e.action for t in self.transitions for e in t.entries]

    def opened_tasks(self) -> list[tuple[str, Role]]:
        return [(o.kind, o.awaited_role) for t in self.transitions for o in t.open_tasks]

    def closed_outcomes(self) -> list[str]:
        return [c.outcome for t in self.transitions for c in t.close_tasks]

    def escalations(self) -> list[Role | None]:
        return [u.awaited_role for t in self.transitions for u in t.update_tasks if u.escalated]

    def templates(self) -> list[str]:
        return [n.template.value for n in self.notifications]


def _missing() -> OrderLine:
    raise AssertionError("unknown sku")


TRACKING = "1ZTEST0001"


def return_input(
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
            delivered_at=datetime.now(UTC) - timedelta(days=3),
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


@pytest.fixture
async def world(env: WorkflowEnvironment) -> AsyncIterator[tuple[FakeWorld, str]]:
    fake = FakeWorld()
    task_queue = f"returns-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ReturnWorkflow, StandInOrderReview, StandInCarrierClaim],
        activities=fake.activities(),
    ):
        yield fake, task_queue


async def start(env: WorkflowEnvironment, task_queue: str, request: ReturnInput) -> Handle:
    return await env.client.start_workflow(
        ReturnWorkflow.run, request, id=return_id(request.rma_id), task_queue=task_queue
    )


async def wait_for(env: WorkflowEnvironment, handle: Handle, status: ReturnStatus) -> None:
    # Queries do not skip time; poll a few workflow tasks' worth of real time.
    for _ in range(300):
        if (await handle.query(ReturnWorkflow.status)).status == status:
            return
        await env.sleep(timedelta(milliseconds=1))
    raise AssertionError(f"never reached {status}; now {await current(handle)}")


async def current(handle: Handle) -> ReturnStatus:
    return (await handle.query(ReturnWorkflow.status)).status


def scan(kind: CarrierEventKind, event_id: str | None = None) -> CarrierEvent:
    return CarrierEvent(
        event_id=event_id or f"evt-{uuid.uuid4().hex[:8]}",
        kind=kind,
        tracking_number=TRACKING,
        occurred_at=datetime.now(UTC),
    )


def qc(grade: QcGrade = QcGrade.FIRST_CHOICE, **kwargs: Any) -> QcResult:
    return QcResult(event_id=f"qc-{uuid.uuid4().hex[:8]}", grade=grade, **kwargs)


async def deliver(env: WorkflowEnvironment, handle: Handle) -> None:
    await wait_for(env, handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(ReturnWorkflow.carrier_event, scan(CarrierEventKind.IN_TRANSIT))
    await wait_for(env, handle, ReturnStatus.IN_TRANSIT)
    await handle.signal(ReturnWorkflow.carrier_event, scan(CarrierEventKind.DELIVERED_TO_WAREHOUSE))
    await wait_for(env, handle, ReturnStatus.RECEIVED)


async def test_first_choice_refund_moves_money_once_and_restocks(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    handle = await start(env, queue, return_input())
    await wait_for(env, handle, ReturnStatus.LABEL_ISSUED)
    in_transit = scan(CarrierEventKind.IN_TRANSIT, "evt-1")
    # The carrier delivers its webhook twice: the second changes nothing.
    await handle.signal(ReturnWorkflow.carrier_event, in_transit)
    await handle.signal(ReturnWorkflow.carrier_event, in_transit)
    await handle.signal(ReturnWorkflow.carrier_event, scan(CarrierEventKind.DELIVERED_TO_WAREHOUSE))
    await wait_for(env, handle, ReturnStatus.RECEIVED)
    result_event = qc()
    await handle.signal(ReturnWorkflow.qc_result, result_event)
    await handle.signal(ReturnWorkflow.qc_result, result_event)
    result = await handle.result()

    assert result.status is ReturnStatus.REFUNDED
    assert result.refunded_minor == BAG_PRICE
    assert result.disposition is Disposition.RESTOCK
    assert [r.operation_id for r in fake.refunds] == ["refund-1"]
    assert fake.refunds[0].idempotency_key == f"{handle.id}/refund-1"
    assert [d.disposition for d in fake.dispositions] == [Disposition.RESTOCK]
    actions = fake.actions()
    assert actions.count("carrier_in_transit") == 1
    assert actions.count("qc_result_received") == 1
    assert "refund_issued" in actions
    assert fake.opened_tasks() == []  # no person needed
    assert fake.templates() == ["return_label", "return_refunded"]
    cases = [t.case for t in fake.transitions if t.case is not None]
    assert cases[-1].status == ReturnStatus.REFUNDED
    assert cases[-1].awaited_role is None and cases[-1].due_at is None


async def test_ineligible_return_is_rejected_with_customer_reason(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    fake.refusals = [Refusal(code="final_sale", message="Tote MM was a final sale.")]
    handle = await start(env, queue, return_input())
    result = await handle.result()
    state = await handle.query(ReturnWorkflow.status)

    assert result.status is ReturnStatus.REJECTED
    assert state.refusals == ["Tote MM was a final sale."]
    assert fake.labels == [] and fake.refunds == []
    assert fake.templates() == ["return_rejected"]


async def test_label_reminder_then_expiry_closes_the_case(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    handle = await start(env, queue, return_input())
    await wait_for(env, handle, ReturnStatus.LABEL_ISSUED)
    await env.sleep(timedelta(days=22))
    assert fake.templates() == ["return_label", "return_label_reminder"]
    assert await current(handle) is ReturnStatus.LABEL_ISSUED
    result = await handle.result()  # time skips to the 28-day expiry

    assert result.status is ReturnStatus.EXPIRED
    assert "label_expired" in fake.actions()
    assert fake.refunds == [] and fake.dispositions == []


async def test_customer_cancels_before_shipping_but_not_after(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    handle = await start(env, queue, return_input())
    await wait_for(env, handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(
        ReturnWorkflow.cancel, CancelReturnRequest(event_id="c-1", reason="kept it")
    )
    result = await handle.result()
    assert result.status is ReturnStatus.CANCELLED
    assert "cancel_requested" in fake.actions()

    shipped = await start(env, queue, return_input())
    await wait_for(env, shipped, ReturnStatus.LABEL_ISSUED)
    await shipped.signal(ReturnWorkflow.carrier_event, scan(CarrierEventKind.IN_TRANSIT))
    await wait_for(env, shipped, ReturnStatus.IN_TRANSIT)
    await shipped.signal(
        ReturnWorkflow.cancel, CancelReturnRequest(event_id="c-2", reason="too late")
    )
    await shipped.signal(
        ReturnWorkflow.carrier_event, scan(CarrierEventKind.DELIVERED_TO_WAREHOUSE)
    )
    # Refused, so the return carries on; the refusal is on record with the next step.
    await wait_for(env, shipped, ReturnStatus.RECEIVED)
    assert "cancel_refused" in fake.actions()


async def test_manual_qc_sla_escalates_to_senior_qa_and_validator_enforces_roles(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    handle = await start(env, queue, return_input(serial="SN-1"))
    await deliver(env, handle)
    # KO from the 3PL and the wrong serial: a person must look.
    await handle.signal(ReturnWorkflow.qc_result, qc(QcGrade.KO, serial_number_seen="SN-X"))
    await wait_for(env, handle, ReturnStatus.MANUAL_QC)
    assert fake.opened_tasks() == [("return_qc", Role.COORDINATOR)]

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

    await env.sleep(timedelta(hours=49))  # past the 48 h SLA
    state = await handle.query(ReturnWorkflow.status)
    assert state.escalated and state.awaited_role is Role.MANAGER
    assert fake.escalations() == [Role.MANAGER]
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
    assert [r.amount_minor for r in fake.refunds] == [50_000]
    assert fake.closed_outcomes() == ["second_choice"]


async def test_manual_qc_deadline_quarantines_without_refund(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    handle = await start(env, queue, return_input())
    await deliver(env, handle)
    # No QC result from the 3PL at all: manual QC after 3 days, then the deadline.
    result = await handle.result()

    assert result.status is ReturnStatus.QUARANTINED
    assert result.disposition is Disposition.QUARANTINE
    assert fake.refunds == []
    actions = fake.actions()
    assert "qc_result_missing" in actions and "qc_default_applied" in actions
    assert fake.closed_outcomes() == ["expired"]


async def test_finance_approval_refuses_self_approval_and_missing_finance_role(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    handle = await start(env, queue, return_input(price=WATCH_PRICE))
    await deliver(env, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    await wait_for(env, handle, ReturnStatus.AWAITING_FINANCE)
    assert fake.opened_tasks() == [("refund_approval", Role.FINANCE)]

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
    assert fake.refunds == []

    await handle.execute_update(
        ReturnWorkflow.finance_approval,
        FinanceApprovalInput(approved=True, note="ok", actor="fiona", role=Role.FINANCE),
    )
    result = await handle.result()
    assert result.status is ReturnStatus.REFUNDED
    assert [r.amount_minor for r in fake.refunds] == [WATCH_PRICE]
    assert "refund_approved" in fake.actions()
    assert fake.closed_outcomes() == ["approved"]


async def test_finance_deadline_declines_the_refund(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    handle = await start(env, queue, return_input(price=WATCH_PRICE))
    await deliver(env, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()

    assert result.status is ReturnStatus.REFUND_DECLINED
    assert fake.refunds == []
    assert fake.escalations() == [Role.FINANCE]
    assert "finance_approval_timeout" in fake.actions()


async def test_dispute_freeze_rechecks_daily_escalates_and_refunds_once_resolved(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    fake.open_dispute = True
    fake.frozen_refunds = 20  # the dispute stays open for 20 daily checks
    handle = await start(env, queue, return_input())
    await deliver(env, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    await wait_for(env, handle, ReturnStatus.REFUND_FROZEN)
    assert (await handle.query(ReturnWorkflow.status)).open_dispute
    result = await handle.result()

    assert result.status is ReturnStatus.REFUNDED
    assert len(fake.refund_attempts) == 21
    # Every attempt presents the same key: the freeze never causes a second refund.
    assert {a.idempotency_key for a in fake.refund_attempts} == {f"{handle.id}/refund-1"}
    assert len(fake.refunds) == 1
    assert fake.opened_tasks() == [("refund_frozen", Role.MANAGER)]
    assert fake.closed_outcomes() == ["refunded"]
    assert "refund_frozen" in fake.actions() and "refund_freeze_escalated" in fake.actions()


async def test_dispute_freeze_gives_up_at_the_deadline(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    fake.frozen_refunds = 10_000
    handle = await start(env, queue, return_input())
    await deliver(env, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()

    assert result.status is ReturnStatus.REFUND_FAILED
    assert result.refunded_minor == 0
    assert fake.refunds == []
    assert "refund_freeze_deadline" in fake.actions()
    assert fake.closed_outcomes() == ["refund abandoned"]


async def test_exchange_in_stock_orders_replacement_and_refunds_returned_item(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    request = return_input(resolution=Resolution.EXCHANGE)
    assert request.replacement is not None
    handle = await start(env, queue, request)
    await deliver(env, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()

    assert result.status is ReturnStatus.EXCHANGED
    assert result.replacement_order_id == request.replacement.order_id
    state = await handle.query(ReturnWorkflow.status)
    assert state.price_difference_minor == 30_000  # the customer pays the difference
    assert [r.amount_minor for r in fake.refunds] == [BAG_PRICE]
    review = env.client.get_workflow_handle(f"order-review:{request.replacement.order_id}")
    assert await review.result() == request.replacement.order_id


async def test_exchange_out_of_stock_customer_waits_then_default_refund(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    fake.out_of_stock_checks = 1_000
    handle = await start(env, queue, return_input(resolution=Resolution.EXCHANGE))
    await deliver(env, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    await wait_for(env, handle, ReturnStatus.AWAITING_CUSTOMER)
    assert "exchange_out_of_stock" in fake.templates()
    await handle.signal(
        ReturnWorkflow.customer_choice,
        CustomerChoiceInput(event_id="ch-1", choice=CustomerChoice.WAIT),
    )
    result = await handle.result()  # 14 days of daily stock checks, then the refund

    assert result.status is ReturnStatus.REFUNDED
    assert result.replacement_order_id is None
    assert len(fake.stock_checks) == 15
    assert "exchange_wait_expired" in fake.actions()
    assert len(fake.refunds) == 1


async def test_exchange_out_of_stock_without_answer_refunds_by_default(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    fake.out_of_stock_checks = 1
    handle = await start(env, queue, return_input(resolution=Resolution.EXCHANGE))
    await deliver(env, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()

    assert result.status is ReturnStatus.REFUNDED
    assert "customer_choice_timeout" in fake.actions()
    assert len(fake.refunds) == 1


async def test_parcel_never_delivered_is_presumed_lost(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    handle = await start(env, queue, return_input())
    await wait_for(env, handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(ReturnWorkflow.carrier_event, scan(CarrierEventKind.IN_TRANSIT))
    result = await handle.result()

    assert result.status is ReturnStatus.LOST_IN_TRANSIT
    assert fake.opened_tasks() == [("lost_parcel", Role.COORDINATOR)]
    assert fake.refunds == []
    # The claim is started by the return itself, and the task closes with it.
    claim_id = carrier_claim_id("sim-dhl", TRACKING)
    state = await handle.query(ReturnWorkflow.status)
    assert state.claim_workflow_id == claim_id
    # A local activity may run twice when the child's completion races it;
    # the store keys rows by id, so count distinct rows.
    assert set(fake.closed_outcomes()) == {f"carrier_claim_opened: {claim_id}"}
    opened = {
        e.entry_id: e
        for t in fake.transitions
        for e in t.entries
        if e.action == "carrier_claim_opened"
    }
    assert len(opened) == 1
    assert next(iter(opened.values())).after["claim_workflow_id"] == claim_id
    started = await env.client.get_workflow_handle(claim_id, result_type=CarrierClaimInput).result()
    assert started.tracking_number == TRACKING
    assert started.claim_type is ClaimType.LOST
    assert started.remedy_workflow_id == handle.id  # no failed delivery of its own
    assert started.shipment.order.order_id == fake.claim_preparations[0].order_id
    assert fake.claim_preparations[0].lines == [ReturnLine(sku="HB-TOTE-MM-NOIR", quantity=1)]


async def test_lost_parcel_of_an_unknown_order_leaves_the_task_open(
    env: WorkflowEnvironment, world: tuple[FakeWorld, str]
) -> None:
    fake, queue = world
    fake.order_known = False
    handle = await start(env, queue, return_input())
    await wait_for(env, handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(ReturnWorkflow.carrier_event, scan(CarrierEventKind.IN_TRANSIT))
    result = await handle.result()

    assert result.status is ReturnStatus.LOST_IN_TRANSIT
    assert fake.opened_tasks() == [("lost_parcel", Role.COORDINATOR)]
    assert fake.closed_outcomes() == []  # a coordinator claims by hand
    assert "carrier_claim_not_opened" in fake.actions()
    assert (await handle.query(ReturnWorkflow.status)).claim_workflow_id is None
