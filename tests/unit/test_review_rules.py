"""Pure review rules: who may decide what, and when the deadline falls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.common import Role
from domain.review import (
    DecideInput,
    DecisionReason,
    DecisionRejected,
    OrderReviewState,
    ReviewDecision,
    ReviewPolicy,
    ReviewStatus,
    hard_deadline,
    review_policy_for,
    validate_decision,
)
from tests.factories import make_order


def state(status: ReviewStatus = ReviewStatus.AWAITING_REVIEW, **kw: object) -> OrderReviewState:
    return OrderReviewState(
        order_id="A1", market="FR", status=status, amount_minor=1000, currency="EUR", **kw
    )


def decision(
    kind: ReviewDecision = ReviewDecision.APPROVE,
    reason: DecisionReason = DecisionReason.VERIFIED_CUSTOMER,
    role: Role = Role.COORDINATOR,
    note: str = "ok",
) -> DecideInput:
    return DecideInput(decision=kind, reason_code=reason, note=note, actor="alice", role=role)


def test_coordinator_may_approve_an_open_review() -> None:
    validate_decision(state(), decision())


@pytest.mark.parametrize("role", [Role.OPS, Role.FINANCE, Role.SYSTEM, Role.AUDITOR])
def test_other_roles_may_not_decide(role: Role) -> None:
    with pytest.raises(DecisionRejected, match="role"):
        validate_decision(state(), decision(role=role))


@pytest.mark.parametrize("status", [ReviewStatus.RELEASED, ReviewStatus.CANCELLED])
def test_closed_review_refuses_decisions(status: ReviewStatus) -> None:
    with pytest.raises(DecisionRejected, match="closed"):
        validate_decision(state(status), decision())


@pytest.mark.parametrize(
    "status",
    [ReviewStatus.RECEIVED, ReviewStatus.SCORED, ReviewStatus.CAPTURING, ReviewStatus.CANCELLING],
)
def test_review_not_awaiting_refuses_decisions(status: ReviewStatus) -> None:
    with pytest.raises(DecisionRejected, match="not awaiting"):
        validate_decision(state(status), decision())


def test_escalated_review_needs_a_manager() -> None:
    escalated = state(escalated=True)
    with pytest.raises(DecisionRejected, match="manager"):
        validate_decision(escalated, decision())
    validate_decision(escalated, decision(role=Role.MANAGER))


def test_decline_needs_a_note() -> None:
    with pytest.raises(DecisionRejected, match="note"):
        validate_decision(state(), decision(ReviewDecision.DECLINE, note="  "))


@pytest.mark.parametrize("reason", [DecisionReason.POLICY_DEFAULT, DecisionReason.AUTOMATIC])
def test_reserved_reasons_are_refused(reason: DecisionReason) -> None:
    with pytest.raises(DecisionRejected, match="reason_code"):
        validate_decision(state(), decision(reason=reason))


def test_customer_cannot_be_asked_twice() -> None:
    with pytest.raises(DecisionRejected, match="already been asked"):
        validate_decision(
            state(ReviewStatus.AWAITING_CUSTOMER),
            decision(ReviewDecision.ASK_CUSTOMER, DecisionReason.IDENTITY_CHECK_NEEDED),
        )


def test_missing_reason_or_actor_fails_validation_naming_the_field() -> None:
    with pytest.raises(ValidationError) as missing:
        DecideInput.model_validate({"decision": "approve", "actor": "alice", "role": "coordinator"})
    assert missing.value.errors()[0]["loc"] == ("reason_code",)
    with pytest.raises(ValidationError) as blank:
        DecideInput.model_validate(
            {
                "decision": "approve",
                "reason_code": "verified_customer",
                "actor": " ",
                "role": "coordinator",
            }
        )
    assert blank.value.errors()[0]["loc"] == ("actor",)


def test_hard_deadline_keeps_a_margin_before_authorisation_expiry() -> None:
    order = make_order(order_id="A1")
    policy = ReviewPolicy(auth_expiry_margin=timedelta(hours=6))
    assert hard_deadline(order, policy) == order.payment.authorisation_expires_at - timedelta(
        hours=6
    )


def test_policy_per_market_with_a_default() -> None:
    assert review_policy_for("FR").review_sla == timedelta(hours=2)
    assert review_policy_for("ZZ") == ReviewPolicy()


def test_policy_refuses_a_reminder_after_the_sla() -> None:
    with pytest.raises(ValidationError, match="reminder_after"):
        ReviewPolicy(review_sla=timedelta(hours=1), reminder_after=timedelta(hours=2))


def test_order_refuses_payment_not_matching_its_total() -> None:
    order = make_order(order_id="A1")
    data = order.model_dump()
    data["payment"]["amount_minor"] += 1
    with pytest.raises(ValidationError, match="amount_minor"):
        type(order).model_validate(data)


def test_order_refuses_a_malformed_currency_naming_the_field() -> None:
    data = make_order(order_id="A1").model_dump()
    data["currency"] = "euro"
    with pytest.raises(ValidationError) as bad:
        type(make_order(order_id="A1")).model_validate(data)
    assert ("currency",) in [e["loc"] for e in bad.value.errors()]


def test_authorisation_must_expire_after_it_was_given() -> None:
    data = make_order(order_id="A1").model_dump()
    data["payment"]["authorisation_expires_at"] = datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="authorisation_expires_at"):
        type(make_order(order_id="A1")).model_validate(data)
