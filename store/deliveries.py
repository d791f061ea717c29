"""Shipments, carrier events, the claims ledger and the simulated carrier's
side of the world (store/migrations/0004_deliveries.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool

from domain.carrier_events import CarrierEvent, TrackingStatus
from domain.deliveries import AddressRef, ShipmentRecord
from domain.orders import Address
from store import personal_data
from store.fulfilment import address_fields

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# A parcel in one of these is settled: no later scan changes what Steward does.
_SETTLED = ("delivered", "lost", "damaged", "returned_to_sender")


class ShipmentConflictError(ValueError):
    """The carrier and tracking number already belong to another shipment."""


@dataclass(frozen=True)
class ShipmentRow:
    record: ShipmentRecord
    status: str
    last_event_at: datetime | None
    tracked_by: str | None
    created_at: datetime
    # The personal-data subject holding the record's personal values (None
    # only while migration 0012's values wait to be sealed).
    subject_id: str | None = None


# The personal values of a ShipmentRecord (the order's customer, addresses,
# IP; the reship destination): kept in the personal-data store, one subject per
# shipment (kind "shipment"), never in `shipments.record` (issue 21; migration
# 0012 moved the older rows' values with this same list).
_ADDRESS_PARTS = ("line1", "line2", "city", "postal_code", "region")
SHIPMENT_PERSONAL_PATHS: tuple[str, ...] = (
    "order.customer.email",
    "order.customer.full_name",
    "order.customer.phone",
    *(f"order.billing_address.{p}" for p in _ADDRESS_PARTS),
    *(f"order.shipping_address.{p}" for p in _ADDRESS_PARTS),
    "order.device.ip_address",
    *(f"destination.{p}" for p in _ADDRESS_PARTS),
)
# What an erased shipment shows instead (valid values, so the record still
# loads: carrier claims, the audit and reports keep working).
_ERASED = personal_data.ERASED_PLACEHOLDER
_ERASED_VALUES: dict[str, str] = {
    "order.customer.email": "erased@steward.erased",
    "order.customer.full_name": _ERASED,
    "order.device.ip_address": _ERASED,
    **{
        f"{parent}.{part}": _ERASED
        for parent in ("order.billing_address", "order.shipping_address", "destination")
        for part in ("line1", "city", "postal_code")
    },
}
_OPTIONAL = tuple(p for p in SHIPMENT_PERSONAL_PATHS if p not in _ERASED_VALUES)


def shipment_subject_id(shipment_id: str) -> str:
    return personal_data.subject_id_for("shipment", shipment_id)


# ------------------------------------------------ addresses by subject id


def address_text(address: Address) -> str:
    """One canonical line for fingerprinting: each part stripped, postal
    code without spaces (case and inner spacing are folded by
    personal_data.fingerprint)."""
    parts = (
        address.line1,
        address.line2,
        address.city,
        address.postal_code.replace(" ", ""),
        address.region,
        address.country,
    )
    return "|".join((p or "").strip() for p in parts)


def address_fingerprint(address: Address) -> str:
    """The keyed fingerprint of an address (a failed delivery compares a new
    address with the parcel's by it, never by the address)."""
    return personal_data.fingerprint(address_text(address))


def delivery_address_subject_id(shipment_id: str, fingerprint: str) -> str:
    """Deterministic per shipment and address: a retried reply or decision,
    or the same address given twice, rewrites one subject."""
    return personal_data.subject_id_for("address", f"shipment/{shipment_id}/{fingerprint}")


async def put_delivery_address(
    db: Executor, shipment_id: str, order_id: str, address: Address
) -> AddressRef:
    """Keep an address given for a parcel (a customer's new address, a
    coordinator's reship destination): kind ``address``, owned by the
    shipment's subject, referencing the order and the shipment (issue 21).
    Raises personal_data.SubjectErased (nothing written) when this address's
    subject was erased (the same address given again after an erasure)."""
    fingerprint = address_fingerprint(address)
    fields = address_fields(address)
    subject_id = await personal_data.put_subject(
        db,
        kind="address",
        fields=fields,
        subject_id=delivery_address_subject_id(shipment_id, fingerprint),
        owner_id=shipment_subject_id(shipment_id),
        refs=[("order", order_id), ("shipment", shipment_id)],
    )
    return AddressRef(subject_id=subject_id, fingerprint=fingerprint, country=address.country)


async def get_delivery_address(db: Executor, subject_id: str) -> Address:
    """The address kept under `subject_id` (one query). Raises
    personal_data.SubjectErased or UnknownSubject."""
    return Address.model_validate(await personal_data.get_subject(db, subject_id))


def erased_address(country: str) -> Address:
    return Address(line1=_ERASED, city=_ERASED, postal_code=_ERASED, country=country)


async def read_delivery_addresses(db: Executor, refs: list[AddressRef]) -> dict[str, Address]:
    """Each kept address by subject id, in one query; an erased one reads
    ERASED_PLACEHOLDER (its country stays), an unknown one is left out."""
    ids = [ref.subject_id for ref in refs]
    if not ids:
        return {}
    try:
        views = await personal_data.read_subjects(db, ids)
    except personal_data.UnknownSubject:
        return {}
    out: dict[str, Address] = {}
    for ref in refs:
        view = views.get(ref.subject_id)
        if view is None:
            continue
        out[ref.subject_id] = (
            erased_address(ref.country) if view.erased else Address.model_validate(view.fields)
        )
    return out


def _row(record: asyncpg.Record) -> ShipmentRow:
    document = personal_data.merge_document(
        record["record"], personal_data.view_from_joined(record), _ERASED_VALUES, _OPTIONAL
    )
    return ShipmentRow(
        record=ShipmentRecord.model_validate(document),
        status=record["status"],
        last_event_at=record["last_event_at"],
        tracked_by=record["tracked_by"],
        created_at=record["created_at"],
        subject_id=record["subject_id"],
    )


# One query reads a shipment and its personal data (issue 21: the hot path
# pays no extra round trip).
_SHIPMENT_COLUMNS = (
    "s.record, s.status, s.last_event_at, s.tracked_by, s.created_at, s.subject_id, "
    + personal_data.joined_columns("pd")
)
_SHIPMENTS = "shipments s LEFT JOIN personal_subjects pd ON pd.subject_id = s.subject_id"


async def register_shipment(
    db: Executor, record: ShipmentRecord, *, tracked_by: str | None = None
) -> bool:
    """Insert the shipment; False when it is already registered (a repeat).

    The same carrier and tracking number under another shipment id is a
    conflict: a carrier reuses tracking numbers only after years.
    """
    document, fields = personal_data.split_document(
        record.model_dump(mode="json"), SHIPMENT_PERSONAL_PATHS
    )
    subject_id = shipment_subject_id(record.shipment_id)

    async def insert(conn: Executor) -> bool:
        row = await conn.fetchrow(
            """
            INSERT INTO shipments (shipment_id, carrier, tracking_number, order_id, attempt,
                                   expected_delivery_at, record, tracked_by, subject_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (shipment_id) DO NOTHING
            RETURNING shipment_id
            """,
            record.shipment_id,
            record.carrier,
            record.tracking_number,
            record.order.order_id,
            record.attempt,
            record.expected_delivery_at,
            document,
            tracked_by,
            subject_id,
        )
        if row is None:
            return False
        await personal_data.put_subject(
            conn,
            kind="shipment",
            fields=fields,
            subject_id=subject_id,
            refs=[("order", record.order.order_id), ("shipment", record.shipment_id)],
        )
        return True

    try:
        if isinstance(db, asyncpg.Pool):
            async with db.acquire() as conn, conn.transaction():
                return await insert(conn)
        async with db.transaction():
            return await insert(db)
    except asyncpg.UniqueViolationError:
        raise ShipmentConflictError(
            f"tracking_number: {record.carrier} {record.tracking_number} "
            "belongs to another shipment"
        ) from None


async def get_shipment(db: Executor, shipment_id: str) -> ShipmentRow | None:
    record = await db.fetchrow(
        f"SELECT {_SHIPMENT_COLUMNS} FROM {_SHIPMENTS} WHERE s.shipment_id = $1", shipment_id
    )
    return _row(record) if record else None


async def find_by_tracking(db: Executor, carrier: str, tracking_number: str) -> ShipmentRow | None:
    record = await db.fetchrow(
        f"SELECT {_SHIPMENT_COLUMNS} FROM {_SHIPMENTS} "
        "WHERE s.carrier = $1 AND s.tracking_number = $2",
        carrier.lower(),
        tracking_number,
    )
    return _row(record) if record else None


async def list_for_order(db: Executor, order_id: str) -> list[ShipmentRow]:
    records = await db.fetch(
        f"SELECT {_SHIPMENT_COLUMNS} FROM {_SHIPMENTS} WHERE s.order_id = $1 ORDER BY s.created_at",
        order_id,
    )
    return [_row(r) for r in records]


async def set_tracked_by(db: Executor, shipment_id: str, workflow_id: str) -> None:
    """The first process to follow a parcel keeps it; later events go there."""
    await db.execute(
        "UPDATE shipments SET tracked_by = $2 WHERE shipment_id = $1 AND tracked_by IS NULL",
        shipment_id,
        workflow_id,
    )


async def apply_status(
    db: Executor, shipment_id: str, status: TrackingStatus, occurred_at: datetime
) -> bool:
    """Move the shipment's status to `status` unless a later event already did."""
    result = await db.execute(
        """
        UPDATE shipments SET status = $2, last_event_at = $3
        WHERE shipment_id = $1 AND (last_event_at IS NULL OR last_event_at < $3)
        """,
        shipment_id,
        status.value,
        occurred_at,
    )
    return str(result).endswith(" 1")


async def list_silent(db: Executor, now: datetime, silence: timedelta) -> list[ShipmentRow]:
    """Unsettled parcels nobody follows, with no scan for `silence` past their
    expected delivery: candidates for a lost-parcel claim."""
    records = await db.fetch(
        f"""
        SELECT {_SHIPMENT_COLUMNS} FROM {_SHIPMENTS}
        WHERE s.status <> ALL($3::text[]) AND s.tracked_by IS NULL
          AND s.expected_delivery_at + $2::interval <= $1
          AND (s.last_event_at IS NULL OR s.last_event_at < $1 - $2::interval)
        ORDER BY s.expected_delivery_at
        """,
        now,
        silence,
        list(_SETTLED),
    )
    return [_row(r) for r in records]


# ----------------------------------------------------------- carrier events


class EventReceipt(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"  # seen and routed: nothing to do
    RETRY = "retry"  # seen, but its routing never completed: route again


async def record_event(db: Executor, event: CarrierEvent, shipment_id: str | None) -> EventReceipt:
    row = await db.fetchrow(
        """
        INSERT INTO carrier_events (source, event_id, carrier, tracking_number, shipment_id,
                                    status, exception_code, occurred_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (source, event_id) DO NOTHING
        RETURNING event_id
        """,
        event.source.value,
        event.event_id,
        event.carrier,
        event.tracking_number,
        shipment_id,
        event.status.value,
        event.exception_code,
        event.occurred_at,
    )
    if row is not None:
        return EventReceipt.NEW
    routed = await db.fetchval(
        "SELECT routed_at IS NOT NULL FROM carrier_events WHERE source = $1 AND event_id = $2",
        event.source.value,
        event.event_id,
    )
    return EventReceipt.DUPLICATE if routed else EventReceipt.RETRY


async def mark_routed(db: Executor, event: CarrierEvent, routed_to: str) -> None:
    await db.execute(
        """
        UPDATE carrier_events SET routed_to = $3, routed_at = now()
        WHERE source = $1 AND event_id = $2
        """,
        event.source.value,
        event.event_id,
        routed_to,
    )


async def count_events(db: Executor, carrier: str, tracking_number: str) -> int:
    value = await db.fetchval(
        "SELECT count(*) FROM carrier_events WHERE carrier = $1 AND tracking_number = $2",
        carrier.lower(),
        tracking_number,
    )
    return int(value or 0)


# ------------------------------------------------------------ claims ledger


@dataclass(frozen=True)
class ClaimLedgerRow:
    idempotency_key: str
    workflow_id: str
    carrier: str
    tracking_number: str
    order_id: str
    claim_reference: str
    outcome: str
    amount_minor: int
    currency: str
    recorded_at: datetime


async def record_claim_outcome(
    db: Executor,
    *,
    idempotency_key: str,
    workflow_id: str,
    carrier: str,
    tracking_number: str,
    order_id: str,
    claim_reference: str,
    outcome: str,
    amount_minor: int,
    currency: str,
) -> bool:
    """Write the claim's outcome once; False when it is already there."""
    row = await db.fetchrow(
        """
        INSERT INTO carrier_claim_ledger (idempotency_key, workflow_id, carrier,
                                          tracking_number, order_id, claim_reference, outcome,
                                          amount_minor, currency)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
        """,
        idempotency_key,
        workflow_id,
        carrier,
        tracking_number,
        order_id,
        claim_reference,
        outcome,
        amount_minor,
        currency,
    )
    return row is not None


async def claim_ledger_for_order(db: Executor, order_id: str) -> list[ClaimLedgerRow]:
    records = await db.fetch(
        """
        SELECT idempotency_key, workflow_id, carrier, tracking_number, order_id, claim_reference,
               outcome, amount_minor, currency, recorded_at
        FROM carrier_claim_ledger WHERE order_id = $1 ORDER BY id
        """,
        order_id,
    )
    return [ClaimLedgerRow(**dict(r)) for r in records]


# -------------------------------------------------- simulated outside world


async def sim_operation(
    db: Executor,
    *,
    idempotency_key: str,
    kind: str,
    carrier: str,
    reference: str,
    payload: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The simulated carrier's operation for this key: the first one wins."""
    await db.execute(
        """
        INSERT INTO sim_carrier_operations (idempotency_key, kind, carrier, reference, payload)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (idempotency_key) DO NOTHING
        """,
        idempotency_key,
        kind,
        carrier,
        reference,
        payload or {},
    )
    row = await db.fetchrow(
        "SELECT reference, payload FROM sim_carrier_operations WHERE idempotency_key = $1",
        idempotency_key,
    )
    assert row is not None
    return str(row["reference"]), dict(row["payload"])


async def count_sim_operations(db: Executor, kind: str, carrier: str | None = None) -> int:
    value = await db.fetchval(
        """
        SELECT count(*) FROM sim_carrier_operations
        WHERE kind = $1 AND ($2::text IS NULL OR carrier = $2)
        """,
        kind,
        carrier,
    )
    return int(value or 0)


async def sim_returns_desk(
    db: Executor, *, idempotency_key: str, kind: str, shipment_id: str, result: str
) -> str:
    await db.execute(
        """
        INSERT INTO sim_returns_desk (idempotency_key, kind, shipment_id, result)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (idempotency_key) DO NOTHING
        """,
        idempotency_key,
        kind,
        shipment_id,
        result,
    )
    value = await db.fetchval(
        "SELECT result FROM sim_returns_desk WHERE idempotency_key = $1", idempotency_key
    )
    return str(value)
