"""Chargebacks and disputes: `chargeback:{provider}:{dispute_id}`.

One workflow per provider dispute (or early fraud warning), fed by the
provider's webhook events as `dispute_event` signals. The deadline engine
waits for a coordinator's `respond` update with reminders before the
provider's deadline, escalates to a manager at the last reminder, and at the
safety buffer lets the configured default act, so a deadline is never missed
silently. Outcome events close the case; Adyen's second chargeback reopens it
with a new deadline within the reopen window.

The main loop reads one value, the case's phase (domain.chargeback
.chargeback_phase), to pick its next stage; the response stages (evidence,
deadline ladder, submission) are in workflows/chargeback_response.py.

Every write of a step (audit rows, the case row, tasks) goes out in one
`record_transition` local activity plus the dispute-register row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.chargeback import (
        CLOSED_DISPUTE_STATUSES,
        HOLD_ORDER_RELEASE,
        RECORD_DISPUTE,
        RESPONSE_REJECTED,
        ChargebackContract,
        ChargebackInput,
        ChargebackPhase,
        ChargebackResult,
        ChargebackState,
        DisputeDecision,
        DisputeEvent,
        DisputeRecordInput,
        DisputeStage,
        DisputeStatus,
        DisputeStatusChange,
        EventEffect,
        EvidenceItem,
        EvidenceKind,
        HoldReleaseInput,
        HoldReleaseResult,
        RespondInput,
        ResponseAction,
        apply_event,
        chargeback_phase,
        missing_evidence,
        respond_by,
        validate_response,
    )
    from domain.common import Role, format_amount
    from domain.evidence import CctvClipReady
    from domain.ids import CHARGEBACK
    from workflows.case import CaseBook, CaseFacts, PendingDecision, call_outside
    from workflows.steps import LOCAL_WRITE_TIMEOUT, STEWARD, failure_reason, wait_until

from workflows.chargeback_response import OUTSIDE_RETRY, ChargebackResponse

# An early fraud warning is decided within a day: the goods are waiting.
EFW_DECISION_SLA = timedelta(hours=24)


@workflow.defn(name=ChargebackContract.WORKFLOW_TYPE)
class ChargebackWorkflow(ChargebackResponse):
    @workflow.init
    def __init__(self, input: ChargebackInput) -> None:
        event = input.event
        self._policy = input.policy
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
        self._case = CaseBook(
            CHARGEBACK,
            self._case_id,
            state=self._state,
            facts=self._facts,
            history=self._history,
            # A closed dispute keeps its provider deadline on record, and
            # whoever was awaited is cleared with the task: nothing to clear.
            closed=CLOSED_DISPUTE_STATUSES,
            clear_on_close=(),
            order_id=lambda: self._state.order_id,
            plain_lists=True,
        )
        self._dispute_dirty = False
        self._round = 0  # bumped by every event that makes a response due
        self._answered_round = 0
        self._changed = False  # an event or a clip arrived since the loop last looked
        self._deadline_moved = False  # the provider changed the deadline of this round
        self._decision: PendingDecision[DisputeDecision] = PendingDecision(
            busy="action: another response is being applied"
        )
        self._extra_evidence: list[EvidenceItem] = []
        self._cctv_request_id: str | None = None

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, input: ChargebackInput) -> ChargebackResult:
        # With signal-with-start the same event may already have come in as the signal.
        if input.event.event_id not in self._case.seen_event_ids:
            self._receive(input.event)
        self._case.refresh()
        await self._flush()

        while True:
            self._changed = False
            match self._phase():
                case ChargebackPhase.CLOSED:
                    self._drop_pending_decision(
                        "the dispute closed before the answer could be sent"
                    )
                    # Adyen may still reopen (second chargeback) within the window.
                    if not await wait_until(
                        lambda: self._changed,
                        until=workflow.now() + self._policy.reopen_window,
                        timer="reopen-window",
                    ):
                        break
                    await self._flush()
                case ChargebackPhase.EARLY_FRAUD_WARNING_DUE:
                    await self._early_fraud_warning_round()
                case ChargebackPhase.RESPONSE_DUE:
                    await self._response_round()
                case ChargebackPhase.NO_RESPONSE_POSSIBLE:
                    # No response allowed (fraud notification, no deadline): say so once.
                    self._answered_round = self._round
                    self._case.audit(
                        "no_response_possible",
                        reason="the provider gave no response deadline; waiting for its outcome",
                    )
                    self._case.refresh()
                    await self._flush()
                case ChargebackPhase.WAITING_FOR_PROVIDER:
                    if not await wait_until(
                        lambda: self._changed,
                        until=workflow.now() + self._policy.provider_silence_timeout,
                        timer="provider-outcome",
                    ):
                        self._case.audit(
                            "provider_silent",
                            reason=f"no provider event for {self._policy.provider_silence_timeout}"
                            "; the case stays listed with its last status",
                        )
                        break
                    await self._flush()

        self._drop_pending_decision("the case ended before the answer could be sent")
        self._case.refresh()
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

    def _phase(self) -> ChargebackPhase:
        """The one value the main loop picks its next stage by."""
        return chargeback_phase(self._state, round_open=self._answered_round < self._round)

    # ------------------------------------------------------------- handlers

    @workflow.query(name=ChargebackContract.QUERY_STATUS)
    def status(self) -> ChargebackState:
        return self._state

    @workflow.signal(name=ChargebackContract.SIGNAL_DISPUTE_EVENT)
    def dispute_event(self, event: DisputeEvent) -> None:
        if event.event_id in self._case.seen_event_ids:
            return  # a redelivery: it changed the case the first time
        if event.provider is not self._state.provider or event.dispute_id != self._state.dispute_id:
            return  # addressed to another dispute: the starter never does this
        self._receive(event)

    @workflow.signal(name=ChargebackContract.SIGNAL_CCTV_CLIP_READY)
    def cctv_clip_ready(self, clip: CctvClipReady) -> None:
        if clip.event_id in self._case.seen_event_ids or clip.request_id != self._cctv_request_id:
            return
        self._case.seen_event_ids.add(clip.event_id)
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
        self._case.audit(
            "cctv_clip_received" if item.available else "cctv_clip_unavailable",
            reason=item.summary,
            after={"request_id": clip.request_id, "event_id": clip.event_id},
        )
        self._case.refresh()
        self._changed = True

    @workflow.update(name=ChargebackContract.UPDATE_RESPOND)
    async def respond(self, answer: RespondInput) -> ChargebackState:
        self._extra_evidence = list(answer.extra_evidence)
        # Answer once the main loop acted, so the caller sees submitted/accepted.
        await self._decision.hand_over(
            DisputeDecision(
                action=answer.action,
                note=answer.note,
                actor=answer.actor,
                role=answer.role,
                decided_at=workflow.now(),
                overridden_missing=missing_evidence(self._state.reason, self._with_extra())
                if answer.override_missing_evidence
                else [],
            )
        )
        return self._state

    @respond.validator
    def _validate_respond(self, answer: RespondInput) -> None:
        self._decision.validate(
            lambda: validate_response(self._state, answer, workflow.now()),
            rejected_type=RESPONSE_REJECTED,
        )

    # ---------------------------------------------------------- events

    def _receive(self, event: DisputeEvent) -> None:
        if not self._case.seen_event_ids:
            self._case.audit(
                "dispute_received",
                reason=f"{event.provider} {event.provider_event}",
                after={"event_id": event.event_id},
            )
        self._case.seen_event_ids.add(event.event_id)
        before = {"stage": self._state.stage, "status": self._state.status}
        effect = apply_event(self._state, event)
        if effect is EventEffect.NEW_ROUND:
            self._round += 1
        self._case.audit(
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
        # The event moved the status itself (apply_event): history, no transition.
        if effect is EventEffect.CLOSED:
            self._case.close_human_task(
                str(event.provider), f"provider outcome: {self._state.status}"
            )
            self._history(self._state.status, str(event.provider), f"{event.provider_event}")
        elif effect in (EventEffect.NEW_ROUND, EventEffect.APPLIED):
            self._history(self._state.status, str(event.provider), f"{event.provider_event}")
        if effect is EventEffect.DEADLINE_CHANGED and self._state.due_by:
            self._state.respond_by = respond_by(self._state.due_by, self._policy)
            self._deadline_moved = True
        self._case.refresh()
        self._changed = True

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
            hold = await call_outside(
                HOLD_ORDER_RELEASE,
                HoldReleaseInput(
                    workflow_id=workflow.info().workflow_id,
                    order_id=state.order_id,
                    reason=f"early fraud warning {state.dispute_id} ({state.provider_reason_code})",
                ),
                result_type=HoldReleaseResult,
                retry=OUTSIDE_RETRY,
                summary="hold order at the warehouse",
            )
            state.release_held = hold.held
            self._case.audit(
                "order_release_held",
                reason=f"early fraud warning on order {state.order_id}",
                after={"released_to_warehouse": hold.released_to_warehouse},
            )
        except ActivityError as failure:
            self._case.audit("order_hold_failed", reason=failure_reason(failure))
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
            self._case.close_human_task(STEWARD, "default: keep held")
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
        self._case.close_human_task(STEWARD, "replaced")
        state = self._state
        self._case.open_human_task(
            kind,
            f"{'Early fraud warning' if state.early_fraud_warning else 'Dispute'} "
            f"{state.provider} {state.dispute_id} · order {state.order_id or 'unknown'} · "
            f"{self._money()} · {state.reason} · {state.stage}",
            role,
            due,
            priority=min(state.amount_minor // 100, 1_000_000),
            # The case's due date is the provider's (due_by / respond_by), not the task's.
            sets_due=False,
        )

    def _set_status(
        self, status: DisputeStatus, actor: str, reason: str, *, role: Role = Role.SYSTEM
    ) -> None:
        # A dispute's audit rows say which stage the status belongs to.
        self._case.transition(
            status, actor, reason, role=role, after={"status": status, "stage": self._state.stage}
        )

    def _history(self, status: DisputeStatus, actor: str, reason: str) -> None:
        self._state.history.append(
            DisputeStatusChange(
                at=workflow.now(),
                stage=self._state.stage,
                status=status,
                actor=actor,
                reason=reason,
            )
        )

    def _case_id(self) -> str:
        return f"{self._state.provider}:{self._state.dispute_id}"

    def _money(self) -> str:
        return format_amount(self._state.amount_minor, self._state.currency)

    def _facts(self) -> CaseFacts:
        state = self._state
        # The dispute register row follows the same changes as the case row:
        # every refresh marks it for the next _flush.
        self._dispute_dirty = True
        due = state.respond_by or state.due_by
        return CaseFacts(
            status=state.status,
            details=_details(state, self._money()),
            amount_minor=state.amount_minor,
            currency=state.currency,
            awaited_role=state.awaited_role,
            due_at=due if not state.status_closed() else None,
        )

    async def _flush(self) -> None:
        await self._case.flush()
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
