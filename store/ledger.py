"""The payment ledger: every capture, void and refund the provider confirmed.

The unique idempotency key makes a retried activity land on the row it wrote
the first time instead of writing a second one.
"""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.payments import LedgerEntry, LedgerTotals, PaymentOperationKind

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_COLUMNS = (
    "idempotency_key, workflow_id, order_id, kind, amount_minor, currency, provider, "
    "provider_reference, recorded_at"
)


class LedgerConflictError(RuntimeError):
    """The key is already recorded for a different movement: a bug upstream, never
    something to paper over by keeping either version silently."""


def _entry(record: asyncpg.Record) -> LedgerEntry:
    return LedgerEntry.model_validate(dict(record))


async def get(db: Executor, idempotency_key: str) -> LedgerEntry | None:
    record = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM payment_ledger WHERE idempotency_key = $1", idempotency_key
    )
    return _entry(record) if record is not None else None


async def record(
    db: Executor,
    *,
    idempotency_key: str,
    workflow_id: str,
    order_id: str,
    kind: PaymentOperationKind,
    amount_minor: int,
    currency: str,
    provider: str,
    provider_reference: str,
) -> LedgerEntry:
    """Record a confirmed movement once; a repeat returns the stored row.

    Raises LedgerConflictError when the key is stored with another kind,
    amount, currency or provider reference.
    """
    inserted = await db.fetchrow(
        f"""
        INSERT INTO payment_ledger (idempotency_key, workflow_id, order_id, kind, amount_minor,
                                    currency, provider, provider_reference)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        idempotency_key,
        workflow_id,
        order_id,
        kind.value,
        amount_minor,
        currency,
        provider,
        provider_reference,
    )
    if inserted is not None:
        return _entry(inserted)
    existing = await get(db, idempotency_key)
    if existing is None:  # pragma: no cover - rows are never deleted
        raise LedgerConflictError(f"ledger row {idempotency_key!r} vanished")
    if (
        existing.kind is not kind
        or existing.amount_minor != amount_minor
        or existing.currency != currency
        or existing.provider_reference != provider_reference
    ):
        raise LedgerConflictError(
            f"idempotency key {idempotency_key!r} is recorded as {existing.kind} "
            f"{existing.amount_minor} {existing.currency} ({existing.provider_reference}), "
            f"not {kind} {amount_minor} {currency} ({provider_reference})"
        )
    return existing


async def list_for_order(db: Executor, order_id: str) -> list[LedgerEntry]:
    records = await db.fetch(
        f"SELECT {_COLUMNS} FROM payment_ledger WHERE order_id = $1 ORDER BY id", order_id
    )
    return [_entry(r) for r in records]


async def totals_for_order(db: Executor, order_id: str) -> LedgerTotals:
    """Captured and refunded sums for an order (one currency per order), and
    the refunds still in flight (sent, not final: `refund_pending_minor`). A row
    the provider undid after confirming it (payment_ledger_reversals: a capture
    or refund that failed after all, a refund that came back) does not count."""
    records = await db.fetch(
        """
        SELECT currency,
               COALESCE(sum(amount_minor) FILTER (WHERE kind = 'capture'), 0) AS captured,
               COALESCE(sum(amount_minor) FILTER (WHERE kind = 'refund'), 0)  AS refunded,
               bool_or(kind = 'void') AS voided
        FROM payment_ledger l
        WHERE order_id = $1
          AND NOT EXISTS (
              SELECT 1 FROM payment_ledger_reversals r
              WHERE r.idempotency_key = l.idempotency_key
          )
        GROUP BY currency
        """,
        order_id,
    )
    pending = int(
        await db.fetchval(
            "SELECT COALESCE(sum(amount_minor), 0) FROM refunds_in_flight WHERE order_id = $1",
            order_id,
        )
    )
    if not records:
        return LedgerTotals(order_id=order_id, currency=None, refund_pending_minor=pending)
    if len(records) > 1:
        # Summing EUR and USD would be meaningless; an order has one currency.
        currencies = ", ".join(sorted(r["currency"] for r in records))
        raise LedgerConflictError(f"order {order_id!r} has ledger rows in {currencies}")
    (row,) = records
    return LedgerTotals(
        order_id=order_id,
        currency=row["currency"],
        captured_minor=int(row["captured"]),
        refunded_minor=int(row["refunded"]),
        voided=bool(row["voided"]),
        refund_pending_minor=pending,
    )
