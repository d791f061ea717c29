"""Stripe and Adyen webhooks exactly as the providers send them (issue 12),
through the real API app, a real worker, the dev server and PostgreSQL.

Payloads follow the providers' API references: a Stripe Dispute names its
charge and PaymentIntent by id (webhook objects are never expanded) with
`metadata: {}`, an early fraud warning has no metadata at all, an Adyen
notification names the payment by its pspReference (`originalReference`) in a
batch that also carries the default payment event codes. Every body is signed
in the test by the official libraries (stripe's WebhookSignature, Adyen's
HMAC util), not by Steward's own code.
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
import pytest
import pytest_asyncio
import stripe
from Adyen.util import generate_notification_sig
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

import workflows
from activities.payments import PaymentActivities
from activities.simulated import SimulatedPaymentProvider
from domain.common import Role
from domain.payments import REFUND_FROZEN_BY_DISPUTE, PaymentOperationInput, PaymentOperationKind
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import audit as audit_store
from store import disputes as dispute_store
from store import ledger, signals
from tests.factories import make_order
from tests.integration.polling import eventually
from workers import activities
from workers.settings import Settings

STRIPE_SECRET = "whsec_it_issue12_5b7e"
ADYEN_KEY = "7A1F3C0B5E9D2468ACE13579BDF02468ACE13579BDF02468ACE13579BDF02468"
KEYS = {
    "it-system": ("oms", Role.SYSTEM),
    "it-coord": ("camille", Role.COORDINATOR),
    "it-auditor": ("audrey", Role.AUDITOR),
}
SYSTEM = {"Authorization": "Bearer it-system"}
COORDINATOR = {"Authorization": "Bearer it-coord"}
AUDITOR = {"Authorization": "Bearer it-auditor"}


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    return integration_settings.model_copy(
        update={
            "task_queue": f"webhooks-{uuid.uuid4()}",
            "stripe_webhook_secrets": STRIPE_SECRET,
            "adyen_hmac_keys": ADYEN_KEY,
        }
    )


@pytest_asyncio.fixture(loop_scope="session")
async def worker(
    client: Client, db_pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[Worker]:
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client, db_pool: asyncpg.Pool, settings: Settings, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
        yield http


def uid(prefix: str, n: int = 14) -> str:
    return f"{prefix}{uuid.uuid4().hex[:n]}"


# -- Stripe, as the API reference shows it --------------------------------------


def stripe_event(event_type: str, obj: dict[str, Any], **extra: Any) -> bytes:
    """An Event object: https://docs.stripe.com/api/events/object."""
    event = {
        "id": uid("evt_1Q", 22),
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": int(time.time()),
        "data": {"object": obj, **extra},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(event).encode()


def stripe_dispute(
    dispute_id: str,
    *,
    charge: str,
    payment_intent: str | None,
    status: str = "needs_response",
    due_by: int | None = None,
    amount: int = 245_000,
    reason: str = "fraudulent",
) -> dict[str, Any]:
    """A Dispute object: https://docs.stripe.com/api/disputes/object."""
    now = int(time.time())
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge,
        "created": now,
        "currency": "eur",
        "enhanced_eligibility_types": [],
        "evidence": {
            "access_activity_log": None,
            "billing_address": None,
            "cancellation_policy": None,
            "customer_communication": None,
            "customer_email_address": None,
            "customer_name": None,
            "product_description": None,
            "receipt": None,
            "refund_policy": None,
            "shipping_tracking_number": None,
            "uncategorized_text": None,
        },
        "evidence_details": {
            "due_by": now + 7 * 86_400 if due_by is None else due_by,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "submission_method": "not_submitted",
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": "10.4",
        "payment_intent": payment_intent,
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
            "type": "card",
        },
        "reason": reason,
        "status": status,
    }


def early_fraud_warning(charge: str, payment_intent: str | None) -> dict[str, Any]:
    """An EarlyFraudWarning object: https://docs.stripe.com/api/radar/early_fraud_warnings/object."""
    return {
        "id": uid("issfr_1Q"),
        "object": "radar.early_fraud_warning",
        "actionable": True,
        "charge": charge,
        "created": int(time.time()),
        "fraud_type": "made_with_stolen_card",
        "livemode": False,
        "payment_intent": payment_intent,
    }


async def post_stripe(api: httpx.AsyncClient, body: bytes) -> httpx.Response:
    # Signed by Stripe's own library, as Stripe signs it.
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET)
    return await api.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


# -- Adyen -------------------------------------------------------------------


