"""Record the history of the `review-early-fraud-warning` patch (issue 15),
replayed by tests/replay/test_order_review_replay.py beside the histories
recorded before it (which replay unchanged: a review that never hears of an
early fraud warning never reaches the patch and records no marker):

- order_review_rev3_early_fraud_warning_review: the rule set auto-accepts,
  but an early fraud warning on the order arrived first; the review goes to a
  coordinator, who declines: void, cancel.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_early_fraud_warning_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.review import CURRENT_REVIEW_REVISION, OrderReviewContract, ReviewDecision, ReviewStatus
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.test_order_review import ACCEPT, decide, fresh_order, start, warning
from workflows.order_review import OrderReviewWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _warned_then_declined(harness: Harness) -> WorkflowHandle[Any, Any]:
    handle = await start(
        harness,
        fresh_order(harness.now()),
        start_signal=OrderReviewContract.SIGNAL_EARLY_FRAUD_WARNING,
        start_signal_args=[warning()],
    )
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    await handle.execute_update(OrderReviewWorkflow.decide, decide(ReviewDecision.DECLINE))
    await handle.result()
    return handle


if __name__ == "__main__":
    run_recorder(
        record_history(
            f"order_review_rev{CURRENT_REVIEW_REVISION}_early_fraud_warning_review",
            [OrderReviewWorkflow],
            FakeWorld(risk=ACCEPT),
            _warned_then_declined,
            Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES,
        )
    )
