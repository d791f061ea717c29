"""Refunds sent to the provider whose outcome is not in the ledger yet.

See store/migrations/0006_refunds_in_flight.sql: the row is written under the
order's refund lock before the provider call and deleted with the ledger row
that records the outcome, so the refund rule can count a refund in flight
without anyone holding a connection while the provider works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from store.ledger import Executor

_COLUMNS = "idempotency_key, workflow_id, order_id, amount_minor, currency, provider, started_at"


@dataclass(frozen=True)
class RefundInFlight:
    idempotency_key: str
    workflow_id: str
    order_id: str
    amount_minor: int
    currency: str
    provider: str
    started_at: datetime


async def start(
    db: Executor,
    *,
    idempotency_key: str,
    workflow_id: str,
    order_id: str,
    amount_minor: int,
    currency: str,
    provider: str,
) -> RefundInFlight:
    """The refund's row, written once: a later attempt of the same operation
    gets the row the first one wrote (the caller compares the amounts)."""
    record = await db.fetchrow(
        f"""
        INSERT INTO refunds_in_flight (idempotency_key, workflow_id, order_id, amount_minor,
                                       currency, provider)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        idempotency_key,
        workflow_id,
        order_id,
        amount_minor,
        currency,
        provider,
    )
    if record is None:
        # A statement of its own: its snapshot includes the row that conflicted.
        record = await db.fetchrow(
            f"SELECT {_COLUMNS} FROM refunds_in_flight WHERE idempotency_key = $1",
            idempotency_key,
        )
    if record is None:  # pragma: no cover - finish() runs under the same order lock
        raise RuntimeError(f"refund in flight {idempotency_key!r} vanished")
    return RefundInFlight(**dict(record))


async def other_refunds_minor(db: Executor, order_id: str, *, excluding: str) -> int:
    """What the order's other refunds in flight may take (any currency: the
    refund rule refuses a currency other than the captured one anyway)."""
    value = await db.fetchval(
        "SELECT COALESCE(sum(amount_minor), 0) FROM refunds_in_flight "
        "WHERE order_id = $1 AND idempotency_key <> $2",
        order_id,
        excluding,
    )
    return int(value or 0)


async def finish(db: Executor, idempotency_key: str) -> None:
    """The outcome is known (in the ledger, or refused by the provider)."""
    await db.execute("DELETE FROM refunds_in_flight WHERE idempotency_key = $1", idempotency_key)


async def list_for_order(db: Executor, order_id: str) -> list[RefundInFlight]:
    records = await db.fetch(
        f"SELECT {_COLUMNS} FROM refunds_in_flight WHERE order_id = $1 ORDER BY started_at",
        order_id,
    )
    return [RefundInFlight(**dict(r)) for r in records]
