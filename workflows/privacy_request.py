"""Privacy request: `privacy-request:{request_id}` (issue 21).

received -> awaiting_verification -> rejected
                                  -> checking_holds -> exported            (access)
                                  -> checking_holds -> erased              (erasure)
                                                    -> on_hold -> checking_holds ...

A coordinator verifies the requester (a human task due at the SLA, 30 days
from receipt, with reminders and an escalation to a manager before it). An
access request then gets its export; an erasure erases every subject free of
legal holds, keeps only the invoice fields of those under statutory
retention, and waits on a durable timer for the others (an open dispute,
return, claim, failed delivery or campaign) until the date the holds lift or
the next check. The requester is answered once, as soon as Steward can say
what happened (rejected, exported, erased, or partial with the date the
rest follows); the contact kept to answer them is erased with that answer.

The workflow holds subject ids, counts and a fingerprint, never a personal
value (domain/privacy_request.py).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.common import Role
    from domain.privacy_request import (
        CHECK_LEGAL_HOLDS,
        CLOSED_PRIVACY_STATUSES,
        CONFIRM_PRIVACY_REQUEST,
        ERASE_PERSONAL_DATA,
        INVOICE_RETENTION,
        PREPARE_PRIVACY_EXPORT,
        PRIVACY_REQUEST,
        CheckHoldsInput,
        CheckHoldsResult,
        ConfirmInput,
        ConfirmResult,
        ConfirmTemplate,
        EraseInput,
        EraseResult,
        ExportInput,
        ExportResult,
        PrivacyRequestContract,
        PrivacyRequestInput,
        PrivacyRequestKind,
        PrivacyRequestResult,
        PrivacyRequestState,
        PrivacyRequestStatus,
        VerifyDecision,
        VerifyInput,
        check_verifier,
        plan_erasure,
    )
    from workflows.case import CaseBook, CaseFacts, PendingDecision, call_outside, outside_retry
    from workflows.steps import STEWARD, wait_until

OUTSIDE_RETRY = outside_retry()
# ISO 4217 "no currency": a privacy request moves no money.
NO_CURRENCY = "XXX"


@workflow.defn(name=PrivacyRequestContract.WORKFLOW_TYPE)
class PrivacyRequestWorkflow:
    @workflow.init
    def __init__(self, input: PrivacyRequestInput) -> None:
        self._input = input
        self._state = PrivacyRequestState(
            request_id=input.request_id,
            kind=input.kind,
            jurisdiction=input.jurisdiction,
            status=PrivacyRequestStatus.RECEIVED,
            received_at=input.received_at,
            sla_due_at=input.received_at + input.policy.sla,
            subjects=len(set(input.subject_ids)),
        )
        self._case = CaseBook(
            PRIVACY_REQUEST,
            lambda: input.request_id,
            state=self._state,
            facts=self._facts,
            closed=CLOSED_PRIVACY_STATUSES,
        )
        self._verification: PendingDecision[VerifyInput] = PendingDecision(
            busy="decision: the request is being verified"
        )
        self._known: set[str] = set(input.subject_ids)
        self._erased: set[str] = set()
        self._retained: set[str] = set()

    @workflow.run
    async def run(self, input: PrivacyRequestInput) -> PrivacyRequestResult:
        due = self._state.sla_due_at
        self._case.audit(
            "privacy_request_received",
            actor=input.requested_by,
            reason=f"{input.kind} request under {input.jurisdiction} rules",
            after={"subjects": self._state.subjects, "sla_due_at": due},
        )
        self._case.open_human_task(
            "verify_privacy_request",
            f"Verify the requester of privacy request {input.request_id} ({input.kind})",
            Role.COORDINATOR,
            due,
        )
        self._case.transition(
            PrivacyRequestStatus.AWAITING_VERIFICATION, STEWARD, "verify the requester's identity"
        )
        await self._case.flush()

        decision = await self._await_verification(due)
        self._state.verified_by = decision.actor
        self._state.verification = decision.decision
        self._case.close_human_task(decision.actor, decision.decision.value)
        if decision.decision is VerifyDecision.REJECTED:
            self._case.transition(
                PrivacyRequestStatus.REJECTED, decision.actor, decision.reason, role=decision.role
            )
            await self._case.flush()
            await self._answer(ConfirmTemplate.REJECTED)
        else:
            self._case.audit(
                "requester_verified",
                actor=decision.actor,
                role=decision.role,
                reason=decision.reason,
            )
            if input.kind is PrivacyRequestKind.ACCESS:
                await self._export()
            else:
                await self._erase()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PrivacyRequestResult(
            status=self._state.status,
            subjects=self._state.subjects,
            erased=self._state.erased,
            retained=self._state.retained,
        )

    # ------------------------------------------------------------- handlers

    @workflow.query(name=PrivacyRequestContract.QUERY_STATUS)
    def status(self) -> PrivacyRequestState:
        return self._state

    @workflow.update(name=PrivacyRequestContract.UPDATE_VERIFY)
    async def verify(self, decision: VerifyInput) -> PrivacyRequestState:
        await self._verification.hand_over(decision)
        return self._state

    @verify.validator
    def _validate_verify(self, decision: VerifyInput) -> None:
        self._verification.validate(lambda: self._verifiable(decision))

    def _verifiable(self, decision: VerifyInput) -> None:
        check_verifier(decision)
        if self._state.status is not PrivacyRequestStatus.AWAITING_VERIFICATION:
            raise ValueError(
                f"decision: the request is {self._state.status}, not awaiting verification"
            )

    # --------------------------------------------------------------- stages

    async def _await_verification(self, due: datetime) -> VerifyInput:
        """Wait for the coordinator; remind before the SLA, escalate to a
        manager near it, record a breach at it and keep waiting."""
        policy = self._input.policy
        marks = sorted(
            [(due - before, "reminder") for before in policy.reminders_before]
            + [(due - policy.escalate_before, "escalation")]
        )

        def decided() -> bool:
            return self._verification.pending

        for at, kind in marks:
            if await wait_until(decided, until=at, timer=f"privacy-verification-{kind}"):
                break
            if kind == "reminder":
                self._case.remind(
                    "verification_reminder", reason=f"the answer is due by {due:%Y-%m-%d %H:%M} UTC"
                )
            else:
                self._case.escalate(
                    Role.MANAGER,
                    reason=f"not verified {policy.escalate_before.days} day(s) before the SLA",
                )
            await self._case.flush()
        else:
            if not await wait_until(decided, until=due, timer="privacy-sla"):
                self._case.audit("sla_breached", reason=f"not answered by {due:%Y-%m-%d %H:%M} UTC")
                await self._case.flush()
                await workflow.wait_condition(decided)
        record = self._verification.take()
        assert record is not None
        return record

    async def _check_holds(self) -> CheckHoldsResult:
        self._case.transition(
            PrivacyRequestStatus.CHECKING_HOLDS, STEWARD, "finding the data and its legal holds"
        )
        await self._case.flush()
        policy = self._input.policy
        found = await call_outside(
            CHECK_LEGAL_HOLDS,
            CheckHoldsInput(
                request_id=self._input.request_id,
                match_fingerprint=self._input.match_fingerprint,
                subject_ids=sorted(self._known | self._retained),
                jurisdiction=self._input.jurisdiction,
                invoice_retention=policy.invoice_retention
                or INVOICE_RETENTION[self._input.jurisdiction],
            ),
            result_type=CheckHoldsResult,
            retry=OUTSIDE_RETRY,
            summary="find the subjects and their legal holds",
        )
        self._known |= set(found.subject_ids)
        self._state.subjects = len(self._known)
        return found

    async def _export(self) -> None:
        found = await self._check_holds()
        export = await call_outside(
            PREPARE_PRIVACY_EXPORT,
            ExportInput(request_id=self._input.request_id, subject_ids=found.subject_ids),
            result_type=ExportResult,
            retry=OUTSIDE_RETRY,
            summary="prepare the access export",
        )
        self._state.export = export
        self._state.export_subject_ids = list(found.subject_ids)
        self._case.transition(
            PrivacyRequestStatus.EXPORTED,
            STEWARD,
            f"export of {export.subjects} subject(s), {export.fields} field(s) ready",
            after={"status": PrivacyRequestStatus.EXPORTED, "subjects": export.subjects},
        )
        await self._case.flush()
        await self._answer(ConfirmTemplate.EXPORT_READY)

    async def _erase(self) -> None:
        policy = self._input.policy
        while True:
            found = await self._check_holds()
            plan = plan_erasure(found.subject_ids, found.holds, workflow.now(), policy.hold_recheck)
            retain = [s for s in plan.retain_invoice_fields if s not in self._retained]
            if plan.erase_now or retain:
                result = await call_outside(
                    ERASE_PERSONAL_DATA,
                    EraseInput(
                        request_id=self._input.request_id,
                        workflow_id=workflow.info().workflow_id,
                        erase=plan.erase_now,
                        retain_invoice_fields=retain,
                    ),
                    result_type=EraseResult,
                    retry=OUTSIDE_RETRY,
                    summary="erase personal data",
                )
                self._erased |= set(plan.erase_now)
                self._retained = (self._retained | set(retain)) - self._erased
                self._state.erased = len(self._erased)
                self._state.retained = len(self._retained)
                self._case.audit(
                    "personal_data_erased",
                    reason=f"{len(plan.erase_now)} subject(s) erased, {len(retain)} kept "
                    "for invoices only",
                    after={
                        "erased": result.erased,
                        "already_erased": result.already_erased,
                        "invoice_fields_kept": result.retained,
                    },
                )
            self._state.holds = found.holds
            self._state.hold_reasons = plan.reasons
            self._state.proceeds_at = plan.proceed_at
            if plan.proceed_at is None:
                self._case.transition(
                    PrivacyRequestStatus.ERASED,
                    STEWARD,
                    f"{self._state.erased} subject(s) erased",
                    after={"status": PrivacyRequestStatus.ERASED, "erased": self._state.erased},
                )
                await self._case.flush()
                await self._answer(ConfirmTemplate.ERASURE_DONE)
                return
            self._case.transition(
                PrivacyRequestStatus.ON_HOLD,
                STEWARD,
                f"continues on {plan.proceed_at:%Y-%m-%d}: " + "; ".join(plan.reasons),
                after={
                    "status": PrivacyRequestStatus.ON_HOLD,
                    "proceeds_at": plan.proceed_at,
                    "blocked": len(plan.blocked),
                    "invoice_fields_kept": len(self._retained),
                },
            )
            await self._case.flush()
            await self._answer(ConfirmTemplate.ERASURE_PARTIAL)
            await workflow.sleep(
                max(plan.proceed_at - workflow.now(), policy.hold_recheck / 1000),
                summary="privacy-hold",
            )

    async def _answer(self, template: ConfirmTemplate) -> None:
        """Answer the requester once, as soon as Steward can say what happened
        (the answer the SLA asks for; a partial answer gives the date the rest
        follows), and erase the contact kept for it with the same call."""
        if self._state.answered_at is not None:
            return
        result = await call_outside(
            CONFIRM_PRIVACY_REQUEST,
            ConfirmInput(
                request_id=self._input.request_id,
                contact_subject_id=self._input.contact_subject_id,
                template=template,
                erase_contact=True,
            ),
            result_type=ConfirmResult,
            retry=OUTSIDE_RETRY,
            summary=f"answer the requester: {template}",
        )
        self._state.answered_at = workflow.now()
        self._case.audit(
            "requester_answered" if result.delivered else "requester_answer_not_delivered",
            reason=str(template),
            after={"message_id": result.message_id, "contact_erased": True},
        )
        await self._case.flush()

    def _facts(self) -> CaseFacts:
        state = self._state
        return CaseFacts(
            status=state.status,
            details=_details(state),
            amount_minor=0,
            currency=NO_CURRENCY,
            awaited_role=state.awaited_role,
            due_at=state.due_at,
        )


def _details(state: PrivacyRequestState) -> str:
    lines = [
        f"**Privacy request {state.request_id}** · {state.kind} · {state.jurisdiction}",
        f"Status: {state.status} · SLA {state.sla_due_at:%Y-%m-%d}",
        f"Subjects: {state.subjects} · erased {state.erased} · invoice-only {state.retained}",
    ]
    if state.proceeds_at is not None and state.status is PrivacyRequestStatus.ON_HOLD:
        lines.append(f"Continues {state.proceeds_at:%Y-%m-%d}: " + "; ".join(state.hold_reasons))
    return "\n\n".join(lines)
