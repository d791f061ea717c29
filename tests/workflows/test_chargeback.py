"""Chargebacks under time skipping: every deadline path, duplicates, events
out of order, the Adyen path to pre-arbitration, CCTV and early fraud warnings.

The outside world (evidence store, dispute providers, warehouse) is the
harness's FakeWorld, registered under the real activity names; the real
activities are covered by tests/integration/test_disputes_api.py.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.chargeback import (
    ChargebackInput,
    ChargebackResult,
    ChargebackState,
    DisputeEvent,
    DisputeEventKind,
    DisputePolicy,
    DisputeProvider,
    DisputeReason,
    DisputeStage,
    DisputeStatus,
    EvidenceItem,
    EvidenceKind,
    RespondInput,
    ResponseAction,
    chargeback_workflow_id,
)
from domain.common import Role
from domain.evidence import CctvClipReady
from tests.workflows.harness import ALL_EVIDENCE as ALL_KINDS
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from workflows.chargeback import ChargebackWorkflow

pytestmark = pytest.mark.workflows([ChargebackWorkflow])

POLICY = DisputePolicy()  # 12 h buffer, reminders 72 h and 24 h before, smart default


def event(
    now: datetime,
    kind: DisputeEventKind,
    *,
    dispute_id: str,
    event_id: str | None = None,
    provider: DisputeProvider = DisputeProvider.STRIPE,
    due_in: timedelta | None = timedelta(days=7),
    at: datetime | None = None,
    amount_minor: int = 245_000,
    reason: DisputeReason = DisputeReason.FRAUD,
    provider_status: str = "needs_response",
    order_id: str | None = "FR-100001",
) -> DisputeEvent:
    return DisputeEvent(
        event_id=event_id or f"evt_{uuid.uuid4().hex[:12]}",
        provider=provider,
        dispute_id=dispute_id,
        kind=kind,
        provider_event=f"test.{kind}",
        occurred_at=at or now,
        order_id=order_id,
        reason=reason,
        provider_reason_code=str(reason),
        due_by=now + due_in if due_in is not None else None,
        amount_minor=amount_minor,
        currency="EUR",
        provider_status=provider_status,
        defendable=due_in is not None,
    )


Handle = WorkflowHandle[ChargebackWorkflow, ChargebackResult]


async def start(harness: Harness, first: DisputeEvent, policy: DisputePolicy = POLICY) -> Handle:
    return await harness.start(
        ChargebackWorkflow.run,
        ChargebackInput(event=first, policy=policy),
        id=chargeback_workflow_id(first.provider, first.dispute_id),
    )


def answer(
    action: ResponseAction,
    *,
    role: Role = Role.COORDINATOR,
    note: str = "delivered with signature; 3-D Secure authenticated",
    override: bool = False,
    extra: list[EvidenceItem] | None = None,
) -> RespondInput:
    return RespondInput(
        action=action,
        note=note,
        actor="camille" if role is Role.COORDINATOR else "morgan",
        role=role,
        override_missing_evidence=override,
        extra_evidence=extra or [],
    )


def dispute_id() -> str:
    return f"dp_{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------- paths


async def test_stripe_contest_submits_once_and_closes_on_the_outcome(
    harness: Harness, world: FakeWorld
) -> None:
    did = dispute_id()
    handle = await start(harness, event(harness.now(), DisputeEventKind.OPENED, dispute_id=did))
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)

    state = await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert state.status is DisputeStatus.SUBMITTED
    assert [s.idempotency_key for s in world.disputes.submissions] == [f"{handle.id}/respond-1"]
    sent = world.disputes.submissions[0]
    assert sent.action is ResponseAction.CONTEST
    assert EvidenceKind.COORDINATOR_NOTE in {e.kind for e in sent.evidence}

    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(
            harness.now(), DisputeEventKind.UPDATED, dispute_id=did, provider_status="under_review"
        ),
    )
    await wait_for_status(handle, DisputeStatus.UNDER_REVIEW)
    await handle.signal(
        ChargebackWorkflow.dispute_event, event(harness.now(), DisputeEventKind.WON, dispute_id=did)
    )
    result = await handle.result()  # skips the reopen window

    assert result.status is DisputeStatus.WON
    assert result.decided_by == "camille"
    assert len(world.disputes.submissions) == 1
    assert world.disputes.records[-1].closed is True
    assert [o[1:] for o in world.audit.outcomes()] == [
        ("charged_back_won", f"{handle.id}#charged_back_won")
    ]
    assert "decision_contest" in world.audit.actions()
    assert world.audit.transitions[-1].case is not None
    assert world.audit.transitions[-1].case.due_at is None


async def test_reminders_escalation_and_default_at_the_buffer(
    harness: Harness, world: FakeWorld
) -> None:
    did = dispute_id()
    first = event(
        harness.now(),
        DisputeEventKind.OPENED,
        dispute_id=did,
        due_in=timedelta(days=5),
        amount_minor=2_000,
    )
    assert first.due_by is not None
    handle = await start(harness, first)
    result = await handle.result()

    assert result.status is DisputeStatus.ACCEPTED
    entries = world.audit.entries()
    reminders = [e for e in entries if e.action == "dispute_reminder"]
    assert [
        abs(first.due_by - e.occurred_at - off) < timedelta(minutes=1)
        for e, off in zip(reminders, (timedelta(hours=72), timedelta(hours=24)), strict=True)
    ] == [True, True]
    escalated = world.audit.entry("dispute_escalated")
    assert abs(first.due_by - timedelta(hours=24) - escalated.occurred_at) < timedelta(minutes=1)
    default = world.audit.entry("decision_accept")
    assert default.actor == "steward"
    assert "under the 5000 threshold" in default.reason
    assert abs(first.due_by - timedelta(hours=12) - default.occurred_at) < timedelta(minutes=1)
    assert [s.action for s in world.disputes.submissions] == [ResponseAction.ACCEPT]
    updates = [u for t in world.audit.transitions for u in t.update_tasks]
    assert any(u.awaited_role is Role.MANAGER and u.escalated for u in updates)


async def test_default_contests_when_evidence_is_complete(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(
        harness,
        event(
            harness.now(),
            DisputeEventKind.OPENED,
            dispute_id=dispute_id(),
            due_in=timedelta(days=2),
        ),
    )
    await handle.result()
    assert [s.action for s in world.disputes.submissions] == [ResponseAction.CONTEST]
    assert "evidence complete" in world.audit.entry("decision_contest").reason


@pytest.mark.world(available=[EvidenceKind.ORDER_AND_REVIEW])
async def test_default_accepts_and_reports_when_evidence_is_missing(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(
        harness,
        event(
            harness.now(),
            DisputeEventKind.OPENED,
            dispute_id=dispute_id(),
            due_in=timedelta(days=2),
        ),
    )
    result = await handle.result()
    assert result.status is DisputeStatus.ACCEPTED
    assert "default_accept_reported" in world.audit.actions()
    assert "authorisation_results" in world.audit.entry("default_accept_reported").reason


async def test_deadline_already_past_on_arrival_expires_without_a_task(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(
        harness,
        event(
            harness.now(),
            DisputeEventKind.OPENED,
            dispute_id=dispute_id(),
            due_in=timedelta(hours=-1),
        ),
    )
    result = await handle.result()
    assert result.status is DisputeStatus.EXPIRED
    assert "deadline_passed_on_arrival" in world.audit.actions()
    assert world.disputes.submissions == []
    assert world.audit.opened_tasks() == []


async def test_arrival_inside_the_buffer_lets_the_default_act_at_once(
    harness: Harness, world: FakeWorld
) -> None:
    started = harness.now()
    handle = await start(
        harness,
        event(
            harness.now(),
            DisputeEventKind.OPENED,
            dispute_id=dispute_id(),
            due_in=timedelta(hours=6),
        ),
    )
    await handle.result()
    assert "arrived_inside_safety_buffer" in world.audit.actions()
    assert world.audit.opened_tasks() == []
    assert world.audit.entry("decision_contest").occurred_at - started < timedelta(minutes=5)


async def test_no_deadline_means_no_response_and_waits_for_the_outcome(
    harness: Harness, world: FakeWorld
) -> None:
    did = dispute_id()
    handle = await start(
        harness,
        event(
            harness.now(),
            DisputeEventKind.FRAUD_NOTIFICATION,
            dispute_id=did,
            due_in=None,
            provider=DisputeProvider.ADYEN,
        ),
    )
    await harness.sleep(timedelta(days=3))
    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(
            harness.now(),
            DisputeEventKind.LOST,
            dispute_id=did,
            due_in=None,
            provider=DisputeProvider.ADYEN,
        ),
    )
    result = await handle.result()
    assert result.status is DisputeStatus.LOST
    assert "no_response_possible" in world.audit.actions()
    assert world.disputes.submissions == [] and world.audit.opened_tasks() == []


# ------------------------------------------------------ duplicates, ordering


async def test_duplicate_and_out_of_order_events_change_the_case_once(
    harness: Harness, world: FakeWorld
) -> None:
    did = dispute_id()
    t0 = harness.now()
    opened = event(harness.now(), DisputeEventKind.OPENED, dispute_id=did, at=t0)
    handle = await start(harness, opened)
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    lost = event(
        harness.now(),
        DisputeEventKind.LOST,
        dispute_id=did,
        event_id="evt_lost",
        at=t0 + timedelta(hours=2),
    )
    stale = event(
        harness.now(),
        DisputeEventKind.UPDATED,
        dispute_id=did,
        event_id="evt_old",
        at=t0 + timedelta(hours=1),
        provider_status="under_review",
    )
    for e in (lost, lost, opened, stale, stale):
        await handle.signal(ChargebackWorkflow.dispute_event, e)
    await wait_for_status(handle, DisputeStatus.LOST)
    state = await handle.query(ChargebackWorkflow.status)
    assert state.events == [opened.event_id, "evt_lost", "evt_old"]
    assert state.status is DisputeStatus.LOST
    assert world.audit.actions().count("provider_event_closed") == 1
    assert world.audit.actions().count("provider_event_stale") == 1
    await handle.result()
    assert world.disputes.submissions == []


# ------------------------------------------------------------ validator


@pytest.mark.world(available=[EvidenceKind.ORDER_AND_REVIEW])
async def test_respond_validator_refuses_wrong_role_missing_evidence_and_late_answers(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(
        harness,
        event(
            harness.now(),
            DisputeEventKind.OPENED,
            dispute_id=dispute_id(),
            due_in=timedelta(days=5),
        ),
    )
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)

    async def refused(input: RespondInput) -> str:
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await handle.execute_update(ChargebackWorkflow.respond, input)
        assert isinstance(failure.value.cause, ApplicationError)
        return failure.value.cause.message

    ops = RespondInput(action=ResponseAction.ACCEPT, actor="ops-bot", role=Role.OPS)
    assert (await refused(ops)).startswith("role: ops")
    missing = await refused(answer(ResponseAction.CONTEST))
    assert missing.startswith("evidence: required evidence missing")
    assert "authorisation_results" in missing
    assert (await refused(answer(ResponseAction.CONTEST, override=True))).startswith(
        "override_missing_evidence"
    )
    assert (await refused(answer(ResponseAction.CONTEST, note=" "))).startswith("note:")
    assert world.disputes.submissions == []

    # A manager may override; the override is on record.
    state = await handle.execute_update(
        ChargebackWorkflow.respond,
        answer(ResponseAction.CONTEST, role=Role.MANAGER, override=True),
    )
    assert state.status is DisputeStatus.SUBMITTED
    assert state.decisions[-1].overridden_missing
    late = await refused(answer(ResponseAction.ACCEPT))
    assert late.startswith("status:")


async def test_respond_after_the_buffer_is_refused(harness: Harness, world: FakeWorld) -> None:
    # The default is "accept" and the answer comes after it acted.
    policy = DisputePolicy(default_action="accept")
    handle = await start(
        harness,
        event(
            harness.now(),
            DisputeEventKind.OPENED,
            dispute_id=dispute_id(),
            due_in=timedelta(days=2),
        ),
        policy,
    )
    await harness.sleep(timedelta(days=1, hours=13))
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert [s.action for s in world.disputes.submissions] == [ResponseAction.ACCEPT]


# --------------------------------------------------------- Adyen lifecycle


async def test_adyen_full_path_to_pre_arbitration(harness: Harness, world: FakeWorld) -> None:
    psp = f"99{uuid.uuid4().int % 10**14:014d}"
    t0 = harness.now()

    def adyen(kind: DisputeEventKind, minutes: int, **kw: object) -> DisputeEvent:
        return event(
            t0,
            kind,
            dispute_id=psp,
            provider=DisputeProvider.ADYEN,
            at=t0 + timedelta(minutes=minutes),
            event_id=f"{psp}:{kind}:true",
            **kw,  # type: ignore[arg-type]
        )

    handle = await start(harness, adyen(DisputeEventKind.OPENED, 0, due_in=timedelta(days=20)))
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    await handle.signal(
        ChargebackWorkflow.dispute_event, adyen(DisputeEventKind.INFORMATION_SUPPLIED, 1)
    )
    await wait_for_status(handle, DisputeStatus.UNDER_REVIEW)
    await handle.signal(
        ChargebackWorkflow.dispute_event, adyen(DisputeEventKind.WON, 2)
    )  # reversed
    await wait_for_status(handle, DisputeStatus.WON)

    # Two weeks later the issuer comes back: pre-arbitration with a new deadline.
    await harness.sleep(timedelta(days=14))
    second = event(
        harness.now(),
        DisputeEventKind.SECOND_CHARGEBACK,
        dispute_id=psp,
        provider=DisputeProvider.ADYEN,
        event_id=f"{psp}:SECOND_CHARGEBACK:true",
        due_in=timedelta(days=30),
        at=t0 + timedelta(days=14),
    )
    await handle.signal(ChargebackWorkflow.dispute_event, second)
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    state = await handle.query(ChargebackWorkflow.status)
    assert state.stage is DisputeStage.PRE_ARBITRATION
    assert state.due_by == second.due_by
    assert world.disputes.records[-1].closed is False  # the refund freeze is back on

    await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert [s.idempotency_key.rsplit("/", 1)[1] for s in world.disputes.submissions] == [
        "respond-1",
        "respond-2",
    ]
    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(
            harness.now(),
            DisputeEventKind.LOST,
            dispute_id=psp,
            provider=DisputeProvider.ADYEN,
            event_id=f"{psp}:PREARBITRATION_LOST:true",
            at=t0 + timedelta(days=15),
        ),
    )
    result = await handle.result()
    assert result.stage is DisputeStage.PRE_ARBITRATION
    assert result.status is DisputeStatus.LOST
    assert len(world.audit.opened_tasks()) == 2


# --------------------------------------------------------------- CCTV, EFW


@pytest.mark.world(
    available=[k for k in ALL_KINDS if k is not EvidenceKind.CCTV_CLIP],
    packed_ago=timedelta(days=3),
)
async def test_cctv_clip_requested_then_delivered_by_signal(
    harness: Harness, world: FakeWorld
) -> None:
    did = dispute_id()
    handle = await start(
        harness,
        event(
            harness.now(),
            DisputeEventKind.OPENED,
            dispute_id=did,
            reason=DisputeReason.NOT_AS_DESCRIBED,
        ),
    )
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    state = await handle.query(ChargebackWorkflow.status)
    assert state.cctv_status == "requested"
    assert state.missing_evidence == [EvidenceKind.CCTV_CLIP]
    request = world.evidence.cctv_requests[0]
    assert request.reply_to_workflow_id == handle.id
    # The clip asked for is the packing of this order.
    assert request.footage_at is not None
    assert request.footage_at == world.disputes.packed_at

    clip = CctvClipReady(
        event_id="wh-1",
        request_id=request.request_id,
        order_id="FR-100001",
        clip_ref="cctv://PAR/pack-3/clip-1",
        station="PAR/pack-3",
    )
    await handle.signal("cctv_clip_ready", clip)
    await handle.signal("cctv_clip_ready", clip)  # redelivered

    async def delivered() -> ChargebackState | None:
        state = await handle.query(ChargebackWorkflow.status)
        return state if state.cctv_status == "delivered" else None

    state = await eventually(delivered, what="the clip delivered")
    assert state.missing_evidence == []
    assert world.audit.actions().count("cctv_clip_received") == 1
    done = await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert done.status is DisputeStatus.SUBMITTED
    assert "cctv://PAR/pack-3/clip-1" in {
        e.reference for e in world.disputes.submissions[0].evidence
    }


@pytest.mark.world(
    packed_ago=timedelta(days=40),
    footage_expired=True,
    available=[k for k in ALL_KINDS if k is not EvidenceKind.CCTV_CLIP],
)
async def test_cctv_past_retention_fails_at_once_with_the_reason(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(
        harness,
        event(
            harness.now(),
            DisputeEventKind.OPENED,
            dispute_id=dispute_id(),
            reason=DisputeReason.NOT_AS_DESCRIBED,
        ),
    )
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    state = await handle.query(ChargebackWorkflow.status)
    assert state.cctv_status == "unavailable"
    assert "retention" in world.audit.entry("cctv_request_failed").reason
    assert len(world.evidence.cctv_requests) == 1  # non-retryable: asked once


async def test_early_fraud_warning_holds_release_and_defaults_to_keep_it_held(
    harness: Harness, world: FakeWorld
) -> None:
    efw = event(
        harness.now(),
        DisputeEventKind.EARLY_FRAUD_WARNING,
        dispute_id=f"issfr_{uuid.uuid4().hex[:10]}",
        due_in=None,
        amount_minor=0,
        order_id="FR-200002",
    )
    handle = await start(harness, efw)
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    assert [h.order_id for h in world.disputes.holds] == ["FR-200002"]
    assert len(world.audit.opened_tasks()) == 1
    result = await handle.result()
    assert result.status is DisputeStatus.ACCEPTED
    assert world.audit.entry("decision_accept").actor == "steward"
    assert (
        world.disputes.submissions == []
    )  # a warning is not a dispute: nothing goes to the provider
    # ...and it stays out of the dispute register, so it never freezes a refund.
    assert world.disputes.records == []


async def test_a_provider_moving_the_deadline_earlier_moves_the_default(
    harness: Harness, world: FakeWorld
) -> None:
    did = dispute_id()
    t0 = harness.now()
    first = event(
        harness.now(), DisputeEventKind.OPENED, dispute_id=did, due_in=timedelta(days=10), at=t0
    )
    handle = await start(harness, first)
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    moved = event(
        harness.now(),
        DisputeEventKind.UPDATED,
        dispute_id=did,
        due_in=timedelta(days=2),
        at=t0 + timedelta(minutes=1),
    )
    assert moved.due_by is not None
    await handle.signal(ChargebackWorkflow.dispute_event, moved)
    await handle.result()
    default = world.audit.entry("decision_contest")
    assert abs(moved.due_by - timedelta(hours=12) - default.occurred_at) < timedelta(minutes=1)
    # The ladder restarted on the new deadline: its 24 h reminder came with the escalation.
    assert abs(
        moved.due_by - timedelta(hours=24) - world.audit.entry("dispute_escalated").occurred_at
    ) < (timedelta(minutes=1))


@pytest.mark.world(refuse_submissions=1)
async def test_refused_submission_goes_to_a_manager_who_submits_again(
    harness: Harness, world: FakeWorld
) -> None:
    did = dispute_id()
    handle = await start(harness, event(harness.now(), DisputeEventKind.OPENED, dispute_id=did))
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    state = await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert state.status is DisputeStatus.AWAITING_COORDINATOR
    assert state.escalated and state.awaited_role is Role.MANAGER
    assert "DisputeResponseRefused" in world.audit.entry("dispute_submission_failed").reason
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    state = await handle.execute_update(
        ChargebackWorkflow.respond, answer(ResponseAction.CONTEST, role=Role.MANAGER)
    )
    assert state.status is DisputeStatus.SUBMITTED
    assert [s.operation_id for s in world.disputes.submissions] == ["respond-1", "respond-1-2"]
    assert len(world.audit.opened_tasks()) == 2
