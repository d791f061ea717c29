"""What scoring knows about a customer, card, device and address.

Identities are stored only as `domain.risk_rules.identity_hash` values; this
module hashes raw values on the way in, so callers never store clear ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.orders import Address, Order
from domain.risk import CustomerSignals
from domain.risk_rules import (
    IdentityKind,
    OrderFingerprints,
    RiskList,
    identity_hash,
    normalise_postal_code,
    order_fingerprints,
)

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

VELOCITY_WINDOW = timedelta(hours=24)


async def load_signals(
    db: Executor,
    order: Order,
    *,
    as_of: datetime | None = None,
    fingerprints: OrderFingerprints | None = None,
) -> CustomerSignals:
    """The signals for `order`, as of `as_of` (default: when it was placed).

    Velocity counts the other orders placed in the 24 h up to `as_of`: the
    order itself is excluded by id, so recording it before or after loading,
    once or on every retry, gives the same numbers; orders placed after it do
    not count, so re-scoring later does too.
    """
    _, found = await _load(db, order, as_of, fingerprints, record=False)
    return found


async def record_and_load_signals(
    db: Executor, order: Order, fingerprints: OrderFingerprints | None = None
) -> tuple[bool, CustomerSignals]:
    """Remember the order for velocity (and its authorisation reference, so a
    dispute naming the payment finds the order) and load its signals as of its
    placement, in one statement: scoring runs for every order. The first
    value is False when the order was already recorded (a retried scoring,
    or the same order sent twice upstream); the signals are the same either
    way, since velocity never counts the order itself."""
    first_time, found = await _load(db, order, None, fingerprints, record=True)
    assert first_time is not None
    return first_time, found


# Velocity, history, list hits and forwarder matches in one query; with
# RECORD, the order is remembered for velocity in the same statement.
_SIGNALS = """
    {record}recent AS (
        SELECT order_id, email_hash, card_hash, device_hash, address_hash
        FROM orders_seen
        WHERE placed_at > $6 AND placed_at <= $7 AND order_id <> $5
          AND (email_hash = $1 OR card_hash = $2 OR device_hash = $3 OR address_hash = $4)
    ), velocity AS (
        SELECT
            count(*) FILTER (WHERE email_hash = $1)   AS by_email,
            count(*) FILTER (WHERE card_hash = $2)    AS by_card,
            count(*) FILTER (WHERE device_hash = $3)  AS by_device,
            count(*) FILTER (WHERE address_hash = $4) AS by_address,
            count(DISTINCT email_hash) FILTER (WHERE card_hash = $2 AND email_hash <> $1)
                AS emails_by_card
        FROM recent
    ), hits AS (
        SELECT DISTINCT l.list, l.kind
        FROM risk_lists l
        JOIN unnest($9::text[], $10::text[]) AS k(kind, value_hash)
          ON l.kind = k.kind AND l.value_hash = k.value_hash
    )
    SELECT v.*,
           COALESCE(h.completed_orders, 0) AS completed_orders,
           COALESCE(h.chargebacks, 0)      AS chargebacks,
           COALESCE(h.returns, 0)          AS returns,
           ARRAY(SELECT kind FROM hits WHERE list = $11) AS blocked_kinds,
           EXISTS (SELECT 1 FROM hits WHERE list = $12)  AS allowlisted,
           EXISTS (SELECT 1 FROM freight_forwarders WHERE address_hash = $4)
             OR EXISTS (SELECT 1 FROM freight_forwarder_postal_codes
                        WHERE country = $13 AND postal_code = $14) AS forwarder,
           {first_time} AS first_time
    FROM velocity v
    LEFT JOIN customer_history h ON h.customer_id = $8
