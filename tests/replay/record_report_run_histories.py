"""Record the report run histories replayed by
tests/replay/test_report_run_replay.py:

- report_run_daily_retried: a daily scheduled run (period from the
  workflow's clock, Europe/Paris) whose first attempt fails and is retried;
- report_run_failed: a manual run that gives up, recorded as failed.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with `workflow.patched`.

    .venv/bin/python -m tests.replay.record_report_run_histories [OUT_DIR]
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.reports.runs import Cadence, ReportRunInput
from tests.replay.recording import run_recorder
from tests.workflows.conftest import _test_server_binary
from tests.workflows.test_report_run import FakeReports
from workflows.report_run import ReportRunWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def main(out: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_test_server_binary(),
    )
    try:
        for name, failures, manual in (
            ("report_run_daily_retried", 1, False),
            ("report_run_failed", 10, True),
        ):
            reports = FakeReports(failures=failures)
            task_queue = f"record-{uuid.uuid4()}"
            now = await env.get_current_time()
            input = (
                ReportRunInput(
                    report="disputes", period_from=now - timedelta(days=7), period_to=now
                )
                if manual
                else ReportRunInput(report="fraud", cadence=Cadence.DAILY, timezone="Europe/Paris")
            )
            async with Worker(
                env.client,
                task_queue=task_queue,
                workflows=[ReportRunWorkflow],
                activities=[reports.run_report, reports.record_report_failure],
            ):
                handle = await env.client.start_workflow(
                    ReportRunWorkflow.run, input, id=f"{name}-{uuid.uuid4()}", task_queue=task_queue
                )
                # The failed run is the point of the second history.
                with contextlib.suppress(WorkflowFailureError):
                    await handle.result()
                history = await handle.fetch_history()
            (out / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    run_recorder(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