def adyen_item(code: str, *, psp: str, original: str | None, **fields: Any) -> dict[str, Any]:
    """A NotificationRequestItem, HMAC-signed with Adyen's own util."""
    item: dict[str, Any] = {
        "amount": {"currency": "EUR", "value": fields.pop("value", 245_000)},
        "eventCode": code,
        "eventDate": datetime.now(UTC).isoformat(timespec="seconds"),
        "merchantAccountCode": "MaisonEU",
        "merchantReference": fields.pop("merchant_reference", "cart-7781"),
        "pspReference": psp,
        "success": "true",
        **fields,
    }
    if original is not None:
        item["originalReference"] = original
    additional = dict(item.pop("additionalData", {}))
    additional["hmacSignature"] = generate_notification_sig(item, ADYEN_KEY).decode()
    item["additionalData"] = additional
    return item


def psp_reference() -> str:
    return f"{uuid.uuid4().int % 10**16:016d}"


# -- orders Steward holds -------------------------------------------------------


async def reviewed_order(pool: asyncpg.Pool, authorisation_ref: str, provider: str) -> str:
    """An order scoring has recorded, with the authorisation reference it came with."""
    order = make_order(
        uid("IT-", 10), payment={"provider": provider, "authorisation_ref": authorisation_ref}
    )
    await signals.record_and_load_signals(pool, order)
    return order.order_id


async def capture(pool: asyncpg.Pool, order_id: str, provider_reference: str) -> None:
    await ledger.record(
        pool,
        idempotency_key=f"order-review:{order_id}/capture",
        workflow_id=f"order-review:{order_id}",
        order_id=order_id,
        kind=PaymentOperationKind.CAPTURE,
        amount_minor=245_000,
        currency="EUR",
        provider="stripe",
        provider_reference=provider_reference,
    )


async def dispute_row(pool: asyncpg.Pool, provider: str, dispute_id: str, status: str) -> Any:
    return await eventually(
        lambda: dispute_store.get(pool, provider, dispute_id),
        lambda row: row is not None and row.status == status,
        what=f"dispute {dispute_id} {status}",
    )


async def tasks_of(api: httpx.AsyncClient, workflow_id: str) -> list[dict[str, Any]]:
    response = await api.get("/v1/tasks", params={"process": "chargeback"}, headers=COORDINATOR)
    return [t for t in response.json() if t["workflow_id"] == workflow_id]


# --------------------------------------------------------------------- tests


