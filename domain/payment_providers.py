"""The real payment providers behind the PaymentProvider port: their names,
amounts in each provider's minor units, and Adyen's modification outcomes.

Steward keeps money in ISO 4217 minor units (`domain.common.CURRENCY_EXPONENTS`).
Stripe and Adyen each depart from ISO for a few
currencies; an amount is converted on the way out, and one that the provider
cannot represent (a fraction its unit does not have) is refused before any
request is sent.

Adyen answers a capture, cancel or refund with `received`; the outcome comes
later as a CAPTURE, CANCELLATION or REFUND notification (`success` true or
false), possibly followed by CAPTURE_FAILED, REFUND_FAILED or
REFUNDED_REVERSED. `read_adyen_modification` reads one such item for the
webhook; `notified_amount_mismatch` compares its amount with the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from domain.chargeback import WebhookPayloadError, adyen_event_id
from domain.common import CURRENCY_EXPONENTS, StewardModel
from domain.payments import PaymentOperationKind


class PaymentProviderName(StrEnum):
    """The names an order may carry in `payment.provider`."""

    SIMULATED = "simulated"
    STRIPE = "stripe"
    ADYEN = "adyen"


# -- amounts --------------------------------------------------------------------

# Stripe's exponent where it differs from ISO 4217 (Steward's table)
# (https://docs.stripe.com/currencies: zero-decimal currencies and special
# cases). ISK stays a two-decimal currency in Stripe's API (an amount of 100 is
# one króna, and must be a multiple of 100); Stripe counts MGA without decimals.
STRIPE_EXPONENTS: Final[Mapping[str, int]] = {"ISK": 2, "MGA": 0}
# Stripe takes three-decimal amounts only with a last digit of 0.
STRIPE_THREE_DECIMAL_STEP: Final = 10

# Adyen's exponent where it differs from ISO 4217 (Steward's table)
# (https://docs.adyen.com/development-resources/currency-codes: CLP, CVE, IDR
# and ISK differ from ISO 4217).
ADYEN_EXPONENTS: Final[Mapping[str, int]] = {
    "CLP": 2,
    "CVE": 0,
    "IDR": 0,
    "ISK": 2,
}


class AmountNotRepresentable(ValueError):
    """The amount has a fraction the provider's unit for the currency lacks."""


def steward_exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS.get(currency, 2)


def provider_minor_units(amount_minor: int, currency: str, exponents: Mapping[str, int]) -> int:
    """Steward's minor units of `currency` in the provider's minor units.
    Raises AmountNotRepresentable when the conversion would drop a fraction."""
    ours = steward_exponent(currency)
    theirs = exponents.get(currency, ours)
    if theirs >= ours:
        return amount_minor * 10 ** (theirs - ours)
    factor = 10 ** (ours - theirs)
    if amount_minor % factor:
        raise AmountNotRepresentable(
            f"{amount_minor} minor units of {currency} ({ours} decimals) have a fraction the "
            f"provider's unit ({theirs} decimals) cannot carry"
        )
    return amount_minor // factor


def steward_minor_units(provider_amount: int, currency: str, exponents: Mapping[str, int]) -> int:
    """The inverse of `provider_minor_units` (a notification's amount in Steward's units)."""
    ours = steward_exponent(currency)
    theirs = exponents.get(currency, ours)
    if ours >= theirs:
        return provider_amount * 10 ** (ours - theirs)
    factor = 10 ** (theirs - ours)
    if provider_amount % factor:
        raise AmountNotRepresentable(
            f"{provider_amount} of the provider's minor units of {currency} have a fraction "
            f"Steward's unit ({ours} decimals) cannot carry"
        )
    return provider_amount // factor


def stripe_amount(amount_minor: int, currency: str) -> int:
    value = provider_minor_units(amount_minor, currency, STRIPE_EXPONENTS)
    exponent = STRIPE_EXPONENTS.get(currency, steward_exponent(currency))
    if exponent == 3 and value % STRIPE_THREE_DECIMAL_STEP:
        raise AmountNotRepresentable(
            f"Stripe takes {currency} amounts in multiples of {STRIPE_THREE_DECIMAL_STEP} "
            f"minor units; {value} is not one"
        )
    return value


