"""Simulated parcels for `steward simulate`: every order its review released
to the warehouse (read from the store: `released_orders`; a cancelled order or
one still under review never ships) is registered as a shipment, and a seeded
share comes back as a failed delivery (customer not
home, refused, returned to sender), a lost parcel or a damaged one. Half of
the events arrive as signed EasyPost tracker events run through the same
parser as the webhook, the rest in Steward's own format.

Seeded: the same seed and orders give the same shipments and events.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import Client

from clients import carrier_events
from domain.carrier_events import CarrierEvent, TrackingStatus, parse_easypost_event
from domain.deliveries import ServiceLevel, ShipmentRecord
from domain.ids import ORDER_REVIEW
from domain.orders import Order
from domain.review import ReviewStatus
from store import cases

FAILED_RATE = 0.08
LOST_RATE = 0.02
DAMAGED_RATE = 0.02
CARRIERS = ("ups", "fedex", "dhl", "colissimo")
FAILURE_CODES = ("recipient_not_home", "refused", "address_not_found", "business_closed")
# EasyPost spells the carrier as its own name; Steward lowers it.
EASYPOST_CARRIER_NAMES = {"ups": "UPS", "fedex": "FedEx", "dhl": "DHL", "colissimo": "Colissimo"}


# Order-review statuses an order stays in until something happens: a person
# decides, or nothing more (closed). The others are on their way to one.
_SETTLED_REVIEW_STATUSES = frozenset(
    {
        ReviewStatus.RELEASED,
        ReviewStatus.CANCELLED,
        ReviewStatus.AWAITING_REVIEW,
        ReviewStatus.AWAITING_CUSTOMER,
    }
)


async def released_orders(
    pool: asyncpg.Pool, orders: Sequence[Order], *, wait_seconds: float, poll_seconds: float = 0.5
) -> list[Order]:
    """The orders the warehouse may ship: those whose review released them, as
    the store's case list says. Waits up to `wait_seconds` while reviews are
    still on their way (scoring, capturing, cancelling); an order declined,
    cancelled or waiting for a coordinator is left out."""
    ids = [o.order_id for o in orders]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        found = await cases.statuses(pool, ORDER_REVIEW, ids)
        settled = all(found.get(i) in _SETTLED_REVIEW_STATUSES for i in ids)
        if settled or loop.time() >= deadline:
            break
        await asyncio.sleep(poll_seconds)
    return [o for o in orders if found.get(o.order_id) == ReviewStatus.RELEASED]


@dataclass(frozen=True)
class SimulatedParcel:
    shipment: ShipmentRecord
    event: CarrierEvent | None  # None: delivered without trouble (no event sent)
    easypost: dict[str, Any] | None = None  # the EasyPost payload the event came from


def easypost_tracker_event(
    shipment: ShipmentRecord, status: str, detail: str, at: datetime, rng: random.Random
) -> dict[str, Any]:
    """An EasyPost `tracker.updated` Event as EasyPost posts it."""
    return {
        "id": f"evt_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
        "object": "Event",
        "description": "tracker.updated",
        "mode": "test",
        "created_at": at.isoformat(),
        "result": {
            "id": f"trk_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
            "object": "Tracker",
            "tracking_code": shipment.tracking_number,
            "carrier": EASYPOST_CARRIER_NAMES[shipment.carrier],
            "status": status,
            "status_detail": detail,
            "updated_at": at.isoformat(),
            "tracking_details": [
                {
                    "datetime": at.isoformat(),
                    "status": status,
                    "status_detail": detail,
                    "message": detail.replace("_", " ") or status,
                    "tracking_location": {
                        "city": shipment.address.city,
                        "country": shipment.address.country,
                    },
                }
            ],
        },
    }


def generate_parcels(seed: int, orders: Sequence[Order], now: datetime) -> list[SimulatedParcel]:
    rng = random.Random(seed * 7919 + 5)
    parcels: list[SimulatedParcel] = []
    for order in orders:
        carrier = rng.choice(CARRIERS)
        shipment = ShipmentRecord(
            shipment_id=f"SH-{order.order_id}",
            carrier=carrier,
            tracking_number=f"{carrier[:2].upper()}{rng.getrandbits(40):012d}",
            service_level=rng.choice(list(ServiceLevel)),
            expected_delivery_at=now + timedelta(days=rng.randint(1, 3)),
            order=order,
        )
        roll = rng.random()
        at = now + timedelta(minutes=rng.randint(1, 600))
        status: TrackingStatus | None = None
        code = ""
        if roll < FAILED_RATE:
            status = rng.choice([TrackingStatus.DELIVERY_FAILED, TrackingStatus.RETURNED_TO_SENDER])
            code = rng.choice(FAILURE_CODES)
        elif roll < FAILED_RATE + LOST_RATE:
            status, code = TrackingStatus.LOST, "lost"
        elif roll < FAILED_RATE + LOST_RATE + DAMAGED_RATE:
            status, code = TrackingStatus.DAMAGED, "damaged"
        if status is None:
            parcels.append(SimulatedParcel(shipment, None))
            continue
        if rng.random() < 0.5:
            easypost_status = {
                TrackingStatus.DELIVERY_FAILED: "failure",
                TrackingStatus.RETURNED_TO_SENDER: "return_to_sender",
                TrackingStatus.LOST: "failure",
                TrackingStatus.DAMAGED: "failure",
            }[status]
            payload = easypost_tracker_event(shipment, easypost_status, code, at, rng)
            event = parse_easypost_event(json.loads(json.dumps(payload)))
            assert event is not None
            parcels.append(SimulatedParcel(shipment, event, payload))
        else:
            event = CarrierEvent(
                event_id=f"{carrier}-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}",
                carrier=carrier,
                tracking_number=shipment.tracking_number,
                shipment_id=shipment.shipment_id,
                status=status,
                exception_code=code,
                location=f"{shipment.address.city}, {shipment.address.country}",
                occurred_at=at,
            )
            parcels.append(SimulatedParcel(shipment, event))
    return parcels


@dataclass
class ParcelReport:
    shipments: int = 0
    failed_deliveries: int = 0
    claims: int = 0
    failed: int = 0


async def send_parcels(
    client: Client, pool: asyncpg.Pool, parcels: Sequence[SimulatedParcel], *, task_queue: str
) -> ParcelReport:
    report = ParcelReport()
    for parcel in parcels:
        await carrier_events.register_shipment(pool, parcel.shipment)
        report.shipments += 1
        if parcel.event is None:
            continue
        try:
            result = await carrier_events.ingest_event(client, pool, parcel.event, task_queue)
        except carrier_events.UnknownShipment:
            report.failed += 1
            continue
        if result.route.value == "failed_delivery":
            report.failed_deliveries += 1
        elif result.route.value == "carrier_claim":
            report.claims += 1
    return report
