"""Fulfilment's store: the released order (its personal values in the
personal-data store), the shipping addresses of address changes (one
personal-data subject each), the warehouse event intake, and the simulated
warehouse (WMS timeline, holds) and carrier intercepts.

Migration: store/migrations/0013_fulfilment.sql.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool

from domain.audit import AuditEntry, CaseStatusInput
from domain.common import Role
from domain.fulfilment import (
    FULFILMENT,
    FulfilmentInput,
    FulfilmentStatus,
    WarehouseEvent,
    fulfilment_id,
    start_facts,
)
from domain.ids import CARRIER_CLAIM
from domain.orders import Address, Order
from domain.risk_rules import IdentityKind, identity_hash
from store import audit as audit_store
from store import cases as case_store
from store import personal_data

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_ADDRESS_PARTS = ("line1", "line2", "city", "postal_code", "region")
# The personal values of an Order: kept in the personal-data store (kind
# "order"), never in `fulfilment_orders.document`.
ORDER_PERSONAL_PATHS: tuple[str, ...] = (
    "customer.email",
    "customer.full_name",
    "customer.phone",
    *(f"billing_address.{p}" for p in _ADDRESS_PARTS),
    *(f"shipping_address.{p}" for p in _ADDRESS_PARTS),
    "device.ip_address",
)
_ERASED = personal_data.ERASED_PLACEHOLDER
_ERASED_VALUES: dict[str, str] = {
    "customer.email": "erased@steward.erased",
    "customer.full_name": _ERASED,
    "device.ip_address": _ERASED,
    **{
        f"{parent}.{part}": _ERASED
        for parent in ("billing_address", "shipping_address")
        for part in ("line1", "city", "postal_code")
    },
}
_OPTIONAL = tuple(p for p in ORDER_PERSONAL_PATHS if p not in _ERASED_VALUES)


def order_subject_id(order_id: str) -> str:
    return personal_data.subject_id_for("order", order_id)


def address_subject_id(order_id: str, change_no: int) -> str:
    """Change 0 is the address at release; n the n-th change."""
    return personal_data.subject_id_for("address", f"{order_id}:{change_no}")


def address_fields(address: Address) -> dict[str, str]:
    """An address as a kind-"address" subject's fields (what `get_address`
    reads back): every part that is set, by its name."""
    return {k: str(v) for k, v in address.model_dump().items() if v is not None}


def address_text(address: Address) -> str:
    """One canonical line for fingerprinting (case and spacing are folded by it)."""
    parts = (address.line1, address.line2, address.city, address.postal_code)
    return "|".join(p or "" for p in (*parts, address.region, address.country))


async def save_order(db: Executor, order: Order) -> bool:
    """Keep the released order; False when it is already kept (a retried release)."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            return await _insert_order(conn, order)
    async with db.transaction():
        return await _insert_order(db, order)


async def _insert_order(conn: Executor, order: Order) -> bool:
    """save_order's work, on a connection in a transaction."""
    document, fields = personal_data.split_document(
        order.model_dump(mode="json"), ORDER_PERSONAL_PATHS
    )
    subject_id = order_subject_id(order.order_id)
    row = await conn.fetchrow(
        """
        INSERT INTO fulfilment_orders (order_id, document, subject_id) VALUES ($1, $2, $3)
        ON CONFLICT (order_id) DO NOTHING RETURNING order_id
        """,
        order.order_id,
        document,
        subject_id,
    )
    if row is None:
        return False
    await personal_data.put_subject(
        conn,
        kind="order",
        fields=fields,
        subject_id=subject_id,
        refs=[("order", order.order_id)],
    )
    return True


async def order_kept(db: Executor, order_id: str) -> bool:
    """Whether the order was kept at release (it has a fulfilment)."""
    return bool(await db.fetchval("SELECT 1 FROM fulfilment_orders WHERE order_id = $1", order_id))


