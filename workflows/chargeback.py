"""Chargebacks and disputes: `chargeback:{provider}:{dispute_id}`.

One workflow per provider dispute (or early fraud warning), fed by the
provider's webhook events as `dispute_event` signals. The deadline engine
waits for a coordinator's `respond` update with reminders before the
provider's deadline, escalates to a manager at the last reminder, and at the
safety buffer lets the configured default act, so a deadline is never missed
silently. Outcome events close the case; Adyen's second chargeback reopens it
with a new deadline within the reopen window.

A dispute whose payment Steward could not resolve to an order (the intake,
clients/chargeback.py) first asks a coordinator to link it (`link_order`):
the round waits for the order until the default's time, so evidence is
gathered and the order's refunds are frozen (since the `chargeback-link-order`
patch; runs started before it went on without an order).

The main loop reads one value, the case's phase (domain.chargeback
.chargeback_phase), to pick its next stage; the response stages (evidence,
deadline ladder, submission) are in workflows/chargeback_response.py.

Every write of a step (audit rows, the case row, tasks) goes out in one
`record_transition` local activity plus the dispute-register row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.chargeback import (
        CLOSED_DISPUTE_STATUSES,
        HOLD_ORDER_RELEASE,
        LINK_REJECTED,
        RECORD_DISPUTE,
        RESPONSE_REJECTED,
        ChargebackContract,
        ChargebackInput,
        ChargebackPhase,
        ChargebackResult,
        ChargebackState,
        DisputeDecision,
        DisputeEvent,
        DisputeEventKind,
        DisputeRecordInput,
        DisputeStage,
        DisputeStatus,
        DisputeStatusChange,
        EventEffect,
        EvidenceItem,
        EvidenceKind,
        HoldReleaseInput,
        HoldReleaseResult,
        LinkOrderInput,
        LinkRejected,
        RespondInput,
        ResponseAction,
        apply_event,
        chargeback_phase,
        missing_evidence,
        respond_by,
        validate_link,
        validate_response,
    )
    from domain.common import Role, format_amount
    from domain.evidence import CctvClipReady
    from domain.fulfilment import (
        RELAY_FRAUD_WARNING,
        FraudWarning,
        FraudWarningAction,
        RelayFraudWarningInput,
        RelayFraudWarningResult,
    )
    from domain.ids import CHARGEBACK
    from domain.outcomes import OrderOutcome
    from workflows.case import CaseBook, CaseFacts, PendingDecision, call_outside
    from workflows.steps import LOCAL_WRITE_TIMEOUT, STEWARD, failure_reason, wait_until

from workflows.chargeback_response import OUTSIDE_RETRY, ChargebackResponse

# An early fraud warning is decided within a day: the goods are waiting.
EFW_DECISION_SLA = timedelta(hours=24)
# A dispute the intake could not resolve asks a coordinator for its order.
LINK_ORDER_PATCH = "chargeback-link-order"
# When the round takes no answer, the link task is still due within a day.
LINK_ORDER_SLA = timedelta(hours=24)
# The order's market (StewardMarket, the case row) and, for a warning that
# names no amount, the order's amount in the task and the details; runs
# started before it keep their upserts and titles.
ORDER_FACTS_PATCH = "chargeback-order-facts"
# An early fraud warning holds the order's fulfilment (issue 16): a
# high_risk_of_fraud hold at the warning, released on contest; accept (or the
# default) cancels the order there, refunds it once and tells the customer.
EFW_FULFILMENT_PATCH = "chargeback-efw-fulfilment"


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
        self._link_asked = 0  # the last round that asked for the order
        self._link_task_id: str | None = None

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
            phase = self._phase()
            if self._order_unknown(phase):
                await self._ask_for_order(phase)
                continue
            match phase:
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
        if self._link_task_open():
            self._case.close_human_task(STEWARD, "the case ended without an order")
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

    @workflow.update(name=ChargebackContract.UPDATE_LINK_ORDER)
    async def link_order(self, link: LinkOrderInput) -> ChargebackState:
        """A coordinator names the order; the round waiting for it goes on, and
        the dispute register carries the order (its refunds freeze) at once."""
        self._state.order_id = link.order_id
        if link.order_facts is not None:
            self._state.order_facts = link.order_facts
        self._case.audit(
            "order_linked",
            actor=link.actor,
            role=link.role,
            reason=link.note or f"linked to order {link.order_id}",
            after={"order_id": link.order_id, "payment_refs": list(self._state.payment_refs)},
        )
        if self._link_task_open():
            self._case.close_human_task(link.actor, f"linked to order {link.order_id}")
        self._case.refresh()
        self._changed = True
        await self._flush()
        return self._state

    @link_order.validator
    def _validate_link(self, link: LinkOrderInput) -> None:
        try:
            validate_link(self._state, link)
        except LinkRejected as refused:
            raise ApplicationError(str(refused), type=LINK_REJECTED) from None

    # ---------------------------------------------------------- events

    def _record_outcome(self) -> None:
        """A dispute's final word goes back to the order and the customer's
        history (an early fraud warning is no chargeback: it counts nothing)."""
        state = self._state
        if state.order_id is None or state.early_fraud_warning:
            return
        if state.status is DisputeStatus.WON:
            self._case.record_outcome(OrderOutcome.CHARGED_BACK_WON, state.order_id)
        elif state.status is DisputeStatus.LOST:
            self._case.record_outcome(OrderOutcome.CHARGED_BACK_LOST, state.order_id)

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
        if (
            event.order_facts is not None
            and self._state.order_facts is None
            and event.order_id == self._state.order_id
        ):
            self._state.order_facts = event.order_facts
        if (
            effect is EventEffect.INFORMATIONAL
            and event.kind is DisputeEventKind.EARLY_FRAUD_WARNING
            and self._links_orders()
        ):
            # A real warning carries no order (no metadata): it is a round all
            # the same, which starts by asking a coordinator for the order.
            effect = EventEffect.NEW_ROUND
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
            self._record_outcome()
        elif effect in (EventEffect.NEW_ROUND, EventEffect.APPLIED):
            self._history(self._state.status, str(event.provider), f"{event.provider_event}")
        if effect is EventEffect.DEADLINE_CHANGED and self._state.due_by:
            self._state.respond_by = respond_by(self._state.due_by, self._policy)
            self._deadline_moved = True
        if self._state.order_id is not None and self._link_task_open():
            self._case.close_human_task(
                str(event.provider), f"order {self._state.order_id} named by the provider"
            )
        self._case.refresh()
        self._changed = True

    # ------------------------------------------------- unresolved order

    def _links_orders(self) -> bool:
        return workflow.patched(LINK_ORDER_PATCH)

    def _link_task_open(self) -> bool:
        return self._link_task_id is not None and self._case.open_task_id == self._link_task_id

    def _order_unknown(self, phase: ChargebackPhase) -> bool:
        """A round is due and nobody asked for its order yet."""
        return (
            phase
            in (
                ChargebackPhase.RESPONSE_DUE,
                ChargebackPhase.EARLY_FRAUD_WARNING_DUE,
                ChargebackPhase.NO_RESPONSE_POSSIBLE,
            )
            and self._state.order_id is None
            and self._link_asked < self._round
            and self._links_orders()
        )

    async def _ask_for_order(self, phase: ChargebackPhase) -> None:
        """The provider named no payment Steward holds: a coordinator links the
        dispute to its order (`link_order`), so evidence can be gathered and the
        order's refunds freeze. A round that takes an answer waits for the link
        until the default's time (a warning: a day) and then goes on without an
        order, whose default closes the task. The update stays open while the
        case runs unlinked: a late link still puts the order on the dispute
        register (its freeze, and the losses a later refund is capped by)."""
        state = self._state
        round_no = self._round
        self._link_asked = round_no
        now = workflow.now()
        if phase is ChargebackPhase.RESPONSE_DUE:
            assert state.due_by is not None
            until = respond_by(state.due_by, self._policy)
        elif phase is ChargebackPhase.EARLY_FRAUD_WARNING_DUE:
            until = now + EFW_DECISION_SLA
        else:
            until = now + LINK_ORDER_SLA
        refs = ", ".join(state.payment_refs) or "none named"
        self._case.close_human_task(STEWARD, "replaced")
        self._case.open_human_task(
            "link_order",
            f"Link {'early fraud warning' if state.early_fraud_warning else 'dispute'} "
            f"{state.provider} {state.dispute_id} to its order · payment {refs} · "
            f"{self._money()} · {state.reason}",
            Role.COORDINATOR,
            until if until > now else now + LINK_ORDER_SLA,
            priority=min(state.amount_minor // 100, 1_000_000),
            sets_due=False,
        )
        self._link_task_id = self._case.open_task_id
        self._case.audit(
            "order_unresolved",
            reason=f"no order Steward holds matches payment {refs}: a coordinator links it",
            after={"payment_refs": list(state.payment_refs), "link_by": until},
        )
        self._case.refresh()
        await self._flush()
        if phase is ChargebackPhase.NO_RESPONSE_POSSIBLE:
            return  # nothing to answer: the link may come any time

        def settled() -> bool:
            return (
                state.order_id is not None
                or self._decision.pending
                or self._round != round_no
                or state.status_closed()
            )

        while True:
            self._changed = False
            if not await wait_until(
                lambda: settled() or self._changed, until=until, timer="link-order"
            ):
                break
            if settled():
                return  # linked, answered unlinked, superseded or closed
            await self._flush()  # an informational event or a clip: keep waiting
        self._case.audit(
            "order_not_linked",
            reason=f"nobody linked the dispute by {until.isoformat()}: it goes on without an order",
        )
        if phase is ChargebackPhase.EARLY_FRAUD_WARNING_DUE:
            # Nothing to hold: the warning ends as the unanswered one does.
            self._answered_round = round_no
            self._case.close_human_task(STEWARD, "not linked within a day")
            self._record_decision(
                DisputeDecision(
                    action=ResponseAction.ACCEPT,
                    note="no order linked within a day: nothing to hold",
                    actor=STEWARD,
                    role=Role.SYSTEM,
                    decided_at=workflow.now(),
                    by_default=True,
                )
            )
            self._set_status(DisputeStatus.ACCEPTED, STEWARD, "warning accepted: no order linked")
        await self._flush()

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
        tells_fulfilment = workflow.patched(EFW_FULFILMENT_PATCH)
        if tells_fulfilment:
            await self._tell_fulfilment(FraudWarningAction.HOLD, round_no, STEWARD)
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
        if tells_fulfilment:
            await self._tell_fulfilment(
                FraudWarningAction.CONTEST
                if decision.action is ResponseAction.CONTEST
                else FraudWarningAction.ACCEPT,
                round_no,
                decision.actor,
            )
        self._release_decision(decision)
        await self._flush()

    async def _tell_fulfilment(self, action: FraudWarningAction, round_no: int, actor: str) -> None:
        """The order's fulfilment holds, releases or cancels; not released yet
        (no fulfilment running): only recorded."""
        state = self._state
        if state.order_id is None:
            return
        workflow_id = workflow.info().workflow_id
        try:
            told = await call_outside(
                RELAY_FRAUD_WARNING,
                RelayFraudWarningInput(
                    order_id=state.order_id,
                    warning=FraudWarning(
                        event_id=f"{workflow_id}/efw-{round_no}-{action}",
                        action=action,
                        dispute_workflow_id=workflow_id,
                        actor=actor,
                        note=f"early fraud warning {state.dispute_id}: {action}",
                    ),
                ),
                result_type=RelayFraudWarningResult,
                retry=OUTSIDE_RETRY,
                summary=f"fulfilment: {action}",
            )
        except ActivityError as failure:
            self._case.audit("fulfilment_not_told", reason=failure_reason(failure))
            return
        self._case.audit(
            "fulfilment_told" if told.delivered else "fulfilment_not_running",
            reason=action,
            after={"order_id": state.order_id, "action": action},
        )

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

    def _shows_order_facts(self) -> bool:
        return workflow.patched(ORDER_FACTS_PATCH)

    def _market(self) -> str | None:
        facts = self._state.order_facts
        return facts.market if facts is not None and self._shows_order_facts() else None

    def _money(self) -> str:
        state = self._state
        # A Stripe early fraud warning names no amount (0 XXX): say the
        # order's, or that it is unknown, rather than "0.00 XXX".
        if state.amount_minor == 0 and state.currency == "XXX" and self._shows_order_facts():
            facts = state.order_facts
            if facts is None:
                return "amount unknown"
            return f"order {format_amount(facts.amount_minor, facts.currency)}"
        return format_amount(state.amount_minor, state.currency)

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
            market=self._market(),
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
