"""Recorded fulfilment histories must replay on the current workflow code.

A failure means a change altered commands a running fulfilment already
issued: guard it with `workflow.patched` instead of re-recording
(tests/replay/record_fulfilment_histories.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.fulfilment import FulfilmentWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("fulfilment_*.json"))


def test_fulfilment_histories_are_recorded() -> None:
    assert {p.stem for p in HISTORIES} >= {
        "fulfilment_hold_address_delivered",
        "fulfilment_qc_fail_escalated_cancel",
        "fulfilment_fraud_warning_accept",
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_fulfilment_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[FulfilmentWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
