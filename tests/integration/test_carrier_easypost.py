"""The EasyPost carrier adapter at the HTTP level, on PostgreSQL.

EasyPost's library is intercepted with `responses` and answered with the
bodies EasyPost documents (Shipment, Rate, PostageLabel, Tracker, Claim, the
error object); each test asserts method, path and body, what the port says
back, and what Steward recorded so a retry buys, follows or files nothing
twice (EasyPost's API takes no idempotency key).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import requests
import responses

from activities.carrier_easypost import (
    CarrierRouter,
    EasyPostCarrier,
    Parcel,
    ShipmentRefusedError,
    easypost_client,
)
from activities.ports import (
    ClaimRefusedError,
    PortTimeoutError,
    PortUnavailableError,
    RateLimitedError,
)
from activities.simulated import SimulatedCarrier
from domain.orders import Address
from store import carrier_bookings
from store import deliveries as delivery_store
from tests.workflows.inputs import shipment

API = "https://api.easypost.com/v2"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
WAREHOUSE = "adr_warehouse0001"


def rate(rate_id: str, carrier: str, service: str, price: str, days: int) -> dict[str, Any]:
    return {
        "id": rate_id,
        "object": "Rate",
        "mode": "test",
        "service": service,
        "carrier": carrier,
        "rate": price,
        "currency": "USD",
        "delivery_days": days,
        "delivery_date": None,
        "delivery_date_guaranteed": False,
        "est_delivery_days": days,
        "shipment_id": "shp_1",
        "carrier_account_id": "ca_1",
    }


RATES = [
    rate("rate_usps", "USPS", "GroundAdvantage", "5.93", 3),
    rate("rate_ups_ground", "UPS", "Ground", "11.20", 4),
    rate("rate_ups_air", "UPS", "NextDayAir", "48.10", 1),
    rate("rate_ups_2day", "UPS", "2ndDayAir", "21.75", 2),
]


def shipment_body(*, bought: str | None = None, is_return: bool = False) -> dict[str, Any]:
    """A Shipment as EasyPost answers create (rates, no label) or buy."""
    selected = next((r for r in RATES if r["id"] == bought), None)
    return {
        "id": "shp_1",
        "object": "Shipment",
        "mode": "test",
        "is_return": is_return,
        "reference": "ref",
        "status": "unknown",
        "tracking_code": "1ZEASYPOST0001" if bought else None,
        "messages": [],
        "options": {"currency": "USD"},
        "from_address": {"id": WAREHOUSE, "object": "Address"},
        "to_address": {"id": "adr_customer", "object": "Address"},
        "parcel": {"id": "prcl_1", "object": "Parcel", "weight": 48.0},
        "rates": RATES,
        "selected_rate": selected,
        "postage_label": (
            {
                "object": "PostageLabel",
                "id": "pl_1",
                "label_file_type": "image/png",
                "label_url": "https://easypost-files.s3.amazonaws.com/files/postage_label/1.png",
                "label_pdf_url": None,
            }
            if bought
            else None
        ),
        "tracker": (
            {"id": "trk_1", "object": "Tracker", "tracking_code": "1ZEASYPOST0001"}
            if bought
            else None
        ),
        "fees": [],
    }


def error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "errors": []}}


@pytest.fixture
def easypost_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def carrier(clean_db: asyncpg.Pool) -> EasyPostCarrier:
    return EasyPostCarrier(
        easypost_client("EZTK_test_key"),
        clean_db,
        warehouse_address_id=WAREHOUSE,
        parcel=Parcel.parse("14x10x6", 48),
        claim_email="claims@maison.example",
        return_carrier="ups",
        clock=lambda: NOW,
    )


async def registered_order(pool: asyncpg.Pool) -> str:
    record = shipment(NOW)
    await delivery_store.register_shipment(pool, record)
    return record.order.order_id


def body(mock: responses.RequestsMock, index: int) -> dict[str, Any]:
    raw = mock.calls[index].request.body
    assert raw is not None
    return json.loads(raw)


async def test_reship_creates_then_buys_the_rate_of_the_service_level(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    order_id = await registered_order(clean_db)
    easypost_api.post(f"{API}/shipments", json=shipment_body(), status=201)
    easypost_api.post(f"{API}/shipments/shp_1/buy", json=shipment_body(bought="rate_ups_air"))
    new_address = Address(line1="8 rue de la Paix", city="Paris", postal_code="75002", country="FR")

    booked = await carrier.book_shipment(
        idempotency_key="failed-delivery:SH-1/reship",
        carrier="ups",
        order_id=order_id,
        destination_country="FR",
        service_level="express",
        pickup_point_id=None,
        destination=new_address,
    )

    assert booked.tracking_number == "1ZEASYPOST0001"
    assert booked.expected_delivery_at == NOW + timedelta(days=1)
    created = body(easypost_api, 0)["shipment"]
    assert easypost_api.calls[0].request.headers["Authorization"] == "Bearer EZTK_test_key"
    assert created["from_address"] == {"id": WAREHOUSE}
    assert created["to_address"]["street1"] == "8 rue de la Paix"
    assert created["to_address"]["zip"] == "75002"
    assert created["to_address"]["name"]  # the customer's name, from Steward's record
    assert created["parcel"] == {"length": 14.0, "width": 10.0, "height": 6.0, "weight": 48.0}
    assert created["reference"] == order_id
    assert "options" not in created and "is_return" not in created
    # Express: UPS's fastest rate, not the cheapest nor another carrier's.
    assert body(easypost_api, 1) == {"rate": {"id": "rate_ups_air"}}

    # A repeat (the activity retried after its answer was lost) buys nothing.
    again = await carrier.book_shipment(
        idempotency_key="failed-delivery:SH-1/reship",
        carrier="ups",
        order_id=order_id,
        destination_country="FR",
        service_level="express",
        pickup_point_id=None,
        destination=new_address,
    )
    assert again == booked
    assert len(easypost_api.calls) == 2


async def test_signature_required_asks_for_a_signature_and_takes_the_cheapest(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    order_id = await registered_order(clean_db)
    easypost_api.post(f"{API}/shipments", json=shipment_body(), status=201)
    easypost_api.post(f"{API}/shipments/shp_1/buy", json=shipment_body(bought="rate_ups_ground"))
    await carrier.book_shipment(
        idempotency_key="k-signature",
        carrier="UPS",
        order_id=order_id,
        destination_country="FR",
        service_level="signature_required",
        pickup_point_id=None,
    )
    assert body(easypost_api, 0)["shipment"]["options"] == {"delivery_confirmation": "SIGNATURE"}
    assert body(easypost_api, 1) == {"rate": {"id": "rate_ups_ground"}}


async def test_the_preferred_date_is_the_earliest_delivery(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    """Issue 15: a reship honours the customer's preferred date."""
    order_id = await registered_order(clean_db)
    easypost_api.post(f"{API}/shipments", json=shipment_body(), status=201)
    easypost_api.post(f"{API}/shipments/shp_1/buy", json=shipment_body(bought="rate_ups_air"))
    preferred = (NOW + timedelta(days=6)).date()
    booked = await carrier.book_shipment(
        idempotency_key="k-preferred",
        carrier="ups",
        order_id=order_id,
        destination_country="FR",
        service_level="express",
        pickup_point_id=None,
        earliest_delivery=preferred,
    )
    options = body(easypost_api, 0)["shipment"]["options"]
    assert options == {"delivery_min_datetime": f"{preferred.isoformat()}T00:00:00Z"}
    # Express takes a day, but not before the customer's day.
    assert booked.expected_delivery_at == datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