def adyen_amount(amount_minor: int, currency: str) -> int:
    return provider_minor_units(amount_minor, currency, ADYEN_EXPONENTS)


# -- Adyen modification outcomes ------------------------------------------------

# The notifications about each modification Steward sends: the one that
# closes it (CAPTURE, CANCELLATION, REFUND with `success` true or false), and
# the later ones (https://docs.adyen.com/development-resources/webhooks/webhook-types):
# CAPTURE_FAILED and REFUND_FAILED (a capture or refund reported successful
# was rejected by the card scheme after all; their `success` is always true)
# and REFUNDED_REVERSED (the refunded money came back to the merchant account).
ADYEN_MODIFICATION_EVENTS: Final[Mapping[str, PaymentOperationKind]] = {
    "CAPTURE": PaymentOperationKind.CAPTURE,
    "CANCELLATION": PaymentOperationKind.VOID,
    "REFUND": PaymentOperationKind.REFUND,
    "CAPTURE_FAILED": PaymentOperationKind.CAPTURE,
    "REFUND_FAILED": PaymentOperationKind.REFUND,
    "REFUNDED_REVERSED": PaymentOperationKind.REFUND,
}
ADYEN_FAILED_AFTER_ALL: Final = frozenset({"CAPTURE_FAILED", "REFUND_FAILED"})
ADYEN_REVERSALS: Final = frozenset({"REFUNDED_REVERSED"})


class OutcomeEffect(StrEnum):
    """What a modification notification says happened to the money."""

    # The capture, cancel or refund worked.
    SUCCEEDED = "succeeded"
    # It did not: refused at once (`success` false) or failed after all
    # (CAPTURE_FAILED, REFUND_FAILED): no money moved.
    FAILED = "failed"
    # The refunded money came back to the merchant (REFUNDED_REVERSED): the
    # customer was not paid after all.
    REVERSED = "reversed"


class ModificationOutcome(StewardModel):
    """One CAPTURE / CANCELLATION / REFUND notification item: the outcome of
    the modification Adyen answered `received` to."""

    provider: PaymentProviderName = PaymentProviderName.ADYEN
    # The modification's own pspReference (what the `received` answer gave).
    psp_reference: str
    # The payment's pspReference (Steward's authorisation_ref).
    original_reference: str
    kind: PaymentOperationKind
    event_code: str
    success: bool
    # Adyen's dedupe key: pspReference, eventCode and success.
    event_key: str
    # Adyen's reason for a failure ("Insufficient balance on payment"...).
    reason: str = ""
    merchant_reference: str = ""
    # The notified amount, in the provider's minor units.
    amount_value: int | None = None
    currency: str | None = None

    @property
    def effect(self) -> OutcomeEffect:
        if self.event_code in ADYEN_REVERSALS:
            return OutcomeEffect.REVERSED
        if self.event_code in ADYEN_FAILED_AFTER_ALL or not self.success:
            return OutcomeEffect.FAILED
        return OutcomeEffect.SUCCEEDED

    @property
    def failure_reason(self) -> str:
        """The provider's reason, or the event code when it gives none."""
        return self.reason or self.event_code.lower()


def notified_amount_mismatch(
    outcome: ModificationOutcome, amount_minor: int, currency: str
) -> str | None:
    """How the notified amount differs from the one Steward asked for (in
    Steward's minor units), or None when it matches or the notification names
    no amount."""
    if outcome.amount_value is None and outcome.currency is None:
        return None
    exponents = (
        ADYEN_EXPONENTS if outcome.provider is PaymentProviderName.ADYEN else STRIPE_EXPONENTS
    )
    expected = provider_minor_units(amount_minor, currency, exponents)
    if outcome.currency is not None and outcome.currency.upper() != currency:
        return (
            f"notified {outcome.amount_value} {outcome.currency}, requested {expected} {currency} "
            "(provider's minor units)"
        )
    if outcome.amount_value is not None and outcome.amount_value != expected:
        return (
            f"notified {outcome.amount_value} {currency}, requested {expected} {currency} "
            "(provider's minor units)"
        )
    return None