async def load_order(db: Executor, order_id: str) -> Order | None:
    record = await db.fetchrow(
        f"""
        SELECT o.document, {personal_data.joined_columns("pd")}
        FROM fulfilment_orders o LEFT JOIN personal_subjects pd ON pd.subject_id = o.subject_id
        WHERE o.order_id = $1
        """,
        order_id,
    )
    if record is None:
        return None
    document = personal_data.merge_document(
        record["document"], personal_data.view_from_joined(record), _ERASED_VALUES, _OPTIONAL
    )
    return Order.model_validate(document)


def keyed_fingerprint(address: Address) -> str:
    """The keyed fingerprint `put_address` returns, without storing anything."""
    return personal_data.fingerprint(address_text(address))


async def _order_owner(db: Executor, order_id: str) -> str | None:
    """The subject of the released order (its customer's values): the owner of
    the order's address subjects, so a privacy request that finds the customer
    (by the email's fingerprint) finds them too (`live_subjects`)."""
    value = await db.fetchval(
        "SELECT subject_id FROM fulfilment_orders WHERE order_id = $1", order_id
    )
    return str(value) if value is not None else None


async def put_address(
    db: Executor, order_id: str, change_no: int, address: Address
) -> tuple[str, str]:
    """Store an address in the personal-data store: (subject id, keyed fingerprint).
    A retry with the same change number rewrites the same subject. Owned by
    the order's subject (a privacy request for the customer reaches it)."""
    fields = address_fields(address)
    subject_id = await personal_data.put_subject(
        db,
        kind="address",
        fields=fields,
        subject_id=address_subject_id(order_id, change_no),
        owner_id=await _order_owner(db, order_id),
        refs=[("order", order_id)],
    )
    return subject_id, personal_data.fingerprint(address_text(address))


def edge_address_subject_id(order_id: str, key: str) -> str:
    return personal_data.subject_id_for("address", f"{order_id}:edge:{key}")


async def put_edge_address(
    db: Executor,
    *,
    order_id: str,
    key: str,
    address: Address,
    refs: Sequence[tuple[str, str]] = (),
) -> str:
    """Keep an address given at an edge (the API's address change, the ops
    desk's request...) as a kind-"address" subject and return its id, which
    the edge sends instead of the address (ChangeAddressInput.address_subject_id).
    The id is derived from `order_id` and `key` (the edge's idempotency key,
    or the address's keyed fingerprint): a retried edge call rewrites the same
    subject. Refs: ("order", order_id) and the caller's own `refs`; owned by
    the released order's subject, so a privacy request that finds the
    customer finds the address too. Raises personal_data.SubjectErased when
    that subject was erased."""
    fields = address_fields(address)
    return await personal_data.put_subject(
        db,
        kind="address",
        fields=fields,
        subject_id=edge_address_subject_id(order_id, key),
        owner_id=await _order_owner(db, order_id),
        refs=[("order", order_id), *refs],
    )


class NotAnAddress(personal_data.PersonalDataError):
    """The subject exists but is not an address (kind "address")."""

    def __init__(self, subject_id: str, kind: str) -> None:
        super().__init__(f"address_subject_id: subject {subject_id!r} is a {kind}, not an address")
        self.subject_id = subject_id


async def get_address(db: Executor, subject_id: str, *, order_id: str | None = None) -> Address:
    """The address behind `subject_id` (one query): a kind-"address" subject
    (an address change's, or an edge's), or (the address the order was
    released with, change 0) the order's own subject, when `order_id` is
    given and it is that order's. Raises personal_data.UnknownSubject,
    personal_data.SubjectErased, or NotAnAddress for a subject of another kind."""
    if order_id is not None and subject_id == order_subject_id(order_id):
        order = await load_order(db, order_id)
        if order is not None:
            return order.shipping_address
    view = (await personal_data.read_subjects(db, [subject_id]))[subject_id]
    if view.kind != "address":
        raise NotAnAddress(subject_id, view.kind)
    if view.erased:
        raise personal_data.SubjectErased(subject_id, view.erased_at, view.erasure_reason)
    return Address.model_validate(dict(view.fields))


