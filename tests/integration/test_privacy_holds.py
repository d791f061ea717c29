"""The legal holds a privacy request checks (activities/privacy.py,
store/privacy_requests.py) against a real PostgreSQL: an open dispute, an
open return, a campaign not reconciled, and the statutory retention of a
captured payment's invoice; each lifts when its case closes or its date
passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.testing import ActivityEnvironment

from activities.privacy import PrivacyActivities
from activities.simulated import SimulatedNotifier
from domain.audit import AuditEntry, CaseStatusInput
from domain.common import Role
from domain.payments import PaymentOperationKind
from domain.privacy_request import CheckHoldsInput, HoldKind, Jurisdiction
from store import audit as audit_store
from store import cases, ledger, personal_data

NOW = datetime.now(UTC)
RETENTION = timedelta(days=3653)


async def check(db: asyncpg.Pool, email: str) -> dict[HoldKind, list[str]]:
    result = await ActivityEnvironment().run(
        PrivacyActivities(db, SimulatedNotifier(db)).check_legal_holds,
        CheckHoldsInput(
            request_id="PR-H",
            match_fingerprint=personal_data.fingerprint(email),
            subject_ids=[],
            jurisdiction=Jurisdiction.EU,
            invoice_retention=RETENTION,
        ),
    )
    holds: dict[HoldKind, list[str]] = {}
    for hold in result.holds:
        holds.setdefault(hold.kind, []).append(hold.reference)
    return holds


async def test_holds_appear_and_lift(clean_db: asyncpg.Pool) -> None:
    db = clean_db
    email = "hold.me@example.fr"
    await personal_data.put_subject(
        db,
        kind="shipment",
        fields={"order.customer.email": email, "order.customer.full_name": "Ada"},
        subject_id=personal_data.subject_id_for("shipment", "SH-H1"),
        refs=[("order", "ORD-H1")],
    )
    await personal_data.put_subject(
        db,
        kind="employee",
        fields={"email": email, "name": "Ada"},
        subject_id=personal_data.subject_id_for("employee", "ES-H/E-1"),
        refs=[("campaign", "ES-H")],
    )
    assert await check(db, email) == {}

    await db.execute(
        """
        INSERT INTO disputes (provider, dispute_id, workflow_id, order_id, stage, status, reason,
                              amount_minor, currency, opened_at, updated_at)
        VALUES ('stripe', 'dp_H', 'chargeback:stripe:dp_H', 'ORD-H1', 'dispute',
                'needs_response', 'fraudulent', 1000, 'EUR', now(), now())
        """
    )
    await audit_store.insert_entry(
        db,
        AuditEntry(
            entry_id="return:RMA-H/requested",
            workflow_id="return:RMA-H",
            process="return",
            case_id="RMA-H",
            actor="customer",
            role=Role.SYSTEM,
            action="return_requested",
            occurred_at=NOW,
            order_id="ORD-H1",
        ),
    )
    await cases.upsert(
        db,
        CaseStatusInput(
            workflow_id="return:RMA-H",
            process="return",
            case_id="RMA-H",
            status="in_transit",
            updated_at=NOW,
        ),
    )
    await db.execute(
        """
        INSERT INTO campaigns (campaign_id, workflow_id, name, state, timezone, opens_at,
                               closes_at, legal_entities, currency, quota_back_on_return,
                               parameters, prepared_by)
        VALUES ('ES-H', 'campaign:ES-H', 'Sale', 'closed', 'Europe/Paris', now() - interval '9 d',
                now() - interval '2 d', '{Maison SAS}', 'EUR', true, '{}', 'mia')
        """
    )
    await ledger.record(
        db,
        idempotency_key="order-review:ORD-H1/capture",
        workflow_id="order-review:ORD-H1",
        order_id="ORD-H1",
        kind=PaymentOperationKind.CAPTURE,
        amount_minor=1000,
        currency="EUR",
        provider="simulated",
        provider_reference="sim-cap-H1",
    )
    assert await check(db, email) == {
        HoldKind.DISPUTE: ["stripe:dp_H"],
        HoldKind.RETURN: ["return:RMA-H"],
        HoldKind.CAMPAIGN: ["campaign:ES-H"],
        HoldKind.INVOICE_RETENTION: ["invoice:ORD-H1"],
    }

    # The cases close, the campaign is reconciled: only the invoice remains.
    await db.execute("UPDATE disputes SET closed_at = now(), status = 'won'")
    await db.execute("UPDATE cases SET status = 'refunded' WHERE workflow_id = 'return:RMA-H'")
    await db.execute(
        "INSERT INTO campaign_figures (campaign_id, closed_at, figures) "
        "VALUES ('ES-H', now(), '{}')"
    )
    assert await check(db, email) == {HoldKind.INVOICE_RETENTION: ["invoice:ORD-H1"]}
