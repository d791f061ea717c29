"""The parcel simulator: seeded, every kind of trouble, real EasyPost shapes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from domain.carrier_events import EventSource, TrackingStatus, parse_easypost_event
from starters import carrier_events_simulator, simulator

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def parcels(seed: int, count: int) -> list[carrier_events_simulator.SimulatedParcel]:
    traffic = simulator.generate_traffic(seed, count, NOW)
    return carrier_events_simulator.generate_parcels(seed, [o.order for o in traffic.orders], NOW)


def test_same_seed_same_parcels() -> None:
    first, second = parcels(11, 60), parcels(11, 60)
    assert [p.shipment for p in first] == [p.shipment for p in second]
    assert [p.event for p in first] == [p.event for p in second]


def test_failed_lost_and_damaged_parcels_in_both_formats() -> None:
    generated = parcels(3, 1000)
    statuses = Counter(p.event.status for p in generated if p.event)
    for status in (
        TrackingStatus.DELIVERY_FAILED,
        TrackingStatus.RETURNED_TO_SENDER,
        TrackingStatus.LOST,
        TrackingStatus.DAMAGED,
    ):
        assert statuses[status] > 0, status
    troubled = sum(statuses.values())
    assert 0.07 * 1000 < troubled < 0.17 * 1000
    sources = Counter(p.event.source for p in generated if p.event)
    assert sources[EventSource.EASYPOST] > 0 and sources[EventSource.STEWARD] > 0


def test_easypost_payloads_parse_back_to_the_event() -> None:
    for parcel in parcels(5, 400):
        if parcel.easypost is None:
            continue
        assert parcel.event is not None
        assert parse_easypost_event(parcel.easypost) == parcel.event
        assert parcel.event.tracking_number == parcel.shipment.tracking_number
        assert parcel.event.carrier == parcel.shipment.carrier