def _start_rows(
    input: FulfilmentInput, released_at: datetime
) -> tuple[AuditEntry, CaseStatusInput]:
    workflow_id = fulfilment_id(input.order_id)
    entry = AuditEntry(
        entry_id=f"{workflow_id}/started",
        workflow_id=workflow_id,
        process=FULFILMENT,
        case_id=input.order_id,
        actor="steward",
        role=Role.SYSTEM,
        action="fulfilment_started",
        reason=f"released to {input.site} ({input.release_id})",
        after=start_facts(input),
        occurred_at=released_at,
        order_id=input.order_id,
    )
    case = CaseStatusInput(
        workflow_id=workflow_id,
        process=FULFILMENT,
        case_id=input.order_id,
        status=FulfilmentStatus.RELEASED.value,
        market=input.market,
        risk_band=input.risk_band,
        amount_minor=input.amount_minor,
        currency=input.currency,
        updated_at=released_at,
    )
    return entry, case


async def record_start(db: Executor, input: FulfilmentInput, released_at: datetime) -> None:
    """The `fulfilment_started` audit row and the first case row of a
    fulfilment (revision 3: written by the starter, not the workflow), in one
    transaction; a retried start writes nothing twice."""
    entry, case = _start_rows(input, released_at)

    async def write(conn: Executor) -> None:
        await audit_store.insert_entry(conn, entry)
        await case_store.upsert(conn, case)

    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            await write(conn)
        return
    async with db.transaction():
        await write(db)


@dataclass(frozen=True)
class ReleaseFacts:
    """What the start of a fulfilment reads about the order and its customer."""

    completed_orders: int
    chargebacks: int
    # The dispute workflow of an early fraud warning holding the order.
    fraud_warning_ref: str | None
    # On the allow list as a VIP (risk_lists: list allow, kind customer, a
    # reason starting "vip", e.g. the risk team's `vip_customer`).
    vip: bool = False
    # A carrier claim on one of the customer's earlier orders (its audit rows).
    prior_claim: bool = False


async def release_facts(db: Executor, customer_id: str, order_id: str) -> ReleaseFacts:
    """`customer_profile`, `efw_hold_source`, the VIP mark and a prior carrier
    claim in one round trip."""
    row = await db.fetchrow(
        """
        SELECT h.completed_orders, h.chargebacks,
               (SELECT source_ref FROM sim_warehouse_holds
                WHERE order_id = $2 AND released_at IS NULL LIMIT 1) AS fraud_warning_ref,
               EXISTS (SELECT 1 FROM risk_lists
                       WHERE list = 'allow' AND kind = 'customer' AND value_hash = $3
                         AND lower(reason) LIKE 'vip%') AS vip,
               EXISTS (SELECT 1 FROM orders_seen o
                       JOIN audit_log a ON a.order_id = o.order_id
                       WHERE o.customer_id = $1 AND o.order_id <> $2
                         AND a.process = $4) AS prior_claim
        FROM (SELECT 1) AS one
        LEFT JOIN customer_history h ON h.customer_id = $1
        """,
        customer_id,
        order_id,
        identity_hash(IdentityKind.CUSTOMER, customer_id),
        CARRIER_CLAIM,
    )
    assert row is not None
    return ReleaseFacts(
        completed_orders=int(row["completed_orders"] or 0),
        chargebacks=int(row["chargebacks"] or 0),
        fraud_warning_ref=str(row["fraud_warning_ref"]) if row["fraud_warning_ref"] else None,
        vip=bool(row["vip"]),
        prior_claim=bool(row["prior_claim"]),
    )


