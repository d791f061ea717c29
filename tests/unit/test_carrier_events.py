"""Carrier events: the EasyPost signature and format, Steward's format, routing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain.carrier_events import (
    CarrierEvent,
    EasyPostFormatError,
    EventSource,
    Route,
    SignatureError,
    TrackingStatus,
    easypost_signature,
    is_silent,
    parse_easypost_event,
    route_event,
    verify_easypost_signature,
)

SECRET = "whsec-test-secret"


def easypost_event(status: str = "failure", detail: str = "", **result: Any) -> dict[str, Any]:
    return {
        "id": "evt_0123456789",
        "object": "Event",
        "description": "tracker.updated",
        "created_at": "2026-11-24T09:00:00Z",
        "result": {
            "id": "trk_abc",
            "object": "Tracker",
            "tracking_code": "1Z999AA10123456784",
            "status": status,
            "status_detail": detail,
            "carrier": "UPS",
            "updated_at": "2026-11-24T08:59:00Z",
            "tracking_details": [
                {
                    "datetime": "2026-11-24T08:30:00Z",
                    "message": "Receiver not available",
                    "status": status,
                    "tracking_location": {"city": "PARIS", "country": "FR"},
                }
            ],
            **result,
        },
    }


def test_signature_matches_easypost_scheme() -> None:
    body = b'{"id":"evt_1"}'
    header = easypost_signature(body, SECRET)
    # EasyPost's prefix and a hex SHA-256 HMAC (64 hex digits).
    assert header.startswith("hmac-sha256-hex=") and len(header) == len("hmac-sha256-hex=") + 64
    verify_easypost_signature(body, header, SECRET)
    verify_easypost_signature(
        body, header.upper().replace("HMAC-SHA256-HEX=", "hmac-sha256-hex="), SECRET
    )


def test_signature_uses_nfkd_normalised_secret() -> None:
    body = b"{}"
    # "ﬁ" (U+FB01) normalises to "fi" under NFKD, as EasyPost's clients do.
    assert easypost_signature(body, "\ufb01x") == easypost_signature(body, "fix")


@pytest.mark.parametrize(
    ("header", "secret", "message"),
    [
        (None, SECRET, "header is missing"),
        ("hmac-sha256-hex=00", SECRET, "does not match"),
        ("sha256=whatever", SECRET, "does not match"),
        ("hmac-sha256-hex=00", "", "no EasyPost webhook secret"),
    ],
)
def test_signature_refusals(header: str | None, secret: str, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_easypost_signature(b'{"id":"evt_1"}', header, secret)


def test_a_tampered_body_fails_verification() -> None:
    header = easypost_signature(b'{"status":"failure"}', SECRET)
    with pytest.raises(SignatureError):
        verify_easypost_signature(b'{"status":"delivered"}', header, SECRET)


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        ("failure", "", TrackingStatus.DELIVERY_FAILED),
        ("return_to_sender", "return", TrackingStatus.RETURNED_TO_SENDER),
        ("failure", "lost", TrackingStatus.LOST),
        ("in_transit", "damaged", TrackingStatus.DAMAGED),
        ("delivered", "arrived_at_destination", TrackingStatus.DELIVERED),
        ("out_for_delivery", "", TrackingStatus.OUT_FOR_DELIVERY),
    ],
)
def test_easypost_statuses_map_to_ours(status: str, detail: str, expected: TrackingStatus) -> None:
    event = parse_easypost_event(easypost_event(status, detail))
    assert event is not None
    assert event.status is expected
    assert event.carrier == "ups"
    assert event.tracking_number == "1Z999AA10123456784"
    assert event.event_id == "evt_0123456789"
    assert event.source is EventSource.EASYPOST
    assert event.shipment_id is None
    # The latest scan's time and place, not the delivery of the webhook.
    assert event.occurred_at == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    assert event.location == "PARIS, FR"


@pytest.mark.parametrize("status", ["unknown", "cancelled"])
def test_statuses_steward_does_not_act_on_are_ignored(status: str) -> None:
    assert parse_easypost_event(easypost_event(status)) is None


def test_non_tracker_events_are_ignored() -> None:
    payload = easypost_event()
    payload["description"] = "batch.updated"
    assert parse_easypost_event(payload) is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("id"), "id: is missing"),
        (lambda p: p.update(result="x"), "result: must be the Tracker object"),
        (lambda p: p["result"].pop("tracking_code"), "result.tracking_code: is missing"),
        (lambda p: p["result"].pop("status"), "result.status: is missing"),
        (
            lambda p: p["result"]["tracking_details"][0].update(datetime="yesterday"),
            "not an ISO 8601 time",
        ),
    ],
)
def test_easypost_format_errors_name_the_field(mutate: Any, message: str) -> None:
    payload = json.loads(json.dumps(easypost_event()))
    mutate(payload)
    with pytest.raises(EasyPostFormatError, match=message):
        parse_easypost_event(payload)


def test_steward_format_requires_a_time_zone_and_lowers_the_carrier() -> None:
    base = {
        "event_id": "e1",
        "carrier": "UPS",
        "tracking_number": "1Z1",
        "status": "delivery_failed",
        "occurred_at": "2026-11-24T10:00:00+01:00",
    }
    event = CarrierEvent.model_validate(base)
    assert event.carrier == "ups" and event.occurred_at.tzinfo is UTC
    assert event.occurred_at.hour == 9
    with pytest.raises(ValidationError, match="occurred_at needs a time zone"):
        CarrierEvent.model_validate({**base, "occurred_at": "2026-11-24T10:00:00"})
    with pytest.raises(ValidationError, match="status"):
        CarrierEvent.model_validate({**base, "status": "vanished"})


@pytest.mark.parametrize(
    ("status", "tracked_by", "route"),
    [
        (TrackingStatus.DELIVERY_FAILED, None, Route.FAILED_DELIVERY),
        (TrackingStatus.RETURNED_TO_SENDER, None, Route.FAILED_DELIVERY),
        (TrackingStatus.LOST, None, Route.CARRIER_CLAIM),
        (TrackingStatus.DAMAGED, None, Route.CARRIER_CLAIM),
        (TrackingStatus.DELIVERED, None, Route.RECORD_ONLY),
        (TrackingStatus.IN_TRANSIT, None, Route.RECORD_ONLY),
        (TrackingStatus.DELIVERED, "failed-delivery:S1", Route.TRACKING_WORKFLOW),
        (TrackingStatus.LOST, "failed-delivery:S1", Route.TRACKING_WORKFLOW),
    ],
)
def test_routing(status: TrackingStatus, tracked_by: str | None, route: Route) -> None:
    assert route_event(status, tracked_by) is route


def test_silence_after_expected_delivery() -> None:
    expected = datetime(2026, 11, 1, tzinfo=UTC)
    silence = timedelta(days=5)
    assert not is_silent(None, expected, expected + timedelta(days=4), silence)
    assert is_silent(None, expected, expected + timedelta(days=5), silence)
    recent_scan = expected + timedelta(days=3)
    assert not is_silent(recent_scan, expected, expected + timedelta(days=6), silence)
    assert is_silent(recent_scan, expected, expected + timedelta(days=9), silence)


def test_easypost_library_checks_the_signature_and_a_signed_non_json_body_passes() -> None:
    from easypost.util import validate_webhook

    body = b'{"id":"evt_9","description":"tracker.updated"}'
    header = easypost_signature(body, SECRET)
    # The header Steward builds is the one EasyPost's own library accepts.
    assert validate_webhook(body, {"X-Hmac-Signature": header}, SECRET)["id"] == "evt_9"
    # Authentic but not JSON: verification passes, the route says what is wrong.
    verify_easypost_signature(b"not json", easypost_signature(b"not json", SECRET), SECRET)
    with pytest.raises(SignatureError, match="does not match"):
        verify_easypost_signature(body, "hmac-sha256-hex=\u00e9" + "0" * 63, SECRET)
