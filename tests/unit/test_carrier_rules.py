"""Failed-delivery recommendation and decision rules, claim deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.carrier_events import TrackingStatus
from domain.claims import ClaimPolicy, ClaimType, claim_policy_for, file_by, filing_deadline
from domain.common import Role
from domain.deliveries import (
    CustomerOption,
    CustomerReply,
    DeliveryDecideInput,
    DeliveryDecision,
    DeliveryDecisionRejected,
    FailedDeliveryPolicy,
    FailedDeliveryState,
    FailedDeliveryStatus,
    Recommendation,
    ShipmentRecord,
    needs_risk_review,
    recommend,
    validate_delivery_decision,
)
from domain.orders import Address
from domain.risk import ReasonCode, RiskAssessment, RiskBand, Routing
from tests.factories import make_order

POLICY = FailedDeliveryPolicy(high_value_minor=100_000)
NEW = Address(line1="1 Rue du Bac", city="Lyon", postal_code="69001", country="FR")
RISKY = RiskAssessment(
    score=92,
    band=RiskBand.HIGH,
    routing=Routing.AUTO_DECLINE,
    reason_codes=[ReasonCode.FREIGHT_FORWARDER],
    rule_set_version="t",
)


def shipment(amount: int = 245_000) -> ShipmentRecord:
    order = make_order("FR-9")
    assert order.payment.amount_minor == 245_000
    if amount != 245_000:
        item = order.items[0].model_copy(update={"unit_price_minor": amount, "quantity": 1})
        payment = order.payment.model_copy(update={"amount_minor": amount})
        order = order.model_copy(update={"items": [item], "shipping_minor": 0, "payment": payment})
    return ShipmentRecord(
        shipment_id="SH-1",
        carrier="ups",
        tracking_number="1Z1",
        expected_delivery_at=datetime.now(UTC),
        order=order,
    )


def reply(option: CustomerOption, **kwargs: object) -> CustomerReply:
    return CustomerReply.model_validate({"event_id": "m1", "option": option, **kwargs})


def advice(
    reply_: CustomerReply | None, *, attempt: int = 1, risk: RiskAssessment | None = None
) -> Recommendation:
    return recommend(
        reply=reply_,
        attempt=attempt,
        amount_minor=245_000,
        policy=POLICY,
        risk=risk,
        trigger=TrackingStatus.DELIVERY_FAILED,
    )


def test_recommendations() -> None:
    assert advice(None).decision is DeliveryDecision.RETURN_TO_STOCK
    assert "did not answer" in advice(None).reasons[0]
    assert advice(reply(CustomerOption.RESCHEDULE)).decision is DeliveryDecision.RESHIP
    assert advice(reply(CustomerOption.CANCEL_REFUND)).decision is DeliveryDecision.RETURN_TO_STOCK
    assert (
        advice(reply(CustomerOption.RESCHEDULE), attempt=2).decision
        is DeliveryDecision.RETURN_TO_STOCK
    )
    blocked = advice(reply(CustomerOption.NEW_ADDRESS, address=NEW), risk=RISKY)
    assert blocked.decision is DeliveryDecision.RETURN_TO_STOCK and blocked.reship_blocked
    assert "scored 92" in blocked.reasons[0]
    high_value = advice(reply(CustomerOption.PICKUP_POINT, pickup_point_id="PP-1"))
    assert any("signature required" in r for r in high_value.reasons)


def test_customer_reply_needs_the_details_of_its_option() -> None:
    with pytest.raises(ValidationError, match="address is required when option is new_address"):
        reply(CustomerOption.NEW_ADDRESS)
    with pytest.raises(ValidationError, match="pickup_point_id is required"):
        reply(CustomerOption.PICKUP_POINT)


def test_risk_review_only_for_a_new_address_on_a_high_value_parcel() -> None:
    record = shipment()
    assert needs_risk_review(record, NEW, POLICY)
    assert not needs_risk_review(record, None, POLICY)
    same = record.order.shipping_address.model_copy(
        update={"city": record.order.shipping_address.city.upper()}
    )
    assert not needs_risk_review(record, same, POLICY)
    assert not needs_risk_review(shipment(50_000), NEW, POLICY)


def state(**kwargs: object) -> FailedDeliveryState:
    base: dict[str, object] = {
        "shipment_id": "SH-1",
        "order_id": "FR-9",
        "carrier": "ups",
        "tracking_number": "1Z1",
        "status": FailedDeliveryStatus.AWAITING_DECISION,
        "attempt": 1,
        "amount_minor": 245_000,
        "currency": "EUR",
        "trigger_status": TrackingStatus.DELIVERY_FAILED,
    }
    return FailedDeliveryState.model_validate({**base, **kwargs})


def decision(kind: DeliveryDecision, **kwargs: object) -> DeliveryDecideInput:
    data: dict[str, object] = {
        "decision": kind,
        "actor": "lea",
        "role": Role.COORDINATOR,
        "note": "ok",
    }
    return DeliveryDecideInput.model_validate({**data, **kwargs})


@pytest.mark.parametrize(
    ("current", "proposed", "message"),
    [
        (
            state(),
            decision(DeliveryDecision.RESHIP, role=Role.FINANCE),
            "role: finance may not decide",
        ),
        (state(status=FailedDeliveryStatus.REFUNDED), decision(DeliveryDecision.RESHIP), "status:"),
        (
            state(attempt=2),
            decision(DeliveryDecision.RESHIP),
            "decision: this parcel already failed twice",
        ),
        (state(second_failure=True), decision(DeliveryDecision.RESHIP), "never reships"),
        (state(), decision(DeliveryDecision.RETURN_TO_STOCK, note=""), "note:"),
        (
            state(),
            decision(DeliveryDecision.RETURN_TO_STOCK, address=NEW),
            "address: only a reship",
        ),
        (
            state(
                customer_reply=reply(CustomerOption.NEW_ADDRESS, address=NEW),
                recommendation=Recommendation(
                    decision=DeliveryDecision.RETURN_TO_STOCK, reasons=["risk"], reship_blocked=True
                ),
            ),
            decision(DeliveryDecision.RESHIP, address=NEW),
            "address: risk review refused",
        ),
    ],
)
def test_decision_refusals_name_the_field(
    current: FailedDeliveryState, proposed: DeliveryDecideInput, message: str
) -> None:
    with pytest.raises(DeliveryDecisionRejected, match=message):
        validate_delivery_decision(current, proposed)


def test_valid_decisions_pass() -> None:
    validate_delivery_decision(state(), decision(DeliveryDecision.RESHIP, address=NEW))
    validate_delivery_decision(
        state(status=FailedDeliveryStatus.AWAITING_CUSTOMER),
        decision(DeliveryDecision.RETURN_TO_STOCK, role=Role.MANAGER),
    )


def test_policy_refuses_a_reminder_after_the_deadline() -> None:
    with pytest.raises(ValidationError, match="customer_reminder_after must be shorter"):
        FailedDeliveryPolicy(customer_reminder_after=timedelta(days=4))


def test_claim_deadlines_per_carrier_and_type() -> None:
    assert claim_policy_for("FedEx", ClaimType.DAMAGED).filing_window == timedelta(days=21)
    assert claim_policy_for("fedex", ClaimType.LOST).filing_window == timedelta(days=60)
    assert claim_policy_for("unknown-carrier", ClaimType.LOST).filing_window == timedelta(days=30)
    reported = datetime(2026, 11, 1, tzinfo=UTC)
    policy = ClaimPolicy(filing_window=timedelta(days=21), safety_margin=timedelta(days=2))
    assert filing_deadline(reported, policy) == datetime(2026, 11, 22, tzinfo=UTC)
    assert file_by(reported, policy) == datetime(2026, 11, 20, tzinfo=UTC)
    with pytest.raises(ValidationError, match="safety_margin must be shorter"):
        ClaimPolicy(filing_window=timedelta(days=1), safety_margin=timedelta(days=1))
