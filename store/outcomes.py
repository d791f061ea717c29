"""Order outcomes and the customer counters they move (domain/outcomes.py).

`record` is called inside a step's local write (store/steps.py) and by the
carrier-event intake for deliveries. One statement per outcome: the row in
`order_outcomes` is inserted under its write key, and only when it is new does
the order's outcome on `orders_seen` move and do the customer's counters grow,
so the same write applied twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.outcomes import OUTCOME_EFFECTS, Counter, OrderOutcome, OutcomeWrite

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_COUNTERS = tuple(Counter)
_COLUMNS = ", ".join(c.value for c in _COUNTERS)
_PARAMS = ", ".join(f"${i}::integer" for i in range(10, 10 + len(_COUNTERS)))
_ADD = ",\n            ".join(f"{c.value} = h.{c.value} + EXCLUDED.{c.value}" for c in _COUNTERS)

_RECORD = f"""
WITH new AS (
    INSERT INTO order_outcomes (write_key, order_id, customer_id, outcome, process,
                                amount_minor, currency, occurred_at)
    SELECT $1, $2, (SELECT customer_id FROM orders_seen WHERE order_id = $2), $3, $4,
           $5, $6, $7
    ON CONFLICT (write_key) DO NOTHING
    RETURNING customer_id
), seen AS (
    UPDATE orders_seen SET outcome = $3, outcome_rank = $8, outcome_at = $7
    WHERE order_id = $2 AND EXISTS (SELECT 1 FROM new)
      AND COALESCE(outcome_rank, -1) <= $8
    RETURNING 1
), history AS (
    INSERT INTO customer_history AS h (customer_id, {_COLUMNS})
    SELECT customer_id, {_PARAMS} FROM new
    WHERE customer_id IS NOT NULL AND $9::boolean
    ON CONFLICT (customer_id) DO UPDATE SET
            {_ADD},
            updated_at = now()
    RETURNING 1
), returned_value AS (
    INSERT INTO customer_returned_value AS v (customer_id, currency, amount_minor)
    SELECT customer_id, $6, $5 FROM new
    WHERE customer_id IS NOT NULL AND ${10 + len(_COUNTERS)}::boolean
    ON CONFLICT (customer_id, currency) DO UPDATE
        SET amount_minor = v.amount_minor + EXCLUDED.amount_minor
    RETURNING 1
)
SELECT (SELECT count(*) FROM new) AS new_rows,
       (SELECT count(*) FROM history) AS counted
"""


async def record(db: Executor, write: OutcomeWrite) -> bool:
    """Apply `write` once; True when it was new (False: already applied)."""
    effect = OUTCOME_EFFECTS[write.outcome]
    deltas = [1 if c in effect.counters else 0 for c in _COUNTERS]
    adds_value = effect.adds_returned_value and write.amount_minor > 0 and bool(write.currency)
    row = await db.fetchrow(
        _RECORD,
        write.key,
        write.order_id,
        write.outcome.value,
        write.process,
        write.amount_minor,
        write.currency,
        write.occurred_at,
        effect.rank,
        any(deltas),
        *deltas,
        adds_value,
    )
    assert row is not None
    return bool(row["new_rows"])


@dataclass(frozen=True)
class CustomerCounters:
    completed_orders: int = 0
    returns: int = 0
    chargebacks: int = 0
    chargebacks_won: int = 0
    chargebacks_lost: int = 0
    fraud_declines: int = 0
    failed_deliveries: int = 0
    # currency -> minor units
    returned_value: dict[str, int] | None = None


async def customer_counters(db: Executor, customer_id: str) -> CustomerCounters:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM customer_history WHERE customer_id = $1", customer_id
    )
    values = await db.fetch(
        "SELECT currency, amount_minor FROM customer_returned_value WHERE customer_id = $1",
        customer_id,
    )
    returned = {str(v["currency"]).strip(): int(v["amount_minor"]) for v in values}
    if row is None:
        return CustomerCounters(returned_value=returned)
    return CustomerCounters(
        **{c.value: int(row[c.value]) for c in _COUNTERS}, returned_value=returned
    )


@dataclass(frozen=True)
class PriorOrders:
    """Earlier undisputed, delivered orders of the same customer."""

    count: int
    first_placed_at: datetime | None
    # currency -> minor units
    totals: dict[str, int]


async def prior_undisputed_delivered(
    db: Executor, customer_id: str, order_id: str, before: datetime
) -> PriorOrders:
    """Orders of `customer_id` placed before `before` (this one excluded) whose
    outcome is `delivered` (not returned, refunded or charged back since) and
    that no dispute names."""
    rows = await db.fetch(
        """
        SELECT o.currency, count(*) AS n, min(o.placed_at) AS first_at,
               sum(o.amount_minor) AS total
        FROM orders_seen o
        WHERE o.customer_id = $1 AND o.order_id <> $2 AND o.placed_at < $3
          AND o.outcome = $4
          AND NOT EXISTS (SELECT 1 FROM disputes d WHERE d.order_id = o.order_id)
        GROUP BY o.currency
        ORDER BY o.currency
        """,
        customer_id,
        order_id,
        before,
        OrderOutcome.DELIVERED.value,
    )
    firsts = [r["first_at"] for r in rows]
    return PriorOrders(
        count=sum(int(r["n"]) for r in rows),
        first_placed_at=min(firsts) if firsts else None,
        totals={str(r["currency"]).strip(): int(r["total"]) for r in rows},
    )


async def outcomes_of(db: Executor, order_id: str) -> list[tuple[str, str, datetime]]:
    """(outcome, process, occurred_at) of every write on `order_id`, oldest first."""
    rows = await db.fetch(
        "SELECT outcome, process, occurred_at FROM order_outcomes WHERE order_id = $1 "
        "ORDER BY occurred_at, write_key",
        order_id,
    )
    return [(r["outcome"], r["process"], r["occurred_at"]) for r in rows]
