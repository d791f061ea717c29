"""A failed delivery and a carrier claim on subject ids (issue 21), through
the HTTP API on a real Temporal and PostgreSQL: the carrier webhook starts
them with the shipment pseudonymised, the customer's new address and the
coordinator's reship address are kept in the personal-data store, the
histories (decoded through the codec) hold none of the personal values, and
the activities still get the real ones: the rescoring of the new address,
the reship label (the simulated carrier keeps the booked address's hash), the
registered second shipment and the customer messages (the simulated
notifier keeps the recipient's hash)."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deliveries import DeliveryActivities
from activities.simulated import SimulatedCarrier, SimulatedNotifier, SimulatedParcelReturnsDesk
from clients import failed_delivery
from clients.errors import CaseRefused
from domain.deliveries import (
    RESHIP_BOOKING_REFUSED,
    BookReshipmentInput,
    CustomerOption,
    CustomerReply,
    ServiceLevel,
    ShipmentRecord,
    pseudonymise_shipment,
    pseudonymous_address,
)
from domain.orders import Address
from domain.risk_rules import IdentityKind, identity_hash
from store import deliveries as delivery_store
from store import personal_data
from tests.factories import make_order, order_data
from tests.integration.test_api import COORDINATOR, OPS, SYSTEM, eventually
from tests.integration.test_carrier_webhooks import (
    carrier_api,  # noqa: F401  (the fixture)
    shipment_json,
    steward_event,
    wait_delivery,
)
from tests.integration.test_order_review_personal_data import decoded_history


def private_order(unique: str) -> dict[str, Any]:
    """An order with values found nowhere else, worth enough (EUR 3,500) for
    a new address to be rescored."""
    data = order_data(
        f"FDP-{unique}",
        customer={
            "customer_id": f"C-FDP-{unique}",
            "email": f"rosalie.{unique}@example.fr",
            "full_name": f"Rosalie Vermeer-{unique}",
            "phone": "+33 6 98 76 54 32",
        },
        shipping_address={"line1": f"{unique} quai Voltaire"},
        billing_address={"line1": f"{unique} rue Jacob"},
        device={"device_id": f"dev-FDP-{unique}", "ip_address": "198.51.100.77"},
        items=[
            {
                "sku": "HB-KELLY-28",
                "name": "Top handle 28, box calf",
                "category": "handbags",
                "unit_price_minor": 350_000,
                "quantity": 1,
                "serial_number": None,
            }
        ],
    )
    document: dict[str, Any] = json.loads(json.dumps(data, default=lambda v: v.isoformat()))
    return document


def personal_values(order: dict[str, Any], *more: str) -> list[str]:
    return [
        order["customer"]["email"],
        order["customer"]["full_name"],
        order["customer"]["phone"],
        order["shipping_address"]["line1"],
        order["billing_address"]["line1"],
        order["device"]["ip_address"],
        *more,
    ]


def assert_holds_none(history: bytes, values: list[str], what: str) -> None:
    for value in values:
        assert value.encode() not in history, f"{value!r} is in the {what}'s history"


async def test_a_failed_delivery_reships_to_a_kept_address_and_holds_no_personal_value(
    carrier_api: httpx.AsyncClient,  # noqa: F811
    client: Client,
    db_pool: asyncpg.Pool,
) -> None:
    api = carrier_api
    unique = uuid.uuid4().hex[:10]
    order = private_order(unique)
    shipment = shipment_json(order)
    registered = await api.post("/v1/shipments", json=shipment, headers=SYSTEM)
    assert registered.status_code == 201, registered.text
    shipment_id = shipment["shipment_id"]
    workflow_id = f"failed-delivery:{shipment_id}"
    failed = await api.post(
        "/v1/webhooks/carrier", json=steward_event(shipment, "delivery_failed"), headers=SYSTEM
    )
    assert failed.status_code == 202 and failed.json()["workflow_id"] == workflow_id
    await wait_delivery(api, shipment_id, "awaiting_customer")

    url = f"/v1/failed-deliveries/{shipment_id}"
    new = Address(line1=f"{unique} rue du Bac", city="Lyon", postal_code="69001", country="FR")
    words = f"Please leave it with the concierge, code {unique}"
    # Steward sets the reference; a caller may not.
    forged = {
        "event_id": f"cs-forged-{unique}",
        "option": "new_address",
        "address_ref": {
            "subject_id": "subj_forged-address-01",
            "fingerprint": "fp_" + "0" * 32,
            "country": "FR",
        },
    }
    refused = await api.post(f"{url}/customer-reply", json=forged, headers=SYSTEM)
    assert refused.status_code == 422, refused.text
    assert "address_ref" in refused.text
    reply = {
        "event_id": f"cs-{unique}",
        "option": "new_address",
        "address": new.model_dump(mode="json"),
        "message": words,
    }
    assert (await api.post(f"{url}/customer-reply", json=reply, headers=SYSTEM)).status_code == 202
    state = await wait_delivery(api, shipment_id, "awaiting_decision")
    # The new address was rescored for real (the order's values from the store).
    assert state["risk"] is not None
    # GET reads the kept values back; the case holds the reference.
    assert state["customer_reply"]["address"]["line1"] == new.line1
    assert state["customer_reply"]["message"] == words
    ref = state["customer_reply"]["address_ref"]
    assert ref["country"] == "FR" and ref["subject_id"].startswith("subj_")
    kept = await personal_data.get_subject(db_pool, ref["subject_id"])
    assert kept["line1"] == new.line1

    decision = {"decision": "reship", "address": new.model_dump(mode="json")}
    decided = await api.post(f"{url}/decision", json=decision, headers=COORDINATOR)
    assert decided.status_code == 200, decided.text
    # The same address given again is the same subject.
    assert decided.json()["decision"]["address_ref"]["subject_id"] == ref["subject_id"]
    assert decided.json()["decision"]["address"]["line1"] == new.line1
    await wait_delivery(api, shipment_id, "reshipped")

    # The label went to the real new address (the simulator keeps its hash),
    # the second shipment is registered with the real order and address.
    label = await db_pool.fetchrow(
        "SELECT payload FROM sim_carrier_operations WHERE idempotency_key = $1",
        f"{workflow_id}/reship",
    )
    assert label is not None
    assert label["payload"]["destination_hash"] == identity_hash(IdentityKind.ADDRESS, new)
    second = await delivery_store.get_shipment(db_pool, f"{shipment_id}-R2")
    assert second is not None
    assert second.record.address.line1 == new.line1
    assert second.record.order.customer.email == order["customer"]["email"]
    # The customer messages went to the real email.
    recipients = await eventually(
        lambda: db_pool.fetch(
            "SELECT recipient_hash FROM sim_notifications WHERE order_id = $1",
            order["order_id"],
        ),
        lambda rows: len(rows) >= 2,
        what="the options and reshipped messages",
    )
    email_hash = identity_hash(IdentityKind.EMAIL, order["customer"]["email"])
    assert {r["recipient_hash"] for r in recipients} == {email_hash}

    history = await decoded_history(client, workflow_id)
    assert shipment_id.encode() in history and ref["subject_id"].encode() in history
    assert_holds_none(history, personal_values(order, new.line1, words), "failed delivery")


async def test_a_lost_parcel_claim_and_its_remedy_hold_no_personal_value(
    carrier_api: httpx.AsyncClient,  # noqa: F811
    client: Client,
    db_pool: asyncpg.Pool,
) -> None:
    api = carrier_api
    unique = uuid.uuid4().hex[:10]
    order = private_order(unique)
    shipment = shipment_json(order)
    assert (await api.post("/v1/shipments", json=shipment, headers=SYSTEM)).status_code == 201
    lost = await api.post(
        "/v1/webhooks/carrier", json=steward_event(shipment, "lost"), headers=SYSTEM
    )
    assert lost.status_code == 202, lost.text
    claim_id = lost.json()["workflow_id"]
    assert claim_id.startswith("carrier-claim:")
    # The claim opens a failed delivery for the customer (its remedy).
    remedy = await wait_delivery(api, shipment["shipment_id"], "awaiting_customer")
    assert remedy["claim_workflow_ids"] == [claim_id]
    claim = await api.get(
        f"/v1/carrier-claims/{shipment['carrier']}/{shipment['tracking_number']}", headers=OPS
    )
    assert claim.status_code == 200, claim.text
    for workflow_id, what in (
        (claim_id, "claim"),
        (f"failed-delivery:{shipment['shipment_id']}", "remedy"),
    ):
        history = await decoded_history(client, workflow_id)
        assert shipment["shipment_id"].encode() in history
        assert_holds_none(history, personal_values(order), what)


async def test_kept_delivery_addresses_go_with_the_customer_at_erasure(
    db_pool: asyncpg.Pool,
) -> None:
    """A kept address is owned by the shipment's subject (which holds the
    customer's email): a privacy request finding the customer finds it too
    (access export, erasure); erased, the case reads [erased] and a reship
    there is refused for a coordinator to decide, never booked."""
    unique = uuid.uuid4().hex[:10]
    order = make_order(f"FDP-E-{unique}", customer={"email": f"erased.{unique}@example.fr"})
    record = ShipmentRecord(
        shipment_id=f"SH-E-{unique}",
        carrier="ups",
        tracking_number=f"1ZE{unique}",
        expected_delivery_at=order.placed_at,
        order=order,
    )
    assert await delivery_store.register_shipment(db_pool, record)
    new = Address(line1=f"{unique} rue Cler", city="Paris", postal_code="75007", country="FR")
    ref = await delivery_store.put_delivery_address(
        db_pool, record.shipment_id, order.order_id, new
    )
    # The same address again is the same subject (a retried reply or decision).
    assert (
        await delivery_store.put_delivery_address(db_pool, record.shipment_id, order.order_id, new)
        == ref
    )
    # Case and spacing do not make another address.
    assert ref.fingerprint == delivery_store.address_fingerprint(
        new.model_copy(update={"city": " PARIS "})
    )

    # Found from the customer's email, with the shipment's subject it belongs to.
    matched = await personal_data.find_subjects(db_pool, fingerprint_of=order.customer.email)
    shipment_subject = delivery_store.shipment_subject_id(record.shipment_id)
    assert shipment_subject in matched
    live = await personal_data.live_subjects(db_pool, matched)
    assert ref.subject_id in live
    refs = await personal_data.refs_of(db_pool, [ref.subject_id])
    assert set(refs[ref.subject_id]) == {
        ("order", order.order_id),
        ("shipment", record.shipment_id),
    }

    for sid in live:
        await personal_data.erase_subject(db_pool, sid, reason="test erasure")
    (shown,) = (await delivery_store.read_delivery_addresses(db_pool, [ref])).values()
    assert shown.line1 == personal_data.ERASED_PLACEHOLDER and shown.country == "FR"
    # The same address sent again is refused before anything is signalled
    # (the Temporal client is never reached), never kept or sent in clear.
    again = CustomerReply(
        event_id=f"cs-again-{unique}", option=CustomerOption.NEW_ADDRESS, address=new
    )
    with pytest.raises(CaseRefused, match="address: this address was erased"):
        await failed_delivery.relay_customer_reply(
            cast(Client, None), record.shipment_id, again, db=db_pool
        )

    booking = BookReshipmentInput(
        workflow_id=f"failed-delivery:{record.shipment_id}",
        original_shipment_id=record.shipment_id,
        order_id=order.order_id,
        carrier="ups",
        destination=pseudonymous_address("FR"),
        destination_ref=ref,
        service_level=ServiceLevel.STANDARD,
        shipment=pseudonymise_shipment(
            record, shipment_subject, delivery_store.address_fingerprint(record.address)
        ),
    )
    deliveries = DeliveryActivities(
        db_pool,
        SimulatedCarrier(db_pool),
        SimulatedParcelReturnsDesk(db_pool),
        SimulatedNotifier(db_pool),  # type: ignore[arg-type]
    )
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(deliveries.book_reshipment, booking)
    assert refused.value.type == RESHIP_BOOKING_REFUSED and refused.value.non_retryable
    assert "erased" in refused.value.message
    assert not await db_pool.fetchval(
        "SELECT count(*) FROM sim_carrier_operations WHERE idempotency_key = $1",
        f"{booking.workflow_id}/reship",
    )
