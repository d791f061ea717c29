"""Record the histories of failed deliveries on subject ids (issue 21),
replayed by tests/replay/test_delivery_replay.py:

- failed_delivery_subject_reship: started with the shipment pseudonymised
  (its subject id and address fingerprint); the customer's new address comes
  by reference (`CustomerReply.address_ref`), is rescored by the
  `score_delivery_address` activity, the coordinator reships there by
  reference and the second shipment is delivered.
- failed_delivery_clear_shipment_address_ref: a case started with the
  shipment in clear (the shape before) that gets the new address by
  reference, as the API relays it now: rescored and booked by reference.

    .venv/bin/python -m tests.replay.record_delivery_subject_histories [OUT_DIR]
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
    pseudonymise_shipment,
)
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.inputs import shipment, tracking_event
from tests.workflows.test_failed_delivery import decide, reply, start
from tests.workflows.test_failed_delivery_personal_data import NEW_REF, SENT_TO, SUBJECT
from workflows.failed_delivery import FailedDeliveryWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _reship_by_reference(
    harness: Harness, *, pseudonymised: bool
) -> WorkflowHandle[Any, Any]:
    record = shipment(harness.now())
    started = pseudonymise_shipment(record, SUBJECT, SENT_TO) if pseudonymised else record
    handle = await start(harness, started)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address_ref=NEW_REF),
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address_ref=NEW_REF)
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


async def _pseudonymised(harness: Harness) -> WorkflowHandle[Any, Any]:
    return await _reship_by_reference(harness, pseudonymised=True)


async def _clear(harness: Harness) -> WorkflowHandle[Any, Any]:
    return await _reship_by_reference(harness, pseudonymised=False)


async def main(out: Path) -> None:
    await record_history(
        "failed_delivery_subject_reship", [FailedDeliveryWorkflow], FakeWorld(), _pseudonymised, out
    )
    await record_history(
        "failed_delivery_clear_shipment_address_ref",
        [FailedDeliveryWorkflow],
        FakeWorld(),
        _clear,
        out,
    )


if __name__ == "__main__":
    run_recorder(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