async def record_release(
    db: asyncpg.Pool,
    order: Order,
    input: FulfilmentInput,
    released_at: datetime,
    *,
    subject_id: str | None,
) -> None:
    """The released order and the fulfilment's first audit row and case row,
    in one transaction on one connection (the release activity's start path).

    `subject_id`: the order's personal-data subject, already written by the
    order review's intake (issue 21: the same subject id, kind `order`): only
    the business document is inserted. None: its personal values are put into
    the subject here (a review started before issue 21). A retried release
    writes nothing twice."""
    entry, case = _start_rows(input, released_at)
    async with db.acquire() as conn, conn.transaction():
        if subject_id is None:
            await _insert_order(conn, order)
        else:
            document, _ = personal_data.split_document(
                order.model_dump(mode="json"), ORDER_PERSONAL_PATHS
            )
            await conn.execute(
                """
                INSERT INTO fulfilment_orders (order_id, document, subject_id) VALUES ($1, $2, $3)
                ON CONFLICT (order_id) DO NOTHING
                """,
                order.order_id,
                document,
                subject_id,
            )
        await audit_store.insert_entry(conn, entry)
        await case_store.upsert(conn, case)


# ------------------------------------------------------------ event intake


async def record_warehouse_event(db: Executor, event: WarehouseEvent) -> bool:
    """True the first time this event id arrives; a repeat only counts."""
    row = await db.fetchrow(
        """
        INSERT INTO warehouse_events AS e (event_id, order_id, kind, occurred_at, site)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (event_id) DO UPDATE SET deliveries = e.deliveries + 1
        RETURNING deliveries
        """,
        event.event_id,
        event.order_id,
        event.kind.value,
        event.occurred_at,
        event.site,
    )
    return row is not None and int(row["deliveries"]) == 1


async def mark_event_routed(db: Executor, event_id: str) -> None:
    await db.execute("UPDATE warehouse_events SET routed = true WHERE event_id = $1", event_id)


async def warehouse_events_of(db: Executor, order_id: str) -> list[dict[str, Any]]:
    records = await db.fetch(
        "SELECT event_id, kind, occurred_at, deliveries, routed FROM warehouse_events "
        "WHERE order_id = $1 ORDER BY occurred_at, event_id",
        order_id,
    )
    return [dict(r) for r in records]


# ------------------------------------------------------ simulated warehouse


@dataclass(frozen=True)
class SimWmsOrder:
    order_id: str
    site: str
    status: str
    released_at: datetime
    next_at: datetime
    carrier: str | None
    tracking_number: str | None
    cancelled: bool


def _sim_order(record: asyncpg.Record) -> SimWmsOrder:
    return SimWmsOrder(
        order_id=record["order_id"],
        site=record["site"],
        status=record["status"],
        released_at=record["released_at"],
        next_at=record["next_at"],
        carrier=record["carrier"],
        tracking_number=record["tracking_number"],
        cancelled=record["cancelled_at"] is not None,
    )


_SIM_COLUMNS = (
    "order_id, site, status, released_at, next_at, carrier, tracking_number, cancelled_at"
)


async def sim_register(
    db: Executor, *, order_id: str, site: str, released_at: datetime, next_at: datetime
) -> None:
    await db.execute(
        """
        INSERT INTO sim_wms_orders (order_id, site, released_at, next_at)
        VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING
        """,
        order_id,
        site,
        released_at,
        next_at,
    )


async def sim_get(db: Executor, order_id: str) -> SimWmsOrder | None:
    record = await db.fetchrow(
        f"SELECT {_SIM_COLUMNS} FROM sim_wms_orders WHERE order_id = $1", order_id
    )
    return _sim_order(record) if record is not None else None


async def sim_due(db: Executor, now: datetime, limit: int = 200) -> list[SimWmsOrder]:
    records = await db.fetch(
        f"""
        SELECT {_SIM_COLUMNS} FROM sim_wms_orders
        WHERE next_at <= $1 AND cancelled_at IS NULL
          AND status NOT IN ('handed_to_carrier', 'delivered')
        ORDER BY next_at LIMIT $2
        """,
        now,
        limit,
    )
    return [_sim_order(r) for r in records]


