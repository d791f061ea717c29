"""Issue 17: the other coordinator tasks count their SLAs in business hours
of the market desk's calendar (a snapshot in the policy, set for the markets
of BUSINESS_HOURS_MARKETS when the case starts): a return's manual QC and a
failed delivery's decision. Runs without a calendar keep wall-clock SLAs
(every test of tests/workflows/test_returns.py and test_failed_delivery.py),
and runs recorded before the patch replay unchanged (tests/replay).

The calendar is open 06:00-22:00 UTC every day but closed today and tomorrow
(the test server's dates): an SLA starts counting the day after tomorrow."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from domain.business_hours import add_business_time, sla_due
from domain.common import Role
from domain.deliveries import (
    CustomerOption,
    FailedDeliveryPolicy,
    FailedDeliveryStatus,
    failed_delivery_policy,
)
from domain.returns import QcGrade, ReturnPolicy, ReturnStatus, return_policy_for
from tests.workflows.harness import LOW_RISK, FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.inputs import shipment
from tests.workflows.stand_ins import StandInCarrierClaim, StandInOrderReview
from tests.workflows.test_failed_delivery import NEW_ADDRESS, reply
from tests.workflows.test_failed_delivery import POLICY as DELIVERY_POLICY
from tests.workflows.test_failed_delivery import start as start_delivery
from tests.workflows.test_order_review_business_hours import closed_today_and_tomorrow
from tests.workflows.test_returns import POLICY as RETURN_POLICY
from tests.workflows.test_returns import deliver, qc, return_input
from tests.workflows.test_returns import start as start_return
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.returns import ReturnWorkflow

pytestmark = [
    pytest.mark.workflows(
        [ReturnWorkflow, StandInOrderReview, StandInCarrierClaim, FailedDeliveryWorkflow]
    ),
    pytest.mark.world(risk=LOW_RISK),
]


def desk_opening(now: datetime) -> datetime:
    """When the test calendar's desk next opens: the day after tomorrow, 06:00 UTC."""
    return datetime.combine(now.date() + timedelta(days=2), time(6), tzinfo=now.tzinfo)


async def test_manual_qc_sla_counts_in_business_hours(harness: Harness, world: FakeWorld) -> None:
    now = harness.now()
    calendar = closed_today_and_tomorrow(now)
    policy: ReturnPolicy = RETURN_POLICY.model_copy(
        update={"calendar": calendar, "manual_qc_business_sla": timedelta(hours=4)}
    )
    handle = await start_return(harness, return_input(now, serial="SN-1", policy=policy))
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc(QcGrade.KO, serial_number_seen="SN-X"))
    await wait_for_status(handle, ReturnStatus.MANUAL_QC)
    state = await handle.query(ReturnWorkflow.status)
    # Four business hours after the desk opens, not 48 wall-clock hours after now.
    assert state.due_at == desk_opening(now) + timedelta(hours=4)
    assert state.due_at != now + policy.manual_qc_sla

    server_now = await harness.env.get_current_time()
    await harness.sleep(desk_opening(now) + timedelta(hours=3) - server_now)
    state = await handle.query(ReturnWorkflow.status)
    assert not state.escalated  # still inside the SLA, 2 days and more after opening
    await harness.sleep(timedelta(hours=1, minutes=5))
    await eventually(lambda: world.audit.escalations() == [Role.MANAGER], what="the escalation")
    state = await handle.query(ReturnWorkflow.status)
    assert state.escalated and state.awaited_role is Role.MANAGER


async def test_failed_delivery_decision_sla_counts_in_business_hours(
    harness: Harness, world: FakeWorld
) -> None:
    now = harness.now()
    calendar = closed_today_and_tomorrow(now)
    policy: FailedDeliveryPolicy = DELIVERY_POLICY.model_copy(
        update={"calendar": calendar, "decision_business_sla": timedelta(hours=5)}
    )
    handle = await start_delivery(harness, shipment(now), policy=policy)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address=NEW_ADDRESS),
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.due_at == desk_opening(now) + timedelta(hours=5)

    # Past the wall-clock SLA of 24 h: still waiting for the coordinator.
    await harness.sleep(DELIVERY_POLICY.decision_sla + timedelta(hours=1))
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.status is FailedDeliveryStatus.AWAITING_DECISION and state.decision is None
    # Past the business-hours SLA: the default decides.
    server_now = await harness.env.get_current_time()
    await harness.sleep(desk_opening(now) + timedelta(hours=5, minutes=5) - server_now)
    await eventually(
        lambda: any(a.startswith("decision_") for a in world.audit.actions(handle.id)),
        what="the default decision",
    )
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.decision is not None and state.decision.by_default


def test_new_cases_carry_their_market_desk_calendar() -> None:
    today = datetime(2026, 12, 4, 17, 30).date()
    french = return_policy_for("FR", "EUR", starting=today)
    assert french.calendar is not None and french.calendar.timezone == "Europe/Paris"
    assert return_policy_for("US", "USD", starting=today).calendar is None
    # Without a start day (a workflow building a policy, the refund-policy
    # quote): no calendar, wall-clock.
    assert return_policy_for("FR", "EUR").calendar is None
    british = failed_delivery_policy("GB", starting=today)
    assert british.calendar is not None and british.calendar.name == "market:GB"
    # Friday 17:30 in London: one desk day (9 business hours) falls due on Monday.
    friday = datetime.fromisoformat("2026-12-04T17:30:00+00:00")
    due = add_business_time(british.calendar, friday, british.decision_business_sla)
    assert due == datetime.fromisoformat("2026-12-07T17:30:00+00:00")
    assert failed_delivery_policy("JP", starting=today).calendar is None
    assert failed_delivery_policy().calendar is None


def test_a_case_open_past_its_calendar_falls_back_to_wall_clock() -> None:
    calendar = failed_delivery_policy("FR", starting=datetime(2026, 12, 4).date()).calendar
    assert calendar is not None and calendar.covers_until.isoformat() == "2027-12-31"
    late = datetime.fromisoformat("2028-01-03T10:00:00+00:00")
    assert sla_due(
        calendar, late, business=timedelta(hours=9), wall_clock=timedelta(hours=24)
    ) == late + timedelta(hours=24)
    assert sla_due(None, late, business=timedelta(hours=9), wall_clock=timedelta(hours=24)) == (
        late + timedelta(hours=24)
    )
    inside = datetime.fromisoformat("2026-12-04T08:00:00+00:00")  # Friday 09:00 in Paris
    assert sla_due(
        calendar, inside, business=timedelta(hours=9), wall_clock=timedelta(hours=24)
    ) == datetime.fromisoformat("2026-12-04T17:00:00+00:00")
