"""Record the history of a return started on subject ids (issue 21), replayed
by tests/replay/test_return_subject_replay.py:

- return_exchange_subject_ids: the edge kept the customer's email and the
  replacement order in the personal-data store; the return carries their
  subject ids, its customer messages name the contact's subject and the
  replacement's review starts with the replacement's subject id.
- return_cancel_reason_subject: the customer cancels before shipping; the
  cancel signal carries the reason's subject id, not the words.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_return_subject_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.returns import (
    CancelReturnRequest,
    Resolution,
    ReturnStatus,
    return_without_personal_values,
)
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.stand_ins import StandInOrderReview
from tests.workflows.test_return_personal_data import (
    CONTACT_SUBJECT,
    REASON_SUBJECT,
    REPLACEMENT_SUBJECT,
    with_personal_values,
)
from tests.workflows.test_returns import deliver, qc, return_input, start
from workflows.returns import ReturnWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _exchange_on_subject_ids(harness: Harness) -> WorkflowHandle[Any, Any]:
    clear, _ = with_personal_values(return_input(harness.now(), resolution=Resolution.EXCHANGE))
    request = return_without_personal_values(
        clear, contact_subject_id=CONTACT_SUBJECT, replacement_subject_id=REPLACEMENT_SUBJECT
    )
    handle = await start(harness, request)
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    await handle.result()
    return handle


async def _cancel_on_subject_ids(harness: Harness) -> WorkflowHandle[Any, Any]:
    clear, _ = with_personal_values(return_input(harness.now()))
    request = return_without_personal_values(
        clear, contact_subject_id=CONTACT_SUBJECT, replacement_subject_id=None
    )
    handle = await start(harness, request)
    await wait_for_status(handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(
        ReturnWorkflow.cancel,
        CancelReturnRequest(event_id="c-1", reason_subject_id=REASON_SUBJECT),
    )
    await handle.result()
    return handle


async def _record_all(out: Path) -> None:
    await record_history(
        "return_exchange_subject_ids",
        [ReturnWorkflow, StandInOrderReview],
        FakeWorld(),
        _exchange_on_subject_ids,
        out,
    )
    await record_history(
        "return_cancel_reason_subject",
        [ReturnWorkflow],
        FakeWorld(),
        _cancel_on_subject_ids,
        out,
    )


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES
    run_recorder(_record_all(out))
