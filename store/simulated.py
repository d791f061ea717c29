"""State of the simulated outside world: payment provider, warehouse, email.

A real provider keeps this on its side; the simulators in
`activities/simulated.py` keep it here, so the embedded stack and the tests
behave like the real thing across retries, restarts and several workers.
Nothing in Steward's own logic reads these tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


@dataclass(frozen=True)
class SimAuthorisation:
    authorisation_ref: str
    amount_minor: int
    currency: str
    captured_minor: int
    refunded_minor: int
    status: str  # authorised | captured | voided | expired
    authorised_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class SimOperation:
    idempotency_key: str
    kind: str
    authorisation_ref: str
    amount_minor: int
    currency: str
    provider_reference: str
    created_at: datetime


@dataclass(frozen=True)
class SimRelease:
    idempotency_key: str
    order_id: str
    release_id: str
    warehouse: str
    created_at: datetime


# -- payment provider -------------------------------------------------------


async def register_authorisation(
    db: Executor,
    *,
    authorisation_ref: str,
    amount_minor: int,
    currency: str,
    authorised_at: datetime,
    expires_at: datetime,
) -> bool:
    """The provider learns of an authorisation; False if it already knew it
    (the first registration wins, as a real authorisation cannot change)."""
    row = await db.fetchrow(
        """
        INSERT INTO sim_payment_authorisations
            (authorisation_ref, amount_minor, currency, authorised_at, expires_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (authorisation_ref) DO NOTHING
        RETURNING authorisation_ref
        """,
        authorisation_ref,
        amount_minor,
        currency,
        authorised_at,
        expires_at,
    )
    return row is not None


async def get_authorisation(
    db: Executor, authorisation_ref: str, *, for_update: bool = False
) -> SimAuthorisation | None:
    """`for_update` (inside a transaction) serialises operations on one
    authorisation, as the provider does."""
    lock = " FOR UPDATE" if for_update else ""
    record = await db.fetchrow(
        "SELECT authorisation_ref, amount_minor, currency, captured_minor, refunded_minor, "
        "status, authorised_at, expires_at FROM sim_payment_authorisations "
        f"WHERE authorisation_ref = $1{lock}",
        authorisation_ref,
    )
    return SimAuthorisation(**dict(record)) if record is not None else None


async def record_operation(
    db: Executor,
    *,
    idempotency_key: str,
    kind: str,
    authorisation_ref: str,
    amount_minor: int,
    currency: str,
    provider_reference: str,
    status: str,
    captured_minor: int,
    refunded_minor: int,
) -> None:
    """The operation and the authorisation's new totals, in one statement."""
    await db.execute(
        """
        WITH operation AS (
            INSERT INTO sim_payment_operations (idempotency_key, kind, authorisation_ref,
                                                amount_minor, currency, provider_reference)
            VALUES ($1, $2, $3, $4, $5, $6)
        )
        UPDATE sim_payment_authorisations
        SET status = $7, captured_minor = $8, refunded_minor = $9, updated_at = now()
        WHERE authorisation_ref = $3
        """,
        idempotency_key,
        kind,
        authorisation_ref,
        amount_minor,
        currency,
        provider_reference,
        status,
        captured_minor,
        refunded_minor,
    )


async def update_authorisation(
    db: Executor, authorisation_ref: str, *, status: str, captured_minor: int, refunded_minor: int
) -> None:
    await db.execute(
        """
        UPDATE sim_payment_authorisations
        SET status = $2, captured_minor = $3, refunded_minor = $4, updated_at = now()
        WHERE authorisation_ref = $1
        """,
        authorisation_ref,
        status,
        captured_minor,
        refunded_minor,
    )


async def get_operation(db: Executor, idempotency_key: str) -> SimOperation | None:
    record = await db.fetchrow(
        "SELECT idempotency_key, kind, authorisation_ref, amount_minor, currency, "
        "provider_reference, created_at FROM sim_payment_operations WHERE idempotency_key = $1",
        idempotency_key,
    )
    return SimOperation(**dict(record)) if record is not None else None


async def list_operations(db: Executor, authorisation_ref: str) -> list[SimOperation]:
    records = await db.fetch(
        "SELECT idempotency_key, kind, authorisation_ref, amount_minor, currency, "
        "provider_reference, created_at FROM sim_payment_operations "
        "WHERE authorisation_ref = $1 ORDER BY created_at, idempotency_key",
        authorisation_ref,
    )
    return [SimOperation(**dict(r)) for r in records]


# -- warehouse ----------------------------------------------------------------


async def insert_release(
    db: Executor,
    *,
    idempotency_key: str,
    order_id: str,
    release_id: str,
    warehouse: str,
    destination: str,
    items: list[dict[str, Any]],
) -> SimRelease:
    """Record a release once; a repeated key returns the first one."""
    record = await db.fetchrow(
        """
        INSERT INTO sim_warehouse_releases (idempotency_key, order_id, release_id, warehouse,
                                            destination, items)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING idempotency_key, order_id, release_id, warehouse, created_at
        """,
        idempotency_key,
        order_id,
        release_id,
        warehouse,
        destination,
        items,
    )
    if record is not None:
        return SimRelease(**dict(record))
    release = await get_release(db, idempotency_key)
    assert release is not None  # there before: the key conflicted
    return release


async def get_release(db: Executor, idempotency_key: str) -> SimRelease | None:
    record = await db.fetchrow(
        "SELECT idempotency_key, order_id, release_id, warehouse, created_at "
        "FROM sim_warehouse_releases WHERE idempotency_key = $1",
        idempotency_key,
    )
    return SimRelease(**dict(record)) if record is not None else None


# -- notifications ------------------------------------------------------------


async def insert_notification(
    db: Executor,
    *,
    message_id: str,
    order_id: str,
    template: str,
    locale: str,
    recipient_hash: str,
) -> bool:
    """False when the message id was already sent."""
    row = await db.fetchrow(
        """
        INSERT INTO sim_notifications (message_id, order_id, template, locale, recipient_hash)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (message_id) DO NOTHING
        RETURNING message_id
        """,
        message_id,
        order_id,
        template,
        locale,
        recipient_hash,
    )
    return row is not None


async def count_notifications(db: Executor, order_id: str) -> int:
    value = await db.fetchval(
        "SELECT count(*) FROM sim_notifications WHERE order_id = $1", order_id
    )
    return int(value or 0)