async def test_a_buy_that_failed_is_retried_on_the_same_shipment(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    order_id = await registered_order(clean_db)
    create = easypost_api.post(f"{API}/shipments", json=shipment_body(), status=201)
    buy = easypost_api.post(
        f"{API}/shipments/shp_1/buy",
        json=error("INTERNAL_SERVER_ERROR", "We're sorry, something went wrong."),
        status=500,
    )
    call = {
        "idempotency_key": "k-retry",
        "carrier": "ups",
        "order_id": order_id,
        "destination_country": "FR",
        "service_level": "standard",
        "pickup_point_id": None,
    }
    with pytest.raises(PortUnavailableError) as failed:
        await carrier.book_shipment(**call)
    assert failed.value.status == 500
    booking = await carrier_bookings.get(clean_db, "k-retry")
    assert booking is not None and booking.provider_ref == "shp_1" and booking.result is None

    retrieve = easypost_api.get(f"{API}/shipments/shp_1", json=shipment_body())
    easypost_api.replace(
        responses.POST, f"{API}/shipments/shp_1/buy", json=shipment_body(bought="rate_ups_ground")
    )
    booked = await carrier.book_shipment(**call)
    assert booked.tracking_number == "1ZEASYPOST0001"
    assert (create.call_count, retrieve.call_count) == (1, 1)
    assert buy.call_count == 1  # the replaced route counts its own calls
    assert body(easypost_api, len(easypost_api.calls) - 1) == {"rate": {"id": "rate_ups_ground"}}


async def test_a_label_bought_before_the_answer_was_lost_is_not_bought_again(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    order_id = await registered_order(clean_db)
    easypost_api.post(f"{API}/shipments", json=shipment_body(), status=201)
    easypost_api.post(
        f"{API}/shipments/shp_1/buy", body=requests.exceptions.ReadTimeout("read timed out")
    )
    call = {
        "idempotency_key": "k-lost-answer",
        "carrier": "ups",
        "order_id": order_id,
        "destination_country": "FR",
        "service_level": "standard",
        "pickup_point_id": None,
    }
    with pytest.raises(PortTimeoutError):
        await carrier.book_shipment(**call)
    # EasyPost did buy it: the retry finds the label on the shipment.
    easypost_api.get(f"{API}/shipments/shp_1", json=shipment_body(bought="rate_ups_ground"))
    buys_before = len([c for c in easypost_api.calls if c.request.url.endswith("/buy")])
    booked = await carrier.book_shipment(**call)
    assert booked.tracking_number == "1ZEASYPOST0001"
    assert len([c for c in easypost_api.calls if c.request.url.endswith("/buy")]) == buys_before


async def test_refusals_and_rate_limits(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    order_id = await registered_order(clean_db)
    call = {
        "carrier": "dhl",
        "order_id": order_id,
        "destination_country": "FR",
        "service_level": "standard",
        "pickup_point_id": None,
    }
    easypost_api.post(f"{API}/shipments", json=shipment_body(), status=201)
    with pytest.raises(ShipmentRefusedError, match="no dhl rate") as no_rate:
        await carrier.book_shipment(idempotency_key="k-dhl", **call)
    assert no_rate.value.code == "no_rate"

    easypost_api.replace(
        responses.POST,
        f"{API}/shipments",
        json=error("ADDRESS.VERIFY.FAILURE", "Unable to verify address."),
        status=422,
    )
    with pytest.raises(ShipmentRefusedError) as invalid:
        await carrier.book_shipment(idempotency_key="k-address", **call)
    assert invalid.value.code == "ADDRESS.VERIFY.FAILURE"

    easypost_api.replace(
        responses.POST,
        f"{API}/shipments",
        json=error("RATE_LIMITED", "You have exceeded the rate limit."),
        status=429,
        headers={"Retry-After": "9"},
    )
    with pytest.raises(RateLimitedError) as limited:
        await carrier.book_shipment(idempotency_key="k-limited", **call)
    assert limited.value.retry_after == timedelta(seconds=9)

    easypost_api.replace(
        responses.POST,
        f"{API}/shipments",
        json=error("APIKEY.INACTIVE", "This api key is no longer active."),
        status=401,
    )
    with pytest.raises(PortUnavailableError, match="STEWARD_EASYPOST_API_KEY"):
        await carrier.book_shipment(idempotency_key="k-key", **call)

    with pytest.raises(ShipmentRefusedError) as pickup:
        await carrier.book_shipment(
            idempotency_key="k-pickup", **{**call, "pickup_point_id": "PP1"}
        )
    assert pickup.value.code == "pickup_point_unsupported"


async def test_return_label_for_the_returns_customer(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    order_id = await registered_order(clean_db)
    rma_id = f"RMA-{uuid.uuid4().hex[:6]}"
    await clean_db.execute(
        "INSERT INTO return_lines (rma_id, workflow_id, order_id, sku, quantity) "
        "VALUES ($1, $2, $3, 'SKU-1', 2)",
        rma_id,
        f"return:{rma_id}",
        order_id,
    )
    easypost_api.post(f"{API}/shipments", json=shipment_body(is_return=True), status=201)
    easypost_api.post(
        f"{API}/shipments/shp_1/buy", json=shipment_body(bought="rate_ups_ground", is_return=True)
    )
    expires = NOW + timedelta(days=30)
    label = await carrier.create_return_label(
        idempotency_key=f"return:{rma_id}/label",
        rma_id=rma_id,
        market="FR",
        parcel_units=2,
        expires_at=expires,
    )
    assert (label.carrier, label.tracking_number, label.expires_at) == (
        "ups",
        "1ZEASYPOST0001",
        expires,
    )
    assert label.label_url.endswith("/postage_label/1.png")
    created = body(easypost_api, 0)["shipment"]
    assert created["is_return"] is True
    assert created["reference"] == rma_id
    assert created["parcel"]["weight"] == 96.0  # two units


async def test_tracker_for_a_parcel_bought_elsewhere(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier
) -> None:
    easypost_api.post(
        f"{API}/trackers",
        json={
            "id": "trk_9",
            "object": "Tracker",
            "mode": "test",
            "tracking_code": "1Z999AA10123456784",
            "status": "in_transit",
            "carrier": "UPS",
            "tracking_details": [],
        },
        status=201,
    )
    reference = await carrier.open_investigation(
        idempotency_key="carrier-claim:ups:1Z999AA10123456784/investigation",
        carrier="ups",
        tracking_number="1Z999AA10123456784",
        claim_type="lost",
    )
    assert reference == "trk_9"
    assert body(easypost_api, 0) == {
        "tracker": {"tracking_code": "1Z999AA10123456784", "carrier": "UPS"}
    }
    again = await carrier.open_investigation(
        idempotency_key="carrier-claim:ups:1Z999AA10123456784/investigation",
        carrier="ups",
        tracking_number="1Z999AA10123456784",
        claim_type="lost",
    )
    assert again == "trk_9" and len(easypost_api.calls) == 1


def claim_body(claim_id: str = "clm_1", tracking: str = "1ZEASYPOST0001") -> dict[str, Any]:
    return {
        "id": claim_id,
        "object": "Claim",
        "mode": "test",
        "type": "damage",
        "status": "submitted",
        "status_detail": "Claim was created.",
        "tracking_code": tracking,
        "requested_amount": "123.45",
        "insurance_amount": "200.00",
        "payment_method": "easypost_wallet",
        "history": [{"status": "submitted", "status_detail": "Claim was created."}],
        "shipment_id": "shp_1",
    }


async def test_claims_are_filed_once_with_a_statement(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    create = easypost_api.post(f"{API}/claims", json=claim_body(), status=201)
    call = {
        "idempotency_key": "carrier-claim:ups:1ZEASYPOST0001/file",
        "carrier": "ups",
        "tracking_number": "1ZEASYPOST0001",
        "claim_type": "damaged",
        "amount_minor": 12_345,
        "currency": "USD",
        "documents": ["invoice", "tracking_history", "photo"],
    }
    assert await carrier.file_claim(**call) == "clm_1"
    sent = body(easypost_api, 0)
    assert (sent["type"], sent["tracking_code"], sent["amount"]) == (
        "damage",
        "1ZEASYPOST0001",
        "123.45",
    )
    assert sent["contact_email"] == "claims@maison.example"
    statement = base64.b64decode(sent["supporting_documentation_attachments"][0])
    assert statement.startswith(b"%PDF-1.4") and b"tracking_history" in statement
    assert await carrier.file_claim(**call) == "clm_1"
    assert create.call_count == 1

    # Filing interrupted after EasyPost took it: found among the claims, not filed again.
    await carrier_bookings.start(
        clean_db, idempotency_key="k-claim-2", provider="easypost", kind="claim"
    )
    listing = easypost_api.get(
        f"{API}/claims",
        json={"claims": [claim_body("clm_2", "1ZOTHER")], "has_more": False},
    )
    assert (
        await carrier.file_claim(
            **{**call, "idempotency_key": "k-claim-2", "tracking_number": "1ZOTHER"}
        )
        == "clm_2"
    )
    assert listing.call_count == 1 and create.call_count == 1

    easypost_api.get(f"{API}/claims/clm_1", json=claim_body())
    await carrier.chase_claim(idempotency_key="k-chase", carrier="ups", claim_reference="clm_1")


async def test_claims_easypost_cannot_take_are_refused_with_a_code(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier
) -> None:
    call = {
        "idempotency_key": "k-claim-eur",
        "carrier": "ups",
        "tracking_number": "1ZEASYPOST0001",
        "claim_type": "lost",
        "amount_minor": 245_000,
        "currency": "EUR",
        "documents": ["invoice"],
    }
    with pytest.raises(ClaimRefusedError) as currency:
        await carrier.file_claim(**call)
    assert currency.value.code == "currency_unsupported"
    easypost_api.post(
        f"{API}/claims",
        json=error("NOT_FOUND", "The requested resource could not be found."),
        status=404,
    )
    with pytest.raises(ClaimRefusedError) as uninsured:
        await carrier.file_claim(**{**call, "idempotency_key": "k-claim-usd", "currency": "USD"})
    assert uninsured.value.code == "NOT_FOUND"


async def test_the_router_sends_each_carrier_to_its_adapter(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    order_id = await registered_order(clean_db)
    router = CarrierRouter(SimulatedCarrier(clean_db), {"ups": carrier})
    booked = await router.book_shipment(
        idempotency_key="k-router-dhl",
        carrier="dhl",
        order_id=order_id,
        destination_country="FR",
        service_level="standard",
        pickup_point_id=None,
    )
    assert booked.tracking_number.startswith("SIM") and not easypost_api.calls
    easypost_api.post(f"{API}/shipments", json=shipment_body(), status=201)
    easypost_api.post(f"{API}/shipments/shp_1/buy", json=shipment_body(bought="rate_ups_ground"))
    booked = await router.book_shipment(
        idempotency_key="k-router-ups",
        carrier="ups",
        order_id=order_id,
        destination_country="FR",
        service_level="standard",
        pickup_point_id=None,
    )
    assert booked.tracking_number == "1ZEASYPOST0001"


def tracker_body(tracker_id: str, tracking: str) -> dict[str, Any]:
    return {
        "id": tracker_id,
        "object": "Tracker",
        "mode": "test",
        "tracking_code": tracking,
        "status": "pre_transit",
        "carrier": "UPS",
        "tracking_details": [],
    }


async def test_the_sweep_follows_registered_parcels_once_and_not_the_ones_easypost_sold(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    ups = shipment(NOW)
    dhl = shipment(NOW).model_copy(update={"carrier": "dhl"})
    for record in (ups, dhl):
        await delivery_store.register_shipment(clean_db, record)
    # A reship EasyPost sold: registered as the failed delivery does it.
    easypost_api.post(f"{API}/shipments", json=shipment_body(), status=201)
    easypost_api.post(f"{API}/shipments/shp_1/buy", json=shipment_body(bought="rate_ups_ground"))
    booked = await carrier.book_shipment(
        idempotency_key="k-sold",
        carrier="ups",
        order_id=ups.order.order_id,
        destination_country="FR",
        service_level="standard",
        pickup_point_id=None,
    )
    sold = ups.model_copy(
        update={"shipment_id": f"{ups.shipment_id}-R2", "tracking_number": booked.tracking_number}
    )
    await delivery_store.register_shipment(clean_db, sold)
    trackers = easypost_api.post(
        f"{API}/trackers", json=tracker_body("trk_ups", ups.tracking_number), status=201
    )

    assert await carrier.follow_new_shipments({"ups"}) == 1
    assert trackers.call_count == 1
    sent = json.loads(trackers.calls[0].request.body or b"{}")
    assert sent == {"tracker": {"tracking_code": ups.tracking_number, "carrier": "UPS"}}
    # Next hour: nothing new to follow; an investigation reuses the tracker.
    assert await carrier.follow_new_shipments({"ups"}) == 0
    assert (
        await carrier.open_investigation(
            idempotency_key="carrier-claim:ups:x/investigation",
            carrier="ups",
            tracking_number=ups.tracking_number,
            claim_type="lost",
        )
        == "trk_ups"
    )
    assert trackers.call_count == 1


async def test_a_tracker_easypost_refuses_does_not_stop_the_others(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    first, second = shipment(NOW), shipment(NOW)
    for record in (first, second):
        await delivery_store.register_shipment(clean_db, record)
    answers = iter(
        [
            (422, error("TRACKER.TRACKING_CODE.INVALID", "Invalid tracking code.")),
            (201, tracker_body("trk_2", second.tracking_number)),
        ]
    )

    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        status, payload = next(answers)
        return status, {"Content-Type": "application/json"}, json.dumps(payload)

    easypost_api.add_callback(responses.POST, f"{API}/trackers", callback=reply)
    assert await carrier.follow_new_shipments({"ups"}) == 1
    # The refused one is tried again next time.
    easypost_api.replace(
        responses.POST, f"{API}/trackers", json=tracker_body("trk_1", first.tracking_number)
    )
    assert await carrier.follow_new_shipments({"ups"}) == 1
    assert await carrier.follow_new_shipments({"ups"}) == 0


async def test_an_attempt_still_at_easypost_holds_back_the_next_one(
    easypost_api: responses.RequestsMock, carrier: EasyPostCarrier, clean_db: asyncpg.Pool
) -> None:
    order_id = await registered_order(clean_db)
    call = {
        "idempotency_key": "k-in-flight",
        "carrier": "ups",
        "order_id": order_id,
        "destination_country": "FR",
        "service_level": "standard",
        "pickup_point_id": None,
    }
    # An attempt whose activity timed out took the booking and may still be
    # creating the shipment in its thread.
    await carrier_bookings.start(
        clean_db, idempotency_key="k-in-flight", provider="easypost", kind="label"
    )
    assert await carrier_bookings.claim_attempt(clean_db, "k-in-flight", timedelta(seconds=60))
    with pytest.raises(PortUnavailableError, match="may still be at EasyPost") as held:
        await carrier.book_shipment(**call)
    assert held.value.status == 409 and not easypost_api.calls
    # Its lease over, the next attempt goes on.
    await clean_db.execute(
        "UPDATE carrier_bookings SET attempt_at = now() - interval '61 seconds' "
        "WHERE idempotency_key = 'k-in-flight'"
    )
    easypost_api.post(f"{API}/shipments", json=shipment_body(), status=201)
    easypost_api.post(f"{API}/shipments/shp_1/buy", json=shipment_body(bought="rate_ups_ground"))
    assert (await carrier.book_shipment(**call)).tracking_number == "1ZEASYPOST0001"
