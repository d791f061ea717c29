"""Carrier tracking events: Steward's own webhook format, the EasyPost adapter,
the EasyPost signature check and the routing rule. Pure: no I/O.

Two formats reach `POST /v1/webhooks/carrier`:

- Steward's format (`CarrierEvent`, JSON, API key of a system): what a carrier
  integration or the 3PL forwards after normalising its own feed.
- EasyPost tracker events (`tracker.created` / `tracker.updated`, signed with
  the webhook secret in `X-Hmac-Signature: hmac-sha256-hex=<hex>`, HMAC-SHA256
  of the raw body with the NFKD-normalised secret, as EasyPost's own client
  libraries verify it). EasyPost was chosen because one integration covers
  the carriers a luxury house ships with (UPS, FedEx, DHL Express, USPS...)
  and its tracker statuses map cleanly onto ours.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from domain.common import BusinessKey, NonEmptyStr, StewardModel


class TrackingStatus(StrEnum):
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    # The carrier tried and could not hand it over (customer absent, refused...).
    DELIVERY_FAILED = "delivery_failed"
    RETURNED_TO_SENDER = "returned_to_sender"
    LOST = "lost"
    DAMAGED = "damaged"


class EventSource(StrEnum):
    STEWARD = "steward"
    EASYPOST = "easypost"


class CarrierEvent(StewardModel):
    """One tracking event in Steward's documented format."""

    event_id: NonEmptyStr = Field(
        max_length=200, description="The sender's event id; repeats are ignored"
    )
    carrier: BusinessKey = Field(
        description="Carrier code, lower case: ups, fedex, dhl, colissimo..."
    )
    tracking_number: BusinessKey
    # EasyPost does not know Steward's shipment ids: then it is looked up by
    # carrier and tracking number.
    shipment_id: BusinessKey | None = None
    status: TrackingStatus
    exception_code: str | None = Field(default=None, max_length=100)
    location: str | None = Field(default=None, max_length=200)
    occurred_at: datetime
    source: EventSource = EventSource.STEWARD

    @field_validator("carrier")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at needs a time zone (e.g. 2026-11-24T10:00:00Z)")
        return value.astimezone(UTC)


# ------------------------------------------------------------------ routing


class Route(StrEnum):
    """Where a carrier event goes."""

    FAILED_DELIVERY = "failed_delivery"  # start (or signal) failed-delivery:{shipment_id}
    CARRIER_CLAIM = "carrier_claim"  # start (or signal) carrier-claim:{carrier}:{tracking}
    TRACKING_WORKFLOW = "tracking_workflow"  # a running process follows this shipment
    RECORD_ONLY = "record_only"  # nothing waits on it; the shipment row is updated


FAILURE_STATUSES = frozenset({TrackingStatus.DELIVERY_FAILED, TrackingStatus.RETURNED_TO_SENDER})
CLAIM_STATUSES = frozenset({TrackingStatus.LOST, TrackingStatus.DAMAGED})


def route_event(status: TrackingStatus, tracked_by: str | None) -> Route:
    """A shipment already followed by a process (a failed delivery, its reship,
    a claim) gets every event there; otherwise failures open a failed
    delivery, lost or damaged parcels a claim, and the rest is recorded."""
    if tracked_by:
        return Route.TRACKING_WORKFLOW
    if status in FAILURE_STATUSES:
        return Route.FAILED_DELIVERY
    if status in CLAIM_STATUSES:
        return Route.CARRIER_CLAIM
    return Route.RECORD_ONLY


def is_silent(
    last_scan_at: datetime | None,
    expected_delivery_at: datetime,
    now: datetime,
    silence: timedelta,
) -> bool:
    """No scan for `silence` after the expected delivery: treat the parcel as lost."""
    if now < expected_delivery_at + silence:
        return False
    return last_scan_at is None or last_scan_at < now - silence


# ------------------------------------------------------------------ EasyPost

EASYPOST_SIGNATURE_HEADER = "X-Hmac-Signature"
_EASYPOST_PREFIX = "hmac-sha256-hex="


class SignatureError(ValueError):
    """The webhook is not signed by the provider with our secret."""


class EasyPostFormatError(ValueError):
    """A signed EasyPost event Steward cannot read; the message names the field."""


