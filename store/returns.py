"""Returns in the store: the quantities each RMA takes back, the return list,
and the simulated carrier labels, dispositions and stock behind the ports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool

from domain.audit import CaseRow
from domain.ids import RETURN
from domain.returns import (
    CONTACT_EMAIL_FIELD,
    RELEASED_RETURN_STATUSES,
    ReturnInput,
    ReturnLine,
    return_without_personal_values,
)
from store import order_subjects, personal_data

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_CASE_COLUMNS = (
    "workflow_id, process, case_id, status, market, risk_band, awaited_role, due_at, "
    "amount_minor, currency, created_at, updated_at"
)


# -- personal data (issue 21) -------------------------------------------------


def contact_subject_id(rma_id: str) -> str:
    """Deterministic: a retried start (or the same RMA sent twice) rewrites
    the same subject instead of making a second copy."""
    return personal_data.subject_id_for("contact", f"return/{rma_id}")


async def put_contact(db: Executor, *, rma_id: str, order_id: str, email: str) -> str:
    """Keep the email a return's messages go to; returns its subject id.
    Kind ``contact``, field ``email`` (fingerprinted: a privacy request on the
    customer's email finds it), owned by the order's subject, referencing the
    order (legal holds: an open return) and the return."""
    return await personal_data.put_subject(
        db,
        kind="contact",
        fields={CONTACT_EMAIL_FIELD: email},
        subject_id=contact_subject_id(rma_id),
        owner_id=order_subjects.order_subject_id(order_id),
        refs=[("order", order_id), ("return", rma_id)],
    )


def cancel_reason_subject_id(rma_id: str, event_id: str) -> str:
    return personal_data.subject_id_for("message", f"return/{rma_id}/{event_id}")


async def put_cancel_reason(
    db: Executor, *, rma_id: str, order_id: str, event_id: str, text: str
) -> str:
    """Keep the customer's reason for cancelling a return, in their words
    (kind ``message``, one per cancel event, owned by the return's contact
    subject, referencing the order and the return); returns its subject id."""
    return await personal_data.put_subject(
        db,
        kind="message",
        fields={"message": text},
        subject_id=cancel_reason_subject_id(rma_id, event_id),
        owner_id=contact_subject_id(rma_id),
        refs=[("order", order_id), ("return", rma_id)],
    )


async def keep_personal_values(db: Executor, request: ReturnInput) -> ReturnInput:
    """Store the return's personal values (the contact's email; an exchange's
    replacement order, under the order subject its review reads) and return
    the request without them, for Temporal. Idempotent (deterministic subject
    ids). Raises personal_data.SubjectErased, nothing started, when a subject
    was erased by a privacy request."""
    if request.contact_subject_id is not None:
        return request  # already kept
    replacement_subject: str | None = None
    if request.replacement is not None:
        replacement_subject, _ = await order_subjects.put_order(db, request.replacement)
        await personal_data.add_refs(db, replacement_subject, [("return", request.rma_id)])
    contact_subject = await put_contact(
        db,
        rma_id=request.rma_id,
        order_id=request.order.order_id,
        email=str(request.contact.email),
    )
    return return_without_personal_values(
        request,
        contact_subject_id=contact_subject,
        replacement_subject_id=replacement_subject,
    )


async def lock_order(conn: Executor, order_id: str) -> None:
    """Serialise eligibility checks of one order until the transaction ends, so
    two returns filed at once cannot both take the last unit back."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"returns:{order_id}"
    )


async def already_returned(db: Executor, order_id: str, *, exclude_rma: str) -> dict[str, int]:
    """Units per SKU that other, still-standing returns of the order take back."""
    records = await db.fetch(
        """
        SELECT l.sku, sum(l.quantity)::int AS quantity
        FROM return_lines l
        LEFT JOIN cases c ON c.workflow_id = l.workflow_id
        WHERE l.order_id = $1 AND l.rma_id <> $2
          AND (c.status IS NULL OR NOT (c.status = ANY($3::text[])))
        GROUP BY l.sku
        """,
        order_id,
        exclude_rma,
        sorted(s.value for s in RELEASED_RETURN_STATUSES),
    )
    return {r["sku"]: int(r["quantity"]) for r in records}


