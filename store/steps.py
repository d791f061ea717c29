"""One workflow step's local writes: audit rows, the case row and task changes.

A step is atomic in the store: a reader never sees the audit row of a decision
without its closed task. Most steps (every step of an auto-accepted review)
carry audit rows and the case row only; those go out as one statement, so the
step costs one round trip instead of BEGIN, the inserts, the upsert and
COMMIT. A step that also opens, updates or closes tasks, or writes an order's
outcome (store/outcomes.py), runs in a transaction.
"""

from __future__ import annotations

import asyncpg

from domain.audit import RecordTransitionInput
from domain.outcomes import OrderOutcome
from store import audit, campaign, cases, outcomes, tasks
from store.db import dumps

# Audit rows from parallel arrays (one per column), inserted in the order the
# workflow wrote them so ids follow workflow order within an instant; the case
# row, when $13 is not null, with the same rules as `cases.upsert`.
_RECORD_STEP = f"""
WITH new_entries AS (
    INSERT INTO audit_log (entry_id, workflow_id, process, case_id, actor, role,
                           action, reason, before, after, occurred_at, order_id)
    SELECT e.entry_id, e.workflow_id, e.process, e.case_id, e.actor, e.role,
           e.action, e.reason, e.before::jsonb, e.after::jsonb, e.occurred_at, e.order_id
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],
                $12::text[])
         WITH ORDINALITY AS e(entry_id, workflow_id, process, case_id, actor, role,
                              action, reason, before, after, occurred_at, order_id, seq)
    ORDER BY e.seq
    ON CONFLICT (entry_id) DO NOTHING
    RETURNING 1
), case_row AS (
    INSERT INTO cases AS c (workflow_id, process, case_id, status, market, risk_band,
                            awaited_role, due_at, amount_minor, currency,
                            created_at, updated_at)
    SELECT $13::text, $14::text, $15::text, $16::text, $17::text, $18::text,
           $19::text, $20::timestamptz, $21::bigint, $22::text, $23::timestamptz,
           $23::timestamptz
    WHERE $13::text IS NOT NULL
    {cases.ON_CONFLICT}
    RETURNING 1
)
SELECT (SELECT count(*) FROM new_entries), (SELECT count(*) FROM case_row)
"""


# The order never reached its buyer: cancelled by its review, or refunded
# after a failed delivery (the parcel back in stock).
_CANCELLED = frozenset(
    {OrderOutcome.CANCELLED, OrderOutcome.CANCELLED_FRAUD, OrderOutcome.REFUNDED}
)


async def record_step(pool: asyncpg.Pool, step: RecordTransitionInput) -> None:
    """Write `step`. Idempotent like its parts: entry ids are unique, an older
    case snapshot never overwrites a newer one, task changes apply once."""
    if step.open_tasks or step.update_tasks or step.close_tasks or step.outcomes:
        await _record_with_tasks(pool, step)
        return
    entries, case = step.entries, step.case
    await pool.execute(
        _RECORD_STEP,
        [e.entry_id for e in entries],
        [e.workflow_id for e in entries],
        [e.process for e in entries],
        [e.case_id for e in entries],
        [e.actor for e in entries],
        [e.role.value for e in entries],
        [e.action for e in entries],
        [e.reason for e in entries],
        [dumps(e.before) for e in entries],
        [dumps(e.after) for e in entries],
        [e.occurred_at for e in entries],
        [e.order_id for e in entries],
        *(cases.upsert_args(case) if case is not None else (None,) * 11),
    )


async def _record_with_tasks(pool: asyncpg.Pool, step: RecordTransitionInput) -> None:
    # Tasks are opened, then updated, then closed, so a step may do all three
    # to the same task.
    async with pool.acquire() as conn, conn.transaction():
        await audit.insert_entries(conn, step.entries)
        if step.case is not None:
            await cases.upsert(conn, step.case)
        for opening in step.open_tasks:
            await tasks.open(conn, opening)
        for change in step.update_tasks:
            await tasks.update(conn, change)
        for closing in step.close_tasks:
            await tasks.close(conn, closing)
        for outcome in step.outcomes:
            await outcomes.record(conn, outcome)
            if outcome.outcome in _CANCELLED:
                # An employee-sale order gives its quota back (issue 18);
                # nothing for any other order.
                await campaign.release_cancelled_order(conn, outcome.order_id)
