"""Record the history of the `claim-outcome-while-filing` patch, replayed by
tests/replay/test_delivery_replay.py beside the claim histories recorded
before it (which must keep replaying unchanged):

- carrier_claim_outcome_while_filing: the carrier's approval arrives while
  the workflow has not yet taken the filing's result; it counts, the claim
  ends approved.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_claim_outcome_while_filing_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.evidence import CctvClipReady
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness, eventually
from tests.workflows.test_carrier_claim import outcome, shipment, start
from workflows.carrier_claim import CarrierClaimWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _outcome_while_filing(harness: Harness) -> WorkflowHandle[Any, Any]:
    world = harness.world
    record = shipment(harness.now())
    handle = await start(harness, record)
    await eventually(lambda: world.evidence.cctv_requests, what="the CCTV request")
    await handle.signal(
        CarrierClaimWorkflow.cctv_clip_ready,
        CctvClipReady(
            event_id="wh-1",
            request_id=world.evidence.cctv_requests[0].request_id,
            order_id=record.order.order_id,
            clip_ref="cctv/PACK-3/clip-1.mp4",
        ),
    )
    await eventually(lambda: world.claims.filing, what="the filing")
    await handle.signal(CarrierClaimWorkflow.claim_outcome, outcome(True))
    await handle.result()
    return handle


if __name__ == "__main__":
    run_recorder(
        record_history(
            "carrier_claim_outcome_while_filing",
            [CarrierClaimWorkflow],
            FakeWorld(file_delay=1.0),
            _outcome_while_filing,
            Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES,
        )
    )
