"""Stripe and Adyen webhook payloads, normalised to `DisputeEvent`.

Pure: the webhook endpoints call these after checking the signature
(domain/webhook_signatures.py); errors name the offending field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.chargeback.codes import DisputeEventKind, DisputeProvider, DisputeReason
from domain.chargeback.lifecycle import DisputeEvent


class WebhookPayloadError(ValueError):
    """A malformed provider body; `field` says where."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnsupportedEvent(ValueError):
    """A well-formed event Steward does not handle."""


STRIPE_REASONS: dict[str, DisputeReason] = {
    "fraudulent": DisputeReason.FRAUD,
    "unrecognized": DisputeReason.FRAUD,
    "product_not_received": DisputeReason.NOT_RECEIVED,
    "product_unacceptable": DisputeReason.NOT_AS_DESCRIBED,
    "credit_not_processed": DisputeReason.CREDIT_NOT_PROCESSED,
    "duplicate": DisputeReason.DUPLICATE,
    "subscription_canceled": DisputeReason.SUBSCRIPTION_CANCELLED,
}

STRIPE_DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)
STRIPE_EFW_EVENT = "radar.early_fraud_warning.created"
STRIPE_EVENTS = STRIPE_DISPUTE_EVENTS | {STRIPE_EFW_EVENT}


