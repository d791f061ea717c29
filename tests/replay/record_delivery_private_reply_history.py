"""Record the history of the `customer-reply-text-private` patch (issue 21),
replayed by tests/replay/test_delivery_replay.py beside the failed-delivery
histories recorded before it (which must keep replaying unchanged):

- failed_delivery_private_reply: the customer answers with a free-text
  message (kept in the case, not in the audit reason), the parcel is reshipped
  and delivered.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_delivery_private_reply_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.carrier_events import TrackingStatus
from domain.deliveries import CustomerOption, DeliveryDecision, FailedDeliveryStatus
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.inputs import shipment, tracking_event
from tests.workflows.test_failed_delivery import decide, reply, start
from workflows.failed_delivery import FailedDeliveryWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _private_reply(harness: Harness) -> WorkflowHandle[Any, Any]:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.RESCHEDULE, message="Please call the concierge before 6 pm"),
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP))
    await wait_for_status(handle, FailedDeliveryStatus.RESHIPPED)
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        tracking_event(
            record,
            TrackingStatus.DELIVERED,
            tracking=f"RESHIP-{record.shipment_id}",
            at=harness.now(),
        ),
    )
    await handle.result()
    return handle


if __name__ == "__main__":
    run_recorder(
        record_history(
            "failed_delivery_private_reply",
            [FailedDeliveryWorkflow],
            FakeWorld(),
            _private_reply,
            Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES,
        )
    )
