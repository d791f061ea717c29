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

import asyncio
import sys
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.evidence import CctvClipReady
from tests.workflows.conftest import _test_server_binary
from tests.workflows.harness import FakeWorld, Harness, eventually
from tests.workflows.test_carrier_claim import outcome, shipment, start
from workers.dev_server import ensure_search_attributes
from workflows.carrier_claim import CarrierClaimWorkflow

HISTORIES = Path(__file__).parent / "histories"
NAME = "carrier_claim_outcome_while_filing"


async def record(out: Path = HISTORIES) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_test_server_binary(),
    )
    await ensure_search_attributes(env.client, env.client.namespace)
    try:
        world = FakeWorld(file_delay=1.0)
        harness = Harness(env, world, await env.get_current_time())
        async with Worker(
            env.client,
            task_queue=harness.task_queue,
            workflows=[CarrierClaimWorkflow],
            activities=world.activities(),
        ):
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
            history = await handle.fetch_history()
        (out / f"{NAME}.json").write_text(history.to_json())
        print(f"recorded {NAME}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
