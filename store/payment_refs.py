"""Which order a provider's payment reference belongs to.

Stripe and Adyen name a disputed payment by its ids only (a Stripe Dispute's
`charge` and `payment_intent`, an Adyen notification's `originalReference`);
Steward resolves the order from the references it holds: the authorisation
reference each order arrives with (recorded by scoring, store.signals) and
the provider references of the ledger's captures, voids and refunds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.chargeback import DisputedOrder
from domain.common import StewardModel

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

AUTHORISATION = "authorisation"


class ResolvedPayment(StewardModel):
    order_id: str
    reference: str  # the reference that matched
    source: str  # payment_references | payment_ledger


async def record(
    db: Executor, *, reference: str, order_id: str, provider: str, kind: str = AUTHORISATION
) -> bool:
    """Remember that `reference` is a payment of `order_id`; False when it was
    known already (the first order it was recorded for keeps it)."""
    row = await db.fetchrow(
        """
        INSERT INTO payment_references (reference, order_id, provider, kind)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (reference) DO NOTHING
        RETURNING reference
        """,
        reference,
        order_id,
        provider,
        kind,
    )
    return row is not None


async def resolve(db: Executor, references: Sequence[str]) -> ResolvedPayment | None:
    """The order of the first of `references` (in the caller's order of
    preference) that Steward holds, or None."""
    refs = [r for r in dict.fromkeys(references) if r]
    if not refs:
        return None
    row = await db.fetchrow(
        """
        WITH wanted AS (
            SELECT reference, position
            FROM unnest($1::text[]) WITH ORDINALITY AS w(reference, position)
        ), found AS (
            SELECT w.position, r.reference, r.order_id, 'payment_references' AS source, 0 AS rank
            FROM wanted w JOIN payment_references r ON r.reference = w.reference
            UNION ALL
            SELECT w.position, l.provider_reference, l.order_id, 'payment_ledger', 1
            FROM wanted w JOIN payment_ledger l ON l.provider_reference = w.reference
        )
        SELECT reference, order_id, source FROM found ORDER BY position, rank LIMIT 1
        """,
        refs,
    )
    return ResolvedPayment.model_validate(dict(row)) if row is not None else None


async def order_known(db: Executor, order_id: str) -> bool:
    """Whether Steward has seen this order: reviewed (scored), or holding a
    payment reference or a ledger movement for it."""
    value = await db.fetchval(
        """
        SELECT EXISTS (SELECT 1 FROM orders_seen WHERE order_id = $1)
            OR EXISTS (SELECT 1 FROM payment_references WHERE order_id = $1)
            OR EXISTS (SELECT 1 FROM payment_ledger WHERE order_id = $1)
        """,
        order_id,
    )
    return bool(value)


async def disputed_order(db: Executor, order_id: str) -> DisputedOrder | None:
    """The market and amount of an order Steward reviewed; None when it never
    reviewed it (an order known only by a payment reference)."""
    row = await db.fetchrow(
        "SELECT market, amount_minor, currency FROM orders_seen WHERE order_id = $1", order_id
    )
    if row is None:
        return None
    return DisputedOrder(
        market=row["market"], amount_minor=row["amount_minor"], currency=row["currency"].strip()
    )


async def references_of(db: Executor, order_id: str) -> list[str]:
    records = await db.fetch(
        """
        SELECT reference FROM payment_references WHERE order_id = $1
        UNION
        SELECT provider_reference FROM payment_ledger WHERE order_id = $1
        ORDER BY 1
        """,
        order_id,
    )
    return [str(r["reference"]) for r in records]
