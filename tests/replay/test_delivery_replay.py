"""Recorded return, failed-delivery and carrier-claim histories must replay on
the current workflow code.

A failure means a change altered commands a running case already issued:
guard it with `workflow.patched` instead of re-recording
(tests/replay/record_delivery_histories.py).
"""

from __future__ import annotations

import json
from base64 import b64decode
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.carrier_claim import CarrierClaimWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.returns import ReturnWorkflow

HERE = Path(__file__).parent / "histories"
# History -> the workflow it replays on, and the status the recorded run ended in.
RECORDED: dict[str, tuple[type, str]] = {
    "return_refund": (ReturnWorkflow, "refunded"),
    "return_manual_qc_partial_refund": (ReturnWorkflow, "refunded"),
    "return_lost_parcel_claim": (ReturnWorkflow, "lost_in_transit"),
    "failed_delivery_reship": (FailedDeliveryWorkflow, "delivered"),
    "failed_delivery_return_to_stock": (FailedDeliveryWorkflow, "refunded"),
    "carrier_claim_filed": (CarrierClaimWorkflow, "approved"),
    # Recorded on the code before the lost-parcel claim and the found-after-
    # filing wake-up: runs started then still replay through their patches.
    "return_lost_parcel_before_claim_patch": (ReturnWorkflow, "lost_in_transit"),
    "carrier_claim_filed_before_found_patch": (CarrierClaimWorkflow, "approved"),
    # Before the carrier-event handler became async to forward to claims.
    "failed_delivery_reship_before_forward_patch": (FailedDeliveryWorkflow, "delivered"),
    # The `return-refund-failed-task` patch: a refused refund opens a finance task.
    "return_refund_refused_finance_task": (ReturnWorkflow, "refund_failed"),
    # The `claim-outcome-while-filing` patch: an answer before the filing's result counts.
    "carrier_claim_outcome_while_filing": (CarrierClaimWorkflow, "approved"),
    # The `customer-reply-text-private` patch: the reply's text stays out of the audit.
    "failed_delivery_private_reply": (FailedDeliveryWorkflow, "delivered"),
    # The `claim-out-of-window` patch: opened past the carrier's window, never filed.
    "carrier_claim_out_of_window": (CarrierClaimWorkflow, "out_of_window"),
    # The `reship-booking-refused` patch: a refused label goes back to a coordinator.
    "failed_delivery_reship_refused": (FailedDeliveryWorkflow, "delivered"),
    # Issue 17's business-hours SLAs (`return-qc-business-hours-sla`,
    # `failed-delivery-business-hours-sla`): the SLA counts in the policy's calendar.
    "return_manual_qc_business_hours": (ReturnWorkflow, "refunded"),
    "failed_delivery_business_hours_default": (FailedDeliveryWorkflow, "delivered"),
    # The `return-campaign-quota-back` patch: an employee-sale return gives the quota back.
    "return_employee_sale_quota_back": (ReturnWorkflow, "refunded"),
    # Issue 21: the customer's reply carries its words by subject id.
    "failed_delivery_reply_subject": (FailedDeliveryWorkflow, "delivered"),
    # Issue 21: the shipment pseudonymised (its subject id), the new address by
    # reference; and a case started in clear that gets the address by reference.
    "failed_delivery_subject_reship": (FailedDeliveryWorkflow, "delivered"),
    "failed_delivery_clear_shipment_address_ref": (FailedDeliveryWorkflow, "delivered"),
}


def _final_status(text: str) -> str:
    last = json.loads(text)["events"][-1]
    payload = last["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]
    status: str = json.loads(b64decode(payload["data"]))["status"]
    return status


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_delivery_history_replays(name: str) -> None:
    workflow, status = RECORDED[name]
    text = (HERE / f"{name}.json").read_text()
    # The recorded run took the path its name says.
    assert _final_status(text) == status
    history = WorkflowHistory.from_json(f"replay-{name}", text)
    replayer = Replayer(workflows=[workflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
