"""Record the return, failed-delivery and carrier-claim histories replayed by
tests/replay/test_delivery_replay.py.

Same rule as record_histories.py: re-record only when no run of the old code
is still open anywhere; otherwise guard the change with `workflow.patched`
and keep the old files beside the new ones.

    .venv/bin/python -m tests.replay.record_delivery_histories

`return_lost_parcel_before_claim_patch.json`,
`carrier_claim_filed_before_found_patch.json` and
`failed_delivery_reship_before_forward_patch.json` were recorded with the same
scenarios on the workflow code of commit e7d08cb, before the
`return-lost-parcel-claim`, `claim-found-after-filing` and
`forward-delivered-to-claim` patches: never re-record them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.carrier_events import TrackingStatus
from domain.claims import ClaimStatus
from domain.common import Role
from domain.deliveries import CustomerOption, DeliveryDecision, FailedDeliveryStatus
from domain.evidence import CctvClipReady, cctv_request_id
from domain.returns import CarrierEventKind, QcDecisionInput, QcGrade, QcOutcome, ReturnStatus
from tests.workflows import test_carrier_claim as claims
from tests.workflows import test_failed_delivery as deliveries
from tests.workflows import test_returns as returns
from tests.workflows.conftest import _test_server_binary
from workers.dev_server import ensure_search_attributes
from workflows.carrier_claim import CarrierClaimWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.returns import ReturnWorkflow

HISTORIES = Path(__file__).parent / "histories"

Scenario = Callable[[WorkflowEnvironment, str], Awaitable[WorkflowHandle[Any, Any]]]


# ------------------------------------------------------------------ returns


def _returns_worker(env: WorkflowEnvironment, queue: str) -> Worker:
    world = returns.FakeWorld()
    return Worker(
        env.client,
        task_queue=queue,
        workflows=[ReturnWorkflow, returns.StandInOrderReview, returns.StandInCarrierClaim],
        activities=world.activities(),
    )


async def _return_refund(env: WorkflowEnvironment, queue: str) -> WorkflowHandle[Any, Any]:
    handle = await returns.start(env, queue, returns.return_input())
    await returns.deliver(env, handle)
    await handle.signal(ReturnWorkflow.qc_result, returns.qc())
    await handle.result()
    return handle


async def _return_manual_qc(env: WorkflowEnvironment, queue: str) -> WorkflowHandle[Any, Any]:
    handle = await returns.start(env, queue, returns.return_input(serial="SN-1"))
    await returns.deliver(env, handle)
    await handle.signal(ReturnWorkflow.qc_result, returns.qc(QcGrade.KO, serial_number_seen="SN-X"))
    await returns.wait_for(env, handle, ReturnStatus.MANUAL_QC)
    await env.sleep(timedelta(hours=49))  # past the SLA: the senior QA coordinator decides
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


async def _return_lost_parcel(env: WorkflowEnvironment, queue: str) -> WorkflowHandle[Any, Any]:
    handle = await returns.start(env, queue, returns.return_input())
    await returns.wait_for(env, handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(ReturnWorkflow.carrier_event, returns.scan(CarrierEventKind.IN_TRANSIT))
    await handle.result()
    return handle


# -------------------------------------------------------- failed deliveries


def _deliveries_worker(env: WorkflowEnvironment, queue: str) -> Worker:
    world = deliveries.FakeWorld()
    return Worker(
        env.client,
        task_queue=queue,
        workflows=[FailedDeliveryWorkflow, CarrierClaimWorkflow],
        activities=world.activities(),
    )


async def _delivery_reship(env: WorkflowEnvironment, queue: str) -> WorkflowHandle[Any, Any]:
    record = deliveries.shipment()
    handle = await deliveries.start(env, queue, record)
    await deliveries.wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied, deliveries.reply(CustomerOption.RESCHEDULE)
    )
    await deliveries.wait_for(env, handle, FailedDeliveryStatus.AWAITING_DECISION)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, deliveries.decide(DeliveryDecision.RESHIP)
    )
    await deliveries.wait_for(env, handle, FailedDeliveryStatus.RESHIPPED)
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        deliveries.event(record, TrackingStatus.DELIVERED, tracking=f"RESHIP-{record.shipment_id}"),
    )
    await handle.result()
    return handle


async def _delivery_return_to_stock(
    env: WorkflowEnvironment, queue: str
) -> WorkflowHandle[Any, Any]:
    record = deliveries.shipment()
    handle = await deliveries.start(env, queue, record)
    await deliveries.wait_for(env, handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, deliveries.decide(DeliveryDecision.RETURN_TO_STOCK)
    )
    await deliveries.wait_for(env, handle, FailedDeliveryStatus.AWAITING_RETURN)
    await handle.signal(FailedDeliveryWorkflow.parcel_received, deliveries.received())
    await handle.result()
    return handle


# ------------------------------------------------------------------- claims


async def _claim_filed(env: WorkflowEnvironment, queue: str) -> WorkflowHandle[Any, Any]:
    """Filed with the CCTV clip, the parcel found after filing, then approved."""
    record = deliveries.shipment()
    handle = await claims.start(env, queue, record)
    await claims.wait_for(env, handle, ClaimStatus.GATHERING_EVIDENCE)
    await env.sleep(timedelta(hours=1))
    await handle.signal(
        CarrierClaimWorkflow.cctv_clip_ready,
        CctvClipReady(
            event_id="wh-1",
            request_id=cctv_request_id(handle.id),
            order_id=record.order.order_id,
            clip_ref="cctv/PACK-3/clip-1.mp4",
        ),
    )
    await claims.wait_for(env, handle, ClaimStatus.FILED)
    await env.sleep(timedelta(days=8))  # one chase
    await handle.signal(
        CarrierClaimWorkflow.carrier_event,
        deliveries.event(
            record, TrackingStatus.DELIVERED, at=datetime.now(UTC) + timedelta(days=8)
        ),
    )
    await env.sleep(timedelta(days=1))
    await handle.signal(CarrierClaimWorkflow.claim_outcome, claims.outcome(True))
    await handle.result()
    return handle


SCENARIOS: dict[str, tuple[Callable[[WorkflowEnvironment, str], Worker], Scenario]] = {
    "return_refund": (_returns_worker, _return_refund),
    "return_manual_qc_partial_refund": (_returns_worker, _return_manual_qc),
    "return_lost_parcel_claim": (_returns_worker, _return_lost_parcel),
    "failed_delivery_reship": (_deliveries_worker, _delivery_reship),
    "failed_delivery_return_to_stock": (_deliveries_worker, _delivery_return_to_stock),
    "carrier_claim_filed": (_deliveries_worker, _claim_filed),
}


async def record() -> None:
    for name, (worker, scenario) in SCENARIOS.items():
        # A fresh server per history: its clock only moves forward.
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter,
            test_server_existing_path=_test_server_binary(),
        )
        await ensure_search_attributes(env.client, env.client.namespace)
        try:
            queue = f"record-{uuid.uuid4()}"
            async with worker(env, queue):
                handle = await scenario(env, queue)
                history = await handle.fetch_history()
            (HISTORIES / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")
        finally:
            await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
