"""Stripe and Adyen payloads exactly as the providers send them (issue 12),
read without a server: ids instead of expanded objects, empty or absent
metadata, `due_by: 0`, every documented dispute status and event code mapped
or deliberately ignored, and the link validator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.chargeback import (
    ADYEN_EVENTS,
    ADYEN_IGNORED_EVENTS,
    STRIPE_EVENTS,
    STRIPE_IGNORED_EVENTS,
    STRIPE_STATUSES,
    ChargebackState,
    DisputeEvent,
    DisputeEventKind,
    DisputeProvider,
    DisputeReason,
    DisputeStage,
    DisputeStatus,
    EventEffect,
    IgnoredEvent,
    LinkOrderInput,
    LinkRejected,
    WebhookPayloadError,
    apply_event,
    read_adyen_item,
    read_stripe_event,
    validate_link,
)
from domain.common import Role

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

# Every Dispute.status the Stripe API reference lists (stripe-python 16,
# stripe/_dispute.py) and every dispute event code of Adyen's standard
# webhook (Adyen's webhook module's event code list).
STRIPE_DOCUMENTED_STATUSES = {
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "appeal_needs_response",
    "appeal_under_review",
    "won",
    "lost",
    "prevented",
}
STRIPE_DOCUMENTED_DISPUTE_EVENTS = {
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "radar.early_fraud_warning.created",
    "radar.early_fraud_warning.updated",
    "issuing_dispute.created",
    "issuing_dispute.updated",
    "issuing_dispute.submitted",
    "issuing_dispute.closed",
    "issuing_dispute.funds_reinstated",
    "issuing_dispute.funds_rescinded",
}
ADYEN_DOCUMENTED_DISPUTE_CODES = {
    "CHARGEBACK",
    "CHARGEBACK_REVERSED",
    "NOTIFICATION_OF_CHARGEBACK",
    "NOTIFICATION_OF_FRAUD",
    "REQUEST_FOR_INFORMATION",
    "SECOND_CHARGEBACK",
    "PREARBITRATION_WON",
    "PREARBITRATION_LOST",
    "INFORMATION_SUPPLIED",
    "DISPUTE_DEFENSE_PERIOD_ENDED",
    "DISPUTE_OPENED_WITH_CHARGEBACK",
    "ISSUER_RESPONSE_TIMEFRAME_EXPIRED",
    "ISSUER_COMMENTS",
}


def event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "evt_1QaB",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": int(T0.timestamp()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def dispute(**fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": "dp_1QaB",
        "object": "dispute",
        "amount": 245000,
        "balance_transactions": [],
        "charge": "ch_3QaB",
        "created": int(T0.timestamp()),
        "currency": "eur",
        "evidence_details": {
            "due_by": int((T0 + timedelta(days=7)).timestamp()),
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": "pi_3QaB",
        "reason": "fraudulent",
        "status": "needs_response",
    }
    obj.update(fields)
    return obj


def warning(**fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": "issfr_1QaB",
        "object": "radar.early_fraud_warning",
        "actionable": True,
        "charge": "ch_3QaB",
        "created": int(T0.timestamp()),
        "fraud_type": "made_with_stolen_card",
        "livemode": False,
        "payment_intent": "pi_3QaB",
    }
    obj.update(fields)
    return obj


def read_dispute(event_type: str = "charge.dispute.created", **fields: Any) -> DisputeEvent:
    read = read_stripe_event(event(event_type, dispute(**fields)))
    assert isinstance(read, DisputeEvent)
    return read


def test_a_stripe_dispute_as_sent_names_its_payment_not_its_order() -> None:
    read = read_dispute()
    assert read.order_id is None and read.order_source == ""
    assert read.payment_refs == ["pi_3QaB", "ch_3QaB"]
    assert read.kind is DisputeEventKind.OPENED and read.defendable
    # metadata.order_id is only the fallback, and says so.
    hinted = read_dispute(metadata={"order_id": "FR-1"})
    assert (hinted.order_id, hinted.order_source) == ("FR-1", "metadata")
    without_intent = read_dispute(payment_intent=None)
    assert without_intent.payment_refs == ["ch_3QaB"]


@pytest.mark.parametrize("due_by", [0, None])
def test_due_by_zero_or_null_means_no_response_possible(due_by: int | None) -> None:
    read = read_dispute(
        evidence_details={"due_by": due_by, "has_evidence": False, "submission_count": 0}
    )
    assert read.due_by is None  # never 1970-01-01
    assert not read.defendable
    state = ChargebackState(
        provider=DisputeProvider.STRIPE,
        dispute_id="dp_1QaB",
        order_id=None,
        stage=DisputeStage.PRE_DISPUTE,
        status=DisputeStatus.OPEN,
        reason=DisputeReason.FRAUD,
        amount_minor=0,
        currency="EUR",
    )
    assert apply_event(state, read) is EventEffect.NEW_ROUND
    assert state.status is DisputeStatus.OPEN and not state.status_closed()
    assert not state.defendable


def test_every_documented_stripe_status_is_known() -> None:
    assert STRIPE_STATUSES == STRIPE_DOCUMENTED_STATUSES


@pytest.mark.parametrize(
    ("event_type", "status", "kind"),
    [
        ("charge.dispute.created", "warning_needs_response", DisputeEventKind.INQUIRY),
        ("charge.dispute.created", "warning_under_review", DisputeEventKind.INQUIRY),
        ("charge.dispute.created", "needs_response", DisputeEventKind.OPENED),
        ("charge.dispute.created", "under_review", DisputeEventKind.OPENED),
        ("charge.dispute.created", "prevented", DisputeEventKind.LOST),
        ("charge.dispute.updated", "needs_response", DisputeEventKind.UPDATED),
        ("charge.dispute.updated", "under_review", DisputeEventKind.UPDATED),
        ("charge.dispute.updated", "warning_under_review", DisputeEventKind.UPDATED),
        ("charge.dispute.updated", "appeal_needs_response", DisputeEventKind.SECOND_CHARGEBACK),
        ("charge.dispute.updated", "appeal_under_review", DisputeEventKind.UPDATED),
        ("charge.dispute.updated", "won", DisputeEventKind.WON),
        ("charge.dispute.updated", "lost", DisputeEventKind.LOST),
        ("charge.dispute.closed", "won", DisputeEventKind.WON),
        ("charge.dispute.closed", "warning_closed", DisputeEventKind.WON),
        ("charge.dispute.closed", "lost", DisputeEventKind.LOST),
        ("charge.dispute.closed", "prevented", DisputeEventKind.LOST),
        ("charge.dispute.funds_withdrawn", "needs_response", DisputeEventKind.FUNDS_WITHDRAWN),
        ("charge.dispute.funds_reinstated", "won", DisputeEventKind.FUNDS_REINSTATED),
    ],
)
def test_stripe_status_and_event_map_to_a_kind(
    event_type: str, status: str, kind: DisputeEventKind
) -> None:
    assert read_dispute(event_type, status=status).kind is kind


def test_every_stripe_status_of_every_dispute_event_reads() -> None:
    for event_type in sorted(STRIPE_EVENTS - {"radar.early_fraud_warning.created"}):
        for status in sorted(STRIPE_DOCUMENTED_STATUSES):
            assert read_dispute(event_type, status=status).provider_status == status


def test_an_appeal_round_is_submitted_then_under_review() -> None:
    state = ChargebackState(
        provider=DisputeProvider.STRIPE,
        dispute_id="dp_1QaB",
        order_id="FR-1",
        stage=DisputeStage.DISPUTE,
        status=DisputeStatus.SUBMITTED,
        reason=DisputeReason.FRAUD,
        amount_minor=245000,
        currency="EUR",
    )
    appeal = read_dispute("charge.dispute.updated", status="appeal_under_review")
    assert apply_event(state, appeal) is EventEffect.APPLIED
    assert state.status is DisputeStatus.UNDER_REVIEW


def test_an_early_fraud_warning_as_sent_has_no_metadata() -> None:
    read = read_stripe_event(event("radar.early_fraud_warning.created", warning()))
    assert isinstance(read, DisputeEvent)
    assert read.kind is DisputeEventKind.EARLY_FRAUD_WARNING
    assert read.order_id is None and read.payment_refs == ["pi_3QaB", "ch_3QaB"]
    charge_only = read_stripe_event(
        event("radar.early_fraud_warning.created", warning(payment_intent=None))
    )
    assert isinstance(charge_only, DisputeEvent) and charge_only.payment_refs == ["ch_3QaB"]
    with pytest.raises(WebhookPayloadError) as error:
        read_stripe_event(event("radar.early_fraud_warning.created", warning(charge=None)))
    assert error.value.field == "data.object.charge"


def test_every_documented_stripe_dispute_event_is_handled_or_deliberately_ignored() -> None:
    assert STRIPE_EVENTS | STRIPE_IGNORED_EVENTS.keys() == STRIPE_DOCUMENTED_DISPUTE_EVENTS
    for event_type, why in STRIPE_IGNORED_EVENTS.items():
        read = read_stripe_event(event(event_type, warning()))
        assert isinstance(read, IgnoredEvent)
        assert (read.event_type, read.reason, read.event_key) == (event_type, why, "evt_1QaB")


def test_any_other_stripe_event_is_ignored_with_its_type() -> None:
    read = read_stripe_event(event("payment_intent.succeeded", {"id": "pi_3QaB"}))
    assert isinstance(read, IgnoredEvent)
    assert (read.provider, read.event_type, read.object_ref) == (
        DisputeProvider.STRIPE,
        "payment_intent.succeeded",
        "pi_3QaB",
    )
    assert read.occurred_at == T0 and read.reason.startswith("not a dispute event")
    with pytest.raises(WebhookPayloadError) as error:
        read_stripe_event({"object": "event", "id": "evt_1", "type": 7})
    assert error.value.field == "type"


def adyen_item(code: str, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "additionalData": {
            "chargebackReasonCode": "10.4",
            "chargebackSchemeCode": "visa",
            "defensePeriodEndsAt": "2026-12-10T10:00:00+01:00",
            "hmacSignature": "x",
        },
        "amount": {"currency": "EUR", "value": 245000},
        "eventCode": code,
        "eventDate": "2026-11-20T10:00:00+01:00",
        "merchantAccountCode": "MaisonEU",
        "merchantReference": "pay-7781",
        "originalReference": "9913333333333333",
        "pspReference": "9915555555555555",
        "success": "true",
    }
    item.update(overrides)
    return item


def test_every_documented_adyen_dispute_code_is_mapped() -> None:
    assert set(ADYEN_EVENTS) == ADYEN_DOCUMENTED_DISPUTE_CODES
    assert not ADYEN_DOCUMENTED_DISPUTE_CODES & ADYEN_IGNORED_EVENTS.keys()
    opened = read_adyen_item(adyen_item("DISPUTE_OPENED_WITH_CHARGEBACK"), "")
    assert isinstance(opened, DisputeEvent) and opened.kind is DisputeEventKind.OPENED
    # The payment's pspReference first; merchantReference only as the fallback.
    assert opened.payment_refs == ["9913333333333333", "9915555555555555"]
    assert (opened.order_id, opened.order_source) == ("pay-7781", "merchant_reference")


@pytest.mark.parametrize(
    "code", ["AUTHORISATION", "CAPTURE", "REFUND", "CANCELLATION", "REPORT_AVAILABLE"]
)
def test_adyen_default_codes_are_ignored_not_refused(code: str) -> None:
    item = adyen_item(code)
    del item["originalReference"]
    read = read_adyen_item(item, "notificationItems[0].NotificationRequestItem.")
    assert isinstance(read, IgnoredEvent)
    assert read.event_key == f"9915555555555555:{code}:true"
    assert read.reason == ADYEN_IGNORED_EVENTS[code]


def test_an_unknown_adyen_code_is_ignored_and_a_bad_one_named() -> None:
    read = read_adyen_item(adyen_item("NEW_CODE", eventDate="not a date"), "")
    assert isinstance(read, IgnoredEvent)
    assert read.occurred_at is None and "does not know" in read.reason
    with pytest.raises(WebhookPayloadError) as error:
        read_adyen_item(adyen_item(""), "items[2].")
    assert error.value.field == "items[2].eventCode"


def test_link_validator() -> None:
    state = ChargebackState(
        provider=DisputeProvider.STRIPE,
        dispute_id="dp_1QaB",
        order_id=None,
        stage=DisputeStage.DISPUTE,
        status=DisputeStatus.OPEN,
        reason=DisputeReason.FRAUD,
        amount_minor=245000,
        currency="EUR",
    )
    link = LinkOrderInput(order_id="FR-1", actor="camille", role=Role.COORDINATOR)
    validate_link(state, link)
    validate_link(state, link.model_copy(update={"role": Role.MANAGER}))
    with pytest.raises(LinkRejected, match="role: finance may not link"):
        validate_link(state, link.model_copy(update={"role": Role.FINANCE}))
    state.order_id = "FR-2"
    with pytest.raises(LinkRejected, match="already linked to order FR-2"):
        validate_link(state, link)
    with pytest.raises(ValueError, match="order_id"):
        LinkOrderInput(order_id="FR 1", actor="camille", role=Role.COORDINATOR)
