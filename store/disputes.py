"""The dispute register, the provider events we accepted, and the simulated
provider / warehouse state behind disputes.

`open_dispute_for_order` is the contract other processes use: a refund, a
reshipment or a goodwill gesture must not run while the order is disputed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool

from domain.chargeback import DisputeRecordInput
from domain.common import StewardModel

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


class DisputeRow(StewardModel):
    provider: str
    dispute_id: str
    workflow_id: str
    order_id: str | None
    stage: str
    status: str
    reason: str
    provider_reason_code: str
    due_by: datetime | None
    amount_minor: int
    currency: str
    payment_ref: str
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


_COLUMNS = (
    "provider, dispute_id, workflow_id, order_id, stage, status, reason, provider_reason_code, "
    "due_by, amount_minor, currency, payment_ref, opened_at, updated_at, closed_at"
)


def _row(record: asyncpg.Record) -> DisputeRow:
    data = dict(record)
    data["currency"] = str(data["currency"]).strip()
    return DisputeRow.model_validate(data)


async def open_dispute_for_order(db: Executor, order_id: str) -> DisputeRow | None:
    """The order's open dispute (the one with the nearest deadline), or None."""
    record = await db.fetchrow(
        f"""
        SELECT {_COLUMNS} FROM disputes
        WHERE order_id = $1 AND closed_at IS NULL
        ORDER BY due_by NULLS LAST, opened_at
        LIMIT 1
        """,
        order_id,
    )
    return _row(record) if record is not None else None


async def chargeback_losses_minor(db: Executor, order_id: str, currency: str) -> int:
    """Money the card scheme already took back from us on this order: disputes
    lost, accepted or expired (unanswered in time: lost by default) past the
    pre-dispute stage (inquiries move no money). A refund on top of it would
    pay the customer twice."""
    total = await db.fetchval(
        """
        SELECT COALESCE(SUM(amount_minor), 0) FROM disputes
        WHERE order_id = $1 AND currency = $2 AND status IN ('lost', 'accepted', 'expired')
          AND stage <> 'pre_dispute'
        """,
        order_id,
        currency,
    )
    return int(total)


async def upsert(db: Executor, record: DisputeRecordInput) -> bool:
    """Record the workflow's view; an older snapshot never overwrites a newer
    one. A reopened dispute (Adyen second chargeback) clears closed_at."""
    row = await db.fetchrow(
        """
        INSERT INTO disputes AS d (provider, dispute_id, workflow_id, order_id, stage, status,
                                   reason, provider_reason_code, due_by, amount_minor, currency,
                                   payment_ref, opened_at, updated_at, closed_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13,
                CASE WHEN $14 THEN $13::timestamptz END)
        ON CONFLICT (provider, dispute_id) DO UPDATE SET
            order_id             = COALESCE(EXCLUDED.order_id, d.order_id),
            stage                = EXCLUDED.stage,
            status               = EXCLUDED.status,
            reason               = EXCLUDED.reason,
            provider_reason_code = EXCLUDED.provider_reason_code,
            due_by               = EXCLUDED.due_by,
            amount_minor         = EXCLUDED.amount_minor,
            currency             = EXCLUDED.currency,
            payment_ref          = EXCLUDED.payment_ref,
            updated_at           = EXCLUDED.updated_at,
            closed_at            = CASE WHEN $14 THEN COALESCE(d.closed_at, EXCLUDED.updated_at)
                                        ELSE NULL END
        WHERE d.updated_at <= EXCLUDED.updated_at
        RETURNING dispute_id
        """,
        record.provider.value,
        record.dispute_id,
        record.workflow_id,
        record.order_id,
        record.stage.value,
        record.status.value,
        record.reason.value,
        record.provider_reason_code,
        record.due_by,
        record.amount_minor,
        record.currency,
        record.payment_ref,
        record.updated_at,
        record.closed,
    )
    return row is not None


async def get(db: Executor, provider: str, dispute_id: str) -> DisputeRow | None:
    record = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM disputes WHERE provider = $1 AND dispute_id = $2",
        provider,
        dispute_id,
    )
    return _row(record) if record is not None else None


