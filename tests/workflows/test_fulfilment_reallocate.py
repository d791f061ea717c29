"""Fulfilment's `reallocate` update (issue 17): the ops desk resolves an
inventory discrepancy as a mis-pick and the order gets another unit; none in
stock, an inventory hold keeps it from being picked. A retried request (same
reference) allocates once; the roles and statuses that may not are refused."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.common import Role
from domain.fulfilment import (
    FulfilmentContract,
    FulfilmentStatus,
    HoldReason,
    ReallocateInput,
    WarehouseEventKind,
)
from tests.workflows.harness import FakeWorld, Harness
from tests.workflows.test_fulfilment import event, fulfilment_input, reach, start, update
from workflows.fulfilment import FulfilmentWorkflow

pytestmark = pytest.mark.workflows([FulfilmentWorkflow])

DESK: dict[str, Any] = {"actor": "camille", "role": Role.COORDINATOR}


def reallocate(reference: str, **who: Any) -> ReallocateInput:
    return ReallocateInput(reference=reference, note="mis-pick of BAG-1", **(who or DESK))


async def test_a_mis_pick_allocates_another_unit_once(harness: Harness, world: FakeWorld) -> None:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    await handle.signal(
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event(input.order_id, WarehouseEventKind.ALLOCATED, harness.now()),
    )
    await reach(handle, FulfilmentStatus.ALLOCATED)

    with pytest.raises(WorkflowUpdateFailedError) as wrong_role:
        await update(
            handle,
            FulfilmentContract.UPDATE_REALLOCATE,
            reallocate("ops-realloc-1", actor="fin", role=Role.FINANCE),
        )
    assert "role: finance may not re-allocate" in str(wrong_role.value.cause)

    state = await update(handle, FulfilmentContract.UPDATE_REALLOCATE, reallocate("ops-r-1"))
    (done,) = state.reallocations
    assert (done.reference, done.allocated, done.requested_by) == ("ops-r-1", True, "camille")
    # A retried request with the same reference allocates nothing more.
    state = await update(handle, FulfilmentContract.UPDATE_REALLOCATE, reallocate("ops-r-1"))
    assert len(state.reallocations) == 1
    assert [(r.order_id, r.attempt) for r in world.fulfilment.replacements] == [(input.order_id, 1)]
    assert "reallocated" in world.audit.actions(handle.id)
    assert state.active_holds == []


@pytest.mark.world(no_replacement=True)
async def test_no_unit_to_reallocate_holds_the_order(harness: Harness, world: FakeWorld) -> None:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    state = await update(handle, FulfilmentContract.UPDATE_REALLOCATE, reallocate("ops-r-2"))
    assert not state.reallocations[0].allocated
    assert [h.reason for h in state.active_holds] == [HoldReason.INVENTORY]
    assert not world.fulfilment.can_pick(input.order_id)
    assert "reallocation_unavailable" in world.audit.actions(handle.id)


async def test_a_parcel_that_left_the_warehouse_is_not_reallocated(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    for n, kind in enumerate(
        (
            WarehouseEventKind.ALLOCATED,
            WarehouseEventKind.PICKING_STARTED,
            WarehouseEventKind.PACKING_STARTED,
            WarehouseEventKind.PACKED,
            WarehouseEventKind.HANDED_TO_CARRIER,
        )
    ):
        await handle.signal(
            FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
            event(
                input.order_id,
                kind,
                harness.now(),
                n=str(n),
                **(
                    {"carrier": "ups", "tracking_number": "1Z1"}
                    if kind is WarehouseEventKind.HANDED_TO_CARRIER
                    else {}
                ),
            ),
        )
    await reach(handle, FulfilmentStatus.HANDED_TO_CARRIER)
    with pytest.raises(WorkflowUpdateFailedError) as left:
        await update(handle, FulfilmentContract.UPDATE_REALLOCATE, reallocate("ops-r-3"))
    assert "has left the warehouse" in str(left.value.cause)
    assert world.fulfilment.replacements == []
