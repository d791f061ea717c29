"""Record the fulfilment histories (issue 16), replayed by
tests/replay/test_fulfilment_replay.py, and the chargeback history of the
`chargeback-efw-fulfilment` patch (replayed by test_chargeback_replay.py):

- fulfilment_hold_address_delivered: a hold placed and released, an address
  change before packing, warehouse events out of order (one stale), a
  special delivery booked at handover, delivered;
- fulfilment_qc_fail_escalated_cancel: outbound QC triggered at release, a
  reminder, a fail with no replacement unit, the senior QA coordinator
  cancels with a refund, the customer told;
- fulfilment_fraud_warning_accept: an early fraud warning's hold, then its
  acceptance: cancelled, refunded once;
- chargeback_efw_fulfilment_told: an early fraud warning nobody decides:
  the fulfilment hears the hold, then the default accept;
- fulfilment_rev2_hold_address_delivered: the first scenario at revision 2
  (the first step publishes no search attributes);
- fulfilment_rev3_hold_address_delivered, fulfilment_rev3_qc_fail_escalated_cancel:
  the first two scenarios at revision 3 (the starter writes the start's rows).
  The three fulfilment histories above were recorded at revision 1.

Only histories not on disk yet are recorded (name some to re-record them).

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_fulfilment_histories
"""

from __future__ import annotations

import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.chargeback import DisputeEventKind
from domain.fulfilment import (
    ChangeAddressInput,
    FraudWarning,
    FraudWarningAction,
    FulfilmentContract,
    FulfilmentStatus,
    HoldReason,
    PlaceHoldInput,
    QcDecisionInput,
    QcOutcome,
    ReleaseHoldInput,
    SpecialDeliveryInput,
    SpecialDeliveryKind,
    WarehouseEventKind,
)
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness, eventually
from tests.workflows.test_chargeback import event as chargeback_event
from tests.workflows.test_chargeback import start as start_chargeback
from tests.workflows.test_fulfilment import (
    COORDINATOR,
    LYON,
    MANAGER,
    QA,
    event,
    fulfilment_input,
    reach,
    start,
    update,
)
from workflows.chargeback import ChargebackWorkflow
from workflows.fulfilment import FulfilmentWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _hold_address_delivered(harness: Harness) -> WorkflowHandle[Any, Any]:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    oid, t0 = input.order_id, harness.now()
    signal = FulfilmentContract.SIGNAL_WAREHOUSE_EVENT
    await handle.signal(signal, event(oid, WarehouseEventKind.ALLOCATED, t0))
    state = await update(
        handle,
        FulfilmentContract.UPDATE_PLACE_HOLD,
        PlaceHoldInput(reason=HoldReason.INCORRECT_ADDRESS, note="flat missing", **COORDINATOR),
    )
    await update(
        handle,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        ChangeAddressInput(address=LYON, note="customer moved", **COORDINATOR),
    )
    await update(
        handle,
        FulfilmentContract.UPDATE_RELEASE_HOLD,
        ReleaseHoldInput(handle=state.holds[0].handle, note="fixed", **COORDINATOR),
    )
    await update(
        handle,
        FulfilmentContract.UPDATE_SPECIAL_DELIVERY,
        SpecialDeliveryInput(kind=SpecialDeliveryKind.SIGNATURE, **COORDINATOR),
    )
    await handle.signal(
        signal, event(oid, WarehouseEventKind.PACKING_STARTED, t0 + timedelta(minutes=50))
    )
    await reach(handle, FulfilmentStatus.PACKING)
    await handle.signal(
        signal, event(oid, WarehouseEventKind.PICKING_STARTED, t0 + timedelta(minutes=5))
    )
    await handle.signal(signal, event(oid, WarehouseEventKind.PACKED, t0 + timedelta(minutes=70)))
    await handle.signal(
        signal,
        event(
            oid,
            WarehouseEventKind.HANDED_TO_CARRIER,
            t0 + timedelta(hours=3),
            carrier="ups",
            tracking_number="1ZREC0001",
        ),
    )
    await reach(handle, FulfilmentStatus.HANDED_TO_CARRIER)
    await handle.signal(signal, event(oid, WarehouseEventKind.DELIVERED, t0 + timedelta(days=1)))
    await handle.result()
    return handle


