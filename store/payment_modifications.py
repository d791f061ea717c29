"""Modifications a payment provider answers asynchronously (Adyen's captures,
cancels and refunds), with the task token of the activity waiting for the
outcome. See store/migrations/0007_payment_modifications.sql.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg

from domain.payments import PaymentOperationKind
from store.ledger import Executor


class ModificationStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    REFUSED = "refused"


_COLUMNS = (
    "provider, psp_reference, idempotency_key, workflow_id, order_id, kind, amount_minor, "
    "currency, authorisation_ref, task_token, requested_at, status, outcome_event, "
    "outcome_reason, settled_at, notified_value, notified_currency"
)


@dataclass(frozen=True)
class Modification:
    provider: str
    psp_reference: str
    # None on a row the outcome wrote before the activity did.
    idempotency_key: str | None
    workflow_id: str | None
    order_id: str | None
    kind: PaymentOperationKind | None
    amount_minor: int | None
    currency: str | None
    authorisation_ref: str | None
    task_token: bytes | None
    requested_at: datetime | None
    status: ModificationStatus
    outcome_event: str | None
    outcome_reason: str
    settled_at: datetime | None
    # The amount an outcome kept for later notified (provider's minor units).
    notified_value: int | None = None
    notified_currency: str | None = None

    @property
    def has_operation(self) -> bool:
        return self.idempotency_key is not None


def _row(record: asyncpg.Record) -> Modification:
    values: dict[str, Any] = dict(record)
    kind = values["kind"]
    token = values["task_token"]
    return Modification(
        **{
            **values,
            "kind": PaymentOperationKind(kind) if kind is not None else None,
            "task_token": bytes(token) if token is not None else None,
            "status": ModificationStatus(values["status"]),
        }
    )


async def by_key(db: Executor, provider: str, idempotency_key: str) -> Modification | None:
    """The modification an operation sent (a later attempt sends nothing again)."""
    record = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM payment_modifications "
        "WHERE provider = $1 AND idempotency_key = $2",
        provider,
        idempotency_key,
    )
    return _row(record) if record is not None else None


async def get(db: Executor, provider: str, psp_reference: str) -> Modification | None:
    record = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM payment_modifications WHERE provider = $1 AND psp_reference = $2",
        provider,
        psp_reference,
    )
    return _row(record) if record is not None else None


async def register(
    db: Executor,
    *,
    provider: str,
    psp_reference: str,
    idempotency_key: str,
    workflow_id: str,
    order_id: str,
    kind: PaymentOperationKind,
    amount_minor: int,
    currency: str,
    authorisation_ref: str,
    task_token: bytes,
) -> Modification:
    """The operation waits for this modification's outcome with `task_token`
    (the attempt's; a later attempt's replaces it). Returns the row as it is
    now: an outcome already recorded (by the webhook, before this) shows in
    its status."""
    record = await db.fetchrow(
        f"""
        INSERT INTO payment_modifications AS m
            (provider, psp_reference, idempotency_key, workflow_id, order_id, kind,
             amount_minor, currency, authorisation_ref, task_token, requested_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
        ON CONFLICT (provider, psp_reference) DO UPDATE
            SET idempotency_key = EXCLUDED.idempotency_key,
                workflow_id = EXCLUDED.workflow_id,
                order_id = EXCLUDED.order_id,
                kind = EXCLUDED.kind,
                amount_minor = EXCLUDED.amount_minor,
                currency = EXCLUDED.currency,
                authorisation_ref = EXCLUDED.authorisation_ref,
                task_token = EXCLUDED.task_token,
                requested_at = COALESCE(m.requested_at, EXCLUDED.requested_at)
        RETURNING {_COLUMNS}
        """,
        provider,
        psp_reference,
        idempotency_key,
        workflow_id,
        order_id,
        kind.value,
        amount_minor,
        currency,
        authorisation_ref,
        task_token,
    )
    assert record is not None  # INSERT ... ON CONFLICT DO UPDATE always returns the row
    return _row(record)


async def lock(db: Executor, provider: str, psp_reference: str) -> Modification | None:
    """The row, locked until the caller's transaction ends."""
    record = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM payment_modifications "
        "WHERE provider = $1 AND psp_reference = $2 FOR UPDATE",
        provider,
        psp_reference,
    )
    return _row(record) if record is not None else None


async def record_early_outcome(
    db: Executor,
    *,
    provider: str,
    psp_reference: str,
    status: ModificationStatus,
    outcome_event: str,
    outcome_reason: str,
    notified_value: int | None = None,
    notified_currency: str | None = None,
) -> bool:
    """An outcome for a modification no activity has recorded yet: kept for
    it, with the amount it notified. False when a row appeared meanwhile (the
    caller locks and settles it)."""
    inserted = await db.fetchval(
        """
        INSERT INTO payment_modifications
            (provider, psp_reference, status, outcome_event, outcome_reason, settled_at,
             notified_value, notified_currency)
        VALUES ($1, $2, $3, $4, $5, now(), $6, $7)
        ON CONFLICT (provider, psp_reference) DO NOTHING
        RETURNING true
        """,
        provider,
        psp_reference,
        status.value,
        outcome_event,
        outcome_reason,
        notified_value,
        notified_currency,
    )
    return bool(inserted)


async def refuse_settled(
    db: Executor, *, provider: str, psp_reference: str, outcome_reason: str
) -> bool:
    """A success kept for later turns out not to be one (its amount is not
    the requested amount): refused; False if it was not a success any more."""
    updated = await db.fetchval(
        """
        UPDATE payment_modifications SET status = 'refused', outcome_reason = $3
        WHERE provider = $1 AND psp_reference = $2 AND status = 'succeeded'
        RETURNING true
        """,
        provider,
        psp_reference,
        outcome_reason,
    )
    return bool(updated)


async def settle(
    db: Executor,
    *,
    provider: str,
    psp_reference: str,
    status: ModificationStatus,
    outcome_event: str,
    outcome_reason: str,
) -> bool:
    """Record the outcome of a pending modification; False if it was settled already."""
    updated = await db.fetchval(
        """
        UPDATE payment_modifications
        SET status = $3, outcome_event = $4, outcome_reason = $5, settled_at = now()
        WHERE provider = $1 AND psp_reference = $2 AND status = 'pending'
        RETURNING true
        """,
        provider,
        psp_reference,
        status.value,
        outcome_event,
        outcome_reason,
    )
    return bool(updated)


async def list_pending(db: Executor, provider: str, limit: int = 100) -> list[Modification]:
    """Modifications still waiting for their outcome, oldest first (operations)."""
    records = await db.fetch(
        f"SELECT {_COLUMNS} FROM payment_modifications "
        "WHERE provider = $1 AND status = 'pending' ORDER BY requested_at LIMIT $2",
        provider,
        limit,
    )
    return [_row(r) for r in records]
