"""Record the history of the `claim-out-of-window` patch (issue 15), replayed
by tests/replay/test_delivery_replay.py beside the claim histories recorded
before it (which replay unchanged: only a claim opened past its deadline
reaches the patch):

- carrier_claim_out_of_window: a lost parcel reported 12 days after it was
  shipped, on a 10-day window counted from the ship date; the claim is
  recorded out_of_window with its dates and never filed.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_claim_out_of_window_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness
from tests.workflows.test_carrier_claim import SHIP_CLOCK, shipment, start
from workflows.carrier_claim import CarrierClaimWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _out_of_window(harness: Harness) -> WorkflowHandle[Any, Any]:
    shipped = harness.now() - timedelta(days=12)
    handle = await start(harness, shipment(harness.now()), policy=SHIP_CLOCK, shipped_at=shipped)
    await handle.result()
    return handle


if __name__ == "__main__":
    run_recorder(
        record_history(
            "carrier_claim_out_of_window",
            [CarrierClaimWorkflow],
            FakeWorld(),
            _out_of_window,
            Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES,
        )
    )
