"""Record the history of the `reship-booking-refused` patch (issue 15),
replayed by tests/replay/test_delivery_replay.py beside the failed-delivery
histories recorded before it (which replay unchanged: only a refused label
reaches the patch):

- failed_delivery_reship_refused: the carrier refuses the express label for
  good; a coordinator picks the standard service, which is booked (its own
  idempotency key) and delivered.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_reship_refused_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.carrier_events import TrackingStatus
from domain.deliveries import (
    CustomerOption,
    DeliveryDecision,
    FailedDeliveryStatus,
    ServiceLevel,
)
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.inputs import shipment, tracking_event
from tests.workflows.test_failed_delivery import decide, reply, start
from workflows.failed_delivery import FailedDeliveryWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _refused_then_standard(harness: Harness) -> WorkflowHandle[Any, Any]:
    world = harness.world
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(FailedDeliveryWorkflow.customer_replied, reply(CustomerOption.RESCHEDULE))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide,
        decide(DeliveryDecision.RESHIP, service_level=ServiceLevel.EXPRESS),
    )
    await eventually(lambda: "reship_refused" in world.audit.actions(handle.id))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide,
        decide(DeliveryDecision.RESHIP, service_level=ServiceLevel.STANDARD),
    )
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
            "failed_delivery_reship_refused",
            [FailedDeliveryWorkflow],
            FakeWorld(refuse_reship_bookings=1),
            _refused_then_standard,
            Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES,
        )
    )