async def reserve_lines(
    db: Executor, *, rma_id: str, workflow_id: str, order_id: str, lines: Sequence[ReturnLine]
) -> None:
    for line in lines:
        await db.execute(
            """
            INSERT INTO return_lines (rma_id, workflow_id, order_id, sku, quantity)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (rma_id, sku) DO NOTHING
            """,
            rma_id,
            workflow_id,
            order_id,
            line.sku,
            line.quantity,
        )


async def list_returns(
    db: Executor, *, status: str | None = None, limit: int = 100
) -> list[CaseRow]:
    """Returns, most recently changed first (the case list, filtered to returns)."""
    records = await db.fetch(
        f"""
        SELECT {_CASE_COLUMNS} FROM cases
        WHERE process = $1 AND ($2::text IS NULL OR status = $2)
        ORDER BY updated_at DESC, workflow_id
        LIMIT $3
        """,
        RETURN,
        status,
        limit,
    )
    return [CaseRow.model_validate(dict(r)) for r in records]


# -- simulated carrier --------------------------------------------------------


@dataclass(frozen=True)
class SimLabel:
    idempotency_key: str
    rma_id: str
    carrier: str
    tracking_number: str
    label_url: str
    expires_at: datetime


async def insert_label(
    db: Executor,
    *,
    idempotency_key: str,
    rma_id: str,
    carrier: str,
    tracking_number: str,
    label_url: str,
    expires_at: datetime,
) -> SimLabel:
    """Create a label once; a repeated key returns the first one."""
    await db.execute(
        """
        INSERT INTO sim_return_labels (idempotency_key, rma_id, carrier, tracking_number,
                                       label_url, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (idempotency_key) DO NOTHING
        """,
        idempotency_key,
        rma_id,
        carrier,
        tracking_number,
        label_url,
        expires_at,
    )
    record = await db.fetchrow(
        "SELECT idempotency_key, rma_id, carrier, tracking_number, label_url, expires_at "
        "FROM sim_return_labels WHERE idempotency_key = $1",
        idempotency_key,
    )
    assert record is not None
    return SimLabel(**dict(record))


async def count_labels(db: Executor, rma_id: str) -> int:
    value = await db.fetchval("SELECT count(*) FROM sim_return_labels WHERE rma_id = $1", rma_id)
    return int(value or 0)


# -- simulated warehouse ------------------------------------------------------


@dataclass(frozen=True)
class SimDisposition:
    idempotency_key: str
    rma_id: str
    disposition: str
    warehouse: str
    reference: str


async def insert_disposition(
    db: Executor,
    *,
    idempotency_key: str,
    rma_id: str,
    order_id: str,
    disposition: str,
    warehouse: str,
    reference: str,
    items: list[dict[str, Any]],
) -> SimDisposition:
    await db.execute(
        """
        INSERT INTO sim_return_dispositions (idempotency_key, rma_id, order_id, disposition,
                                             warehouse, reference, items)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (idempotency_key) DO NOTHING
        """,
        idempotency_key,
        rma_id,
        order_id,
        disposition,
        warehouse,
        reference,
        items,
    )
    record = await db.fetchrow(
        "SELECT idempotency_key, rma_id, disposition, warehouse, reference "
        "FROM sim_return_dispositions WHERE idempotency_key = $1",
        idempotency_key,
    )
    assert record is not None
    return SimDisposition(**dict(record))


async def list_dispositions(db: Executor, rma_id: str) -> list[SimDisposition]:
    records = await db.fetch(
        "SELECT idempotency_key, rma_id, disposition, warehouse, reference "
        "FROM sim_return_dispositions WHERE rma_id = $1 ORDER BY created_at",
        rma_id,
    )
    return [SimDisposition(**dict(r)) for r in records]


async def set_stock(db: Executor, sku: str, available: int) -> None:
    await db.execute(
        """
        INSERT INTO sim_stock (sku, available) VALUES ($1, $2)
        ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available, updated_at = now()
        """,
        sku,
        available,
    )


async def stock_of(db: Executor, skus: Sequence[str]) -> dict[str, int]:
    records = await db.fetch(
        "SELECT sku, available FROM sim_stock WHERE sku = ANY($1::text[])", list(skus)
    )
    return {r["sku"]: int(r["available"]) for r in records}
