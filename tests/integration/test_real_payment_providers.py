"""Whole processes on the real payment adapters: an order is reviewed and its
payment captured, the customer returns it, and the return is refunded, with
the order's payment provider `stripe` or `adyen`.

Everything is Steward's own (the API, a worker with the real composition root
`build_activities`, the Temporal dev server, PostgreSQL) except the provider:
a local fake HTTP server speaking its documented API shape
(tests/integration/fake_providers.py), started by the test, reached by the
provider's official library inside the adapter. Adyen's fake also sends its
notifications, HMAC-signed, to Steward's webhook over HTTP, as Adyen does.
"""

from __future__ import annotations

import asyncio
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
from domain.common import Role
from domain.payments import PaymentOperationKind
from domain.webhook_signatures import stripe_signature_header
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import audit as audit_store
from store import ledger, payment_modifications, refunds_in_flight
from store import tasks as task_store
from tests.factories import order_data
from tests.integration.fake_providers import FakeAdyen, FakeStripe, serve_api
from tests.integration.polling import eventually
from workers import activities
from workers.settings import Settings

KEYS = {
    "pp-system": ("order-management", Role.SYSTEM),
    "pp-cs": ("cs-julie", Role.OPS),
}
SYSTEM = {"X-API-Key": "pp-system"}
CS = {"X-API-Key": "pp-cs"}
SECRET = "pp-webhook-secret"
WEBHOOK = {"X-API-Key": "pp-system", "X-Steward-Webhook-Secret": SECRET}
PRICE = 245_000

STRIPE_KEY = "sk_test_51StewardFakeKey"
STRIPE_WEBHOOK_SECRET = "whsec_steward_payment_providers"
ADYEN_KEY = "AQEyhmfxK4-steward-test"
ADYEN_HMAC = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
MERCHANT = "MaisonEU"


def base_settings(integration_settings: Settings, **update: Any) -> Settings:
    return integration_settings.model_copy(
        update={"task_queue": f"providers-{uuid.uuid4()}", "webhook_secret": SECRET, **update}
    )