def read_adyen_modification(item: Mapping[str, Any], where: str = "") -> ModificationOutcome | None:
    """The modification outcome an (already HMAC-checked) NotificationRequestItem
    reports; None when the item is not a CAPTURE, CANCELLATION or REFUND.
    `where` prefixes field names in errors."""
    code = item.get("eventCode")
    kind = ADYEN_MODIFICATION_EVENTS.get(code) if isinstance(code, str) else None
    if kind is None or not isinstance(code, str):
        return None
    psp = item.get("pspReference")
    if not isinstance(psp, str) or not psp:
        raise WebhookPayloadError(f"{where}pspReference", "expected a string")
    success = item.get("success")
    if success not in ("true", "false"):
        raise WebhookPayloadError(f"{where}success", "expected 'true' or 'false'")
    original = item.get("originalReference")
    amount = item.get("amount")
    value: int | None = None
    currency: str | None = None
    if isinstance(amount, Mapping):
        raw_value = amount.get("value")
        if isinstance(raw_value, int) and not isinstance(raw_value, bool):
            value = raw_value
        raw_currency = amount.get("currency")
        if isinstance(raw_currency, str):
            currency = raw_currency
    reason = item.get("reason")
    merchant_reference = item.get("merchantReference")
    return ModificationOutcome(
        psp_reference=psp,
        original_reference=original if isinstance(original, str) else "",
        kind=kind,
        event_code=code,
        success=success == "true",
        event_key=adyen_event_id(item),
        reason=reason if isinstance(reason, str) else "",
        merchant_reference=merchant_reference if isinstance(merchant_reference, str) else "",
        amount_value=value,
        currency=currency,
    )


# -- Stripe refund outcomes -----------------------------------------------------

# The events that report a Refund's status (Stripe API reference, Events; the
# object is the Refund, never expanded): `refund.updated` and its older twin
# `charge.refund.updated` on any change, `refund.failed` when it fails.
STRIPE_REFUND_EVENTS: Final = frozenset(
    {"refund.updated", "charge.refund.updated", "refund.failed", "refund.created"}
)
STRIPE_REFUND_FINAL_STATUSES: Final = frozenset({"succeeded", "failed", "canceled"})


class StripeRefundUpdate(StewardModel):
    """A Stripe refund event: its final outcome, or None while not final."""

    outcome: ModificationOutcome | None
    refund_id: str
    status: str


def read_stripe_refund(event: Mapping[str, Any]) -> StripeRefundUpdate | None:
    """The refund a (signature-checked) Stripe Event reports; None when the
    event is not a refund event. Raises WebhookPayloadError for a malformed
    Refund object."""
    event_type = event.get("type")
    if event_type not in STRIPE_REFUND_EVENTS or not isinstance(event_type, str):
        return None
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        raise WebhookPayloadError("data.object", "expected a Refund object")
    refund_id = obj.get("id")
    if not isinstance(refund_id, str) or not refund_id:
        raise WebhookPayloadError("data.object.id", "expected the refund id")
    status = obj.get("status")
    if not isinstance(status, str) or not status:
        raise WebhookPayloadError("data.object.status", "expected the refund's status")
    if status not in STRIPE_REFUND_FINAL_STATUSES:
        return StripeRefundUpdate(outcome=None, refund_id=refund_id, status=status)
    amount = obj.get("amount")
    currency = obj.get("currency")
    metadata = obj.get("metadata")
    key = metadata.get("steward_idempotency_key") if isinstance(metadata, Mapping) else None
    intent = obj.get("payment_intent")
    reason = obj.get("failure_reason")
    return StripeRefundUpdate(
        refund_id=refund_id,
        status=status,
        outcome=ModificationOutcome(
            provider=PaymentProviderName.STRIPE,
            psp_reference=refund_id,
            original_reference=intent if isinstance(intent, str) else "",
            kind=PaymentOperationKind.REFUND,
            event_code=event_type,
            success=status == "succeeded",
            # refund.updated and charge.refund.updated report the same change:
            # the refund and its final status are the event.
            event_key=f"{refund_id}:{status}",
            reason=(reason if isinstance(reason, str) and reason else status),
            merchant_reference=key if isinstance(key, str) else "",
            amount_value=amount
            if isinstance(amount, int) and not isinstance(amount, bool)
            else None,
            currency=currency.upper() if isinstance(currency, str) else None,
        ),
    )
