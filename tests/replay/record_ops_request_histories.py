"""Record the ops request histories, replayed by
tests/replay/test_ops_request_replay.py:

- ops_request_address_change_escalated: claimed, escalated to the senior QA
  coordinator (a reminder at half its SLA), answered, resolved: fulfilment
  changes the address.
- ops_request_inventory_write_off: inventory holds, a recount, a write-off
  above the threshold approved by finance (another person), holds released.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a `workflow.patched`.

    .venv/bin/python -m tests.replay.record_ops_request_histories [OUT_DIR]
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.common import Role
from domain.ops_request import (
    EscalateInput,
    EscalationAnswerInput,
    FinanceApprovalInput,
    InventoryResolution,
    OutcomeCode,
    RecountInput,
    ResolveInput,
    RootCause,
)
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import Harness
from tests.workflows.test_ops_request import COORDINATOR, OpsWorld, address, request, start
from workflows.ops_request import OpsRequestWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _address_change_escalated(harness: Harness) -> WorkflowHandle[Any, Any]:
    input = request(
        harness, {"type": "address_change", "order_id": "FR-7001", "address": address()}
    )
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    await handle.execute_update(
        OpsRequestWorkflow.escalate,
        EscalateInput(
            actor="camille",
            role=Role.COORDINATOR,
            summary="customer moved",
            tried="called the carrier",
            blocker="parcel at the hub",
            needed_from="carrier desk",
            needed_what="an intercept",
            next_check_at=harness.now() + timedelta(hours=3),
        ),
    )
    await harness.sleep(timedelta(hours=1, minutes=5))
    await handle.execute_update(
        OpsRequestWorkflow.answer_escalation,
        EscalationAnswerInput(actor="sam.qa", role=Role.MANAGER, note="intercept booked"),
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


async def _inventory_write_off(harness: Harness) -> WorkflowHandle[Any, Any]:
    input = request(
        harness,
        {
            "type": "inventory_discrepancy",
            "site_id": "PAR1",
            "sku": "BAG-001",
            "wms_quantity": 3,
            "erp_quantity": 5,
            "unit_cost_minor": 120_000,
            "currency": "EUR",
            "affected_order_ids": ["FR-7101"],
            "cctv_zone": "storage",
        },
    )
    handle = await start(harness, input)
    await handle.execute_update(
        OpsRequestWorkflow.recount, RecountInput(actor="wh.lee", role=Role.OPS, counted_quantity=3)
    )
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    await handle.execute_update(
        OpsRequestWorkflow.resolve,
        ResolveInput(
            actor="camille",
            role=Role.COORDINATOR,
            outcome=OutcomeCode.DONE,
            root_cause=RootCause.STOCK_RECORD_ERROR,
            inventory=InventoryResolution.ADJUSTED,
        ),
    )
    await handle.execute_update(
        OpsRequestWorkflow.approve_write_off,
        FinanceApprovalInput(actor="fin.zoe", role=Role.FINANCE, approved=True),
    )
    await handle.result()
    return handle


async def main(out: Path) -> None:
    for name, scenario in (
        ("ops_request_address_change_escalated", _address_change_escalated),
        ("ops_request_inventory_write_off", _inventory_write_off),
    ):
        await record_history(name, [OpsRequestWorkflow], OpsWorld(), scenario, out)


if __name__ == "__main__":
    run_recorder(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
