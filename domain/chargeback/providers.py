"""Stripe and Adyen webhook payloads, normalised to `DisputeEvent`.

Pure: the webhook endpoints call these after checking the signature
(domain/webhook_signatures.py); errors name the offending field.

Payloads are read as the providers send them: a Stripe Dispute or early
fraud warning names its charge and PaymentIntent by id (webhook objects are
never expanded) and carries no order (a Dispute's own `metadata` is `{}`, a
warning has none), an Adyen notification names the payment by its
pspReference (`originalReference`). The event keeps those references
(`payment_refs`) and the intake resolves the order from them
(clients/chargeback.py); `metadata.order_id` and Adyen's `merchantReference`
are only the fallback. `read_stripe_event` and `read_adyen_item` also say
which authentic events Steward deliberately does not act on (`IgnoredEvent`):
they are acknowledged and recorded, never refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from domain.chargeback.codes import DisputeEventKind, DisputeProvider, DisputeReason
from domain.chargeback.lifecycle import DisputeEvent
from domain.common import (
    BUSINESS_KEY_PATTERN,
    MAX_MINOR_UNITS,
    NonEmptyStr,
    StewardModel,
    control_character_error,
    currency_error,
)


class WebhookPayloadError(ValueError):
    """A malformed provider body; `field` says where."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_M = TypeVar("_M", bound=StewardModel)


class UnsupportedEvent(ValueError):
    """A well-formed event Steward does not handle."""


class IgnoredEvent(StewardModel):
    """An authentic provider event Steward acknowledges and does not act on,
    recorded with its type and why (store.webhook_events)."""

    provider: DisputeProvider
    event_key: NonEmptyStr  # the provider's dedupe key (see adyen_event_id)
    event_type: NonEmptyStr  # Stripe `type`, Adyen `eventCode`
    object_ref: str = ""  # Stripe data.object.id, Adyen pspReference
    occurred_at: datetime | None = None
    reason: NonEmptyStr