async def _qc_fail_escalated_cancel(harness: Harness) -> WorkflowHandle[Any, Any]:
    input = fulfilment_input(harness, qc=True)
    handle = await start(harness, input)
    await eventually(lambda: harness.world.audit.opened_task_kinds(), what="qc task")
    await harness.sleep(timedelta(hours=2, minutes=5))
    await eventually(lambda: harness.world.audit.entries("qc_reminder_sent"), what="reminder")
    await update(
        handle,
        FulfilmentContract.UPDATE_QC_DECISION,
        QcDecisionInput(outcome=QcOutcome.FAIL, note="scratched clasp", **QA),
    )
    await update(
        handle,
        FulfilmentContract.UPDATE_QC_DECISION,
        QcDecisionInput(outcome=QcOutcome.CANCEL_REFUND, note="no stock", **MANAGER),
    )
    await handle.result()
    return handle


async def _fraud_warning_accept(harness: Harness) -> WorkflowHandle[Any, Any]:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    dispute = "chargeback:stripe:dp_recorded"
    for n, action in enumerate((FraudWarningAction.HOLD, FraudWarningAction.ACCEPT)):
        await handle.signal(
            FulfilmentContract.SIGNAL_FRAUD_WARNING,
            FraudWarning(event_id=f"efw-{n}", action=action, dispute_workflow_id=dispute),
        )
    await handle.result()
    return handle


async def _efw_fulfilment_told(harness: Harness) -> WorkflowHandle[Any, Any]:
    warning = chargeback_event(
        harness.now(),
        DisputeEventKind.EARLY_FRAUD_WARNING,
        dispute_id=f"issfr_recorded_{uuid.uuid4().hex[:6]}",
        due_in=None,
        amount_minor=0,
        order_id="FR-REC-EFW",
    )
    handle = await start_chargeback(harness, warning)
    await handle.result()
    return handle


async def main(names: list[str]) -> None:
    """Record `names` (default: every history not on disk yet: never overwrite one)."""
    for name, workflows, scenario, knobs in (
        ("fulfilment_hold_address_delivered", [FulfilmentWorkflow], _hold_address_delivered, {}),
        (
            "fulfilment_qc_fail_escalated_cancel",
            [FulfilmentWorkflow],
            _qc_fail_escalated_cancel,
            {"no_replacement": True},
        ),
        ("fulfilment_fraud_warning_accept", [FulfilmentWorkflow], _fraud_warning_accept, {}),
        ("chargeback_efw_fulfilment_told", [ChargebackWorkflow], _efw_fulfilment_told, {}),
        # Revision 2: no search-attribute upsert in the first step.
        (
            "fulfilment_rev2_hold_address_delivered",
            [FulfilmentWorkflow],
            _hold_address_delivered,
            {},
        ),
        # Revision 3: the starter writes the start's rows; with QC the first step holds.
        (
            "fulfilment_rev3_hold_address_delivered",
            [FulfilmentWorkflow],
            _hold_address_delivered,
            {},
        ),
        (
            "fulfilment_rev3_qc_fail_escalated_cancel",
            [FulfilmentWorkflow],
            _qc_fail_escalated_cancel,
            {"no_replacement": True},
        ),
    ):
        wanted = name in names if names else not (HISTORIES / f"{name}.json").exists()
        if wanted:
            await record_history(name, workflows, FakeWorld(**knobs), scenario, HISTORIES)


if __name__ == "__main__":
    run_recorder(main(sys.argv[1:]))
