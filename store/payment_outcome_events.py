"""What a payment provider reports after a modification's first outcome, and
the ledger rows it undoes. See store/migrations/0010_payment_outcome_events.sql.

Adyen sends CAPTURE_FAILED or REFUND_FAILED when a capture or refund it had
reported successful fails after all, and REFUNDED_REVERSED when refunded money
comes back to the merchant. The ledger row stays (it was confirmed, and its
idempotency key must never be reused for another movement); a reversal row
takes it out of the order's totals (store.ledger.totals_for_order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from store.ledger import Executor


@dataclass(frozen=True)
class OutcomeEvent:
    provider: str
    event_key: str
    psp_reference: str
    event_code: str
    workflow_id: str | None
    order_id: str | None
    effect: str
    detail: str
    received_at: datetime


_COLUMNS = (
    "provider, event_key, psp_reference, event_code, workflow_id, order_id, effect, detail, "
    "received_at"
)


async def record(
    db: Executor,
    *,
    provider: str,
    event_key: str,
    psp_reference: str,
    event_code: str,
    workflow_id: str | None,
    order_id: str | None,
    effect: str,
    detail: str = "",
) -> bool:
    """Record the event once; False when it was recorded before (a redelivery)."""
    inserted = await db.fetchval(
        """
        INSERT INTO payment_outcome_events
            (provider, event_key, psp_reference, event_code, workflow_id, order_id, effect,
             detail)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (provider, event_key) DO NOTHING
        RETURNING true
        """,
        provider,
        event_key,
        psp_reference,
        event_code,
        workflow_id,
        order_id,
        effect,
        detail,
    )
    return bool(inserted)


async def list_for_order(db: Executor, order_id: str) -> list[OutcomeEvent]:
    records = await db.fetch(
        f"SELECT {_COLUMNS} FROM payment_outcome_events WHERE order_id = $1 "
        "ORDER BY received_at, event_key",
        order_id,
    )
    return [OutcomeEvent(**dict(r)) for r in records]


async def reverse(
    db: Executor, *, idempotency_key: str, reason: str, provider: str, event_key: str
) -> bool:
    """Take a confirmed ledger row out of its order's totals; False when it
    was reversed before (one reversal per row)."""
    inserted = await db.fetchval(
        """
        INSERT INTO payment_ledger_reversals (idempotency_key, reason, provider, event_key)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING true
        """,
        idempotency_key,
        reason,
        provider,
        event_key,
    )
    return bool(inserted)


async def reversed_keys(db: Executor, order_id: str) -> dict[str, str]:
    """The order's reversed ledger rows: idempotency key -> reason."""
    records = await db.fetch(
        """
        SELECT r.idempotency_key, r.reason FROM payment_ledger_reversals r
        JOIN payment_ledger l USING (idempotency_key)
        WHERE l.order_id = $1
        """,
        order_id,
    )
    return {r["idempotency_key"]: r["reason"] for r in records}
