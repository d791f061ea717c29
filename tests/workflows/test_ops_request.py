"""Ops requests under time skipping: each type's path, the business-hours
SLA and its reminder, structured escalation and its SLA, cover by
reassignment, the CCTV retention deadline, the inventory write-off's four
eyes, and the thread updates the chat port receives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.business_hours import (
    BusinessCalendar,
    CalendarSpec,
    DayHours,
    add_business_time,
    build_calendar,
)
from domain.common import Role
from domain.deliveries import ShipmentRecord
from domain.evidence import CctvClipReady, cctv_request_id
from domain.ids import carrier_claim_id
from domain.ops_request import (
    ANSWER_ORDER_STATUS,
    ESCALATION_SLA,
    FIND_SHIPMENT,
    FULFILMENT_ACTION,
    FULFILMENT_REFUSED,
    POST_CHAT_MESSAGE,
    RECORD_OPS_REQUEST,
    AssignInput,
    Channel,
    ChatThread,
    ClaimInput,
    EscalateInput,
    EscalationAnswerInput,
    FinanceApprovalInput,
    FindShipmentInput,
    FulfilmentActionInput,
    FulfilmentActionKind,
    FulfilmentActionResult,
    InventoryResolution,
    OpsRequestDraft,
    OpsRequestInput,
    OpsRequestResult,
    OpsRequestState,
    OpsRequestStatus,
    OrderStatusAnswer,
    OrderStatusInput,
    OutcomeCode,
    PostChatInput,
    PostChatResult,
    Priority,
    RecordOpsRequestInput,
    RecountInput,
    ReprioritiseInput,
    ResolveInput,
    RootCause,
    ops_request_id,
    sla_for,
)
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.inputs import shipment
from tests.workflows.stand_ins import StandInCarrierClaim
from workflows.ops_request import OpsRequestWorkflow

pytestmark = pytest.mark.workflows([OpsRequestWorkflow, StandInCarrierClaim])

Handle = WorkflowHandle[OpsRequestWorkflow, OpsRequestResult]
COORDINATOR = ClaimInput(actor="camille", role=Role.COORDINATOR)
SENIOR_QA = "sam.qa"


@dataclass
class FakeOpsDesk:
    """The desk's outside world: the chat, the order status view, fulfilment,
    the shipment register, and the register rows."""

    refuse_fulfilment: set[str] = field(default_factory=set)
    posts: list[PostChatInput] = field(default_factory=list)
    actions: list[FulfilmentActionInput] = field(default_factory=list)
    rows: list[RecordOpsRequestInput] = field(default_factory=list)
    shipments: dict[str, ShipmentRecord] = field(default_factory=dict)

    @activity.defn(name=POST_CHAT_MESSAGE)
    async def post(self, input: PostChatInput) -> PostChatResult:
        self.posts.append(input)
        return PostChatResult(channel=input.channel, ts=f"17000000{len(self.posts):02d}.0001")

    @activity.defn(name=ANSWER_ORDER_STATUS)
    async def order_status(self, input: OrderStatusInput) -> OrderStatusAnswer:
        return OrderStatusAnswer(
            order_id=input.order_id, found=True, summary="packed, handed to UPS 1Z999"
        )

    @activity.defn(name=FULFILMENT_ACTION)
    async def fulfil(self, input: FulfilmentActionInput) -> FulfilmentActionResult:
        self.actions.append(input)
        if input.kind in self.refuse_fulfilment:
            raise ApplicationError(
                f"order {input.order_id} is already packed",
                type=FULFILMENT_REFUSED,
                non_retryable=True,
            )
        reference = f"hold-{input.order_id}" if input.kind == "place_hold" else "ok"
        return FulfilmentActionResult(done=True, reference=reference)

    @activity.defn(name=FIND_SHIPMENT)
    async def find(self, input: FindShipmentInput) -> ShipmentRecord:
        return self.shipments[input.tracking_number]

    @activity.defn(name=RECORD_OPS_REQUEST)
    async def record(self, input: RecordOpsRequestInput) -> None:
        self.rows.append(input)

    def thread(self, channel: str = "C-CS") -> list[PostChatInput]:
        return [p for p in self.posts if p.channel == channel]


class OpsWorld(FakeWorld):
    def __init__(self, **knobs: Any) -> None:
        desk = {k: knobs.pop(k) for k in list(knobs) if k in ("refuse_fulfilment",)}
        super().__init__(**knobs)
        self.desk = FakeOpsDesk(**desk)

    def activities(self) -> list[Any]:
        return [
            *super().activities(),
            self.desk.post,
            self.desk.order_status,
            self.desk.fulfil,
            self.desk.find,
            self.desk.record,
        ]


@pytest.fixture
def world(request: pytest.FixtureRequest) -> OpsWorld:
    marker = request.node.get_closest_marker("world")
    return OpsWorld(**(marker.kwargs if marker else {}))


def calendar(now: datetime) -> BusinessCalendar:
    """Open every day 06:00-22:00 UTC, no holidays: the test server's clock is
    wherever earlier tests left it, so the workflow tests check the wiring
    (tests/unit/test_business_hours.py checks the calendar itself)."""
    day = DayHours(opens=time(6), closes=time(22))
    spec = CalendarSpec(timezone="UTC", country="GB", week=[day] * 7)
    built = build_calendar("test:desk", spec, starting=now.date() - timedelta(days=1))
    return built.model_copy(update={"closed_days": {}})


def request(
    harness: Harness,
    details: dict[str, Any],
    *,
    priority: Priority = Priority.NORMAL,
    chat: bool = True,
) -> OpsRequestInput:
    now = harness.now()
    return OpsRequestInput(
        request_id=f"OPS-{uuid.uuid4().hex[:10]}",
        draft=OpsRequestDraft.model_validate(
            {"details": details, "priority": priority, "description": "Mme Durand called"}
        ),
        requester="cs.alice",
        channel=Channel.SLACK if chat else Channel.API,
        chat=ChatThread(channel="C-CS", user="U123") if chat else None,
        opened_at=now,
        market="FR",
        calendar=calendar(now),
    )


async def start(harness: Harness, input: OpsRequestInput) -> Handle:
    return await harness.start(OpsRequestWorkflow.run, input, id=ops_request_id(input.request_id))


async def state(handle: Handle) -> OpsRequestState:
    return await handle.query(OpsRequestWorkflow.status)


def address() -> dict[str, Any]:
    return {"line1": "12 rue de la Paix", "city": "Paris", "postal_code": "75002", "country": "FR"}


# ------------------------------------------------------------------ types


async def test_order_status_is_answered_from_the_view_and_resolved(
    harness: Harness, world: OpsWorld
) -> None:
    input = request(harness, {"type": "order_status", "order_id": "FR-1001"})
    result = await (await start(harness, input)).result()
    assert result.status is OpsRequestStatus.RESOLVED
    assert result.outcome is OutcomeCode.ANSWERED
    assert result.sla_met is True
    posts = world.desk.thread()
    # The first post starts the thread; every later one answers in it.
    assert posts[0].thread_ts is None
    assert {p.thread_ts for p in posts[1:]} == {"1700000001.0001"}
    assert "packed, handed to UPS 1Z999" in posts[-1].text
    row = world.desk.rows[-1].state
    assert row.linked_cases == ["fulfilment:FR-1001"]
    # Answered within the same minute (a loaded machine may take a second or two).
    assert row.business_seconds_to_resolve is not None
    assert row.business_seconds_to_resolve < 60


async def test_address_change_runs_fulfilment_on_resolution(
    harness: Harness, world: OpsWorld
) -> None:
    input = request(
        harness, {"type": "address_change", "order_id": "FR-1002", "address": address()}
    )
    handle = await start(harness, input)
    await wait_for_status(handle, OpsRequestStatus.OPEN)
    opened = await state(handle)
    assert opened.due_at == add_business_time(
        input.calendar, input.opened_at, sla_for(input.draft.type, Priority.NORMAL)
    )
    claimed = await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    assert (claimed.status, claimed.assignee) == (OpsRequestStatus.ASSIGNED, "camille")
    assert claimed.first_response_at is not None
    resolved = await handle.execute_update(
        OpsRequestWorkflow.resolve,
        ResolveInput(
            actor="camille",
            role=Role.COORDINATOR,
            outcome=OutcomeCode.DONE,
            root_cause=RootCause.CUSTOMER_REQUEST,
        ),
    )
    assert resolved.status is OpsRequestStatus.RESOLVED
    (action,) = world.desk.actions
    assert action.kind is FulfilmentActionKind.CHANGE_ADDRESS
    assert action.address is not None and action.address.postal_code == "75002"
    assert resolved.linked_cases == ["fulfilment:FR-1002"]
    await handle.result()
    # The new address and the requester's description never reach the audit trail or the chat.
    for entry in world.audit.entries():
        assert "rue de la Paix" not in entry.model_dump_json()
        assert "Durand" not in entry.model_dump_json()
    assert not any("rue de la Paix" in p.text or "Durand" in p.text for p in world.desk.posts)
    assert world.audit.closed_outcomes() == ["done"]


@pytest.mark.world(refuse_fulfilment={"change_address"})
async def test_a_refused_address_change_keeps_the_ticket_open(
    harness: Harness, world: OpsWorld
) -> None:
    input = request(
        harness, {"type": "address_change", "order_id": "FR-1003", "address": address()}
    )
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    done = ResolveInput(
        actor="camille",
        role=Role.COORDINATOR,
        outcome=OutcomeCode.DONE,
        root_cause=RootCause.CUSTOMER_REQUEST,
    )
    after = await handle.execute_update(OpsRequestWorkflow.resolve, done)
    assert after.status is OpsRequestStatus.ASSIGNED
    assert [(a.kind, a.ok) for a in after.actions] == [("change_address", False)]
    assert "already packed" in world.desk.posts[-1].text
    closed = await handle.execute_update(
        OpsRequestWorkflow.resolve,
        done.model_copy(update={"outcome": OutcomeCode.NOT_POSSIBLE}),
    )
    assert closed.resolution is not None and closed.resolution.outcome is OutcomeCode.NOT_POSSIBLE
    assert "change_address_refused" in world.audit.actions()


async def test_carrier_claim_starts_the_claim_process_and_links_it(
    harness: Harness, world: OpsWorld
) -> None:
    record = shipment(harness.now())
    world.desk.shipments[record.tracking_number] = record
    input = request(
        harness,
        {
            "type": "carrier_claim",
            "carrier": record.carrier,
            "tracking_number": record.tracking_number,
            "claim_type": "damaged",
        },
    )
    handle = await start(harness, input)
    claim_id = carrier_claim_id(record.carrier, record.tracking_number)
    linked = await eventually(
        lambda: _linked(handle, claim_id), what="the claim linked to the ticket"
    )
    assert linked.order_id == record.order.order_id
    claim = await harness.client.get_workflow_handle(claim_id).result()
    assert claim["claim_type"] == "damaged"
    assert claim["reason"] == f"ops request {input.request_id}"


async def _linked(handle: Handle, case: str) -> OpsRequestState | None:
    current = await state(handle)
    return current if case in current.linked_cases else None


# ------------------------------------------------------------ assignment


async def test_claim_reassign_reprioritise_and_cover(harness: Harness, world: OpsWorld) -> None:
    input = request(harness, {"type": "other"})
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    moved = await handle.execute_update(
        OpsRequestWorkflow.assign,
        AssignInput(actor="lead", role=Role.MANAGER, to="noor", reason="camille is absent"),
    )
    assert (moved.assignee, moved.status) == ("noor", OpsRequestStatus.ASSIGNED)
    queued = await handle.execute_update(
        OpsRequestWorkflow.assign, AssignInput(actor="lead", role=Role.MANAGER, to=None)
    )
    assert (queued.assignee, queued.status) == (None, OpsRequestStatus.OPEN)
    urgent = await handle.execute_update(
        OpsRequestWorkflow.reprioritise,
        ReprioritiseInput(actor="lead", role=Role.MANAGER, priority=Priority.URGENT, reason="VIP"),
    )
    assert urgent.due_at == add_business_time(
        input.calendar, input.opened_at, sla_for(input.draft.type, Priority.URGENT)
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            OpsRequestWorkflow.claim, ClaimInput(actor="auditor", role=Role.AUDITOR)
        )
    assert "role: auditor may not claim" in str(refused.value.cause)
    actions = world.audit.actions()
    assert actions.count("reassigned") == 2
    assert "reprioritised" in actions
    assert world.desk.rows[-1].state.priority is Priority.URGENT


async def test_sla_reminder_then_breach_in_business_time(harness: Harness, world: OpsWorld) -> None:
    input = request(harness, {"type": "order_status", "order_id": "X"}, chat=False)
    input = input.model_copy(
        update={"draft": OpsRequestDraft.model_validate({"details": {"type": "other"}})}
    )
    handle = await start(harness, input)
    await wait_for_status(handle, OpsRequestStatus.OPEN)
    opened = await state(handle)
    assert opened.due_at is not None
    await harness.sleep(opened.due_at - harness.now() + timedelta(minutes=1))
    await eventually(lambda: "sla_breached" in world.audit.actions(), what="the breach")
    assert world.audit.actions().index("sla_reminder") < world.audit.actions().index("sla_breached")
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    resolved = await handle.execute_update(
        OpsRequestWorkflow.resolve,
        ResolveInput(
            actor="camille",
            role=Role.COORDINATOR,
            outcome=OutcomeCode.DONE,
            root_cause=RootCause.UNKNOWN,
        ),
    )
    assert resolved.sla_met is False


# ------------------------------------------------------------ escalation


async def test_structured_escalation_with_its_sla_returns_to_the_owner(
    harness: Harness, world: OpsWorld
) -> None:
    input = request(harness, {"type": "qc_check", "order_id": "FR-1004", "reason": "scratch"})
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    escalation = EscalateInput(
        actor="camille",
        role=Role.COORDINATOR,
        summary="QC station down",
        tried="restarted the scanner; asked the night shift",
        blocker="no QC operator until Monday",
        needed_from="warehouse manager",
        needed_what="a QC operator for one hour",
        next_check_at=harness.now() + timedelta(hours=3),
    )
    escalated = await handle.execute_update(OpsRequestWorkflow.escalate, escalation)
    assert escalated.status is OpsRequestStatus.ESCALATED
    assert escalated.awaited_role is Role.MANAGER
    assert world.audit.escalations() == [Role.MANAGER]
    (posted,) = world.desk.thread("ops-escalations")
    assert "Blocker: no QC operator until Monday" in posted.text
    assert "Needed from warehouse manager" in posted.text
    # The escalation's own SLA (business time of the desk's calendar): a
    # reminder at half, then overdue.
    due = escalated.escalations[0].due_at
    assert due >= escalated.escalations[0].escalated_at + ESCALATION_SLA
    server_now = await harness.env.get_current_time()
    await harness.sleep(due - server_now + timedelta(minutes=5))
    await eventually(lambda: "escalation_overdue" in world.audit.actions(), what="overdue")
    assert "escalation_reminder" in world.audit.actions()
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            OpsRequestWorkflow.answer_escalation,
            EscalationAnswerInput(actor="noor", role=Role.COORDINATOR, note="done"),
        )
    assert "only the senior QA coordinator" in str(refused.value.cause)
    answered = await handle.execute_update(
        OpsRequestWorkflow.answer_escalation,
        EscalationAnswerInput(actor=SENIOR_QA, role=Role.MANAGER, note="operator booked"),
    )
    assert (answered.status, answered.assignee) == (OpsRequestStatus.ASSIGNED, "camille")
    assert answered.awaited_role is Role.COORDINATOR
    assert answered.escalations[0].answered_by == SENIOR_QA
    assert any("back with camille" in p.text for p in world.desk.thread("ops-escalations"))


# ------------------------------------------------------------------ CCTV


async def test_cctv_clip_is_attached_to_every_linked_case(
    harness: Harness, world: OpsWorld
) -> None:
    now = harness.now()
    window = {
        "window_start": now - timedelta(days=6, hours=12),
        "window_end": now - timedelta(days=6, hours=11),
    }
    # The linked case: another CCTV ticket, which takes a clip forwarded to its own request.
    linked_input = request(
        harness, {"type": "cctv_retrieval", "site_id": "MIL1", "camera_zone": "packing", **window}
    )
    linked = await start(harness, linked_input)
    linked_id = ops_request_id(linked_input.request_id)
    input = request(
        harness,
        {
            "type": "cctv_retrieval",
            "site_id": "MIL1",
            "camera_zone": "packing",
            "order_id": "FR-1005",
            "linked_workflow_ids": [linked_id, "chargeback:stripe:gone"],
            **window,
        },
    )
    handle = await start(harness, input)
    requested = await eventually(
        lambda: _action(handle, "cctv_requested"), what="the preservation request"
    )
    # Milan keeps 7 days: the reminder comes at once (less than 24 h left).
    assert requested.cctv_deadline == window["window_start"] + timedelta(days=7)
    await eventually(lambda: "cctv_retention_reminder" in world.audit.actions(), what="reminder")
    request_ids = [r.request_id for r in world.evidence.cctv_requests]
    assert cctv_request_id(ops_request_id(input.request_id)) in request_ids
    station = {r.station for r in world.evidence.cctv_requests}
    assert station == {"MIL1/packing"}
    await handle.signal(
        OpsRequestWorkflow.cctv_clip_ready,
        CctvClipReady(
            event_id="wh-1",
            request_id=cctv_request_id(ops_request_id(input.request_id)),
            order_id="FR-1005",
            clip_ref="cctv://MIL1/packing/clip-1",
        ),
    )
    attached = await eventually(lambda: _action(handle, "cctv_clip_not_attached"), what="attach")
    assert attached.cctv_clip_ref == "cctv://MIL1/packing/clip-1"
    kinds = [(a.kind, a.linked_case) for a in attached.actions]
    assert ("cctv_clip_attached", linked_id) in kinds
    assert ("cctv_clip_not_attached", "chargeback:stripe:gone") in kinds
    other = await eventually(
        lambda: _action(linked, "cctv_clip_ready"), what="the linked case's clip"
    )
    assert other.cctv_clip_ref == "cctv://MIL1/packing/clip-1"


async def _action(handle: Handle, kind: str) -> OpsRequestState | None:
    current = await state(handle)
    return current if any(a.kind == kind for a in current.actions) else None


# ------------------------------------------------------------- inventory


async def test_inventory_discrepancy_holds_recount_and_four_eyes_write_off(
    harness: Harness, world: OpsWorld
) -> None:
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
            "affected_order_ids": ["FR-2001", "FR-2002"],
            "cctv_zone": "storage",
        },
    )
    handle = await start(harness, input)
    opened = await eventually(
        lambda: _action(handle, "cctv_requested"), what="holds, recount and footage"
    )
    holds = [a for a in world.desk.actions if a.kind is FulfilmentActionKind.PLACE_HOLD]
    assert [(h.order_id, h.hold_reason) for h in holds] == [
        ("FR-2001", "inventory"),
        ("FR-2002", "inventory"),
    ]
    assert ("inventory_recount", Role.OPS) in world.audit.opened_task_kinds()
    assert {"fulfilment:FR-2001", "fulfilment:FR-2002"} <= set(opened.linked_cases)
    await handle.execute_update(
        OpsRequestWorkflow.recount, RecountInput(actor="wh.lee", role=Role.OPS, counted_quantity=3)
    )
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    proposed = await handle.execute_update(
        OpsRequestWorkflow.resolve,
        ResolveInput(
            actor="camille",
            role=Role.COORDINATOR,
            outcome=OutcomeCode.DONE,
            root_cause=RootCause.STOCK_RECORD_ERROR,
            inventory=InventoryResolution.ADJUSTED,
        ),
    )
    assert proposed.status is OpsRequestStatus.AWAITING_FINANCE
    assert proposed.write_off_minor == 240_000
    with pytest.raises(WorkflowUpdateFailedError) as same_person:
        await handle.execute_update(
            OpsRequestWorkflow.approve_write_off,
            FinanceApprovalInput(actor="camille", role=Role.FINANCE, approved=True),
        )
    assert "another person approves" in str(same_person.value.cause)
    approved = await handle.execute_update(
        OpsRequestWorkflow.approve_write_off,
        FinanceApprovalInput(actor="fin.zoe", role=Role.FINANCE, approved=True),
    )
    assert approved.status is OpsRequestStatus.RESOLVED
    assert approved.finance_approved_by == "fin.zoe"
    released = [
        a.hold_id for a in world.desk.actions if a.kind is FulfilmentActionKind.RELEASE_HOLD
    ]
    assert released == ["hold-FR-2001", "hold-FR-2002"]
    assert world.audit.closed_outcomes().count("recounted") == 1
    assert "approved" in world.audit.closed_outcomes()


async def test_a_found_discrepancy_releases_the_holds_without_finance(
    harness: Harness, world: OpsWorld
) -> None:
    input = request(
        harness,
        {
            "type": "inventory_discrepancy",
            "site_id": "LON1",
            "sku": "SCARF-9",
            "wms_quantity": 10,
            "erp_quantity": 9,
            "unit_cost_minor": 30_000,
            "currency": "GBP",
            "affected_order_ids": ["GB-1"],
        },
        chat=False,
    )
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    resolved = await handle.execute_update(
        OpsRequestWorkflow.resolve,
        ResolveInput(
            actor="camille",
            role=Role.COORDINATOR,
            outcome=OutcomeCode.DONE,
            root_cause=RootCause.WAREHOUSE_ERROR,
            inventory=InventoryResolution.FOUND,
        ),
    )
    assert resolved.status is OpsRequestStatus.RESOLVED
    assert [a.kind for a in world.desk.actions] == ["place_hold", "release_hold"]
    assert world.desk.posts == []  # no chat: opened through the API


async def test_a_mis_pick_reallocates_the_orders_then_releases_the_holds(
    harness: Harness, world: OpsWorld
) -> None:
    input = request(
        harness,
        {
            "type": "inventory_discrepancy",
            "site_id": "PAR1",
            "sku": "BAG-002",
            "wms_quantity": 4,
            "erp_quantity": 5,
            "unit_cost_minor": 90_000,
            "currency": "EUR",
            "affected_order_ids": ["FR-3001", "FR-3002"],
        },
    )
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    resolved = await handle.execute_update(
        OpsRequestWorkflow.resolve,
        ResolveInput(
            actor="camille",
            role=Role.COORDINATOR,
            outcome=OutcomeCode.DONE,
            root_cause=RootCause.WAREHOUSE_ERROR,
            inventory=InventoryResolution.MIS_PICK,
        ),
    )
    assert resolved.status is OpsRequestStatus.RESOLVED
    # Fulfilment allocates another unit to each order before the holds go.
    assert [(a.kind.value, a.order_id) for a in world.desk.actions] == [
        ("place_hold", "FR-3001"),
        ("place_hold", "FR-3002"),
        ("reallocate", "FR-3001"),
        ("reallocate", "FR-3002"),
        ("release_hold", "FR-3001"),
        ("release_hold", "FR-3002"),
    ]
    moves = [a for a in world.desk.actions if a.kind is FulfilmentActionKind.REALLOCATE]
    assert {(a.actor, a.role) for a in moves} == {("camille", Role.COORDINATOR)}
    assert len({a.hold_id for a in moves}) == 2  # one key per order: a retry allocates once
    assert [a.linked_case for a in resolved.actions if a.kind == "reallocate"] == [
        "fulfilment:FR-3001",
        "fulfilment:FR-3002",
    ]
    assert world.audit.actions(handle.id).count("reallocate") == 2
    assert any("re-allocated FR-3001, FR-3002" in p.text for p in world.desk.thread())


async def test_the_escalation_next_check_notifies_again(harness: Harness, world: OpsWorld) -> None:
    input = request(harness, {"type": "other", "order_id": "FR-1009"})
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    next_check = harness.now() + timedelta(minutes=30)
    await handle.execute_update(
        OpsRequestWorkflow.escalate,
        EscalateInput(
            actor="camille",
            role=Role.COORDINATOR,
            summary="customer wants a call back",
            tried="called twice",
            blocker="no phone slot",
            needed_from="CS lead",
            needed_what="a call slot",
            next_check_at=next_check,
        ),
    )
    await harness.sleep(timedelta(minutes=20))
    assert "escalation_next_check" not in world.audit.actions(handle.id)
    await harness.sleep(timedelta(minutes=15))
    await eventually(
        lambda: "escalation_next_check" in world.audit.actions(handle.id), what="the next check"
    )
    checked = await state(handle)
    assert checked.status is OpsRequestStatus.ESCALATED and checked.escalations[0].checked
    assert checked.reminders_sent == 1
    # The posts follow the audit row: wait for the owner's, the last of them.
    await eventually(
        lambda: any("next check reached" in p.text for p in world.desk.thread()),
        what="the owner's thread update",
    )
    channel = world.desk.thread("ops-escalations")
    assert len(channel) == 2 and channel[1].text.startswith(f"Next check of {input.request_id}")
    assert "Needed from CS lead: a call slot" in channel[1].text
    # Once: nothing more at the next check (the escalation's own SLA follows).
    entry = world.audit.entry("escalation_next_check")
    assert entry.workflow_id == handle.id
    assert world.audit.actions(handle.id).count("escalation_next_check") == 1


@pytest.mark.parametrize(
    ("details", "kind", "check"),
    [
        (
            {"type": "special_delivery", "order_id": "FR-1101", "kind": "signature"},
            FulfilmentActionKind.SPECIAL_DELIVERY,
            lambda a: a.special is not None and a.special.kind == "signature",
        ),
        (
            {"type": "qc_check", "order_id": "FR-1102", "reason": "customer saw a scratch"},
            FulfilmentActionKind.QC_CHECK,
            lambda a: a.hold_reason == "outbound_qc" and (a.hold_id or "").startswith("ops-qc-"),
        ),
    ],
    ids=["special_delivery", "qc_check"],
)
async def test_special_delivery_and_qc_check_run_fulfilment_on_resolution(
    harness: Harness, world: OpsWorld, details: dict[str, Any], kind: Any, check: Any
) -> None:
    handle = await start(harness, request(harness, details))
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    resolved = await handle.execute_update(
        OpsRequestWorkflow.resolve,
        ResolveInput(
            actor="camille",
            role=Role.COORDINATOR,
            outcome=OutcomeCode.DONE,
            root_cause=RootCause.CUSTOMER_REQUEST,
        ),
    )
    assert resolved.status is OpsRequestStatus.RESOLVED
    (action,) = world.desk.actions
    assert action.kind is kind and action.order_id == details["order_id"]
    assert (action.actor, action.role) == ("camille", Role.COORDINATOR)
    assert check(action)
    assert resolved.linked_cases == [f"fulfilment:{details['order_id']}"]
    assert [a.kind for a in resolved.actions] == [kind.value]


async def test_other_is_resolved_by_a_coordinator_without_a_fulfilment_call(
    harness: Harness, world: OpsWorld
) -> None:
    handle = await start(harness, request(harness, {"type": "other"}))
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    resolved = await handle.execute_update(
        OpsRequestWorkflow.resolve,
        ResolveInput(
            actor="camille",
            role=Role.COORDINATOR,
            outcome=OutcomeCode.WITHDRAWN,
            root_cause=RootCause.CUSTOMER_REQUEST,
            note="customer withdrew",
        ),
    )
    assert resolved.status is OpsRequestStatus.RESOLVED and resolved.resolution is not None
    assert resolved.resolution.outcome is OutcomeCode.WITHDRAWN
    assert world.desk.actions == [] and resolved.linked_cases == []
    assert resolved.sla_met is True and resolved.business_seconds_to_resolve is not None
