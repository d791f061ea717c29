"""Recorded report run histories must replay on the current workflow code
(tests/replay/record_report_run_histories.py). A failure means a change
altered commands a running report run already issued: guard it with
`workflow.patched` instead of re-recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.report_run import ReportRunWorkflow

HERE = Path(__file__).parent / "histories"
# History -> the event type the recorded run ended with.
RECORDED = {
    "report_run_daily_retried": "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
    "report_run_failed": "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED",
}


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_report_run_history_replays(name: str) -> None:
    text = (HERE / f"{name}.json").read_text()
    assert json.loads(text)["events"][-1]["eventType"] == RECORDED[name]
    history = WorkflowHistory.from_json(f"replay-{name}", text)
    replayer = Replayer(workflows=[ReportRunWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
