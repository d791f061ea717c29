"""Record the histories of the ops desk's follow-ups (issue 17), replayed by
tests/replay/test_ops_request_replay.py and test_fulfilment_replay.py beside
the histories recorded before them (which keep replaying unchanged):

- ops_request_escalation_next_check (`ops-escalation-next-check`): an
  escalation's next check time comes unanswered: a reminder on the task, the
  escalation channel and the owner's thread are told again; then answered and
  resolved.
- ops_request_mis_pick_reallocated (`ops-mis-pick-reallocate`): an inventory
  discrepancy resolved as a mis-pick: fulfilment re-allocates each affected
  order, then the desk's holds are released.
- fulfilment_mis_pick_reallocated: the fulfilment's side, its `reallocate`
  update (a new update: runs that never receive it are unchanged); the order
  is then picked, packed, handed over and delivered.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_ops_request_followup_histories [OUT_DIR]
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.common import Role
from domain.fulfilment import (
    FulfilmentContract,
    FulfilmentStatus,
    ReallocateInput,
    WarehouseEventKind,
)
from domain.ops_request import (
    EscalateInput,
    EscalationAnswerInput,
    InventoryResolution,
    OutcomeCode,
    ResolveInput,
    RootCause,
)
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness, eventually
from tests.workflows.test_fulfilment import COORDINATOR as FULFILMENT_COORDINATOR
from tests.workflows.test_fulfilment import event, fulfilment_input, reach, update
from tests.workflows.test_fulfilment import start as start_fulfilment
from tests.workflows.test_ops_request import COORDINATOR, OpsWorld, request, start
from workflows.fulfilment import FulfilmentWorkflow
from workflows.ops_request import OpsRequestWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _escalation_next_check(harness: Harness) -> WorkflowHandle[Any, Any]:
    input = request(harness, {"type": "other", "order_id": "FR-7201"})
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    await handle.execute_update(
        OpsRequestWorkflow.escalate,
        EscalateInput(
            actor="camille",
            role=Role.COORDINATOR,
            summary="customer wants a call back",
            tried="called twice",
            blocker="no phone slot",
            needed_from="CS lead",
            needed_what="a call slot",
            next_check_at=harness.now() + timedelta(minutes=30),
        ),
    )
    await harness.sleep(timedelta(minutes=35))
    await eventually(
        lambda: harness.world.audit.entries("escalation_next_check"), what="the next check"
    )
    await handle.execute_update(
        OpsRequestWorkflow.answer_escalation,
        EscalationAnswerInput(actor="sam.qa", role=Role.MANAGER, note="slot at 15:00"),
    )
    await handle.execute_update(
        OpsRequestWorkflow.resolve,
        ResolveInput(
            actor="camille",
            role=Role.COORDINATOR,
            outcome=OutcomeCode.DONE,
            root_cause=RootCause.CUSTOMER_REQUEST,
        ),
    )
    await handle.result()
    return handle


async def _mis_pick(harness: Harness) -> WorkflowHandle[Any, Any]:
    input = request(
        harness,
        {
            "type": "inventory_discrepancy",
            "site_id": "PAR1",
            "sku": "BAG-002",
            "wms_quantity": 4,
            "erp_quantity": 5,
            "unit_cost_minor": 90_000,
            "currency": "EUR",
            "affected_order_ids": ["FR-7301", "FR-7302"],
        },
    )
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    await handle.execute_update(
        OpsRequestWorkflow.resolve,
        ResolveInput(
            actor="camille",
            role=Role.COORDINATOR,
            outcome=OutcomeCode.DONE,
            root_cause=RootCause.WAREHOUSE_ERROR,
            inventory=InventoryResolution.MIS_PICK,
        ),
    )
    await handle.result()
    return handle


async def _fulfilment_reallocated(harness: Harness) -> WorkflowHandle[Any, Any]:
    input = fulfilment_input(harness)
    handle = await start_fulfilment(harness, input)
    oid, t0 = input.order_id, harness.now()
    signal = FulfilmentContract.SIGNAL_WAREHOUSE_EVENT
    await handle.signal(signal, event(oid, WarehouseEventKind.ALLOCATED, t0))
    await reach(handle, FulfilmentStatus.ALLOCATED)
    await update(
        handle,
        FulfilmentContract.UPDATE_REALLOCATE,
        ReallocateInput(
            reference="ops-realloc-ops-7301", note="mis-pick of BAG-002", **FULFILMENT_COORDINATOR
        ),
    )
    for n, (kind, after) in enumerate(
        (
            (WarehouseEventKind.PICKING_STARTED, timedelta(minutes=30)),
            (WarehouseEventKind.PACKING_STARTED, timedelta(minutes=50)),
            (WarehouseEventKind.PACKED, timedelta(minutes=70)),
        )
    ):
        await handle.signal(signal, event(oid, kind, t0 + after, n=str(n)))
    await handle.signal(
        signal,
        event(
            oid,
            WarehouseEventKind.HANDED_TO_CARRIER,
            t0 + timedelta(hours=3),
            carrier="ups",
            tracking_number="1ZREC0301",
        ),
    )
    await reach(handle, FulfilmentStatus.HANDED_TO_CARRIER)
    await handle.signal(signal, event(oid, WarehouseEventKind.DELIVERED, t0 + timedelta(days=1)))
    await handle.result()
    return handle


async def main(out: Path) -> None:
    for name, scenario in (
        ("ops_request_escalation_next_check", _escalation_next_check),
        ("ops_request_mis_pick_reallocated", _mis_pick),
    ):
        await record_history(name, [OpsRequestWorkflow], OpsWorld(), scenario, out)
    await record_history(
        "fulfilment_mis_pick_reallocated",
        [FulfilmentWorkflow],
        FakeWorld(),
        _fulfilment_reallocated,
        out,
    )


if __name__ == "__main__":
    run_recorder(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
