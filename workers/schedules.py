"""Temporal Schedules the worker process owns: created at start, or updated
to the current definition when they already exist (a restart, a second
worker), so there is always exactly one."""

from __future__ import annotations

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.carrier_sweep import (
    CARRIER_SWEEP_SCHEDULE_ID,
    CARRIER_SWEEP_WORKFLOW,
    SWEEP_EVERY,
    CarrierSweepInput,
)

log = structlog.get_logger(__name__)


def carrier_sweep_schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            CARRIER_SWEEP_WORKFLOW,
            CarrierSweepInput(),
            # The server appends the scheduled time: one id per run.
            id=CARRIER_SWEEP_SCHEDULE_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=SWEEP_EVERY)]),
        # A sweep still running when the next is due: skip, never pile up.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_carrier_sweep_schedule(client: Client, task_queue: str) -> bool:
    """Create the hourly sweep schedule; True when created, False when it
    existed and was updated (keeping whether an operator paused it)."""
    schedule = carrier_sweep_schedule(task_queue)
    try:
        await client.create_schedule(CARRIER_SWEEP_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:

        def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = current.description.schedule.state
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(CARRIER_SWEEP_SCHEDULE_ID).update(update)
        log.info("schedule_updated", schedule_id=CARRIER_SWEEP_SCHEDULE_ID, task_queue=task_queue)
        return False
    log.info("schedule_created", schedule_id=CARRIER_SWEEP_SCHEDULE_ID, task_queue=task_queue)
    return True
