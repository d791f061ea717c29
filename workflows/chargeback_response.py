"""The response to a dispute round: the evidence (with the packing-station
CCTV clip), the deadline ladder that waits for a coordinator's answer, the
default at the safety buffer, and the submission to the provider.

ChargebackWorkflow (workflows/chargeback.py) inherits these stages; they live
in their own module only so that each file reads as one part of the process.
They use the workflow's attributes and helpers declared below and nothing
else, and like every workflow module they are replayed: changing what they do
is a `workflow.patched` matter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.chargeback import (
        ASSEMBLE_DISPUTE_EVIDENCE,
        CCTV_REASONS,
        SUBMIT_DISPUTE_RESPONSE,
        AssembleEvidenceInput,
        AssembleEvidenceResult,
        ChargebackState,
        DisputeDecision,
        DisputePolicy,
        DisputeStatus,
        EvidenceItem,
        EvidenceKind,
        EvidencePack,
        ResponseAction,
        SubmitResponseInput,
        SubmitResponseResult,
        default_response,
        missing_evidence,
        reminder_times,
        respond_by,
    )
    from domain.common import Role
    from domain.evidence import (
        CCTV_FOOTAGE_EXPIRED,
        REQUEST_CCTV_CLIP,
        CctvClipRequest,
        CctvClipRequestResult,
        cctv_request_id,
    )
    from workflows.case import CaseBook, PendingDecision, call_outside, outside_retry
    from workflows.steps import STEWARD, failure_reason, wait_until

OUTSIDE_RETRY = outside_retry(
    "DisputeResponseRefused",
    "UnknownDisputeProvider",
    CCTV_FOOTAGE_EXPIRED,
    "CctvRequestRefused",
    maximum_interval=timedelta(minutes=5),
)
# Reading our own store: if it is down this long, go on with what we have.
EVIDENCE_GIVE_UP = timedelta(minutes=30)


class ChargebackResponse:
    """Evidence, deadline ladder, default and submission, for ChargebackWorkflow."""

    # The workflow's own attributes (set in ChargebackWorkflow.__init__) ...
    _policy: DisputePolicy
    _state: ChargebackState
    _case: CaseBook
    _decision: PendingDecision[DisputeDecision]
    _extra_evidence: list[EvidenceItem]
    _cctv_request_id: str | None
    _round: int
    _answered_round: int
    _changed: bool
    _deadline_moved: bool
    # ... and its helpers (workflows/chargeback.py).
    _flush: Callable[[], Awaitable[None]]
    _open_task: Callable[..., None]
    _set_status: Callable[..., None]

    # ---------------------------------------------------------- response

    async def _response_round(self) -> None:
        round_no = self._round
        self._answered_round = round_no
        state = self._state
        due = state.due_by
        assert due is not None
        now = workflow.now()
        if now >= due:
            self._case.audit(
                "deadline_passed_on_arrival",
                reason=f"provider deadline {due.isoformat()} had passed when the case reached "
                "Steward: no response is possible",
            )
            self._set_status(DisputeStatus.EXPIRED, STEWARD, "provider deadline already past")
            await self._flush()
            return
        state.respond_by = max(now, respond_by(due, self._policy))
        self._set_status(DisputeStatus.GATHERING_EVIDENCE, STEWARD, "assembling evidence")
        await self._flush()
        await self._gather_evidence()
        if self._round != round_no or state.status_closed():
            return

        decision: DisputeDecision | None = None
        if workflow.now() >= state.respond_by:
            self._case.audit(
                "arrived_inside_safety_buffer",
                reason=f"less than {self._policy.safety_buffer} before the provider deadline: "
                "the default acts now",
            )
        else:
            self._open_task(Role.COORDINATOR, due=state.respond_by)
            self._set_status(
                DisputeStatus.AWAITING_COORDINATOR, STEWARD, "contest or accept before the deadline"
            )
            await self._flush()
            decided = await self._deadline_ladder(round_no)
            if self._round != round_no or state.status_closed():
                self._case.close_human_task(STEWARD, "superseded by a provider event")
                await self._flush()
                return
            if decided:
                decision = self._take_decision()
        if decision is None:
            decision = self._default_decision()
        await self._act(decision, round_no)

    async def _deadline_ladder(self, round_no: int) -> bool:
        """Reminders, escalation at the last one, then the buffer. True when a
        decision arrived (or an event superseded the round). A provider event
        that moves the deadline restarts the ladder on the new one."""
        state = self._state
        while True:
            self._deadline_moved = False
            assert state.due_by is not None and state.respond_by is not None
            ladder = reminder_times(state.due_by, self._policy, workflow.now())
            moved = False
            for index, at in enumerate(ladder):
                if await self._wait_for_decision(
                    until=at, round_no=round_no, timer="dispute-reminder"
                ):
                    if not self._only_moved(round_no):
                        return True
                    moved = True
                    break
                self._case.remind(
                    "dispute_reminder",
                    reason=f"{state.due_by - at} before the provider deadline, no answer yet",
                )
                if index == len(ladder) - 1 and not state.escalated:
                    # The provider's deadline stays the due date: no new one.
                    self._case.escalate(
                        Role.MANAGER,
                        reason="last reminder before the deadline without an answer",
                        action="dispute_escalated",
                        refresh=False,
                    )
                self._case.refresh()
                await self._flush()
            if moved:
                continue
            if await self._wait_for_decision(
                until=state.respond_by, round_no=round_no, timer="dispute-safety-buffer"
            ):
                if not self._only_moved(round_no):
                    return True
                continue
            return False

    def _only_moved(self, round_no: int) -> bool:
        """The wait ended only because the provider moved the deadline."""
        return (
            self._deadline_moved
            and not self._decision.pending
            and self._round == round_no
            and not self._state.status_closed()
        )

    async def _wait_for_decision(self, *, until: datetime, round_no: int, timer: str) -> bool:
        while True:
            self._changed = False
            woke = await wait_until(
                lambda: (
                    self._decision.pending
                    or self._changed
                    or self._deadline_moved
                    or self._round != round_no
                    or self._state.status_closed()
                ),
                until=until,
                timer=timer,
            )
            if not woke:
                return False
            if self._decision.pending or self._round != round_no or self._deadline_moved:
                return True
            if self._state.status_closed():
                return True
            # A clip or an informational event: record it and keep waiting.
            await self._flush()

    async def _act(self, decision: DisputeDecision, round_no: int) -> None:
        """Send the decision to the provider; a refused submission goes to a
        manager, who may try again until the provider's own deadline."""
        attempt = 0
        while True:
            attempt += 1
            self._record_decision(decision)
            submitted = await self._submit(decision, round_no, attempt)
            # The `respond` update answers now, with the state the submission led to.
            self._release_decision(decision)
            if submitted:
                return
            state = self._state
            assert state.due_by is not None
            if workflow.now() >= state.due_by:
                self._set_status(DisputeStatus.EXPIRED, STEWARD, "no response reached the provider")
                await self._flush()
                return
            state.respond_by = state.due_by
            state.escalated = True
            self._open_task(Role.MANAGER, due=state.due_by, kind="dispute_submission_failed")
            self._set_status(
                DisputeStatus.AWAITING_COORDINATOR, STEWARD, "submission failed; manager to act"
            )
            await self._flush()
            while True:
                self._deadline_moved = False
                decided = await self._wait_for_decision(
                    until=state.due_by, round_no=round_no, timer="provider-deadline"
                )
                if not (decided and self._only_moved(round_no)):
                    break
                state.respond_by = state.due_by
            if self._round != round_no or state.status_closed():
                self._case.close_human_task(STEWARD, "superseded by a provider event")
                await self._flush()
                return
            taken = self._take_decision() if decided else None
            if taken is None:
                self._case.close_human_task(STEWARD, "deadline passed")
                self._set_status(DisputeStatus.EXPIRED, STEWARD, "no response reached the provider")
                await self._flush()
                return
            decision = taken

    async def _submit(self, decision: DisputeDecision, round_no: int, attempt: int) -> bool:
        state = self._state
        assert state.due_by is not None
        evidence = [i for i in self._with_extra().items if i.available]
        if decision.note:
            evidence.append(
                EvidenceItem(
                    kind=EvidenceKind.COORDINATOR_NOTE, available=True, summary=decision.note
                )
            )
        operation = f"respond-{round_no}" if attempt == 1 else f"respond-{round_no}-{attempt}"
        # Retry transient faults until shortly before the provider's deadline, never past it.
        give_up = max(state.due_by - workflow.now(), timedelta(minutes=1))
        try:
            result = await call_outside(
                SUBMIT_DISPUTE_RESPONSE,
                SubmitResponseInput(
                    workflow_id=workflow.info().workflow_id,
                    operation_id=operation,
                    provider=state.provider,
                    dispute_id=state.dispute_id,
                    action=decision.action,
                    note=decision.note,
                    evidence=evidence,
                ),
                result_type=SubmitResponseResult,
                schedule_to_close=give_up,
                retry=OUTSIDE_RETRY,
                summary=f"{decision.action} dispute at {state.provider}",
            )
        except ActivityError as failure:
            self._case.audit("dispute_submission_failed", reason=failure_reason(failure))
            return False
        state.submissions.append(result)
        self._case.audit(
            f"dispute_{decision.action}_submitted",
            actor=decision.actor,
            role=decision.role,
            reason=result.idempotency_key,
            after={"provider_reference": result.provider_reference, "steps": result.steps},
        )
        self._set_status(
            DisputeStatus.SUBMITTED
            if decision.action is ResponseAction.CONTEST
            else DisputeStatus.ACCEPTED,
            decision.actor,
            f"{decision.action} sent to {state.provider}",
            role=decision.role,
        )
        await self._flush()
        return True

    # --------------------------------------------------------- decisions

    def _default_decision(self) -> DisputeDecision:
        action, why = default_response(self._state, self._policy)
        decision = DisputeDecision(
            action=action,
            note=why,
            actor=STEWARD,
            role=Role.SYSTEM,
            decided_at=workflow.now(),
            by_default=True,
        )
        self._case.close_human_task(STEWARD, f"default: {action}")
        if "reported" in why:
            self._case.audit("default_accept_reported", reason=why)
        return decision

    def _take_decision(self) -> DisputeDecision | None:
        """The coordinator's answer, which stays pending: the `respond` caller
        is answered once it has been acted on (see _release_decision)."""
        decision = self._decision.record
        if decision is None:
            return None
        self._case.close_human_task(decision.actor, decision.action)
        return decision

    def _record_decision(self, decision: DisputeDecision) -> None:
        self._state.decisions.append(decision)
        self._case.audit(
            f"decision_{decision.action}",
            actor=decision.actor,
            role=decision.role,
            reason=decision.note or decision.action,
            before={"status": self._state.status},
            after={
                "action": decision.action,
                "by_default": decision.by_default,
                "overridden_missing": list(decision.overridden_missing),
            },
        )

    def _drop_pending_decision(self, why: str) -> None:
        """An answer accepted by the validator but overtaken by a provider event
        (outcome, end of case): record that it was not sent, and let the
        `respond` caller return with the state as it is."""
        decision = self._decision.take()
        if decision is None:
            return
        self._case.audit("response_not_sent", actor=decision.actor, role=decision.role, reason=why)

    def _release_decision(self, decision: DisputeDecision) -> None:
        if self._decision.record is decision:
            self._decision.take()

    def _with_extra(self) -> EvidencePack:
        pack = self._state.evidence.model_copy(deep=True)
        for item in self._extra_evidence:
            pack.put(item)
        return pack

    # ---------------------------------------------------------- evidence

    async def _gather_evidence(self) -> None:
        state = self._state
        try:
            assembled = await call_outside(
                ASSEMBLE_DISPUTE_EVIDENCE,
                AssembleEvidenceInput(
                    workflow_id=workflow.info().workflow_id,
                    provider=state.provider,
                    dispute_id=state.dispute_id,
                    order_id=state.order_id,
                    reason=state.reason,
                ),
                result_type=AssembleEvidenceResult,
                schedule_to_close=EVIDENCE_GIVE_UP,
                retry=OUTSIDE_RETRY,
                summary="assemble evidence",
            )
        except ActivityError as failure:
            self._case.audit("evidence_assembly_failed", reason=failure_reason(failure))
            assembled = AssembleEvidenceResult(pack=state.evidence)
        clip = state.evidence.get(EvidenceKind.CCTV_CLIP)
        state.evidence = assembled.pack
        if clip is not None and clip.available:  # a clip from an earlier round stays
            state.evidence.put(clip)
        state.missing_evidence = missing_evidence(state.reason, state.evidence)
        self._case.audit(
            "evidence_assembled",
            reason="complete"
            if not state.missing_evidence
            else f"missing: {', '.join(state.missing_evidence)}",
            after={"available": [i.kind for i in state.evidence.items if i.available]},
        )
        if (
            state.reason in CCTV_REASONS
            and self._cctv_request_id is None
            and state.order_id is not None
            and assembled.packed_at is not None
        ):
            await self._request_cctv(state.order_id, assembled.packed_at, assembled.station)
        self._case.refresh()
        await self._flush()

    async def _request_cctv(self, order_id: str, packed_at: datetime, station: str | None) -> None:
        request_id = cctv_request_id(workflow.info().workflow_id)
        self._cctv_request_id = request_id
        try:
            result = await call_outside(
                REQUEST_CCTV_CLIP,
                CctvClipRequest(
                    request_id=request_id,
                    reply_to_workflow_id=workflow.info().workflow_id,
                    order_id=order_id,
                    footage_at=packed_at,
                    station=station,
                    purpose="chargeback",
                ),
                result_type=CctvClipRequestResult,
                schedule_to_close=self._policy.cctv_answer_timeout,
                retry=OUTSIDE_RETRY,
                summary="request packing CCTV clip",
            )
        except ActivityError as failure:
            reason = failure_reason(failure)
            self._state.cctv_status = "unavailable"
            self._state.evidence.put(
                EvidenceItem(kind=EvidenceKind.CCTV_CLIP, available=False, summary=reason)
            )
            self._case.audit("cctv_request_failed", reason=reason)
            return
        self._state.cctv_status = "requested"
        self._state.evidence.put(
            EvidenceItem(
                kind=EvidenceKind.CCTV_CLIP,
                available=False,
                summary=f"requested from {result.station}; footage kept until "
                f"{result.retained_until:%Y-%m-%d}",
                reference=request_id,
            )
        )
        self._case.audit(
            "cctv_clip_requested", reason=request_id, after={"station": result.station}
        )
