"""Record the history of the `return-campaign-quota-back` patch (issue 18),
replayed by tests/replay/test_delivery_replay.py beside the return histories
recorded before it (which must keep replaying unchanged):

- return_employee_sale_quota_back: a return of an employee-sale order is
  refunded, then gives the campaign's quota back; the first attempt's answer
  is lost, so the step is retried with the same releases.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_return_campaign_quota_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness
from tests.workflows.test_returns import deliver, qc, return_input, start
from workflows.returns import ReturnWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _quota_back(harness: Harness) -> WorkflowHandle[Any, Any]:
    handle = await start(harness, return_input(harness.now()))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    await handle.result()
    return handle


if __name__ == "__main__":
    run_recorder(
        record_history(
            "return_employee_sale_quota_back",
            [ReturnWorkflow],
            FakeWorld(campaign_id="ES-2027-06", campaign_release_failures=1),
            _quota_back,
            Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES,
        )
    )
