"""Record the histories of order reviews started with their personal values
behind a subject id (issue 21: `OrderReviewInput.subject_id`, the order
pseudonymised), replayed by tests/replay/test_order_review_replay.py with
every other review history:

- order_review_rev4_subject_auto_accept: scored, captured and released; the
  scoring and the release get the subject id.
- order_review_rev4_subject_auto_decline: declined by the rules; the
  customer's message gets the subject id.

    .venv/bin/python -m tests.replay.record_order_review_personal_data_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness
from tests.workflows.test_order_review import ACCEPT, DECLINE, fresh_order
from tests.workflows.test_order_review_personal_data import start_pseudonymised
from workflows.order_review import OrderReviewWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _run(harness: Harness) -> WorkflowHandle[Any, Any]:
    handle = await start_pseudonymised(harness, fresh_order(harness.now()))
    await handle.result()
    return handle


async def main(out: Path) -> None:
    for name, risk in (("auto_accept", ACCEPT), ("auto_decline", DECLINE)):
        await record_history(
            f"order_review_rev4_subject_{name}",
            [OrderReviewWorkflow],
            FakeWorld(risk=risk),
            _run,
            out,
        )


if __name__ == "__main__":
    run_recorder(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
