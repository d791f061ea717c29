"""Inputs that more than one workflow test builds: a shipment Steward follows
and the carrier's tracking events about it.

Times come from the caller (`harness.now()`), never from the wall clock: the
test server's clock runs ahead of it (see tests/workflows/harness.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from domain.carrier_events import CarrierEvent, TrackingStatus
from domain.deliveries import ShipmentRecord
from tests.factories import make_order


def shipment(
    now: datetime, amount_minor: int = 245_000, *, attempt: int = 1, suffix: str = ""
) -> ShipmentRecord:
    """A UPS parcel of a fresh order (one item of `amount_minor`, no shipping), due now."""
    order = make_order(order_id=f"ORD-{uuid.uuid4().hex[:10]}", now=now)
    if amount_minor != order.payment.amount_minor:
        item = order.items[0].model_copy(update={"unit_price_minor": amount_minor, "quantity": 1})
        payment = order.payment.model_copy(update={"amount_minor": amount_minor})
        order = order.model_copy(update={"items": [item], "shipping_minor": 0, "payment": payment})
    shipment_id = f"SH-{uuid.uuid4().hex[:8]}{suffix}"
    return ShipmentRecord(
        shipment_id=shipment_id,
        carrier="ups",
        tracking_number=f"1Z{uuid.uuid4().hex[:12].upper()}",
        expected_delivery_at=now,
        order=order,
        attempt=attempt,
    )


def tracking_event(
    record: ShipmentRecord,
    status: TrackingStatus,
    *,
    at: datetime,
    tracking: str | None = None,
    event_id: str | None = None,
) -> CarrierEvent:
    """The carrier's scan of `record` (or of another tracking number of it) at `at`."""
    return CarrierEvent(
        event_id=event_id or f"evt-{uuid.uuid4().hex[:10]}",
        carrier=record.carrier,
        tracking_number=tracking or record.tracking_number,
        shipment_id=record.shipment_id,
        status=status,
        exception_code="recipient_not_home" if status is TrackingStatus.DELIVERY_FAILED else None,
        location="Paris, FR",
        occurred_at=at,
    )
