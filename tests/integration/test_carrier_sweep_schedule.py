"""The hourly silence sweep on the dev server: the worker's schedule is
created once and updated in place after, and the scheduled workflow opens a
claim for a silent parcel through the real activity and PostgreSQL."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

import workflows
from domain.carrier_sweep import (
    CARRIER_SWEEP_SCHEDULE_ID,
    CARRIER_SWEEP_WORKFLOW,
    CarrierSweepInput,
    CarrierSweepResult,
)
from domain.deliveries import ShipmentRecord
from store import deliveries as delivery_store
from tests.factories import make_order
from workers import activities
from workers.schedules import ensure_carrier_sweep_schedule
from workers.settings import Settings


async def test_schedule_is_created_once_then_updated(client: Client) -> None:
    queue = f"test-{uuid.uuid4()}"
    handle = client.get_schedule_handle(CARRIER_SWEEP_SCHEDULE_ID)
    with contextlib.suppress(RPCError):  # left over by an interrupted run
        await handle.delete()
    try:
        assert await ensure_carrier_sweep_schedule(client, "steward-old") is True
        # A restart (or a second worker) finds it and brings it up to date.
        assert await ensure_carrier_sweep_schedule(client, queue) is False
        description = await handle.describe()
    finally:
        await handle.delete()

    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == CARRIER_SWEEP_WORKFLOW
    assert action.task_queue == queue
    assert [i.every for i in description.schedule.spec.intervals] == [timedelta(hours=1)]
    assert description.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP


async def test_scheduled_sweep_opens_a_claim_for_a_silent_parcel(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> None:
    settings = integration_settings.model_copy(update={"task_queue": f"test-{uuid.uuid4()}"})
    suffix = uuid.uuid4().hex[:10].upper()
    silent = ShipmentRecord(
        shipment_id=f"SH-{suffix}",
        carrier="ups",
        tracking_number=f"1Z{suffix}",
        expected_delivery_at=datetime.now(UTC) - timedelta(days=9),
        order=make_order(order_id=f"ORD-{suffix}"),
    )
    await delivery_store.register_shipment(db_pool, silent)
    claim_id = f"carrier-claim:ups:{silent.tracking_number}"
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ):
        first = await client.execute_workflow(
            CARRIER_SWEEP_WORKFLOW,
            CarrierSweepInput(),
            id=f"{CARRIER_SWEEP_SCHEDULE_ID}-{suffix}",
            task_queue=settings.task_queue,
            result_type=CarrierSweepResult,
        )
        again = await client.execute_workflow(
            CARRIER_SWEEP_WORKFLOW,
            CarrierSweepInput(),
            id=f"{CARRIER_SWEEP_SCHEDULE_ID}-{suffix}-2",
            task_queue=settings.task_queue,
            result_type=CarrierSweepResult,
        )
        for workflow_id in (claim_id, f"failed-delivery:{silent.shipment_id}"):
            try:
                await client.get_workflow_handle(workflow_id).terminate("test over")
            except RPCError as err:
                # The claim starts the failed delivery a moment after it
                # starts; terminated before that, it never does.
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise
    assert claim_id in first.claims_opened
    assert claim_id not in again.claims_opened  # a second sweep claims nothing twice
