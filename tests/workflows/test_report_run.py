"""The report run workflow under time skipping: a scheduled run covers the
complete day (or week) before its start in the report time zone, a failed
attempt is retried, and a run that gives up is recorded as failed and fails
visibly. The activities are fakes here; tests/integration/test_reports.py
runs the real ones."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from domain.reports.runs import (
    Cadence,
    RecordReportFailureInput,
    ReportRunContract,
    ReportRunInput,
    ReportRunResult,
    RunReportInput,
    RunStatus,
)
from tests.workflows.harness import TestServer
from workflows.report_run import ReportRunWorkflow


@dataclass
class FakeReports:
    failures: int = 0
    runs: list[RunReportInput] = field(default_factory=list)
    failed: list[RecordReportFailureInput] = field(default_factory=list)

    @activity.defn(name=ReportRunContract.RUN_REPORT)
    async def run_report(self, input: RunReportInput) -> ReportRunResult:
        self.runs.append(input)
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("PostgreSQL restarting")
        if input.report == "nonesuch":
            raise ApplicationError("no report named 'nonesuch'", type="UnknownReport")
        return ReportRunResult(run_id=input.run_id, report=input.report, status=RunStatus.SUCCEEDED)

    @activity.defn(name=ReportRunContract.RECORD_REPORT_FAILURE)
    async def record_report_failure(self, input: RecordReportFailureInput) -> bool:
        self.failed.append(input)
        return True


@dataclass
class Bench:
    server: TestServer
    reports: FakeReports
    task_queue: str


@pytest_asyncio.fixture(loop_scope="session")
async def bench(test_server: TestServer) -> AsyncIterator[Bench]:
    reports = FakeReports()
    task_queue = f"wf-test-{uuid.uuid4()}"
    async with Worker(
        test_server.env.client,
        task_queue=task_queue,
        workflows=[ReportRunWorkflow],
        activities=[reports.run_report, reports.record_report_failure],
    ):
        yield Bench(test_server, reports, task_queue)


async def _execute(bench: Bench, input: ReportRunInput) -> ReportRunResult:
    return await bench.server.env.client.execute_workflow(
        ReportRunWorkflow.run,
        input,
        id=f"report-run-test-{uuid.uuid4()}",
        task_queue=bench.task_queue,
    )


async def test_a_scheduled_run_covers_the_local_day_before_and_is_retried(bench: Bench) -> None:
    bench.reports.failures = 2
    now = await bench.server.env.get_current_time()
    result = await _execute(
        bench, ReportRunInput(report="fraud", cadence=Cadence.DAILY, timezone="Europe/Paris")
    )
    assert result.status is RunStatus.SUCCEEDED
    runs = bench.reports.runs
    assert len(runs) == 3  # two failed attempts, then the run
    assert len({r.run_id for r in runs}) == 1  # every attempt writes the same run
    params = runs[-1].params
    paris = ZoneInfo("Europe/Paris")
    start, end = params.period_from.astimezone(paris), params.period_to.astimezone(paris)
    # Local midnight to local midnight, one calendar day, ending today (or
    # tomorrow, should the run have started just after midnight in Paris).
    assert (start.hour, start.minute, end.hour, end.minute) == (0, 0, 0, 0)
    assert end.date() - start.date() == timedelta(days=1)
    today = now.astimezone(paris).date()
    assert end.date() in (today, today + timedelta(days=1))
    assert bench.reports.failed == []


async def test_a_run_that_gives_up_is_recorded_failed_and_fails(bench: Bench) -> None:
    bench.reports.failures = 10  # more than the retry policy's attempts
    now = await bench.server.env.get_current_time()
    with pytest.raises(WorkflowFailureError) as failure:
        await _execute(
            bench,
            ReportRunInput(report="returns", period_from=now - timedelta(days=7), period_to=now),
        )
    assert "returns report run" in str(failure.value.cause)
    assert len(bench.reports.runs) == 4  # maximum_attempts
    assert len(bench.reports.failed) == 1
    assert "PostgreSQL restarting" in bench.reports.failed[0].error
    assert bench.reports.failed[0].run_id == bench.reports.runs[0].run_id


async def test_an_unknown_report_is_not_retried(bench: Bench) -> None:
    now = await bench.server.env.get_current_time()
    with pytest.raises(WorkflowFailureError):
        await _execute(
            bench,
            ReportRunInput(report="nonesuch", period_from=now - timedelta(days=1), period_to=now),
        )
    assert len(bench.reports.runs) == 1
    assert len(bench.reports.failed) == 1
