"""domain/payment_providers.py: amounts in each provider's minor units, and
Adyen's modification outcomes as its notifications carry them."""

from __future__ import annotations

from typing import Any

import pytest

from domain.chargeback import WebhookPayloadError
from domain.payment_providers import (
    ADYEN_EXPONENTS,
    STRIPE_EXPONENTS,
    AmountNotRepresentable,
    OutcomeEffect,
    adyen_amount,
    notified_amount_mismatch,
    read_adyen_modification,
    steward_minor_units,
    stripe_amount,
)
from domain.payments import PaymentOperationKind


@pytest.mark.parametrize(
    ("amount", "currency", "stripe", "adyen"),
    [
        (245_000, "EUR", 245_000, 245_000),  # 2 450.00 EUR everywhere
        (38_500, "JPY", 38_500, 38_500),  # no minor unit anywhere
        (279, "ISK", 27_900, 27_900),  # ISO: none; Stripe and Adyen: hundredths
        (120_000, "CLP", 120_000, 12_000_000),  # ISO and Stripe: none; Adyen: hundredths
        (5_120, "KWD", 5_120, 5_120),  # three decimals; Stripe wants a last digit of 0
        (120_000, "IDR", 120_000, 1_200),  # ISO: hundredths; Adyen: none
    ],
)
def test_amounts_in_each_providers_minor_units(
    amount: int, currency: str, stripe: int, adyen: int
) -> None:
    assert stripe_amount(amount, currency) == stripe
    assert adyen_amount(amount, currency) == adyen
    assert steward_minor_units(stripe, currency, STRIPE_EXPONENTS) == amount
    assert steward_minor_units(adyen, currency, ADYEN_EXPONENTS) == amount


@pytest.mark.parametrize(
    ("convert", "amount", "currency"),
    [
        (stripe_amount, 5_124, "KWD"),  # 5.124 KWD: Stripe takes 5.120 or 5.130
        (adyen_amount, 1_234, "CVE"),  # 12.34 CVE: Adyen has no minor unit for it
        (stripe_amount, 1_050, "MGA"),  # ISO: hundredths; Stripe: none
    ],
)
def test_a_fraction_the_provider_cannot_carry_is_refused(
    convert: Any, amount: int, currency: str
) -> None:
    with pytest.raises(AmountNotRepresentable):
        convert(amount, currency)


def item(**fields: Any) -> dict[str, Any]:
    """A NotificationRequestItem as Adyen's webhook reference shows a CAPTURE."""
    return {
        "amount": {"currency": "EUR", "value": 245000},
        "eventCode": "CAPTURE",
        "eventDate": "2026-12-02T09:14:01+01:00",
        "merchantAccountCode": "MaisonEU",
        "merchantReference": "order-review:FR-100001/capture",
        "originalReference": "QFQTPCQ8HXSKGK82",
        "pspReference": "JDD6LKT8MBLZNN84",
        "reason": "",
        "success": "true",
        "additionalData": {"hmacSignature": "..."},
        **fields,
    }


def test_a_capture_notification_reads_as_its_outcome() -> None:
    outcome = read_adyen_modification(item())
    assert outcome is not None
    assert outcome.kind is PaymentOperationKind.CAPTURE
    assert outcome.success is True
    assert outcome.psp_reference == "JDD6LKT8MBLZNN84"
    assert outcome.original_reference == "QFQTPCQ8HXSKGK82"
    assert outcome.event_key == "JDD6LKT8MBLZNN84:CAPTURE:true"
    assert (outcome.amount_value, outcome.currency) == (245000, "EUR")


@pytest.mark.parametrize(
    ("code", "kind"),
    [("CANCELLATION", PaymentOperationKind.VOID), ("REFUND", PaymentOperationKind.REFUND)],
)
def test_a_refused_modification_keeps_adyens_reason(code: str, kind: PaymentOperationKind) -> None:
    outcome = read_adyen_modification(
        item(eventCode=code, success="false", reason="Insufficient balance on payment")
    )
    assert outcome is not None
    assert (outcome.kind, outcome.success) == (kind, False)
    assert outcome.reason == "Insufficient balance on payment"
    assert outcome.event_key == f"JDD6LKT8MBLZNN84:{code}:false"


@pytest.mark.parametrize("code", ["AUTHORISATION", "CHARGEBACK", "REPORT_AVAILABLE", "PENDING"])
def test_other_event_codes_are_not_modification_outcomes(code: str) -> None:
    assert read_adyen_modification(item(eventCode=code)) is None


@pytest.mark.parametrize(
    ("code", "success", "kind", "effect"),
    [
        ("CAPTURE", "true", PaymentOperationKind.CAPTURE, OutcomeEffect.SUCCEEDED),
        ("CAPTURE", "false", PaymentOperationKind.CAPTURE, OutcomeEffect.FAILED),
        # Adyen sends these two with success "true": the capture or refund failed.
        ("CAPTURE_FAILED", "true", PaymentOperationKind.CAPTURE, OutcomeEffect.FAILED),
        ("REFUND_FAILED", "true", PaymentOperationKind.REFUND, OutcomeEffect.FAILED),
        ("REFUNDED_REVERSED", "true", PaymentOperationKind.REFUND, OutcomeEffect.REVERSED),
        ("CANCELLATION", "true", PaymentOperationKind.VOID, OutcomeEffect.SUCCEEDED),
    ],
)
def test_each_modification_code_says_what_happened_to_the_money(
    code: str, success: str, kind: PaymentOperationKind, effect: OutcomeEffect
) -> None:
    outcome = read_adyen_modification(item(eventCode=code, success=success, reason=""))
    assert outcome is not None
    assert (outcome.kind, outcome.effect) == (kind, effect)
    assert outcome.event_key == f"JDD6LKT8MBLZNN84:{code}:{success}"
    # Without Adyen's reason, the code itself says why.
    assert outcome.failure_reason == code.lower()


@pytest.mark.parametrize(
    ("amount", "requested", "mismatch"),
    [
        ({"currency": "EUR", "value": 245000}, (245000, "EUR"), None),
        ({"currency": "EUR", "value": 24500}, (245000, "EUR"), "notified 24500 EUR"),
        ({"currency": "USD", "value": 245000}, (245000, "EUR"), "notified 245000 USD"),
        # ISK: Adyen counts hundredths, Steward whole krónur (ISO 4217).
        ({"currency": "ISK", "value": 1_500_000}, (15_000, "ISK"), None),
        ({"currency": "ISK", "value": 15_000}, (15_000, "ISK"), "requested 1500000 ISK"),
        # No amount in the notification: nothing to compare.
        (None, (245000, "EUR"), None),
    ],
)
def test_the_notified_amount_is_compared_in_adyens_units(
    amount: dict[str, Any] | None, requested: tuple[int, str], mismatch: str | None
) -> None:
    outcome = read_adyen_modification(item(amount=amount))
    assert outcome is not None
    found = notified_amount_mismatch(outcome, *requested)
    if mismatch is None:
        assert found is None
    else:
        assert found is not None and mismatch in found


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"success": None}, "success"), ({"pspReference": ""}, "pspReference")],
)
def test_a_malformed_outcome_names_its_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(WebhookPayloadError) as bad:
        read_adyen_modification(item(**fields), "notificationItems[0].NotificationRequestItem.")
    assert bad.value.field == f"notificationItems[0].NotificationRequestItem.{field}"