"""
_LOAD_SIGNALS = "WITH " + _SIGNALS.format(record="", first_time="NULL::boolean")
_RECORD_AND_LOAD_SIGNALS = "WITH " + _SIGNALS.format(
    record="""seen AS (
        INSERT INTO orders_seen (order_id, customer_id, market, email_hash, card_hash,
                                 device_hash, address_hash, amount_minor, currency, placed_at,
                                 avs_result, cvv_result, three_ds)
        VALUES ($5, $8, $15, $1, $2, $3, $4, $16, $17, $18, $21, $22, $23)
        ON CONFLICT (order_id) DO NOTHING
        RETURNING order_id
    ), refs AS (
        -- The authorisation reference a dispute names the payment by
        -- (store.payment_refs resolves it back to this order).
        INSERT INTO payment_references (reference, order_id, provider, kind)
        VALUES ($20, $5, $19, 'authorisation')
        ON CONFLICT (reference) DO NOTHING
    ), """,
    first_time="EXISTS (SELECT 1 FROM seen)",
)


async def _load(
    db: Executor,
    order: Order,
    as_of: datetime | None,
    fingerprints: OrderFingerprints | None,
    *,
    record: bool,
) -> tuple[bool | None, CustomerSignals]:
    fp = fingerprints or order_fingerprints(order)
    end = as_of or order.placed_at
    start = end - VELOCITY_WINDOW
    kinds: list[str] = []
    hashes: list[str] = []
    for kind, values in fp.by_kind().items():
        for value in values:
            kinds.append(kind.value)
            hashes.append(value)
    args: list[object] = [
        fp.email_hash,
        fp.card_hash,
        fp.device_hash,
        fp.shipping_address_hash,
        order.order_id,
        start,
        end,
        order.customer.customer_id,
        kinds,
        hashes,
        RiskList.BLOCK.value,
        RiskList.ALLOW.value,
        order.shipping_address.country,
        normalise_postal_code(order.shipping_address.postal_code),
    ]
    if record:
        args += [
            order.market,
            order.total_minor,
            order.currency,
            order.placed_at,
            order.payment.provider,
            order.payment.authorisation_ref,
            order.payment.avs_result.value,
            order.payment.cvv_result.value,
            order.payment.three_ds.value,
        ]
    row = await db.fetchrow(_RECORD_AND_LOAD_SIGNALS if record else _LOAD_SIGNALS, *args)
    assert row is not None  # an aggregate without GROUP BY always returns one row
    kind_order = {k.value: i for i, k in enumerate(IdentityKind)}
    blocked = sorted(set(row["blocked_kinds"]), key=kind_order.__getitem__)
    found = CustomerSignals(
        orders_24h_by_email=row["by_email"],
        orders_24h_by_card=row["by_card"],
        orders_24h_by_device=row["by_device"],
        orders_24h_by_address=row["by_address"],
        emails_24h_by_card=row["emails_by_card"],
        completed_orders=row["completed_orders"],
        chargebacks=row["chargebacks"],
        returns=row["returns"],
        blocklisted=blocked,
        allowlisted=row["allowlisted"],
        freight_forwarder_address=row["forwarder"],
    )
    return row["first_time"], found


async def add_to_list(
    db: Executor,
    list_name: RiskList | str,
    kind: IdentityKind | str,
    raw_value: str | Address | None,
    reason: str,
    added_by: str,
    *,
    value_hash: str | None = None,
) -> str:
    """Put an email, card fingerprint, device id, address or customer id on the
    block or allow list; returns the stored hash. `value_hash`: the stored
    hash itself (a fingerprint from the listing) instead of the clear value.
    Adding again updates the reason and author."""
    risk_list = RiskList(list_name)
    identity = IdentityKind(kind)
    stored = _hash_of(identity, raw_value, value_hash)
    await db.execute(
        """
        INSERT INTO risk_lists (list, kind, value_hash, reason, added_by)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (list, kind, value_hash) DO UPDATE
            SET reason = EXCLUDED.reason, added_by = EXCLUDED.added_by, added_at = now()
        """,
        risk_list.value,
        identity.value,
        stored,
        reason,
        added_by,
    )
    return stored


def _hash_of(kind: IdentityKind, raw_value: str | Address | None, value_hash: str | None) -> str:
    if value_hash is not None:
        return value_hash
    if raw_value is None:
        raise ValueError("give the clear value or its value_hash")
    return identity_hash(kind, raw_value)


async def remove_from_list(
    db: Executor,
    list_name: RiskList | str,
    kind: IdentityKind | str,
    raw_value: str | Address | None,
    *,
    value_hash: str | None = None,
) -> bool:
    identity = IdentityKind(kind)
    status = await db.execute(
        "DELETE FROM risk_lists WHERE list = $1 AND kind = $2 AND value_hash = $3",
        RiskList(list_name).value,
        identity.value,
        _hash_of(identity, raw_value, value_hash),
    )
    return status != "DELETE 0"


async def add_freight_forwarder(
    db: Executor, address: Address | None, name: str, *, address_hash: str | None = None
) -> str:
    """A known forwarder's warehouse address (or its stored hash); returns the hash."""
    stored = _hash_of(IdentityKind.ADDRESS, address, address_hash)
    await db.execute(
        """
        INSERT INTO freight_forwarders (address_hash, name) VALUES ($1, $2)
        ON CONFLICT (address_hash) DO UPDATE SET name = EXCLUDED.name
        """,
        stored,
        name,
    )
    return stored


async def add_freight_forwarder_postal_code(
    db: Executor, country: str, postal_code: str, name: str
) -> None:
    """A postal code where forwarders cluster (any address there counts)."""
    await db.execute(
        """
        INSERT INTO freight_forwarder_postal_codes (country, postal_code, name) VALUES ($1, $2, $3)
        ON CONFLICT (country, postal_code) DO UPDATE SET name = EXCLUDED.name
        """,
        country.strip().upper(),
        normalise_postal_code(postal_code),
        name,
    )


