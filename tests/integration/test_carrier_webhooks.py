"""Carrier webhooks end to end: real dev server, real PostgreSQL, a real worker
with every workflow and activity, the HTTP API.

Covers both formats (Steward's, EasyPost's signed tracker events), duplicate
and out-of-order events, bad input that starts nothing, and a failed delivery
decided through the API down to the refund in the ledger and the decision path
found by order id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from domain.carrier_events import CarrierEvent, easypost_signature
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import audit as audit_store
from store import deliveries as delivery_store
from store import ledger
from tests.integration.test_api import (
    COORDINATOR,
    KEYS,
    OPS,
    SYSTEM,
    eventually,
    new_order_id,
    order_json,
    wait_for_status,
)
from workers import activities
from workers.settings import Settings

SECRET = "easypost-it-secret"


@pytest_asyncio.fixture(loop_scope="session")
async def carrier_api(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    settings = integration_settings.model_copy(
        update={"task_queue": f"test-{uuid.uuid4()}", "easypost_webhook_secret": SECRET}
    )
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ):
        app = create_app(
            settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS)
        )
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
            yield http


def shipment_json(order: dict[str, Any], carrier: str = "ups") -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:10].upper()
    return {
        "shipment_id": f"SH-{suffix}",
        "carrier": carrier,
        "tracking_number": f"1Z{suffix}",
        "service_level": "express",
        "expected_delivery_at": datetime.now(UTC).isoformat(),
        "order": order,
    }


def steward_event(shipment: dict[str, Any], status: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"ups-{uuid.uuid4().hex[:12]}",
        "carrier": shipment["carrier"],
        "tracking_number": shipment["tracking_number"],
        "shipment_id": shipment["shipment_id"],
        "status": status,
        "exception_code": "recipient_not_home" if status == "delivery_failed" else None,
        "location": "Paris, FR",
        "occurred_at": datetime.now(UTC).isoformat(),
        **extra,
    }


async def register(api: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    shipment = shipment_json(order_json(order_id))
    response = await api.post("/v1/shipments", json=shipment, headers=SYSTEM)
    assert response.status_code == 201, response.text
    assert response.json() == {"shipment_id": shipment["shipment_id"], "registered": True}
    return shipment


async def delivery(api: httpx.AsyncClient, shipment_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/deliveries/{shipment_id}", headers=OPS)
    if response.status_code == 404:
        return {"status": None}
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_delivery(api: httpx.AsyncClient, shipment_id: str, status: str) -> dict[str, Any]:
    return await eventually(
        lambda: delivery(api, shipment_id),
        lambda s: s["status"] == status,
        what=f"failed delivery {shipment_id} to be {status}",
    )


async def test_failed_delivery_decided_through_the_api_refunds_once(
    carrier_api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    api = carrier_api
    # A real captured order first: the refund goes to the simulated provider.
    order_id = new_order_id("FR")
    started = await api.post("/v1/order-reviews", json=order_json(order_id), headers=SYSTEM)
    assert started.status_code == 202, started.text
    await wait_for_status(api, order_id, "released")
    shipment = await register(api, order_id)
    again = await api.post("/v1/shipments", json=shipment, headers=SYSTEM)
    assert again.json()["registered"] is False

    failed = steward_event(shipment, "delivery_failed")
    first = await api.post("/v1/webhooks/carrier", json=failed, headers=SYSTEM)
    assert first.status_code == 202, first.text
    assert first.json()["route"] == "failed_delivery"
    assert first.json()["workflow_id"] == f"failed-delivery:{shipment['shipment_id']}"
    duplicate = await api.post("/v1/webhooks/carrier", json=failed, headers=SYSTEM)
    assert duplicate.status_code == 202 and duplicate.json()["duplicate"] is True
    # An older scan arriving late is recorded but changes nothing.
    stale = steward_event(
        shipment,
        "in_transit",
        occurred_at=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
    )
    late = await api.post("/v1/webhooks/carrier", json=stale, headers=SYSTEM)
    assert late.json()["applied"] is False
    row = await delivery_store.get_shipment(db_pool, shipment["shipment_id"])
    assert row is not None and row.status == "delivery_failed"

    state = await wait_delivery(api, shipment["shipment_id"], "awaiting_customer")
    assert state["options_offered"] == [
        "reschedule",
        "new_address",
        "pickup_point",
        "cancel_refund",
    ]

    url = f"/v1/deliveries/{shipment['shipment_id']}"
    reply = {"event_id": "cs-1", "option": "cancel_refund", "message": "I moved abroad"}
    assert (await api.post(f"{url}/customer-reply", json=reply, headers=SYSTEM)).status_code == 202
    await wait_delivery(api, shipment["shipment_id"], "awaiting_decision")
    decision = {"decision": "return_to_stock", "note": "customer asked for a refund"}
    assert (await api.post(f"{url}/decision", json=decision, headers=OPS)).status_code == 403
    decided = await api.post(f"{url}/decision", json=decision, headers=COORDINATOR)
    assert decided.status_code == 200, decided.text
    assert decided.json()["decision"]["actor"] == "alice"
    # Issue 21: the words live in the personal-data store; the response reads them back.
    assert decided.json()["customer_reply"]["message"] == "I moved abroad"
    again_decided = await api.post(f"{url}/decision", json=decision, headers=COORDINATOR)
    assert again_decided.status_code == 409
    assert again_decided.json()["detail"].startswith("decision: this failed delivery is already")

    await wait_delivery(api, shipment["shipment_id"], "awaiting_return")
    receipt = {"event_id": "wh-1", "received_at": datetime.now(UTC).isoformat()}
    assert (
        await api.post(f"{url}/parcel-received", json=receipt, headers=SYSTEM)
    ).status_code == 202
    final = await wait_delivery(api, shipment["shipment_id"], "refunded")
    assert final["inspection_grade"] == "resellable" and final["refund_reference"]

    totals = await ledger.totals_for_order(db_pool, order_id)
    assert totals.refunded_minor == totals.captured_minor > 0

    # `steward audit ORDER_ID` reads this: the review, the fulfilment its
    # release started (issue 16) and the failed delivery.
    rows = await eventually(
        lambda: audit_store.list_by_case(db_pool, order_id),
        lambda rows: any(r.action == "refunded" for r in rows),
        what="the refund in the audit trail",
    )
    processes = {r.process for r in rows}
    assert processes == {"order-review", "fulfilment", "failed-delivery"}
    actions = [r.action for r in rows if r.process == "failed-delivery"]
    for expected in (
        "customer_options_offered",
        "customer_replied",
        "recommendation",
        "decision_return_to_stock",
        "restocked",
        "refunded",
    ):
        assert expected in actions

    listed = await api.get("/v1/deliveries", headers=OPS)
    assert any(c["case_id"] == shipment["shipment_id"] for c in listed.json())


async def test_bad_input_starts_nothing(
    carrier_api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    api = carrier_api
    shipment = await register(api, new_order_id("FR"))
    unknown = steward_event(shipment, "delivery_failed", shipment_id=None, tracking_number="1ZNOPE")
    response = await api.post("/v1/webhooks/carrier", json=unknown, headers=SYSTEM)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "tracking_number"
    missing = steward_event(shipment, "delivery_failed")
    del missing["occurred_at"]
    response = await api.post("/v1/webhooks/carrier", json=missing, headers=SYSTEM)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "occurred_at"
    naive = steward_event(shipment, "delivery_failed", occurred_at="2026-11-24T10:00:00")
    assert (await api.post("/v1/webhooks/carrier", json=naive, headers=SYSTEM)).status_code == 422
    no_key = await api.post("/v1/webhooks/carrier", json=steward_event(shipment, "lost"))
    assert no_key.status_code == 401
    coordinator = await api.post(
        "/v1/webhooks/carrier", json=steward_event(shipment, "lost"), headers=COORDINATOR
    )
    assert coordinator.status_code == 403
    assert await delivery_store.count_events(db_pool, "ups", shipment["tracking_number"]) == 0
    assert (await delivery(api, shipment["shipment_id"]))["status"] is None


def easypost_body(shipment: dict[str, Any], status: str, detail: str = "") -> bytes:
    payload = {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "Event",
        "description": "tracker.updated",
        "result": {
            "object": "Tracker",
            "tracking_code": shipment["tracking_number"],
            "carrier": "UPS",
            "status": status,
            "status_detail": detail,
            "updated_at": datetime.now(UTC).isoformat(),
            "tracking_details": [],
        },
    }
    return json.dumps(payload).encode()


async def test_easypost_lost_parcel_opens_a_claim_with_a_remedy(
    carrier_api: httpx.AsyncClient, client: Client
) -> None:
    api = carrier_api
    shipment = await register(api, new_order_id("FR"))
    body = easypost_body(shipment, "failure", "lost")
    url = "/v1/webhooks/carrier/easypost"
    forged = await api.post(
        url, content=body, headers={"X-Hmac-Signature": easypost_signature(body, "wrong-secret")}
    )
    assert forged.status_code == 401
    unsigned = await api.post(url, content=body)
    assert unsigned.status_code == 401 and "header is missing" in unsigned.json()["detail"]

    signed = {
        "X-Hmac-Signature": easypost_signature(body, SECRET),
        "Content-Type": "application/json",
    }
    accepted = await api.post(url, content=body, headers=signed)
    assert accepted.status_code == 202, accepted.text
    claim_id = f"carrier-claim:ups:{shipment['tracking_number']}"
    assert accepted.json()["route"] == "carrier_claim"
    assert accepted.json()["workflow_id"] == claim_id
    repeat = await api.post(url, content=body, headers=signed)
    assert repeat.json()["duplicate"] is True

    async def claim() -> dict[str, Any]:
        response = await api.get(f"/v1/claims/ups/{shipment['tracking_number']}", headers=OPS)
        return response.json() if response.status_code == 200 else {"status": None}

    # Never packed (no order release here), so no CCTV footage: filed at once without it.
    state = await eventually(claim, lambda s: s["status"] == "filed", what="the claim filed")
    assert state["claim_type"] == "lost" and state["investigation_ref"]
    assert state["claim_reference"] and "CctvRequestRefused" in state["cctv_note"]
    assert [d["kind"] for d in state["documents"]] == ["invoice", "tracking_history"]
    assert state["remedy_workflow_id"] == f"failed-delivery:{shipment['shipment_id']}"
    remedy = await wait_delivery(api, shipment["shipment_id"], "awaiting_customer")
    assert remedy["trigger_status"] == "lost"

    bad = b'{"id": "evt_x", "description": "tracker.updated", "result": {"status": "failure"}}'
    invalid = await api.post(
        url, content=bad, headers={"X-Hmac-Signature": easypost_signature(bad, SECRET)}
    )
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["field"] == "result.tracking_code"
    for handle_id in (claim_id, f"failed-delivery:{shipment['shipment_id']}"):
        await client.get_workflow_handle(handle_id).terminate("test over")


async def test_silent_parcels_are_swept_into_lost_claims_once(
    carrier_api: httpx.AsyncClient, client: Client
) -> None:
    api = carrier_api
    shipment = shipment_json(order_json(new_order_id("FR")))
    shipment["expected_delivery_at"] = (datetime.now(UTC) - timedelta(days=9)).isoformat()
    assert (await api.post("/v1/shipments", json=shipment, headers=SYSTEM)).status_code == 201
    fresh = await register(api, new_order_id("FR"))  # expected today: not silent

    swept = await api.post("/v1/carrier/sweep?silence_days=5", headers=SYSTEM)
    assert swept.status_code == 200, swept.text
    claim_id = f"carrier-claim:ups:{shipment['tracking_number']}"
    assert claim_id in swept.json()["claims_opened"]
    assert f"carrier-claim:ups:{fresh['tracking_number']}" not in swept.json()["claims_opened"]
    again = await api.post("/v1/carrier/sweep?silence_days=5", headers=SYSTEM)
    assert claim_id not in again.json()["claims_opened"]
    refused = await api.post("/v1/carrier/sweep?silence_days=0", headers=SYSTEM)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "query.silence_days"
    # The customer is not left waiting while the carrier investigates.
    remedy = await wait_delivery(api, shipment["shipment_id"], "awaiting_customer")
    assert remedy["trigger_status"] == "lost"
    for handle_id in (claim_id, f"failed-delivery:{shipment['shipment_id']}"):
        await client.get_workflow_handle(handle_id).terminate("test over")


async def test_an_event_whose_routing_failed_is_routed_on_the_retry(
    carrier_api: httpx.AsyncClient, db_pool: asyncpg.Pool, client: Client
) -> None:
    api = carrier_api
    shipment = await register(api, new_order_id("FR"))
    body = steward_event(shipment, "delivery_failed")
    # The first delivery was stored and applied, then Temporal was unreachable.
    event = CarrierEvent.model_validate(body)
    await delivery_store.record_event(db_pool, event, shipment["shipment_id"])
    await delivery_store.apply_status(
        db_pool, shipment["shipment_id"], event.status, event.occurred_at
    )
    retried = await api.post("/v1/webhooks/carrier", json=body, headers=SYSTEM)
    assert retried.status_code == 202, retried.text
    assert retried.json()["duplicate"] is False
    assert retried.json()["route"] == "failed_delivery"
    await wait_delivery(api, shipment["shipment_id"], "awaiting_customer")
    again = await api.post("/v1/webhooks/carrier", json=body, headers=SYSTEM)
    assert again.json()["duplicate"] is True
    await client.get_workflow_handle(f"failed-delivery:{shipment['shipment_id']}").terminate("over")
