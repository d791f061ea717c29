"""Recorded campaign histories must replay on the current workflow code.

A failure means a change altered commands a running campaign already issued:
guard it with `workflow.patched` instead of re-recording
(tests/replay/record_campaign_histories.py).
"""

from __future__ import annotations

import json
from base64 import b64decode
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.campaign import CampaignWorkflow

HERE = Path(__file__).parent / "histories"
RECORDED: dict[str, str] = {
    "campaign_lifecycle": "reconciled",
    "campaign_cancelled": "cancelled",
}


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_campaign_history_replays(name: str) -> None:
    text = (HERE / f"{name}.json").read_text()
    last = json.loads(text)["events"][-1]
    payload = last["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]
    assert json.loads(b64decode(payload["data"]))["status"] == RECORDED[name]
    history = WorkflowHistory.from_json(f"replay-{name}", text)
    replayer = Replayer(workflows=[CampaignWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
