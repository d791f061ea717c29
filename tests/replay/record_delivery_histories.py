"""Record the return, failed-delivery and carrier-claim histories replayed by
tests/replay/test_delivery_replay.py.

Same rule as record_histories.py: re-record only when no run of the old code
is still open anywhere; otherwise guard the change with `workflow.patched`
and keep the old files beside the new ones.

    .venv/bin/python -m tests.replay.record_delivery_histories [--out DIR] [--overwrite] [NAME...]

Only histories not on disk yet are recorded; `--overwrite` (or naming them)
re-records; `--out DIR` writes to another directory (to check the scenarios
still run without touching the recorded files).

`return_lost_parcel_before_claim_patch.json`,
`carrier_claim_filed_before_found_patch.json` and
`failed_delivery_reship_before_forward_patch.json` were recorded with the same
scenarios on the workflow code of commit e7d08cb, before the
`return-lost-parcel-claim`, `claim-found-after-filing` and
`forward-delivered-to-claim` patches: never re-record them.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.carrier_events import TrackingStatus
from domain.claims import ClaimStatus
from domain.common import Role
from domain.deliveries import CustomerOption, DeliveryDecision, FailedDeliveryStatus
from domain.evidence import CctvClipReady, cctv_request_id
from domain.returns import CarrierEventKind, QcDecisionInput, QcGrade, QcOutcome, ReturnStatus
from tests.replay.recording import Scenario, record_history, run_recorder
from tests.workflows import test_carrier_claim as claims
from tests.workflows import test_failed_delivery as deliveries
from tests.workflows import test_returns as returns
from tests.workflows.harness import LOW_RISK, FakeWorld, Harness, wait_for_status
from tests.workflows.inputs import shipment, tracking_event
from tests.workflows.stand_ins import StandInCarrierClaim, StandInOrderReview
from workflows.carrier_claim import CarrierClaimWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.returns import ReturnWorkflow

HISTORIES = Path(__file__).parent / "histories"

RETURN_WORKFLOWS: list[type] = [ReturnWorkflow, StandInOrderReview, StandInCarrierClaim]
DELIVERY_WORKFLOWS: list[type] = [FailedDeliveryWorkflow, CarrierClaimWorkflow]


# ------------------------------------------------------------------ returns


async def _return_refund(harness: Harness) -> WorkflowHandle[Any, Any]:
    handle = await returns.start(harness, returns.return_input(harness.now()))
    await returns.deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, returns.qc())
    await handle.result()
    return handle


async def _return_manual_qc(harness: Harness) -> WorkflowHandle[Any, Any]:
    handle = await returns.start(harness, returns.return_input(harness.now(), serial="SN-1"))
    await returns.deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, returns.qc(QcGrade.KO, serial_number_seen="SN-X"))
    await wait_for_status(handle, ReturnStatus.MANUAL_QC)
    await harness.sleep(timedelta(hours=49))  # past the SLA: the senior QA coordinator decides
    await handle.execute_update(
        ReturnWorkflow.qc_decision,
        QcDecisionInput(
            grade=QcGrade.SECOND_CHOICE,
            reason="scuffed corner",
            outcome=QcOutcome.PARTIAL_REFUND,
            partial_refund_minor=60_000,
            actor="marc",
            role=Role.MANAGER,
        ),
    )
    await handle.result()
    return handle


async def _return_lost_parcel(harness: Harness) -> WorkflowHandle[Any, Any]:
    handle = await returns.start(harness, returns.return_input(harness.now()))
    await wait_for_status(handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(
        ReturnWorkflow.carrier_event, returns.scan(harness, CarrierEventKind.IN_TRANSIT)
    )
    await handle.result()
    return handle


# -------------------------------------------------------- failed deliveries


async def _delivery_reship(harness: Harness) -> WorkflowHandle[Any, Any]:
    record = shipment(harness.now())
    handle = await deliveries.start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied, deliveries.reply(CustomerOption.RESCHEDULE)
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, deliveries.decide(DeliveryDecision.RESHIP)
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


async def _delivery_return_to_stock(harness: Harness) -> WorkflowHandle[Any, Any]:
    record = shipment(harness.now())
    handle = await deliveries.start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, deliveries.decide(DeliveryDecision.RETURN_TO_STOCK)
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    await handle.signal(FailedDeliveryWorkflow.parcel_received, deliveries.received(harness.now()))
    await handle.result()
    return handle


# ------------------------------------------------------------------- claims


async def _claim_filed(harness: Harness) -> WorkflowHandle[Any, Any]:
    """Filed with the CCTV clip, the parcel found after filing, then approved."""
    record = shipment(harness.now())
    handle = await claims.start(harness, record)
    await wait_for_status(handle, ClaimStatus.GATHERING_EVIDENCE)
    await harness.sleep(timedelta(hours=1))
    await handle.signal(
        CarrierClaimWorkflow.cctv_clip_ready,
        CctvClipReady(
            event_id="wh-1",
            request_id=cctv_request_id(handle.id),
            order_id=record.order.order_id,
            clip_ref="cctv/PACK-3/clip-1.mp4",
        ),
    )
    await wait_for_status(handle, ClaimStatus.FILED)
    await harness.sleep(timedelta(days=8))  # one chase
    await handle.signal(
        CarrierClaimWorkflow.carrier_event,
        # Found on the server's clock, 8 days on: after the filing.
        tracking_event(record, TrackingStatus.DELIVERED, at=await harness.env.get_current_time()),
    )
    await harness.sleep(timedelta(days=1))
    await handle.signal(CarrierClaimWorkflow.claim_outcome, claims.outcome(True))
    await handle.result()
    return handle


# name -> (workflows on the worker, the fake world's knobs, scenario)
SCENARIOS: dict[str, tuple[list[type], dict[str, Any], Scenario]] = {
    "return_refund": (RETURN_WORKFLOWS, {}, _return_refund),
    "return_manual_qc_partial_refund": (RETURN_WORKFLOWS, {}, _return_manual_qc),
    "return_lost_parcel_claim": (RETURN_WORKFLOWS, {}, _return_lost_parcel),
    "failed_delivery_reship": (DELIVERY_WORKFLOWS, {"risk": LOW_RISK}, _delivery_reship),
    "failed_delivery_return_to_stock": (
        DELIVERY_WORKFLOWS,
        {"risk": LOW_RISK},
        _delivery_return_to_stock,
    ),
    "carrier_claim_filed": (DELIVERY_WORKFLOWS, {"risk": LOW_RISK}, _claim_filed),
}


async def record(
    out: Path = HISTORIES, *, names: list[str] | None = None, overwrite: bool = False
) -> list[str]:
    """Record `names` (default: every scenario whose file is not in `out` yet,
    or all of them with `overwrite`); the names recorded."""
    unknown = sorted(set(names or []) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown histories {unknown}; known: {sorted(SCENARIOS)}")
    recorded = []
    for name, (workflows, knobs, scenario) in SCENARIOS.items():
        wanted = name in names if names else overwrite or not (out / f"{name}.json").exists()
        if wanted:
            await record_history(name, workflows, FakeWorld(**knobs), scenario, out)
            recorded.append(name)
    return recorded


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help="histories to (re-)record")
    parser.add_argument("--out", type=Path, default=HISTORIES, help="directory to write to")
    parser.add_argument("--overwrite", action="store_true", help="re-record files already there")
    args = parser.parse_args()
    run_recorder(record(args.out, names=args.names, overwrite=args.overwrite))
