"""Operations request: `ops-request:{request_id}`.

open -> assigned [-> escalated -> assigned] [-> awaiting_finance] -> resolved.

A ticket of the logistics desk (domain/ops_request.py). Its SLA counts in
business hours of the calendar in its input (a snapshot, so the timers
replay whatever the holidays library says later); the work queue orders by
priority, then that due time. Some types act at once when they open:
an order status question is answered from the order status view and
resolved; a CCTV retrieval asks the warehouse to preserve the footage before
its retention deadline; an inventory discrepancy puts an `inventory` hold on
the affected orders and opens a recount task; a carrier claim starts (or
links) the carrier-claim process. The others wait for a coordinator, whose
resolution runs the fulfilment action (address change, special delivery,
outbound QC) and records what was done and which case it touched.

Decisions are updates (claim, assign, reprioritise, escalate, answer the
escalation, recount, resolve, approve a write-off): a validator refuses a
wrong role or state with the field and the reason; the handler answers once
the main loop has applied the decision, fulfilment's answer included. Every
change is on the audit trail; the requester's description and a new address
never are (personal data), nor are they posted to the chat. Opened through
the edge (clients/ops_request.py), the input holds neither: the description,
a QC check's reason and the new address are personal-data subjects and the
workflow passes their ids (the address change hands fulfilment's action the
address subject id); runs opened before carry the values (issue 21).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (see workflows/order_review.py)

    from domain.business_hours import SITES, add_business_time, business_time_between
    from domain.claims import CarrierClaimContract, CarrierClaimInput, claim_policy_for
    from domain.common import Role
    from domain.deliveries import ShipmentRecord
    from domain.evidence import (
        REQUEST_CCTV_CLIP,
        CctvClipReady,
        CctvClipRequest,
        CctvClipRequestResult,
        cctv_request_id,
    )
    from domain.ids import carrier_claim_id
    from domain.ops_request import (
        ANSWER_ORDER_STATUS,
        CCTV_RETENTION_REMINDER,
        CLOSED_OPS_STATUSES,
        ESCALATION_SLA,
        FINANCE_SLA,
        FIND_SHIPMENT,
        FULFILMENT_ACTION,
        FULFILMENT_REFUSED,
        OPS_REQUEST,
        POST_CHAT_MESSAGE,
        RECORD_OPS_REQUEST,
        RECOUNT_SLA,
        SLA_REMINDER_BEFORE,
        WRITE_OFF_APPROVAL_MINOR,
        AddressChangeDetails,
        AssignInput,
        CarrierClaimDetails,
        CctvRetrievalDetails,
        ClaimInput,
        EscalateInput,
        Escalation,
        EscalationAnswerInput,
        FinanceApprovalInput,
        FindShipmentInput,
        FulfilmentActionInput,
        FulfilmentActionKind,
        FulfilmentActionResult,
        InventoryDiscrepancyDetails,
        InventoryResolution,
        OpsAction,
        OpsRequestContract,
        OpsRequestInput,
        OpsRequestResult,
        OpsRequestState,
        OpsRequestStatus,
        OpsRequestType,
        OrderStatusAnswer,
        OrderStatusInput,
        OutcomeCode,
        PostChatInput,
        PostChatResult,
        QcCheckDetails,
        RecordOpsRequestInput,
        RecountInput,
        ReprioritiseInput,
        Resolution,
        ResolveInput,
        RootCause,
        SpecialDeliveryDetails,
        cctv_retention_deadline,
        check_assign,
        check_claim,
        check_escalate,
        check_escalation_answer,
        check_finance,
        check_recount,
        check_reprioritise,
        check_resolve,
        sla_for,
        write_off_minor,
        write_off_needs_approval,
    )
    from domain.tasks import CloseTaskInput, OpenTaskInput, UpdateTaskInput, task_id
    from workflows.case import CaseBook, CaseFacts, call_outside, outside_retry, start_or_link
    from workflows.steps import LOCAL_WRITE_TIMEOUT, STEWARD, failure_reason, failure_type

OUTSIDE_RETRY = outside_retry(
    FULFILMENT_REFUSED,
    "OrderUnknown",
    "ShipmentUnknown",
    "CctvFootageExpired",
    "CctvRequestRefused",
)
# A chat post never holds the ticket up: given up after this, and recorded.
CHAT_GIVE_UP = timedelta(minutes=10)
# Footage of an inventory location: the day before the count.
INVENTORY_FOOTAGE_BEFORE = timedelta(hours=24)
DECISION_REJECTED = "DecisionRejected"
# An escalation's next check time is a durable timer: still unanswered then,
# the senior QA coordinator and the owner are notified again (runs before it
# only showed the time).
PATCH_ESCALATION_NEXT_CHECK = "ops-escalation-next-check"
# A mis-pick resolution re-allocates every affected order through fulfilment
# before the desk's inventory holds are released (runs before it only
# released the holds).
PATCH_MIS_PICK_REALLOCATE = "ops-mis-pick-reallocate"
# Issue 15: a write-off needs finance's approval above its own currency's
# threshold (domain/money_thresholds.py), not above 100,000 minor units of any.
PATCH_WRITE_OFF_PER_CURRENCY = "ops-write-off-per-currency"
DECISION_BUSY = "DecisionInProgress"


@workflow.defn(name=OpsRequestContract.WORKFLOW_TYPE)
class OpsRequestWorkflow:
    @workflow.init
    def __init__(self, input: OpsRequestInput) -> None:
        self._input = input
        draft = input.draft
        details = draft.details
        sla = sla_for(draft.type, draft.priority)
        self._state = OpsRequestState(
            request_id=input.request_id,
            type=draft.type,
            priority=draft.priority,
            status=OpsRequestStatus.OPEN,
            requester=input.requester,
            channel=input.channel,
            market=input.market,
            site_id=details.site(),
            order_id=details.order(),
            opened_at=input.opened_at,
            sla=sla,
            due_at=add_business_time(input.calendar, input.opened_at, sla),
            chat_thread_ts=input.chat.thread_ts if input.chat else None,
        )
        self._case = CaseBook(
            OPS_REQUEST,
            lambda: self._state.request_id,
            state=self._state,
            facts=self._facts,
            closed=CLOSED_OPS_STATUSES,
            order_id=lambda: self._state.order_id,
        )
        # Decisions in arrival order; the handler answers once its own is applied.
        self._inbox: list[tuple[int, Any]] = []
        self._received = 0
        self._applied = 0
        self._clip: CctvClipReady | None = None
        self._clip_handled = False
        self._cctv_request: str | None = None
        self._chat_sequence = 0
        self._recorded: str | None = None
        self._ticket_task: str | None = None
        self._side_task: str | None = None  # the recount or finance task
        self._holds: dict[str, str] = {}  # order id -> hold id
        self._sla_reminded = False
        self._sla_breached = False
        self._cctv_reminded = False
        # Set when an escalation opens (PATCH_ESCALATION_NEXT_CHECK).
        self._next_check_timer = False

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, input: OpsRequestInput) -> OpsRequestResult:
        state = self._state
        self._case.audit(
            "ops_request_opened",
            actor=input.requester,
            reason=f"{state.type} via {input.channel}",
            after={
                "type": state.type,
                "priority": state.priority,
                "order_id": state.order_id,
                "site_id": state.site_id,
                "sla_business_hours": state.sla.total_seconds() / 3600,
                "due_at": state.due_at,
                "calendar": input.calendar.name,
            },
        )
        self._case.transition(OpsRequestStatus.OPEN, STEWARD, f"{state.type} opened")
        assert state.due_at is not None
        self._ticket_task = task_id(workflow.info().workflow_id, "ops_request", 1)
        self._case.open_human_task(
            "ops_request",
            f"{state.type.replace('_', ' ').capitalize()} {self._subject() or state.request_id}",
            Role.COORDINATOR,
            state.due_at,
            priority=state.priority.rank,
        )
        self._case.refresh()
        await self._flush()
        await self._chat(
            f"Request {state.request_id} opened: {self._label()}. "
            f"Due {self._local(state.due_at)} ({self._sla_text()})."
        )

        await self._act_on_open(input)
        while state.status not in CLOSED_OPS_STATUSES:
            await self._step()
        await self._flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OpsRequestResult(
            request_id=state.request_id,
            status=state.status,
            outcome=state.resolution.outcome if state.resolution else None,
            sla_met=state.sla_met,
        )

    # ------------------------------------------------------------- handlers

    @workflow.query(name=OpsRequestContract.QUERY_STATUS)
    def status(self) -> OpsRequestState:
        return self._state

    @workflow.signal(name=OpsRequestContract.SIGNAL_CCTV_CLIP_READY)
    def cctv_clip_ready(self, clip: CctvClipReady) -> None:
        if not self._case.first_time(clip.event_id) or clip.request_id != self._cctv_request:
            return
        if self._clip is None:
            self._clip = clip

    @workflow.update(name=OpsRequestContract.UPDATE_CLAIM)
    async def claim(self, decision: ClaimInput) -> OpsRequestState:
        return await self._submit(decision)

    @claim.validator
    def _validate_claim(self, decision: ClaimInput) -> None:
        self._validate(lambda: check_claim(self._state, decision))

    @workflow.update(name=OpsRequestContract.UPDATE_ASSIGN)
    async def assign(self, decision: AssignInput) -> OpsRequestState:
        return await self._submit(decision)

    @assign.validator
    def _validate_assign(self, decision: AssignInput) -> None:
        self._validate(lambda: check_assign(self._state, decision))

    @workflow.update(name=OpsRequestContract.UPDATE_REPRIORITISE)
    async def reprioritise(self, decision: ReprioritiseInput) -> OpsRequestState:
        return await self._submit(decision)

    @reprioritise.validator
    def _validate_reprioritise(self, decision: ReprioritiseInput) -> None:
        self._validate(lambda: check_reprioritise(self._state, decision))

    @workflow.update(name=OpsRequestContract.UPDATE_ESCALATE)
    async def escalate(self, decision: EscalateInput) -> OpsRequestState:
        return await self._submit(decision)

    @escalate.validator
    def _validate_escalate(self, decision: EscalateInput) -> None:
        self._validate(lambda: check_escalate(self._state, decision, workflow.now()))

    @workflow.update(name=OpsRequestContract.UPDATE_ANSWER_ESCALATION)
    async def answer_escalation(self, decision: EscalationAnswerInput) -> OpsRequestState:
        return await self._submit(decision)

    @answer_escalation.validator
    def _validate_answer(self, decision: EscalationAnswerInput) -> None:
        self._validate(lambda: check_escalation_answer(self._state, decision))

    @workflow.update(name=OpsRequestContract.UPDATE_RECOUNT)
    async def recount(self, decision: RecountInput) -> OpsRequestState:
        return await self._submit(decision)

    @recount.validator
    def _validate_recount(self, decision: RecountInput) -> None:
        self._validate(lambda: check_recount(self._state, decision))

    @workflow.update(name=OpsRequestContract.UPDATE_RESOLVE)
    async def resolve(self, decision: ResolveInput) -> OpsRequestState:
        return await self._submit(decision)

    @resolve.validator
    def _validate_resolve(self, decision: ResolveInput) -> None:
        self._validate(lambda: check_resolve(self._state, decision))

    @workflow.update(name=OpsRequestContract.UPDATE_FINANCE)
    async def approve_write_off(self, decision: FinanceApprovalInput) -> OpsRequestState:
        return await self._submit(decision)

    @approve_write_off.validator
    def _validate_finance(self, decision: FinanceApprovalInput) -> None:
        self._validate(lambda: check_finance(self._state, decision))

    def _validate(self, rule: Any) -> None:
        if self._inbox:
            # One decision at a time: the next is judged on the state this one leads to.
            raise ApplicationError(
                "decision: another decision on this request is being applied", type=DECISION_BUSY
            )
        try:
            rule()
        except ValueError as refused:
            raise ApplicationError(str(refused), type=DECISION_REJECTED) from None

    async def _submit(self, decision: Any) -> OpsRequestState:
        self._received += 1
        sequence = self._received
        self._inbox.append((sequence, decision))
        await workflow.wait_condition(lambda: self._applied >= sequence)
        return self._state

    # ---------------------------------------------------------------- loop

    async def _step(self) -> None:
        """Apply the next decision or clip, or act on the next deadline."""
        wake = self._next_wake()
        ready = await self._wait(wake)
        if self._inbox:
            sequence, decision = self._inbox[0]
            try:
                await self._apply(decision)
            finally:
                self._inbox.pop(0)
                self._applied = sequence
            await self._flush()
            return
        if self._clip is not None and not self._clip_handled:
            await self._attach_clip(self._clip)
            return
        if not ready:
            await self._on_deadline()

    async def _wait(self, until: datetime | None) -> bool:
        def condition() -> bool:
            return bool(self._inbox) or (self._clip is not None and not self._clip_handled)

        if until is None:
            await workflow.wait_condition(condition)
            return True
        remaining = until - workflow.now()
        if remaining <= timedelta(0):
            return condition()
        try:
            await workflow.wait_condition(condition, timeout=remaining, timeout_summary="ops-timer")
        except TimeoutError:
            return False
        return True

    def _next_wake(self) -> datetime | None:
        state = self._state
        moments: list[datetime] = []
        escalation = state.open_escalation
        if escalation is not None:
            if not escalation.reminded:
                moments.append(escalation.escalated_at + ESCALATION_SLA / 2)
            elif workflow.now() < escalation.due_at:
                moments.append(escalation.due_at)
            if self._next_check_timer and not escalation.checked:
                moments.append(escalation.next_check_at)
        elif state.due_at is not None and state.status is not OpsRequestStatus.AWAITING_FINANCE:
            if not self._sla_reminded:
                moments.append(state.due_at - SLA_REMINDER_BEFORE)
            elif not self._sla_breached:
                moments.append(state.due_at)
        if state.cctv_deadline is not None and self._clip is None and not self._cctv_reminded:
            moments.append(state.cctv_deadline - CCTV_RETENTION_REMINDER)
        return min(moments) if moments else None

    async def _on_deadline(self) -> None:
        state = self._state
        now = workflow.now()
        escalation = state.open_escalation
        if escalation is not None:
            if not escalation.reminded and now >= escalation.escalated_at + ESCALATION_SLA / 2:
                escalation.reminded = True
                self._case.audit(
                    "escalation_reminder", reason=f"due {escalation.due_at.isoformat()}"
                )
                await self._flush()
                await self._chat(
                    f"Reminder: escalation of {state.request_id} awaits an answer "
                    f"by {self._local(escalation.due_at)}.",
                    channel=self._input.escalation_channel,
                    thread=False,
                )
            elif now >= escalation.due_at:
                self._case.audit(
                    "escalation_overdue", reason=f"due {escalation.due_at.isoformat()}"
                )
                await self._flush()
                await self._chat(
                    f"Escalation of {state.request_id} is overdue (due "
                    f"{self._local(escalation.due_at)}).",
                    channel=self._input.escalation_channel,
                    thread=False,
                )
                # Nothing more to wake for until someone answers.
                escalation.due_at = escalation.due_at + timedelta(days=3650)
            if (
                self._next_check_timer
                and not escalation.checked
                and now >= escalation.next_check_at
            ):
                await self._next_check(escalation)
        if state.due_at is not None and escalation is None:
            if not self._sla_reminded and now >= state.due_at - SLA_REMINDER_BEFORE:
                self._sla_reminded = True
                self._case.remind("sla_reminder", reason=f"due {state.due_at.isoformat()}")
                await self._flush()
                await self._chat(
                    f"Reminder: {state.request_id} is due {self._local(state.due_at)}"
                    + (f" ({state.assignee})" if state.assignee else " (unassigned)")
                    + "."
                )
            elif self._sla_reminded and not self._sla_breached and now >= state.due_at:
                self._sla_breached = True
                self._case.audit("sla_breached", reason=f"due {state.due_at.isoformat()}")
                await self._flush()
        if (
            state.cctv_deadline is not None
            and self._clip is None
            and not self._cctv_reminded
            and now >= state.cctv_deadline - CCTV_RETENTION_REMINDER
        ):
            self._cctv_reminded = True
            self._case.audit(
                "cctv_retention_reminder",
                reason=f"no clip yet; the footage is deleted {state.cctv_deadline.isoformat()}",
            )
            await self._flush()
            await self._chat(
                f"Reminder: the warehouse has not delivered the footage for {state.request_id}; "
                f"it is deleted {self._local(state.cctv_deadline)}."
            )

    async def _next_check(self, escalation: Escalation) -> None:
        """The escalation's next check time has come and nobody answered:
        notify the senior QA coordinator again (a reminder on the task and the
        escalation channel) and tell the owner in the requester's thread."""
        state = self._state
        escalation.checked = True
        self._case.remind(
            "escalation_next_check",
            reason=f"unanswered at the next check {escalation.next_check_at.isoformat()}",
        )
        self._case.refresh()
        await self._flush()
        await self._chat(
            f"Next check of {state.request_id} ({self._label()}): still escalated, no answer.\n"
            f"• Blocker: {escalation.blocker}\n"
            f"• Needed from {escalation.needed_from}: {escalation.needed_what}\n"
            f"• Answer due: {self._local(escalation.due_at)}",
            channel=self._input.escalation_channel,
            thread=False,
        )
        await self._chat(
            f"{state.request_id}: next check reached; still waiting for the senior QA "
            f"coordinator ({escalation.needed_from})."
        )

    # ---------------------------------------------------------- decisions

    async def _apply(self, decision: Any) -> None:
        if isinstance(decision, ClaimInput):
            await self._assign_to(decision.actor, decision, "claimed", reason="claimed")
        elif isinstance(decision, AssignInput):
            # The typed reason is free text (an absence may be a health matter):
            # it stays in the workflow, never in an audit row.
            await self._assign_to(
                decision.to,
                decision,
                "reassigned",
                reason="absence cover" if decision.absence_cover else "reassigned",
            )
        elif isinstance(decision, ReprioritiseInput):
            await self._reprioritise(decision)
        elif isinstance(decision, EscalateInput):
            await self._escalate(decision)
        elif isinstance(decision, EscalationAnswerInput):
            await self._answer_escalation(decision)
        elif isinstance(decision, RecountInput):
            await self._recount(decision)
        elif isinstance(decision, ResolveInput):
            await self._resolve(decision)
        elif isinstance(decision, FinanceApprovalInput):
            await self._finance(decision)

    def _first_response(self) -> None:
        if self._state.first_response_at is None:
            self._state.first_response_at = workflow.now()

    async def _assign_to(self, to: str | None, by: Any, action: str, *, reason: str) -> None:
        state = self._state
        before = state.assignee
        state.assignee = to
        if to is not None:
            self._first_response()
        self._case.audit(
            action,
            actor=by.actor,
            role=by.role,
            reason=reason,
            before={"assignee": before},
            after={"assignee": to},
        )
        if state.open_escalation is None and state.status in (
            OpsRequestStatus.OPEN,
            OpsRequestStatus.ASSIGNED,
        ):
            status = OpsRequestStatus.ASSIGNED if to else OpsRequestStatus.OPEN
            self._case.transition(status, by.actor, reason, role=by.role)
        else:
            self._case.refresh()
        await self._flush()
        await self._chat(
            f"{state.request_id} is now with {to}."
            if to
            else f"{state.request_id} is back in the queue."
        )

    async def _reprioritise(self, change: ReprioritiseInput) -> None:
        state = self._state
        before = {"priority": state.priority, "due_at": state.due_at}
        state.priority = change.priority
        state.sla = sla_for(state.type, change.priority)
        state.due_at = add_business_time(self._input.calendar, state.opened_at, state.sla)
        self._sla_reminded = self._sla_breached = False
        if self._ticket_task and state.open_escalation is None:
            self._case.update_task(UpdateTaskInput(task_id=self._ticket_task, due_at=state.due_at))
        self._first_response()
        self._case.audit(
            "reprioritised",
            actor=change.actor,
            role=change.role,
            reason=f"now {change.priority}",
            before=before,
            after={"priority": state.priority, "due_at": state.due_at},
        )
        self._case.refresh()
        await self._flush()
        await self._chat(
            f"{state.request_id} is now {state.priority}: due {self._local(state.due_at)}."
        )

    async def _escalate(self, update: EscalateInput) -> None:
        state = self._state
        now = workflow.now()
        due = add_business_time(self._input.calendar, now, ESCALATION_SLA)
        escalation = Escalation(
            summary=update.summary,
            tried=update.tried,
            blocker=update.blocker,
            needed_from=update.needed_from,
            needed_what=update.needed_what,
            next_check_at=update.next_check_at,
            escalated_by=update.actor,
            escalated_at=now,
            due_at=due,
        )
        state.escalations.append(escalation)
        self._next_check_timer = workflow.patched(PATCH_ESCALATION_NEXT_CHECK)
        self._first_response()
        if state.assignee is None:
            state.assignee = update.actor
        # The escalation's structured fields stay in the workflow (they may
        # name people); the audit row says who escalated, to whom, by when.
        self._case.escalate(Role.MANAGER, reason="escalated to the senior QA coordinator", due=due)
        self._case.transition(
            OpsRequestStatus.ESCALATED, update.actor, "blocked: escalated", role=update.role
        )
        await self._flush()
        await self._chat(
            f"Escalation of {state.request_id} ({self._label()}) by {update.actor}\n"
            f"• Summary: {update.summary}\n• Tried: {update.tried}\n• Blocker: {update.blocker}\n"
            f"• Needed from {update.needed_from}: {update.needed_what}\n"
            f"• Next check: {self._local(update.next_check_at)}\n"
            f"• Answer due: {self._local(due)}",
            channel=self._input.escalation_channel,
            thread=False,
        )
        await self._chat(
            f"{state.request_id} is escalated to the senior QA coordinator; "
            f"waiting for {update.needed_from}."
        )

    async def _answer_escalation(self, answer: EscalationAnswerInput) -> None:
        state = self._state
        escalation = state.open_escalation
        assert escalation is not None
        escalation.answered_by = answer.actor
        escalation.answered_at = workflow.now()
        escalation.answer = answer.note
        state.escalated = False
        state.awaited_role = Role.COORDINATOR
        if self._ticket_task:
            self._case.update_task(
                UpdateTaskInput(
                    task_id=self._ticket_task,
                    awaited_role=Role.COORDINATOR,
                    due_at=state.due_at,
                    escalated=False,
                )
            )
        self._case.audit(
            "escalation_answered",
            actor=answer.actor,
            role=answer.role,
            reason=f"returned to {state.assignee or 'the queue'}",
        )
        status = OpsRequestStatus.ASSIGNED if state.assignee else OpsRequestStatus.OPEN
        self._case.transition(status, answer.actor, "escalation answered", role=answer.role)
        await self._flush()
        await self._chat(
            f"Escalation of {state.request_id} answered by {answer.actor}: back with "
            f"{state.assignee or 'the queue'}.",
            channel=self._input.escalation_channel,
            thread=False,
        )
        await self._chat(
            f"The senior QA coordinator answered: {state.request_id} is back with "
            f"{state.assignee or 'the queue'}."
        )

    async def _recount(self, recount: RecountInput) -> None:
        state = self._state
        details = self._input.draft.details
        assert isinstance(details, InventoryDiscrepancyDetails)
        state.recounted_quantity = recount.counted_quantity
        self._close_side_task(recount.actor, "recounted")
        self._case.audit(
            "recounted",
            actor=recount.actor,
            role=recount.role,
            reason=f"{details.sku} at {details.site_id}: {recount.counted_quantity}",
            after={
                "counted": recount.counted_quantity,
                "wms": details.wms_quantity,
                "erp": details.erp_quantity,
            },
        )
        await self._flush()

    async def _resolve(self, resolve: ResolveInput) -> None:
        state = self._state
        details = self._input.draft.details
        self._first_response()
        if resolve.outcome is OutcomeCode.DONE:
            done = await self._run_resolution_action(resolve)
            if not done:
                self._case.refresh()
                await self._flush()
                return
        resolution = Resolution(
            outcome=resolve.outcome,
            root_cause=resolve.root_cause,
            note=resolve.note,
            resolved_by=resolve.actor,
            resolved_at=workflow.now(),
            inventory=resolve.inventory,
        )
        if (
            isinstance(details, InventoryDiscrepancyDetails)
            and resolve.inventory is InventoryResolution.ADJUSTED
        ):
            amount = write_off_minor(details)
            state.write_off_minor = amount
            if (
                write_off_needs_approval(amount, details.currency)
                if workflow.patched(PATCH_WRITE_OFF_PER_CURRENCY)
                else amount > WRITE_OFF_APPROVAL_MINOR
            ):
                state.resolution = resolution
                self._open_side_task(
                    "write_off_approval",
                    f"Approve the write-off of {details.missing_units} x {details.sku}",
                    Role.FINANCE,
                    add_business_time(self._input.calendar, workflow.now(), FINANCE_SLA),
                )
                self._case.audit(
                    "write_off_proposed",
                    actor=resolve.actor,
                    role=resolve.role,
                    reason=f"{details.missing_units} x {details.sku} at {details.site_id}",
                    after={"write_off_minor": amount, "currency": details.currency},
                )
                self._case.transition(
                    OpsRequestStatus.AWAITING_FINANCE,
                    resolve.actor,
                    "write-off above the threshold",
                    role=resolve.role,
                )
                await self._flush()
                await self._chat(
                    f"{state.request_id}: write-off proposed; waiting for finance's approval."
                )
                return
        await self._close(resolution, resolve.role)

    async def _finance(self, approval: FinanceApprovalInput) -> None:
        state = self._state
        resolution = state.resolution
        assert resolution is not None
        self._close_side_task(approval.actor, "approved" if approval.approved else "rejected")
        self._case.audit(
            "write_off_approved" if approval.approved else "write_off_rejected",
            actor=approval.actor,
            role=approval.role,
            reason="approved" if approval.approved else "rejected",
            after={"write_off_minor": state.write_off_minor},
        )
        if approval.approved:
            state.finance_approved_by = approval.actor
            await self._close(resolution, Role.COORDINATOR)
            return
        state.resolution = None
        state.write_off_minor = None
        status = OpsRequestStatus.ASSIGNED if state.assignee else OpsRequestStatus.OPEN
        self._case.transition(status, approval.actor, "write-off rejected", role=approval.role)
        await self._flush()
        await self._chat(f"{state.request_id}: finance rejected the write-off.")

    async def _close(self, resolution: Resolution, role: Role) -> None:
        state = self._state
        details = self._input.draft.details
        if isinstance(details, InventoryDiscrepancyDetails):
            if resolution.inventory is InventoryResolution.MIS_PICK and workflow.patched(
                PATCH_MIS_PICK_REALLOCATE
            ):
                await self._reallocate(details, resolution.resolved_by, role)
            await self._release_holds(resolution.resolved_by, role)
        now = workflow.now()
        state.resolution = resolution
        state.resolved_at = now
        state.business_seconds_to_resolve = int(
            business_time_between(self._input.calendar, state.opened_at, now).total_seconds()
        )
        state.sla_met = state.due_at is not None and now <= state.due_at
        self._close_side_task(resolution.resolved_by, "resolved")
        self._case.close_human_task(resolution.resolved_by, resolution.outcome)
        self._case.audit(
            "resolved",
            actor=resolution.resolved_by,
            role=role,
            reason=f"{resolution.outcome} / {resolution.root_cause}",
            after={
                "outcome": resolution.outcome,
                "root_cause": resolution.root_cause,
                "inventory": resolution.inventory,
                "sla_met": state.sla_met,
                "business_seconds_to_resolve": state.business_seconds_to_resolve,
                "linked_cases": state.linked_cases,
            },
        )
        state.escalated = False
        self._case.transition(
            OpsRequestStatus.RESOLVED, resolution.resolved_by, str(resolution.outcome), role=role
        )
        await self._flush()
        await self._chat(
            f"{state.request_id} resolved: {resolution.outcome.replace('_', ' ')}"
            + (f" ({state.answer})" if state.answer else "")
            + "."
        )

    # ------------------------------------------------------------- actions

    async def _act_on_open(self, input: OpsRequestInput) -> None:
        details = input.draft.details
        if details.type == OpsRequestType.ORDER_STATUS:
            await self._answer_status()
        elif isinstance(details, CctvRetrievalDetails):
            await self._preserve_footage(details)
        elif isinstance(details, InventoryDiscrepancyDetails):
            await self._open_discrepancy(details)
        elif isinstance(details, CarrierClaimDetails):
            await self._start_claim(details)

    async def _answer_status(self) -> None:
        state = self._state
        assert state.order_id is not None
        answer = await call_outside(
            ANSWER_ORDER_STATUS,
            OrderStatusInput(order_id=state.order_id),
            OrderStatusAnswer,
            retry=OUTSIDE_RETRY,
            summary="read the order status view",
        )
        state.answer = answer.summary
        self._first_response()
        self._record_action(
            "status_answered", reference=state.order_id, linked=f"fulfilment:{state.order_id}"
        )
        await self._close(
            Resolution(
                outcome=OutcomeCode.ANSWERED if answer.found else OutcomeCode.NOT_POSSIBLE,
                root_cause=RootCause.CUSTOMER_REQUEST,
                note="answered from the order status view",
                resolved_by=STEWARD,
                resolved_at=workflow.now(),
            ),
            Role.SYSTEM,
        )

    async def _preserve_footage(self, details: CctvRetrievalDetails) -> None:
        state = self._state
        state.cctv_deadline = cctv_retention_deadline(details)
        for linked in details.linked_workflow_ids:
            if linked not in state.linked_cases:
                state.linked_cases.append(linked)
        await self._request_footage(
            details.site_id, details.camera_zone, details.window_start, details.order_id
        )

    async def _request_footage(
        self, site: str, zone: str, footage_at: datetime, order_id: str | None
    ) -> None:
        state = self._state
        workflow_id = workflow.info().workflow_id
        self._cctv_request = cctv_request_id(workflow_id)
        try:
            result = await call_outside(
                REQUEST_CCTV_CLIP,
                CctvClipRequest(
                    request_id=self._cctv_request,
                    reply_to_workflow_id=workflow_id,
                    order_id=order_id or state.request_id,
                    footage_at=footage_at,
                    station=f"{site}/{zone}",
                    purpose=f"ops request {state.type}",
                ),
                CctvClipRequestResult,
                retry=OUTSIDE_RETRY,
                summary="ask the warehouse to preserve the footage",
            )
        except ActivityError as failure:
            self._record_action("cctv_refused", ok=False, note=failure_reason(failure))
            self._case.audit("cctv_refused", reason=failure_reason(failure))
            await self._flush()
            await self._chat(
                f"The warehouse refused the footage request: {failure_reason(failure)}."
            )
            return
        self._record_action("cctv_requested", reference=result.request_id, note=result.station)
        self._case.audit(
            "cctv_requested",
            reason=f"{result.station} at {result.footage_at.isoformat()}",
            after={"retained_until": result.retained_until, "request_id": result.request_id},
        )
        await self._flush()
        await self._chat(
            f"Footage preservation requested from the warehouse ({result.station}); "
            "waiting for the clip."
        )

    async def _attach_clip(self, clip: CctvClipReady) -> None:
        state = self._state
        self._clip_handled = True
        if not (clip.available and clip.clip_ref):
            self._record_action("cctv_unavailable", ok=False, note=clip.reason)
            self._case.audit("cctv_unavailable", actor="warehouse", reason=clip.reason)
            await self._flush()
            await self._chat(f"The warehouse has no usable footage: {clip.reason or 'no reason'}.")
            return
        state.cctv_clip_ref = clip.clip_ref
        self._record_action("cctv_clip_ready", reference=clip.clip_ref)
        self._case.audit("cctv_clip_ready", actor="warehouse", reason=clip.clip_ref)
        for linked in state.linked_cases:
            # The linked case takes the clip as the answer to its own request.
            forwarded = CctvClipReady(
                event_id=f"{clip.event_id}/{linked}",
                request_id=cctv_request_id(linked),
                order_id=clip.order_id,
                available=True,
                clip_ref=clip.clip_ref,
                station=clip.station,
            )
            try:
                await workflow.get_external_workflow_handle(linked).signal(
                    OpsRequestContract.SIGNAL_CCTV_CLIP_READY, forwarded
                )
                self._record_action("cctv_clip_attached", reference=clip.clip_ref, linked=linked)
                self._case.audit("cctv_clip_attached", reason=linked)
            except Exception as failure:  # the linked case has closed
                self._record_action(
                    "cctv_clip_not_attached", linked=linked, ok=False, note=str(failure)
                )
                self._case.audit("cctv_clip_not_attached", reason=f"{linked}: closed or unknown")
        self._case.refresh()
        await self._flush()
        await self._chat(f"The clip is ready: {clip.clip_ref}.")

    async def _open_discrepancy(self, details: InventoryDiscrepancyDetails) -> None:
        state = self._state
        for order_id in details.affected_order_ids:
            result = await self._fulfilment(
                FulfilmentActionKind.PLACE_HOLD,
                order_id,
                STEWARD,
                Role.SYSTEM,
                hold_reason="inventory",
                hold_id=self._hold_handle("inventory", order_id),
                note=f"inventory discrepancy {details.sku} at {details.site_id}",
            )
            if result is not None and result.done:
                self._holds[order_id] = result.reference
        self._open_side_task(
            "inventory_recount",
            f"Recount {details.sku} at {details.site_id}",
            Role.OPS,
            add_business_time(self._input.calendar, workflow.now(), RECOUNT_SLA),
        )
        self._case.audit(
            "recount_requested",
            reason=f"{details.sku} at {details.site_id}: WMS {details.wms_quantity}, "
            f"ERP {details.erp_quantity}",
        )
        await self._flush()
        if details.cctv_zone is not None:
            window = state.opened_at - INVENTORY_FOOTAGE_BEFORE
            state.cctv_deadline = window + SITES[details.site_id].cctv_retention
            await self._request_footage(details.site_id, details.cctv_zone, window, None)

    async def _reallocate(
        self, details: InventoryDiscrepancyDetails, actor: str, role: Role
    ) -> None:
        """A mis-pick: fulfilment allocates another unit to every affected
        order (none in stock: fulfilment keeps the order on its own inventory
        hold), then the desk's holds are released and the orders picked again."""
        state = self._state
        allocated: list[str] = []
        for order_id in details.affected_order_ids:
            result = await self._fulfilment(
                FulfilmentActionKind.REALLOCATE,
                order_id,
                actor,
                role,
                hold_id=self._hold_handle("realloc", order_id),
                note=f"mis-pick of {details.sku} at {details.site_id} ({state.request_id})",
            )
            if result is None:
                continue
            if result.done:
                allocated.append(order_id)
            else:
                self._case.audit(
                    "reallocation_unavailable",
                    reason=f"{order_id}: {result.note or 'no unit'}; fulfilment holds it",
                )
                await self._flush()
        if details.affected_order_ids:
            waiting = [o for o in details.affected_order_ids if o not in allocated]
            await self._chat(
                f"{state.request_id}: re-allocated {', '.join(allocated) or 'no order'}"
                + (f"; still waiting for stock: {', '.join(waiting)}" if waiting else "")
                + "."
            )

    async def _release_holds(self, actor: str, role: Role) -> None:
        for order_id, hold_id in list(self._holds.items()):
            result = await self._fulfilment(
                FulfilmentActionKind.RELEASE_HOLD, order_id, actor, role, hold_id=hold_id
            )
            if result is not None and result.done:
                del self._holds[order_id]

    async def _start_claim(self, details: CarrierClaimDetails) -> None:
        state = self._state
        claim_id = carrier_claim_id(details.carrier, details.tracking_number)
        try:
            shipment = await call_outside(
                FIND_SHIPMENT,
                FindShipmentInput(carrier=details.carrier, tracking_number=details.tracking_number),
                ShipmentRecord,
                retry=OUTSIDE_RETRY,
                summary="find the shipment",
            )
        except ActivityError as failure:
            self._record_action("claim_not_started", ok=False, note=failure_reason(failure))
            self._case.audit("claim_not_started", reason=failure_reason(failure))
            await self._flush()
            return
        state.order_id = shipment.order.order_id
        started = await start_or_link(
            CarrierClaimContract.WORKFLOW_TYPE,
            CarrierClaimInput(
                carrier=details.carrier,
                tracking_number=details.tracking_number,
                claim_type=details.claim_type,
                reported_at=state.opened_at,
                reason=f"ops request {state.request_id}",
                shipment=shipment,
                policy=claim_policy_for(details.carrier, details.claim_type),
            ),
            id=claim_id,
            summary=f"Carrier claim {details.carrier} · {details.claim_type} (ops desk)",
        )
        self._record_action("claim_started" if started else "claim_linked", linked=claim_id)
        self._case.audit("claim_started" if started else "claim_linked", reason=claim_id)
        await self._flush()
        await self._chat(f"Carrier claim {'opened' if started else 'already open'}: {claim_id}.")

    async def _run_resolution_action(self, resolve: ResolveInput) -> bool:
        """The fulfilment call a resolution runs; False when fulfilment refused."""
        details = self._input.draft.details
        if isinstance(details, AddressChangeDetails):
            result = await self._fulfilment(
                FulfilmentActionKind.CHANGE_ADDRESS,
                details.order_id,
                resolve.actor,
                resolve.role,
                address=details.address,
                address_subject_id=details.address_subject_id,
            )
        elif isinstance(details, SpecialDeliveryDetails):
            result = await self._fulfilment(
                FulfilmentActionKind.SPECIAL_DELIVERY,
                details.order_id,
                resolve.actor,
                resolve.role,
                special=details.arrangement(),
            )
        elif isinstance(details, QcCheckDetails):
            result = await self._fulfilment(
                FulfilmentActionKind.QC_CHECK,
                details.order_id,
                resolve.actor,
                resolve.role,
                hold_reason="outbound_qc",
                hold_id=self._hold_handle("qc", details.order_id),
                note=f"QC requested by the ops desk ({self._state.request_id})",
            )
        else:
            return True
        return result is not None and result.done

    async def _fulfilment(
        self,
        kind: FulfilmentActionKind,
        order_id: str,
        actor: str,
        role: Role,
        **fields: Any,
    ) -> FulfilmentActionResult | None:
        """One fulfilment action; a refusal is recorded and answered, None."""
        linked = f"fulfilment:{order_id}"
        sequence = len(self._state.actions) + 1
        try:
            result = await call_outside(
                FULFILMENT_ACTION,
                FulfilmentActionInput(
                    action_id=f"{workflow.info().workflow_id}/{kind}/{sequence}",
                    kind=kind,
                    order_id=order_id,
                    actor=actor,
                    role=role,
                    **fields,
                ),
                FulfilmentActionResult,
                retry=OUTSIDE_RETRY,
                summary=f"fulfilment {kind}",
            )
        except ActivityError as failure:
            why = failure_reason(failure)
            refused = failure_type(failure) is not None
            self._record_action(str(kind), linked=linked, ok=False, note=why)
            self._case.audit(f"{kind}_refused" if refused else f"{kind}_failed", reason=why)
            await self._flush()
            await self._chat(f"{self._state.request_id}: {kind.replace('_', ' ')} refused: {why}.")
            return None
        self._record_action(str(kind), reference=result.reference, linked=linked, note=result.note)
        self._case.audit(str(kind), actor=actor, role=role, reason=result.reference or order_id)
        await self._flush()
        return result

    # ------------------------------------------------------------- helpers

    def _record_action(
        self,
        kind: str,
        *,
        reference: str = "",
        linked: str | None = None,
        ok: bool = True,
        note: str = "",
    ) -> None:
        self._state.actions.append(
            OpsAction(
                kind=kind,
                at=workflow.now(),
                reference=reference,
                linked_case=linked,
                ok=ok,
                note=note[:500],
            )
        )
        if linked is not None and ok and linked not in self._state.linked_cases:
            self._state.linked_cases.append(linked)

    def _hold_handle(self, reason: str, order_id: str) -> str:
        """The hold's handle: the same on a retry, one per request and order."""
        key = f"{self._state.request_id}-{order_id}".lower()
        return (
            f"ops-{reason}-"
            + "".join(c if c.isalnum() or c in "-_" else "-" for c in key)[
                : 63 - len(f"ops-{reason}-")
            ]
        )

    def _open_side_task(self, kind: str, title: str, role: Role, due: datetime) -> None:
        """A second task beside the ticket's own (a recount, a finance approval)."""
        workflow_id = workflow.info().workflow_id
        self._side_task = task_id(workflow_id, kind, 1)
        self._case.pending.open_tasks.append(
            OpenTaskInput(
                task_id=self._side_task,
                process=OPS_REQUEST,
                case_id=self._state.request_id,
                workflow_id=workflow_id,
                kind=kind,
                title=title,
                awaited_role=role,
                due_at=due,
                priority=self._state.priority.rank,
                opened_at=workflow.now(),
            )
        )

    def _close_side_task(self, actor: str, outcome: str) -> None:
        if self._side_task is None:
            return
        self._case.pending.close_tasks.append(
            CloseTaskInput(
                task_id=self._side_task, closed_by=actor, outcome=outcome, closed_at=workflow.now()
            )
        )
        self._side_task = None

    async def _flush(self) -> None:
        await self._case.flush()
        snapshot = self._state.model_dump_json()
        if snapshot == self._recorded:
            return
        self._recorded = snapshot
        await workflow.execute_local_activity(
            RECORD_OPS_REQUEST,
            RecordOpsRequestInput(
                state=self._state, task_id=self._ticket_task, updated_at=workflow.now()
            ),
            start_to_close_timeout=LOCAL_WRITE_TIMEOUT,
        )

    async def _chat(self, text: str, *, channel: str | None = None, thread: bool = True) -> None:
        """Answer in the requester's thread (or post to `channel`); never fails the ticket."""
        chat = self._input.chat
        if channel is None:
            if chat is None:
                return
            channel = chat.channel
        self._chat_sequence += 1
        try:
            posted = await workflow.execute_activity(
                POST_CHAT_MESSAGE,
                PostChatInput(
                    message_id=f"{workflow.info().workflow_id}/chat/{self._chat_sequence}",
                    channel=channel,
                    thread_ts=self._state.chat_thread_ts if thread else None,
                    text=text[:4000],
                ),
                result_type=PostChatResult,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=CHAT_GIVE_UP,
                retry_policy=outside_retry(),
                summary="chat update",
            )
        except ActivityError as failure:
            self._case.audit("chat_post_failed", reason=failure_reason(failure))
            await self._flush()
            return
        if thread and self._state.chat_thread_ts is None and chat is not None:
            self._state.chat_thread_ts = posted.ts

    def _facts(self) -> CaseFacts:
        state = self._state
        details = self._input.draft.details
        currency = details.currency if isinstance(details, InventoryDiscrepancyDetails) else "EUR"
        return CaseFacts(
            status=state.status,
            details=self._details(),
            amount_minor=state.write_off_minor or 0,
            currency=currency,
            market=state.market,
            awaited_role=state.awaited_role,
            due_at=state.due_at if state.status not in CLOSED_OPS_STATUSES else None,
        )

    def _details(self) -> str:
        state = self._state
        lines = [
            f"**{state.status.replace('_', ' ').capitalize()}** · {self._label()} · "
            f"{state.priority}",
            f"Requested by {state.requester} via {state.channel}; "
            f"{'with ' + state.assignee if state.assignee else 'unassigned'}",
        ]
        if state.due_at is not None and state.status not in CLOSED_OPS_STATUSES:
            lines.append(f"Due {state.due_at:%Y-%m-%d %H:%M} UTC ({self._sla_text()})")
        if state.linked_cases:
            lines.append("Linked: " + ", ".join(state.linked_cases))
        if state.resolution is not None and state.status in CLOSED_OPS_STATUSES:
            lines.append(f"Resolved {state.resolution.outcome} / {state.resolution.root_cause}")
        return "\n\n".join(lines)

    def _subject(self) -> str:
        details = self._input.draft.details
        if isinstance(details, CarrierClaimDetails):
            return f"{details.carrier} {details.tracking_number}"
        if isinstance(details, InventoryDiscrepancyDetails):
            return f"{details.sku} at {details.site_id}"
        if isinstance(details, CctvRetrievalDetails):
            return f"{details.site_id}/{details.camera_zone}"
        return f"order {self._state.order_id}" if self._state.order_id else ""

    def _label(self) -> str:
        subject = self._subject()
        kind = self._state.type.replace("_", " ")
        return f"{kind} for {subject}" if subject else f"{kind} request"

    def _sla_text(self) -> str:
        hours = self._state.sla.total_seconds() / 3600
        unit = "business hour" if hours == 1 else "business hours"
        return f"{hours:g} {unit}, {self._input.calendar.name}"

    def _local(self, at: datetime) -> str:
        zone = self._input.calendar.zone()
        return at.astimezone(zone).strftime("%a %d %b %H:%M %Z")
