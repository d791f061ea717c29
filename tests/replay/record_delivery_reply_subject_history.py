"""Record the history of a failed delivery whose customer reply keeps its
words in the personal-data store (issue 21: `CustomerReply.message_subject_id`,
set by the API), replayed by tests/replay/test_delivery_replay.py:

- failed_delivery_reply_subject: the customer answers with a message kept by
  subject id (the case and the audit hold no text), the parcel is reshipped
  and delivered.

    .venv/bin/python -m tests.replay.record_delivery_reply_subject_history [OUT_DIR]
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


async def _reply_by_subject(harness: Harness) -> WorkflowHandle[Any, Any]:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    sent = reply(CustomerOption.RESCHEDULE).model_copy(
        update={"message_subject_id": "subj_reply-history-0001"}
    )
    await handle.signal(FailedDeliveryWorkflow.customer_replied, sent)
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
            "failed_delivery_reply_subject",
            [FailedDeliveryWorkflow],
            FakeWorld(),
            _reply_by_subject,
            Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES,
        )
    )
