"""A capture the review gives up on (issue 12, item 3): before the order is
cancelled, the provider's final word on it is awaited, and money it took
after all is refunded exactly once, with an audit row and a finance task.

The outside world is the harness's FakeWorld: `capture_outages` makes every
capture attempt fail until the 2 h give-up; `late_capture` is what the
provider finally did. The ledger side (the notification booking the capture,
the refund booked once) is tests/integration/test_adyen_modifications.py.
"""

from __future__ import annotations

import pytest

from domain.common import Role
from domain.review import ReviewStatus
from tests.workflows.harness import FakeWorld, Harness
from tests.workflows.test_order_review import ACCEPT, start, world
from workflows.order_review import LATE_CAPTURE_REFUND, OrderReviewWorkflow

pytestmark = [pytest.mark.workflows([OrderReviewWorkflow])]

NEVER = 10**6


@world(ACCEPT, capture_outages=NEVER, late_capture=True)
async def test_a_capture_confirmed_after_the_give_up_is_refunded_once(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    result = await handle.result()

    assert result.status is ReviewStatus.CANCELLED
    assert result.captured_minor == 0
    [check] = world.payments.capture_outcome_checks
    assert check.operation_id == "capture"  # the capture's own key: nothing sent again
    [refund] = world.payments.refunds
    assert refund.operation_id == LATE_CAPTURE_REFUND
    assert refund.amount_minor == check.amount_minor
    actions = world.audit.actions()
    assert actions.index("capture_failed") < actions.index("late_capture")
    assert actions.index("late_capture_refunded") < actions.index("authorisation_voided")
    assert ("late_capture", Role.FINANCE) in world.audit.opened_task_kinds()


@world(ACCEPT, capture_outages=NEVER)
async def test_a_capture_the_provider_never_took_just_cancels(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    result = await handle.result()

    assert result.status is ReviewStatus.CANCELLED
    assert len(world.payments.capture_outcome_checks) == 1
    assert world.payments.refunds == []
    assert "capture_not_taken" in world.audit.actions()
    assert world.audit.opened_task_kinds() == []


@world(ACCEPT, refuse_capture=True, late_capture=True)
async def test_a_refused_capture_is_final_and_not_asked_again(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    result = await handle.result()

    assert result.status is ReviewStatus.CANCELLED
    assert world.payments.capture_outcome_checks == []
    assert world.payments.refunds == []