def easypost_signature(body: bytes, secret: str) -> str:
    """The header value EasyPost sends for `body` (used by tests and the simulator)."""
    key = unicodedata.normalize("NFKD", secret).encode("utf-8")
    return _EASYPOST_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_easypost_signature(body: bytes, header: str | None, secret: str) -> None:
    """Raise SignatureError unless `header` is EasyPost's HMAC of the raw body,
    checked by EasyPost's own library (`easypost.util.validate_webhook`, which
    compares in constant time). The header is lower-cased first: hex digits
    in either case are the same digest."""
    # Imported here: workflows import this module, and the SDK (with requests)
    # has no business in their sandbox.
    from easypost.errors import SignatureVerificationError
    from easypost.util import validate_webhook

    if not secret:
        raise SignatureError("no EasyPost webhook secret is configured; events are refused")
    if not header:
        raise SignatureError(f"{EASYPOST_SIGNATURE_HEADER} header is missing")
    normalised = header.strip().lower()
    try:
        validate_webhook(body, {EASYPOST_SIGNATURE_HEADER: normalised}, secret)
    except (SignatureVerificationError, TypeError):
        # TypeError: a header with non-ASCII characters, which no digest has.
        raise SignatureError(f"{EASYPOST_SIGNATURE_HEADER} does not match the body") from None
    except ValueError:
        # The library parses the body once the signature matched: a signed body
        # that is not JSON is authentic, and the caller says what is wrong with it.
        return


# EasyPost tracker `status` -> ours; `failure` is refined by `status_detail`.
_EASYPOST_STATUS: dict[str, TrackingStatus] = {
    "pre_transit": TrackingStatus.IN_TRANSIT,
    "in_transit": TrackingStatus.IN_TRANSIT,
    "out_for_delivery": TrackingStatus.OUT_FOR_DELIVERY,
    "available_for_pickup": TrackingStatus.IN_TRANSIT,
    "delivered": TrackingStatus.DELIVERED,
    "return_to_sender": TrackingStatus.RETURNED_TO_SENDER,
    "failure": TrackingStatus.DELIVERY_FAILED,
    "error": TrackingStatus.DELIVERY_FAILED,
}
_EASYPOST_DETAIL: dict[str, TrackingStatus] = {
    "lost": TrackingStatus.LOST,
    "damaged": TrackingStatus.DAMAGED,
}
EASYPOST_TRACKER_EVENTS = frozenset({"tracker.created", "tracker.updated"})


def _field(data: dict[str, Any], key: str, where: str) -> Any:
    value = data.get(key)
    if value in (None, ""):
        raise EasyPostFormatError(f"{where}{key}: is missing")
    return value


def _parse_time(value: Any, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise EasyPostFormatError(f"{where}: not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_easypost_event(payload: Any) -> CarrierEvent | None:
    """An EasyPost Event into a CarrierEvent; None for events that are not
    tracker updates or carry a status Steward does not act on (unknown,
    cancelled): they are acknowledged and ignored."""
    if not isinstance(payload, dict):
        raise EasyPostFormatError("body: must be a JSON object (an EasyPost Event)")
    event_id = _field(payload, "id", "")
    if payload.get("description") not in EASYPOST_TRACKER_EVENTS:
        return None
    result = payload.get("result")
    if not isinstance(result, dict):
        raise EasyPostFormatError("result: must be the Tracker object")
    status_text = str(_field(result, "status", "result."))
    tracking_code = str(_field(result, "tracking_code", "result."))
    carrier = str(_field(result, "carrier", "result.")).replace(" ", "")
    detail = str(result.get("status_detail") or "")
    status = _EASYPOST_DETAIL.get(detail) or _EASYPOST_STATUS.get(status_text)
    if status is None:
        return None
    details = result.get("tracking_details") or []
    last = (
        details[-1]
        if isinstance(details, list) and details and isinstance(details[-1], dict)
        else {}
    )
    when = last.get("datetime") or result.get("updated_at") or payload.get("created_at")
    if not when:
        raise EasyPostFormatError("result.updated_at: is missing")
    place = last.get("tracking_location") or {}
    location = ", ".join(
        str(place[k]) for k in ("city", "country") if isinstance(place, dict) and place.get(k)
    )
    try:
        return CarrierEvent(
            event_id=str(event_id),
            carrier=carrier,
            tracking_number=tracking_code,
            status=status,
            exception_code=detail or None,
            location=location or None,
            occurred_at=_parse_time(when, "result.updated_at"),
            source=EventSource.EASYPOST,
        )
    except ValueError as invalid:  # pydantic's ValidationError is a ValueError
        raise EasyPostFormatError(f"result: {invalid}") from None
