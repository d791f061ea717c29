"""Order review revision 4 (issue 17): the SLA ladder counts in business
hours of the market desk's calendar; runs of earlier revisions keep
wall-clock SLAs whatever their policy carries."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from domain.business_hours import BusinessCalendar, CalendarSpec, DayHours, build_calendar
from domain.review import ReviewPolicy, ReviewStatus, review_input
from tests.factories import make_order
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.test_order_review import POLICY, REVIEW, fresh_order, start
from workflows.order_review import OrderReviewWorkflow

pytestmark = [pytest.mark.workflows([OrderReviewWorkflow]), pytest.mark.world(risk=REVIEW)]


def closed_today_and_tomorrow(now: datetime) -> BusinessCalendar:
    """Open 06:00-22:00 UTC every day, but closed today and tomorrow (the test
    server's dates): the SLA starts counting the day after tomorrow at 06:00."""
    day = DayHours(opens=time(6), closes=time(22))
    spec = CalendarSpec(
        timezone="UTC",
        country="GB",
        week=[day] * 7,
        closures={now.date(): "closed", now.date() + timedelta(days=1): "closed"},
    )
    calendar = build_calendar("test:review-desk", spec, starting=now.date())
    return calendar.model_copy(
        update={"closed_days": {d: n for d, n in calendar.closed_days.items() if n == "closed"}}
    )


def policy_with(calendar: BusinessCalendar) -> ReviewPolicy:
    return POLICY.model_copy(update={"calendar": calendar})


async def test_revision_4_counts_the_sla_in_business_hours(
    harness: Harness, world: FakeWorld
) -> None:
    now = harness.now()
    calendar = closed_today_and_tomorrow(now)
    handle = await start(harness, fresh_order(now), policy_with(calendar), revision=4)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    opens = datetime.combine(now.date() + timedelta(days=2), time(6), tzinfo=now.tzinfo)
    state = await handle.query(OrderReviewWorkflow.status)
    assert state.due_at == opens + POLICY.review_sla
    # Five wall-clock hours later a wall-clock SLA would have reminded and escalated.
    await harness.sleep(POLICY.review_sla + timedelta(hours=1))
    state = await handle.query(OrderReviewWorkflow.status)
    assert (state.reminders_sent, state.escalated) == (0, False)
    # The reminder comes two business hours after the desk opens.
    server_now = await harness.env.get_current_time()
    await harness.sleep(opens + POLICY.reminder_after + timedelta(minutes=1) - server_now)
    await eventually(lambda: "review_reminder" in world.audit.actions(), what="the reminder")
    state = await handle.query(OrderReviewWorkflow.status)
    assert (state.reminders_sent, state.escalated) == (1, False)


async def test_revision_3_keeps_wall_clock_slas(harness: Harness, world: FakeWorld) -> None:
    now = harness.now()
    calendar = closed_today_and_tomorrow(now)
    handle = await start(harness, fresh_order(now), policy_with(calendar), revision=3)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    await harness.sleep(POLICY.review_sla + timedelta(minutes=5))
    state = await handle.query(OrderReviewWorkflow.status)
    assert state.escalated and state.reminders_sent == 1


def test_new_reviews_carry_their_market_desk_calendar() -> None:
    french = review_input(make_order(order_id="FR-BH-1"))
    assert french.revision == 4
    assert french.policy.calendar is not None
    assert french.policy.calendar.timezone == "Europe/Paris"
    american = make_order(order_id="US-BH-1")
    american = american.model_copy(update={"market": "US"})
    assert review_input(american).policy.calendar is None
