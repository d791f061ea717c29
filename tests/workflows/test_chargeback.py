"""Chargebacks under time skipping: every deadline path, duplicates, events
out of order, the Adyen path to pre-arbitration, CCTV and early fraud warnings.

The outside world (evidence store, dispute providers, warehouse) is replaced
by in-memory activities registered under the real names; the real activities
are covered by tests/integration/test_disputes_api.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.audit import RECORD_TRANSITION, AuditEntry, RecordTransitionInput
from domain.chargeback import (
    ASSEMBLE_DISPUTE_EVIDENCE,
    HOLD_ORDER_RELEASE,
    RECORD_DISPUTE,
    SUBMIT_DISPUTE_RESPONSE,
    AssembleEvidenceInput,
    AssembleEvidenceResult,
    ChargebackInput,
    ChargebackResult,
    DisputeEvent,
    DisputeEventKind,
    DisputePolicy,
    DisputeProvider,
    DisputeReason,
    DisputeRecordInput,
    DisputeStage,
    DisputeStatus,
    EvidenceItem,
    EvidenceKind,
    EvidencePack,
    HoldReleaseInput,
    HoldReleaseResult,
    RespondInput,
    ResponseAction,
    SubmitResponseInput,
    SubmitResponseResult,
    chargeback_workflow_id,
)
from domain.common import Role
from domain.evidence import (
    CCTV_FOOTAGE_EXPIRED,
    REQUEST_CCTV_CLIP,
    CctvClipReady,
    CctvClipRequest,
    CctvClipRequestResult,
    CctvRequestStatus,
)
from workflows.chargeback import ChargebackWorkflow

POLICY = DisputePolicy()  # 12 h buffer, reminders 72 h and 24 h before, smart default

ALL_KINDS = [k for k in EvidenceKind if k is not EvidenceKind.COORDINATOR_NOTE]


class FakeWorld:
    """Evidence, provider and warehouse in memory, recording every call."""

    def __init__(
        self,
        *,
        available: list[EvidenceKind] | None = None,
        packed_at: datetime | None = None,
        footage_expired: bool = False,
        refuse_submissions: int = 0,
    ) -> None:
        self.refuse_submissions = refuse_submissions
        self.available = set(ALL_KINDS if available is None else available)
        self.packed_at = packed_at
        self.footage_expired = footage_expired
        self.submissions: list[SubmitResponseInput] = []
        self.submitted_at: list[datetime] = []
        self.cctv_requests: list[CctvClipRequest] = []
        self.holds: list[HoldReleaseInput] = []
        self.transitions: list[RecordTransitionInput] = []
        self.records: list[DisputeRecordInput] = []

    @activity.defn(name=ASSEMBLE_DISPUTE_EVIDENCE)
    async def assemble(self, input: AssembleEvidenceInput) -> AssembleEvidenceResult:
        pack = EvidencePack(
            items=[
                EvidenceItem(kind=k, available=k in self.available, summary=f"{k} (fake)")
                for k in ALL_KINDS
                if k is not EvidenceKind.CCTV_CLIP or k in self.available
            ]
        )
        return AssembleEvidenceResult(pack=pack, packed_at=self.packed_at)

    @activity.defn(name=SUBMIT_DISPUTE_RESPONSE)
    async def submit(self, input: SubmitResponseInput) -> SubmitResponseResult:
        self.submissions.append(input)
        if self.refuse_submissions:
            self.refuse_submissions -= 1
            raise ApplicationError(
                "evidence file too large for the provider",
                type="DisputeResponseRefused",
                non_retryable=True,
            )
        steps = ["accept"] if input.action is ResponseAction.ACCEPT else ["stage", "submit"]
        return SubmitResponseResult(
            idempotency_key=input.idempotency_key,
            provider_reference=f"ref-{len(self.submissions)}",
            steps=steps,
        )

    @activity.defn(name=REQUEST_CCTV_CLIP)
    async def request_cctv(self, input: CctvClipRequest) -> CctvClipRequestResult:
        self.cctv_requests.append(input)
        if self.footage_expired:
            raise ApplicationError(
                "footage deleted (30-day retention)", type=CCTV_FOOTAGE_EXPIRED, non_retryable=True
            )
        assert input.footage_at is not None
        return CctvClipRequestResult(
            request_id=input.request_id,
            status=CctvRequestStatus.REQUESTED,
            station="PAR/pack-3",
            footage_at=input.footage_at,
            retained_until=input.footage_at + timedelta(days=30),
        )

    @activity.defn(name=HOLD_ORDER_RELEASE)
    async def hold(self, input: HoldReleaseInput) -> HoldReleaseResult:
        self.holds.append(input)
        return HoldReleaseResult(order_id=input.order_id, held=True, released_to_warehouse=False)

    @activity.defn(name=RECORD_TRANSITION)
    async def record_transition(self, input: RecordTransitionInput) -> None:
        self.transitions.append(input)

    @activity.defn(name=RECORD_DISPUTE)
    async def record_dispute(self, input: DisputeRecordInput) -> None:
        self.records.append(input)

    def activities(self) -> list[object]:
        return [
            self.assemble,
            self.submit,
            self.request_cctv,
            self.hold,
            self.record_transition,
            self.record_dispute,
        ]

    def entries(self) -> list[AuditEntry]:
        return [e for t in self.transitions for e in t.entries]

    def actions(self) -> list[str]:
        return [e.action for e in self.entries()]

    def entry(self, action: str) -> AuditEntry:
        return next(e for e in self.entries() if e.action == action)

    def opened_tasks(self) -> list[str]:
        return [o.task_id for t in self.transitions for o in t.open_tasks]


def event(
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
    now = datetime.now(UTC)
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


@pytest.fixture
def task_queue() -> str:
    return f"chargeback-{uuid.uuid4()}"


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
async def worker(
    env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> AsyncIterator[FakeWorld]:
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ChargebackWorkflow],
        activities=world.activities(),
    ):
        yield world


Handle = WorkflowHandle[ChargebackWorkflow, ChargebackResult]


async def start(
    env: WorkflowEnvironment, task_queue: str, first: DisputeEvent, policy: DisputePolicy = POLICY
) -> Handle:
    return await env.client.start_workflow(
        ChargebackWorkflow.run,
        ChargebackInput(event=first, policy=policy),
        id=chargeback_workflow_id(first.provider, first.dispute_id),
        task_queue=task_queue,
    )


async def wait_for(env: WorkflowEnvironment, handle: Handle, status: DisputeStatus) -> None:
    for _ in range(300):
        state = await handle.query(ChargebackWorkflow.status)
        if state.status is status:
            return
        await env.sleep(timedelta(milliseconds=1))
    raise AssertionError(f"never reached {status}; now {state.status}")


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
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    did = dispute_id()
    handle = await start(env, task_queue, event(DisputeEventKind.OPENED, dispute_id=did))
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)

    state = await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert state.status is DisputeStatus.SUBMITTED
    assert [s.idempotency_key for s in worker.submissions] == [f"{handle.id}/respond-1"]
    sent = worker.submissions[0]
    assert sent.action is ResponseAction.CONTEST
    assert EvidenceKind.COORDINATOR_NOTE in {e.kind for e in sent.evidence}

    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(DisputeEventKind.UPDATED, dispute_id=did, provider_status="under_review"),
    )
    await wait_for(env, handle, DisputeStatus.UNDER_REVIEW)
    await handle.signal(
        ChargebackWorkflow.dispute_event, event(DisputeEventKind.WON, dispute_id=did)
    )
    result = await handle.result()  # skips the reopen window

    assert result.status is DisputeStatus.WON
    assert result.decided_by == "camille"
    assert len(worker.submissions) == 1
    assert worker.records[-1].closed is True
    assert "decision_contest" in worker.actions()
    assert worker.transitions[-1].case is not None
    assert worker.transitions[-1].case.due_at is None


async def test_reminders_escalation_and_default_at_the_buffer(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    did = dispute_id()
    first = event(
        DisputeEventKind.OPENED, dispute_id=did, due_in=timedelta(days=5), amount_minor=2_000
    )
    assert first.due_by is not None
    handle = await start(env, task_queue, first)
    result = await handle.result()

    assert result.status is DisputeStatus.ACCEPTED
    entries = worker.entries()
    reminders = [e for e in entries if e.action == "dispute_reminder"]
    assert [
        abs(first.due_by - e.occurred_at - off) < timedelta(minutes=1)
        for e, off in zip(reminders, (timedelta(hours=72), timedelta(hours=24)), strict=True)
    ] == [True, True]
    escalated = worker.entry("dispute_escalated")
    assert abs(first.due_by - timedelta(hours=24) - escalated.occurred_at) < timedelta(minutes=1)
    default = worker.entry("decision_accept")
    assert default.actor == "steward"
    assert "under the 5000 threshold" in default.reason
    assert abs(first.due_by - timedelta(hours=12) - default.occurred_at) < timedelta(minutes=1)
    assert [s.action for s in worker.submissions] == [ResponseAction.ACCEPT]
    updates = [u for t in worker.transitions for u in t.update_tasks]
    assert any(u.awaited_role is Role.MANAGER and u.escalated for u in updates)


async def test_default_contests_when_evidence_is_complete(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    handle = await start(
        env,
        task_queue,
        event(DisputeEventKind.OPENED, dispute_id=dispute_id(), due_in=timedelta(days=2)),
    )
    await handle.result()
    assert [s.action for s in worker.submissions] == [ResponseAction.CONTEST]
    assert "evidence complete" in worker.entry("decision_contest").reason


@pytest.mark.parametrize(
    "world", [FakeWorld(available=[EvidenceKind.ORDER_AND_REVIEW])], indirect=False
)
async def test_default_accepts_and_reports_when_evidence_is_missing(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    handle = await start(
        env,
        task_queue,
        event(DisputeEventKind.OPENED, dispute_id=dispute_id(), due_in=timedelta(days=2)),
    )
    result = await handle.result()
    assert result.status is DisputeStatus.ACCEPTED
    assert "default_accept_reported" in worker.actions()
    assert "authorisation_results" in worker.entry("default_accept_reported").reason


async def test_deadline_already_past_on_arrival_expires_without_a_task(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    handle = await start(
        env,
        task_queue,
        event(DisputeEventKind.OPENED, dispute_id=dispute_id(), due_in=timedelta(hours=-1)),
    )
    result = await handle.result()
    assert result.status is DisputeStatus.EXPIRED
    assert "deadline_passed_on_arrival" in worker.actions()
    assert worker.submissions == []
    assert worker.opened_tasks() == []


async def test_arrival_inside_the_buffer_lets_the_default_act_at_once(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    started = datetime.now(UTC)
    handle = await start(
        env,
        task_queue,
        event(DisputeEventKind.OPENED, dispute_id=dispute_id(), due_in=timedelta(hours=6)),
    )
    await handle.result()
    assert "arrived_inside_safety_buffer" in worker.actions()
    assert worker.opened_tasks() == []
    assert worker.entry("decision_contest").occurred_at - started < timedelta(minutes=5)


async def test_no_deadline_means_no_response_and_waits_for_the_outcome(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    did = dispute_id()
    handle = await start(
        env,
        task_queue,
        event(
            DisputeEventKind.FRAUD_NOTIFICATION,
            dispute_id=did,
            due_in=None,
            provider=DisputeProvider.ADYEN,
        ),
    )
    await env.sleep(timedelta(days=3))
    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(DisputeEventKind.LOST, dispute_id=did, due_in=None, provider=DisputeProvider.ADYEN),
    )
    result = await handle.result()
    assert result.status is DisputeStatus.LOST
    assert "no_response_possible" in worker.actions()
    assert worker.submissions == [] and worker.opened_tasks() == []


# ------------------------------------------------------ duplicates, ordering


async def test_duplicate_and_out_of_order_events_change_the_case_once(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    did = dispute_id()
    t0 = datetime.now(UTC)
    opened = event(DisputeEventKind.OPENED, dispute_id=did, at=t0)
    handle = await start(env, task_queue, opened)
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)
    lost = event(
        DisputeEventKind.LOST, dispute_id=did, event_id="evt_lost", at=t0 + timedelta(hours=2)
    )
    stale = event(
        DisputeEventKind.UPDATED,
        dispute_id=did,
        event_id="evt_old",
        at=t0 + timedelta(hours=1),
        provider_status="under_review",
    )
    for e in (lost, lost, opened, stale, stale):
        await handle.signal(ChargebackWorkflow.dispute_event, e)
    await wait_for(env, handle, DisputeStatus.LOST)
    state = await handle.query(ChargebackWorkflow.status)
    assert state.events == [opened.event_id, "evt_lost", "evt_old"]
    assert state.status is DisputeStatus.LOST
    assert worker.actions().count("provider_event_closed") == 1
    assert worker.actions().count("provider_event_stale") == 1
    await handle.result()
    assert worker.submissions == []


# ------------------------------------------------------------ validator


async def test_respond_validator_refuses_wrong_role_missing_evidence_and_late_answers(
    env: WorkflowEnvironment, task_queue: str
) -> None:
    world = FakeWorld(available=[EvidenceKind.ORDER_AND_REVIEW])
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ChargebackWorkflow],
        activities=world.activities(),
    ):
        handle = await start(
            env,
            task_queue,
            event(DisputeEventKind.OPENED, dispute_id=dispute_id(), due_in=timedelta(days=5)),
        )
        await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)

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
        assert world.submissions == []

        # A manager may override; the override is on record.
        state = await handle.execute_update(
            ChargebackWorkflow.respond,
            answer(ResponseAction.CONTEST, role=Role.MANAGER, override=True),
        )
        assert state.status is DisputeStatus.SUBMITTED
        assert state.decisions[-1].overridden_missing
        late = await refused(answer(ResponseAction.ACCEPT))
        assert late.startswith("status:")


async def test_respond_after_the_buffer_is_refused(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    # The default is "accept" and the answer comes after it acted.
    policy = DisputePolicy(default_action="accept")
    handle = await start(
        env,
        task_queue,
        event(DisputeEventKind.OPENED, dispute_id=dispute_id(), due_in=timedelta(days=2)),
        policy,
    )
    await env.sleep(timedelta(days=1, hours=13))
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert [s.action for s in worker.submissions] == [ResponseAction.ACCEPT]


# --------------------------------------------------------- Adyen lifecycle


async def test_adyen_full_path_to_pre_arbitration(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    psp = f"99{uuid.uuid4().int % 10**14:014d}"
    t0 = datetime.now(UTC)

    def adyen(kind: DisputeEventKind, minutes: int, **kw: object) -> DisputeEvent:
        return event(
            kind,
            dispute_id=psp,
            provider=DisputeProvider.ADYEN,
            at=t0 + timedelta(minutes=minutes),
            event_id=f"{psp}:{kind}:true",
            **kw,  # type: ignore[arg-type]
        )

    handle = await start(
        env, task_queue, adyen(DisputeEventKind.OPENED, 0, due_in=timedelta(days=20))
    )
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)
    await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    await handle.signal(
        ChargebackWorkflow.dispute_event, adyen(DisputeEventKind.INFORMATION_SUPPLIED, 1)
    )
    await wait_for(env, handle, DisputeStatus.UNDER_REVIEW)
    await handle.signal(
        ChargebackWorkflow.dispute_event, adyen(DisputeEventKind.WON, 2)
    )  # reversed
    await wait_for(env, handle, DisputeStatus.WON)

    # Two weeks later the issuer comes back: pre-arbitration with a new deadline.
    await env.sleep(timedelta(days=14))
    second = event(
        DisputeEventKind.SECOND_CHARGEBACK,
        dispute_id=psp,
        provider=DisputeProvider.ADYEN,
        event_id=f"{psp}:SECOND_CHARGEBACK:true",
        due_in=timedelta(days=30),
        at=t0 + timedelta(days=14),
    )
    await handle.signal(ChargebackWorkflow.dispute_event, second)
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)
    state = await handle.query(ChargebackWorkflow.status)
    assert state.stage is DisputeStage.PRE_ARBITRATION
    assert state.due_by == second.due_by
    assert worker.records[-1].closed is False  # the refund freeze is back on

    await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert [s.idempotency_key.rsplit("/", 1)[1] for s in worker.submissions] == [
        "respond-1",
        "respond-2",
    ]
    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(
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
    assert len(worker.opened_tasks()) == 2


# --------------------------------------------------------------- CCTV, EFW


@pytest.mark.parametrize(
    "world",
    [
        FakeWorld(
            available=[k for k in ALL_KINDS if k is not EvidenceKind.CCTV_CLIP],
            packed_at=datetime.now(UTC) - timedelta(days=3),
        )
    ],
)
async def test_cctv_clip_requested_then_delivered_by_signal(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    did = dispute_id()
    handle = await start(
        env,
        task_queue,
        event(DisputeEventKind.OPENED, dispute_id=did, reason=DisputeReason.NOT_AS_DESCRIBED),
    )
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)
    state = await handle.query(ChargebackWorkflow.status)
    assert state.cctv_status == "requested"
    assert state.missing_evidence == [EvidenceKind.CCTV_CLIP]
    request = worker.cctv_requests[0]
    assert request.reply_to_workflow_id == handle.id

    clip = CctvClipReady(
        event_id="wh-1",
        request_id=request.request_id,
        order_id="FR-100001",
        clip_ref="cctv://PAR/pack-3/clip-1",
        station="PAR/pack-3",
    )
    await handle.signal("cctv_clip_ready", clip)
    await handle.signal("cctv_clip_ready", clip)  # redelivered
    for _ in range(100):
        state = await handle.query(ChargebackWorkflow.status)
        if state.cctv_status == "delivered":
            break
        await env.sleep(timedelta(milliseconds=1))
    assert state.missing_evidence == []
    assert worker.actions().count("cctv_clip_received") == 1
    done = await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert done.status is DisputeStatus.SUBMITTED
    assert "cctv://PAR/pack-3/clip-1" in {e.reference for e in worker.submissions[0].evidence}


@pytest.mark.parametrize(
    "world",
    [
        FakeWorld(
            packed_at=datetime.now(UTC) - timedelta(days=40),
            footage_expired=True,
            available=[k for k in ALL_KINDS if k is not EvidenceKind.CCTV_CLIP],
        )
    ],
)
async def test_cctv_past_retention_fails_at_once_with_the_reason(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    handle = await start(
        env,
        task_queue,
        event(
            DisputeEventKind.OPENED, dispute_id=dispute_id(), reason=DisputeReason.NOT_AS_DESCRIBED
        ),
    )
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)
    state = await handle.query(ChargebackWorkflow.status)
    assert state.cctv_status == "unavailable"
    assert "retention" in worker.entry("cctv_request_failed").reason
    assert len(worker.cctv_requests) == 1  # non-retryable: asked once


async def test_early_fraud_warning_holds_release_and_defaults_to_keep_it_held(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    efw = event(
        DisputeEventKind.EARLY_FRAUD_WARNING,
        dispute_id=f"issfr_{uuid.uuid4().hex[:10]}",
        due_in=None,
        amount_minor=0,
        order_id="FR-200002",
    )
    handle = await start(env, task_queue, efw)
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)
    assert [h.order_id for h in worker.holds] == ["FR-200002"]
    assert len(worker.opened_tasks()) == 1
    result = await handle.result()
    assert result.status is DisputeStatus.ACCEPTED
    assert worker.entry("decision_accept").actor == "steward"
    assert worker.submissions == []  # a warning is not a dispute: nothing goes to the provider
    # ...and it stays out of the dispute register, so it never freezes a refund.
    assert worker.records == []


async def test_a_provider_moving_the_deadline_earlier_moves_the_default(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    did = dispute_id()
    t0 = datetime.now(UTC)
    first = event(DisputeEventKind.OPENED, dispute_id=did, due_in=timedelta(days=10), at=t0)
    handle = await start(env, task_queue, first)
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)
    moved = event(
        DisputeEventKind.UPDATED,
        dispute_id=did,
        due_in=timedelta(days=2),
        at=t0 + timedelta(minutes=1),
    )
    assert moved.due_by is not None
    await handle.signal(ChargebackWorkflow.dispute_event, moved)
    await handle.result()
    default = worker.entry("decision_contest")
    assert abs(moved.due_by - timedelta(hours=12) - default.occurred_at) < timedelta(minutes=1)
    # The ladder restarted on the new deadline: its 24 h reminder came with the escalation.
    assert abs(
        moved.due_by - timedelta(hours=24) - worker.entry("dispute_escalated").occurred_at
    ) < (timedelta(minutes=1))


@pytest.mark.parametrize("world", [FakeWorld(refuse_submissions=1)])
async def test_refused_submission_goes_to_a_manager_who_submits_again(
    env: WorkflowEnvironment, task_queue: str, worker: FakeWorld
) -> None:
    did = dispute_id()
    handle = await start(env, task_queue, event(DisputeEventKind.OPENED, dispute_id=did))
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)
    state = await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    assert state.status is DisputeStatus.AWAITING_COORDINATOR
    assert state.escalated and state.awaited_role is Role.MANAGER
    assert "DisputeResponseRefused" in worker.entry("dispute_submission_failed").reason
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    state = await handle.execute_update(
        ChargebackWorkflow.respond, answer(ResponseAction.CONTEST, role=Role.MANAGER)
    )
    assert state.status is DisputeStatus.SUBMITTED
    assert [s.operation_id for s in worker.submissions] == ["respond-1", "respond-1-2"]
    assert len(worker.opened_tasks()) == 2