async def sim_advance(
    db: Executor,
    order_id: str,
    *,
    from_status: str,
    to_status: str,
    next_at: datetime,
    carrier: str | None = None,
    tracking_number: str | None = None,
) -> bool:
    """Move the order on, only from the status it was read in (one ticker wins)."""
    row = await db.fetchrow(
        """
        UPDATE sim_wms_orders
        SET status = $3, next_at = $4, carrier = COALESCE($5, carrier),
            tracking_number = COALESCE($6, tracking_number), updated_at = now()
        WHERE order_id = $1 AND status = $2 AND cancelled_at IS NULL
        RETURNING order_id
        """,
        order_id,
        from_status,
        to_status,
        next_at,
        carrier,
        tracking_number,
    )
    return row is not None


async def sim_postpone(db: Executor, order_id: str, next_at: datetime) -> None:
    await db.execute(
        "UPDATE sim_wms_orders SET next_at = $2, updated_at = now() WHERE order_id = $1",
        order_id,
        next_at,
    )


async def sim_set_address(db: Executor, order_id: str, address_ref: str) -> str | None:
    """Give the warehouse the new address; the status it was in (None: unknown order)."""
    value = await db.fetchval(
        "UPDATE sim_wms_orders SET address_ref = $2, updated_at = now() WHERE order_id = $1 "
        "RETURNING status",
        order_id,
        address_ref,
    )
    return str(value) if value is not None else None


async def sim_cancel(db: Executor, order_id: str) -> None:
    await db.execute(
        "UPDATE sim_wms_orders SET cancelled_at = COALESCE(cancelled_at, now()), "
        "status = 'cancelled', updated_at = now() WHERE order_id = $1",
        order_id,
    )


async def sim_set_hold(
    db: Executor, *, order_id: str, handle: str, reason: str, active: bool
) -> None:
    await db.execute(
        """
        INSERT INTO sim_wms_holds (order_id, handle, reason, active) VALUES ($1, $2, $3, $4)
        ON CONFLICT (order_id, handle) DO UPDATE
            SET active = EXCLUDED.active, reason = EXCLUDED.reason, updated_at = now()
        """,
        order_id,
        handle,
        reason,
        active,
    )


async def sim_active_holds(db: Executor, order_id: str) -> list[str]:
    records = await db.fetch(
        "SELECT handle FROM sim_wms_holds WHERE order_id = $1 AND active ORDER BY handle",
        order_id,
    )
    return [str(r["handle"]) for r in records]


async def sim_record_intercept(
    db: Executor,
    *,
    idempotency_key: str,
    order_id: str,
    outcome: str,
    fee_minor: int,
    reference: str,
) -> tuple[str, int, str]:
    """(outcome, fee, reference) of the intercept, the first one for a repeated key."""
    await db.execute(
        """
        INSERT INTO sim_carrier_intercepts
            (idempotency_key, order_id, outcome, fee_minor, reference)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING
        """,
        idempotency_key,
        order_id,
        outcome,
        fee_minor,
        reference,
    )
    row = await db.fetchrow(
        "SELECT outcome, fee_minor, reference FROM sim_carrier_intercepts "
        "WHERE idempotency_key = $1",
        idempotency_key,
    )
    assert row is not None
    return str(row["outcome"]), int(row["fee_minor"]), str(row["reference"])


async def customer_profile(db: Executor, customer_id: str) -> tuple[int, int]:
    """(completed orders, chargebacks) of the customer, for the QC rules: one
    indexed row, not the scoring's whole signal query (the release pays it on
    every order)."""
    row = await db.fetchrow(
        "SELECT completed_orders, chargebacks FROM customer_history WHERE customer_id = $1",
        customer_id,
    )
    return (int(row["completed_orders"]), int(row["chargebacks"])) if row else (0, 0)


async def efw_hold_source(db: Executor, order_id: str) -> str | None:
    """The dispute workflow of an early fraud warning holding the order at the
    warehouse (store/disputes.py sim_hold_order), if one does."""
    value = await db.fetchval(
        "SELECT source_ref FROM sim_warehouse_holds WHERE order_id = $1 AND released_at IS NULL",
        order_id,
    )
    return str(value) if value is not None else None
