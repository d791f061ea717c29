"""The carrier silence sweep as an activity, so a Temporal Schedule runs it
with retries and history; the sweep itself (find silent shipments, ingest a
synthetic `lost` event each, which opens the claim) is the one the API's
`POST /v1/carrier/sweep` uses, in clients/carrier_events.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from temporalio import activity

from activities.context import activity_logger
from clients.carrier_events import sweep_silent_shipments
from domain.carrier_sweep import SWEEP_SILENT_SHIPMENTS, CarrierSweepInput, CarrierSweepResult


class CarrierSweepActivities:
    def __init__(
        self, pool: asyncpg.Pool, follow_new: Callable[[], Awaitable[int]] | None = None
    ) -> None:
        self.pool = pool
        # Trackers for newly registered parcels (EasyPost: carrier_easypost.py's
        # follow_new_shipments); None when no carrier API follows parcels.
        self.follow_new = follow_new

    @activity.defn(name=SWEEP_SILENT_SHIPMENTS)
    async def sweep_silent_shipments(self, input: CarrierSweepInput) -> CarrierSweepResult:
        as_of = input.as_of or datetime.now(UTC)
        # The worker's own client and task queue: claims run where this runs.
        results = await sweep_silent_shipments(
            activity.client(),
            self.pool,
            activity.info().task_queue,
            now=as_of,
            silence=input.silence,
        )
        opened = [r.workflow_id for r in results if r.workflow_id]
        followed = 0
        if self.follow_new is not None:
            try:
                followed = await self.follow_new()
            except Exception as exc:
                # Best effort: the sweep's claims are what the schedule is for;
                # the trackers are tried again next hour.
                activity_logger().warning("parcels_not_followed", reason=str(exc))
        activity_logger().info(
            "carrier_silence_swept",
            shipments=len(results),
            claims_opened=len(opened),
            trackers_created=followed,
        )
        return CarrierSweepResult(
            as_of=as_of, silence=input.silence, claims_opened=opened, shipments_swept=len(results)
        )
