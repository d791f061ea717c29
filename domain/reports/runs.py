"""Report runs: the workflow's contract, its input and result, the
schedules' cadences and the period a scheduled run covers. Pure."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from domain.common import StewardModel
from domain.reports.model import ReportParams


class ReportRunContract:
    WORKFLOW_TYPE = "ReportRunWorkflow"
    QUERY_STATUS = "status"
    # Activities.
    RUN_REPORT = "run_report"
    RECORD_REPORT_FAILURE = "record_report_failure"


REPORT_RUN = "report-run"


def report_run_id(
    report: str, period_from: datetime, period_to: datetime, market: str | None, channel: str | None
) -> str:
    """A manual run's workflow id: the same request while one runs is refused."""
    span = f"{period_from:%Y%m%dT%H%M%S%z}-{period_to:%Y%m%dT%H%M%S%z}"
    return f"{REPORT_RUN}:{report}:{span}:{market or 'all'}:{channel or 'all'}"


def report_schedule_id(report: str, cadence: Cadence) -> str:
    return f"report-{report}-{cadence}"


class Cadence(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MANUAL = "manual"


# When the scheduled runs start, in the report time zone: after midnight's
# day is complete and before people read their mail.
DAILY_AT = time(6, 0)
WEEKLY_AT = time(6, 30)  # Mondays


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {value!r}") from err
    return value


def period_for(cadence: Cadence, now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The complete local day (daily) or ISO week (weekly) before `now`."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    if cadence is Cadence.DAILY:
        start_day, end_day = today - timedelta(days=1), today
    elif cadence is Cadence.WEEKLY:
        monday = today - timedelta(days=today.weekday())
        start_day, end_day = monday - timedelta(days=7), monday
    else:
        raise ValueError("a manual run names its period")
    return _midnight(start_day, zone), _midnight(end_day, zone)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


class ReportRunInput(StewardModel):
    report: str = Field(pattern=r"^[a-z0-9_]+$", max_length=64)
    cadence: Cadence = Cadence.MANUAL
    # None on a scheduled run: the workflow takes the period before its start.
    period_from: datetime | None = None
    period_to: datetime | None = None
    market: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    channel: str | None = Field(default=None, max_length=40, pattern=r"^[a-z0-9_-]+$")
    timezone: str = "UTC"
    # Send the page to the distribution list when done.
    distribute: bool = True
    requested_by: str = Field(default="schedule", max_length=200)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _period(self) -> Self:
        if (self.period_from is None) != (self.period_to is None):
            raise ValueError("period_from and period_to go together")
        if self.period_from is None and self.cadence is Cadence.MANUAL:
            raise ValueError("a manual run names its period")
        if self.period_from is not None and self.period_to is not None:
            # The same checks as the report's own parameters.
            self.params(self.period_from, self.period_to)
        return self

    def params(self, period_from: datetime, period_to: datetime) -> ReportParams:
        return ReportParams(
            period_from=period_from,
            period_to=period_to,
            market=self.market,
            channel=self.channel,
            timezone=self.timezone,
        )


class RunReportInput(StewardModel):
    """One attempt at computing, writing and sending one report run."""

    run_id: str
    workflow_id: str
    report: str
    cadence: Cadence
    params: ReportParams
    distribute: bool = True
    requested_by: str = "schedule"


class ReportFile(StewardModel):
    name: str
    media_type: str
    bytes: int


class ReportRunResult(StewardModel):
    run_id: str
    report: str
    status: RunStatus
    files: list[ReportFile] = Field(default_factory=list)
    headline: dict[str, str | int | float | None] = Field(default_factory=dict)
    distributed_to: int = 0


class RecordReportFailureInput(StewardModel):
    run_id: str
    error: str


class ReportRunRow(StewardModel):
    """A run as GET /v1/reports lists it."""

    run_id: str
    workflow_id: str
    report: str
    cadence: Cadence
    period_from: datetime
    period_to: datetime
    market: str | None
    channel: str | None
    status: RunStatus
    attempts: int
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    files: list[ReportFile]
    headline: dict[str, str | int | float | None]
