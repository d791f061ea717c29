"""Erasing a person's identity hashes outside the personal-data store
(issue 21, migration 0023).

Scoring keeps unkeyed SHA-256 hashes of a customer's email and shipping
address (domain/risk_rules.identity_hash) in `orders_seen` (velocity),
`risk_lists` (block and allow lists) and `sim_notifications` (the simulated
notifier). A hash of a known value is a lookup away from the value, so a
privacy request's erasure removes them with the subject's data key: the
privacy activity calls `erase_identity_hashes` while the subjects can still
be read, then destroys their keys (activities/privacy.py).

What is found: the hashes of the subjects' emails; the orders the subjects
reference and every order placed with one of those emails, with their
shipping-address hashes; the hashes of the subjects' complete addresses
(kind ``address``: fields with a country). A row matching any of them loses
that hash (another person's order to the same address loses its address
hash too: a velocity signal less, never a value kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.orders import Address
from domain.risk_rules import IdentityKind, identity_hash

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


@dataclass
class IdentityErasure:
    orders_seen: int = 0
    list_entries: list[tuple[str, str]] = field(default_factory=list)  # (list, kind)
    notifications: int = 0

    @property
    def total(self) -> int:
        return self.orders_seen + len(self.list_entries) + self.notifications


async def erase_identity_hashes(
    db: Executor,
    *,
    order_ids: Sequence[str],
    emails: Iterable[str] = (),
    addresses: Iterable[Address] = (),
) -> IdentityErasure:
    """Null the email and address hashes of `order_ids`' rows and of every
    row sharing them or the hashes of `emails` / `addresses`; delete the
    list entries holding one of them; null the simulated notifier's
    recipient hashes of the emails. Idempotent (a second call finds nothing)."""
    computed_emails = {identity_hash(IdentityKind.EMAIL, e) for e in emails}
    computed_addresses = {identity_hash(IdentityKind.ADDRESS, a) for a in addresses}

    async def work(conn: Executor) -> IdentityErasure:
        referenced = await conn.fetch(
            "SELECT email_hash FROM orders_seen WHERE order_id = ANY($1::text[])",
            list(order_ids),
        )
        email_hashes = sorted(
            computed_emails | {r["email_hash"] for r in referenced if r["email_hash"]}
        )
        # The person's orders: those the subjects reference and those placed
        # with one of their emails; their shipping addresses are the person's.
        rows = await conn.fetch(
            """
            SELECT address_hash FROM orders_seen
            WHERE (order_id = ANY($1::text[]) OR email_hash = ANY($2::text[]))
              AND address_hash IS NOT NULL
            """,
            list(order_ids),
            email_hashes,
        )
        address_hashes = sorted(computed_addresses | {r["address_hash"] for r in rows})
        result = IdentityErasure()
        seen = await conn.fetch(
            """
            UPDATE orders_seen
            SET email_hash = CASE WHEN email_hash = ANY($1::text[]) THEN NULL ELSE email_hash END,
                address_hash = CASE WHEN address_hash = ANY($2::text[])
                                    THEN NULL ELSE address_hash END,
                identity_erased_at = now()
            WHERE email_hash = ANY($1::text[]) OR address_hash = ANY($2::text[])
            RETURNING order_id
            """,
            email_hashes,
            address_hashes,
        )
        result.orders_seen = len(seen)
        entries = await conn.fetch(
            """
            DELETE FROM risk_lists
            WHERE (kind = 'email' AND value_hash = ANY($1::text[]))
               OR (kind = 'address' AND value_hash = ANY($2::text[]))
            RETURNING list, kind
            """,
            email_hashes,
            address_hashes,
        )
        result.list_entries = [(r["list"], r["kind"]) for r in entries]
        status = await conn.execute(
            "UPDATE sim_notifications SET recipient_hash = NULL "
            "WHERE recipient_hash = ANY($1::text[])",
            email_hashes,
        )
        result.notifications = int(status.rsplit(" ", 1)[-1])
        return result

    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            return await work(conn)
    async with db.transaction():
        return await work(db)
