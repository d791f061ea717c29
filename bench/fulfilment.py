"""The fulfilment row of `make bench` (issue 16): the fulfilments the
throughput phase's auto-accept reviews started at release, moved through the
warehouse states by WMS events (allocated, picking, packing, packed, handed
to the carrier with a tracking number, which books the shipment, delivered),
`concurrency` orders at a time; orders per second, start-of-events to result
latency, and the history of one order (events, workflow tasks, activities).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client

from bench.history import HistoryProfile, fetch_profile
from domain.fulfilment import (
    FULFILMENT,
    FulfilmentContract,
    FulfilmentResult,
    FulfilmentStatus,
    WarehouseEvent,
    WarehouseEventKind,
)

WMS_PATH: tuple[WarehouseEventKind, ...] = (
    WarehouseEventKind.ALLOCATED,
    WarehouseEventKind.PICKING_STARTED,
    WarehouseEventKind.PACKING_STARTED,
    WarehouseEventKind.PACKED,
    WarehouseEventKind.HANDED_TO_CARRIER,
    WarehouseEventKind.DELIVERED,
)


@dataclass
class FulfilmentFigures:
    orders: int
    failed: int
    elapsed_s: float
    latencies_s: list[float]
    history: HistoryProfile | None
    errors: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        done = self.orders - self.failed
        return done / self.elapsed_s if self.elapsed_s else 0.0

    def as_json(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)

        def pct(q: float) -> float | None:
            return round(ordered[int(q * (len(ordered) - 1))] * 1000, 1) if ordered else None

        return {
            "orders": self.orders,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed_s, 2),
            "per_second": round(self.per_second, 2),
            "p50_ms": pct(0.5),
            "p95_ms": pct(0.95),
            "wms_events_per_order": len(WMS_PATH),
            "history": self.history.as_json() if self.history else None,
            "errors": self.errors,
        }


async def running_fulfilments(client: Client, limit: int) -> list[str]:
    """Order ids of up to `limit` fulfilments waiting for the warehouse."""
    ids: list[str] = []
    query = f"StewardProcess = '{FULFILMENT}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query, limit=limit):
        ids.append(FulfilmentContract.order_id(execution.id))
    return ids


def wms_job(client: Client, order_id: str) -> Any:
    async def job() -> bool:
        handle = client.get_workflow_handle(
            FulfilmentContract.workflow_id(order_id), result_type=FulfilmentResult
        )
        at = datetime.now(UTC)
        for step, kind in enumerate(WMS_PATH):
            handover = kind is WarehouseEventKind.HANDED_TO_CARRIER
            await handle.signal(
                FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
                WarehouseEvent(
                    event_id=f"bench-{order_id}-{kind}",
                    order_id=order_id,
                    kind=kind,
                    occurred_at=at + timedelta(minutes=10 * step),
                    site="PAR-1",
                    carrier="ups" if handover else None,
                    tracking_number=f"1ZB{order_id[-12:]}".replace("-", "") if handover else None,
                ),
            )
        result: FulfilmentResult = await handle.result()
        return result.status is FulfilmentStatus.DELIVERED

    return job


async def fulfilment_row(
    client: Client, order_ids: list[str], concurrency: int, drive: Any
) -> FulfilmentFigures:
    """Move `order_ids` through the WMS states; `drive` is bench.run.drive."""
    segment = await drive([wms_job(client, oid) for oid in order_ids], concurrency)
    history = None
    if order_ids:
        # The first order's history (a failed order's still shows its steps).
        history = await fetch_profile(
            client.get_workflow_handle(FulfilmentContract.workflow_id(order_ids[0]))
        )
    return FulfilmentFigures(
        orders=len(order_ids),
        failed=segment.failed,
        elapsed_s=segment.elapsed_s,
        latencies_s=segment.latencies_s,
        history=history,
        errors=[f"fulfilment: {e}" for e in segment.errors],
    )