async def test_stripe_dispute_as_sent_finds_its_order_and_freezes_its_refunds(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    payment_intent = uid("pi_3Q", 22)
    order_id = await reviewed_order(db_pool, payment_intent, "stripe")
    dispute_id = uid("dp_1Q", 22)
    body = stripe_event(
        "charge.dispute.created",
        stripe_dispute(dispute_id, charge=uid("ch_3Q", 22), payment_intent=payment_intent),
    )

    answer = await post_stripe(api, body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "received": 1,
        "delivered": 1,
        "ignored": 0,
        "workflow_ids": [f"chargeback:stripe:{dispute_id}"],
    }
    row = await dispute_row(db_pool, "stripe", dispute_id, "awaiting_coordinator")
    assert row.order_id == order_id and row.payment_ref.startswith("ch_3Q")
    shown = (await api.get(f"/v1/chargebacks/stripe/{dispute_id}", headers=COORDINATOR)).json()
    evidence = {i["kind"]: i for i in shown["evidence"]["items"]}
    assert evidence["order_and_review"]["available"] is True
    assert shown["payment_refs"] == [payment_intent, row.payment_ref]
    # The return refund of the same order waits for the dispute: no double payment.
    payments = PaymentActivities(db_pool, {"simulated": SimulatedPaymentProvider(db_pool)})
    refund = PaymentOperationInput(
        workflow_id=f"return:{order_id}",
        operation_id="refund-1",
        order_id=order_id,
        provider="simulated",
        authorisation_ref=payment_intent,
        amount_minor=245_000,
        currency="EUR",
    )
    with pytest.raises(ApplicationError) as frozen:
        await payments.refund_payment(refund)
    assert frozen.value.type == REFUND_FROZEN_BY_DISPUTE


async def test_early_fraud_warning_as_sent_holds_the_order_of_its_charge(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    # No PaymentIntent (a Charges API payment): the charge id the ledger holds
    # for the capture is what names the order.
    order_id = uid("IT-", 10)
    charge = uid("ch_3Q", 22)
    await capture(db_pool, order_id, charge)
    warning = early_fraud_warning(charge, None)

    answer = await post_stripe(api, stripe_event("radar.early_fraud_warning.created", warning))
    assert answer.status_code == 200 and answer.json()["delivered"] == 1
    workflow_id = f"chargeback:stripe:{warning['id']}"
    await eventually(
        lambda: dispute_store.sim_is_held(db_pool, order_id), bool, what="the warehouse hold"
    )
    tasks = await eventually(
        lambda: tasks_of(api, workflow_id), lambda t: len(t) == 1, what="the warning's task"
    )
    assert tasks[0]["kind"] == "early_fraud_warning" and order_id in tasks[0]["title"]


async def test_due_by_zero_keeps_the_case_open_and_the_refunds_frozen_until_it_closes(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    payment_intent = uid("pi_3Q", 22)
    order_id = await reviewed_order(db_pool, payment_intent, "stripe")
    dispute_id = uid("dp_1Q", 22)
    charge = uid("ch_3Q", 22)

    def dispute(status: str) -> dict[str, Any]:
        # due_by 0: the bank allows no response to this dispute.
        return stripe_dispute(
            dispute_id, charge=charge, payment_intent=payment_intent, status=status, due_by=0
        )

    created = stripe_event("charge.dispute.created", dispute("needs_response"))
    assert (await post_stripe(api, created)).status_code == 200
    row = await dispute_row(db_pool, "stripe", dispute_id, "open")
    assert row.due_by is None and row.closed_at is None
    # The round was taken up as one that takes no answer (1970 expired it here).
    await eventually(
        lambda: audit_store.list_by_workflow(db_pool, f"chargeback:stripe:{dispute_id}"),
        lambda rows: "no_response_possible" in [r.action for r in rows],
        what="the no-response round",
    )
    state = (await api.get(f"/v1/chargebacks/stripe/{dispute_id}", headers=COORDINATOR)).json()
    assert state["status"] == "open" and state["due_by"] is None
    frozen = await dispute_store.open_dispute_for_order(db_pool, order_id)
    assert frozen is not None and frozen.dispute_id == dispute_id
    contest = await api.post(
        f"/v1/chargebacks/stripe/{dispute_id}/contest", json={"note": "x"}, headers=COORDINATOR
    )
    assert contest.status_code == 409 and "allows no response" in contest.json()["detail"]

    closed = stripe_event("charge.dispute.closed", dispute("won"))
    assert (await post_stripe(api, closed)).status_code == 200
    row = await dispute_row(db_pool, "stripe", dispute_id, "won")
    assert row.closed_at is not None
    assert await dispute_store.open_dispute_for_order(db_pool, order_id) is None


async def test_unresolved_dispute_asks_for_its_order_and_the_link_freezes_refunds(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    dispute_id = uid("dp_1Q", 22)
    body = stripe_event(
        "charge.dispute.created",
        stripe_dispute(dispute_id, charge=uid("ch_3Q", 22), payment_intent=uid("pi_3Q", 22)),
    )
    assert (await post_stripe(api, body)).status_code == 200
    workflow_id = f"chargeback:stripe:{dispute_id}"
    tasks = await eventually(
        lambda: tasks_of(api, workflow_id), lambda t: len(t) == 1, what="the link task"
    )
    assert tasks[0]["kind"] == "link_order"
    assert tasks[0]["title"].startswith(f"Link dispute stripe {dispute_id} to its order")
    row = await dispute_row(db_pool, "stripe", dispute_id, "open")
    assert row.order_id is None

    path = f"/v1/chargebacks/stripe/{dispute_id}/link"
    unknown = await api.post(path, json={"order_id": "IT-nobody"}, headers=COORDINATOR)
    assert unknown.status_code == 422
    assert unknown.json()["detail"].startswith("order_id: Steward knows no order IT-nobody")
    order_id = await reviewed_order(db_pool, uid("pi_3Q", 22), "stripe")
    wrong_role = await api.post(path, json={"order_id": order_id}, headers=SYSTEM)
    assert wrong_role.status_code == 403
    linked = await api.post(
        path, json={"order_id": order_id, "note": "card and amount match"}, headers=COORDINATOR
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["order_id"] == order_id
    frozen = await dispute_store.open_dispute_for_order(db_pool, order_id)
    assert frozen is not None and frozen.dispute_id == dispute_id
    again = await api.post(path, json={"order_id": order_id}, headers=COORDINATOR)
    assert again.status_code == 409 and "already linked" in again.json()["detail"]
    # Linked: the round goes on with the order's evidence and a response task.
    await dispute_row(db_pool, "stripe", dispute_id, "awaiting_coordinator")
    tasks = await tasks_of(api, workflow_id)
    assert [t["kind"] for t in tasks] == ["dispute_response"]


async def test_authentic_events_steward_does_not_act_on_are_acknowledged_and_recorded(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    refunded = stripe_event(
        "charge.refunded",
        {"id": uid("ch_3Q", 22), "object": "charge", "amount": 245_000, "metadata": {}},
    )
    event_id = json.loads(refunded)["id"]
    for _ in range(2):
        answer = await post_stripe(api, refunded)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"received": 1, "delivered": 0, "ignored": 1, "workflow_ids": []}
    warning_update = stripe_event(
        "radar.early_fraud_warning.updated",
        {**early_fraud_warning(uid("ch_3Q", 22), None), "actionable": False},
        previous_attributes={"actionable": True},
    )
    assert (await post_stripe(api, warning_update)).status_code == 200

    listed = await api.get(
        "/v1/webhooks/ignored", params={"provider": "stripe", "limit": 500}, headers=AUDITOR
    )
    assert listed.status_code == 200
    rows = {r["event_key"]: r for r in listed.json()}
    assert rows[event_id]["event_type"] == "charge.refunded"
    assert rows[event_id]["deliveries"] == 2
    assert rows[event_id]["reason"].startswith("not a dispute event")
    update_id = json.loads(warning_update)["id"]
    assert rows[update_id]["event_type"] == "radar.early_fraud_warning.updated"
    assert "actionable" in rows[update_id]["reason"]
    # Nothing was started for them.
    assert await dispute_store.get(db_pool, "stripe", rows[event_id]["object_ref"]) is None


async def test_adyen_batch_mixing_default_codes_processes_its_dispute_items(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    payment_psp = psp_reference()
    order_id = await reviewed_order(db_pool, payment_psp, "adyen")
    chargeback_psp = psp_reference()
    due = (datetime.now(UTC) + timedelta(days=20)).isoformat(timespec="seconds")
    items = [
        adyen_item("AUTHORISATION", psp=psp_reference(), original=None),
        adyen_item(
            "CHARGEBACK",
            psp=chargeback_psp,
            original=payment_psp,
            # Adyen's merchantReference is the merchant's payment reference,
            # not necessarily the order id: the pspReference decides.
            merchant_reference=f"pay-{order_id}",
            additionalData={
                "chargebackReasonCode": "10.4",
                "chargebackSchemeCode": "visa",
                "defensePeriodEndsAt": due,
                "disputeStatus": "Undefended",
                "defendable": "true",
            },
        ),
        adyen_item("CAPTURE", psp=psp_reference(), original=psp_reference()),
        adyen_item("REPORT_AVAILABLE", psp="settlement_detail_report_batch_451.csv", original=None),
        adyen_item("SOMETHING_ADYEN_ADDS_LATER", psp=psp_reference(), original=None),
    ]
    body = {"live": "false", "notificationItems": [{"NotificationRequestItem": i} for i in items]}

    answer = await api.post("/v1/webhooks/adyen", json=body)
    assert answer.status_code == 200 and answer.text == "[accepted]"
    row = await dispute_row(db_pool, "adyen", chargeback_psp, "awaiting_coordinator")
    assert row.order_id == order_id and row.reason == "fraud"
    listed = await api.get(
        "/v1/webhooks/ignored", params={"provider": "adyen", "limit": 500}, headers=AUDITOR
    )
    ignored = {r["object_ref"]: r for r in listed.json()}
    for item in (items[0], items[2], items[3], items[4]):
        assert ignored[item["pspReference"]]["event_type"] == item["eventCode"]
    assert ignored[items[4]["pspReference"]]["reason"].startswith("event code Steward does not")
    assert chargeback_psp not in ignored
    # Adyen retries the whole batch: still accepted, nothing twice.
    again = await api.post("/v1/webhooks/adyen", json=body)
    assert again.status_code == 200 and again.text == "[accepted]"
    deliveries = await db_pool.fetchval(
        "SELECT deliveries FROM dispute_events WHERE dispute_id = $1", chargeback_psp
    )
    assert deliveries == 2


async def test_concurrent_redelivery_of_one_event_reports_one_delivery(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    dispute_id = uid("dp_1Q", 22)
    payment_intent = uid("pi_3Q", 22)
    await reviewed_order(db_pool, payment_intent, "stripe")
    body = stripe_event(
        "charge.dispute.created",
        stripe_dispute(dispute_id, charge=uid("ch_3Q", 22), payment_intent=payment_intent),
    )
    answers = await asyncio.gather(*(post_stripe(api, body) for _ in range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert sum(a.json()["delivered"] for a in answers) == 1
    event_id = json.loads(body)["id"]
    deliveries = await db_pool.fetchval(
        "SELECT deliveries FROM dispute_events WHERE event_key = $1", event_id
    )
    assert deliveries == 8

    # The same for an Adyen item sent in several batches at once.
    psp = psp_reference()
    item = adyen_item(
        "NOTIFICATION_OF_CHARGEBACK",
        psp=psp,
        original=payment_intent,
        additionalData={"chargebackReasonCode": "13.1", "chargebackSchemeCode": "visa"},
    )
    batch = {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
    adyen_answers = await asyncio.gather(
        *(api.post("/v1/webhooks/adyen", json=batch) for _ in range(6))
    )
    assert [a.text for a in adyen_answers] == ["[accepted]"] * 6
    assert (
        await db_pool.fetchval("SELECT deliveries FROM dispute_events WHERE dispute_id = $1", psp)
        == 6
    )