async def list_disputes(
    db: Executor, *, open_only: bool = True, order_id: str | None = None, limit: int = 100
) -> list[DisputeRow]:
    """Soonest provider deadline first; disputes without one last."""
    records = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM disputes
        WHERE ($1::boolean IS FALSE OR closed_at IS NULL)
          AND ($2::text IS NULL OR order_id = $2)
        ORDER BY due_by NULLS LAST, opened_at
        LIMIT $3
        """,
        open_only,
        order_id,
        limit,
    )
    return [_row(r) for r in records]


async def record_event(
    db: Executor,
    *,
    event_key: str,
    provider: str,
    dispute_id: str,
    event_type: str,
    occurred_at: datetime,
) -> bool:
    """True the first time this provider event is seen; a repeat counts the delivery.

    Inside a transaction the new row stays claimed until commit: a concurrent
    copy of the event waits on it, then counts as a repeat (or, when the
    first delivery rolled back, becomes the first)."""
    record = await db.fetchrow(
        """
        INSERT INTO dispute_events AS e (event_key, provider, dispute_id, event_type, occurred_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (event_key) DO UPDATE SET deliveries = e.deliveries + 1
        RETURNING deliveries
        """,
        event_key,
        provider,
        dispute_id,
        event_type,
        occurred_at,
    )
    return record is not None and int(record["deliveries"]) == 1


# -- simulated dispute providers ------------------------------------------------


async def sim_record_action(
    db: Executor,
    *,
    provider: str,
    dispute_id: str,
    action: str,
    idempotency_key: str,
    provider_reference: str,
    documents: list[dict[str, Any]],
) -> str:
    """Perform a provider-side action once; returns the reference of the first one."""
    await db.execute(
        """
        INSERT INTO sim_dispute_actions (provider, dispute_id, action, idempotency_key,
                                         provider_reference, documents)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT DO NOTHING
        """,
        provider,
        dispute_id,
        action,
        idempotency_key,
        provider_reference,
        documents,
    )
    reference = await db.fetchval(
        "SELECT provider_reference FROM sim_dispute_actions "
        "WHERE provider = $1 AND dispute_id = $2 AND action = $3",
        provider,
        dispute_id,
        action,
    )
    return str(reference)


async def sim_actions(db: Executor, provider: str, dispute_id: str) -> list[str]:
    records = await db.fetch(
        "SELECT action FROM sim_dispute_actions WHERE provider = $1 AND dispute_id = $2 "
        "ORDER BY created_at, action",
        provider,
        dispute_id,
    )
    return [str(r["action"]) for r in records]


# -- simulated warehouse: holds and CCTV -----------------------------------------


async def sim_hold_order(db: Executor, *, order_id: str, reason: str, source_ref: str) -> bool:
    """Hold an order at the warehouse; False when it was already held."""
    record = await db.fetchrow(
        """
        INSERT INTO sim_warehouse_holds (order_id, reason, source_ref) VALUES ($1, $2, $3)
        ON CONFLICT (order_id) DO NOTHING RETURNING order_id
        """,
        order_id,
        reason,
        source_ref,
    )
    return record is not None


async def sim_is_held(db: Executor, order_id: str) -> bool:
    value = await db.fetchval(
        "SELECT 1 FROM sim_warehouse_holds WHERE order_id = $1 AND released_at IS NULL", order_id
    )
    return value is not None


async def sim_release_hold(db: Executor, *, order_id: str, released_by: str) -> bool:
    record = await db.fetchrow(
        """
        UPDATE sim_warehouse_holds SET released_at = now(), released_by = $2
        WHERE order_id = $1 AND released_at IS NULL RETURNING order_id
        """,
        order_id,
        released_by,
    )
    return record is not None


async def sim_release_of_order(db: Executor, order_id: str) -> tuple[str, datetime] | None:
    """(warehouse, released at) of the order's release, if the warehouse has one."""
    record = await db.fetchrow(
        "SELECT warehouse, created_at FROM sim_warehouse_releases WHERE order_id = $1 "
        "ORDER BY created_at LIMIT 1",
        order_id,
    )
    return (str(record["warehouse"]), record["created_at"]) if record is not None else None


class CctvRequestRow(StewardModel):
    request_id: str
    order_id: str
    station: str
    footage_at: datetime
    reply_to: str
    status: str
    clip_ref: str | None
    requested_at: datetime
    answered_at: datetime | None


_CCTV_COLUMNS = (
    "request_id, order_id, station, footage_at, reply_to, status, clip_ref, requested_at, "
    "answered_at"
)


async def sim_insert_cctv_request(
    db: Executor,
    *,
    request_id: str,
    order_id: str,
    station: str,
    footage_at: datetime,
    reply_to: str,
) -> CctvRequestRow:
    """Record the request once; a repeat returns the first one."""
    await db.execute(
        """
        INSERT INTO sim_cctv_requests (request_id, order_id, station, footage_at, reply_to)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO NOTHING
        """,
        request_id,
        order_id,
        station,
        footage_at,
        reply_to,
    )
    row = await sim_get_cctv_request(db, request_id)
    assert row is not None
    return row


async def sim_get_cctv_request(db: Executor, request_id: str) -> CctvRequestRow | None:
    record = await db.fetchrow(
        f"SELECT {_CCTV_COLUMNS} FROM sim_cctv_requests WHERE request_id = $1", request_id
    )
    return CctvRequestRow.model_validate(dict(record)) if record is not None else None


async def sim_answer_cctv_request(
    db: Executor, *, request_id: str, available: bool, clip_ref: str | None
) -> CctvRequestRow | None:
    """Mark the request answered (first answer wins); None when unknown."""
    await db.execute(
        """
        UPDATE sim_cctv_requests SET status = $2, clip_ref = $3, answered_at = now()
        WHERE request_id = $1 AND status = 'requested'
        """,
        request_id,
        "delivered" if available else "unavailable",
        clip_ref,
    )
    return await sim_get_cctv_request(db, request_id)


async def sim_pending_cctv_requests(db: Executor, limit: int = 100) -> list[CctvRequestRow]:
    records = await db.fetch(
        f"SELECT {_CCTV_COLUMNS} FROM sim_cctv_requests WHERE status = 'requested' "
        "ORDER BY requested_at LIMIT $1",
        limit,
    )
    return [CctvRequestRow.model_validate(dict(r)) for r in records]
