"""Record the histories of ops requests opened through the edge with their
personal values behind subject ids (issue 21), replayed by
tests/replay/test_ops_request_replay.py with every other ops request history:

- ops_request_address_change_subject: the new address and the description
  are subjects (`AddressChangeDetails.address_subject_id`, `description_ref`);
  claimed and resolved: fulfilment's action gets the address subject id.
- ops_request_qc_check_subject: a QC check's reason is a subject
  (`QcCheckDetails.reason_subject_id`); claimed and resolved: the QC hold.

    .venv/bin/python -m tests.replay.record_ops_request_personal_data_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from store import personal_data
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import Harness
from tests.workflows.test_ops_request import COORDINATOR, OpsWorld, start
from tests.workflows.test_ops_request_personal_data import (
    DONE,
    QC_REASON,
    new_address,
    through_the_edge,
)
from workers.codec import Keyring
from workflows.ops_request import OpsRequestWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _resolved(harness: Harness, details: dict[str, Any]) -> WorkflowHandle[Any, Any]:
    input, _ = await through_the_edge(harness, details)
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    await handle.execute_update(OpsRequestWorkflow.resolve, DONE)
    await handle.result()
    return handle


async def _address_change(harness: Harness) -> WorkflowHandle[Any, Any]:
    return await _resolved(
        harness, {"type": "address_change", "order_id": "FR-7301", "address": new_address()}
    )


async def _qc_check(harness: Harness) -> WorkflowHandle[Any, Any]:
    return await _resolved(
        harness, {"type": "qc_check", "order_id": "FR-7302", "reason": QC_REASON}
    )


async def main(out: Path) -> None:
    # The edge encrypts what it keeps (into a recording connection): a
    # throw-away keyring, as the tests configure one.
    if not personal_data.is_configured():
        personal_data.configure(Keyring.generate())
    for name, scenario in (
        ("ops_request_address_change_subject", _address_change),
        ("ops_request_qc_check_subject", _qc_check),
    ):
        await record_history(name, [OpsRequestWorkflow], OpsWorld(), scenario, out)


if __name__ == "__main__":
    run_recorder(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
