"""Privacy requests under time skipping (issue 21): verification with SLA
reminders and escalation, a legal hold that lifts, a partial erasure kept for
invoices until the retention date, access exports, rejected requesters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from domain.common import Role
from domain.privacy_request import (
    CHECK_LEGAL_HOLDS,
    CONFIRM_PRIVACY_REQUEST,
    ERASE_PERSONAL_DATA,
    PREPARE_PRIVACY_EXPORT,
    CheckHoldsInput,
    CheckHoldsResult,
    ConfirmInput,
    ConfirmResult,
    ConfirmTemplate,
    EraseInput,
    EraseResult,
    ExportInput,
    ExportResult,
    HoldKind,
    Jurisdiction,
    LegalHold,
    PrivacyPolicy,
    PrivacyRequestContract,
    PrivacyRequestInput,
    PrivacyRequestKind,
    PrivacyRequestResult,
    PrivacyRequestStatus,
    VerifyDecision,
    VerifyInput,
    privacy_request_workflow_id,
)
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from workflows.privacy_request import PrivacyRequestWorkflow

pytestmark = pytest.mark.workflows([PrivacyRequestWorkflow])

A, B = "subj_aaaaaaaaaaaa", "subj_bbbbbbbbbbbb"
CONTACT = "subj_contact000001"
FP = "fp_" + "0" * 32


@dataclass
class FakePrivacy:
    """The privacy activities, in memory: each hold check answers the next
    entry of `checks` (the last one repeats)."""

    checks: list[CheckHoldsResult] = field(default_factory=list)
    check_calls: list[CheckHoldsInput] = field(default_factory=list)
    erasures: list[EraseInput] = field(default_factory=list)
    answers: list[ConfirmInput] = field(default_factory=list)
    exports: list[ExportInput] = field(default_factory=list)

    @activity.defn(name=CHECK_LEGAL_HOLDS)
    async def check(self, input: CheckHoldsInput) -> CheckHoldsResult:
        self.check_calls.append(input)
        return self.checks[min(len(self.check_calls), len(self.checks)) - 1]

    @activity.defn(name=ERASE_PERSONAL_DATA)
    async def erase(self, input: EraseInput) -> EraseResult:
        self.erasures.append(input)
        return EraseResult(erased=len(input.erase), retained=len(input.retain_invoice_fields))

    @activity.defn(name=PREPARE_PRIVACY_EXPORT)
    async def export(self, input: ExportInput) -> ExportResult:
        self.exports.append(input)
        return ExportResult(subjects=len(input.subject_ids), fields=7, references=2)

    @activity.defn(name=CONFIRM_PRIVACY_REQUEST)
    async def confirm(self, input: ConfirmInput) -> ConfirmResult:
        self.answers.append(input)
        return ConfirmResult(message_id=f"m-{len(self.answers)}", delivered=True)


@dataclass
class Privacy:
    harness: Harness
    world: FakeWorld
    fake: FakePrivacy
    task_queue: str

    async def start(
        self,
        kind: PrivacyRequestKind = PrivacyRequestKind.ERASURE,
        *,
        policy: PrivacyPolicy | None = None,
    ) -> WorkflowHandle[PrivacyRequestWorkflow, PrivacyRequestResult]:
        request_id = f"PR-{uuid.uuid4().hex[:8]}"
        handle = await self.harness.client.start_workflow(
            PrivacyRequestWorkflow.run,
            PrivacyRequestInput(
                request_id=request_id,
                kind=kind,
                jurisdiction=Jurisdiction.EU,
                match_fingerprint=FP,
                subject_ids=[A],
                contact_subject_id=CONTACT,
                received_at=self.harness.now(),
                requested_by="dpo@steward",
                policy=policy or PrivacyPolicy(),
            ),
            id=privacy_request_workflow_id(request_id),
            task_queue=self.task_queue,
        )
        self.harness._started.append(handle.id)
        return handle


@pytest_asyncio.fixture(loop_scope="session")
async def privacy(harness: Harness, world: FakeWorld) -> AsyncIterator[Privacy]:
    fake = FakePrivacy()
    queue = f"{harness.task_queue}-privacy"
    async with Worker(
        harness.client,
        task_queue=queue,
        workflows=[PrivacyRequestWorkflow],
        activities=[*world.activities(), fake.check, fake.erase, fake.export, fake.confirm],
    ):
        yield Privacy(harness, world, fake, queue)


def verify(decision: VerifyDecision = VerifyDecision.VERIFIED, role: Role = Role.COORDINATOR):
    return VerifyInput(decision=decision, reason="ID checked by video call", actor="ana", role=role)


def hold(kind: HoldKind, subjects: list[str], until: datetime | None = None) -> LegalHold:
    return LegalHold(kind=kind, reference=f"{kind}-ref", subject_ids=subjects, until=until)


async def test_erasure_without_holds_erases_everything_and_the_contact(privacy: Privacy) -> None:
    privacy.fake.checks = [CheckHoldsResult(subject_ids=[A, B])]
    handle = await privacy.start()
    await wait_for_status(handle, PrivacyRequestStatus.AWAITING_VERIFICATION)
    await handle.execute_update(PrivacyRequestContract.UPDATE_VERIFY, verify())
    result = await handle.result()
    assert result.status == PrivacyRequestStatus.ERASED and result.erased == 2
    assert [e.erase for e in privacy.fake.erasures] == [[A, B]]
    assert [(a.template, a.erase_contact) for a in privacy.fake.answers] == [
        (ConfirmTemplate.ERASURE_DONE, True)
    ]
    actions = privacy.world.audit.actions(handle.id)
    assert actions.index("requester_verified") < actions.index("personal_data_erased")
    assert privacy.world.audit.closed_outcomes() == ["verified"]


async def test_a_hold_that_lifts_erases_the_rest_later(privacy: Privacy) -> None:
    policy = PrivacyPolicy(hold_recheck=timedelta(days=7))
    privacy.fake.checks = [
        CheckHoldsResult(subject_ids=[A, B], holds=[hold(HoldKind.DISPUTE, [A])]),
        CheckHoldsResult(subject_ids=[A]),
    ]
    handle = await privacy.start(policy=policy)
    await wait_for_status(handle, PrivacyRequestStatus.AWAITING_VERIFICATION)
    await handle.execute_update(PrivacyRequestContract.UPDATE_VERIFY, verify())
    await wait_for_status(handle, PrivacyRequestStatus.ON_HOLD)
    state = await handle.query(PrivacyRequestWorkflow.status)
    assert state.erased == 1 and state.hold_reasons == ["dispute dispute-ref until it closes"]
    assert state.proceeds_at is not None
    assert [e.erase for e in privacy.fake.erasures] == [[B]]
    # Answered within the SLA with the partial result and its date; the
    # contact kept for that answer goes with it.
    assert [(a.template, a.erase_contact) for a in privacy.fake.answers] == [
        (ConfirmTemplate.ERASURE_PARTIAL, True)
    ]
    await privacy.harness.sleep(timedelta(days=7, minutes=1))
    result = await handle.result()
    assert result.status == PrivacyRequestStatus.ERASED and result.erased == 2
    assert [e.erase for e in privacy.fake.erasures] == [[B], [A]]
    # Answered once: nothing more is sent (the contact is gone).
    assert [(a.template, a.erase_contact) for a in privacy.fake.answers] == [
        (ConfirmTemplate.ERASURE_PARTIAL, True)
    ]
    assert len(privacy.fake.check_calls) == 2


async def test_invoice_retention_makes_the_erasure_partial_until_its_date(
    privacy: Privacy,
) -> None:
    until = privacy.harness.now() + timedelta(days=90)
    privacy.fake.checks = [
        CheckHoldsResult(subject_ids=[A, B], holds=[hold(HoldKind.INVOICE_RETENTION, [A], until)]),
        CheckHoldsResult(subject_ids=[A], holds=[hold(HoldKind.INVOICE_RETENTION, [A], until)]),
    ]
    handle = await privacy.start()
    await wait_for_status(handle, PrivacyRequestStatus.AWAITING_VERIFICATION)
    await handle.execute_update(PrivacyRequestContract.UPDATE_VERIFY, verify())
    await wait_for_status(handle, PrivacyRequestStatus.ON_HOLD)
    first = privacy.fake.erasures[0]
    assert first.erase == [B] and first.retain_invoice_fields == [A]
    state = await handle.query(PrivacyRequestWorkflow.status)
    assert state.retained == 1 and state.proceeds_at == until
    await privacy.harness.sleep(timedelta(days=91))
    result = await handle.result()
    assert result.status == PrivacyRequestStatus.ERASED
    assert result.erased == 2 and result.retained == 0
    # The retained subject is erased at the date; its fields were not re-kept.
    assert [(e.erase, e.retain_invoice_fields) for e in privacy.fake.erasures] == [
        ([B], [A]),
        ([A], []),
    ]


async def test_sla_reminders_and_escalation_before_the_answer_is_due(privacy: Privacy) -> None:
    privacy.fake.checks = [CheckHoldsResult(subject_ids=[A])]
    handle = await privacy.start()
    await wait_for_status(handle, PrivacyRequestStatus.AWAITING_VERIFICATION)
    await privacy.harness.sleep(timedelta(days=21))
    state = await eventually(
        lambda: _state_with(handle, lambda s: s.reminders_sent == 1), what="first reminder"
    )
    assert not state.escalated
    await privacy.harness.sleep(timedelta(days=7, hours=1))
    state = await eventually(
        lambda: _state_with(handle, lambda s: s.escalated), what="escalation to a manager"
    )
    assert state.reminders_sent == 2 and state.awaited_role == Role.MANAGER
    actions = privacy.world.audit.actions(handle.id)
    assert actions.count("verification_reminder") == 2 and "escalated" in actions
    assert "sla_breached" not in actions
    await handle.execute_update(PrivacyRequestContract.UPDATE_VERIFY, verify(role=Role.MANAGER))
    assert (await handle.result()).status == PrivacyRequestStatus.ERASED


async def test_a_role_that_may_not_verify_is_refused_and_nothing_changes(
    privacy: Privacy,
) -> None:
    privacy.fake.checks = [CheckHoldsResult(subject_ids=[A])]
    handle = await privacy.start()
    await wait_for_status(handle, PrivacyRequestStatus.AWAITING_VERIFICATION)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(PrivacyRequestContract.UPDATE_VERIFY, verify(role=Role.OPS))
    assert "role: ops may not verify" in str(err.value.cause)
    state = await handle.query(PrivacyRequestWorkflow.status)
    assert state.status == PrivacyRequestStatus.AWAITING_VERIFICATION
    assert privacy.fake.erasures == [] and privacy.fake.check_calls == []


async def test_access_request_prepares_the_export_and_answers(privacy: Privacy) -> None:
    privacy.fake.checks = [CheckHoldsResult(subject_ids=[A, B])]
    handle = await privacy.start(PrivacyRequestKind.ACCESS)
    await wait_for_status(handle, PrivacyRequestStatus.AWAITING_VERIFICATION)
    await handle.execute_update(PrivacyRequestContract.UPDATE_VERIFY, verify())
    result = await handle.result()
    assert result.status == PrivacyRequestStatus.EXPORTED and result.erased == 0
    assert [e.subject_ids for e in privacy.fake.exports] == [[A, B]]
    assert privacy.fake.erasures == []
    assert [(a.template, a.erase_contact) for a in privacy.fake.answers] == [
        (ConfirmTemplate.EXPORT_READY, True)
    ]


async def test_an_unverified_requester_is_rejected_and_nothing_is_erased(
    privacy: Privacy,
) -> None:
    privacy.fake.checks = [CheckHoldsResult(subject_ids=[A])]
    handle = await privacy.start()
    await wait_for_status(handle, PrivacyRequestStatus.AWAITING_VERIFICATION)
    await handle.execute_update(
        PrivacyRequestContract.UPDATE_VERIFY, verify(VerifyDecision.REJECTED)
    )
    result = await handle.result()
    assert result.status == PrivacyRequestStatus.REJECTED
    assert privacy.fake.erasures == [] and privacy.fake.check_calls == []
    assert [(a.template, a.erase_contact) for a in privacy.fake.answers] == [
        (ConfirmTemplate.REJECTED, True)
    ]
    # The case is closed: a second verification reaches nothing.
    with pytest.raises(RPCError, match="not found"):
        await handle.execute_update(PrivacyRequestContract.UPDATE_VERIFY, verify())


async def _state_with(handle: WorkflowHandle, check):  # type: ignore[no-untyped-def]
    state = await handle.query(PrivacyRequestWorkflow.status)
    return state if check(state) else None