def _require(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WebhookPayloadError(f"{where}{key}", f"expected {kind.__name__}")
    return value


def _epoch(value: Any, field: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WebhookPayloadError(field, "expected a unix timestamp")
    return datetime.fromtimestamp(value, tz=UTC)


def _order_from_metadata(obj: Mapping[str, Any]) -> str | None:
    for holder in (obj, obj.get("payment_intent"), obj.get("charge")):
        if isinstance(holder, Mapping):
            metadata = holder.get("metadata")
            if isinstance(metadata, Mapping) and isinstance(metadata.get("order_id"), str):
                return str(metadata["order_id"]) or None
    return None


def _ref(value: Any) -> str:
    # Stripe sends ids, or objects when the webhook endpoint expands them.
    if isinstance(value, Mapping):
        return str(value.get("id", ""))
    return value if isinstance(value, str) else ""


def stripe_event_to_dispute_event(event: Mapping[str, Any]) -> DisputeEvent:
    """Normalise a Stripe Event object (already signature-checked)."""
    if event.get("object") != "event":
        raise WebhookPayloadError("object", "expected 'event'")
    event_id = _require(event, "id", str, "")
    event_type = _require(event, "type", str, "")
    if event_type not in STRIPE_EVENTS:
        raise UnsupportedEvent(f"type: Steward does not handle Stripe event {event_type!r}")
    occurred_at = _epoch(event.get("created"), "created")
    data = event.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
        raise WebhookPayloadError("data.object", "expected an object")
    obj: Mapping[str, Any] = data["object"]
    object_id = _require(obj, "id", str, "data.object.")
    order_id = _order_from_metadata(obj)
    if event_type == STRIPE_EFW_EVENT:
        return DisputeEvent(
            event_id=event_id,
            provider=DisputeProvider.STRIPE,
            dispute_id=object_id,
            kind=DisputeEventKind.EARLY_FRAUD_WARNING,
            provider_event=event_type,
            occurred_at=occurred_at,
            order_id=order_id,
            payment_ref=_ref(obj.get("charge")),
            reason=DisputeReason.FRAUD,
            provider_reason_code=str(obj.get("fraud_type") or ""),
            provider_status="actionable" if obj.get("actionable") else "not_actionable",
            defendable=False,
        )
    if obj.get("object") != "dispute":
        raise WebhookPayloadError("data.object.object", "expected 'dispute'")
    amount = _require(obj, "amount", int, "data.object.")
    if amount < 0:
        raise WebhookPayloadError("data.object.amount", "must not be negative")
    currency = str(_require(obj, "currency", str, "data.object.")).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise WebhookPayloadError("data.object.currency", "expected an ISO 4217 code")
    status = str(_require(obj, "status", str, "data.object."))
    raw_reason = str(obj.get("reason") or "general")
    details = obj.get("evidence_details")
    due_by: datetime | None = None
    if isinstance(details, Mapping) and details.get("due_by") is not None:
        due_by = _epoch(details.get("due_by"), "data.object.evidence_details.due_by")
    kind = _stripe_kind(event_type, status)
    return DisputeEvent(
        event_id=event_id,
        provider=DisputeProvider.STRIPE,
        dispute_id=object_id,
        kind=kind,
        provider_event=event_type,
        occurred_at=occurred_at,
        order_id=order_id,
        payment_ref=_ref(obj.get("charge")) or _ref(obj.get("payment_intent")),
        reason=STRIPE_REASONS.get(raw_reason, DisputeReason.GENERAL),
        provider_reason_code=raw_reason,
        due_by=due_by,
        amount_minor=amount,
        currency=currency,
        provider_status=status,
        # Only these statuses still accept evidence; the others are informational.
        defendable=status in ("needs_response", "warning_needs_response"),
    )


def _stripe_kind(event_type: str, status: str) -> DisputeEventKind:
    if event_type == "charge.dispute.created":
        return (
            DisputeEventKind.INQUIRY if status.startswith("warning_") else DisputeEventKind.OPENED
        )
    if event_type == "charge.dispute.closed":
        # An inquiry closed without becoming a chargeback keeps the money: a win.
        return (
            DisputeEventKind.WON if status in ("won", "warning_closed") else DisputeEventKind.LOST
        )
    if event_type == "charge.dispute.funds_withdrawn":
        return DisputeEventKind.FUNDS_WITHDRAWN
    if event_type == "charge.dispute.funds_reinstated":
        return DisputeEventKind.FUNDS_REINSTATED
    return DisputeEventKind.UPDATED


ADYEN_EVENTS: dict[str, DisputeEventKind] = {
    "REQUEST_FOR_INFORMATION": DisputeEventKind.INQUIRY,
    "NOTIFICATION_OF_FRAUD": DisputeEventKind.FRAUD_NOTIFICATION,
    "NOTIFICATION_OF_CHARGEBACK": DisputeEventKind.OPENED,
    "CHARGEBACK": DisputeEventKind.OPENED,
    "CHARGEBACK_REVERSED": DisputeEventKind.WON,
    "SECOND_CHARGEBACK": DisputeEventKind.SECOND_CHARGEBACK,
    "PREARBITRATION_WON": DisputeEventKind.WON,
    "PREARBITRATION_LOST": DisputeEventKind.LOST,
    "INFORMATION_SUPPLIED": DisputeEventKind.INFORMATION_SUPPLIED,
    "DISPUTE_DEFENSE_PERIOD_ENDED": DisputeEventKind.DEFENSE_PERIOD_ENDED,
    # The issuer accepted our defence or did not answer in time: we keep the money.
    "ISSUER_RESPONSE_TIMEFRAME_EXPIRED": DisputeEventKind.WON,
    "ISSUER_COMMENTS": DisputeEventKind.ISSUER_COMMENTS,
}

# Visa / Mastercard / Amex reason codes by family (the common ones).
ADYEN_REASON_CODES: dict[str, DisputeReason] = {
    "10.1": DisputeReason.FRAUD,
    "10.2": DisputeReason.FRAUD,
    "10.3": DisputeReason.FRAUD,
    "10.4": DisputeReason.FRAUD,
    "10.5": DisputeReason.FRAUD,
    "4837": DisputeReason.FRAUD,
    "4840": DisputeReason.FRAUD,
    "4863": DisputeReason.FRAUD,
    "4870": DisputeReason.FRAUD,
    "4871": DisputeReason.FRAUD,
    "F29": DisputeReason.FRAUD,
    "13.1": DisputeReason.NOT_RECEIVED,
    "4855": DisputeReason.NOT_RECEIVED,
    "C08": DisputeReason.NOT_RECEIVED,
    "13.3": DisputeReason.NOT_AS_DESCRIBED,
    "13.4": DisputeReason.NOT_AS_DESCRIBED,
    "4853": DisputeReason.NOT_AS_DESCRIBED,
    "C31": DisputeReason.NOT_AS_DESCRIBED,
    "13.6": DisputeReason.CREDIT_NOT_PROCESSED,
    "4860": DisputeReason.CREDIT_NOT_PROCESSED,
    "C02": DisputeReason.CREDIT_NOT_PROCESSED,
    "12.6.1": DisputeReason.DUPLICATE,
    "12.6.2": DisputeReason.DUPLICATE,
    "4834": DisputeReason.DUPLICATE,
    "P08": DisputeReason.DUPLICATE,
    "13.2": DisputeReason.SUBSCRIPTION_CANCELLED,
    "4841": DisputeReason.SUBSCRIPTION_CANCELLED,
}


def adyen_event_id(item: Mapping[str, Any]) -> str:
    """Adyen's dedupe key: the same pspReference, eventCode and success is one event."""
    return f"{item.get('pspReference')}:{item.get('eventCode')}:{item.get('success')}"


def _iso(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise WebhookPayloadError(field, "expected an ISO 8601 date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise WebhookPayloadError(field, f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise WebhookPayloadError(field, "needs a time zone offset")
    return parsed.astimezone(UTC)


def adyen_item_to_dispute_event(item: Mapping[str, Any], where: str) -> DisputeEvent:
    """Normalise one NotificationRequestItem (already HMAC-checked); `where`
    prefixes field names in errors (`notificationItems[0].NotificationRequestItem.`)."""
    code = item.get("eventCode")
    if not isinstance(code, str) or not code:
        raise WebhookPayloadError(f"{where}eventCode", "expected a string")
    kind = ADYEN_EVENTS.get(code)
    if kind is None:
        raise UnsupportedEvent(f"{where}eventCode: Steward does not handle Adyen event {code!r}")
    psp = item.get("pspReference")
    if not isinstance(psp, str) or not psp:
        raise WebhookPayloadError(f"{where}pspReference", "expected a string")
    amount = item.get("amount")
    if not isinstance(amount, Mapping):
        raise WebhookPayloadError(f"{where}amount", "expected an object with value and currency")
    value = amount.get("value")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WebhookPayloadError(f"{where}amount.value", "expected minor units (integer >= 0)")
    currency = amount.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise WebhookPayloadError(f"{where}amount.currency", "expected an ISO 4217 code")
    success = item.get("success")
    if success not in ("true", "false"):
        raise WebhookPayloadError(f"{where}success", "expected 'true' or 'false'")
    occurred_at = _iso(item.get("eventDate"), f"{where}eventDate")
    additional = item.get("additionalData") or {}
    if not isinstance(additional, Mapping):
        raise WebhookPayloadError(f"{where}additionalData", "expected an object")
    due_by = None
    if additional.get("defensePeriodEndsAt"):
        due_by = _iso(
            additional.get("defensePeriodEndsAt"), f"{where}additionalData.defensePeriodEndsAt"
        )
    reason_code = str(
        additional.get("chargebackReasonCode")
        or additional.get("rfiReasonCode")
        or additional.get("nofReasonCode")
        or ""
    )
    scheme = str(
        additional.get("chargebackSchemeCode")
        or additional.get("rfiSchemeCode")
        or additional.get("nofSchemeCode")
        or ""
    )
    defendable_raw = str(additional.get("defendable", "true")).lower()
    merchant_reference = item.get("merchantReference")
    return DisputeEvent(
        event_id=adyen_event_id(item),
        provider=DisputeProvider.ADYEN,
        dispute_id=psp,
        kind=kind if success == "true" else DisputeEventKind.UPDATED,
        provider_event=code,
        occurred_at=occurred_at,
        order_id=merchant_reference
        if isinstance(merchant_reference, str) and merchant_reference
        else None,
        payment_ref=str(item.get("originalReference") or ""),
        reason=ADYEN_REASON_CODES.get(
            reason_code,
            DisputeReason.FRAUD
            if kind is DisputeEventKind.FRAUD_NOTIFICATION
            else DisputeReason.GENERAL,
        ),
        provider_reason_code=reason_code,
        scheme=scheme,
        due_by=due_by,
        amount_minor=value,
        currency=currency,
        provider_status=str(additional.get("disputeStatus") or ""),
        defendable=defendable_raw != "false" and kind is not DisputeEventKind.FRAUD_NOTIFICATION,
    )
