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

from domain.review import CURRENT_REVIEW_REVISION
from workflows.order_review import OrderReviewWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("order_review_*.json"))


def test_histories_are_recorded() -> None:
    names = {p.stem for p in HISTORIES}
    # Every revision (1: runs started before revisions; see domain/review.py)
    # on every recorded path.
    paths = ("auto_accept", "review_escalated_approve", "review_escalated_decline")
    prefixes = [
        "order_review_" if revision == 1 else f"order_review_rev{revision}_"
        for revision in range(1, CURRENT_REVIEW_REVISION + 1)
    ]
    assert {prefix + path for prefix in prefixes for path in paths} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[OrderReviewWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