@pytest_asyncio.fixture(loop_scope="session")
async def stripe_fake() -> AsyncIterator[FakeStripe]:
    with FakeStripe(STRIPE_KEY).running() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def stripe_api(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings, stripe_fake: FakeStripe
) -> AsyncIterator[httpx.AsyncClient]:
    settings = base_settings(
        integration_settings,
        payment_providers="simulated,stripe",
        stripe_api_key=STRIPE_KEY,
        stripe_api_base=stripe_fake.url,
        stripe_webhook_secrets=STRIPE_WEBHOOK_SECRET,
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


@pytest_asyncio.fixture(loop_scope="session")
async def adyen_fake() -> AsyncIterator[FakeAdyen]:
    with FakeAdyen(ADYEN_KEY, ADYEN_HMAC, MERCHANT).running() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def adyen_api(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings, adyen_fake: FakeAdyen
) -> AsyncIterator[httpx.AsyncClient]:
    settings = base_settings(
        integration_settings,
        payment_providers="simulated,adyen",
        adyen_api_key=ADYEN_KEY,
        adyen_merchant_account=MERCHANT,
        adyen_checkout_url=adyen_fake.url,
        adyen_hmac_keys=ADYEN_HMAC,
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
        async with serve_api(app) as url:
            adyen_fake.webhook_url = f"{url}/v1/webhooks/adyen"
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                yield http


# -- the process, as upstream systems drive it ---------------------------------


def order_json(order_id: str, provider: str, authorisation_ref: str) -> dict[str, Any]:
    unique = order_id.lower()
    data = order_data(
        order_id,
        customer={"customer_id": f"C-{unique}"},
        payment={
            "provider": provider,
            "authorisation_ref": authorisation_ref,
            "card_fingerprint": f"fp-{unique}",
        },
        device={"device_id": f"dev-{unique}"},
    )
    result: dict[str, Any] = json.loads(json.dumps(data, default=lambda v: v.isoformat()))
    return result


def return_json(
    rma_id: str, order_id: str, provider: str, authorisation_ref: str
) -> dict[str, Any]:
    return {
        "rma_id": rma_id,
        "order": {
            "order_id": order_id,
            "market": "FR",
            "currency": "EUR",
            "delivered_at": (datetime.now(UTC) - timedelta(days=4)).isoformat(),
            "lines": [
                {
                    "sku": "HB-TOTE-MM-NOIR",
                    "name": "Tote MM, black grained calfskin",
                    "unit_price_minor": PRICE,
                    "quantity": 1,
                }
            ],
            "payment_provider": provider,
            "authorisation_ref": authorisation_ref,
        },
        "lines": [{"sku": "HB-TOTE-MM-NOIR", "quantity": 1}],
        "reason": "too_small",
        "resolution": "refund",
        "contact": {"email": "camille.durand@example.fr", "locale": "fr"},
    }


async def reviewed_and_captured(
    api: httpx.AsyncClient, provider: str, authorisation_ref: str
) -> tuple[str, dict[str, Any]]:
    order_id = f"PP-{uuid.uuid4().hex[:10]}"
    started = await api.post(
        "/v1/order-reviews", json=order_json(order_id, provider, authorisation_ref), headers=SYSTEM
    )
    assert started.status_code == 202, started.text

    async def state() -> dict[str, Any]:
        response = await api.get(f"/v1/order-reviews/{order_id}", headers=CS)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    released = await eventually(
        state, lambda s: s["status"] in ("released", "cancelled"), what="the review to end"
    )
    assert released["status"] == "released", released
    return order_id, released


async def returned_and_refunded(
    api: httpx.AsyncClient, order_id: str, provider: str, authorisation_ref: str, *, until: str
) -> tuple[str, dict[str, Any]]:
    rma_id = f"RMA-{uuid.uuid4().hex[:10]}"
    created = await api.post(
        "/v1/returns",
        json=return_json(rma_id, order_id, provider, authorisation_ref),
        headers=CS,
    )
    assert created.status_code == 202, created.text

    async def state() -> dict[str, Any]:
        response = await api.get(f"/v1/returns/{rma_id}", headers=CS)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    labelled = await eventually(state, lambda s: s["status"] == "label_issued", what="a label")
    scan = {"tracking_number": labelled["tracking_number"], "occurred_at": datetime.now(UTC)}
    for event_id, kind in (("scan-1", "in_transit"), ("scan-2", "delivered_to_warehouse")):
        sent = await api.post(
            f"/v1/returns/{rma_id}/carrier-events",
            json=json.loads(
                json.dumps(
                    {**scan, "event_id": event_id, "kind": kind}, default=lambda v: v.isoformat()
                )
            ),
            headers=WEBHOOK,
        )
        assert sent.status_code == 202, sent.text
    await eventually(state, lambda s: s["status"] == "received", what="the parcel at the warehouse")
    qc = {"event_id": "qc-1", "grade": "first_choice", "notes": "as new"}
    graded = await api.post(f"/v1/returns/{rma_id}/qc-results", json=qc, headers=WEBHOOK)
    assert graded.status_code == 202, graded.text
    final = await eventually(state, lambda s: s["status"] == until, what=until)
    return rma_id, final


# -- Stripe -----------------------------------------------------------------------


async def test_stripe_order_captured_returned_and_refunded(
    stripe_api: httpx.AsyncClient, stripe_fake: FakeStripe, db_pool: asyncpg.Pool
) -> None:
    intent = stripe_fake.authorise(PRICE, "EUR")
    charge = stripe_fake.intents[intent]["latest_charge"]

    order_id, review = await reviewed_and_captured(stripe_api, "stripe", intent)

    assert review["capture_reference"] == charge
    [capture] = [r for r in stripe_fake.requests if r.path.endswith("/capture")]
    assert capture.path == f"/v1/payment_intents/{intent}/capture"
    assert capture.headers["idempotency-key"] == f"order-review:{order_id}/capture"
    assert capture.body == {"amount_to_capture": str(PRICE)}
    assert stripe_fake.intents[intent]["status"] == "succeeded"

    rma_id, returned = await returned_and_refunded(
        stripe_api, order_id, "stripe", intent, until="refunded"
    )

    [refund_request] = [r for r in stripe_fake.requests if r.path == "/v1/refunds"]
    key = f"return:{rma_id}/refund-1"
    assert refund_request.headers["idempotency-key"] == key
    assert refund_request.body == {
        "payment_intent": intent,
        "amount": str(PRICE),
        "metadata[steward_idempotency_key]": key,
    }
    [refund] = stripe_fake.refunds.values()
    assert returned["refund_reference"] == refund["id"]
    rows = await ledger.list_for_order(db_pool, order_id)
    assert [(r.kind, r.provider, r.amount_minor, r.provider_reference) for r in rows] == [
        (PaymentOperationKind.CAPTURE, "stripe", PRICE, charge),
        (PaymentOperationKind.REFUND, "stripe", PRICE, refund["id"]),
    ]


async def test_stripe_refund_pending_keeps_the_return_refunding_until_stripe_says_succeeded(
    stripe_api: httpx.AsyncClient, stripe_fake: FakeStripe, db_pool: asyncpg.Pool
) -> None:
    intent = stripe_fake.authorise(PRICE, "EUR")
    order_id, _ = await reviewed_and_captured(stripe_api, "stripe", intent)
    stripe_fake.refund_status = "pending"
    try:
        rma_id, _ = await returned_and_refunded(
            stripe_api, order_id, "stripe", intent, until="refunding"
        )
        [refund] = await eventually(
            lambda: asyncio.sleep(0, list(stripe_fake.refunds.values())),
            lambda refunds: len(refunds) == 1,
            what="the refund sent",
        )
    finally:
        stripe_fake.refund_status = "succeeded"
    await asyncio.sleep(1)
    state = (await stripe_api.get(f"/v1/returns/{rma_id}", headers=CS)).json()
    assert state["status"] == "refunding"  # pending is not done
    totals = await ledger.totals_for_order(db_pool, order_id)
    assert (totals.refunded_minor, totals.refund_pending_minor) == (0, PRICE)

    event = stripe_fake.refund_event(refund["id"], "succeeded")
    body = json.dumps(event).encode()
    answer = await stripe_api.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={
            "Stripe-Signature": stripe_signature_header(
                STRIPE_WEBHOOK_SECRET, int(time.time()), body
            ),
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text

    async def status() -> dict[str, Any]:
        body: dict[str, Any] = (await stripe_api.get(f"/v1/returns/{rma_id}", headers=CS)).json()
        return body

    done = await eventually(status, lambda s: s["status"] == "refunded", what="refunded")
    assert done["refund_reference"] == refund["id"]
    totals = await ledger.totals_for_order(db_pool, order_id)
    assert (totals.refunded_minor, totals.refund_pending_minor) == (PRICE, 0)


# -- Adyen ------------------------------------------------------------------------


def notified(fake: FakeAdyen, event_code: str) -> dict[str, Any]:
    [item] = [
        d.body["notificationItems"][0]["NotificationRequestItem"]
        for d in fake.state.deliveries
        if d.body["notificationItems"][0]["NotificationRequestItem"]["eventCode"] == event_code
        and d.status == 200
    ]
    return item


async def test_adyen_order_captured_returned_and_refunded_by_notifications(
    adyen_api: httpx.AsyncClient, adyen_fake: FakeAdyen, db_pool: asyncpg.Pool
) -> None:
    payment = adyen_fake.authorise(PRICE, "EUR")

    order_id, review = await reviewed_and_captured(adyen_api, "adyen", payment)

    captured = notified(adyen_fake, "CAPTURE")
    assert captured["originalReference"] == payment
    assert captured["success"] == "true"
    assert review["capture_reference"] == captured["pspReference"]
    [capture] = [r for r in adyen_fake.modifications() if r.path.endswith("/captures")]
    assert capture.headers["idempotency-key"] == f"order-review:{order_id}/capture"
    assert capture.body["amount"] == {"value": PRICE, "currency": "EUR"}

    rma_id, returned = await returned_and_refunded(
        adyen_api, order_id, "adyen", payment, until="refunded"
    )

    refunded = notified(adyen_fake, "REFUND")
    assert refunded["success"] == "true"
    assert returned["refund_reference"] == refunded["pspReference"]
    [refund] = [r for r in adyen_fake.modifications() if r.path.endswith("/refunds")]
    assert refund.headers["idempotency-key"] == f"return:{rma_id}/refund-1"
    rows = await ledger.list_for_order(db_pool, order_id)
    assert [(r.kind, r.provider, r.amount_minor, r.provider_reference) for r in rows] == [
        (PaymentOperationKind.CAPTURE, "adyen", PRICE, captured["pspReference"]),
        (PaymentOperationKind.REFUND, "adyen", PRICE, refunded["pspReference"]),
    ]


async def test_adyen_refund_refused_by_its_notification_fails_the_refund(
    adyen_api: httpx.AsyncClient, adyen_fake: FakeAdyen, db_pool: asyncpg.Pool
) -> None:
    payment = adyen_fake.authorise(PRICE, "EUR")
    order_id, _ = await reviewed_and_captured(adyen_api, "adyen", payment)
    adyen_fake.fail_next["REFUND"] = "Insufficient balance on payment"

    rma_id, returned = await returned_and_refunded(
        adyen_api, order_id, "adyen", payment, until="refund_failed"
    )

    assert returned["refund_reference"] is None
    failures = [
        row
        for row in await audit_store.list_by_case(db_pool, rma_id)
        if row.action == "refund_failed"
    ]
    assert len(failures) == 1
    assert "Insufficient balance on payment" in (failures[0].reason or "")
    totals = await ledger.totals_for_order(db_pool, order_id)
    assert (totals.captured_minor, totals.refunded_minor) == (PRICE, 0)
    assert await refunds_in_flight.list_for_order(db_pool, order_id) == []


async def test_an_order_naming_a_provider_this_deployment_does_not_serve_is_not_captured(
    stripe_api: httpx.AsyncClient, stripe_fake: FakeStripe, db_pool: asyncpg.Pool
) -> None:
    # This deployment serves simulated and Stripe orders: an Adyen order's
    # capture fails at once with UnknownPaymentProvider and the order is
    # cancelled; nothing reaches Stripe.
    sent_before = len(stripe_fake.requests)
    order_id = f"PP-{uuid.uuid4().hex[:10]}"
    started = await stripe_api.post(
        "/v1/order-reviews", json=order_json(order_id, "adyen", "8815398811456325"), headers=SYSTEM
    )
    assert started.status_code == 202, started.text

    async def state() -> dict[str, Any]:
        body: dict[str, Any] = (
            await stripe_api.get(f"/v1/order-reviews/{order_id}", headers=CS)
        ).json()
        return body

    await eventually(state, lambda s: s["status"] == "cancelled", what="the order cancelled")
    failures = [
        row
        for row in await audit_store.list_by_case(db_pool, order_id)
        if row.action == "capture_failed"
    ]
    assert len(failures) == 1
    assert "no payment provider 'adyen' is configured (known: simulated, stripe)" in (
        failures[0].reason or ""
    )
    assert len(stripe_fake.requests) == sent_before
    assert await ledger.list_for_order(db_pool, order_id) == []


@pytest_asyncio.fixture(loop_scope="session")
async def impatient_adyen_api(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings, adyen_fake: FakeAdyen
) -> AsyncIterator[httpx.AsyncClient]:
    """Adyen as in `adyen_api`, with a worker that stops waiting for an
    outcome at once (what 24 hours of silence does in production)."""
    settings = base_settings(
        integration_settings,
        payment_providers="simulated,adyen",
        adyen_api_key=ADYEN_KEY,
        adyen_merchant_account=MERCHANT,
        adyen_checkout_url=adyen_fake.url,
        adyen_hmac_keys=ADYEN_HMAC,
        adyen_outcome_timeout_hours=1e-9,
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
        async with serve_api(app) as url:
            adyen_fake.webhook_url = f"{url}/v1/webhooks/adyen"
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                yield http


async def test_adyen_capture_confirmed_after_the_review_gave_up_is_refunded_once(
    impatient_adyen_api: httpx.AsyncClient, adyen_fake: FakeAdyen, db_pool: asyncpg.Pool
) -> None:
    # The capture's notification is late: the review gives up on the capture
    # (adyen_outcome_not_received) and waits for the final word before it
    # cancels the order. The capture did happen: it is refunded, once.
    api = impatient_adyen_api
    adyen_fake.mode = "hold"
    payment = adyen_fake.authorise(PRICE, "EUR")
    order_id = f"PP-{uuid.uuid4().hex[:10]}"
    started = await api.post(
        "/v1/order-reviews", json=order_json(order_id, "adyen", payment), headers=SYSTEM
    )
    assert started.status_code == 202, started.text
    capture_key = f"order-review:{order_id}/capture"

    async def audit_actions() -> list[str]:
        return [r.action for r in await audit_store.list_by_case(db_pool, order_id)]

    await eventually(audit_actions, lambda a: "capture_failed" in a, what="the give-up")
    await eventually(
        lambda: payment_modifications.by_key(db_pool, "adyen", capture_key),
        lambda row: row is not None and row.task_token is not None,
        what="the review to wait for the capture's final outcome",
    )
    assert await ledger.list_for_order(db_pool, order_id) == []

    # The refund's and the cancel's outcomes come before their answers.
    adyen_fake.mode = "before_answer"
    [late] = await asyncio.to_thread(adyen_fake.release)
    assert (late.status, late.text) == (200, "[accepted]")

    async def state() -> dict[str, Any]:
        body: dict[str, Any] = (await api.get(f"/v1/order-reviews/{order_id}", headers=CS)).json()
        return body

    review = await eventually(state, lambda s: s["status"] == "cancelled", what="the cancel")
    # Redelivered: the capture is booked once, the refund sent once.
    assert (await asyncio.to_thread(adyen_fake.deliver, late.body)).status == 200

    rows = await ledger.list_for_order(db_pool, order_id)
    assert [(r.kind, r.idempotency_key, r.amount_minor) for r in rows] == [
        (PaymentOperationKind.CAPTURE, capture_key, PRICE),
        (PaymentOperationKind.REFUND, f"order-review:{order_id}/late-capture-refund", PRICE),
    ]
    # The outcome (cancelled, nothing captured) is what the ledger says.
    totals = await ledger.totals_for_order(db_pool, order_id)
    assert totals.captured_minor - totals.refunded_minor == 0
    assert review["capture_reference"] is None
    assert len([r for r in adyen_fake.modifications() if r.path.endswith("/refunds")]) == 1
    actions = await audit_actions()
    assert actions.index("late_capture") < actions.index("late_capture_refunded")
    tasks = await task_store.list_for_workflow(db_pool, f"order-review:{order_id}")
    assert [(t.kind, t.awaited_role, t.closed_at) for t in tasks] == [
        ("late_capture", Role.FINANCE, None)
    ]
