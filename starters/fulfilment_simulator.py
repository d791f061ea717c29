"""The simulated warehouse's clock (issue 16): every released order moves
through allocated, picking, packing, packed and handed_to_carrier on its
site's timeline (activities/fulfilment.py SimulatedWms: pick and pack
durations, the daily carrier collection cut-off), and each event goes through
the same intake as the warehouse webhook (record once per event id, then the
order's fulfilment). A held order is not picked: the warehouse reports
`pick_refused` and tries again later.

Warehouse time may run faster than the wall clock (`speed`): a day of
warehouse work in minutes for `steward orders simulate-warehouse` (the demo
of `make up`: docs/fulfilment.md), the bench and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.client import Client

from activities.fulfilment import SimulatedWms
from clients.fulfilment import deliver_warehouse_event
from domain.fulfilment import WarehouseEvent

# Told of every event the warehouse sends: the event, and whether a running
# fulfilment had it.
OnEvent = Callable[[WarehouseEvent, bool], None]


@dataclass
class WarehouseReport:
    events: int = 0
    delivered: int = 0
    duplicates: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


async def tick(
    client: Client,
    pool: asyncpg.Pool,
    now: datetime,
    report: WarehouseReport | None = None,
    on_event: OnEvent | None = None,
) -> WarehouseReport:
    """Advance every order due at warehouse time `now` and deliver its events."""
    report = report or WarehouseReport()
    wms = SimulatedWms(pool)
    while True:
        events = await wms.tick(now)
        if not events:
            return report
        for event in sorted(events, key=lambda e: e.occurred_at):
            new, routed = await deliver_warehouse_event(client, pool, event)
            report.events += 1
            report.delivered += int(routed)
            report.duplicates += int(not new)
            report.by_kind[event.kind.value] = report.by_kind.get(event.kind.value, 0) + 1
            if on_event is not None:
                on_event(event, routed)


async def run(
    client: Client,
    pool: asyncpg.Pool,
    *,
    duration: timedelta,
    speed: float = 600.0,
    every: timedelta = timedelta(seconds=1),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_event: OnEvent | None = None,
    stop: asyncio.Event | None = None,
) -> WarehouseReport:
    """Tick for `duration` of wall time (or until `stop` is set), warehouse
    time running `speed` times faster."""
    report = WarehouseReport()
    started = clock()
    while (elapsed := clock() - started) < duration and not (stop and stop.is_set()):
        await tick(client, pool, started + elapsed * speed, report, on_event)
        if stop is None:
            await asyncio.sleep(every.total_seconds())
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every.total_seconds())
    return report
