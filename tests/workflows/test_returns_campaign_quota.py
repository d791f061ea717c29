"""A return of an employee-sale order gives the campaign's quota back (issue
18, patch `return-campaign-quota-back`): once the value is given back, each
returned SKU is released under an id derived from the RMA, so a retried step
presents the same releases and the store applies them once. A return that
gives nothing back (the item sent back to the employee) releases nothing.

The eligibility check (FakeReturns, tests/workflows/harness.py) says which
campaign the order was bought in; its `return_campaign_quota` fake applies
each release id once, as store/campaign.py does.
"""

from __future__ import annotations

import pytest

from domain.campaign import ReleaseReason, return_release_id
from domain.common import Role
from domain.returns import QcDecisionInput, QcGrade, QcOutcome, ReturnStatus
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.stand_ins import StandInCarrierClaim, StandInOrderReview
from tests.workflows.test_returns import deliver, qc, return_input, start
from workflows.returns import ReturnWorkflow

pytestmark = pytest.mark.workflows([ReturnWorkflow, StandInOrderReview, StandInCarrierClaim])


@pytest.mark.world(campaign_id="ES-2027-06", campaign_release_failures=1)
async def test_a_refunded_employee_sale_return_gives_the_quota_back_once_when_retried(
    harness: Harness, world: FakeWorld
) -> None:
    request = return_input(harness.now())
    handle = await start(harness, request)
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()

    assert result.status is ReturnStatus.REFUNDED
    returns = world.returns.campaign_returns
    # The first attempt's answer was lost after the store applied it: the
    # retry presents the very same releases, which change nothing twice.
    assert len(returns) == 2 and returns[0] == returns[1]
    (line,) = request.lines
    (release,) = returns[0].releases
    assert (release.release_id, release.sku, release.quantity, release.reason) == (
        return_release_id(request.rma_id, line.sku),
        line.sku,
        line.quantity,
        ReleaseReason.RETURNED,
    )
    assert returns[0].campaign_id == "ES-2027-06"
    assert returns[0].order_id == request.order.order_id
    assert world.returns.campaign_released == [release.release_id]
    entry = world.audit.entry("campaign_quota_returned")
    assert entry.after["already"] == [line.sku] and entry.after["applied"] == []
    # After the money: the refund is issued before the quota moves.
    actions = world.audit.actions(handle.id)
    assert actions.index("refund_issued") < actions.index("campaign_quota_returned")


@pytest.mark.world(campaign_id="ES-2027-06")
async def test_an_item_sent_back_to_the_employee_gives_no_quota_back(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness, return_input(harness.now()))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc(QcGrade.KO))
    await wait_for_status(handle, ReturnStatus.MANUAL_QC)
    await handle.execute_update(
        ReturnWorkflow.qc_decision,
        QcDecisionInput(
            grade=QcGrade.KO,
            reason="worn, not a defect",
            outcome=QcOutcome.RETURN_TO_CUSTOMER,
            actor="alice",
            role=Role.COORDINATOR,
        ),
    )
    result = await handle.result()

    assert result.status is ReturnStatus.RETURNED_TO_CUSTOMER
    assert world.returns.campaign_returns == []
    assert "campaign_quota_returned" not in world.audit.actions(handle.id)
