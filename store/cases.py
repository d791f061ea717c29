"""The case list: the latest status of every process instance, for the
coordinator lists and the reports (exact and SQL-queryable, unlike visibility)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.audit import CaseRow, CaseStatusInput

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_COLUMNS = (
    "workflow_id, process, case_id, status, market, risk_band, awaited_role, due_at, "
    "amount_minor, currency, created_at, updated_at"
)


# Shared with store/steps.py, which upserts the case row in the same statement
# as the step's audit rows. EXCLUDED.* is the new snapshot, c.* the stored one.
ON_CONFLICT = """
        ON CONFLICT (workflow_id) DO UPDATE SET
            status       = EXCLUDED.status,
            market       = COALESCE(EXCLUDED.market, c.market),
            risk_band    = COALESCE(EXCLUDED.risk_band, c.risk_band),
            awaited_role = EXCLUDED.awaited_role,
            due_at       = EXCLUDED.due_at,
            amount_minor = COALESCE(EXCLUDED.amount_minor, c.amount_minor),
            currency     = COALESCE(EXCLUDED.currency, c.currency),
            updated_at   = EXCLUDED.updated_at
        WHERE c.updated_at <= EXCLUDED.updated_at"""


def upsert_args(case: CaseStatusInput) -> tuple[object, ...]:
    """The snapshot as query arguments, in column order, `updated_at` last."""
    return (
        case.workflow_id,
        case.process,
        case.case_id,
        case.status,
        case.market,
        case.risk_band,
        case.awaited_role,
        case.due_at,
        case.amount_minor,
        case.currency,
        case.updated_at,
    )


async def upsert(db: Executor, case: CaseStatusInput) -> bool:
    """Record the latest status; False when a newer status is already stored.

    Each call is a snapshot of what the workflow knows now: `awaited_role` and
    `due_at` are overwritten (None clears them when nobody is awaited), while
    market, risk band and amount keep their stored value when not given, so a
    status change need not repeat them. `updated_at` is workflow time, and an
    older snapshot never overwrites a newer one.
    """
    row = await db.fetchrow(
        f"""
        INSERT INTO cases AS c (workflow_id, process, case_id, status, market, risk_band,
                                awaited_role, due_at, amount_minor, currency,
                                created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
        {ON_CONFLICT}
        RETURNING workflow_id
        """,
        *upsert_args(case),
    )
    return row is not None


async def get(db: Executor, workflow_id: str) -> CaseRow | None:
    record = await db.fetchrow(f"SELECT {_COLUMNS} FROM cases WHERE workflow_id = $1", workflow_id)
    return CaseRow.model_validate(dict(record)) if record is not None else None


async def list_cases(
    db: Executor,
    process: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> Sequence[CaseRow]:
    """Cases, most recently changed first, optionally of one process and status."""
    records = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM cases
        WHERE ($1::text IS NULL OR process = $1) AND ($2::text IS NULL OR status = $2)
        ORDER BY updated_at DESC, workflow_id
        LIMIT $3
        """,
        process,
        status,
        limit,
    )
    return [CaseRow.model_validate(dict(r)) for r in records]


async def statuses(db: Executor, process: str, case_ids: Sequence[str]) -> dict[str, str]:
    """The latest status of each of these cases of `process` that has a row."""
    records = await db.fetch(
        "SELECT case_id, status FROM cases WHERE process = $1 AND case_id = ANY($2::text[])",
        process,
        [*case_ids],
    )
    return {r["case_id"]: r["status"] for r in records}


# `cases.list(pool, ...)` reads naturally at call sites. Bound last, and no
# annotation in this module says `list[...]`, so the builtin is not needed here.
list = list_cases
