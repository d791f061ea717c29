"""Recorded histories must replay on the current workflow code.

A failure here means a change altered the commands a running review already
issued: guard it with `workflow.patched` (or a new revision, see
domain/review.py) instead of re-recording.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.order_review import OrderReviewWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("order_review_*.json"))


def test_histories_are_recorded() -> None:
    names = {p.stem for p in HISTORIES}
    # Revision 1 (runs started before revisions) and revision 2, per path.
    assert {
        "order_review_auto_accept",
        "order_review_review_escalated_approve",
        "order_review_rev2_auto_accept",
        "order_review_rev2_review_escalated_approve",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[OrderReviewWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
