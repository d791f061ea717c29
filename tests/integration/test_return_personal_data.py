"""A return's personal values in the personal-data store (issue 21), on a real
PostgreSQL: what the edge keeps (store/returns.py keep_personal_values), and
that a privacy request finds it by the customer's email, holds it while the
return is open, exports it with its references, and that its erasure leaves
the return's messages with nobody to send to (and a restart refused)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from activities.privacy import PrivacyActivities
from activities.simulated import SimulatedNotifier
from domain.audit import AuditEntry, CaseStatusInput
from domain.common import Role
from domain.notifications import CustomerTemplate, NotifyCustomerInput
from domain.order_privacy import PLACEHOLDER_EMAIL, is_pseudonymised
from domain.privacy_request import CheckHoldsInput, HoldKind, Jurisdiction
from domain.returns import (
    CONTACT_EMAIL_FIELD,
    CustomerContact,
    OrderLine,
    Resolution,
    ReturnInput,
    ReturnLine,
    ReturnOrder,
    ReturnReason,
)
from store import audit as audit_store
from store import cases, order_subjects, personal_data, privacy_requests
from store import returns as returns_store
from tests.factories import make_order

NOW = datetime.now(UTC)


def exchange(unique: str, email: str) -> ReturnInput:
    return ReturnInput(
        rma_id=f"RMA-PD-{unique}",
        order=ReturnOrder(
            order_id=f"ORD-PD-{unique}",
            market="FR",
            currency="EUR",
            delivered_at=NOW - timedelta(days=3),
            lines=[OrderLine(sku="HB-1", name="Tote MM", unit_price_minor=245_000, quantity=1)],
            authorisation_ref=f"auth-{unique}",
        ),
        lines=[ReturnLine(sku="HB-1", quantity=1)],
        reason=ReturnReason.TOO_SMALL,
        resolution=Resolution.EXCHANGE,
        contact=CustomerContact(email=email, locale="fr"),
        requested_by="cs-julie",
        replacement=make_order(
            f"EXC-PD-{unique}",
            customer={"customer_id": f"C-{unique}", "email": email},
            shipping_address={"line1": f"{unique} rue du Bac"},
        ),
    )


async def test_a_returns_personal_values_are_found_held_exported_and_erased(
    db_pool: asyncpg.Pool,
) -> None:
    unique = uuid.uuid4().hex[:10]
    email = f"ines.{unique}@example.fr"
    request = exchange(unique, email)
    kept = await returns_store.keep_personal_values(db_pool, request)
    contact = returns_store.contact_subject_id(request.rma_id)
    assert kept.replacement is not None and request.replacement is not None
    replacement = order_subjects.order_subject_id(request.replacement.order_id)
    assert (kept.contact_subject_id, kept.replacement_subject_id) == (contact, replacement)
    assert str(kept.contact.email) == PLACEHOLDER_EMAIL and is_pseudonymised(kept.replacement)
    # A retried start rewrites the same subjects.
    again = await returns_store.keep_personal_values(db_pool, request)
    assert (again.contact_subject_id, again.replacement_subject_id) == (contact, replacement)
    # The review of the replacement reads its order back whole.
    restored = await order_subjects.load_order(db_pool, kept.replacement, replacement)
    assert restored == request.replacement

    # The return is open: a privacy request finds both subjects by the
    # customer's email and holds them.
    await audit_store.insert_entry(
        db_pool,
        AuditEntry(
            entry_id=f"return:{request.rma_id}/requested",
            workflow_id=f"return:{request.rma_id}",
            process="return",
            case_id=request.rma_id,
            actor="cs-julie",
            role=Role.OPS,
            action="return_requested",
            occurred_at=NOW,
            order_id=request.order.order_id,
        ),
    )
    await cases.upsert(
        db_pool,
        CaseStatusInput(
            workflow_id=f"return:{request.rma_id}",
            process="return",
            case_id=request.rma_id,
            status="in_transit",
            updated_at=NOW,
        ),
    )
    held = await ActivityEnvironment().run(
        PrivacyActivities(db_pool, SimulatedNotifier(db_pool)).check_legal_holds,
        CheckHoldsInput(
            request_id=f"PR-{unique}",
            match_fingerprint=personal_data.fingerprint(email),
            subject_ids=[],
            jurisdiction=Jurisdiction.EU,
            invoice_retention=timedelta(days=3653),
        ),
    )
    assert {contact, replacement} <= set(held.subject_ids)
    (hold,) = [h for h in held.holds if h.kind is HoldKind.RETURN]
    assert hold.reference == f"return:{request.rma_id}" and contact in hold.subject_ids

    export = await privacy_requests.build_export(db_pool, f"PR-{unique}", [contact], NOW)
    (subject,) = export.subjects
    assert subject.kind == "contact" and subject.fields == {CONTACT_EMAIL_FIELD: email}
    assert sorted(subject.references) == [
        ("order", request.order.order_id),
        ("return", request.rma_id),
    ]

    # Erased: the return's next message has nobody to go to, and the same
    # RMA cannot start again with the email (the API answers 409).
    assert await personal_data.erase_subject(db_pool, contact, reason="test")
    result = await ActivityEnvironment().run(
        NotificationActivities(SimulatedNotifier(db_pool), db_pool).notify_customer,
        NotifyCustomerInput(
            workflow_id=f"return:{request.rma_id}",
            message_id=f"return:{request.rma_id}/return_refunded",
            order_id=request.order.order_id,
            email=PLACEHOLDER_EMAIL,
            template=CustomerTemplate.RETURN_REFUNDED,
            subject_id=contact,
            email_field=CONTACT_EMAIL_FIELD,
        ),
    )
    assert result.delivered is False
    with pytest.raises(personal_data.SubjectErased):
        await returns_store.keep_personal_values(db_pool, request)
