"""Returns started on subject ids (issue 21) must replay on the current
workflow code (the histories recorded before them replay in
tests/replay/test_delivery_replay.py).

A failure means a change altered commands a running case already issued:
guard it with `workflow.patched` instead of re-recording
(tests/replay/record_return_subject_history.py).
"""

from __future__ import annotations

import json
from base64 import b64decode
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.returns import ReturnWorkflow

HERE = Path(__file__).parent / "histories"
# History -> the status the recorded run ended in, and the subject ids its
# payloads carry instead of personal values.
RECORDED: dict[str, tuple[str, tuple[str, ...]]] = {
    # The customer's email and the replacement order kept by subject id.
    "return_exchange_subject_ids": (
        "exchanged",
        ("subj_return-contact-test-0001", "subj_return-replacement-test-0001"),
    ),
    # The customer's reason for cancelling kept by subject id.
    "return_cancel_reason_subject": (
        "cancelled",
        ("subj_return-contact-test-0001", "subj_return-cancel-reason-test-0001"),
    ),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_return_subject_history_replays(name: str) -> None:
    text = (HERE / f"{name}.json").read_text()
    last = json.loads(text)["events"][-1]
    payload = last["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]
    status, subject_ids = RECORDED[name]
    assert json.loads(b64decode(payload["data"]))["status"] == status
    history = WorkflowHistory.from_json(f"replay-{name}", text)
    replayer = Replayer(workflows=[ReturnWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
    # The recorded run is the new shape: subject ids and the placeholder email.
    decoded = "\n".join(b64decode(p["data"]).decode() for p in _payloads(json.loads(text)))
    for subject_id in subject_ids:
        assert subject_id in decoded
    assert "personal-data@steward.personal" in decoded


def _payloads(node: object) -> list[dict[str, str]]:
    if isinstance(node, dict):
        if "data" in node and "metadata" in node:
            return [node]
        return [p for value in node.values() for p in _payloads(value)]
    if isinstance(node, list):
        return [p for value in node for p in _payloads(value)]
    return []
