"""Record the histories of the business-hours coordinator SLAs (issue 17),
replayed by tests/replay/test_delivery_replay.py beside the histories
recorded before them (which keep replaying unchanged, wall-clock):

- return_manual_qc_business_hours (`return-qc-business-hours-sla`): the
  manual QC's SLA counts in business hours of a calendar closed the day the
  return opens and the next; the senior QA coordinator takes over in business
  time and decides a partial refund.
- failed_delivery_business_hours_default (`failed-delivery-business-hours-sla`):
  the decision's SLA counts in business hours of the same calendar; nobody
  decides, the default (the recommended reship) acts in business time and the
  reshipped parcel is delivered.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_business_hours_task_histories [OUT_DIR]
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.carrier_events import TrackingStatus
from domain.common import Role
from domain.deliveries import CustomerOption, FailedDeliveryStatus
from domain.returns import QcDecisionInput, QcGrade, QcOutcome, ReturnStatus
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import LOW_RISK, FakeWorld, Harness, wait_for_status
from tests.workflows.inputs import shipment, tracking_event
from tests.workflows.test_coordinator_business_hours import desk_opening
from tests.workflows.test_failed_delivery import NEW_ADDRESS, reply
from tests.workflows.test_failed_delivery import POLICY as DELIVERY_POLICY
from tests.workflows.test_failed_delivery import start as start_delivery
from tests.workflows.test_order_review_business_hours import closed_today_and_tomorrow
from tests.workflows.test_returns import POLICY as RETURN_POLICY
from tests.workflows.test_returns import deliver, qc, return_input
from tests.workflows.test_returns import start as start_return
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.returns import ReturnWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _manual_qc(harness: Harness) -> WorkflowHandle[Any, Any]:
    now = harness.now()
    policy = RETURN_POLICY.model_copy(
        update={
            "calendar": closed_today_and_tomorrow(now),
            "manual_qc_business_sla": timedelta(hours=4),
        }
    )
    handle = await start_return(harness, return_input(now, serial="SN-1", policy=policy))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc(QcGrade.KO, serial_number_seen="SN-X"))
    await wait_for_status(handle, ReturnStatus.MANUAL_QC)
    server_now = await harness.env.get_current_time()
    await harness.sleep(desk_opening(now) + timedelta(hours=4, minutes=5) - server_now)
    await handle.execute_update(
        ReturnWorkflow.qc_decision,
        QcDecisionInput(
            grade=QcGrade.SECOND_CHOICE,
            reason="scuffed corner",
            outcome=QcOutcome.PARTIAL_REFUND,
            partial_refund_minor=50_000,
            actor="sophie",
            role=Role.MANAGER,
        ),
    )
    await handle.result()
    return handle


async def _delivery_default(harness: Harness) -> WorkflowHandle[Any, Any]:
    now = harness.now()
    policy = DELIVERY_POLICY.model_copy(
        update={
            "calendar": closed_today_and_tomorrow(now),
            "decision_business_sla": timedelta(hours=5),
        }
    )
    record = shipment(now)
    handle = await start_delivery(harness, record, policy=policy)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address=NEW_ADDRESS),
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    server_now = await harness.env.get_current_time()
    await harness.sleep(desk_opening(now) + timedelta(hours=5, minutes=5) - server_now)
    await wait_for_status(handle, FailedDeliveryStatus.RESHIPPED)
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        tracking_event(
            record,
            TrackingStatus.DELIVERED,
            tracking=f"RESHIP-{record.shipment_id}",
            at=await harness.env.get_current_time(),
        ),
    )
    await handle.result()
    return handle


async def main(out: Path) -> None:
    await record_history(
        "return_manual_qc_business_hours", [ReturnWorkflow], FakeWorld(), _manual_qc, out
    )
    await record_history(
        "failed_delivery_business_hours_default",
        [FailedDeliveryWorkflow],
        FakeWorld(risk=LOW_RISK),
        _delivery_default,
        out,
    )


if __name__ == "__main__":
    run_recorder(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
