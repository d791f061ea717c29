"""Bookings made through a carrier API without idempotency keys (see
store/migrations/0008_carrier_bookings.sql). Each function is one short
statement: nothing holds a connection while the provider works."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from store.deliveries import Executor


@dataclass(frozen=True)
class Booking:
    idempotency_key: str
    provider: str
    kind: str
    provider_ref: str | None
    result: dict[str, Any] | None


async def get(db: Executor, idempotency_key: str) -> Booking | None:
    row = await db.fetchrow(
        "SELECT idempotency_key, provider, kind, provider_ref, result "
        "FROM carrier_bookings WHERE idempotency_key = $1",
        idempotency_key,
    )
    if row is None:
        return None
    result = row["result"]
    if isinstance(result, str):
        result = json.loads(result)
    return Booking(
        idempotency_key=row["idempotency_key"],
        provider=row["provider"],
        kind=row["kind"],
        provider_ref=row["provider_ref"],
        result=result,
    )


async def start(db: Executor, *, idempotency_key: str, provider: str, kind: str) -> None:
    """The booking's row, before the provider is called (the first one stays)."""
    await db.execute(
        "INSERT INTO carrier_bookings (idempotency_key, provider, kind) VALUES ($1, $2, $3) "
        "ON CONFLICT (idempotency_key) DO NOTHING",
        idempotency_key,
        provider,
        kind,
    )


async def claim_attempt(db: Executor, idempotency_key: str, lease: timedelta) -> bool:
    """Take the booking for this attempt, unless another attempt took it less
    than `lease` ago (it may still be talking to the provider) or it is done."""
    claimed = await db.fetchval(
        """
        UPDATE carrier_bookings SET attempt_at = now()
        WHERE idempotency_key = $1 AND result IS NULL
          AND (attempt_at IS NULL OR attempt_at < now() - $2::interval)
        RETURNING true
        """,
        idempotency_key,
        lease,
    )
    return bool(claimed)


async def release_attempt(db: Executor, idempotency_key: str) -> None:
    """The attempt ended: the next one may go at once."""
    await db.execute(
        "UPDATE carrier_bookings SET attempt_at = NULL WHERE idempotency_key = $1",
        idempotency_key,
    )


async def set_ref(db: Executor, idempotency_key: str, provider_ref: str) -> None:
    await db.execute(
        "UPDATE carrier_bookings SET provider_ref = $2 WHERE idempotency_key = $1",
        idempotency_key,
        provider_ref,
    )


async def complete(
    db: Executor, idempotency_key: str, provider_ref: str, result: dict[str, Any]
) -> None:
    """Record the outcome once; a later completion of the same key changes nothing."""
    await db.execute(
        "UPDATE carrier_bookings SET provider_ref = $2, result = $3, completed_at = now() "
        "WHERE idempotency_key = $1 AND result IS NULL",
        idempotency_key,
        provider_ref,
        result,
    )