async def set_customer_history(
    db: Executor,
    customer_id: str,
    *,
    completed_orders: int | None = None,
    chargebacks: int | None = None,
    returns: int | None = None,
    chargebacks_won: int | None = None,
    chargebacks_lost: int | None = None,
    fraud_declines: int | None = None,
    failed_deliveries: int | None = None,
) -> None:
    """Replace the given counters of a customer (a sync from order management,
    a correction by the risk team: clients/risk_admin.py); the others stay."""
    given = {
        "completed_orders": completed_orders,
        "chargebacks": chargebacks,
        "returns": returns,
        "chargebacks_won": chargebacks_won,
        "chargebacks_lost": chargebacks_lost,
        "fraud_declines": fraud_declines,
        "failed_deliveries": failed_deliveries,
    }
    names = [name for name in HISTORY_COLUMNS if given[name] is not None]
    if not names:
        raise ValueError("set_customer_history: no counter given")
    columns = ", ".join(names)
    values = ", ".join(f"${i}" for i in range(2, len(names) + 2))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names)
    await db.execute(
        f"""
        INSERT INTO customer_history (customer_id, {columns}) VALUES ($1, {values})
        ON CONFLICT (customer_id) DO UPDATE SET {updates}, updated_at = now()
        """,
        customer_id,
        *(given[name] for name in names),
    )


# ----------------------------------------------------------------------
# Reads and corrections for the risk team's API (clients/risk_admin.py):
# by fingerprint, so the caller never needs the clear value back.


async def get_list_entry(
    db: Executor, list_name: RiskList | str, kind: IdentityKind | str, value_hash: str
) -> asyncpg.Record | None:
    return await db.fetchrow(
        """
        SELECT list, kind, value_hash, reason, added_by, added_at FROM risk_lists
        WHERE list = $1 AND kind = $2 AND value_hash = $3
        """,
        RiskList(list_name).value,
        IdentityKind(kind).value,
        value_hash,
    )


async def list_entries(
    db: Executor, list_name: RiskList | str, kind: IdentityKind | str | None, limit: int
) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            """
            SELECT list, kind, value_hash, reason, added_by, added_at FROM risk_lists
            WHERE list = $1 AND ($2::text IS NULL OR kind = $2)
            ORDER BY added_at DESC, kind, value_hash LIMIT $3
            """,
            RiskList(list_name).value,
            IdentityKind(kind).value if kind is not None else None,
            limit,
        )
    )


async def get_freight_forwarder(db: Executor, address_hash: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT address_hash, name, added_at FROM freight_forwarders WHERE address_hash = $1",
        address_hash,
    )


async def remove_freight_forwarder(db: Executor, address_hash: str) -> bool:
    status = await db.execute(
        "DELETE FROM freight_forwarders WHERE address_hash = $1", address_hash
    )
    return status != "DELETE 0"


async def list_freight_forwarders(db: Executor, limit: int) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT address_hash, name, added_at FROM freight_forwarders "
            "ORDER BY added_at DESC, address_hash LIMIT $1",
            limit,
        )
    )


async def get_freight_forwarder_postal_code(
    db: Executor, country: str, postal_code: str
) -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT country, postal_code, name, added_at FROM freight_forwarder_postal_codes "
        "WHERE country = $1 AND postal_code = $2",
        country.strip().upper(),
        normalise_postal_code(postal_code),
    )


async def remove_freight_forwarder_postal_code(
    db: Executor, country: str, postal_code: str
) -> bool:
    status = await db.execute(
        "DELETE FROM freight_forwarder_postal_codes WHERE country = $1 AND postal_code = $2",
        country.strip().upper(),
        normalise_postal_code(postal_code),
    )
    return status != "DELETE 0"


async def list_freight_forwarder_postal_codes(db: Executor, limit: int) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT country, postal_code, name, added_at FROM freight_forwarder_postal_codes "
            "ORDER BY country, postal_code LIMIT $1",
            limit,
        )
    )


HISTORY_COLUMNS = (
    "completed_orders",
    "chargebacks",
    "chargebacks_won",
    "chargebacks_lost",
    "returns",
    "fraud_declines",
    "failed_deliveries",
)


async def get_customer_history(db: Executor, customer_id: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"SELECT {', '.join(HISTORY_COLUMNS)}, updated_at FROM customer_history "
        "WHERE customer_id = $1",
        customer_id,
    )


async def get_customer_returned_value(db: Executor, customer_id: str) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT currency, amount_minor FROM customer_returned_value WHERE customer_id = $1",
        customer_id,
    )
    return {row["currency"]: row["amount_minor"] for row in rows}
