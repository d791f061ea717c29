"""Recorded privacy-request histories must replay on the current workflow
code (tests/replay/record_privacy_request_histories.py). A failure means a
change altered commands a running request already issued: guard it with
`workflow.patched` instead of re-recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.privacy_request import PrivacyRequestWorkflow

HERE = Path(__file__).parent / "histories"
RECORDED = ["privacy_request_access_exported", "privacy_request_erasure_hold_lifted"]


@pytest.mark.parametrize("name", RECORDED)
async def test_privacy_request_history_replays(name: str) -> None:
    text = (HERE / f"{name}.json").read_text()
    assert json.loads(text)["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    history = WorkflowHistory.from_json(f"replay-{name}", text)
    replayer = Replayer(workflows=[PrivacyRequestWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
