"""The risk rules learn from the processes' outcomes (issue 15), end to end:
everything goes through the HTTP API (order reviews, shipments and carrier
webhooks, returns and their webhooks, signed Stripe disputes) on a real
worker, Temporal and PostgreSQL. Nothing seeds `customer_history` or
`orders_seen`: the deciding steps write the outcomes back, and a new order of
the same customer is scored with them.

- A customer with five delivered orders is trusted (`trusted_history`).
- A customer whose orders came back three times and who lost a chargeback
  is a serial returner with a prior chargeback (`serial_returner`,
  `prior_chargebacks`), and goes to a person.
"""

from __future__ import annotations

import json
import time
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
from domain.webhook_signatures import stripe_signature_header
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import outcomes
from tests.factories import order_data
from tests.integration.polling import eventually
from tests.integration.test_api import KEYS, OPS, SYSTEM
from workers import activities
from workers.settings import Settings

SECRET = "feedback-webhook-secret"
STRIPE_SECRET = "whsec_feedback_15"
WEBHOOK = {**SYSTEM, "X-Steward-Webhook-Secret": SECRET}
PRICE = 245_000


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    settings = integration_settings.model_copy(
        update={
            "task_queue": f"feedback-{uuid.uuid4()}",
            "webhook_secret": SECRET,
            "stripe_webhook_secrets": STRIPE_SECRET,
        }
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


class Customer:
    """One customer's orders: same account, email, card, device and doorstep,
    each order a day apart so velocity never counts them."""

    def __init__(self, name: str) -> None:
        self.tag = f"{name}-{uuid.uuid4().hex[:8]}"
        self.orders: list[str] = []

    def order(self, days_ago: float) -> dict[str, Any]:
        order_id = f"FB-{uuid.uuid4().hex[:10]}"
        self.orders.append(order_id)
        data = order_data(
            order_id,
            now=datetime.now(UTC) - timedelta(days=days_ago),
            customer={"customer_id": f"C-{self.tag}", "email": f"{self.tag}@example.com"},
            payment={"card_fingerprint": f"fp-{self.tag}"},
            device={"device_id": f"dev-{self.tag}"},
            billing_address={"line1": f"{len(self.orders)} Rue {self.tag}"},
            shipping_address={"line1": f"1 Rue {self.tag}"},
        )
        data["billing_address"] = data["shipping_address"]
        body: dict[str, Any] = json.loads(json.dumps(data, default=lambda v: v.isoformat()))
        return body


async def review(api: httpx.AsyncClient, order: dict[str, Any], status: str) -> dict[str, Any]:
    started = await api.post("/v1/order-reviews", json=order, headers=SYSTEM)
    assert started.status_code == 202, started.text

    async def state() -> dict[str, Any]:
        got = await api.get(f"/v1/order-reviews/{order['order_id']}", headers=OPS)
        body: dict[str, Any] = got.json() if got.status_code == 200 else {}
        return body

    return await eventually(state, lambda s: s.get("status") == status, what=status)


async def delivered(api: httpx.AsyncClient, order: dict[str, Any]) -> None:
    suffix = uuid.uuid4().hex[:10].upper()
    shipment = {
        "shipment_id": f"SH-{suffix}",
        "carrier": "ups",
        "tracking_number": f"1Z{suffix}",
        "service_level": "express",
        "expected_delivery_at": datetime.now(UTC).isoformat(),
        "order": order,
    }
    registered = await api.post("/v1/shipments", json=shipment, headers=SYSTEM)
    assert registered.status_code == 201, registered.text
    scan = {
        "event_id": f"ups-{suffix}",
        "carrier": "ups",
        "tracking_number": shipment["tracking_number"],
        "shipment_id": shipment["shipment_id"],
        "status": "delivered",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    for _ in range(2):  # the carrier's webhook, redelivered
        sent = await api.post("/v1/webhooks/carrier", json=scan, headers=SYSTEM)
        assert sent.status_code == 202, sent.text


async def returned(api: httpx.AsyncClient, order: dict[str, Any]) -> None:
    rma_id = f"RMA-{uuid.uuid4().hex[:10]}"
    item = order["items"][0]
    body = {
        "rma_id": rma_id,
        "order": {
            "order_id": order["order_id"],
            "market": order["market"],
            "currency": order["currency"],
            "delivered_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "lines": [
                {
                    "sku": item["sku"],
                    "name": item["name"],
                    "unit_price_minor": item["unit_price_minor"],
                    "quantity": 1,
                }
            ],
            "authorisation_ref": order["payment"]["authorisation_ref"],
        },
        "lines": [{"sku": item["sku"], "quantity": 1}],
        "reason": "too_small",
        "resolution": "refund",
        "contact": {"email": order["customer"]["email"], "locale": "fr"},
    }
    created = await api.post("/v1/returns", json=body, headers=OPS)
    assert created.status_code == 202, created.text

    async def state() -> dict[str, Any]:
        got = await api.get(f"/v1/returns/{rma_id}", headers=OPS)
        result: dict[str, Any] = got.json() if got.status_code == 200 else {}
        return result

    label = await eventually(state, lambda s: s.get("status") == "label_issued", what="label")
    url = f"/v1/returns/{rma_id}"
    at = datetime.now(UTC).isoformat()
    for event_id, kind in (("scan-1", "in_transit"), ("scan-2", "delivered_to_warehouse")):
        scan = {
            "event_id": event_id,
            "kind": kind,
            "tracking_number": label["tracking_number"],
            "occurred_at": at,
        }
        sent = await api.post(f"{url}/carrier-events", json=scan, headers=WEBHOOK)
        assert sent.status_code == 202, sent.text
    await eventually(state, lambda s: s.get("status") == "received", what="received")
    qc = {"event_id": "qc-1", "grade": "first_choice", "notes": "as new", "photos": ["p.jpg"]}
    sent = await api.post(f"{url}/qc-results", json=qc, headers=WEBHOOK)
    assert sent.status_code == 202, sent.text
    await eventually(state, lambda s: s.get("status") == "refunded", what="refunded")


async def stripe(api: httpx.AsyncClient, dispute_id: str, order_id: str, kind: str) -> None:
    now = datetime.now(UTC)
    event = {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(now.timestamp()),
        "livemode": False,
        "type": f"charge.dispute.{kind}",
        "data": {
            "object": {
                "id": dispute_id,
                "object": "dispute",
                "amount": PRICE,
                "currency": "eur",
                "charge": f"ch_{order_id}",
                "reason": "fraudulent",
                "status": "lost" if kind == "closed" else "needs_response",
                "evidence_details": {"due_by": int((now + timedelta(days=7)).timestamp())},
                "metadata": {"order_id": order_id},
                "created": int(now.timestamp()),
            }
        },
    }
    body = json.dumps(event).encode()
    sent = await api.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={
            "Stripe-Signature": stripe_signature_header(STRIPE_SECRET, int(time.time()), body),
            "Content-Type": "application/json",
        },
    )
    assert sent.status_code in (200, 202), sent.text


