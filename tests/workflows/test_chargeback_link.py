"""Disputes and early fraud warnings whose payment Steward could not resolve to
an order (issue 12): the coordinator task that links them, the `link_order`
update and its validator, what happens when nobody links, and a round that
takes no answer (Stripe `due_by: 0`) staying open until the closing event.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.chargeback import (
    LINK_REJECTED,
    DisputeEvent,
    DisputeEventKind,
    DisputeStatus,
    EvidenceKind,
    LinkOrderInput,
    ResponseAction,
)
from domain.common import Role
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.test_chargeback import POLICY, answer, dispute_id, event, start
from workflows.chargeback import ChargebackWorkflow

pytestmark = pytest.mark.workflows([ChargebackWorkflow])


def unresolved(base: DisputeEvent) -> DisputeEvent:
    """The event as a real Stripe payload reaches the case: ids, no order."""
    return base.model_copy(update={"order_id": None, "payment_refs": ["pi_3Qunk", "ch_3Qunk"]})


def link(order_id: str, role: Role = Role.COORDINATOR) -> LinkOrderInput:
    return LinkOrderInput(
        order_id=order_id, note="found by the card's last four", actor="camille", role=role
    )


async def refused(handle: object, payload: LinkOrderInput) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(ChargebackWorkflow.link_order, payload)  # type: ignore[attr-defined]
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_unresolved_dispute_waits_for_its_order_and_goes_on_once_linked(
    harness: Harness, world: FakeWorld
) -> None:
    did = dispute_id()
    handle = await start(
        harness, unresolved(event(harness.now(), DisputeEventKind.OPENED, dispute_id=did))
    )
    await eventually(
        lambda: "order_unresolved" in world.audit.actions(), what="the link task to open"
    )
    assert world.audit.opened_task_kinds() == [("link_order", Role.COORDINATOR)]
    unresolved_entry = world.audit.entry("order_unresolved")
    assert unresolved_entry.after["payment_refs"] == ["pi_3Qunk", "ch_3Qunk"]
    state = await handle.query(ChargebackWorkflow.status)
    # Nothing proceeds blind: no evidence, no response task, the order unknown.
    assert state.status is DisputeStatus.OPEN and state.order_id is None
    assert state.awaited_role is Role.COORDINATOR and state.evidence.items == []

    assert "role: ops may not link" in (await refused(handle, link("FR-1", Role.OPS))).message
    linked = await handle.execute_update(ChargebackWorkflow.link_order, link("FR-300003"))
    assert linked.order_id == "FR-300003"
    # The dispute register has the order as soon as the update answers: refunds freeze.
    assert world.disputes.records[-1].order_id == "FR-300003"
    assert not world.disputes.records[-1].closed
    again = await refused(handle, link("FR-300004"))
    assert again.type == LINK_REJECTED
    assert again.message == f"order_id: dispute {did} is already linked to order FR-300003"

    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    assert world.audit.opened_task_kinds() == [
        ("link_order", Role.COORDINATOR),
        ("dispute_response", Role.COORDINATOR),
    ]
    assert world.audit.closed_outcomes()[0] == "linked to order FR-300003"
    assert world.audit.entry("order_linked").actor == "camille"
    state = await handle.query(ChargebackWorkflow.status)
    assert state.evidence.items and state.order_id == "FR-300003"
    state = await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert state.status is DisputeStatus.SUBMITTED


@pytest.mark.world(available=[EvidenceKind.REFUND_POLICY])
async def test_nobody_links_it_and_the_default_acts_at_its_time(
    harness: Harness, world: FakeWorld
) -> None:
    did = dispute_id()
    opened = unresolved(
        event(harness.now(), DisputeEventKind.OPENED, dispute_id=did, due_in=timedelta(days=5))
    )
    handle = await start(harness, opened)
    result = await handle.result()

    assert result.status is DisputeStatus.ACCEPTED
    actions = world.audit.actions()
    assert actions.index("order_unresolved") < actions.index("order_not_linked")
    assert actions.index("order_not_linked") < actions.index("decision_accept")
    decision = world.audit.entry("decision_accept")
    assert decision.actor == "steward" and "evidence incomplete" in decision.reason
    assert opened.due_by is not None
    assert decision.occurred_at >= opened.due_by - POLICY.safety_buffer
    # No response task was opened over it: the default closed the link task.
    assert world.audit.opened_task_kinds() == [("link_order", Role.COORDINATOR)]
    assert world.audit.closed_outcomes() == ["default: accept"]
    assert all(r.order_id is None for r in world.disputes.records)


async def test_unresolved_early_fraud_warning_holds_the_order_once_linked(
    harness: Harness, world: FakeWorld
) -> None:
    efw = unresolved(
        event(
            harness.now(),
            DisputeEventKind.EARLY_FRAUD_WARNING,
            dispute_id=f"issfr_{uuid.uuid4().hex[:10]}",
            due_in=None,
            amount_minor=0,
        )
    )
    handle = await start(harness, efw)
    await eventually(
        lambda: world.audit.opened_task_kinds() == [("link_order", Role.COORDINATOR)],
        what="the link task",
    )
    assert world.disputes.holds == []
    await handle.execute_update(ChargebackWorkflow.link_order, link("FR-400004"))
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    assert [h.order_id for h in world.disputes.holds] == ["FR-400004"]
    assert world.audit.opened_task_kinds()[-1] == ("early_fraud_warning", Role.COORDINATOR)
    # A warning stays out of the dispute register, linked or not.
    assert world.disputes.records == []


async def test_unresolved_early_fraud_warning_not_linked_in_a_day_holds_nothing(
    harness: Harness, world: FakeWorld
) -> None:
    efw = unresolved(
        event(
            harness.now(),
            DisputeEventKind.EARLY_FRAUD_WARNING,
            dispute_id=f"issfr_{uuid.uuid4().hex[:10]}",
            due_in=None,
            amount_minor=0,
        )
    )
    handle = await start(harness, efw)
    result = await handle.result()
    assert result.status is DisputeStatus.ACCEPTED
    assert world.disputes.holds == []
    assert world.audit.closed_outcomes() == ["not linked within a day"]
    assert world.audit.entry("decision_accept").reason == (
        "no order linked within a day: nothing to hold"
    )


async def test_no_response_possible_stays_open_and_frozen_until_the_closing_event(
    harness: Harness, world: FakeWorld
) -> None:
    # Stripe's due_by 0 (the bank allows no response) arrives as no deadline.
    did = dispute_id()
    handle = await start(
        harness, event(harness.now(), DisputeEventKind.OPENED, dispute_id=did, due_in=None)
    )
    await harness.sleep(timedelta(days=30))
    state = await handle.query(ChargebackWorkflow.status)
    assert state.status is DisputeStatus.OPEN and state.due_by is None
    assert world.disputes.records and not any(r.closed for r in world.disputes.records)
    assert world.disputes.records[-1].status is DisputeStatus.OPEN
    assert "no_response_possible" in world.audit.actions()

    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(harness.now(), DisputeEventKind.LOST, dispute_id=did, due_in=None),
    )
    result = await handle.result()
    assert result.status is DisputeStatus.LOST
    assert world.disputes.records[-1].closed
    assert world.disputes.submissions == []


async def test_unresolved_round_without_an_answer_asks_for_the_order_without_blocking(
    harness: Harness, world: FakeWorld
) -> None:
    did = dispute_id()
    handle = await start(
        harness,
        unresolved(event(harness.now(), DisputeEventKind.OPENED, dispute_id=did, due_in=None)),
    )
    await eventually(lambda: "no_response_possible" in world.audit.actions(), what="the round")
    assert world.audit.opened_task_kinds() == [("link_order", Role.COORDINATOR)]
    assert world.disputes.records[-1].order_id is None
    await handle.execute_update(ChargebackWorkflow.link_order, link("FR-500005"))
    assert world.disputes.records[-1].order_id == "FR-500005"
    assert not world.disputes.records[-1].closed
    assert world.audit.closed_outcomes() == ["linked to order FR-500005"]


async def test_a_later_event_naming_the_order_closes_the_link_task(
    harness: Harness, world: FakeWorld
) -> None:
    # The order was scored after its dispute arrived: the provider's next
    # event resolves at the intake and carries the order.
    did = dispute_id()
    t0 = harness.now()
    handle = await start(
        harness, unresolved(event(t0, DisputeEventKind.OPENED, dispute_id=did, at=t0))
    )
    await eventually(lambda: "order_unresolved" in world.audit.actions(), what="the link task")
    update = event(
        harness.now(),
        DisputeEventKind.UPDATED,
        dispute_id=did,
        at=t0 + timedelta(minutes=1),
        order_id="FR-600006",
    )
    await handle.signal(ChargebackWorkflow.dispute_event, update)
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    assert world.audit.closed_outcomes()[0] == "order FR-600006 named by the provider"
    assert (await handle.query(ChargebackWorkflow.status)).order_id == "FR-600006"
    assert world.disputes.records[-1].order_id == "FR-600006"
