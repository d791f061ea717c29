"""An erasure also erases the identity hashes scoring keeps outside the
personal-data store (issue 21, store/identity_erasure.py, migration 0023):
the email and shipping-address hashes of the person's orders in
`orders_seen` (their own and an older order with the same email that the
store never held), their block and allow list entries, the simulated
notifier's recipient hash; another customer's rows stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
from temporalio.testing import ActivityEnvironment

from activities.privacy import PrivacyActivities
from activities.simulated import SimulatedNotifier
from domain.payments import PaymentOperationKind
from domain.privacy_request import CheckHoldsInput, EraseInput, HoldKind, Jurisdiction
from domain.risk_rules import IdentityKind, identity_hash
from store import ledger, order_subjects, personal_data, signals
from store import simulated as sim_store
from tests.factories import make_order


async def _erase(db: asyncpg.Pool, subject_id: str) -> int:
    result = await ActivityEnvironment().run(
        PrivacyActivities(db, SimulatedNotifier(db)).erase_personal_data,
        EraseInput(request_id="PR-IH", workflow_id="privacy-request:PR-IH", erase=[subject_id]),
    )
    return result.identity_hashes


async def test_erasure_removes_the_persons_identity_hashes(db_pool: asyncpg.Pool) -> None:
    db = db_pool
    unique = uuid.uuid4().hex[:10]
    email = f"Erase.Me.{unique}@Example.com"
    street = f"{unique} rue de Rivoli"
    mine = make_order(
        f"IH-A-{unique}",
        customer={"customer_id": f"C-{unique}", "email": email},
        shipping_address={"line1": street},
        device={"device_id": f"dev-A-{unique}"},
    )
    # An older order with the same email, scored before orders went to the
    # store: no subject references it, its hash still goes.
    older = make_order(
        f"IH-O-{unique}",
        customer={"customer_id": f"C-{unique}", "email": email.lower()},
        shipping_address={"line1": f"{unique} quai Voltaire"},
        device={"device_id": f"dev-O-{unique}"},
    )
    other = make_order(
        f"IH-X-{unique}",
        customer={"customer_id": f"CX-{unique}", "email": f"someone.{unique}@example.com"},
        shipping_address={"line1": f"{unique} rue du Bac"},
        device={"device_id": f"dev-X-{unique}"},
    )
    for order in (mine, older, other):
        await signals.record_and_load_signals(db, order)
    sid, _ = await order_subjects.put_order(db, mine)
    await signals.add_to_list(db, "block", "email", email, "chargeback", "tests")
    await signals.add_to_list(db, "allow", "address", mine.shipping_address, "vip", "tests")
    await signals.add_to_list(db, "block", "email", other.customer.email, "fraud", "tests")
    await sim_store.insert_notification(
        db,
        message_id=f"IH-M-{unique}",
        order_id=mine.order_id,
        template="order_cancelled",
        locale="en",
        recipient_hash=identity_hash(IdentityKind.EMAIL, email),
    )

    async def row(order_id: str) -> asyncpg.Record:
        record = await db.fetchrow(
            "SELECT email_hash, address_hash, card_hash, amount_minor FROM orders_seen "
            "WHERE order_id = $1",
            order_id,
        )
        assert record is not None
        return record

    before = await row(mine.order_id)
    assert before["email_hash"] == identity_hash(IdentityKind.EMAIL, email)

    assert await _erase(db, sid) == 5  # 2 orders_seen rows, 2 list entries, 1 message

    for order_id in (mine.order_id, older.order_id):
        after = await row(order_id)
        assert after["email_hash"] is None and after["address_hash"] is None
        # What the velocity and the reports still need stays.
        assert after["card_hash"] and after["amount_minor"] == mine.payment.amount_minor
    hashes = [
        identity_hash(IdentityKind.EMAIL, email),
        identity_hash(IdentityKind.ADDRESS, mine.shipping_address),
    ]
    assert not await db.fetchval(
        "SELECT count(*) FROM risk_lists WHERE value_hash = ANY($1::text[])", hashes
    )
    assert not await db.fetchval(
        "SELECT count(*) FROM sim_notifications WHERE recipient_hash = ANY($1::text[])", hashes
    )
    # Another customer's row and list entry stay.
    kept = await row(other.order_id)
    assert kept["email_hash"] == identity_hash(IdentityKind.EMAIL, other.customer.email)
    assert kept["address_hash"] == identity_hash(IdentityKind.ADDRESS, other.shipping_address)
    assert await db.fetchval(
        "SELECT count(*) FROM risk_lists WHERE value_hash = $1",
        identity_hash(IdentityKind.EMAIL, other.customer.email),
    )
    # A new order with the same email finds no history, and a second erasure
    # changes nothing.
    again = make_order(
        f"IH-N-{unique}",
        customer={"customer_id": f"CN-{unique}", "email": email},
        device={"device_id": f"dev-N-{unique}"},
    )
    found = await signals.load_signals(db, again)
    assert found.orders_24h_by_email == 0 and not found.blocklisted
    assert await _erase(db, sid) == 0


async def test_an_order_subject_keeps_its_invoice_identity_under_retention(
    db_pool: asyncpg.Pool,
) -> None:
    """The subject an order review's intake (and fulfilment) keeps an order
    under names its fields without the shipment's `order.` prefix; a captured
    payment's invoice retention still holds its billing identity, and a
    partial erasure keeps exactly that."""
    db = db_pool
    unique = uuid.uuid4().hex[:10]
    email = f"invoice.{unique}@example.com"
    order = make_order(
        f"IH-I-{unique}",
        customer={"customer_id": f"CI-{unique}", "email": email, "full_name": f"Ines {unique}"},
        billing_address={"line1": f"{unique} rue Cambon"},
        device={"device_id": f"dev-I-{unique}"},
    )
    sid, _ = await order_subjects.put_order(db, order)
    await ledger.record(
        db,
        idempotency_key=f"order-review:{order.order_id}/capture",
        workflow_id=f"order-review:{order.order_id}",
        order_id=order.order_id,
        kind=PaymentOperationKind.CAPTURE,
        amount_minor=order.payment.amount_minor,
        currency=order.currency,
        provider="simulated",
        provider_reference=f"sim-cap-{unique}",
    )
    holds = await ActivityEnvironment().run(
        PrivacyActivities(db, SimulatedNotifier(db)).check_legal_holds,
        CheckHoldsInput(
            request_id="PR-INV",
            match_fingerprint=personal_data.fingerprint(email),
            subject_ids=[],
            jurisdiction=Jurisdiction.EU,
            invoice_retention=timedelta(days=3653),
        ),
    )
    assert [(h.kind, h.subject_ids) for h in holds.holds] == [(HoldKind.INVOICE_RETENTION, [sid])]
    await ActivityEnvironment().run(
        PrivacyActivities(db, SimulatedNotifier(db)).erase_personal_data,
        EraseInput(
            request_id="PR-INV", workflow_id="privacy-request:PR-INV", retain_invoice_fields=[sid]
        ),
    )
    kept = await personal_data.get_subject(db, sid)
    billing = order.billing_address
    assert kept == {
        "customer.full_name": order.customer.full_name,
        "billing_address.line1": billing.line1,
        "billing_address.line2": billing.line2,
        "billing_address.city": billing.city,
        "billing_address.postal_code": billing.postal_code,
        "billing_address.region": billing.region,
    }
    # The email, phone, shipping address and IP are gone.
    assert email not in str(kept) and order.device.ip_address not in str(kept)
