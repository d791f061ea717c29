"""An inventory write-off needs finance's approval above its own currency's
threshold (issue 15, domain/money_thresholds.py `ops_write_off_approval_minor`),
not above 100,000 minor units of any currency: 150,000 JPY (about 930 EUR) is
resolved by the desk, 2,000,000 KRW (about 1,360 EUR) waits for finance."""

from __future__ import annotations

import pytest

from domain.common import Role
from domain.ops_request import (
    InventoryResolution,
    OpsRequestStatus,
    OutcomeCode,
    ResolveInput,
    RootCause,
    write_off_needs_approval,
)
from tests.workflows.harness import Harness
from tests.workflows.stand_ins import StandInCarrierClaim
from tests.workflows.test_ops_request import COORDINATOR, OpsWorld, request, start
from workflows.ops_request import OpsRequestWorkflow

pytestmark = pytest.mark.workflows([OpsRequestWorkflow, StandInCarrierClaim])


@pytest.fixture
def world() -> OpsWorld:
    return OpsWorld()


def test_the_threshold_is_the_currency_s_own() -> None:
    assert not write_off_needs_approval(100_000, "EUR")
    assert write_off_needs_approval(100_001, "EUR")
    assert not write_off_needs_approval(150_000, "JPY")  # flat 100,000 asked finance
    assert write_off_needs_approval(1_500_001, "KRW")
    # A currency without thresholds: every write-off goes to finance.
    assert write_off_needs_approval(1, "NOK")


def _adjusted() -> ResolveInput:
    return ResolveInput(
        actor="camille",
        role=Role.COORDINATOR,
        outcome=OutcomeCode.DONE,
        root_cause=RootCause.STOCK_RECORD_ERROR,
        inventory=InventoryResolution.ADJUSTED,
    )


@pytest.mark.parametrize(
    ("currency", "unit_cost_minor", "status"),
    [
        ("JPY", 150_000, OpsRequestStatus.RESOLVED),
        ("KRW", 2_000_000, OpsRequestStatus.AWAITING_FINANCE),
    ],
)
async def test_a_write_off_asks_finance_above_its_currency_s_threshold(
    harness: Harness, world: OpsWorld, currency: str, unit_cost_minor: int, status: str
) -> None:
    input = request(
        harness,
        {
            "type": "inventory_discrepancy",
            "site_id": "PAR1",
            "sku": "BAG-JP-1",
            "wms_quantity": 1,
            "erp_quantity": 2,
            "unit_cost_minor": unit_cost_minor,
            "currency": currency,
        },
        chat=False,
    )
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    resolved = await handle.execute_update(OpsRequestWorkflow.resolve, _adjusted())
    assert resolved.write_off_minor == unit_cost_minor
    assert resolved.status == status
    finance_tasks = [k for k in world.audit.opened_task_kinds() if k[0] == "write_off_approval"]
    assert finance_tasks == (
        [] if status == OpsRequestStatus.RESOLVED else [("write_off_approval", Role.FINANCE)]
    )
