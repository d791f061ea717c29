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
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
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
from domain.reports import CATALOGUE
from domain.reports.runs import (
    DAILY_AT,
    WEEKLY_AT,
    Cadence,
    ReportRunContract,
    ReportRunInput,
    report_schedule_id,
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


# ---------------------------------------------------------------- reports


def report_schedule(report: str, cadence: Cadence, task_queue: str, timezone: str) -> Schedule:
    """Daily at DAILY_AT, weekly on Mondays at WEEKLY_AT, in `timezone`; each
    run covers the complete day or week before it (workflows/report_run.py)."""
    at = DAILY_AT if cadence is Cadence.DAILY else WEEKLY_AT
    calendar = ScheduleCalendarSpec(
        hour=[ScheduleRange(at.hour)],
        minute=[ScheduleRange(at.minute)],
        second=[ScheduleRange(0)],
        day_of_week=[ScheduleRange(1)] if cadence is Cadence.WEEKLY else [ScheduleRange(0, 6)],
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReportRunContract.WORKFLOW_TYPE,
            ReportRunInput(report=report, cadence=cadence, timezone=timezone),
            id=report_schedule_id(report, cadence),
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(calendars=[calendar], time_zone_name=timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def _ensure(client: Client, schedule_id: str, schedule: Schedule) -> bool:
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = current.description.schedule.state
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(update)
        return False
    return True


async def ensure_report_schedules(
    client: Client,
    task_queue: str,
    *,
    cadences: list[str],
    timezone: str,
    reports: list[str] | None = None,
) -> list[str]:
    """One schedule per report and cadence (`report-<name>-<cadence>`), created
    or brought up to the current definition (keeping an operator's pause);
    the ids ensured."""
    ensured: list[str] = []
    for name in reports if reports is not None else sorted(CATALOGUE):
        for cadence in (Cadence(c) for c in cadences):
            schedule_id = report_schedule_id(name, cadence)
            created = await _ensure(
                client, schedule_id, report_schedule(name, cadence, task_queue, timezone)
            )
            log.info(
                "schedule_created" if created else "schedule_updated",
                schedule_id=schedule_id,
                task_queue=task_queue,
            )
            ensured.append(schedule_id)
    return ensured
