"""A step write the store refuses for good (issue 14, bug 2): the case does
not retry it for ever, it records a `step_write_failed` audit row and an ops
task in values the store always takes, closes the tasks the step closed, and
goes on, so a declined order is still voided (workflows/steps.py)."""

from __future__ import annotations

import pytest

from domain.audit import STEP_WRITE_FAILED
from domain.common import Role
from domain.review import DecisionReason, ReviewDecision, ReviewStatus
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.test_order_review import ACCEPT, DECLINE, REVIEW, decide, start
from workflows.order_review import OrderReviewWorkflow
from workflows.steps import STEP_WRITE_FAILURE_PATCH

pytestmark = [pytest.mark.workflows([OrderReviewWorkflow])]


@pytest.mark.world(risk=REVIEW, refuse_action="decision_decline")
async def test_a_refused_decision_step_is_recorded_for_ops_and_the_void_still_goes_out(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    review_task = f"{handle.id}/review/1"
    assert world.audit.opened_tasks() == [review_task]

    after = await handle.execute_update(
        OrderReviewWorkflow.decide,
        decide(ReviewDecision.DECLINE, DecisionReason.SUSPECTED_FRAUD, note="card stolen"),
    )
    assert after.status is ReviewStatus.CANCELLING
    result = await handle.result()

    # Refused once, not retried; the money side went on.
    assert world.audit.refused == 1
    assert result.status is ReviewStatus.CANCELLED
    assert world.payments.kinds() == ["void"]
    # What was lost is named, in ids and action names only.
    failed = world.audit.entry(STEP_WRITE_FAILED)
    assert "StepWriteRefused" not in failed.reason  # the activity's own words, not its type
    assert "CharacterNotInRepertoireError (SQLSTATE 22021)" in failed.reason
    assert "decision_decline" in failed.reason and "card stolen" not in failed.reason
    # An ops task says so; the decided review task is closed all the same.
    ops_tasks = [
        (o.task_id, o.awaited_role, o.kind)
        for t in world.audit.transitions
        for o in t.open_tasks
        if o.kind == STEP_WRITE_FAILED
    ]
    # Numbered by the run's entry count, so a second lost step opens another.
    assert [(role, kind) for _, role, kind in ops_tasks] == [(Role.OPS, STEP_WRITE_FAILED)]
    number = ops_tasks[0][0].removeprefix(f"{handle.id}/{STEP_WRITE_FAILED}/")
    assert number.isdigit() and int(number) > 1
    assert review_task in world.audit.closed_tasks()
    # Later steps are written as before.
    assert world.audit.cases()[-1].status == ReviewStatus.CANCELLED.value
    history = await handle.fetch_history()
    markers = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    assert len(markers) == 1
    assert STEP_WRITE_FAILURE_PATCH.encode() in markers[0].SerializeToString()


@pytest.mark.world(risk=ACCEPT)
async def test_a_case_whose_steps_are_written_records_no_patch(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(harness)
    assert (await handle.result()).status is ReviewStatus.RELEASED
    assert STEP_WRITE_FAILED not in world.audit.actions()
    history = await handle.fetch_history()
    assert not [
        e
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]


@pytest.mark.world(risk=DECLINE, refuse_action="authorisation_voided")
async def test_a_lost_step_names_the_outcome_it_could_not_write_back(
    harness: Harness, world: FakeWorld
) -> None:
    """Issue 15: the cancelled step carries the order's outcome; if the store
    refuses it, the record for ops says which outcome was not written."""
    handle = await start(harness)
    result = await handle.result()
    assert result.status is ReviewStatus.CANCELLED
    failed = world.audit.entry(STEP_WRITE_FAILED)
    assert f"outcomes [{handle.id}#cancelled_fraud]" in failed.reason
    assert world.audit.outcomes() == []  # refused with its step: nothing counted
