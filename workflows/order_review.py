"""Order review, fraud and payment: `order-review:{order_id}`.

received -> scored -> (auto_accepted | auto_declined | awaiting_review
[-> awaiting_customer -> awaiting_review]) -> capturing -> released
                                          | cancelling -> cancelled.

The workflow decides *when*; activities decide *what the rules say* (scoring)
and do every side effect. Local writes of a step (audit rows, the case row,
task changes) go out together in one local activity, so the auto-accept path
stays short in history and every step is atomic in the store.

The auto-accept path runs for nearly every order, so it carries nothing the
UI does not need: its activities have no summary (their types, score_order,
capture_payment, release_order_to_warehouse, say it), and its local writes
are one local activity per step.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # pydantic validates EmailStr with email_validator, imported lazily; pass it
    # through up front so the sandbox does not re-import it per workflow run.
    import email_validator  # noqa: F401

    from domain.audit import CaseStatusInput
    from domain.common import Role, format_amount
    from domain.ids import ORDER_REVIEW
    from domain.notifications import (
        NOTIFY_CUSTOMER,
        CustomerTemplate,
        NotifyCustomerInput,
        NotifyCustomerResult,
    )
    from domain.orders import Order
    from domain.payments import (
        CAPTURE_PAYMENT,
        VOID_AUTHORISATION,
        PaymentOperationInput,
        PaymentOperationResult,
    )
    from domain.review import (
        CLOSED_STATUSES,
        CancelRequest,
        CustomerAnswer,
        DecideInput,
        DecisionReason,
        DecisionRecord,
        DefaultAction,
        OrderReviewInput,
        OrderReviewResult,
        OrderReviewState,
        ReviewDecision,
        ReviewPolicy,
        ReviewStatus,
        StatusChange,
        hard_deadline,
        validate_decision,
    )
    from domain.risk import SCORE_ORDER, RiskAssessment, Routing, ScoreOrderInput
    from domain.tasks import OpenTaskInput, UpdateTaskInput, task_id
    from domain.warehouse import RELEASE_ORDER, ReleaseItem, ReleaseOrderInput, ReleaseOrderResult
    from workflows import visibility
    from workflows.steps import STEWARD, StepRecorder, failure_reason, wait_until

# Outside systems: retry transient faults with backoff; business refusals are
# non-retryable ApplicationErrors raised by the activities.
BUSINESS_REFUSALS = ["PaymentRefused", "RefundExceedsCapture", "InvalidOrder"]
OUTSIDE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=BUSINESS_REFUSALS,
)
# One attempt, for a first try the workflow follows up itself (see _capture).
FIRST_TRY = RetryPolicy(maximum_attempts=1, non_retryable_error_types=BUSINESS_REFUSALS)
OUTSIDE_CALL_TIMEOUT = timedelta(seconds=30)
# A capture that still fails after this long is given up: the order is
# cancelled rather than left in limbo while its authorisation expires.
CAPTURE_GIVE_UP = timedelta(hours=2)


@workflow.defn
class OrderReviewWorkflow:
    @workflow.init
    def __init__(self, input: OrderReviewInput) -> None:
        self._order: Order = input.order
        self._policy: ReviewPolicy = input.policy
        self._revision = input.revision
        self._state = OrderReviewState(
            order_id=input.order.order_id,
            market=input.order.market,
            status=ReviewStatus.RECEIVED,
            amount_minor=input.order.payment.amount_minor,
            currency=input.order.currency,
            hard_deadline=hard_deadline(input.order, input.policy),
        )
        self._steps = StepRecorder(ORDER_REVIEW, lambda: self._order.order_id)
        self._review_round = 0
        # A decision accepted by the `decide` update, waiting for the main loop.
        self._decision: DecisionRecord | None = None
        self._customer_answered = False

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, input: OrderReviewInput) -> OrderReviewResult:
        self._steps.audit("review_started", reason=f"channel {self._order.channel}")
        self._transition(ReviewStatus.RECEIVED, STEWARD, "order received for review")
        if self._revision < 2:
            await self._steps.flush()
        # Revision 2: the starter listed the case as received; these rows go
        # out with the scoring step's, a few milliseconds later. Should the
        # worker die meanwhile, the replay writes them again, with the same
        # entry ids and times.

        risk = await workflow.execute_activity(
            SCORE_ORDER,
            ScoreOrderInput(order=self._order),
            result_type=RiskAssessment,
            start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
            retry_policy=OUTSIDE_RETRY,
        )
        self._state.risk = risk
        self._steps.audit(
            "scored",
            reason=", ".join(risk.reason_codes) or "no risk signal",
            after={
                "score": risk.score,
                "band": risk.band,
                "routing": risk.routing,
                "rule_set_version": risk.rule_set_version,
            },
        )
        self._transition(ReviewStatus.SCORED, STEWARD, f"score {risk.score} ({risk.band})")

        if self._cancel_pending():
            await self._cancel_order(self._cancel_reason(), actor=self._cancel_actor())
        elif risk.routing is Routing.AUTO_ACCEPT:
            self._transition(ReviewStatus.AUTO_ACCEPTED, STEWARD, "rule set accepted the order")
            await self._capture_and_release(STEWARD, Role.SYSTEM, DecisionReason.AUTOMATIC)
        elif risk.routing is Routing.AUTO_DECLINE:
            self._transition(ReviewStatus.AUTO_DECLINED, STEWARD, "rule set declined the order")
            await self._cancel_order("declined by the risk rules", actor=STEWARD)
        else:
            await self._manual_review()

        await self._steps.flush()
        # Let a decide update that raced the end finish and answer its caller.
        await workflow.wait_condition(workflow.all_handlers_finished)
        last = self._state.decisions[-1] if self._state.decisions else None
        return OrderReviewResult(
            order_id=self._order.order_id,
            status=self._state.status,
            risk=self._state.risk,
            decided_by=last.actor if last else STEWARD,
            reason_code=last.reason_code if last else DecisionReason.AUTOMATIC,
            captured_minor=self._order.payment.amount_minor if self._state.capture_reference else 0,
            currency=self._order.currency,
        )

    # ------------------------------------------------------------- handlers

    @workflow.query
    def status(self) -> OrderReviewState:
        return self._state

    @workflow.update
    async def decide(self, decision: DecideInput) -> OrderReviewState:
        self._decision = DecisionRecord(
            decision=decision.decision,
            reason_code=decision.reason_code,
            note=decision.note,
            actor=decision.actor,
            role=decision.role,
            decided_at=workflow.now(),
        )
        # Answer once the main loop has acted on it, so the caller sees the
        # state the decision led to (capturing, awaiting_customer, ...).
        await workflow.wait_condition(lambda: self._decision is None)
        return self._state

    @decide.validator
    def _validate_decide(self, decision: DecideInput) -> None:
        if self._decision is not None:
            raise ApplicationError("decision: another decision is being applied", type="Rejected")
        try:
            validate_decision(self._state, decision)
        except ValueError as refused:
            # ApplicationError carries the message to the caller unchanged.
            raise ApplicationError(str(refused), type="DecisionRejected") from None

    @workflow.signal(name="cancel")
    def cancel(self, request: CancelRequest) -> None:
        if not self._steps.first_time(request.event_id):
            return
        if self._state.cancel_request is None:
            self._state.cancel_request = request
        self._steps.audit(
            "cancel_requested",
            actor=request.requested_by,
            role=Role.SYSTEM,
            reason=request.reason,
            after={"event_id": request.event_id, "status_at_request": self._state.status},
        )

    @workflow.signal(name="customer_answered")
    def customer_answered(self, answer: CustomerAnswer) -> None:
        if not self._steps.first_time(answer.event_id):
            return
        self._state.customer_answers.append(answer)
        self._customer_answered = True
        self._steps.audit(
            "customer_answered",
            actor="customer",
            role=Role.SYSTEM,
            reason=f"{'confirmed' if answer.confirmed else 'did not confirm'} via {answer.channel}",
            after={"event_id": answer.event_id, "confirmed": answer.confirmed},
        )

    # --------------------------------------------------------- manual review

    async def _manual_review(self) -> None:
        deadline = self._state.hard_deadline
        assert deadline is not None
        while True:
            record: DecisionRecord | None
            if self._decision is not None:  # decided while the customer was being asked
                record = self._take_decision()
            elif self._cancel_pending():
                record = None
            elif workflow.now() >= deadline:  # arrived (or came back) too late to review
                record = self._apply_default()
            else:
                self._open_review_task()
                # The task must reach the work queue before anyone can act on it.
                await self._steps.flush()
                record = await self._await_decision_or_deadline(deadline)
            if record is None:  # cancelled upstream while waiting
                self._steps.close_task(self._cancel_actor(), "cancelled upstream")
                await self._cancel_order(self._cancel_reason(), actor=self._cancel_actor())
                return
            if record.decision is ReviewDecision.APPROVE:
                await self._capture_and_release(record.actor, record.role, record.reason_code)
                return
            if record.decision is ReviewDecision.DECLINE:
                await self._cancel_order(
                    record.note or record.reason_code, actor=record.actor, role=record.role
                )
                return
            # ask_customer: wait for the answer, then back to a coordinator.
            answered = await self._ask_customer(deadline)
            if answered is None:
                await self._cancel_order(self._cancel_reason(), actor=self._cancel_actor())
                return

    async def _await_decision_or_deadline(self, deadline: datetime) -> DecisionRecord | None:
        """Wait for a decision with the SLA ladder; at the hard deadline the
        configured default decides. None means an upstream cancel arrived."""
        opened_at = workflow.now()
        ladder: list[tuple[datetime, str]] = [
            (opened_at + self._policy.reminder_after, "reminder"),
            (opened_at + self._policy.review_sla, "escalation"),
        ]
        for at, step in ladder:
            if at >= deadline:
                break
            if await wait_until(self._decision_or_cancel, until=at, timer=f"review-{step}"):
                return self._take_decision()
            if step == "reminder":
                self._send_reminder()
            elif not self._state.escalated:
                self._escalate()
            await self._steps.flush()
        if await wait_until(self._decision_or_cancel, until=deadline, timer="auth-expiry-deadline"):
            return self._take_decision()
        return self._apply_default()

    async def _ask_customer(self, deadline: datetime) -> bool | None:
        """Ask the customer to confirm; True when answered, False on timeout,
        None on an upstream cancel. A coordinator may still decide meanwhile."""
        self._customer_answered = False
        due = min(workflow.now() + self._policy.customer_answer_timeout, deadline)
        self._state.awaited_role = None
        self._state.due_at = due
        self._transition(ReviewStatus.AWAITING_CUSTOMER, STEWARD, "verification requested")
        await self._steps.flush()
        await self._notify(CustomerTemplate.VERIFICATION_REQUEST)
        answered = await wait_until(
            lambda: self._customer_answered or self._decision is not None or self._cancel_pending(),
            until=due,
            timer="customer-answer-deadline",
        )
        if self._cancel_pending():
            return None
        if not answered:
            self._steps.audit("customer_answer_timeout", reason=f"no answer by {due.isoformat()}")
        return answered

    def _open_review_task(self) -> None:
        deadline = self._state.hard_deadline
        assert deadline is not None
        self._review_round += 1
        due = min(workflow.now() + self._policy.review_sla, deadline)
        role = Role.MANAGER if self._state.escalated else Role.COORDINATOR
        risk = self._state.risk
        self._steps.open_task(
            OpenTaskInput(
                task_id=task_id(workflow.info().workflow_id, "review", self._review_round),
                process=ORDER_REVIEW,
                case_id=self._order.order_id,
                workflow_id=workflow.info().workflow_id,
                kind="order_review",
                title=(
                    f"Review order {self._order.order_id} · {self._order.market} · "
                    f"{self._money()} · risk {risk.score if risk else '?'}"
                ),
                awaited_role=role,
                due_at=due,
                priority=risk.score if risk else 0,
            )
        )
        self._state.awaited_role = role
        self._state.due_at = due
        self._transition(ReviewStatus.AWAITING_REVIEW, STEWARD, f"review task for {role}")

    def _send_reminder(self) -> None:
        self._state.reminders_sent += 1
        if self._steps.open_task_id:
            self._steps.update_task(
                UpdateTaskInput(
                    task_id=self._steps.open_task_id, reminders_sent=self._state.reminders_sent
                )
            )
        self._steps.audit(
            "review_reminder",
            reason=f"no decision {self._policy.reminder_after} after the task opened",
            after={"reminders_sent": self._state.reminders_sent},
        )
        self._refresh_ui()

    def _escalate(self) -> None:
        deadline = self._state.hard_deadline
        assert deadline is not None
        before = {"awaited_role": self._state.awaited_role, "due_at": self._state.due_at}
        self._state.escalated = True
        self._state.awaited_role = Role.MANAGER
        self._state.due_at = deadline
        if self._steps.open_task_id:
            self._steps.update_task(
                UpdateTaskInput(
                    task_id=self._steps.open_task_id,
                    awaited_role=Role.MANAGER,
                    escalated=True,
                    due_at=deadline,
                )
            )
        self._steps.audit(
            "review_escalated",
            reason=f"review SLA of {self._policy.review_sla} missed",
            before=before,
            after={"awaited_role": Role.MANAGER, "due_at": deadline},
        )
        self._refresh_ui()

    def _apply_default(self) -> DecisionRecord:
        action = self._policy.default_action
        record = DecisionRecord(
            decision=ReviewDecision.APPROVE
            if action is DefaultAction.APPROVE
            else ReviewDecision.DECLINE,
            reason_code=DecisionReason.POLICY_DEFAULT,
            note=f"no decision before the authorisation deadline; default {action} applied",
            actor=STEWARD,
            role=Role.SYSTEM,
            decided_at=workflow.now(),
        )
        self._record_decision(record)
        return record

    def _take_decision(self) -> DecisionRecord | None:
        record = self._decision
        if record is None:
            return None  # woke for a cancel
        self._record_decision(record)
        self._decision = None
        return record

    def _record_decision(self, record: DecisionRecord) -> None:
        self._state.decisions.append(record)
        self._steps.audit(
            f"decision_{record.decision}",
            actor=record.actor,
            role=record.role,
            reason=f"{record.reason_code}: {record.note}" if record.note else record.reason_code,
            before={"status": self._state.status},
            after={"decision": record.decision, "reason_code": record.reason_code},
        )
        self._steps.close_task(record.actor, record.decision)

    # -------------------------------------------------------------- outcomes

    async def _capture_and_release(self, actor: str, role: Role, reason: DecisionReason) -> None:
        if self._cancel_pending():
            await self._cancel_order(self._cancel_reason(), actor=self._cancel_actor())
            return
        self._state.awaited_role = None
        self._state.due_at = None
        self._transition(ReviewStatus.CAPTURING, actor, f"approved ({reason})", role=role)
        # The audit rows and the case row are written before money moves. From
        # revision 2, the capturing status reaches the search attributes only
        # if the capture stalls: a capture that succeeds at once would show it
        # for milliseconds, at the price of an upsert (a history event and a
        # visibility write) on every order.
        first_try = self._revision >= 2
        await self._steps.flush(publish_search_attributes=not first_try)
        try:
            capture = await self._capture(first_try)
        except ActivityError as failure:
            reason_text = failure_reason(failure)
            self._steps.audit("capture_failed", reason=reason_text)
            await self._cancel_order(f"capture failed: {reason_text}", actor=STEWARD)
            return
        self._state.capture_reference = capture.provider_reference
        self._steps.audit(
            "payment_captured",
            reason=capture.idempotency_key,
            after={
                "amount_minor": capture.amount_minor,
                "currency": capture.currency,
                "provider_reference": capture.provider_reference,
            },
        )
        release = await workflow.execute_activity(
            RELEASE_ORDER,
            ReleaseOrderInput(
                workflow_id=workflow.info().workflow_id,
                order_id=self._order.order_id,
                market=self._order.market,
                destination_country=self._order.shipping_address.country,
                items=[
                    ReleaseItem(sku=i.sku, quantity=i.quantity, serial_number=i.serial_number)
                    for i in self._order.items
                ],
            ),
            result_type=ReleaseOrderResult,
            start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
            retry_policy=OUTSIDE_RETRY,
        )
        self._state.warehouse_release_id = release.release_id
        self._transition(
            ReviewStatus.RELEASED,
            STEWARD,
            f"released to {release.warehouse} ({release.release_id})",
        )
        if self._cancel_pending():
            # The money moved before the cancel could act: say so, loudly.
            self._steps.audit(
                "cancel_not_applied",
                reason="payment already captured; the order needs a return or refund",
            )
        await self._steps.flush()

    async def _capture(self, first_try: bool) -> PaymentOperationResult:
        """Capture the payment; raises ActivityError once it has failed for good.

        With `first_try`, one attempt runs without server-side retries. If it
        fails for a reason worth retrying, the stall is put on record and on
        the search attributes (ops see the review as capturing), then the
        capture runs again with the usual retries. Same operation id, so the
        provider and the ledger still capture once.
        """
        operation = self._payment_operation("capture")
        if first_try:
            try:
                return await workflow.execute_activity(
                    CAPTURE_PAYMENT,
                    operation,
                    result_type=PaymentOperationResult,
                    start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
                    retry_policy=FIRST_TRY,
                )
            except ActivityError as failure:
                cause = failure.cause
                if isinstance(cause, ApplicationError) and (
                    cause.non_retryable or cause.type in BUSINESS_REFUSALS
                ):
                    raise
                self._steps.audit("capture_retrying", reason=failure_reason(failure))
                await self._steps.flush()
                if isinstance(cause, ApplicationError) and cause.next_retry_delay:
                    # The provider said when to come back (HTTP 429 Retry-After).
                    await workflow.sleep(cause.next_retry_delay, summary="provider asked to wait")
        return await workflow.execute_activity(
            CAPTURE_PAYMENT,
            operation,
            result_type=PaymentOperationResult,
            start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
            schedule_to_close_timeout=CAPTURE_GIVE_UP,
            retry_policy=OUTSIDE_RETRY,
        )

    async def _cancel_order(self, reason: str, *, actor: str, role: Role = Role.SYSTEM) -> None:
        """Void the authorisation, cancel, tell the customer. Nothing was captured."""
        self._state.awaited_role = None
        self._state.due_at = None
        if self._revision >= 3:
            # The decision is on record, its task closed and the case shown as
            # cancelling before money moves: the void may retry against a
            # provider outage for a long while, and meanwhile the work queue
            # must not offer a decided review to anyone.
            self._transition(ReviewStatus.CANCELLING, actor, reason, role=role)
            await self._steps.flush()
        try:
            void = await workflow.execute_activity(
                VOID_AUTHORISATION,
                self._payment_operation("void", reason=reason),
                result_type=PaymentOperationResult,
                start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
                schedule_to_close_timeout=CAPTURE_GIVE_UP,
                retry_policy=OUTSIDE_RETRY,
                summary="void authorisation",
            )
            self._state.void_reference = void.provider_reference
            self._steps.audit("authorisation_voided", reason=void.idempotency_key)
        except ActivityError as failure:
            # An authorisation that cannot be voided (already expired) lapses by
            # itself; the order is still cancelled and the failure is on record.
            self._steps.audit("void_failed", reason=failure_reason(failure))
        self._transition(ReviewStatus.CANCELLED, actor, reason, role=role)
        await self._steps.flush()
        await self._notify(CustomerTemplate.ORDER_CANCELLED)

    async def _notify(self, template: CustomerTemplate) -> None:
        result = await workflow.execute_activity(
            NOTIFY_CUSTOMER,
            NotifyCustomerInput(
                workflow_id=workflow.info().workflow_id,
                message_id=f"{workflow.info().workflow_id}/{template}/{self._review_round}",
                order_id=self._order.order_id,
                email=self._order.customer.email,
                template=template,
            ),
            result_type=NotifyCustomerResult,
            start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
            retry_policy=OUTSIDE_RETRY,
            summary=f"notify customer: {template}",
        )
        self._steps.audit(
            "customer_notified", reason=template, after={"message_id": result.message_id}
        )
        await self._steps.flush()

    # --------------------------------------------------------------- helpers

    def _payment_operation(self, operation_id: str, reason: str = "") -> PaymentOperationInput:
        payment = self._order.payment
        return PaymentOperationInput(
            workflow_id=workflow.info().workflow_id,
            operation_id=operation_id,
            order_id=self._order.order_id,
            provider=payment.provider,
            authorisation_ref=payment.authorisation_ref,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            reason=reason,
        )

    def _decision_or_cancel(self) -> bool:
        return self._decision is not None or self._cancel_pending()

    def _cancel_pending(self) -> bool:
        return self._state.cancel_request is not None

    def _cancel_reason(self) -> str:
        request = self._state.cancel_request
        return f"cancelled upstream: {request.reason}" if request else "cancelled upstream"

    def _cancel_actor(self) -> str:
        request = self._state.cancel_request
        return request.requested_by if request else STEWARD

    def _money(self) -> str:
        return format_amount(self._order.payment.amount_minor, self._order.currency)

    def _transition(
        self, status: ReviewStatus, actor: str, reason: str, *, role: Role = Role.SYSTEM
    ) -> None:
        previous = self._state.status
        self._state.status = status
        self._state.history.append(
            StatusChange(at=workflow.now(), status=status, actor=actor, reason=reason)
        )
        self._steps.status_changed(previous, status, actor=actor, role=role, reason=reason)
        self._refresh_ui()

    def _refresh_ui(self) -> None:
        """Case row, search attributes and current details follow the state."""
        state = self._state
        risk = state.risk
        case = CaseStatusInput(
            workflow_id=workflow.info().workflow_id,
            process=ORDER_REVIEW,
            case_id=state.order_id,
            status=state.status,
            market=state.market,
            risk_band=risk.band if risk else None,
            awaited_role=state.awaited_role,
            due_at=state.due_at,
            amount_minor=state.amount_minor,
            currency=state.currency,
            updated_at=workflow.now(),
        )
        updates = visibility.case_updates(
            ORDER_REVIEW,
            state.status,
            market=state.market,
            risk_band=risk.band if risk else None,
            awaited_role=state.awaited_role,
            due_at=state.due_at,
        )
        self._steps.set_case(case, updates)
        workflow.set_current_details(_details(state, self._money()))


def _details(state: OrderReviewState, money: str) -> str:
    lines = [f"**{state.status.replace('_', ' ').capitalize()}** · order {state.order_id}"]
    lines.append(f"{state.market} · {money}")
    if state.risk:
        reasons = ", ".join(state.risk.reason_codes) or "no risk signal"
        lines.append(f"Risk {state.risk.score} ({state.risk.band}): {reasons}")
    if state.awaited_role and state.due_at:
        lines.append(
            f"Waiting for **{state.awaited_role}** · due {state.due_at:%Y-%m-%d %H:%M} UTC"
        )
    if state.escalated:
        lines.append("Escalated to a manager")
    if state.hard_deadline and state.status not in CLOSED_STATUSES:
        lines.append(f"Authorisation deadline {state.hard_deadline:%Y-%m-%d %H:%M} UTC")
    return "\n\n".join(lines)
