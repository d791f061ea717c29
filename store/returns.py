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
from domain.returns import RELEASED_RETURN_STATUSES, ReturnLine

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_CASE_COLUMNS = (
    "workflow_id, process, case_id, status, market, risk_band, awaited_role, due_at, "
    "amount_minor, currency, created_at, updated_at"
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
