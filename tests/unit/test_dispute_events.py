"""Provider payloads to normalised events, the lifecycle rules, the validator
and the deadline arithmetic - pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.chargeback import (
    ChargebackState,
    DisputeEvent,
    DisputeEventKind,
    DisputePolicy,
    DisputeProvider,
    DisputeReason,
    DisputeStage,
    DisputeStatus,
    EventEffect,
    EvidenceItem,
    EvidenceKind,
    EvidencePack,
    RespondInput,
    ResponseAction,
    ResponseRejected,
    UnsupportedEvent,
    WebhookPayloadError,
    adyen_item_to_dispute_event,
    apply_event,
    default_response,
    missing_evidence,
    reminder_times,
    stripe_event_to_dispute_event,
    validate_response,
)
from domain.common import Role

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def stripe_event(event_type: str = "charge.dispute.created", **dispute: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": "dp_1QxYz",
        "object": "dispute",
        "amount": 245000,
        "currency": "eur",
        "charge": "ch_3QxYz",
        "payment_intent": "pi_3QxYz",
        "reason": "fraudulent",
        "status": "needs_response",
        "evidence_details": {
            "due_by": int((T0 + timedelta(days=7)).timestamp()),
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "metadata": {"order_id": "FR-100001"},
        "created": int(T0.timestamp()),
    }
    obj.update(dispute)
    return {
        "id": "evt_1QxYz",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(T0.timestamp()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }


def test_stripe_dispute_created_is_normalised() -> None:
    event = stripe_event_to_dispute_event(stripe_event())
    assert event.event_id == "evt_1QxYz"
    assert event.provider is DisputeProvider.STRIPE
    assert event.dispute_id == "dp_1QxYz"
    assert event.kind is DisputeEventKind.OPENED
    assert event.order_id == "FR-100001"
    assert event.payment_ref == "ch_3QxYz"
    assert event.reason is DisputeReason.FRAUD
    assert event.provider_reason_code == "fraudulent"
    assert event.due_by == T0 + timedelta(days=7)
    assert (event.amount_minor, event.currency) == (245000, "EUR")
    assert event.defendable


def test_stripe_inquiry_closed_and_efw_kinds() -> None:
    inquiry = stripe_event_to_dispute_event(stripe_event(status="warning_needs_response"))
    assert inquiry.kind is DisputeEventKind.INQUIRY
    lost = stripe_event_to_dispute_event(stripe_event("charge.dispute.closed", status="lost"))
    assert lost.kind is DisputeEventKind.LOST
    efw = stripe_event_to_dispute_event(
        {
            "id": "evt_efw",
            "object": "event",
            "created": int(T0.timestamp()),
            "type": "radar.early_fraud_warning.created",
            "data": {
                "object": {
                    "id": "issfr_1",
                    "object": "radar.early_fraud_warning",
                    "actionable": True,
                    "charge": "ch_1",
                    "fraud_type": "made_with_stolen_card",
                    "payment_intent": {"id": "pi_1", "metadata": {"order_id": "FR-2"}},
                }
            },
        }
    )
    assert efw.kind is DisputeEventKind.EARLY_FRAUD_WARNING
    assert efw.order_id == "FR-2" and efw.provider_reason_code == "made_with_stolen_card"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("created"), "created"),
        (lambda e: e["data"]["object"].update(amount="12"), "data.object.amount"),
        (lambda e: e["data"]["object"].update(currency="euro"), "data.object.currency"),
        (lambda e: e.update(data=[]), "data.object"),
        (
            lambda e: e["data"]["object"]["evidence_details"].update(due_by="tomorrow"),
            "data.object.evidence_details.due_by",
        ),
    ],
)
def test_malformed_stripe_events_name_the_field(mutate: Any, field: str) -> None:
    payload = stripe_event()
    mutate(payload)
    with pytest.raises(WebhookPayloadError) as error:
        stripe_event_to_dispute_event(payload)
    assert error.value.field == field


def test_unknown_stripe_event_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedEvent, match=r"charge\.refunded"):
        stripe_event_to_dispute_event(stripe_event("charge.refunded"))


def adyen_item(code: str = "NOTIFICATION_OF_CHARGEBACK", **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "eventCode": code,
        "success": "true",
        "pspReference": "9915555555555555",
        "originalReference": "9913333333333333",
        "merchantAccountCode": "MaisonEU",
        "merchantReference": "FR-100001",
        "amount": {"value": 245000, "currency": "EUR"},
        "eventDate": "2026-11-20T10:00:00+01:00",
        "reason": "Merchandise/Services Not Received",
        "additionalData": {
            "chargebackReasonCode": "13.1",
            "chargebackSchemeCode": "visa",
            "defensePeriodEndsAt": "2026-12-10T10:00:00+01:00",
            "disputeStatus": "Undefended",
            "defendable": "true",
        },
    }
    item.update(overrides)
    return item


def test_adyen_chargeback_notification_is_normalised() -> None:
    event = adyen_item_to_dispute_event(adyen_item(), "")
    assert event.event_id == "9915555555555555:NOTIFICATION_OF_CHARGEBACK:true"
    assert event.kind is DisputeEventKind.OPENED
    assert event.reason is DisputeReason.NOT_RECEIVED
    assert (event.scheme, event.provider_reason_code) == ("visa", "13.1")
    assert event.due_by == datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
    assert event.order_id == "FR-100001" and event.payment_ref == "9913333333333333"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("REQUEST_FOR_INFORMATION", DisputeEventKind.INQUIRY),
        ("NOTIFICATION_OF_FRAUD", DisputeEventKind.FRAUD_NOTIFICATION),
        ("CHARGEBACK", DisputeEventKind.OPENED),
        ("CHARGEBACK_REVERSED", DisputeEventKind.WON),
        ("SECOND_CHARGEBACK", DisputeEventKind.SECOND_CHARGEBACK),
        ("PREARBITRATION_WON", DisputeEventKind.WON),
        ("PREARBITRATION_LOST", DisputeEventKind.LOST),
        ("INFORMATION_SUPPLIED", DisputeEventKind.INFORMATION_SUPPLIED),
        ("DISPUTE_DEFENSE_PERIOD_ENDED", DisputeEventKind.DEFENSE_PERIOD_ENDED),
        ("ISSUER_RESPONSE_TIMEFRAME_EXPIRED", DisputeEventKind.WON),
        ("ISSUER_COMMENTS", DisputeEventKind.ISSUER_COMMENTS),
    ],
)
def test_every_adyen_dispute_code_maps(code: str, kind: DisputeEventKind) -> None:
    assert adyen_item_to_dispute_event(adyen_item(code), "").kind is kind


def test_adyen_malformed_and_unknown_items_name_the_field() -> None:
    with pytest.raises(UnsupportedEvent, match="AUTHORISATION"):
        adyen_item_to_dispute_event(adyen_item("AUTHORISATION"), "items[0].")
    with pytest.raises(WebhookPayloadError) as error:
        adyen_item_to_dispute_event(adyen_item(eventDate="2026-11-20T10:00:00"), "items[0].")
    assert error.value.field == "items[0].eventDate"
    with pytest.raises(WebhookPayloadError) as error:
        adyen_item_to_dispute_event(adyen_item(amount={"value": -1, "currency": "EUR"}), "")
    assert error.value.field == "amount.value"


# ------------------------------------------------------------------ lifecycle


def ev(kind: DisputeEventKind, minutes: int, **kw: Any) -> DisputeEvent:
    defaults: dict[str, Any] = {
        "event_id": f"e-{kind}-{minutes}",
        "provider": DisputeProvider.ADYEN,
        "dispute_id": "99155",
        "kind": kind,
        "provider_event": str(kind),
        "occurred_at": T0 + timedelta(minutes=minutes),
        "due_by": T0 + timedelta(days=20),
        "amount_minor": 245000,
        "currency": "EUR",
    }
    defaults.update(kw)
    return DisputeEvent(**defaults)


def fresh() -> ChargebackState:
    return ChargebackState(
        provider=DisputeProvider.ADYEN,
        dispute_id="99155",
        order_id=None,
        stage=DisputeStage.PRE_DISPUTE,
        status=DisputeStatus.OPEN,
        reason=DisputeReason.GENERAL,
        amount_minor=0,
        currency="XXX",
    )


def test_rfi_then_chargeback_moves_stage_and_opens_a_new_round() -> None:
    state = fresh()
    assert apply_event(state, ev(DisputeEventKind.INQUIRY, 0)) is EventEffect.NEW_ROUND
    assert state.stage is DisputeStage.PRE_DISPUTE
    assert apply_event(state, ev(DisputeEventKind.OPENED, 5)) is EventEffect.NEW_ROUND
    assert state.stage is DisputeStage.DISPUTE
    # Adyen's CHARGEBACK after NOTIFICATION_OF_CHARGEBACK: same round.
    assert apply_event(state, ev(DisputeEventKind.OPENED, 6)) is EventEffect.INFORMATIONAL


def test_out_of_order_events_never_move_the_lifecycle_back() -> None:
    state = fresh()
    apply_event(state, ev(DisputeEventKind.OPENED, 0))
    assert apply_event(state, ev(DisputeEventKind.LOST, 30)) is EventEffect.CLOSED
    assert apply_event(state, ev(DisputeEventKind.INFORMATION_SUPPLIED, 10)) is EventEffect.STALE
    assert state.status is DisputeStatus.LOST


def test_late_first_event_fills_the_missing_deadline_only() -> None:
    state = fresh()
    apply_event(state, ev(DisputeEventKind.UPDATED, 10, due_by=None, provider_status="x"))
    effect = apply_event(state, ev(DisputeEventKind.OPENED, 0))
    assert effect is EventEffect.DEADLINE_CHANGED
    assert state.due_by == T0 + timedelta(days=20)


def test_second_chargeback_reopens_at_pre_arbitration_with_its_deadline() -> None:
    state = fresh()
    apply_event(state, ev(DisputeEventKind.OPENED, 0))
    apply_event(state, ev(DisputeEventKind.WON, 10))
    new_due = T0 + timedelta(days=40)
    effect = apply_event(state, ev(DisputeEventKind.SECOND_CHARGEBACK, 20, due_by=new_due))
    assert effect is EventEffect.NEW_ROUND
    assert (state.stage, state.status, state.due_by) == (
        DisputeStage.PRE_ARBITRATION,
        DisputeStatus.OPEN,
        new_due,
    )


def test_defense_period_ended_expires_an_unanswered_dispute() -> None:
    state = fresh()
    apply_event(state, ev(DisputeEventKind.OPENED, 0))
    assert apply_event(state, ev(DisputeEventKind.DEFENSE_PERIOD_ENDED, 1)) is EventEffect.CLOSED
    assert state.status is DisputeStatus.EXPIRED


# ------------------------------------------------------- deadline arithmetic


def test_reminders_fall_before_the_buffer_and_after_now() -> None:
    due = T0 + timedelta(days=5)
    policy = DisputePolicy()
    assert reminder_times(due, policy, T0) == [due - timedelta(hours=72), due - timedelta(hours=24)]
    assert reminder_times(due, policy, due - timedelta(hours=30)) == [due - timedelta(hours=24)]
    tight = DisputePolicy(safety_buffer=timedelta(hours=30))
    assert reminder_times(due, tight, T0) == [due - timedelta(hours=72)]


def state_for(
    reason: DisputeReason, available: list[EvidenceKind], amount: int = 245000
) -> ChargebackState:
    state = fresh()
    state.reason = reason
    state.amount_minor, state.currency = amount, "EUR"
    state.due_by = T0 + timedelta(days=5)
    state.respond_by = T0 + timedelta(days=4, hours=12)
    state.status = DisputeStatus.AWAITING_COORDINATOR
    state.evidence = EvidencePack(
        items=[EvidenceItem(kind=k, available=True, summary="x") for k in available]
    )
    return state


def test_completeness_check_lists_what_the_reason_needs() -> None:
    pack = EvidencePack(
        items=[EvidenceItem(kind=EvidenceKind.ORDER_AND_REVIEW, available=True, summary="x")]
    )
    assert missing_evidence(DisputeReason.NOT_RECEIVED, pack) == [
        EvidenceKind.PROOF_OF_DELIVERY,
        EvidenceKind.CARRIER_SCANS,
    ]


def test_default_response_follows_the_policy() -> None:
    policy = DisputePolicy()
    small = state_for(DisputeReason.FRAUD, [], amount=4_000)
    assert default_response(small, policy)[0] is ResponseAction.ACCEPT
    complete = state_for(
        DisputeReason.DUPLICATE, [EvidenceKind.ORDER_AND_REVIEW, EvidenceKind.AUTHORISATION_RESULTS]
    )
    assert default_response(complete, policy)[0] is ResponseAction.CONTEST
    incomplete = state_for(DisputeReason.NOT_RECEIVED, [EvidenceKind.ORDER_AND_REVIEW])
    action, why = default_response(incomplete, policy)
    assert action is ResponseAction.ACCEPT and "reported" in why


def respond(action: ResponseAction, role: Role = Role.COORDINATOR, **kw: Any) -> RespondInput:
    return RespondInput(action=action, actor="camille", role=role, note=kw.pop("note", "ok"), **kw)


def test_validator_refusals_name_the_field() -> None:
    state = state_for(DisputeReason.NOT_RECEIVED, [EvidenceKind.ORDER_AND_REVIEW])
    with pytest.raises(ResponseRejected, match=r"^role: ops"):
        validate_response(state, respond(ResponseAction.ACCEPT, Role.OPS), T0)
    with pytest.raises(ResponseRejected, match=r"^evidence: .*proof_of_delivery"):
        validate_response(state, respond(ResponseAction.CONTEST), T0)
    with pytest.raises(ResponseRejected, match=r"^deadline: "):
        validate_response(state, respond(ResponseAction.ACCEPT), T0 + timedelta(days=4, hours=13))
    validate_response(
        state,
        respond(ResponseAction.CONTEST, Role.MANAGER, override_missing_evidence=True),
        T0,
    )
    extra = [
        EvidenceItem(kind=EvidenceKind.PROOF_OF_DELIVERY, available=True, summary="signed POD"),
        EvidenceItem(kind=EvidenceKind.CARRIER_SCANS, available=True, summary="scans"),
    ]
    validate_response(state, respond(ResponseAction.CONTEST, extra_evidence=extra), T0)
    state.escalated = True
    with pytest.raises(ResponseRejected, match=r"^role: coordinator"):
        validate_response(state, respond(ResponseAction.ACCEPT), T0)
