"""Privacy requests end to end (issue 21): the HTTP API, a real worker with
the real activities, the Temporal dev server and PostgreSQL.

A customer whose order went through a finished review, a return and its
refund (their audit rows, case rows and ledger rows written as those
processes leave them) asks to be forgotten: the personal data goes (the
invoice's billing identity stays, encrypted, for the statutory retention),
the decision path and the money stay, and `steward audit ORDER_ID` shows the
subject erased. Bad input and wrong roles change nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from rich.console import Console
from temporalio.client import Client
from temporalio.worker import Worker

from domain.audit import AuditEntry, CaseStatusInput
from domain.common import Role
from domain.deliveries import ShipmentRecord
from domain.payments import PaymentOperationKind
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from starters.cli import audit_table
from store import audit as audit_store
from store import cases, deliveries, ledger, personal_data
from tests.factories import make_order
from tests.integration.polling import eventually
from workers import activities
from workers.settings import Settings
from workflows.privacy_request import PrivacyRequestWorkflow

KEYS = {
    "pr-coord": ("alice", Role.COORDINATOR),
    "pr-ops": ("olga", Role.OPS),
    "pr-audit": ("audra", Role.AUDITOR),
}
COORD = {"X-API-Key": "pr-coord"}
OPS = {"X-API-Key": "pr-ops"}
AUDITOR = {"X-API-Key": "pr-audit"}
EMAIL = "camille.durand@example.fr"
PERSONAL = (EMAIL, "+33 6 12 34 56 78", "203.0.113.24")


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    settings = integration_settings.model_copy(update={"task_queue": f"pr-{uuid.uuid4()}"})
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[PrivacyRequestWorkflow],
        activities=activities.build_activities(db_pool, settings),
    ):
        app = create_app(
            settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS)
        )
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
            yield http


async def finished_order(db: asyncpg.Pool, email: str) -> str:
    """An order reviewed and captured, returned and refunded, all closed."""
    order_id = f"PR-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC) - timedelta(days=20)
    order = make_order(order_id=order_id, customer={"email": email})
    await deliveries.register_shipment(
        db,
        ShipmentRecord(
            shipment_id=f"SH-{order_id}",
            carrier="ups",
            tracking_number=f"1Z{order_id}",
            expected_delivery_at=now + timedelta(days=2),
            order=order,
        ),
    )
    path = [
        ("order-review", order_id, "scored", "automatic", {"score": 12}),
        ("order-review", order_id, "auto_accepted", "low risk", {"status": "released"}),
        ("order-review", order_id, "payment_captured", "released", {"amount_minor": 245000}),
        ("return", f"RMA-{order_id}", "return_requested", "too_small", {}),
        ("return", f"RMA-{order_id}", "refund_issued", "QC first choice", {"amount_minor": 245000}),
    ]
    entries = [
        AuditEntry(
            entry_id=f"{process}:{case_id}/{action}",
            workflow_id=f"{process}:{case_id}",
            process=process,
            case_id=case_id,
            actor="steward",
            role=Role.SYSTEM,
            action=action,
            reason=reason,
            after=after,
            occurred_at=now + timedelta(minutes=n),
            order_id=order_id,
        )
        for n, (process, case_id, action, reason, after) in enumerate(path)
    ]
    await audit_store.insert_entries(db, entries)
    for process, case_id, status in (
        ("order-review", order_id, "released"),
        ("return", f"RMA-{order_id}", "refunded"),
    ):
        await cases.upsert(
            db,
            CaseStatusInput(
                workflow_id=f"{process}:{case_id}",
                process=process,
                case_id=case_id,
                status=status,
                amount_minor=245000,
                currency="EUR",
                updated_at=now,
            ),
        )
    for kind, workflow_id in (
        (PaymentOperationKind.CAPTURE, f"order-review:{order_id}"),
        (PaymentOperationKind.REFUND, f"return:RMA-{order_id}"),
    ):
        await ledger.record(
            db,
            idempotency_key=f"{workflow_id}/{kind}",
            workflow_id=workflow_id,
            order_id=order_id,
            kind=kind,
            amount_minor=245000,
            currency="EUR",
            provider="simulated",
            provider_reference=f"sim-{kind}-{order_id}",
        )
    return order_id


async def state_of(api: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/privacy-requests/{request_id}", headers=AUDITOR)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_erasure_from_the_api_keeps_the_audit_trail_and_the_money(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    email = f"camille.{uuid.uuid4().hex[:6]}@example.fr"
    order_id = await finished_order(db_pool, email)
    trail_before = await audit_store.list_by_case(db_pool, order_id)
    money_before = await ledger.list_for_order(db_pool, order_id)
    request_id = f"PR-{uuid.uuid4().hex[:8]}"

    # Wrong role, bad input, unknown address: clear answers, nothing started.
    body = {"request_id": request_id, "kind": "erasure", "email": email, "jurisdiction": "EU"}
    refused = await api.post("/v1/privacy-requests", json=body, headers=OPS)
    assert refused.status_code == 403 and "coordinator" in refused.text
    invalid = await api.post(
        "/v1/privacy-requests", json={**body, "email": "not-an-email"}, headers=COORD
    )
    assert invalid.status_code == 422 and "email" in invalid.text
    assert "not-an-email" not in invalid.text
    nobody = await api.post(
        "/v1/privacy-requests", json={**body, "email": "nobody@example.org"}, headers=COORD
    )
    assert nobody.status_code == 404 and "holds no personal data" in nobody.text
    assert (await api.get(f"/v1/privacy-requests/{request_id}", headers=AUDITOR)).status_code == 404

    filed = await api.post("/v1/privacy-requests", json=body, headers=COORD)
    assert filed.status_code == 202, filed.text
    assert filed.json()["subjects"] == 1
    twice = await api.post("/v1/privacy-requests", json=body, headers=COORD)
    assert twice.status_code == 409 and "already exists" in twice.text
    other_id = {**body, "request_id": f"{request_id}-2"}
    duplicate = await api.post("/v1/privacy-requests", json=other_id, headers=COORD)
    assert duplicate.status_code == 409 and "still open" in duplicate.text

    await eventually(
        lambda: state_of(api, request_id),
        lambda s: s["status"] == "awaiting_verification",
        what="awaiting verification",
    )
    verify = {"decision": "verified", "reason": "ID document checked"}
    wrong = await api.post(
        f"/v1/privacy-requests/{request_id}/verification", json=verify, headers=OPS
    )
    assert wrong.status_code == 403
    verified = await api.post(
        f"/v1/privacy-requests/{request_id}/verification", json=verify, headers=COORD
    )
    assert verified.status_code == 200, verified.text

    # The capture's invoice is under statutory retention: partial erasure.
    # The status turns on_hold before the partial answer goes out (and takes
    # the contact kept for it with it): wait for both.
    state = await eventually(
        lambda: state_of(api, request_id),
        lambda s: s["status"] == "on_hold" and s["answered_at"] is not None,
        what="on hold and answered",
    )
    assert state["retained"] == 1 and state["erased"] == 0
    assert state["hold_reasons"][0].startswith(f"invoice_retention invoice:{order_id} until ")
    assert datetime.fromisoformat(state["proceeds_at"]) > datetime.now(UTC) + timedelta(days=3000)

    subject = deliveries.shipment_subject_id(f"SH-{order_id}")
    kept = await personal_data.get_subject(db_pool, subject)
    assert set(kept) == {
        "order.customer.full_name",
        "order.billing_address.line1",
        "order.billing_address.line2",
        "order.billing_address.city",
        "order.billing_address.postal_code",
        "order.billing_address.region",
    }
    shipment = await deliveries.get_shipment(db_pool, f"SH-{order_id}")
    assert shipment is not None
    assert shipment.record.order.customer.email != email
    assert shipment.record.order.customer.phone is None
    assert shipment.record.order.shipping_address.line1 == personal_data.ERASED_PLACEHOLDER
    assert shipment.record.order.billing_address.line1 == "18 Rue de Grenelle"
    # No longer findable by the address; the contact kept to answer went with the answer.
    assert await personal_data.find_subjects(db_pool, fingerprint_of=email) == []
    messages = await db_pool.fetchval(
        "SELECT count(*) FROM sim_notifications WHERE order_id = $1", request_id
    )
    assert messages == 1
    again = await api.post(
        "/v1/privacy-requests", json={**body, "request_id": f"{request_id}-3"}, headers=COORD
    )
    assert again.status_code == 404

    # The decision path and the money are whole; the order's path says what went.
    trail_after = await audit_store.list_by_case(db_pool, order_id)
    assert trail_after[: len(trail_before)] == trail_before
    assert [r.action for r in trail_after[len(trail_before) :]] == ["personal_data_pseudonymised"]
    assert trail_after[-1].after == {"subject_id": subject}
    assert await ledger.list_for_order(db_pool, order_id) == money_before
    served = await api.get(f"/v1/audit/{order_id}", headers=AUDITOR)
    assert served.status_code == 200
    console = Console(width=250, record=True)
    from domain.audit import AuditRow

    console.print(audit_table(order_id, [AuditRow.model_validate(r) for r in served.json()]))
    printed = console.export_text()
    for action in ("auto_accepted", "payment_captured", "refund_issued"):
        assert action in printed
    assert "personal_data_pseudonymised" in printed and "privacy-request" in printed
    assert not any(value in printed for value in (*PERSONAL, email))


async def test_access_request_exports_what_is_held(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    email = f"ada.{uuid.uuid4().hex[:6]}@example.fr"
    order_id = await finished_order(db_pool, email)
    request_id = f"PR-{uuid.uuid4().hex[:8]}"
    body = {"request_id": request_id, "kind": "access", "email": email, "jurisdiction": "UK"}
    assert (await api.post("/v1/privacy-requests", json=body, headers=COORD)).status_code == 202
    early = await api.get(f"/v1/privacy-requests/{request_id}/export", headers=COORD)
    assert early.status_code in (404, 409)
    await eventually(
        lambda: state_of(api, request_id),
        lambda s: s["status"] == "awaiting_verification",
        what="awaiting verification",
    )
    verify = {"decision": "verified", "reason": "signed-in account"}
    ok = await api.post(
        f"/v1/privacy-requests/{request_id}/verification", json=verify, headers=COORD
    )
    assert ok.status_code == 200, ok.text
    await eventually(
        lambda: state_of(api, request_id), lambda s: s["status"] == "exported", what="exported"
    )
    exported = await api.get(f"/v1/privacy-requests/{request_id}/export", headers=COORD)
    assert exported.status_code == 200
    subjects = exported.json()["subjects"]
    assert [s["kind"] for s in subjects] == ["shipment"]
    assert subjects[0]["fields"]["order.customer.email"] == email
    assert {"kind": "order", "id": order_id} in subjects[0]["references"]
    page = await api.get(f"/v1/privacy-requests/{request_id}/export?format=html", headers=COORD)
    assert page.headers["content-type"].startswith("text/html") and email in page.text
    # The export is personal data: an auditor reads the request, not the export.
    assert (
        await api.get(f"/v1/privacy-requests/{request_id}/export", headers=AUDITOR)
    ).status_code == 403
    # Nothing was erased by an access request.
    assert (await personal_data.find_subjects(db_pool, fingerprint_of=email)) != []
