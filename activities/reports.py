"""Report runs as activities: read the period's rows (store/reports.py),
compute the report (domain/reports/), write its CSV, PNG and HTML files
under the reports directory, record the run, and tell the distribution list
through the notification port."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import Notifier
from activities.report_render import render_csv, render_html, render_png
from domain.reports import CATALOGUE
from domain.reports.model import ReportContent, ReportDefinition, ReportParams
from domain.reports.runs import (
    RecordReportFailureInput,
    ReportFile,
    ReportRunContract,
    ReportRunResult,
    RunReportInput,
    RunStatus,
)
from store import reports as report_store

UNKNOWN_REPORT = "UnknownReport"
REPORT_READY_TEMPLATE = "report_ready"
PAGE = "report.html"

# A run's files live in <reports dir>/<run id>/; a run id is Temporal's run
# id (a UUID), checked again here because it becomes a path.
SAFE_RUN_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def run_directory(reports_dir: Path, run_id: str) -> Path:
    if not run_id or not set(run_id) <= SAFE_RUN_ID:
        raise ValueError(f"not a run id: {run_id!r}")
    return reports_dir / run_id


def render_files(
    definition: ReportDefinition,
    params: ReportParams,
    content: ReportContent,
    *,
    run_id: str,
    generated_at: datetime,
) -> dict[str, bytes]:
    """Every file of a run by name: CSV per table, PNG per chart, the page."""
    files: dict[str, bytes] = {f"{t.name}.csv": render_csv(t) for t in content.tables}
    charts = {c.name: render_png(c) for c in content.charts}
    files.update({f"{name}.png": png for name, png in charts.items()})
    page = render_html(
        definition, params, content, charts, run_id=run_id, generated_at=generated_at
    )
    files[PAGE] = page.encode("utf-8")
    return files


def write_files(directory: Path, files: dict[str, bytes]) -> list[ReportFile]:
    """Each file written whole (temporary file, then rename): a reader never
    sees half a page, and a retried attempt simply writes them again."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[ReportFile] = []
    for name, content in files.items():
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(temporary, directory / name)
        written.append(ReportFile(name=name, media_type=media_type(name), bytes=len(content)))
    return written


def media_type(name: str) -> str:
    if name.endswith(".csv"):
        return "text/csv"
    if name.endswith(".png"):
        return "image/png"
    return "text/html"


class ReportActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        reports_dir: Path,
        notifier: Notifier,
        recipients: Sequence[str] = (),
        *,
        dispute_safety_buffer_hours: float = 12.0,
    ) -> None:
        self.pool = pool
        self.reports_dir = reports_dir
        self.notifier = notifier
        self.recipients = list(recipients)
        self.dispute_safety_buffer_hours = dispute_safety_buffer_hours

    @activity.defn(name=ReportRunContract.RUN_REPORT)
    async def run_report(self, input: RunReportInput) -> ReportRunResult:
        log = activity_logger(report=input.report, run_id=input.run_id)
        definition = CATALOGUE.get(input.report)
        fetch = report_store.FETCHERS.get(input.report)
        if definition is None or fetch is None:
            raise ApplicationError(
                f"no report named {input.report!r} (known: {', '.join(sorted(CATALOGUE))})",
                type=UNKNOWN_REPORT,
                non_retryable=True,
            )
        attempts = await report_store.start_run(
            self.pool,
            run_id=input.run_id,
            workflow_id=input.workflow_id,
            report=input.report,
            cadence=input.cadence,
            params=input.params,
            requested_by=input.requested_by,
        )
        try:
            now = datetime.now(UTC)
            context = report_store.FetchContext(
                now=now, dispute_safety_buffer_hours=self.dispute_safety_buffer_hours
            )
            data = await fetch(self.pool, input.params, context)
            content = definition.compute(data, input.params)
            # Drawing is CPU work: off the event loop, other activities go on.
            files = await asyncio.to_thread(
                render_files,
                definition,
                input.params,
                content,
                run_id=input.run_id,
                generated_at=now,
            )
            written = await asyncio.to_thread(
                write_files, run_directory(self.reports_dir, input.run_id), files
            )
            await report_store.finish_run(
                self.pool, input.run_id, files=written, headline=content.headline
            )
        except Exception as err:
            # Visible on the run while the next attempt waits.
            await report_store.record_attempt_error(
                self.pool, input.run_id, f"attempt {attempts}: {type(err).__name__}: {err}"
            )
            raise
        sent = await self._distribute(input) if input.distribute else 0
        log.info("report_written", files=len(written), attempts=attempts, distributed_to=sent)
        return ReportRunResult(
            run_id=input.run_id,
            report=input.report,
            status=RunStatus.SUCCEEDED,
            files=written,
            headline=content.headline,
            distributed_to=sent,
        )

    async def _distribute(self, input: RunReportInput) -> int:
        """One message per recipient, idempotent by message id (a retried
        attempt sends nothing twice); the message names the run, whose page
        GET /v1/reports/{run_id}/files/report.html serves."""
        for number, recipient in enumerate(self.recipients, start=1):
            await self.notifier.send(
                message_id=f"report:{input.run_id}:{number}",
                order_id=f"report:{input.run_id}",
                recipient_email=recipient,
                template=REPORT_READY_TEMPLATE,
                locale="en",
            )
        if self.recipients:
            await report_store.mark_distributed(self.pool, input.run_id)
        return len(self.recipients)

    @activity.defn(name=ReportRunContract.RECORD_REPORT_FAILURE)
    async def record_report_failure(self, input: RecordReportFailureInput) -> bool:
        activity_logger(run_id=input.run_id).warning("report_run_failed", error=input.error)
        return await report_store.fail_run(self.pool, input.run_id, input.error)
