"""The carrier silence sweep as an activity, so a Temporal Schedule runs it
with retries and history; the sweep itself (find silent shipments, ingest a
synthetic `lost` event each, which opens the claim) is the one the API's
`POST /v1/carrier/sweep` uses, in clients/carrier_events.py."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from temporalio import activity

from activities.context import activity_logger
from clients.carrier_events import sweep_silent_shipments
from domain.carrier_sweep import SWEEP_SILENT_SHIPMENTS, CarrierSweepInput, CarrierSweepResult


class CarrierSweepActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

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
        activity_logger().info(
            "carrier_silence_swept", shipments=len(results), claims_opened=len(opened)
        )
        return CarrierSweepResult(
            as_of=as_of, silence=input.silence, claims_opened=opened, shipments_swept=len(results)
        )
