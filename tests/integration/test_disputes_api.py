"""Disputes end to end: signed Stripe and Adyen webhooks through the HTTP API,
a real worker and the real activities, the simulated providers and warehouse
in PostgreSQL, the refund freeze and the CCTV round trip.
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
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

import workflows
from activities.evidence import EvidenceActivities, SimulatedCctvArchive
from activities.payments import PaymentActivities
from activities.simulated import SimulatedPaymentProvider
from domain.audit import AuditEntry
from domain.common import Role
from domain.evidence import CCTV_FOOTAGE_EXPIRED, CctvClipRequest
from domain.payments import (
    REFUND_FROZEN_BY_DISPUTE,
    PaymentOperationInput,
    PaymentOperationKind,
)
from domain.webhook_signatures import adyen_signature, stripe_signature_header
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import audit as audit_store
from store import disputes as dispute_store
from store import ledger
from tests.integration.polling import eventually
from workers import activities
from workers.settings import Settings

STRIPE_SECRET = "whsec_it_8c1f"
ADYEN_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
KEYS = {
    "it-system": ("warehouse", Role.SYSTEM),
    "it-coord": ("camille", Role.COORDINATOR),
    "it-manager": ("morgan", Role.MANAGER),
}
SYSTEM = {"Authorization": "Bearer it-system"}
COORDINATOR = {"Authorization": "Bearer it-coord"}
MANAGER = {"Authorization": "Bearer it-manager"}


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    return integration_settings.model_copy(update={"task_queue": f"disputes-{uuid.uuid4()}"})


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
    # A rolled Stripe secret and its successor are both valid.
    configured = settings.model_copy(
        update={
            "stripe_webhook_secrets": f"whsec_old,{STRIPE_SECRET}",
            "adyen_hmac_keys": ADYEN_KEY,
        }
    )
    app = create_app(
        configured, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS)
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
        yield http


def stripe_body(
    dispute_id: str,
    order_id: str,
    *,
    event_type: str = "charge.dispute.created",
    reason: str = "fraudulent",
    status: str = "needs_response",
    due_in: timedelta = timedelta(days=7),
) -> bytes:
    now = datetime.now(UTC)
    event = {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(now.timestamp()),
        "livemode": False,
        "type": event_type,
        "data": {
            "object": {
                "id": dispute_id,
                "object": "dispute",
                "amount": 245000,
                "currency": "eur",
                "charge": f"ch_{order_id}",
                "reason": reason,
                "status": status,
                "evidence_details": {"due_by": int((now + due_in).timestamp())},
                "metadata": {"order_id": order_id},
                "created": int(now.timestamp()),
            }
        },
    }
    return json.dumps(event).encode()


async def post_stripe(
    api: httpx.AsyncClient, body: bytes, *, secret: str = STRIPE_SECRET, at: int | None = None
) -> httpx.Response:
    header = stripe_signature_header(secret, at or int(time.time()), body)
    return await api.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


async def dispute_row(pool: asyncpg.Pool, provider: str, dispute_id: str) -> Any:
    return await eventually(
        lambda: dispute_store.get(pool, provider, dispute_id),
        lambda row: row is not None and row.status == "awaiting_coordinator",
        what=f"dispute {dispute_id} awaiting a coordinator",
    )


async def test_stripe_webhook_verifies_dedupes_and_opens_the_case(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    dispute_id = f"dp_{uuid.uuid4().hex[:14]}"
    order_id = f"IT-{uuid.uuid4().hex[:10]}"
    body = stripe_body(dispute_id, order_id)

    tampered = await api.post(
        "/v1/webhooks/stripe",
        content=body.replace(b"245000", b"1"),
        headers={
            "Stripe-Signature": stripe_signature_header(STRIPE_SECRET, int(time.time()), body)
        },
    )
    assert tampered.status_code == 401
    assert "no v1 signature matches" in tampered.json()["detail"]
    stale = await post_stripe(api, body, at=int(time.time()) - 400)
    assert stale.status_code == 401 and "tolerance" in stale.json()["detail"]
    wrong = await post_stripe(api, body, secret="whsec_attacker")
    assert wrong.status_code == 401
    assert await dispute_store.get(db_pool, "stripe", dispute_id) is None

    first = await post_stripe(api, body)
    assert first.status_code == 200, first.text
    assert first.json()["delivered"] == 1
    assert first.json()["workflow_ids"] == [f"chargeback:stripe:{dispute_id}"]
    again = await post_stripe(api, body)
    assert again.status_code == 200 and again.json()["delivered"] == 0

    row = await dispute_row(db_pool, "stripe", dispute_id)
    assert (row.order_id, row.stage, row.amount_minor, row.currency) == (
        order_id,
        "dispute",
        245000,
        "EUR",
    )
    listed = await api.get("/v1/disputes", headers=COORDINATOR)
    assert dispute_id in [d["dispute_id"] for d in listed.json()]
    shown = await api.get(f"/v1/disputes/stripe/{dispute_id}", headers=COORDINATOR)
    assert shown.status_code == 200
    assert shown.json()["events"] and len(shown.json()["events"]) == 1
    tasks = await api.get("/v1/tasks", params={"process": "chargeback"}, headers=COORDINATOR)
    assert any(dispute_id in t["title"] for t in tasks.json())


async def test_bad_stripe_bodies_get_4xx_naming_the_reason(api: httpx.AsyncClient) -> None:
    # An authentic event Steward does not act on is acknowledged, never refused
    # (Stripe would retry it for days): see test_provider_webhooks.py.
    unknown = await post_stripe(api, stripe_body("dp_x", "IT-x", event_type="customer.created"))
    assert unknown.status_code == 200
    assert unknown.json()["ignored"] == 1 and unknown.json()["delivered"] == 0
    not_json = await post_stripe(api, b"{not json")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["detail"]
    event = json.loads(stripe_body("dp_y", "IT-y"))
    event["data"]["object"]["amount"] = "lots"
    malformed = await post_stripe(api, json.dumps(event).encode())
    assert malformed.status_code == 422
    assert malformed.json()["detail"].startswith("data.object.amount: expected int")


async def test_contest_refused_without_evidence_then_manager_override_submits_once(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    dispute_id = f"dp_{uuid.uuid4().hex[:14]}"
    order_id = f"IT-{uuid.uuid4().hex[:10]}"
    assert (await post_stripe(api, stripe_body(dispute_id, order_id))).status_code == 200
    await dispute_row(db_pool, "stripe", dispute_id)

    refused = await api.post(
        f"/v1/disputes/stripe/{dispute_id}/contest",
        json={"note": "3-D Secure authenticated"},
        headers=COORDINATOR,
    )
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("evidence: required evidence missing")
    empty_note = await api.post(
        f"/v1/disputes/stripe/{dispute_id}/contest", json={"note": ""}, headers=MANAGER
    )
    assert empty_note.status_code == 422

    contest = await api.post(
        f"/v1/disputes/stripe/{dispute_id}/contest",
        json={"note": "3-D Secure authenticated", "override_missing_evidence": True},
        headers={**MANAGER, "Idempotency-Key": "k-1"},
    )
    assert contest.status_code == 200, contest.text
    assert contest.json()["status"] == "submitted"
    assert await dispute_store.sim_actions(db_pool, "stripe", dispute_id) == [
        "stage_evidence",
        "submit",
    ]
    late = await api.post(f"/v1/disputes/stripe/{dispute_id}/accept", headers=MANAGER)
    assert late.status_code == 409 and late.json()["detail"].startswith("status:")
    assert await dispute_store.sim_actions(db_pool, "stripe", dispute_id) == [
        "stage_evidence",
        "submit",
    ]


async def test_open_dispute_freezes_refunds_of_the_order(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    dispute_id = f"dp_{uuid.uuid4().hex[:14]}"
    order_id = f"IT-{uuid.uuid4().hex[:10]}"
    await ledger.record(
        db_pool,
        idempotency_key=f"order-review:{order_id}/capture",
        workflow_id=f"order-review:{order_id}",
        order_id=order_id,
        kind=PaymentOperationKind.CAPTURE,
        amount_minor=245000,
        currency="EUR",
        provider="simulated",
        provider_reference=f"cap-{order_id}",
    )
    assert (await post_stripe(api, stripe_body(dispute_id, order_id))).status_code == 200
    await dispute_row(db_pool, "stripe", dispute_id)
    payments = PaymentActivities(db_pool, {"simulated": SimulatedPaymentProvider(db_pool)})
    refund = PaymentOperationInput(
        workflow_id=f"return:{order_id}",
        operation_id="refund-1",
        order_id=order_id,
        provider="simulated",
        authorisation_ref=f"auth-{order_id}",
        amount_minor=245000,
        currency="EUR",
    )
    with pytest.raises(ApplicationError) as frozen:
        await payments.refund_payment(refund)
    assert frozen.value.type == REFUND_FROZEN_BY_DISPUTE
    assert frozen.value.non_retryable
    assert f"stripe dispute {dispute_id} is open" in frozen.value.message
    assert await ledger.get(db_pool, refund.idempotency_key) is None


async def test_adyen_batch_is_verified_and_answered_accepted(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    psp = f"99{uuid.uuid4().int % 10**14:014d}"
    due = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    item: dict[str, Any] = {
        "eventCode": "NOTIFICATION_OF_CHARGEBACK",
        "success": "true",
        "pspReference": psp,
        "originalReference": "9913333333333333",
        "merchantAccountCode": "MaisonEU",
        "merchantReference": f"IT-{psp[-8:]}",
        "amount": {"value": 189000, "currency": "EUR"},
        "eventDate": datetime.now(UTC).isoformat(),
        "additionalData": {
            "chargebackReasonCode": "13.1",
            "chargebackSchemeCode": "visa",
            "defensePeriodEndsAt": due,
        },
    }
    item["additionalData"]["hmacSignature"] = adyen_signature(ADYEN_KEY, item)
    body = {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
    tampered = json.loads(json.dumps(body))
    tampered["notificationItems"][0]["NotificationRequestItem"]["amount"]["value"] = 1
    refused = await api.post("/v1/webhooks/adyen", json=tampered)
    assert refused.status_code == 401
    assert "notificationItems[0].NotificationRequestItem" in refused.json()["detail"]

    accepted = await api.post("/v1/webhooks/adyen", json=body)
    assert accepted.status_code == 200 and accepted.text == "[accepted]"
    row = await dispute_row(db_pool, "adyen", psp)
    assert row.reason == "not_received" and row.provider_reason_code == "13.1"


async def test_cctv_clip_round_trip_and_retention(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    order_id = f"IT-{uuid.uuid4().hex[:10]}"
    packed_at = datetime.now(UTC) - timedelta(days=2)
    # The order review released the order two days ago: that is the packing time.
    await audit_store.insert_entry(
        db_pool,
        AuditEntry(
            entry_id=f"order-review:{order_id}/0009",
            workflow_id=f"order-review:{order_id}",
            process="order-review",
            case_id=order_id,
            actor="steward",
            role=Role.SYSTEM,
            action="status_changed",
            after={"status": "released"},
            occurred_at=packed_at,
        ),
    )
    dispute_id = f"dp_{uuid.uuid4().hex[:14]}"
    body = stripe_body(dispute_id, order_id, reason="product_unacceptable")
    assert (await post_stripe(api, body)).status_code == 200
    await dispute_row(db_pool, "stripe", dispute_id)
    request_id = f"chargeback:stripe:{dispute_id}/cctv/1"
    request = await dispute_store.sim_get_cctv_request(db_pool, request_id)
    assert request is not None and request.status == "requested"

    answer = {"event_id": "wh-77", "request_id": request_id, "clip_ref": "cctv://PAR/pack-2/77"}
    delivered = await api.post("/v1/webhooks/warehouse/cctv", json=answer, headers=SYSTEM)
    assert delivered.status_code == 202, delivered.text
    assert delivered.json()["workflow_id"] == f"chargeback:stripe:{dispute_id}"

    async def state() -> dict[str, Any]:
        response = await api.get(f"/v1/disputes/stripe/{dispute_id}", headers=COORDINATOR)
        result: dict[str, Any] = response.json()
        return result

    shown = await eventually(state, lambda s: s["cctv_status"] == "delivered", what="clip")
    assert "cctv_clip" not in shown["missing_evidence"]
    unknown = await api.post(
        "/v1/webhooks/warehouse/cctv", json={**answer, "request_id": "nope"}, headers=SYSTEM
    )
    assert unknown.status_code == 404

    archive = EvidenceActivities(SimulatedCctvArchive(db_pool, retention=timedelta(days=30)))
    with pytest.raises(ApplicationError) as expired:
        await archive.request_cctv_clip(
            CctvClipRequest(
                request_id=f"x/{uuid.uuid4().hex}",
                reply_to_workflow_id="carrier-claim:ups:1Z",
                order_id=order_id,
                footage_at=datetime.now(UTC) - timedelta(days=31),
            )
        )
    assert expired.value.type == CCTV_FOOTAGE_EXPIRED
    assert "30-day retention" in expired.value.message


async def test_not_received_evidence_comes_from_the_carrier_scans(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    order_id = f"IT-{uuid.uuid4().hex[:10]}"
    tracking = f"1Z{uuid.uuid4().hex[:12].upper()}"
    shipped = datetime.now(UTC) - timedelta(days=6)
    await db_pool.execute(
        """
        INSERT INTO shipments (shipment_id, carrier, tracking_number, order_id,
                               expected_delivery_at, record)
        VALUES ($1, 'ups', $2, $3, $4, '{}'::jsonb)
        """,
        f"SH-{order_id}",
        tracking,
        order_id,
        shipped + timedelta(days=2),
    )
    for number, (status, at) in enumerate(
        [("in_transit", shipped), ("delivered", shipped + timedelta(days=2))]
    ):
        await db_pool.execute(
            """
            INSERT INTO carrier_events (source, event_id, carrier, tracking_number, status,
                                        occurred_at)
            VALUES ('steward', $1, 'ups', $2, $3, $4)
            """,
            f"ev-{tracking}-{number}",
            tracking,
            status,
            at,
        )
    dispute_id = f"dp_{uuid.uuid4().hex[:14]}"
    body = stripe_body(dispute_id, order_id, reason="product_not_received")
    assert (await post_stripe(api, body)).status_code == 200
    await dispute_row(db_pool, "stripe", dispute_id)
    shown = (await api.get(f"/v1/disputes/stripe/{dispute_id}", headers=COORDINATOR)).json()
    items = {i["kind"]: i for i in shown["evidence"]["items"]}
    assert items["proof_of_delivery"]["available"] is True
    assert f"delivered by ups {tracking}" in items["proof_of_delivery"]["summary"]
    assert items["carrier_scans"]["summary"].startswith("2 scan(s): in_transit")
    assert "proof_of_delivery" not in shown["missing_evidence"]
    # Never reviewed by Steward: the order evidence is what is still missing.
    assert shown["missing_evidence"] == ["order_and_review"]
