"""One report run: `ReportRunWorkflow` (Temporal Schedules daily and weekly,
or `steward reports run`).

A short workflow: it fixes the period (a scheduled run takes the complete
day or week before its start, in the report time zone) and runs one
activity that reads PostgreSQL, writes the files and records the run. A
failed attempt is retried; a run that gives up is recorded as failed (the
run row says why) and the workflow fails, so both the report list and the
Temporal UI show it. The report itself lives in domain/ and the store, so
changing a figure never breaks replay.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.reports.runs import (
        RecordReportFailureInput,
        ReportRunContract,
        ReportRunInput,
        ReportRunResult,
        RunReportInput,
        period_for,
    )

REPORT_ATTEMPT_TIMEOUT = timedelta(minutes=5)
REPORT_GIVE_UP = timedelta(minutes=30)
REPORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=4,
    non_retryable_error_types=["UnknownReport"],
)
REPORT_FAILED = "ReportRunFailed"


@workflow.defn(name=ReportRunContract.WORKFLOW_TYPE)
class ReportRunWorkflow:
    def __init__(self) -> None:
        self._status = "starting"

    @workflow.run
    async def run(self, input: ReportRunInput) -> ReportRunResult:
        info = workflow.info()
        if input.period_from is not None and input.period_to is not None:
            period_from, period_to = input.period_from, input.period_to
        else:
            # The scheduled time, not the wall clock: a run the server starts
            # late still covers the day it was meant for.
            period_from, period_to = period_for(input.cadence, workflow.now(), input.timezone)
        params = input.params(period_from, period_to)
        run_id = info.run_id
        self._status = "running"
        workflow.set_current_details(
            f"{input.report} report, {period_from:%Y-%m-%d %H:%M} to {period_to:%Y-%m-%d %H:%M} "
            f"({input.timezone}); run {run_id}"
        )
        try:
            result = await workflow.execute_activity(
                ReportRunContract.RUN_REPORT,
                RunReportInput(
                    run_id=run_id,
                    workflow_id=info.workflow_id,
                    report=input.report,
                    cadence=input.cadence,
                    params=params,
                    distribute=input.distribute,
                    requested_by=input.requested_by,
                ),
                result_type=ReportRunResult,
                start_to_close_timeout=REPORT_ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=REPORT_GIVE_UP,
                retry_policy=REPORT_RETRY,
                summary=f"{input.report} report",
            )
        except ActivityError as failure:
            cause = failure.cause
            error = str(cause) if cause is not None else str(failure)
            self._status = "failed"
            await workflow.execute_activity(
                ReportRunContract.RECORD_REPORT_FAILURE,
                RecordReportFailureInput(run_id=run_id, error=error),
                result_type=bool,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
                summary="record the failed run",
            )
            workflow.set_current_details(f"{input.report} report failed: {error}")
            raise ApplicationError(
                f"{input.report} report run {run_id} failed: {error}",
                type=REPORT_FAILED,
                non_retryable=True,
            ) from failure
        self._status = "succeeded"
        workflow.set_current_details(
            f"{input.report} report, {period_from:%Y-%m-%d} to {period_to:%Y-%m-%d}: "
            f"{len(result.files)} file(s), sent to {result.distributed_to} recipient(s)"
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    @workflow.query(name=ReportRunContract.QUERY_STATUS)
    def status(self) -> str:
        return self._status


__all__ = ["ReportRunWorkflow"]
