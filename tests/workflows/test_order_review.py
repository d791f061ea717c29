"""Order review under time skipping: every path, every deadline.

The outside world (scoring, payment provider, warehouse, notifications, the
store) is the harness's FakeWorld, registered under the real activity names,
so these tests exercise the workflow's timing and decisions only; the real
activities are covered by tests/integration.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from domain.common import Role
from domain.ids import order_review_id
from domain.orders import Order
from domain.review import (
    CURRENT_REVIEW_REVISION,
    CancelRequest,
    CustomerAnswer,
    DecideInput,
    DecisionReason,
    DefaultAction,
    EarlyFraudWarning,
    OrderReviewContract,
    OrderReviewInput,
    OrderReviewResult,
    ReviewDecision,
    ReviewPolicy,
    ReviewStatus,
)
from domain.risk import ReasonCode, RiskAssessment, RiskBand, Routing
from tests.factories import make_order
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from workflows.order_review import OrderReviewWorkflow

POLICY = ReviewPolicy(
    review_sla=timedelta(hours=4),
    reminder_after=timedelta(hours=2),
    auth_expiry_margin=timedelta(hours=6),
    customer_answer_timeout=timedelta(hours=48),
    default_action=DefaultAction.DECLINE,
)

ACCEPT = RiskAssessment(
    score=5, band=RiskBand.LOW, routing=Routing.AUTO_ACCEPT, reason_codes=[], rule_set_version="t"
)
REVIEW = RiskAssessment(
    score=55,
    band=RiskBand.MEDIUM,
    routing=Routing.REVIEW,
    reason_codes=[ReasonCode.AVS_MISMATCH, ReasonCode.NEW_ACCOUNT_HIGH_VALUE],
    rule_set_version="t",
)
DECLINE = RiskAssessment(
    score=95,
    band=RiskBand.HIGH,
    routing=Routing.AUTO_DECLINE,
    reason_codes=[ReasonCode.BLOCKLIST_CARD],
    rule_set_version="t",
)

# Scored for a person's review unless a test says otherwise.
pytestmark = [pytest.mark.workflows([OrderReviewWorkflow]), pytest.mark.world(risk=REVIEW)]

Handle = WorkflowHandle[OrderReviewWorkflow, OrderReviewResult]


def world(assessment: RiskAssessment, **knobs: Any) -> pytest.MarkDecorator:
    return pytest.mark.world(risk=assessment, **knobs)


def fresh_order(now: datetime, auth_valid_for: timedelta = timedelta(days=7)) -> Order:
    order = make_order(order_id=f"ORD-{uuid.uuid4().hex[:10]}", now=now)
    payment = order.payment.model_copy(
        update={"authorised_at": now, "authorisation_expires_at": now + auth_valid_for}
    )
    return order.model_copy(update={"payment": payment, "placed_at": now})


async def start(
    harness: Harness,
    order: Order | None = None,
    policy: ReviewPolicy = POLICY,
    *,
    revision: int = CURRENT_REVIEW_REVISION,
    **options: Any,
) -> Handle:
    order = order or fresh_order(harness.now())
    return await harness.start(
        OrderReviewWorkflow.run,
        OrderReviewInput(order=order, policy=policy, revision=revision),
        id=order_review_id(order.order_id),
        **options,
    )


async def state_of(handle: Handle) -> ReviewStatus:
    return (await handle.query(OrderReviewWorkflow.status)).status


def decide(
    decision: ReviewDecision,
    reason: DecisionReason = DecisionReason.VERIFIED_CUSTOMER,
    *,
    actor: str = "alice",
    role: Role = Role.COORDINATOR,
    note: str = "checked",
) -> DecideInput:
    return DecideInput(decision=decision, reason_code=reason, note=note, actor=actor, role=role)


@world(ACCEPT)
async def test_auto_accept_captures_once_and_releases(harness: Harness, world: FakeWorld) -> None:
    order = fresh_order(harness.now())
    handle = await start(harness, order)
    result = await handle.result()

    assert result.status is ReviewStatus.RELEASED
    assert result.captured_minor == order.payment.amount_minor
    assert world.payments.kinds() == ["capture"]
    assert world.payments.operations[0].idempotency_key == f"{handle.id}/capture"
    assert len(world.warehouse.releases) == 1
    assert world.notifications.sent == []  # order management confirms accepted orders
    actions = world.audit.actions()
    assert actions[:2] == ["review_started", "scored"]
    assert "payment_captured" in actions
    assert world.audit.transitions[-1].case is not None
    assert world.audit.transitions[-1].case.status == ReviewStatus.RELEASED
    assert world.audit.opened_tasks() == []


@world(ACCEPT)
async def test_auto_accept_path_stays_within_30_history_events(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    await handle.result()
    events = [e async for e in handle.fetch_history_events()]
    assert len(events) <= 30, [e.event_type for e in events]


@world(ACCEPT)
async def test_revision_2_writes_the_received_step_with_the_scoring_step(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    await handle.result()

    # Two writes: everything up to capturing, then released.
    steps = world.audit.transitions
    assert [t.case.status if t.case else None for t in steps] == [
        ReviewStatus.CAPTURING,
        ReviewStatus.RELEASED,
    ]
    first = [(e.action, e.after.get("status")) for e in steps[0].entries]
    assert first[:3] == [
        ("review_started", None),
        ("scored", None),
        ("status_changed", "scored"),
    ]
    assert first[-1] == ("status_changed", "capturing")
    # One id per entry (the store keeps the order: time, then insertion).
    ids = [e.entry_id for t in steps for e in t.entries]
    assert len(set(ids)) == len(ids)

    events = [e async for e in handle.fetch_history_events()]
    kinds = [EventType.Name(e.event_type) for e in events]
    first_activity = kinds.index("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED")
    # Nothing but the scoring activity in the first workflow task.
    assert "EVENT_TYPE_MARKER_RECORDED" not in kinds[:first_activity]
    assert "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" not in kinds[:first_activity]
    # One upsert, released, at the end: the capture succeeded at once, so
    # capturing lasted milliseconds and was not worth a visibility write.
    assert kinds.count("EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES") == 1
    assert upserted_statuses(events) == ["released"]
    assert kinds.count("EVENT_TYPE_MARKER_RECORDED") == 2
    assert len(events) <= 26


def upserted_statuses(events: list[HistoryEvent]) -> list[str]:
    statuses = []
    for e in events:
        if e.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes
            statuses.append(json.loads(fields.indexed_fields["StewardStatus"].data))
    return statuses


@world(ACCEPT, capture_outages=2)
async def test_revision_2_shows_a_stalled_capture_and_captures_once(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    result = await handle.result()

    assert result.status is ReviewStatus.RELEASED
    # The first try, then the retried activity: once more down, then through.
    assert world.payments.capture_attempts == 3
    assert [p.idempotency_key for p in world.payments.operations] == [f"{handle.id}/capture"]
    actions = world.audit.actions()
    assert actions.count("capture_retrying") == 1
    assert actions.index("capture_retrying") < actions.index("payment_captured")
    retrying = next(
        e for t in world.audit.transitions for e in t.entries if e.action == "capture_retrying"
    )
    assert "503" in retrying.reason
    events = [e async for e in handle.fetch_history_events()]
    # Ops saw it as capturing while it stalled.
    assert upserted_statuses(events) == ["capturing", "released"]


@world(ACCEPT, capture_rate_limited=True)
async def test_revision_2_waits_as_long_as_a_rate_limited_provider_asks(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    result = await handle.result()
    assert result.status is ReviewStatus.RELEASED
    assert world.payments.capture_attempts == 2
    events = [e async for e in handle.fetch_history_events()]
    timers = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for e in events
        if e.HasField("timer_started_event_attributes")
    ]
    assert timers == [timedelta(seconds=30)]


@world(ACCEPT, refuse_capture=True)
async def test_revision_2_refused_capture_is_not_retried(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    result = await handle.result()
    assert result.status is ReviewStatus.CANCELLED
    assert world.payments.capture_attempts == 1
    actions = world.audit.actions()
    assert "capture_failed" in actions and "capture_retrying" not in actions


@world(ACCEPT)
async def test_revision_1_runs_keep_writing_the_received_step_first(
    harness: Harness, world: FakeWorld
) -> None:
    # Runs started before revision 2 (their input has no revision) keep the
    # behaviour they started with, so their histories replay.
    handle = await start(harness, revision=1)
    await handle.result()
    assert [t.case.status if t.case else None for t in world.audit.transitions] == [
        ReviewStatus.RECEIVED,
        ReviewStatus.CAPTURING,
        ReviewStatus.RELEASED,
    ]
    assert OrderReviewInput.model_validate({"order": fresh_order(harness.now())}).revision == 1


@world(DECLINE)
async def test_auto_decline_voids_cancels_and_notifies(harness: Harness, world: FakeWorld) -> None:
    handle = await start(harness)
    result = await handle.result()

    assert result.status is ReviewStatus.CANCELLED
    assert result.captured_minor == 0
    assert world.payments.kinds() == ["void"]
    assert world.warehouse.releases == []
    assert [n.template for n in world.notifications.sent] == ["order_cancelled"]
    assert [o[:2] for o in world.audit.outcomes()] == [(result.order_id, "cancelled_fraud")]
    state = await handle.query(OrderReviewWorkflow.status)
    assert [h.status for h in state.history][-3:] == [
        ReviewStatus.AUTO_DECLINED,
        ReviewStatus.CANCELLING,
        ReviewStatus.CANCELLED,
    ]


@world(REVIEW)
async def test_review_approved_by_coordinator(harness: Harness, world: FakeWorld) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    state = await handle.query(OrderReviewWorkflow.status)
    assert state.awaited_role is Role.COORDINATOR
    assert state.due_at is not None

    after = await handle.execute_update(OrderReviewWorkflow.decide, decide(ReviewDecision.APPROVE))
    assert after.status in (ReviewStatus.CAPTURING, ReviewStatus.RELEASED)
    result = await handle.result()

    assert result.status is ReviewStatus.RELEASED
    assert result.decided_by == "alice"
    assert result.reason_code is DecisionReason.VERIFIED_CUSTOMER
    assert world.payments.kinds() == ["capture"]
    assert world.audit.opened_tasks() == [f"{handle.id}/review/1"]
    assert world.audit.closed_tasks() == [f"{handle.id}/review/1"]
    assert "decision_approve" in world.audit.actions()


@world(REVIEW)
async def test_validator_rejects_wrong_role_reserved_reason_and_bare_decline(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)

    with pytest.raises(WorkflowUpdateFailedError) as wrong_role:
        await handle.execute_update(
            OrderReviewWorkflow.decide,
            decide(ReviewDecision.APPROVE, actor="olga", role=Role.OPS),
        )
    assert "role" in str(wrong_role.value.cause)

    with pytest.raises(WorkflowUpdateFailedError) as reserved:
        await handle.execute_update(
            OrderReviewWorkflow.decide, decide(ReviewDecision.APPROVE, DecisionReason.AUTOMATIC)
        )
    assert "reason_code" in str(reserved.value.cause)

    with pytest.raises(WorkflowUpdateFailedError) as bare:
        await handle.execute_update(
            OrderReviewWorkflow.decide,
            decide(ReviewDecision.DECLINE, DecisionReason.SUSPECTED_FRAUD, note=""),
        )
    assert "note" in str(bare.value.cause)

    # Nothing moved and the review still waits.
    assert await state_of(handle) is ReviewStatus.AWAITING_REVIEW
    assert world.payments.operations == []
    await handle.execute_update(
        OrderReviewWorkflow.decide,
        decide(ReviewDecision.DECLINE, DecisionReason.SUSPECTED_FRAUD, note="card reported"),
    )
    assert (await handle.result()).status is ReviewStatus.CANCELLED


@world(REVIEW, void_outages=2)
async def test_decline_closes_the_task_before_a_stalled_void_and_answers_cancelling(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)

    answer = await handle.execute_update(
        OrderReviewWorkflow.decide,
        decide(ReviewDecision.DECLINE, DecisionReason.STOLEN_CARD, note="issuer confirmed"),
    )
    # The coordinator sees where the decision led, not the status it ended.
    assert answer.status is ReviewStatus.CANCELLING
    assert answer.awaited_role is None

    result = await handle.result()
    assert result.status is ReviewStatus.CANCELLED
    assert world.payments.void_attempts == 3
    assert world.payments.kinds() == ["void"]
    # Before the provider was first asked, the task had left the work queue
    # and the case row said cancelling.
    assert world.payments.closed_tasks_at_first_void == world.audit.opened_tasks()
    assert world.payments.case_status_at_first_void == ReviewStatus.CANCELLING
    state = await handle.query(OrderReviewWorkflow.status)
    assert [h.status for h in state.history][-2:] == [
        ReviewStatus.CANCELLING,
        ReviewStatus.CANCELLED,
    ]
    cancelling = next(h for h in state.history if h.status is ReviewStatus.CANCELLING)
    assert cancelling.actor == "alice" and cancelling.reason == "issuer confirmed"
    events = [e async for e in handle.fetch_history_events()]
    assert upserted_statuses(events)[-2:] == ["cancelling", "cancelled"]


@world(REVIEW)
async def test_revision_2_decline_keeps_its_old_steps(harness: Harness, world: FakeWorld) -> None:
    handle = await start(harness, revision=2)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    answer = await handle.execute_update(
        OrderReviewWorkflow.decide,
        decide(ReviewDecision.DECLINE, DecisionReason.SUSPECTED_FRAUD, note="card reported"),
    )
    assert answer.status is ReviewStatus.AWAITING_REVIEW
    assert (await handle.result()).status is ReviewStatus.CANCELLED
    state = await handle.query(OrderReviewWorkflow.status)
    assert ReviewStatus.CANCELLING not in [h.status for h in state.history]


@world(REVIEW)
async def test_duplicate_decision_is_refused_and_money_moves_once(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    await handle.execute_update(OrderReviewWorkflow.decide, decide(ReviewDecision.APPROVE))
    await handle.result()

    # The review is closed: the server refuses an update on a completed workflow.
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update(OrderReviewWorkflow.decide, decide(ReviewDecision.APPROVE))
    assert world.payments.kinds() == ["capture"]
    decisions = (await handle.query(OrderReviewWorkflow.status)).decisions
    assert len(decisions) == 1


@world(REVIEW)
async def test_second_decision_while_capturing_is_refused(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    first = await handle.execute_update(OrderReviewWorkflow.decide, decide(ReviewDecision.APPROVE))
    if first.status is ReviewStatus.CAPTURING:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                OrderReviewWorkflow.decide,
                decide(ReviewDecision.DECLINE, DecisionReason.STOLEN_CARD, actor="bob"),
            )
        assert "not awaiting a decision" in str(refused.value.cause) or "closed" in str(
            refused.value.cause
        )
    await handle.result()
    assert world.payments.kinds() == ["capture"]


@world(REVIEW)
async def test_sla_reminder_then_escalation_to_manager(harness: Harness, world: FakeWorld) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)

    await harness.sleep(POLICY.reminder_after + timedelta(minutes=1))
    state = await handle.query(OrderReviewWorkflow.status)
    assert state.reminders_sent == 1
    assert not state.escalated
    assert "review_reminder" in world.audit.actions()

    await harness.sleep(POLICY.review_sla - POLICY.reminder_after)
    state = await handle.query(OrderReviewWorkflow.status)
    assert state.escalated
    assert state.awaited_role is Role.MANAGER
    assert state.due_at == state.hard_deadline
    updates = [u for t in world.audit.transitions for u in t.update_tasks]
    assert any(u.escalated and u.awaited_role is Role.MANAGER for u in updates)

    # Once escalated, a coordinator may no longer decide; a manager may.
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(OrderReviewWorkflow.decide, decide(ReviewDecision.APPROVE))
    await handle.execute_update(
        OrderReviewWorkflow.decide,
        decide(ReviewDecision.APPROVE, actor="marc", role=Role.MANAGER),
    )
    result = await handle.result()
    assert result.status is ReviewStatus.RELEASED
    assert result.decided_by == "marc"


@world(REVIEW)
async def test_default_declines_before_the_authorisation_expires(
    harness: Harness, world: FakeWorld
) -> None:
    order = fresh_order(harness.now(), auth_valid_for=timedelta(days=3))
    handle = await start(harness, order)
    result = await handle.result()  # time skips through the whole ladder

    assert result.status is ReviewStatus.CANCELLED
    assert result.reason_code is DecisionReason.POLICY_DEFAULT
    assert world.payments.kinds() == ["void"]
    # Nobody judged it: a default decline is no fraud decline.
    assert [o[1] for o in world.audit.outcomes()] == ["cancelled"]
    state = await handle.query(OrderReviewWorkflow.status)
    assert state.escalated and state.reminders_sent == 1
    cancelled_at = state.history[-1].at
    assert cancelled_at <= order.payment.authorisation_expires_at - POLICY.auth_expiry_margin + (
        timedelta(minutes=1)
    )
    assert cancelled_at < order.payment.authorisation_expires_at


@world(REVIEW)
async def test_default_can_be_configured_to_approve(harness: Harness, world: FakeWorld) -> None:
    policy = POLICY.model_copy(update={"default_action": DefaultAction.APPROVE})
    handle = await start(harness, fresh_order(harness.now(), timedelta(days=2)), policy)
    result = await handle.result()
    assert result.status is ReviewStatus.RELEASED
    assert world.payments.kinds() == ["capture"]


@world(REVIEW)
async def test_authorisation_already_near_expiry_applies_default_at_once(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, fresh_order(harness.now(), auth_valid_for=timedelta(hours=3)))
    result = await handle.result()
    assert result.status is ReviewStatus.CANCELLED
    assert result.reason_code is DecisionReason.POLICY_DEFAULT
    assert world.audit.opened_tasks() == []  # nobody is asked to review a lost cause


@world(REVIEW)
async def test_ask_customer_then_answer_returns_to_review(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    after = await handle.execute_update(
        OrderReviewWorkflow.decide,
        decide(ReviewDecision.ASK_CUSTOMER, DecisionReason.IDENTITY_CHECK_NEEDED),
    )
    assert after.status is ReviewStatus.AWAITING_CUSTOMER
    # The request goes out right after the update returns.
    await eventually(lambda: world.notifications.sent, what="the verification request")
    assert [n.template for n in world.notifications.sent] == ["verification_request"]

    answer = CustomerAnswer(event_id="cs-1", confirmed=True, message="yes, it was me")
    await handle.signal(OrderReviewWorkflow.customer_answered, answer)
    await handle.signal(OrderReviewWorkflow.customer_answered, answer)  # duplicate delivery
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    state = await handle.query(OrderReviewWorkflow.status)
    assert len(state.customer_answers) == 1
    assert world.audit.opened_tasks() == [f"{handle.id}/review/1", f"{handle.id}/review/2"]

    await handle.execute_update(
        OrderReviewWorkflow.decide,
        decide(ReviewDecision.APPROVE, DecisionReason.CUSTOMER_CONFIRMED),
    )
    assert (await handle.result()).status is ReviewStatus.RELEASED
    assert world.audit.actions().count("customer_answered") == 1


@world(REVIEW)
async def test_customer_answer_timeout_returns_to_review(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    await handle.execute_update(
        OrderReviewWorkflow.decide,
        decide(ReviewDecision.ASK_CUSTOMER, DecisionReason.IDENTITY_CHECK_NEEDED),
    )
    await harness.sleep(POLICY.customer_answer_timeout + timedelta(minutes=1))
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    assert "customer_answer_timeout" in world.audit.actions()

    await handle.execute_update(
        OrderReviewWorkflow.decide,
        decide(ReviewDecision.DECLINE, DecisionReason.CUSTOMER_UNREACHABLE, note="no answer"),
    )
    assert (await handle.result()).status is ReviewStatus.CANCELLED
    assert world.payments.kinds() == ["void"]


@world(REVIEW)
async def test_upstream_cancel_during_review_voids(harness: Harness, world: FakeWorld) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    cancel = CancelRequest(event_id="oms-77", reason="customer changed their mind")
    await handle.signal(OrderReviewWorkflow.cancel, cancel)
    await handle.signal(OrderReviewWorkflow.cancel, cancel)

    result = await handle.result()
    assert result.status is ReviewStatus.CANCELLED
    assert world.payments.kinds() == ["void"]
    assert world.audit.actions().count("cancel_requested") == 1
    assert world.audit.closed_tasks() == [f"{handle.id}/review/1"]
    assert world.audit.outcomes() == [(result.order_id, "cancelled", f"{handle.id}#cancelled")]


@world(ACCEPT, refuse_capture=True)
async def test_refused_capture_cancels_the_order(harness: Harness, world: FakeWorld) -> None:
    handle = await start(harness)
    result = await handle.result()
    assert result.status is ReviewStatus.CANCELLED
    assert result.captured_minor == 0
    assert "capture_failed" in world.audit.actions()


# ------------------------------------------------- early fraud warning (issue 15)


def warning(event_id: str = "evt_efw_1") -> EarlyFraudWarning:
    return EarlyFraudWarning(
        event_id=event_id,
        provider="stripe",
        dispute_id="issfr_1",
        reason_code="fraudulent",
        occurred_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )


@world(ACCEPT)
async def test_early_fraud_warning_sends_an_auto_accepted_order_to_a_person(
    harness: Harness, world: FakeWorld
) -> None:
    order = fresh_order(harness.now())
    # The warning reaches the review before its scoring answers.
    handle = await start(
        harness,
        order,
        start_signal=OrderReviewContract.SIGNAL_EARLY_FRAUD_WARNING,
        start_signal_args=[warning()],
    )
    await handle.signal(OrderReviewWorkflow.early_fraud_warning, warning())  # redelivered
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    state = await handle.query(OrderReviewWorkflow.status)
    assert [w.dispute_id for w in state.early_fraud_warnings] == ["issfr_1"]
    assert world.payments.kinds() == []  # nothing captured without a person
    routed = world.audit.entry("routed_to_review")
    assert "early fraud warning issfr_1 from stripe (fraudulent)" in routed.reason
    assert world.audit.actions().count("early_fraud_warning") == 1

    await handle.execute_update(OrderReviewWorkflow.decide, decide(ReviewDecision.DECLINE))
    result = await handle.result()
    assert result.status is ReviewStatus.CANCELLED
    assert world.payments.kinds() == ["void"]


async def test_early_fraud_warning_during_review_is_on_record_for_the_coordinator(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    await handle.signal(OrderReviewWorkflow.early_fraud_warning, warning("evt_efw_2"))
    state = await handle.query(OrderReviewWorkflow.status)
    assert state.status is ReviewStatus.AWAITING_REVIEW
    assert [w.event_id for w in state.early_fraud_warnings] == ["evt_efw_2"]
    await handle.execute_update(OrderReviewWorkflow.decide, decide(ReviewDecision.DECLINE))
    await handle.result()
    entry = world.audit.entry("early_fraud_warning")
    assert entry.after == {"event_id": "evt_efw_2", "status_at_warning": "awaiting_review"}
    assert "routed_to_review" not in world.audit.actions()  # already with a person
