"""Failed delivery under time skipping: every path and every deadline.

The outside world (notifications, scoring, carrier, warehouse desk, payment
provider, the store, the CCTV archive) is an in-memory FakeWorld registered
under the real activity names; the carrier-claim child runs for real on the
same worker, so paths that open a claim are followed end to end.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.audit import RECORD_TRANSITION, RecordTransitionInput
from domain.carrier_events import CarrierEvent, TrackingStatus
from domain.claims import (
    CHASE_CARRIER_CLAIM,
    FILE_CARRIER_CLAIM,
    GATHER_CLAIM_DOCUMENTS,
    OPEN_CARRIER_INVESTIGATION,
    RECORD_CLAIM_OUTCOME,
    CarrierClaimState,
    ChaseClaimInput,
    ClaimDocument,
    ClaimOutcome,
    ClaimStatus,
    FileClaimInput,
    FileClaimResult,
    GatherDocumentsInput,
    GatherDocumentsResult,
    OpenInvestigationInput,
    OpenInvestigationResult,
    RecordReimbursementInput,
)
from domain.common import Role
from domain.deliveries import (
    BOOK_RESHIPMENT,
    INSPECT_RETURNED_PARCEL,
    NOTIFY_DELIVERY_CUSTOMER,
    RESTOCK_RETURNED_PARCEL,
    BookReshipmentInput,
    BookReshipmentResult,
    CustomerOption,
    CustomerReply,
    DeliveryDecideInput,
    DeliveryDecision,
    DeliveryTemplate,
    FailedDeliveryInput,
    FailedDeliveryPolicy,
    FailedDeliveryResult,
    FailedDeliveryStatus,
    InspectionGrade,
    InspectParcelInput,
    InspectParcelResult,
    NotifyDeliveryCustomerInput,
    ParcelReceived,
    RestockParcelInput,
    RestockParcelResult,
    ServiceLevel,
    ShipmentRecord,
)
from domain.evidence import (
    REQUEST_CCTV_CLIP,
    CctvClipRequest,
    CctvClipRequestResult,
    CctvRequestStatus,
)
from domain.ids import carrier_claim_id, failed_delivery_id
from domain.notifications import NotifyCustomerResult
from domain.orders import Address
from domain.payments import (
    REFUND_FROZEN_BY_DISPUTE,
    REFUND_PAYMENT,
    PaymentOperationInput,
    PaymentOperationKind,
    PaymentOperationResult,
    PaymentOperationStatus,
)
from domain.risk import SCORE_ORDER, ReasonCode, RiskAssessment, RiskBand, Routing, ScoreOrderInput
from tests.factories import make_order
from workflows.carrier_claim import CarrierClaimWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow

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
LOW_RISK = RiskAssessment(
    score=10, band=RiskBand.LOW, routing=Routing.AUTO_ACCEPT, reason_codes=[], rule_set_version="t"
)
HIGH_RISK = RiskAssessment(
    score=90,
    band=RiskBand.HIGH,
    routing=Routing.AUTO_DECLINE,
    reason_codes=[ReasonCode.FREIGHT_FORWARDER],
    rule_set_version="t",
)
NEW_ADDRESS = Address(line1="1 Rue du Bac", city="Lyon", postal_code="69001", country="FR")


class FakeWorld:
    """In-memory outside world that records every call."""

    def __init__(self, risk: RiskAssessment = LOW_RISK, *, frozen_refunds: int = 0) -> None:
        self.risk = risk
        self.frozen_refunds = frozen_refunds
        self.transitions: list[RecordTransitionInput] = []
        self.notifications: list[NotifyDeliveryCustomerInput] = []
        self.scored: list[ScoreOrderInput] = []
        self.bookings: list[BookReshipmentInput] = []
        self.inspections: list[InspectParcelInput] = []
        self.restocks: list[RestockParcelInput] = []
        self.refund_attempts: list[PaymentOperationInput] = []
        self.refunds: dict[str, PaymentOperationInput] = {}
        self.filed: list[FileClaimInput] = []
        self.chases: list[ChaseClaimInput] = []
        self.outcomes: dict[str, RecordReimbursementInput] = {}
        self.cctv_requests: list[CctvClipRequest] = []
        self.cctv_expired = False

    @activity.defn(name=RECORD_TRANSITION)
    async def record_transition(self, input: RecordTransitionInput) -> None:
        self.transitions.append(input)

    @activity.defn(name=NOTIFY_DELIVERY_CUSTOMER)
    async def notify(self, input: NotifyDeliveryCustomerInput) -> NotifyCustomerResult:
        self.notifications.append(input)
        return NotifyCustomerResult(message_id=input.message_id, delivered=True)

    @activity.defn(name=SCORE_ORDER)
    async def score_order(self, input: ScoreOrderInput) -> RiskAssessment:
        self.scored.append(input)
        return self.risk

    @activity.defn(name=BOOK_RESHIPMENT)
    async def book(self, input: BookReshipmentInput) -> BookReshipmentResult:
        self.bookings.append(input)
        return BookReshipmentResult(
            shipment_id=f"{input.original_shipment_id}-R2",
            carrier=input.carrier,
            tracking_number=f"RESHIP-{input.original_shipment_id}",
            expected_delivery_at=datetime.now(UTC) + timedelta(days=2),
        )

    @activity.defn(name=INSPECT_RETURNED_PARCEL)
    async def inspect(self, input: InspectParcelInput) -> InspectParcelResult:
        self.inspections.append(input)
        grade = (
            InspectionGrade.DAMAGED if "DMG" in input.shipment_id else InspectionGrade.RESELLABLE
        )
        return InspectParcelResult(grade=grade, notes="checked")

    @activity.defn(name=RESTOCK_RETURNED_PARCEL)
    async def restock(self, input: RestockParcelInput) -> RestockParcelResult:
        self.restocks.append(input)
        return RestockParcelResult(location="PAR/RET/1")

    @activity.defn(name=REFUND_PAYMENT)
    async def refund(self, input: PaymentOperationInput) -> PaymentOperationResult:
        self.refund_attempts.append(input)
        if self.frozen_refunds > 0:
            self.frozen_refunds -= 1
            raise ApplicationError(
                f"order {input.order_id} has an open dispute",
                type=REFUND_FROZEN_BY_DISPUTE,
                non_retryable=True,
            )
        # Keyed like the ledger: a repeat is the same refund, never a second one.
        self.refunds.setdefault(input.idempotency_key, input)
        return PaymentOperationResult(
            kind=PaymentOperationKind.REFUND,
            idempotency_key=input.idempotency_key,
            provider_reference=f"psp_refund_{input.order_id}",
            status=PaymentOperationStatus.SUCCEEDED,
            amount_minor=input.amount_minor,
            currency=input.currency,
        )

    @activity.defn(name=OPEN_CARRIER_INVESTIGATION)
    async def open_investigation(self, input: OpenInvestigationInput) -> OpenInvestigationResult:
        return OpenInvestigationResult(investigation_ref=f"INV-{input.tracking_number}")

    @activity.defn(name=GATHER_CLAIM_DOCUMENTS)
    async def gather(self, input: GatherDocumentsInput) -> GatherDocumentsResult:
        return GatherDocumentsResult(
            documents=[ClaimDocument(kind="invoice", reference=f"invoice/{input.order_id}")]
        )

    @activity.defn(name=REQUEST_CCTV_CLIP)
    async def request_cctv(self, input: CctvClipRequest) -> CctvClipRequestResult:
        self.cctv_requests.append(input)
        if self.cctv_expired:
            raise ApplicationError("footage deleted", type="CctvFootageExpired", non_retryable=True)
        now = datetime.now(UTC)
        return CctvClipRequestResult(
            request_id=input.request_id,
            status=CctvRequestStatus.REQUESTED,
            station="PACK-3",
            footage_at=now,
            retained_until=now + timedelta(days=30),
        )

    @activity.defn(name=FILE_CARRIER_CLAIM)
    async def file_claim(self, input: FileClaimInput) -> FileClaimResult:
        self.filed.append(input)
        return FileClaimResult(
            claim_reference=f"CLM-{input.tracking_number}", filed_at=datetime.now(UTC)
        )

    @activity.defn(name=CHASE_CARRIER_CLAIM)
    async def chase(self, input: ChaseClaimInput) -> None:
        self.chases.append(input)

    @activity.defn(name=RECORD_CLAIM_OUTCOME)
    async def record_outcome(self, input: RecordReimbursementInput) -> None:
        self.outcomes.setdefault(input.idempotency_key, input)

    def activities(self) -> list[Any]:
        return [
            self.record_transition,
            self.notify,
            self.score_order,
            self.book,
            self.inspect,
            self.restock,
            self.refund,
            self.open_investigation,
            self.gather,
            self.request_cctv,
            self.file_claim,
            self.chase,
            self.record_outcome,
        ]

    def actions(self, workflow_id: str | None = None) -> list[str]:
        return [
            e.action
            for t in self.transitions
            for e in t.entries
            if workflow_id is None or e.workflow_id == workflow_id
        ]

    def entries(self, action: str) -> list[Any]:
        return [e for t in self.transitions for e in t.entries if e.action == action]

    def templates(self) -> list[DeliveryTemplate]:
        return [n.template for n in self.notifications]

    def opened_tasks(self) -> list[str]:
        return [o.task_id for t in self.transitions for o in t.open_tasks]

    def closed_tasks(self) -> list[str]:
        return [c.task_id for t in self.transitions for c in t.close_tasks]


@pytest.fixture
def task_queue() -> str:
    return f"failed-delivery-{uuid.uuid4()}"


async def run_worker(env: WorkflowEnvironment, task_queue: str, world: FakeWorld) -> Worker:
    return Worker(
        env.client,
        task_queue=task_queue,
        workflows=[FailedDeliveryWorkflow, CarrierClaimWorkflow],
        activities=world.activities(),
    )


@pytest.fixture
async def world(
    env: WorkflowEnvironment, task_queue: str, request: pytest.FixtureRequest
) -> AsyncIterator[FakeWorld]:
    fake: FakeWorld = request.param if hasattr(request, "param") else FakeWorld()
    async with await run_worker(env, task_queue, fake):
        yield fake


def with_world(fake: FakeWorld) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("world", [fake], indirect=True)


def shipment(amount_minor: int = 245_000, *, attempt: int = 1, suffix: str = "") -> ShipmentRecord:
    order = make_order(order_id=f"ORD-{uuid.uuid4().hex[:10]}")
    if amount_minor != order.payment.amount_minor:
        item = order.items[0].model_copy(update={"unit_price_minor": amount_minor, "quantity": 1})
        payment = order.payment.model_copy(update={"amount_minor": amount_minor})
        order = order.model_copy(update={"items": [item], "shipping_minor": 0, "payment": payment})
    shipment_id = f"SH-{uuid.uuid4().hex[:8]}{suffix}"
    return ShipmentRecord(
        shipment_id=shipment_id,
        carrier="ups",
        tracking_number=f"1Z{uuid.uuid4().hex[:12].upper()}",
        expected_delivery_at=datetime.now(UTC),
        order=order,
        attempt=attempt,
    )


def event(
    record: ShipmentRecord,
    status: TrackingStatus,
    *,
    tracking: str | None = None,
    at: datetime | None = None,
    event_id: str | None = None,
) -> CarrierEvent:
    return CarrierEvent(
        event_id=event_id or f"evt-{uuid.uuid4().hex[:10]}",
        carrier=record.carrier,
        tracking_number=tracking or record.tracking_number,
        shipment_id=record.shipment_id,
        status=status,
        exception_code="recipient_not_home" if status is TrackingStatus.DELIVERY_FAILED else None,
        location="Paris, FR",
        occurred_at=at or datetime.now(UTC),
    )


async def start(
    env: WorkflowEnvironment,
    task_queue: str,
    record: ShipmentRecord,
    trigger: CarrierEvent | None = None,
    policy: FailedDeliveryPolicy = POLICY,
) -> WorkflowHandle[FailedDeliveryWorkflow, FailedDeliveryResult]:
    trigger = trigger or event(record, TrackingStatus.DELIVERY_FAILED)
    return await env.client.start_workflow(
        FailedDeliveryWorkflow.run,
        FailedDeliveryInput(shipment=record, trigger=trigger, policy=policy),
        id=failed_delivery_id(record.shipment_id),
        task_queue=task_queue,
        start_signal="carrier_event",
        start_signal_args=[trigger],
    )


async def wait_for(
    env: WorkflowEnvironment,
    handle: WorkflowHandle[FailedDeliveryWorkflow, FailedDeliveryResult],
    status: FailedDeliveryStatus,
) -> None:
    # Queries do not skip time; poll a few workflow tasks' worth of real time.
    for _ in range(300):
        if (await handle.query(FailedDeliveryWorkflow.status)).status == status:
            return
        await env.sleep(timedelta(milliseconds=1))
    raise AssertionError(
        f"never reached {status}; now {(await handle.query(FailedDeliveryWorkflow.status)).status}"
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


def received() -> ParcelReceived:
    return ParcelReceived(event_id=f"rcv-{uuid.uuid4().hex[:8]}", received_at=datetime.now(UTC))


# --------------------------------------------------------------------- tests


async def test_customer_silent_default_returns_to_stock_and_refunds_once(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment()
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    # Past the answer deadline and the decision SLA: the default acts.
    await env.sleep(POLICY.customer_answer_timeout + POLICY.decision_sla + timedelta(minutes=1))
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_RETURN)
    await handle.signal(FailedDeliveryWorkflow.parcel_received, received())
    result = await handle.result()

    assert result.status is FailedDeliveryStatus.REFUNDED
    assert result.decision is DeliveryDecision.RETURN_TO_STOCK
    assert world.templates() == [
        DeliveryTemplate.DELIVERY_OPTIONS,
        DeliveryTemplate.DELIVERY_REMINDER,
        DeliveryTemplate.REFUNDED,
    ]
    options = world.notifications[0]
    assert options.options == list(CustomerOption) and options.deadline is not None
    assert list(world.refunds) == [f"{handle.id}/refund-failed-delivery"]
    assert world.refunds[f"{handle.id}/refund-failed-delivery"].amount_minor == 245_000
    assert len(world.inspections) == 1 and len(world.restocks) == 1
    actions = world.actions()
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
    decision = world.entries("decision_return_to_stock")[0]
    assert decision.actor == "steward" and decision.after["by_default"] is True
    assert all(e.order_id == record.order.order_id for t in world.transitions for e in t.entries)
    assert world.opened_tasks() == [f"{handle.id}/decision/1"]
    assert world.closed_tasks() == [f"{handle.id}/decision/1"]


async def test_new_address_low_risk_reship_is_tracked_to_delivery(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment()
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address=NEW_ADDRESS),
    )
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_DECISION)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.recommendation is not None
    assert state.recommendation.decision is DeliveryDecision.RESHIP
    # The new address went through the risk rules with the order's other facts.
    assert world.scored[0].order.shipping_address == NEW_ADDRESS
    assert world.scored[0].order.order_id == record.order.order_id

    after = await handle.execute_update(
        FailedDeliveryWorkflow.decide,
        decide(
            DeliveryDecision.RESHIP,
            address=NEW_ADDRESS,
            service_level=ServiceLevel.SIGNATURE_REQUIRED,
        ),
    )
    assert after.decision is not None and after.decision.actor == "lea"
    await wait_for(env, handle, FailedDeliveryStatus.RESHIPPED)
    booked = world.bookings[0]
    assert booked.destination == NEW_ADDRESS
    assert booked.service_level is ServiceLevel.SIGNATURE_REQUIRED
    assert len(world.scored) == 1  # the reviewed address is not rescored
    reship_tracking = f"RESHIP-{record.shipment_id}"
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        event(record, TrackingStatus.DELIVERED, tracking=reship_tracking),
    )
    result = await handle.result()
    assert result.status is FailedDeliveryStatus.DELIVERED
    assert world.refunds == {}
    assert "address_risk_reviewed" in world.actions()
    assert world.templates()[-1] is DeliveryTemplate.RESHIPPED


@with_world(FakeWorld(HIGH_RISK))
async def test_high_risk_new_address_blocks_reship_to_it(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment()
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address=NEW_ADDRESS),
    )
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_DECISION)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.recommendation is not None and state.recommendation.reship_blocked

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address=NEW_ADDRESS)
        )
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.message.startswith("address: risk review refused")

    # Nobody else decides: the default follows the recommendation (return).
    await env.sleep(POLICY.decision_sla + timedelta(minutes=1))
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_RETURN)
    assert world.bookings == []


async def test_decision_validator_refuses_wrong_role_and_missing_note(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment()
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
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


async def test_second_failure_never_reships_again(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment()
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(FailedDeliveryWorkflow.customer_replied, reply(CustomerOption.RESCHEDULE))
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP))
    await wait_for(env, handle, FailedDeliveryStatus.RESHIPPED)
    reship_tracking = f"RESHIP-{record.shipment_id}"
    failed = event(record, TrackingStatus.DELIVERY_FAILED, tracking=reship_tracking)
    await handle.signal(FailedDeliveryWorkflow.carrier_event, failed)
    await handle.signal(FailedDeliveryWorkflow.carrier_event, failed)  # a duplicate
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_RETURN)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.second_failure
    await handle.signal(FailedDeliveryWorkflow.parcel_received, received())
    result = await handle.result()

    assert result.status is FailedDeliveryStatus.REFUNDED
    assert len(world.bookings) == 1
    assert world.inspections[0].shipment_id == f"{record.shipment_id}-R2"
    assert len(world.refunds) == 1
    assert world.actions().count("second_failure") == 1
    assert world.actions().count("carrier_event") == 1  # the duplicate changed nothing


async def test_parcel_never_returns_opens_a_claim_and_refunds(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment()
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied, reply(CustomerOption.CANCEL_REFUND)
    )
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RETURN_TO_STOCK)
    )
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_RETURN)
    await env.sleep(POLICY.return_timeout + timedelta(minutes=1))
    result = await handle.result()

    assert result.status is FailedDeliveryStatus.REFUNDED
    claim_id = carrier_claim_id(record.carrier, record.tracking_number)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.claim_workflow_ids == [claim_id]
    assert "parcel_not_returned" in world.actions() and "carrier_claim_opened" in world.actions()
    assert world.inspections == [] and world.restocks == []
    # The claim runs on its own, linked to this case (it starts no second remedy).
    claim = env.client.get_workflow_handle(claim_id)
    claim_state = await claim.query(CarrierClaimWorkflow.status)
    assert claim_state.remedy_workflow_id == handle.id
    assert "remedy_started" not in world.actions(claim_id)


@with_world(FakeWorld(frozen_refunds=2))
async def test_refund_frozen_by_dispute_rechecks_then_refunds(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment()
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RETURN_TO_STOCK)
    )
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_RETURN)
    await handle.signal(FailedDeliveryWorkflow.parcel_received, received())
    await wait_for(env, handle, FailedDeliveryStatus.REFUND_FROZEN)
    assert f"{handle.id}/refund_frozen/1" in world.opened_tasks()
    result = await handle.result()

    assert result.status is FailedDeliveryStatus.REFUNDED
    assert len(world.refund_attempts) == 3  # frozen, frozen, refunded
    assert {a.idempotency_key for a in world.refund_attempts} == {
        f"{handle.id}/refund-failed-delivery"
    }
    assert len(world.refunds) == 1
    assert f"{handle.id}/refund_frozen/1" in world.closed_tasks()
    assert world.actions().count("refund_frozen") == 1


async def test_delivered_after_all_closes_the_case_out_of_order_events_ignored(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment()
    failed_at = datetime.now(UTC)
    handle = await start(
        env, task_queue, record, event(record, TrackingStatus.DELIVERY_FAILED, at=failed_at)
    )
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    # An older scan arriving late must not reopen anything.
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        event(record, TrackingStatus.IN_TRANSIT, at=failed_at - timedelta(hours=5)),
    )
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        event(record, TrackingStatus.DELIVERED, at=failed_at + timedelta(hours=20)),
    )
    result = await handle.result()
    assert result.status is FailedDeliveryStatus.DELIVERED
    assert "carrier_event_out_of_order" in world.actions()
    assert world.refunds == {} and world.bookings == []


async def test_reship_of_a_second_attempt_is_refused_and_goes_straight_to_return(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment(attempt=2)
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_RETURN)
    assert world.notifications == []  # no options to offer: it will not ship again
    await handle.signal(FailedDeliveryWorkflow.parcel_received, received())
    result = await handle.result()
    assert result.status is FailedDeliveryStatus.REFUNDED
    assert world.bookings == []


@with_world(FakeWorld(HIGH_RISK))
async def test_coordinator_new_address_is_reviewed_before_it_ships(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment()
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    # Decided on the phone before the customer answered in writing: the new
    # address was never scored, so it is scored now, and it fails.
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address=NEW_ADDRESS)
    )
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_RETURN)
    assert [s.order.shipping_address for s in world.scored] == [NEW_ADDRESS]
    assert world.bookings == []
    assert "reship_blocked_by_risk" in world.actions()


async def test_low_value_new_address_ships_without_review(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment(amount_minor=50_000)  # under the 1,000.00 threshold of POLICY
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address=NEW_ADDRESS)
    )
    await wait_for(env, handle, FailedDeliveryStatus.RESHIPPED)
    assert world.scored == []
    assert world.bookings[0].destination == NEW_ADDRESS


# ------------------------------------------- late delivery after a claim


async def _claim_opened_while_refund_frozen(
    env: WorkflowEnvironment, task_queue: str, record: ShipmentRecord
) -> tuple[WorkflowHandle[FailedDeliveryWorkflow, FailedDeliveryResult], WorkflowHandle[Any, Any]]:
    """Return to stock, the carrier loses the parcel: the case opens a claim,
    then waits on a refund frozen by a dispute (so it is still running)."""
    handle = await start(env, task_queue, record)
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RETURN_TO_STOCK)
    )
    await wait_for(env, handle, FailedDeliveryStatus.AWAITING_RETURN)
    await handle.signal(FailedDeliveryWorkflow.carrier_event, event(record, TrackingStatus.LOST))
    await wait_for(env, handle, FailedDeliveryStatus.REFUND_FROZEN)
    claim_id = carrier_claim_id(record.carrier, record.tracking_number)
    assert (await handle.query(FailedDeliveryWorkflow.status)).claim_workflow_ids == [claim_id]
    return handle, env.client.get_workflow_handle(claim_id)


async def _claim_reaches(
    env: WorkflowEnvironment, claim: WorkflowHandle[Any, Any], status: ClaimStatus
) -> CarrierClaimState:
    for _ in range(300):
        state: CarrierClaimState = await claim.query(
            CarrierClaimWorkflow.status, result_type=CarrierClaimState
        )
        if state.status is status:
            return state
        await env.sleep(timedelta(milliseconds=1))
    raise AssertionError(f"claim never reached {status}")


@with_world(FakeWorld(frozen_refunds=1_000))
async def test_late_delivery_is_forwarded_once_and_withdraws_the_unfiled_claim(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    record = shipment()
    handle, claim = await _claim_opened_while_refund_frozen(env, task_queue, record)
    await _claim_reaches(env, claim, ClaimStatus.GATHERING_EVIDENCE)
    delivered = event(record, TrackingStatus.DELIVERED, at=datetime.now(UTC) + timedelta(hours=1))
    # The carrier's webhook repeats itself: the claim hears of it once.
    await handle.signal(FailedDeliveryWorkflow.carrier_event, delivered)
    await handle.signal(FailedDeliveryWorkflow.carrier_event, delivered)
    result = await claim.result()

    assert result["status"] == ClaimStatus.WITHDRAWN
    assert world.filed == [] and world.outcomes == {}
    claim_actions = world.actions(claim.id)
    assert claim_actions.count("parcel_found") == 1
    assert claim_actions.count("carrier_event") == 1
    state = await claim.query(CarrierClaimWorkflow.status, result_type=CarrierClaimState)
    assert state.found_at == delivered.occurred_at
    # The case's own audit goes out with its next step: here, giving up the
    # frozen refund at its deadline.
    assert (await handle.result()).status is FailedDeliveryStatus.CLOSED
    forwarded = world.entries("carrier_event_forwarded")
    assert len(forwarded) == 1
    assert forwarded[0].after == {"event_id": delivered.event_id, "claim_workflow_id": claim.id}


@with_world(FakeWorld(frozen_refunds=1_000))
async def test_late_delivery_after_filing_is_recorded_on_the_claim(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> None:
    world.cctv_expired = True  # no clip to wait for: the claim is filed at once
    record = shipment()
    handle, claim = await _claim_opened_while_refund_frozen(env, task_queue, record)
    await _claim_reaches(env, claim, ClaimStatus.FILED)
    delivered = event(record, TrackingStatus.DELIVERED, at=datetime.now(UTC) + timedelta(hours=1))
    await handle.signal(FailedDeliveryWorkflow.carrier_event, delivered)
    # On record at once, not when the carrier answers weeks later.
    for _ in range(300):
        if "parcel_found_after_filing" in world.actions(claim.id):
            break
        await env.sleep(timedelta(milliseconds=1))
    found = world.entries("parcel_found_after_filing")
    assert len(found) == 1 and "CLM-" in found[0].reason
    state = await claim.query(CarrierClaimWorkflow.status, result_type=CarrierClaimState)
    assert state.status is ClaimStatus.FILED and state.found_at == delivered.occurred_at
    assert world.chases == []  # woken early, but the chase cadence is unchanged

    await claim.signal(
        "claim_outcome",
        ClaimOutcome(event_id="out-1", approved=False, currency="EUR", note="delivered"),
    )
    result = await claim.result()
    assert result["status"] == ClaimStatus.REJECTED
    assert len(world.filed) == 1