STRIPE_REASONS: dict[str, DisputeReason] = {
    "fraudulent": DisputeReason.FRAUD,
    "unrecognized": DisputeReason.FRAUD,
    "debit_not_authorized": DisputeReason.FRAUD,
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

# The other dispute-related events Stripe documents, deliberately not acted
# on; any other type is acknowledged and recorded with STRIPE_NOT_A_DISPUTE.
STRIPE_IGNORED_EVENTS: dict[str, str] = {
    "radar.early_fraud_warning.updated": (
        "a warning's update only changes `actionable` (a dispute was opened or the charge "
        "refunded); the case follows the dispute's own events"
    ),
    "issuing_dispute.created": "Stripe Issuing: a dispute Steward's own cards raise",
    "issuing_dispute.updated": "Stripe Issuing: a dispute Steward's own cards raise",
    "issuing_dispute.submitted": "Stripe Issuing: a dispute Steward's own cards raise",
    "issuing_dispute.closed": "Stripe Issuing: a dispute Steward's own cards raise",
    "issuing_dispute.funds_reinstated": "Stripe Issuing: a dispute Steward's own cards raise",
    "issuing_dispute.funds_rescinded": "Stripe Issuing: a dispute Steward's own cards raise",
}
STRIPE_NOT_A_DISPUTE = "not a dispute event: Steward acts on charge.dispute.* and " + (
    "radar.early_fraud_warning.created"
)

# Every Dispute.status Stripe documents, and what a charge.dispute.created /
# .updated / .closed with it is to the case (docs/chargeback.md has the table).
STRIPE_OUTCOME_STATUSES: dict[str, DisputeEventKind] = {
    "won": DisputeEventKind.WON,
    # An inquiry closed without becoming a chargeback keeps the money: a win.
    "warning_closed": DisputeEventKind.WON,
    "lost": DisputeEventKind.LOST,
    # Refunded by a pre-dispute resolution (Visa RDR...): the money went back.
    "prevented": DisputeEventKind.LOST,
}
STRIPE_INQUIRY_STATUSES = frozenset({"warning_needs_response", "warning_under_review"})
STRIPE_RESPONDABLE_STATUSES = frozenset(
    {"needs_response", "warning_needs_response", "appeal_needs_response"}
)
STRIPE_STATUSES = frozenset(
    {
        *STRIPE_OUTCOME_STATUSES,
        *STRIPE_INQUIRY_STATUSES,
        *STRIPE_RESPONDABLE_STATUSES,
        "under_review",
        "appeal_under_review",
    }
)


_BUSINESS_KEY = re.compile(BUSINESS_KEY_PATTERN)


def _dispute_key(value: str, field: str) -> str:
    """A dispute id becomes part of a workflow id and of the API's URLs
    (`/v1/chargebacks/{provider}/{dispute_id}`): one outside the business-key
    alphabet would open a case nobody can reach, so the item is malformed."""
    if not _BUSINESS_KEY.fullmatch(value):
        raise WebhookPayloadError(
            field,
            "expected a dispute id of letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)",
        )
    return value


def _amount(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WebhookPayloadError(field, "expected minor units (integer >= 0)")
    if value > MAX_MINOR_UNITS:
        raise WebhookPayloadError(field, f"exceeds the maximum {MAX_MINOR_UNITS} minor units")
    return value


def _currency(value: str, field: str) -> str:
    if (error := currency_error(value)) is not None:
        raise WebhookPayloadError(field, f"expected an ISO 4217 code ({error})")
    return value


# Where the provider carries each field of DisputeEvent, to name it in a refusal.
_STRIPE_FIELDS = {
    "event_id": "id",
    "dispute_id": "data.object.id",
    "provider_event": "type",
    "order_id": "data.object.metadata.order_id",
    "payment_ref": "data.object.charge",
    "payment_refs": "data.object.payment_intent",
    "provider_reason_code": "data.object.reason",
    "provider_status": "data.object.status",
}
_ADYEN_FIELDS = {
    "event_id": "pspReference",
    "dispute_id": "pspReference",
    "provider_event": "eventCode",
    "order_id": "merchantReference",
    "payment_ref": "originalReference",
    "payment_refs": "originalReference",
    "provider_reason_code": "additionalData.chargebackReasonCode",
    "scheme": "additionalData.chargebackSchemeCode",
    "provider_status": "additionalData.disputeStatus",
}


def _model(model: type[_M], where: str, names: Mapping[str, str], **values: Any) -> _M:
    """Build the normalised event; a value the model refuses (a control
    character in a reference...) is a malformed item, named like the others
    by where the provider carries it."""
    try:
        return model(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "body"
        reason = re.sub(r"^(Value|Assertion) error, ", "", str(error["msg"]))
        raise WebhookPayloadError(f"{where}{names.get(name, name)}", reason) from None


def _printable(value: str) -> str:
    """An ignored event's type and references as recorded: a control
    character becomes U+FFFD, so an authentic event is still acknowledged."""
    return "".join("\ufffd" if control_character_error(c, free_text=False) else c for c in value)


def _require(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WebhookPayloadError(f"{where}{key}", f"expected {kind.__name__}")
    return value


def _epoch(value: Any, field: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WebhookPayloadError(field, "expected a unix timestamp")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, ValueError, OSError):
        raise WebhookPayloadError(field, "a unix timestamp past year 9999") from None


def _due_by(details: Any) -> datetime | None:
    """`evidence_details.due_by`; 0 or null when the bank allows no response
    (Stripe: "Will be 0 if the customer's bank or credit card company doesn't
    allow a response"), never the epoch."""
    if not isinstance(details, Mapping) or details.get("due_by") in (None, 0):
        return None
    return _epoch(details.get("due_by"), "data.object.evidence_details.due_by")


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


def _refs(*values: Any) -> list[str]:
    return [ref for ref in dict.fromkeys(_ref(v) for v in values) if ref]


def _stripe_envelope(event: Mapping[str, Any]) -> tuple[str, str]:
    if event.get("object") != "event":
        raise WebhookPayloadError("object", "expected 'event'")
    return _require(event, "id", str, ""), _require(event, "type", str, "")


def read_stripe_event(event: Mapping[str, Any]) -> DisputeEvent | IgnoredEvent:
    """A Stripe Event object (already signature-checked): the dispute event
    Steward acts on, or the event it acknowledges and ignores, with why.
    Raises WebhookPayloadError for a malformed envelope or dispute object."""
    event_id, event_type = _stripe_envelope(event)
    if event_type in STRIPE_EVENTS:
        return stripe_event_to_dispute_event(event)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    created = event.get("created")
    return _model(
        IgnoredEvent,
        "",
        _STRIPE_FIELDS,
        provider=DisputeProvider.STRIPE,
        event_key=_printable(event_id),
        event_type=_printable(event_type),
        object_ref=_printable(_ref(obj.get("id"))) if isinstance(obj, Mapping) else "",
        occurred_at=_epoch(created, "created")
        if isinstance(created, int) and not isinstance(created, bool) and created > 0
        else None,
        reason=STRIPE_IGNORED_EVENTS.get(event_type, STRIPE_NOT_A_DISPUTE),
    )


def stripe_event_to_dispute_event(event: Mapping[str, Any]) -> DisputeEvent:
    """Normalise a Stripe Event object (already signature-checked)."""
    event_id, event_type = _stripe_envelope(event)
    if event_type not in STRIPE_EVENTS:
        raise UnsupportedEvent(f"type: Steward does not handle Stripe event {event_type!r}")
    occurred_at = _epoch(event.get("created"), "created")
    data = event.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
        raise WebhookPayloadError("data.object", "expected an object")
    obj: Mapping[str, Any] = data["object"]
    object_id = _dispute_key(_require(obj, "id", str, "data.object."), "data.object.id")
    # Only the fallback: a Dispute's own metadata is {} and a warning has none;
    # the intake resolves the order from payment_refs first.
    order_id = _order_from_metadata(obj)
    if event_type == STRIPE_EFW_EVENT:
        if obj.get("object") not in (None, "radar.early_fraud_warning"):
            raise WebhookPayloadError("data.object.object", "expected 'radar.early_fraud_warning'")
        if not _ref(obj.get("charge")):
            raise WebhookPayloadError("data.object.charge", "expected the charge id")
        return _model(
            DisputeEvent,
            "",
            _STRIPE_FIELDS,
            event_id=event_id,
            provider=DisputeProvider.STRIPE,
            dispute_id=object_id,
            kind=DisputeEventKind.EARLY_FRAUD_WARNING,
            provider_event=event_type,
            occurred_at=occurred_at,
            order_id=order_id,
            order_source="metadata" if order_id else "",
            payment_ref=_ref(obj.get("charge")),
            payment_refs=_refs(obj.get("payment_intent"), obj.get("charge")),
            reason=DisputeReason.FRAUD,
            provider_reason_code=str(obj.get("fraud_type") or ""),
            provider_status="actionable" if obj.get("actionable") else "not_actionable",
            defendable=False,
        )
    if obj.get("object") != "dispute":
        raise WebhookPayloadError("data.object.object", "expected 'dispute'")
    amount = _amount(_require(obj, "amount", int, "data.object."), "data.object.amount")
    currency = str(_require(obj, "currency", str, "data.object.")).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise WebhookPayloadError("data.object.currency", "expected an ISO 4217 code")
    _currency(currency, "data.object.currency")
    status = str(_require(obj, "status", str, "data.object."))
    raw_reason = str(obj.get("reason") or "general")
    due_by = _due_by(obj.get("evidence_details"))
    kind = _stripe_kind(event_type, status)
    return _model(
        DisputeEvent,
        "",
        _STRIPE_FIELDS,
        event_id=event_id,
        provider=DisputeProvider.STRIPE,
        dispute_id=object_id,
        kind=kind,
        provider_event=event_type,
        occurred_at=occurred_at,
        order_id=order_id,
        order_source="metadata" if order_id else "",
        payment_ref=_ref(obj.get("charge")) or _ref(obj.get("payment_intent")),
        payment_refs=_refs(obj.get("payment_intent"), obj.get("charge")),
        reason=STRIPE_REASONS.get(raw_reason, DisputeReason.GENERAL),
        provider_reason_code=raw_reason,
        due_by=due_by,
        amount_minor=amount,
        currency=currency,
        provider_status=status,
        # Only these statuses still accept evidence, and only with a deadline
        # (due_by 0 / null: the bank allows no response); the others inform.
        defendable=status in STRIPE_RESPONDABLE_STATUSES and due_by is not None,
    )


def _stripe_kind(event_type: str, status: str) -> DisputeEventKind:
    if event_type == "charge.dispute.funds_withdrawn":
        return DisputeEventKind.FUNDS_WITHDRAWN
    if event_type == "charge.dispute.funds_reinstated":
        return DisputeEventKind.FUNDS_REINSTATED
    if status in STRIPE_OUTCOME_STATUSES:
        return STRIPE_OUTCOME_STATUSES[status]
    if event_type == "charge.dispute.closed":
        # Closed in a status Stripe does not document as final: the money is gone.
        return DisputeEventKind.LOST
    if status == "appeal_needs_response":
        # Appealed to the network (Stripe's pre-arbitration): a new round, new deadline.
        return DisputeEventKind.SECOND_CHARGEBACK
    if event_type == "charge.dispute.created":
        return (
            DisputeEventKind.INQUIRY
            if status in STRIPE_INQUIRY_STATUSES
            else DisputeEventKind.OPENED
        )
    return DisputeEventKind.UPDATED


ADYEN_EVENTS: dict[str, DisputeEventKind] = {
    "REQUEST_FOR_INFORMATION": DisputeEventKind.INQUIRY,
    "NOTIFICATION_OF_FRAUD": DisputeEventKind.FRAUD_NOTIFICATION,
    "NOTIFICATION_OF_CHARGEBACK": DisputeEventKind.OPENED,
    "CHARGEBACK": DisputeEventKind.OPENED,
    # A dispute opened straight with a chargeback (no notice before it).
    "DISPUTE_OPENED_WITH_CHARGEBACK": DisputeEventKind.OPENED,
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

# Adyen's standard webhook always sends its default event codes, dispute or
# not; these are acknowledged (`[accepted]`) and recorded, never refused. A
# code in neither table (a new one) is acknowledged and recorded the same way.
ADYEN_PAYMENT_EVENT = (
    "payment or modification event: the payment processes act on their own calls' answers"
)
ADYEN_IGNORED_EVENTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "AUTHORISATION",
            "AUTHORISATION_ADJUSTMENT",
            "CANCELLATION",
            "CANCEL_OR_REFUND",
            "CAPTURE",
            "CAPTURE_FAILED",
            "EXPIRE",
            "HANDLED_EXTERNALLY",
            "ORDER_OPENED",
            "ORDER_CLOSED",
            "PENDING",
            "REFUND",
            "REFUND_FAILED",
            "REFUNDED_REVERSED",
            "REFUND_WITH_DATA",
            "TECHNICAL_CANCEL",
            "VOID_PENDING_REFUND",
            "POSTPONED_REFUND",
            "OFFER_CLOSED",
            "AUTHENTICATION",
            "MANUAL_REVIEW_ACCEPT",
            "MANUAL_REVIEW_REJECT",
            "AUTORESCUE",
            "CANCEL_AUTORESCUE",
            "RECURRING_CONTRACT",
        ),
        ADYEN_PAYMENT_EVENT,
    ),
    **dict.fromkeys(
        ("PAYOUT_EXPIRE", "PAYOUT_DECLINE", "PAYOUT_THIRDPARTY", "PAIDOUT_REVERSED"),
        "payout event: Steward makes no payouts",
    ),
    "REPORT_AVAILABLE": "a settlement or dispute report is ready: read from the Customer Area",
}
ADYEN_UNKNOWN_EVENT = "event code Steward does not know: acknowledged so Adyen does not retry it"


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
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise WebhookPayloadError(field, f"{value!r} is out of the calendar in UTC") from None


def read_adyen_item(item: Mapping[str, Any], where: str) -> DisputeEvent | IgnoredEvent:
    """One NotificationRequestItem (already HMAC-checked): the dispute event
    Steward acts on, or the item it acknowledges and ignores, with why."""
    code = item.get("eventCode")
    if not isinstance(code, str) or not code:
        raise WebhookPayloadError(f"{where}eventCode", "expected a string")
    if code in ADYEN_EVENTS:
        return adyen_item_to_dispute_event(item, where)
    psp = item.get("pspReference")
    occurred_at: datetime | None
    try:
        occurred_at = _iso(item.get("eventDate"), f"{where}eventDate")
    except WebhookPayloadError:
        occurred_at = None  # not ours to judge: it is recorded, not acted on
    return _model(
        IgnoredEvent,
        where,
        _ADYEN_FIELDS,
        provider=DisputeProvider.ADYEN,
        event_key=_printable(adyen_event_id(item)),
        event_type=_printable(code),
        object_ref=_printable(psp) if isinstance(psp, str) else "",
        occurred_at=occurred_at,
        reason=ADYEN_IGNORED_EVENTS.get(code, ADYEN_UNKNOWN_EVENT),
    )


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
    _dispute_key(psp, f"{where}pspReference")
    amount = item.get("amount")
    if not isinstance(amount, Mapping):
        raise WebhookPayloadError(f"{where}amount", "expected an object with value and currency")
    value = _amount(amount.get("value"), f"{where}amount.value")
    currency = amount.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise WebhookPayloadError(f"{where}amount.currency", "expected an ISO 4217 code")
    _currency(currency, f"{where}amount.currency")
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
    fallback_order = (
        merchant_reference if isinstance(merchant_reference, str) and merchant_reference else None
    )
    original = item.get("originalReference")
    return _model(
        DisputeEvent,
        where,
        _ADYEN_FIELDS,
        event_id=adyen_event_id(item),
        provider=DisputeProvider.ADYEN,
        dispute_id=psp,
        kind=kind if success == "true" else DisputeEventKind.UPDATED,
        provider_event=code,
        occurred_at=occurred_at,
        order_id=fallback_order,
        order_source="merchant_reference" if fallback_order else "",
        payment_ref=str(original or ""),
        # The payment's pspReference first; a dispute's own pspReference last.
        payment_refs=_refs(original, psp),
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
