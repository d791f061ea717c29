"""Record the history of the `ops-write-off-per-currency` patch (issue 15),
replayed by tests/replay/test_ops_request_replay.py beside the ops request
histories recorded before it (which replay unchanged: they take the flat
100,000 minor units):

- ops_request_write_off_jpy: a recount, then a write-off of 150,000 JPY (about
  930 EUR), under the JPY threshold of domain/money_thresholds.py: resolved by
  the desk without finance (the flat threshold asked finance for it).

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_ops_request_write_off_currency_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.common import Role
from domain.ops_request import (
    InventoryResolution,
    OutcomeCode,
    RecountInput,
    ResolveInput,
    RootCause,
)
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import Harness
from tests.workflows.test_ops_request import COORDINATOR, OpsWorld, request, start
from workflows.ops_request import OpsRequestWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _write_off_jpy(harness: Harness) -> WorkflowHandle[Any, Any]:
    input = request(
        harness,
        {
            "type": "inventory_discrepancy",
            "site_id": "PAR1",
            "sku": "BAG-JP-1",
            "wms_quantity": 1,
            "erp_quantity": 2,
            "unit_cost_minor": 150_000,
            "currency": "JPY",
            "affected_order_ids": ["JP-7201"],
        },
    )
    handle = await start(harness, input)
    await handle.execute_update(
        OpsRequestWorkflow.recount, RecountInput(actor="wh.lee", role=Role.OPS, counted_quantity=1)
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
    await handle.result()
    return handle


if __name__ == "__main__":
    run_recorder(
        record_history(
            "ops_request_write_off_jpy",
            [OpsRequestWorkflow],
            OpsWorld(),
            _write_off_jpy,
            Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES,
        )
    )
