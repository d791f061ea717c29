"""Returns end to end: the HTTP API, a real worker, the Temporal dev server and
PostgreSQL, with the simulated carrier, 3PL and payment provider.

The payment provider is scripted to commit the refund and then time out, so
the refund activity is retried: the test proves the money moved exactly once
(one provider operation, one ledger row, refunded amount equal to the
return's value).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from activities.payments import PaymentActivities
from activities.returns import ReturnActivities
from activities.simulated import (
    Fault,
    FaultPlan,
    SimulatedPaymentProvider,
    SimulatedReturnCarrier,
    SimulatedReturnsWarehouse,
)
from domain.chargeback import (
    DisputeProvider,
    DisputeReason,
    DisputeRecordInput,
    DisputeStage,
    DisputeStatus,
)
from domain.common import Role
from domain.ids import return_id
from domain.payments import PaymentOperationInput, PaymentOperationKind
from domain.returns import (
    CheckEligibilityInput,
    CustomerContact,
    OrderLine,
    Resolution,
    ReturnInput,
    ReturnLine,
    ReturnOrder,
    ReturnReason,
)
from domain.risk_rules import IdentityKind, identity_hash
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import audit as audit_store
from store import disputes, ledger, personal_data
from store import returns as returns_store
from store import simulated as sim_store
from tests.integration.polling import eventually
from tests.integration.test_order_review_personal_data import decoded_history
from workers import activities
from workers.settings import Settings
from workflows.returns import ReturnWorkflow

KEYS = {
    "rt-system": ("carrier-gateway", Role.SYSTEM),
    "rt-cs": ("cs-julie", Role.OPS),
    "rt-coord": ("alice", Role.COORDINATOR),
    "rt-finance": ("fiona", Role.FINANCE),
}
SECRET = "rt-webhook-secret"
CS = {"X-API-Key": "rt-cs"}
WEBHOOK = {"X-API-Key": "rt-system", "X-Steward-Webhook-Secret": SECRET}
COORDINATOR = {"X-API-Key": "rt-coord"}
PRICE = 245_000


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    return integration_settings.model_copy(
        update={"task_queue": f"returns-{uuid.uuid4()}", "webhook_secret": SECRET}
    )


@pytest.fixture
def provider(db_pool: asyncpg.Pool) -> SimulatedPaymentProvider:
    # The first refund call commits at the provider, then the answer is lost.
    return SimulatedPaymentProvider(db_pool, FaultPlan(faults=[Fault.TIMEOUT_AFTER_COMMIT]))


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client,
    db_pool: asyncpg.Pool,
    settings: Settings,
    provider: SimulatedPaymentProvider,
) -> AsyncIterator[httpx.AsyncClient]:
    payments = PaymentActivities(db_pool, {provider.name: provider})
    # Everything real, except a refund_payment wired to the scripted provider.
    registered = [
        fn
        for fn in activities.build_activities(db_pool, settings)
        if fn.__name__ != "refund_payment"
    ]
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[ReturnWorkflow],
        activities=[*registered, payments.refund_payment],
    ):
        app = create_app(
            settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS)
        )
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
            yield http


async def captured_order(db: asyncpg.Pool, provider: SimulatedPaymentProvider) -> str:
    """An order whose payment was captured (provider and ledger), as order review leaves it."""
    order_id = f"RT-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    await provider.register_authorisation(
        authorisation_ref=f"auth-{order_id}",
        amount_minor=PRICE,
        currency="EUR",
        authorised_at=now - timedelta(days=5),
        expires_at=now + timedelta(days=2),
    )
    capture_provider = SimulatedPaymentProvider(db, FaultPlan())
    await PaymentActivities(db, {provider.name: capture_provider}).capture_payment(
        PaymentOperationInput(
            workflow_id=f"order-review:{order_id}",
            operation_id="capture",
            order_id=order_id,
            provider=provider.name,
            authorisation_ref=f"auth-{order_id}",
            amount_minor=PRICE,
            currency="EUR",
        )
    )
    return order_id


def return_json(rma_id: str, order_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
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
            "authorisation_ref": f"auth-{order_id}",
        },
        "lines": [{"sku": "HB-TOTE-MM-NOIR", "quantity": 1}],
        "reason": "too_small",
        "resolution": "refund",
        "contact": {"email": "camille.durand@example.fr", "locale": "fr"},
    }
    body.update(overrides)
    return body


async def status_of(api: httpx.AsyncClient, rma_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/returns/{rma_id}", headers=CS)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_status(api: httpx.AsyncClient, rma_id: str, status: str) -> dict[str, Any]:
    return await eventually(
        lambda: status_of(api, rma_id), lambda s: s["status"] == status, what=status
    )


async def test_refund_retried_after_timeout_after_commit_refunds_exactly_once(
    api: httpx.AsyncClient,
    db_pool: asyncpg.Pool,
    provider: SimulatedPaymentProvider,
    client: Client,
) -> None:
    order_id = await captured_order(db_pool, provider)
    rma_id = f"RMA-{uuid.uuid4().hex[:10]}"

    created = await api.post("/v1/returns", json=return_json(rma_id, order_id), headers=CS)
    assert created.status_code == 202, created.text
    assert created.json() == {"workflow_id": f"return:{rma_id}", "rma_id": rma_id, "started": True}
    again = await api.post("/v1/returns", json=return_json(rma_id, order_id), headers=CS)
    assert again.json()["started"] is False

    state = await wait_status(api, rma_id, "label_issued")
    tracking = state["tracking_number"]
    scan = {
        "event_id": "scan-1",
        "kind": "in_transit",
        "tracking_number": tracking,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    no_secret = await api.post(
        f"/v1/returns/{rma_id}/carrier-events", json=scan, headers={"X-API-Key": "rt-system"}
    )
    assert no_secret.status_code == 401
    assert "X-Steward-Webhook-Secret" in no_secret.json()["detail"]
    for _ in range(2):  # a duplicated webhook
        sent = await api.post(f"/v1/returns/{rma_id}/carrier-events", json=scan, headers=WEBHOOK)
        assert sent.status_code == 202, sent.text
    delivered = {**scan, "event_id": "scan-2", "kind": "delivered_to_warehouse"}
    await api.post(f"/v1/returns/{rma_id}/carrier-events", json=delivered, headers=WEBHOOK)
    await wait_status(api, rma_id, "received")
    qc = {"event_id": "qc-1", "grade": "first_choice", "notes": "as new", "photos": ["p1.jpg"]}
    assert (
        await api.post(f"/v1/returns/{rma_id}/qc-results", json=qc, headers=WEBHOOK)
    ).status_code == 202

    final = await wait_status(api, rma_id, "refunded")
    assert final["refund_minor"] == PRICE
    assert final["disposition"] == "restock"

    # Exactly once: one provider operation, one ledger row, the right total.
    key = f"return:{rma_id}/refund-1"
    operations = await sim_store.list_operations(db_pool, f"auth-{order_id}")
    assert [(o.kind, o.idempotency_key) for o in operations if o.kind == "refund"] == [
        ("refund", key)
    ]
    refunds = [
        e
        for e in await ledger.list_for_order(db_pool, order_id)
        if e.kind is PaymentOperationKind.REFUND
    ]
    assert [(e.idempotency_key, e.amount_minor) for e in refunds] == [(key, PRICE)]
    totals = await ledger.totals_for_order(db_pool, order_id)
    assert totals.refunded_minor == PRICE == totals.captured_minor
    assert provider.plan.pending == []  # the scripted timeout really happened

    actions = [row.action for row in await audit_store.list_by_case(db_pool, rma_id)]
    assert actions.count("carrier_in_transit") == 1
    assert {
        "return_requested",
        "label_issued",
        "qc_result_received",
        "item_restock",
        "refund_issued",
    } <= set(actions)
    assert [d.disposition for d in await returns_store.list_dispositions(db_pool, rma_id)] == [
        "restock"
    ]
    listed = await api.get("/v1/returns", params={"status": "refunded"}, headers=CS)
    assert rma_id in [row["case_id"] for row in listed.json()]

    # A closed return refuses decisions with 409 and names why. `refunded` is
    # listed before the customer's email goes out: wait for the end itself.
    await client.get_workflow_handle(return_id(rma_id)).result()
    late = await api.post(
        f"/v1/returns/{rma_id}/qc-decision",
        json={"grade": "ko", "reason": "late", "outcome": "repair"},
        headers=COORDINATOR,
    )
    assert late.status_code == 409
    assert "closed" in late.json()["detail"]

    # Issue 21: the API kept the customer's email in the personal-data store;
    # the return's history (decoded through the codec) holds its subject id
    # and not the email, and the notifier still got the real address (the
    # simulated one keeps its hash).
    email = return_json(rma_id, order_id)["contact"]["email"]
    sid = returns_store.contact_subject_id(rma_id)
    assert await personal_data.get_subject(db_pool, sid) == {"email": email}
    history = await decoded_history(client, return_id(rma_id))
    assert rma_id.encode() in history and sid.encode() in history
    assert email.encode() not in history, "the customer's email is in the return's history"
    sent = await db_pool.fetch(
        "SELECT template, recipient_hash FROM sim_notifications WHERE order_id = $1", order_id
    )
    assert {r["template"] for r in sent} == {"return_label", "return_refunded"}
    assert {r["recipient_hash"] for r in sent} == {identity_hash(IdentityKind.EMAIL, email)}


async def test_a_customers_reason_for_cancelling_stays_out_of_temporal(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool, client: Client
) -> None:
    """Issue 21: the API keeps the customer's words in the personal-data
    store; the return's history holds their subject id and the audit says
    where they are; GET reads them back."""
    rma_id = f"RMA-{uuid.uuid4().hex[:10]}"
    words = f"I found it in my size at the boutique ({rma_id})"
    created = await api.post("/v1/returns", json=return_json(rma_id, f"RT-{rma_id}"), headers=CS)
    assert created.status_code == 202, created.text
    await wait_status(api, rma_id, "label_issued")
    cancelled = await api.post(
        f"/v1/returns/{rma_id}/cancel", json={"event_id": "c-1", "reason": words}, headers=CS
    )
    assert cancelled.status_code == 202, cancelled.text
    await client.get_workflow_handle(return_id(rma_id)).result()

    state = await status_of(api, rma_id)
    assert state["status"] == "cancelled" and state["cancel_reason"] == words
    sid = returns_store.cancel_reason_subject_id(rma_id, "c-1")
    assert state["cancel_reason_subject_id"] == sid
    history = await decoded_history(client, return_id(rma_id))
    assert sid.encode() in history and words.encode() not in history
    audit = {row.action: row for row in await audit_store.list_by_case(db_pool, rma_id)}
    assert audit["cancel_requested"].reason == (
        "the customer's reason, kept in the personal-data store"
    )
    # A cancel of the closed return is refused and keeps nothing.
    late = await api.post(
        f"/v1/returns/{rma_id}/cancel", json={"event_id": "c-2", "reason": words}, headers=CS
    )
    assert late.status_code == 409 and "closed (cancelled)" in late.json()["detail"]
    with pytest.raises(personal_data.UnknownSubject):
        await personal_data.get_subject(
            db_pool, returns_store.cancel_reason_subject_id(rma_id, "c-2")
        )
    # Erased by a privacy request: GET shows the placeholder.
    await personal_data.erase_subject(db_pool, sid, reason="test")
    assert (await status_of(api, rma_id))["cancel_reason"] == personal_data.ERASED_PLACEHOLDER


async def test_bad_requests_start_nothing(api: httpx.AsyncClient, client: Client) -> None:
    rma_id = f"RMA-{uuid.uuid4().hex[:10]}"
    unknown_sku = return_json(rma_id, "RT-X", lines=[{"sku": "NOPE", "quantity": 1}])
    response = await api.post("/v1/returns", json=unknown_sku, headers=CS)
    assert response.status_code == 422
    assert "lines: sku NOPE is not in order RT-X" in response.text
    exchange = return_json(rma_id, "RT-X", resolution="exchange")
    response = await api.post("/v1/returns", json=exchange, headers=CS)
    assert response.status_code == 422
    assert "replacement: an exchange needs the replacement order" in response.text
    zero = return_json(rma_id, "RT-X", lines=[{"sku": "HB-TOTE-MM-NOIR", "quantity": 0}])
    response = await api.post("/v1/returns", json=zero, headers=CS)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "lines[0].quantity"
    wrong_role = await api.post(
        "/v1/returns", json=return_json(rma_id, "RT-X"), headers=COORDINATOR
    )
    assert wrong_role.status_code == 403
    assert (await api.get(f"/v1/returns/{rma_id}", headers=CS)).status_code == 404
    assert (await api.get(f"/v1/returns/{rma_id}/nope", headers=CS)).status_code == 404


async def test_eligibility_counts_quantities_of_other_returns(db_pool: asyncpg.Pool) -> None:
    order_id = f"RT-{uuid.uuid4().hex[:10]}"
    returns = ReturnActivities(
        db_pool, SimulatedReturnCarrier(db_pool), SimulatedReturnsWarehouse(db_pool)
    )

    def request(rma_id: str) -> CheckEligibilityInput:
        return CheckEligibilityInput(
            workflow_id=f"return:{rma_id}",
            requested_at=datetime.now(UTC),
            request=ReturnInput(
                rma_id=rma_id,
                order=ReturnOrder(
                    order_id=order_id,
                    market="FR",
                    currency="EUR",
                    delivered_at=datetime.now(UTC) - timedelta(days=2),
                    lines=[
                        OrderLine(
                            sku="SCARF", name="Silk scarf", unit_price_minor=45_000, quantity=2
                        )
                    ],
                    authorisation_ref=f"auth-{order_id}",
                ),
                lines=[ReturnLine(sku="SCARF", quantity=2)],
                reason=ReturnReason.NO_LONGER_WANTED,
                resolution=Resolution.REFUND,
                contact=CustomerContact(email="camille@example.fr"),
                requested_by="cs-julie",
            ),
        )

    first = await returns.check_return_eligibility(request("RMA-A-" + order_id))
    assert first.eligible and first.full_return and first.refund_minor == 90_000
    # A retry of the same check does not count its own reservation.
    assert (await returns.check_return_eligibility(request("RMA-A-" + order_id))).eligible
    second = await returns.check_return_eligibility(request("RMA-B-" + order_id))
    assert not second.eligible
    assert [r.code for r in second.refusals] == ["quantity_exceeded"]
    assert second.refusals[0].message == (
        "You can return 0 more of Silk scarf; this request asks for 2."
    )


async def test_open_dispute_freezes_the_refund(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool, provider: SimulatedPaymentProvider
) -> None:
    order_id = await captured_order(db_pool, provider)
    now = datetime.now(UTC)
    await disputes.upsert(
        db_pool,
        DisputeRecordInput(
            provider=DisputeProvider.STRIPE,
            dispute_id=f"dp_{order_id}",
            workflow_id=f"chargeback:stripe:dp_{order_id}",
            order_id=order_id,
            stage=DisputeStage.DISPUTE,
            status=DisputeStatus.OPEN,
            reason=DisputeReason.NOT_AS_DESCRIBED,
            provider_reason_code="product_unacceptable",
            due_by=now + timedelta(days=10),
            amount_minor=PRICE,
            currency="EUR",
            payment_ref=f"auth-{order_id}",
            updated_at=now,
            closed=False,
        ),
    )
    rma_id = f"RMA-{uuid.uuid4().hex[:10]}"
    created = await api.post("/v1/returns", json=return_json(rma_id, order_id), headers=CS)
    assert created.status_code == 202, created.text
    state = await wait_status(api, rma_id, "label_issued")
    assert state["open_dispute"] is True  # the eligibility check saw the dispute
    base = {"tracking_number": state["tracking_number"], "occurred_at": now.isoformat()}
    for event_id, kind in (("s-1", "in_transit"), ("s-2", "delivered_to_warehouse")):
        await api.post(
            f"/v1/returns/{rma_id}/carrier-events",
            json={**base, "event_id": event_id, "kind": kind},
            headers=WEBHOOK,
        )
    await wait_status(api, rma_id, "received")
    await api.post(
        f"/v1/returns/{rma_id}/qc-results",
        json={"event_id": "qc-1", "grade": "first_choice"},
        headers=WEBHOOK,
    )

    frozen = await wait_status(api, rma_id, "refund_frozen")
    assert frozen["due_at"] is not None  # the freeze deadline
    totals = await ledger.totals_for_order(db_pool, order_id)
    assert totals.refunded_minor == 0
    actions = [row.action for row in await audit_store.list_by_case(db_pool, rma_id)]
    assert "refund_frozen" in actions and "refund_issued" not in actions
