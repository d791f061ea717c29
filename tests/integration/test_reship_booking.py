"""The reship booking activity (issue 15): the carrier port gets the full new
address and the customer's preferred date; the simulated carrier keeps only
the address's fingerprint; a refused label is a non-retryable
ReshipBookingRefused, not a fault retried for ever."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.carrier_easypost import ShipmentRefusedError
from activities.deliveries import DeliveryActivities
from activities.ports import BookedShipment
from activities.simulated import SimulatedCarrier, SimulatedNotifier, SimulatedParcelReturnsDesk
from domain.deliveries import (
    RESHIP_BOOKING_REFUSED,
    BookReshipmentInput,
    ServiceLevel,
    ShipmentRecord,
)
from domain.orders import Address
from domain.risk_rules import IdentityKind, identity_hash
from tests.factories import make_order

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
NEW = Address(
    line1="8 rue de la Paix", line2="3e étage", city="Paris", postal_code="75002", country="FR"
)


def booking(preferred: date | None) -> BookReshipmentInput:
    order = make_order("FR-8801", now=NOW)
    record = ShipmentRecord(
        shipment_id="SH-8801",
        carrier="ups",
        tracking_number="1Z8801",
        expected_delivery_at=NOW,
        order=order,
    )
    return BookReshipmentInput(
        workflow_id="failed-delivery:SH-8801",
        original_shipment_id="SH-8801",
        order_id=order.order_id,
        carrier="ups",
        destination=NEW,
        service_level=ServiceLevel.STANDARD,
        shipment=record,
        earliest_delivery=preferred,
    )


def activities(pool: asyncpg.Pool, carrier: object) -> DeliveryActivities:
    return DeliveryActivities(
        pool,
        carrier,
        SimulatedParcelReturnsDesk(pool),
        SimulatedNotifier(pool),  # type: ignore[arg-type]
    )


async def test_the_simulated_carrier_books_the_address_fingerprint_and_the_date(
    clean_db: asyncpg.Pool,
) -> None:
    carrier = SimulatedCarrier(clean_db, clock=lambda: NOW)
    preferred = date(2026, 12, 9)
    booked = await ActivityEnvironment().run(
        activities(clean_db, carrier).book_reshipment, booking(preferred)
    )
    # Standard transit would arrive sooner: not before the customer's day.
    assert booked.expected_delivery_at == datetime(2026, 12, 9, 9, 0, tzinfo=UTC)
    payload = await clean_db.fetchval(
        "SELECT payload FROM sim_carrier_operations WHERE idempotency_key = $1",
        "failed-delivery:SH-8801/reship",
    )
    assert payload["destination_hash"] == identity_hash(IdentityKind.ADDRESS, NEW)
    assert payload["earliest_delivery"] == "2026-12-09"
    assert "rue de la Paix" not in str(payload) and "75002" not in str(payload)


class RefusingCarrier:
    name = "refusing"

    async def book_shipment(self, **_: object) -> BookedShipment:
        raise ShipmentRefusedError("EasyPost offers no ups rate for the label", "no_rate")


async def test_a_refused_label_is_a_non_retryable_refusal(clean_db: asyncpg.Pool) -> None:
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            activities(clean_db, RefusingCarrier()).book_reshipment, booking(None)
        )
    assert refused.value.type == RESHIP_BOOKING_REFUSED
    assert refused.value.non_retryable
    assert "offers no ups rate" in refused.value.message
    assert refused.value.details == ("no_rate",)
