"""An order's personal values as a personal-data subject (issue 21).

The edge keeps them here before it starts the order's review and passes the
review a pseudonymised order (domain/order_privacy.py) and the subject id;
activities read them back with ``load_order`` (one query). The subject is the
one fulfilment keeps the released order under (store/fulfilment.py
``order_subject_id``: kind ``order``, one per order id, the same field paths),
so a privacy request finds, exports and erases one subject per order.
"""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
import asyncpg.pool

from domain.order_privacy import ORDER_PERSONAL_PATHS, pseudonymise_order
from domain.orders import Order
from store import personal_data

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_ERASED = personal_data.ERASED_PLACEHOLDER
# What an erased order reads (valid values, so the order still loads: an
# erasure while a review runs leaves it working on business facts only).
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
    """Deterministic: a retried start (or a duplicate webhook) rewrites the
    same subject instead of making a second copy."""
    return personal_data.subject_id_for("order", order_id)


async def put_order(db: Executor, order: Order) -> tuple[str, Order]:
    """Keep the order's personal values; returns (subject id, the order
    pseudonymised). Raises personal_data.SubjectErased (nothing written) for an
    order whose subject was erased."""
    _, fields = personal_data.split_document(order.model_dump(mode="json"), ORDER_PERSONAL_PATHS)
    subject_id = await personal_data.put_subject(
        db,
        kind="order",
        fields=fields,
        subject_id=order_subject_id(order.order_id),
        refs=[("order", order.order_id)],
    )
    return subject_id, pseudonymise_order(order)


def message_subject_id(order_id: str, event_id: str) -> str:
    return personal_data.subject_id_for("message", f"{order_id}/{event_id}")


async def put_message(db: Executor, order_id: str, event_id: str, text: str) -> str:
    """Keep a customer's free-text message about an order (an answer to a
    verification request); returns its subject id. Owned by the order's
    subject, so a privacy request that finds the customer finds it too."""
    return await personal_data.put_subject(
        db,
        kind="message",
        fields={"message": text},
        subject_id=message_subject_id(order_id, event_id),
        owner_id=order_subject_id(order_id),
        refs=[("order", order_id)],
    )


async def put_shipment_message(
    db: Executor, shipment_id: str, order_id: str, event_id: str, text: str
) -> str:
    """Keep a customer's free-text reply about a parcel (a failed delivery);
    returns its subject id. Owned by the shipment's subject (which holds the
    customer's email), so a privacy request that finds the customer finds it."""
    return await personal_data.put_subject(
        db,
        kind="message",
        fields={"message": text},
        subject_id=personal_data.subject_id_for("message", f"shipment/{shipment_id}/{event_id}"),
        owner_id=personal_data.subject_id_for("shipment", shipment_id),
        refs=[("order", order_id), ("shipment", shipment_id)],
    )


async def read_messages(db: Executor, subject_ids: list[str]) -> dict[str, str]:
    """Each message's text by subject id, in one query; an erased one reads
    ERASED_PLACEHOLDER, an unknown id is left out."""
    known = [sid for sid in dict.fromkeys(subject_ids) if personal_data.is_subject_id(sid)]
    try:
        views = await personal_data.read_subjects(db, known)
    except personal_data.UnknownSubject:
        return {}
    return {sid: view.get("message") for sid, view in views.items()}


async def load_order(db: Executor, order: Order, subject_id: str) -> Order:
    """`order` (pseudonymised) with its subject's personal values put back; an
    erased subject's values read as erased placeholders. One query. Raises
    personal_data.UnknownSubject for an id that never existed."""
    view = (await personal_data.read_subjects(db, [subject_id]))[subject_id]
    document = personal_data.merge_document(
        order.model_dump(mode="json"), view, _ERASED_VALUES, _OPTIONAL
    )
    return Order.model_validate(document)
