"""`steward simulate` ships only what order review released: it reads each
order's review status from the store and waits while reviews are on their way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from domain.audit import CaseStatusInput
from domain.ids import ORDER_REVIEW, order_review_id
from starters.carrier_events_simulator import generate_parcels, released_orders
from store import cases
from tests.factories import make_order

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


async def _status(pool: asyncpg.Pool, order_id: str, status: str, at: datetime = T0) -> None:
    await cases.upsert(
        pool,
        CaseStatusInput(
            workflow_id=order_review_id(order_id),
            process=ORDER_REVIEW,
            case_id=order_id,
            status=status,
            updated_at=at,
        ),
    )


async def test_only_released_orders_ship(clean_db: asyncpg.Pool) -> None:
    statuses = {
        "FR-S1": "released",
        "FR-S2": "cancelled",
        "FR-S3": "awaiting_review",
        "FR-S4": "awaiting_customer",
        "FR-S5": "released",
    }
    orders = [make_order(order_id) for order_id in statuses]
    for order_id, status in statuses.items():
        await _status(clean_db, order_id, status)
    shipped = await released_orders(clean_db, orders, wait_seconds=5)
    assert [o.order_id for o in shipped] == ["FR-S1", "FR-S5"]
    parcels = generate_parcels(7, shipped, T0)
    assert {p.shipment.order.order_id for p in parcels} == {"FR-S1", "FR-S5"}


async def test_waits_for_reviews_on_their_way_then_ships_what_was_released(
    clean_db: asyncpg.Pool,
) -> None:
    orders = [make_order("FR-W1"), make_order("FR-W2"), make_order("FR-W3")]
    await _status(clean_db, "FR-W1", "capturing")
    await _status(clean_db, "FR-W2", "cancelling")
    # FR-W3 has no case row yet: its review has not written its first step.

    async def reviews_finish() -> None:
        await asyncio.sleep(0.3)
        await _status(clean_db, "FR-W1", "released", T0 + timedelta(seconds=1))
        await _status(clean_db, "FR-W2", "cancelled", T0 + timedelta(seconds=1))
        await _status(clean_db, "FR-W3", "released", T0 + timedelta(seconds=1))

    finishing = asyncio.create_task(reviews_finish())
    shipped = await released_orders(clean_db, orders, wait_seconds=10, poll_seconds=0.05)
    await finishing
    assert [o.order_id for o in shipped] == ["FR-W1", "FR-W3"]


async def test_stops_waiting_at_the_limit(clean_db: asyncpg.Pool) -> None:
    orders = [make_order("FR-L1"), make_order("FR-L2")]
    await _status(clean_db, "FR-L1", "released")
    await _status(clean_db, "FR-L2", "scored")  # stuck: never ships
    loop = asyncio.get_running_loop()
    started = loop.time()
    shipped = await released_orders(clean_db, orders, wait_seconds=0.5, poll_seconds=0.05)
    assert loop.time() - started < 5
    assert [o.order_id for o in shipped] == ["FR-L1"]
