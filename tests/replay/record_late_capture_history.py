"""Record the history of the `capture-given-up-settled` patch, replayed by
tests/replay/test_order_review_replay.py beside the review histories recorded
before it (which must keep replaying unchanged):

- order_review_rev3_late_capture_refunded: every capture attempt fails until
  the 2 h give-up; the provider's final word is that it captured after all;
  the review refunds it (operation `late-capture-refund`), opens a finance
  task, voids and cancels.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_late_capture_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness
from tests.workflows.test_order_review import ACCEPT, start
from tests.workflows.test_order_review_late_capture import NEVER
from workflows.order_review import OrderReviewWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _late_capture(harness: Harness) -> WorkflowHandle[Any, Any]:
    handle = await start(harness)
    await handle.result()
    return handle


if __name__ == "__main__":
    run_recorder(
        record_history(
            "order_review_rev3_late_capture_refunded",
            [OrderReviewWorkflow],
            FakeWorld(risk=ACCEPT, capture_outages=NEVER, late_capture=True),
            _late_capture,
            Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES,
        )
    )
