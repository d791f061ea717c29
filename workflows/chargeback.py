"""Chargebacks and disputes: `chargeback:{provider}:{dispute_id}`.

One workflow per provider dispute (or early fraud warning), fed by the
provider's webhook events as `dispute_event` signals. The deadline engine
waits for a coordinator's `respond` update with reminders before the
provider's deadline, escalates to a manager at the last reminder, and at the
safety buffer lets the configured default act, so a deadline is never missed
silently. Outcome events close the case; Adyen's second chargeback reopens it
with a new deadline within the reopen window.

Every write of a step (audit rows, the case row, tasks) goes out in one
`record_transition` local activity plus the dispute-register row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.audit import CaseStatusInput
    from domain.chargeback import (
        ASSEMBLE_DISPUTE_EVIDENCE,
        CCTV_REASONS,
        HOLD_ORDER_RELEASE,
        RECORD_DISPUTE,
        SUBMIT_DISPUTE_RESPONSE,
        AssembleEvidenceInput,
        AssembleEvidenceResult,
        ChargebackInput,
        ChargebackResult,
        ChargebackState,
        DisputeDecision,
        DisputeEvent,
        DisputePolicy,
        DisputeRecordInput,
        DisputeStage,
        DisputeStatus,
        DisputeStatusChange,
        EventEffect,
        EvidenceItem,
        EvidenceKind,
        EvidencePack,
        HoldReleaseInput,
        HoldReleaseResult,
        RespondInput,
        ResponseAction,
        SubmitResponseInput,
        SubmitResponseResult,
        apply_event,
        default_response,
        missing_evidence,
        reminder_times,
        respond_by,
        validate_response,
    )
    from domain.common import Role, format_amount
    from domain.evidence import (
        CCTV_CLIP_READY_SIGNAL,
        CCTV_FOOTAGE_EXPIRED,
        REQUEST_CCTV_CLIP,
        CctvClipReady,
        CctvClipRequest,
        CctvClipRequestResult,
        cctv_request_id,
    )
    from domain.ids import CHARGEBACK
    from domain.tasks import OpenTaskInput, UpdateTaskInput, task_id
    from workflows import visibility
    from workflows.steps import (
        LOCAL_WRITE_TIMEOUT,
        STEWARD,
        StepRecorder,
        failure_reason,
        wait_until,
    )

DISPUTE_EVENT_SIGNAL = "dispute_event"

OUTSIDE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=[
        "DisputeResponseRefused",
        "UnknownDisputeProvider",
        CCTV_FOOTAGE_EXPIRED,
        "CctvRequestRefused",
    ],
)
OUTSIDE_CALL_TIMEOUT = timedelta(seconds=30)
# Reading our own store: if it is down this long, go on with what we have.
EVIDENCE_GIVE_UP = timedelta(minutes=30)
# An early fraud warning is decided within a day: the goods are waiting.
EFW_DECISION_SLA = timedelta(hours=24)


@workflow.defn
class ChargebackWorkflow:
    @workflow.init
    def __init__(self, input: ChargebackInput) -> None:
        event = input.event
        self._policy: DisputePolicy = input.policy
        self._state = ChargebackState(
            provider=event.provider,
            dispute_id=event.dispute_id,
            order_id=event.order_id,
            stage=DisputeStage.PRE_DISPUTE,
            status=DisputeStatus.OPEN,
            reason=event.reason,
            amount_minor=event.amount_minor,
            currency=event.currency,
        )
        self._steps = StepRecorder(
            CHARGEBACK,
            self._case_id,
            order_id=lambda: self._state.order_id,
            plain_lists=True,
        )
        self._dispute_dirty = False
        self._task_sequence = 0
        self._round = 0  # bumped by every event that makes a response due
        self._answered_round = 0
        self._changed = False  # an event or a clip arrived since the loop last looked
        self._deadline_moved = False  # the provider changed the deadline of this round
        self._decision: DisputeDecision | None = None
        self._extra_evidence: list[EvidenceItem] = []
        self._cctv_request_id: str | None = None

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, input: ChargebackInput) -> ChargebackResult:
        # With signal-with-start the same event may already have come in as the signal.
        if input.event.event_id not in self._steps.seen_event_ids:
            self._receive(input.event)
        self._refresh_ui()
        await self._flush()

        while True:
            self._changed = False
            state = self._state
            if state.status_closed():
                self._drop_pending_decision("the dispute closed before the answer could be sent")
                # Adyen may still reopen (second chargeback) within the window.
                if not await wait_until(
                    lambda: self._changed,
                    until=workflow.now() + self._policy.reopen_window,
                    timer="reopen-window",
                ):
                    break
                await self._flush()
                continue
            if self._answered_round < self._round and state.early_fraud_warning:
                await self._early_fraud_warning_round()
                continue
            if self._answered_round < self._round and state.defendable and state.due_by:
                await self._response_round()
                continue
            if self._answered_round < self._round:
                # No response allowed (fraud notification, no deadline): say so once.
                self._answered_round = self._round
                self._steps.audit(
                    "no_response_possible",
                    reason="the provider gave no response deadline; waiting for its outcome",
                )
                self._refresh_ui()
                await self._flush()
                continue
            if not await wait_until(
                lambda: self._changed,
                until=workflow.now() + self._policy.provider_silence_timeout,
                timer="provider-outcome",
            ):
                self._steps.audit(
                    "provider_silent",
                    reason=f"no provider event for {self._policy.provider_silence_timeout}; "
                    "the case stays listed with its last status",
                )
                break
            await self._flush()

        self._drop_pending_decision("the case ended before the answer could be sent")
        self._refresh_ui()
        await self._flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        last = self._state.decisions[-1] if self._state.decisions else None
        return ChargebackResult(
            provider=self._state.provider,
            dispute_id=self._state.dispute_id,
            stage=self._state.stage,
            status=self._state.status,
            decided_by=last.actor if last else None,
        )

    # ------------------------------------------------------------- handlers

    @workflow.query
    def status(self) -> ChargebackState:
        return self._state

    @workflow.signal(name=DISPUTE_EVENT_SIGNAL)
    def dispute_event(self, event: DisputeEvent) -> None:
        if event.event_id in self._steps.seen_event_ids:
            return  # a redelivery: it changed the case the first time
        if event.provider is not self._state.provider or event.dispute_id != self._state.dispute_id:
            return  # addressed to another dispute: the starter never does this
        self._receive(event)

    @workflow.signal(name=CCTV_CLIP_READY_SIGNAL)
    def cctv_clip_ready(self, clip: CctvClipReady) -> None:
        if clip.event_id in self._steps.seen_event_ids or clip.request_id != self._cctv_request_id:
            return
        self._steps.seen_event_ids.add(clip.event_id)
        item = EvidenceItem(
            kind=EvidenceKind.CCTV_CLIP,
            available=clip.available and bool(clip.clip_ref),
            summary=f"packing-station clip {clip.station or ''}".strip()
            if clip.available
            else f"warehouse has no footage: {clip.reason or 'no reason given'}",
            reference=clip.clip_ref,
        )
        self._state.evidence.put(item)
        self._state.cctv_status = "delivered" if item.available else "unavailable"
        self._state.missing_evidence = missing_evidence(self._state.reason, self._state.evidence)
        self._steps.audit(
            "cctv_clip_received" if item.available else "cctv_clip_unavailable",
            reason=item.summary,
            after={"request_id": clip.request_id, "event_id": clip.event_id},
        )
        self._refresh_ui()
        self._changed = True

    @workflow.update
    async def respond(self, answer: RespondInput) -> ChargebackState:
        self._extra_evidence = list(answer.extra_evidence)
        self._decision = DisputeDecision(
            action=answer.action,
            note=answer.note,
            actor=answer.actor,
            role=answer.role,
            decided_at=workflow.now(),
            overridden_missing=missing_evidence(self._state.reason, self._with_extra())
            if answer.override_missing_evidence
            else [],
        )
        # Answer once the main loop acted, so the caller sees submitted/accepted.
        await workflow.wait_condition(lambda: self._decision is None)
        return self._state

    @respond.validator
    def _validate_respond(self, answer: RespondInput) -> None:
        if self._decision is not None:
            raise ApplicationError("action: another response is being applied", type="Rejected")
        try:
            validate_response(self._state, answer, workflow.now())
        except ValueError as refused:
            raise ApplicationError(str(refused), type="ResponseRejected") from None

    # ---------------------------------------------------------- events

    def _receive(self, event: DisputeEvent) -> None:
        if not self._steps.seen_event_ids:
            self._steps.audit(
                "dispute_received",
                reason=f"{event.provider} {event.provider_event}",
                after={"event_id": event.event_id},
            )
        self._steps.seen_event_ids.add(event.event_id)
        before = {"stage": self._state.stage, "status": self._state.status}
        effect = apply_event(self._state, event)
        if effect is EventEffect.NEW_ROUND:
            self._round += 1
        self._steps.audit(
            f"provider_event_{effect}",
            actor=str(event.provider),
            reason=f"{event.provider_event} ({event.kind}) of {event.occurred_at.isoformat()}",
            before=before,
            after={
                "event_id": event.event_id,
                "stage": self._state.stage,
                "status": self._state.status,
                "due_by": self._state.due_by,
            },
        )
        if effect is EventEffect.CLOSED:
            self._close_task(str(event.provider), f"provider outcome: {self._state.status}")
            self._history(str(event.provider), f"{event.provider_event}")
        elif effect in (EventEffect.NEW_ROUND, EventEffect.APPLIED):
            self._history(str(event.provider), f"{event.provider_event}")
        if effect is EventEffect.DEADLINE_CHANGED and self._state.due_by:
            self._state.respond_by = respond_by(self._state.due_by, self._policy)
            self._deadline_moved = True
        self._refresh_ui()
        self._changed = True

    # ---------------------------------------------------------- response

    async def _response_round(self) -> None:
        round_no = self._round
        self._answered_round = round_no
        state = self._state
        due = state.due_by
        assert due is not None
        now = workflow.now()
        if now >= due:
            self._steps.audit(
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
            self._steps.audit(
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
                self._close_task(STEWARD, "superseded by a provider event")
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
                state.reminders_sent += 1
                if self._steps.open_task_id:
                    self._steps.update_task(
                        UpdateTaskInput(
                            task_id=self._steps.open_task_id, reminders_sent=state.reminders_sent
                        )
                    )
                self._steps.audit(
                    "dispute_reminder",
                    reason=f"{state.due_by - at} before the provider deadline, no answer yet",
                    after={"reminders_sent": state.reminders_sent},
                )
                if index == len(ladder) - 1 and not state.escalated:
                    self._escalate()
                self._refresh_ui()
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
            and self._decision is None
            and self._round == round_no
            and not self._state.status_closed()
        )

    async def _wait_for_decision(self, *, until: datetime, round_no: int, timer: str) -> bool:
        while True:
            self._changed = False
            woke = await wait_until(
                lambda: (
                    self._decision is not None
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
            if self._decision is not None or self._round != round_no or self._deadline_moved:
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
                self._close_task(STEWARD, "superseded by a provider event")
                await self._flush()
                return
            taken = self._take_decision() if decided else None
            if taken is None:
                self._close_task(STEWARD, "deadline passed")
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
            result = await workflow.execute_activity(
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
                start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
                schedule_to_close_timeout=give_up,
                retry_policy=OUTSIDE_RETRY,
                summary=f"{decision.action} dispute at {state.provider}",
            )
        except ActivityError as failure:
            self._steps.audit("dispute_submission_failed", reason=failure_reason(failure))
            return False
        state.submissions.append(result)
        self._steps.audit(
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
        self._close_task(STEWARD, f"default: {action}")
        if "reported" in why:
            self._steps.audit("default_accept_reported", reason=why)
        return decision

    def _take_decision(self) -> DisputeDecision | None:
        decision = self._decision
        if decision is None:
            return None
        self._close_task(decision.actor, decision.action)
        return decision

    def _record_decision(self, decision: DisputeDecision) -> None:
        self._state.decisions.append(decision)
        self._steps.audit(
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
        decision = self._decision
        if decision is None:
            return
        self._steps.audit("response_not_sent", actor=decision.actor, role=decision.role, reason=why)
        self._decision = None

    def _release_decision(self, decision: DisputeDecision) -> None:
        if self._decision is decision:
            self._decision = None

    def _with_extra(self) -> EvidencePack:
        pack = self._state.evidence.model_copy(deep=True)
        for item in self._extra_evidence:
            pack.put(item)
        return pack

    # ---------------------------------------------------------- evidence

    async def _gather_evidence(self) -> None:
        state = self._state
        try:
            assembled = await workflow.execute_activity(
                ASSEMBLE_DISPUTE_EVIDENCE,
                AssembleEvidenceInput(
                    workflow_id=workflow.info().workflow_id,
                    provider=state.provider,
                    dispute_id=state.dispute_id,
                    order_id=state.order_id,
                    reason=state.reason,
                ),
                result_type=AssembleEvidenceResult,
                start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
                schedule_to_close_timeout=EVIDENCE_GIVE_UP,
                retry_policy=OUTSIDE_RETRY,
                summary="assemble evidence",
            )
        except ActivityError as failure:
            self._steps.audit("evidence_assembly_failed", reason=failure_reason(failure))
            assembled = AssembleEvidenceResult(pack=state.evidence)
        clip = state.evidence.get(EvidenceKind.CCTV_CLIP)
        state.evidence = assembled.pack
        if clip is not None and clip.available:  # a clip from an earlier round stays
            state.evidence.put(clip)
        state.missing_evidence = missing_evidence(state.reason, state.evidence)
        self._steps.audit(
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
        self._refresh_ui()
        await self._flush()

    async def _request_cctv(self, order_id: str, packed_at: datetime, station: str | None) -> None:
        request_id = cctv_request_id(workflow.info().workflow_id)
        self._cctv_request_id = request_id
        try:
            result = await workflow.execute_activity(
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
                start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
                schedule_to_close_timeout=self._policy.cctv_answer_timeout,
                retry_policy=OUTSIDE_RETRY,
                summary="request packing CCTV clip",
            )
        except ActivityError as failure:
            reason = failure_reason(failure)
            self._state.cctv_status = "unavailable"
            self._state.evidence.put(
                EvidenceItem(kind=EvidenceKind.CCTV_CLIP, available=False, summary=reason)
            )
            self._steps.audit("cctv_request_failed", reason=reason)
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
        self._steps.audit(
            "cctv_clip_requested", reason=request_id, after={"station": result.station}
        )

    # ------------------------------------------------- early fraud warning

    async def _early_fraud_warning_round(self) -> None:
        """Hold the order at the warehouse and let a coordinator decide within a
        day: contest = the warning is wrong, ship; accept = keep it held for
        cancellation. Nobody decides: it stays held (no goods leave on doubt)."""
        round_no = self._round
        self._answered_round = round_no
        state = self._state
        assert state.order_id is not None
        try:
            hold = await workflow.execute_activity(
                HOLD_ORDER_RELEASE,
                HoldReleaseInput(
                    workflow_id=workflow.info().workflow_id,
                    order_id=state.order_id,
                    reason=f"early fraud warning {state.dispute_id} ({state.provider_reason_code})",
                ),
                result_type=HoldReleaseResult,
                start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
                retry_policy=OUTSIDE_RETRY,
                summary="hold order at the warehouse",
            )
            state.release_held = hold.held
            self._steps.audit(
                "order_release_held",
                reason=f"early fraud warning on order {state.order_id}",
                after={"released_to_warehouse": hold.released_to_warehouse},
            )
        except ActivityError as failure:
            self._steps.audit("order_hold_failed", reason=failure_reason(failure))
        state.due_by = workflow.now() + EFW_DECISION_SLA
        state.respond_by = state.due_by
        self._open_task(Role.COORDINATOR, due=state.due_by, kind="early_fraud_warning")
        self._set_status(
            DisputeStatus.AWAITING_COORDINATOR, STEWARD, "early fraud warning: ship or cancel"
        )
        await self._flush()
        decided = await self._wait_for_decision(
            until=state.due_by, round_no=round_no, timer="efw-decision"
        )
        decision = self._take_decision() if decided else None
        if decision is None:
            decision = DisputeDecision(
                action=ResponseAction.ACCEPT,
                note="no decision within a day: the order stays held",
                actor=STEWARD,
                role=Role.SYSTEM,
                decided_at=workflow.now(),
                by_default=True,
            )
            self._close_task(STEWARD, "default: keep held")
        self._record_decision(decision)
        if decision.action is ResponseAction.CONTEST:
            state.release_held = False
            self._set_status(
                DisputeStatus.WON, decision.actor, "warning dismissed: release the hold"
            )
        else:
            self._set_status(DisputeStatus.ACCEPTED, decision.actor, "warning accepted: order held")
        self._release_decision(decision)
        await self._flush()

    # --------------------------------------------------------------- helpers

    def _open_task(self, role: Role, *, due: datetime, kind: str = "dispute_response") -> None:
        self._close_task(STEWARD, "replaced")
        self._task_sequence += 1
        state = self._state
        workflow_id = workflow.info().workflow_id
        self._steps.open_task(
            OpenTaskInput(
                task_id=task_id(workflow_id, kind, self._task_sequence),
                process=CHARGEBACK,
                case_id=self._case_id(),
                workflow_id=workflow_id,
                kind=kind,
                title=(
                    f"{'Early fraud warning' if state.early_fraud_warning else 'Dispute'} "
                    f"{state.provider} {state.dispute_id} · order {state.order_id or 'unknown'} · "
                    f"{self._money()} · {state.reason} · {state.stage}"
                ),
                awaited_role=role,
                due_at=due,
                priority=min(state.amount_minor // 100, 1_000_000),
                opened_at=workflow.now(),
            )
        )
        state.awaited_role = role

    def _escalate(self) -> None:
        state = self._state
        state.escalated = True
        state.awaited_role = Role.MANAGER
        if self._steps.open_task_id:
            self._steps.update_task(
                UpdateTaskInput(
                    task_id=self._steps.open_task_id, awaited_role=Role.MANAGER, escalated=True
                )
            )
        self._steps.audit(
            "dispute_escalated",
            reason="last reminder before the deadline without an answer",
            after={"awaited_role": Role.MANAGER},
        )

    def _close_task(self, actor: str, outcome: str) -> None:
        if self._steps.close_task(actor, outcome):
            self._state.awaited_role = None

    def _set_status(
        self, status: DisputeStatus, actor: str, reason: str, *, role: Role = Role.SYSTEM
    ) -> None:
        previous = self._state.status
        self._state.status = status
        self._steps.status_changed(
            previous,
            status,
            actor=actor,
            role=role,
            reason=reason,
            after={"status": status, "stage": self._state.stage},
        )
        self._history(actor, reason)
        self._refresh_ui()

    def _history(self, actor: str, reason: str) -> None:
        self._state.history.append(
            DisputeStatusChange(
                at=workflow.now(),
                stage=self._state.stage,
                status=self._state.status,
                actor=actor,
                reason=reason,
            )
        )

    def _case_id(self) -> str:
        return f"{self._state.provider}:{self._state.dispute_id}"

    def _money(self) -> str:
        return format_amount(self._state.amount_minor, self._state.currency)

    def _refresh_ui(self) -> None:
        state = self._state
        due = state.respond_by or state.due_by
        case = CaseStatusInput(
            workflow_id=workflow.info().workflow_id,
            process=CHARGEBACK,
            case_id=self._case_id(),
            status=state.status,
            awaited_role=state.awaited_role,
            due_at=due if not state.status_closed() else None,
            amount_minor=state.amount_minor,
            currency=state.currency,
            updated_at=workflow.now(),
        )
        self._dispute_dirty = True
        updates = visibility.case_updates(
            CHARGEBACK,
            state.status,
            awaited_role=state.awaited_role,
            due_at=due if not state.status_closed() else None,
        )
        self._steps.set_case(case, updates)
        workflow.set_current_details(_details(state, self._money()))

    async def _flush(self) -> None:
        await self._steps.flush()
        # An early fraud warning is not a dispute: it stays out of the register,
        # so it never freezes the proactive refund that would prevent one.
        if self._dispute_dirty and not self._state.early_fraud_warning:
            self._dispute_dirty = False
            state = self._state
            # After the audit: a refund refused by the freeze must find the
            # dispute's audit trail already written.
            await workflow.execute_local_activity(
                RECORD_DISPUTE,
                DisputeRecordInput(
                    provider=state.provider,
                    dispute_id=state.dispute_id,
                    workflow_id=workflow.info().workflow_id,
                    order_id=state.order_id,
                    stage=state.stage,
                    status=state.status,
                    reason=state.reason,
                    provider_reason_code=state.provider_reason_code,
                    due_by=state.due_by,
                    amount_minor=state.amount_minor,
                    currency=state.currency,
                    payment_ref=state.payment_ref,
                    updated_at=workflow.now(),
                    closed=state.status_closed(),
                ),
                start_to_close_timeout=LOCAL_WRITE_TIMEOUT,
                summary="record dispute",
            )


def _details(state: ChargebackState, money: str) -> str:
    title = "Early fraud warning" if state.early_fraud_warning else "Dispute"
    lines = [
        f"**{state.status.replace('_', ' ').capitalize()}** · {title} {state.provider} "
        f"{state.dispute_id} · {state.stage.replace('_', ' ')}",
        f"Order {state.order_id or 'unknown'} · {money} · reason {state.reason}"
        + (f" ({state.scheme} {state.provider_reason_code})" if state.provider_reason_code else ""),
    ]
    if state.due_by and not state.status_closed():
        lines.append(f"Provider deadline {state.due_by:%Y-%m-%d %H:%M} UTC")
    if state.awaited_role and state.respond_by:
        lines.append(
            f"Waiting for **{state.awaited_role}** · "
            f"default acts {state.respond_by:%Y-%m-%d %H:%M} UTC"
        )
    if state.missing_evidence:
        lines.append(f"Missing evidence: {', '.join(state.missing_evidence)}")
    if state.escalated:
        lines.append("Escalated to a manager")
    return "\n\n".join(lines)