async def test_outcomes_through_the_api_make_the_risk_rules_fire(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    loyal, returner = Customer("loyal"), Customer("returner")
    loyal_orders = [loyal.order(days_ago=5.5 - n) for n in range(5)]
    returner_orders = [returner.order(days_ago=5.5 - n) for n in range(4)]
    for order in loyal_orders + returner_orders:
        first = await review(api, order, "released")
        assert first["risk"]["reason_codes"] == []  # nobody knows them yet
    for order in loyal_orders + returner_orders:
        await delivered(api, order)
    for order in returner_orders[:3]:
        await returned(api, order)
    dispute_id = f"dp_{uuid.uuid4().hex[:16]}"
    await stripe(api, dispute_id, returner_orders[3]["order_id"], "created")
    await stripe(api, dispute_id, returner_orders[3]["order_id"], "closed")

    # The outcomes land with their steps' writes (read, never written, here).
    async def counters(customer: Customer) -> outcomes.CustomerCounters:
        return await outcomes.customer_counters(db_pool, f"C-{customer.tag}")

    loyal_history = await eventually(
        lambda: counters(loyal), lambda c: c.completed_orders == 5, what="5 deliveries"
    )
    history = await eventually(
        lambda: counters(returner),
        lambda c: (c.completed_orders, c.returns, c.chargebacks_lost) == (4, 3, 1),
        what="4 deliveries, 3 returns, 1 lost chargeback",
    )
    assert (loyal_history.returns, loyal_history.chargebacks) == (0, 0)
    assert history.returned_value == {"EUR": 3 * PRICE}

    trusted = await review(api, loyal.order(days_ago=0), "released")
    assert trusted["risk"]["reason_codes"] == ["trusted_history"]
    flagged = await review(api, returner.order(days_ago=0), "awaiting_review")
    assert flagged["risk"]["reason_codes"] == ["prior_chargebacks", "serial_returner"]
