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

    from domain.business_hours import add_business_time
    from domain.common import Role, format_amount
    from domain.ids import ORDER_REVIEW
    from domain.notifications import NOTIFY_CUSTOMER, CustomerTemplate, NotifyCustomerInput
    from domain.orders import Order
    from domain.outcomes import OrderOutcome
    from domain.payments import (
        AWAIT_CAPTURE_OUTCOME,
        CAPTURE_PAYMENT,
        INVALID_ORDER,
        OUTCOME_NOT_RECEIVED,
        PAYMENT_REFUSED,
        REFUND_EXCEEDS_CAPTURE,
        REFUND_PAYMENT,
        VOID_AUTHORISATION,
        PaymentOperationInput,
        PaymentOperationResult,
        PaymentOperationStatus,
    )
    from domain.review import (
        CLOSED_STATUSES,
        CancelRequest,
        CustomerAnswer,
        DecideInput,
        DecisionReason,
        DecisionRecord,
        DefaultAction,
        EarlyFraudWarning,
        OrderReviewContract,
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
    from domain.warehouse import RELEASE_ORDER, ReleaseItem, ReleaseOrderInput, ReleaseOrderResult
    from workflows.case import CaseBook, CaseFacts, PendingDecision, call_outside, outside_retry
    from workflows.steps import STEWARD, failure_reason, wait_until

# Outside systems: retry transient faults with backoff; business refusals are
# non-retryable ApplicationErrors raised by the activities.
BUSINESS_REFUSALS = [PAYMENT_REFUSED, REFUND_EXCEEDS_CAPTURE, INVALID_ORDER]
OUTSIDE_RETRY = outside_retry(*BUSINESS_REFUSALS)
# One attempt, for a first try the workflow follows up itself (see _capture).
FIRST_TRY = RetryPolicy(maximum_attempts=1, non_retryable_error_types=BUSINESS_REFUSALS)
# A capture that still fails after this long is given up: the order is
# cancelled rather than left in limbo while its authorisation expires.
CAPTURE_GIVE_UP = timedelta(hours=2)
# A capture given up for want of an answer may still happen at the provider
# (Adyen confirms by notification): before the order is cancelled, its final
# outcome is awaited this long, and a capture that did happen is refunded
# (runs before this patch cancelled at once: a late capture left a cancelled
# order with captured money).
PATCH_LATE_CAPTURE = "capture-given-up-settled"
CAPTURE_OUTCOME_WAIT = timedelta(days=1)
LATE_CAPTURE_REFUND = "late-capture-refund"
LATE_CAPTURE_TASK_SLA = timedelta(days=2)
# Behaviour guarded by this patch (issue 15): an early fraud warning on the
# order sends a review still open to a person (see `early_fraud_warning`).
EARLY_FRAUD_WARNING_PATCH = "review-early-fraud-warning"


@workflow.defn(name=OrderReviewContract.WORKFLOW_TYPE)
class OrderReviewWorkflow:
    @workflow.init
    def __init__(self, input: OrderReviewInput) -> None:
        self._order: Order = input.order
        self._policy: ReviewPolicy = input.policy
        self._revision = input.revision
        # Issue 21: set, the order is pseudonymised and the activities that
        # need its personal values (scoring, the release, the customer
        # message) read them by this subject id. Same commands either way.
        self._subject_id = input.subject_id
        self._state = OrderReviewState(
            order_id=input.order.order_id,
            market=input.order.market,
            status=ReviewStatus.RECEIVED,
            amount_minor=input.order.payment.amount_minor,
            currency=input.order.currency,
            hard_deadline=hard_deadline(input.order, input.policy),
        )
        # Whoever was awaited is already cleared when the review closes (the
        # capture and the cancel clear it first), so closing clears nothing new.
        self._case = CaseBook(
            ORDER_REVIEW,
            lambda: self._order.order_id,
            state=self._state,
            facts=self._facts,
            history=self._history,
            closed=CLOSED_STATUSES,
        )
        self._review_round = 0
        # A decision accepted by the `decide` update, waiting for the main loop.
        self._decision: PendingDecision[DecisionRecord] = PendingDecision()
        self._customer_answered = False

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, input: OrderReviewInput) -> OrderReviewResult:
        self._case.audit("review_started", reason=f"channel {self._order.channel}")
        self._case.transition(ReviewStatus.RECEIVED, STEWARD, "order received for review")
        if self._revision < 2:
            await self._case.flush()
        # Revision 2: the starter listed the case as received; these rows go
        # out with the scoring step's, a few milliseconds later. Should the
        # worker die meanwhile, the replay writes them again, with the same
        # entry ids and times.

        risk = await call_outside(
            SCORE_ORDER,
            ScoreOrderInput(order=self._order, subject_id=self._subject_id),
            result_type=RiskAssessment,
            retry=OUTSIDE_RETRY,
        )
        self._state.risk = risk
        self._case.audit(
            "scored",
            reason=", ".join(risk.reason_codes) or "no risk signal",
            after={
                "score": risk.score,
                "band": risk.band,
                "routing": risk.routing,
                "rule_set_version": risk.rule_set_version,
            },
        )
        self._case.transition(ReviewStatus.SCORED, STEWARD, f"score {risk.score} ({risk.band})")

        if self._cancel_pending():
            await self._cancel_order(self._cancel_reason(), actor=self._cancel_actor())
        elif risk.routing is Routing.AUTO_ACCEPT and not self._state.early_fraud_warnings:
            self._case.transition(
                ReviewStatus.AUTO_ACCEPTED, STEWARD, "rule set accepted the order"
            )
            await self._capture_and_release(STEWARD, Role.SYSTEM, DecisionReason.AUTOMATIC)
        elif risk.routing is Routing.AUTO_DECLINE:
            self._case.transition(
                ReviewStatus.AUTO_DECLINED, STEWARD, "rule set declined the order"
            )
            await self._cancel_order("declined by the risk rules", actor=STEWARD, fraud=True)
        else:
            if risk.routing is Routing.AUTO_ACCEPT:
                warning = self._state.early_fraud_warnings[0]
                self._case.audit(
                    "routed_to_review",
                    reason=f"early fraud warning {warning.dispute_id} from {warning.provider}"
                    + (f" ({warning.reason_code})" if warning.reason_code else "")
                    + ": the rule set's auto-accept is overridden",
                )
            await self._manual_review()

        await self._case.flush()
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

    @workflow.query(name=OrderReviewContract.QUERY_STATUS)
    def status(self) -> OrderReviewState:
        return self._state

    @workflow.update(name=OrderReviewContract.UPDATE_DECIDE)
    async def decide(self, decision: DecideInput) -> OrderReviewState:
        # Answer once the main loop has acted on it, so the caller sees the
        # state the decision led to (capturing, awaiting_customer, ...).
        await self._decision.hand_over(
            DecisionRecord(
                decision=decision.decision,
                reason_code=decision.reason_code,
                note=decision.note,
                actor=decision.actor,
                role=decision.role,
                decided_at=workflow.now(),
            )
        )
        return self._state

    @decide.validator
    def _validate_decide(self, decision: DecideInput) -> None:
        self._decision.validate(lambda: validate_decision(self._state, decision))

    @workflow.signal(name=OrderReviewContract.SIGNAL_CANCEL)
    def cancel(self, request: CancelRequest) -> None:
        if not self._case.first_time(request.event_id):
            return
        if self._state.cancel_request is None:
            self._state.cancel_request = request
        self._case.audit(
            "cancel_requested",
            actor=request.requested_by,
            role=Role.SYSTEM,
            reason=request.reason,
            after={"event_id": request.event_id, "status_at_request": self._state.status},
        )

    @workflow.signal(name=OrderReviewContract.SIGNAL_EARLY_FRAUD_WARNING)
    def early_fraud_warning(self, warning: EarlyFraudWarning) -> None:
        """A review still open (scoring, or waiting for a person) goes to a
        person with the warning on record; after the money decision it is
        only recorded (holding the parcel is fulfilment's business). Runs
        started before this handler ignored the signal, and still do."""
        if not workflow.patched(EARLY_FRAUD_WARNING_PATCH):
            return
        if not self._case.first_time(warning.event_id):
            return
        self._state.early_fraud_warnings.append(warning)
        self._case.audit(
            "early_fraud_warning",
            actor=warning.provider,
            role=Role.SYSTEM,
            reason=f"{warning.provider} early fraud warning {warning.dispute_id}"
            + (f" ({warning.reason_code})" if warning.reason_code else ""),
            after={"event_id": warning.event_id, "status_at_warning": self._state.status},
        )

    @workflow.signal(name=OrderReviewContract.SIGNAL_CUSTOMER_ANSWERED)
    def customer_answered(self, answer: CustomerAnswer) -> None:
        if not self._case.first_time(answer.event_id):
            return
        self._state.customer_answers.append(answer)
        self._customer_answered = True
        self._case.audit(
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
            if self._decision.pending:  # decided while the customer was being asked
                record = self._take_decision()
            elif self._cancel_pending():
                record = None
            elif workflow.now() >= deadline:  # arrived (or came back) too late to review
                record = self._apply_default()
            else:
                self._open_review_task()
                # The task must reach the work queue before anyone can act on it.
                await self._case.flush()
                record = await self._await_decision_or_deadline(deadline)
            if record is None:  # cancelled upstream while waiting
                self._case.close_human_task(
                    self._cancel_actor(), "cancelled upstream", clears_awaited=False
                )
                await self._cancel_order(self._cancel_reason(), actor=self._cancel_actor())
                return
            if record.decision is ReviewDecision.APPROVE:
                await self._capture_and_release(record.actor, record.role, record.reason_code)
                return
            if record.decision is ReviewDecision.DECLINE:
                await self._cancel_order(
                    record.note or record.reason_code,
                    actor=record.actor,
                    role=record.role,
                    # Nobody decided: the default decline says nothing of fraud.
                    fraud=record.reason_code is not DecisionReason.POLICY_DEFAULT,
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
            (self._sla_at(opened_at, self._policy.reminder_after), "reminder"),
            (self._sla_at(opened_at, self._policy.review_sla), "escalation"),
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
            await self._case.flush()
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
        self._case.transition(ReviewStatus.AWAITING_CUSTOMER, STEWARD, "verification requested")
        await self._case.flush()
        await self._notify(CustomerTemplate.VERIFICATION_REQUEST)
        answered = await wait_until(
            lambda: self._customer_answered or self._decision.pending or self._cancel_pending(),
            until=due,
            timer="customer-answer-deadline",
        )
        if self._cancel_pending():
            return None
        if not answered:
            self._case.audit("customer_answer_timeout", reason=f"no answer by {due.isoformat()}")
        return answered

    def _open_review_task(self) -> None:
        deadline = self._state.hard_deadline
        assert deadline is not None
        self._review_round += 1
        due = min(self._sla_at(workflow.now(), self._policy.review_sla), deadline)
        role = Role.MANAGER if self._state.escalated else Role.COORDINATOR
        risk = self._state.risk
        # The task id says "review" and its round; the store stamps its open time.
        self._case.open_human_task(
            "order_review",
            f"Review order {self._order.order_id} · {self._order.market} · "
            f"{self._money()} · risk {risk.score if risk else '?'}",
            role,
            due,
            task_key="review",
            sequence=self._review_round,
            priority=risk.score if risk else 0,
            stamps_open_time=False,
        )
        self._case.transition(ReviewStatus.AWAITING_REVIEW, STEWARD, f"review task for {role}")

    def _sla_at(self, start: datetime, duration: timedelta) -> datetime:
        """When `duration` of SLA time after `start` has passed: business time
        of the policy's calendar from revision 4, wall-clock before."""
        calendar = self._policy.calendar
        if self._revision < 4 or calendar is None:
            return start + duration
        return add_business_time(calendar, start, duration)

    def _send_reminder(self) -> None:
        self._case.remind(
            "review_reminder",
            reason=f"no decision {self._policy.reminder_after} after the task opened",
        )
        self._case.refresh()

    def _escalate(self) -> None:
        deadline = self._state.hard_deadline
        assert deadline is not None
        self._case.escalate(
            Role.MANAGER,
            due=deadline,
            reason=f"review SLA of {self._policy.review_sla} missed",
            action="review_escalated",
        )

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
        record = self._decision.take()
        if record is None:
            return None  # woke for a cancel
        self._record_decision(record)
        return record

    def _record_decision(self, record: DecisionRecord) -> None:
        self._state.decisions.append(record)
        self._case.audit(
            f"decision_{record.decision}",
            actor=record.actor,
            role=record.role,
            reason=f"{record.reason_code}: {record.note}" if record.note else record.reason_code,
            before={"status": self._state.status},
            after={"decision": record.decision, "reason_code": record.reason_code},
        )
        # Who is awaited next is set by the step the decision leads to (the
        # capture, the cancel or the question to the customer), not here.
        self._case.close_human_task(record.actor, record.decision, clears_awaited=False)

    # -------------------------------------------------------------- outcomes

    async def _capture_and_release(self, actor: str, role: Role, reason: DecisionReason) -> None:
        if self._cancel_pending():
            await self._cancel_order(self._cancel_reason(), actor=self._cancel_actor())
            return
        self._state.awaited_role = None
        self._state.due_at = None
        self._case.transition(ReviewStatus.CAPTURING, actor, f"approved ({reason})", role=role)
        # The audit rows and the case row are written before money moves. From
        # revision 2, the capturing status reaches the search attributes only
        # if the capture stalls: a capture that succeeds at once would show it
        # for milliseconds, at the price of an upsert (a history event and a
        # visibility write) on every order.
        first_try = self._revision >= 2
        await self._case.flush(publish_search_attributes=not first_try)
        try:
            capture = await self._capture(first_try)
        except ActivityError as failure:
            reason_text = failure_reason(failure)
            self._case.audit("capture_failed", reason=reason_text)
            if _may_still_capture(failure) and workflow.patched(PATCH_LATE_CAPTURE):
                await self._settle_given_up_capture()
            await self._cancel_order(f"capture failed: {reason_text}", actor=STEWARD)
            return
        self._state.capture_reference = capture.provider_reference
        self._case.audit(
            "payment_captured",
            reason=capture.idempotency_key,
            after={
                "amount_minor": capture.amount_minor,
                "currency": capture.currency,
                "provider_reference": capture.provider_reference,
            },
        )
        release = await call_outside(
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
                # The release activity starts the order's fulfilment from it
                # (issue 16): same command, no event added to the review.
                order=self._order,
                subject_id=self._subject_id,
            ),
            result_type=ReleaseOrderResult,
            retry=OUTSIDE_RETRY,
        )
        self._state.warehouse_release_id = release.release_id
        self._case.transition(
            ReviewStatus.RELEASED,
            STEWARD,
            f"released to {release.warehouse} ({release.release_id})",
        )
        if self._cancel_pending():
            # The money moved before the cancel could act: say so, loudly.
            self._case.audit(
                "cancel_not_applied",
                reason="payment already captured; the order needs a return or refund",
            )
        await self._case.flush()

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
                return await call_outside(
                    CAPTURE_PAYMENT,
                    operation,
                    result_type=PaymentOperationResult,
                    retry=FIRST_TRY,
                )
            except ActivityError as failure:
                cause = failure.cause
                if isinstance(cause, ApplicationError) and (
                    cause.non_retryable or cause.type in BUSINESS_REFUSALS
                ):
                    raise
                self._case.audit("capture_retrying", reason=failure_reason(failure))
                await self._case.flush()
                if isinstance(cause, ApplicationError) and cause.next_retry_delay:
                    # The provider said when to come back (HTTP 429 Retry-After).
                    await workflow.sleep(cause.next_retry_delay, summary="provider asked to wait")
        return await call_outside(
            CAPTURE_PAYMENT,
            operation,
            result_type=PaymentOperationResult,
            schedule_to_close=CAPTURE_GIVE_UP,
            retry=OUTSIDE_RETRY,
        )

    async def _settle_given_up_capture(self) -> None:
        """The capture was given up without a refusal: wait for what the
        provider finally did with it, and give back money it took after all
        (exactly once: the refund's operation id is fixed), with a finance
        task either way money moved or may have."""
        capture = self._payment_operation("capture")
        # On record before a wait that may last hours: the give-up is visible.
        await self._case.flush()
        try:
            final = await call_outside(
                AWAIT_CAPTURE_OUTCOME,
                capture,
                result_type=PaymentOperationResult,
                schedule_to_close=CAPTURE_OUTCOME_WAIT,
                retry=OUTSIDE_RETRY,
                summary="final capture outcome",
            )
        except ActivityError as failure:
            cause = failure.cause
            if isinstance(cause, ApplicationError) and cause.type == PAYMENT_REFUSED:
                # The provider's final word: refused, no money taken.
                self._case.audit("capture_not_taken", reason=failure_reason(failure))
                return
            self._case.audit("capture_outcome_unknown", reason=failure_reason(failure))
            self._late_capture_task(
                f"Capture {self._money()} of order {self._order.order_id} was given up and its "
                f"outcome never came: check the payment at {self._order.payment.provider} "
                "(the order is cancelled)"
            )
            return
        if final.status is not PaymentOperationStatus.SUCCEEDED:
            self._case.audit("capture_not_taken", reason="the provider took no money")
            return
        self._case.audit(
            "late_capture",
            reason=f"captured after the review gave up ({final.provider_reference})",
            after={"amount_minor": final.amount_minor, "currency": final.currency},
        )
        refund_operation = capture.model_copy(
            update={
                "operation_id": LATE_CAPTURE_REFUND,
                "amount_minor": final.amount_minor,
                "reason": "captured after the review gave up; the order is cancelled",
            }
        )
        try:
            refund = await call_outside(
                REFUND_PAYMENT,
                refund_operation,
                result_type=PaymentOperationResult,
                retry=OUTSIDE_RETRY,
                summary="refund late capture",
            )
        except ActivityError as failure:
            self._case.audit("late_capture_refund_failed", reason=failure_reason(failure))
            self._late_capture_task(
                f"Capture {self._money()} of order {self._order.order_id} was confirmed after "
                f"the review gave up and its refund failed ({failure_reason(failure)}): "
                "refund the customer by hand (the order is cancelled)"
            )
            return
        self._case.audit(
            "late_capture_refunded",
            reason=refund.idempotency_key,
            after={
                "amount_minor": refund.amount_minor,
                "currency": refund.currency,
                "provider_reference": refund.provider_reference,
            },
        )
        self._late_capture_task(
            f"Capture {self._money()} of order {self._order.order_id} was confirmed after the "
            f"review gave up: refunded automatically ({refund.provider_reference}); the order "
            "is cancelled, check the customer was told"
        )

    def _late_capture_task(self, title: str) -> None:
        self._case.open_human_task(
            "late_capture", title, Role.FINANCE, workflow.now() + LATE_CAPTURE_TASK_SLA
        )

    async def _cancel_order(
        self, reason: str, *, actor: str, role: Role = Role.SYSTEM, fraud: bool = False
    ) -> None:
        """Void the authorisation, cancel, tell the customer. Nothing was captured.
        `fraud`: declined (by a person, the rules or the default), which the
        customer's history counts."""
        self._state.awaited_role = None
        self._state.due_at = None
        if self._revision >= 3:
            # The decision is on record, its task closed and the case shown as
            # cancelling before money moves: the void may retry against a
            # provider outage for a long while, and meanwhile the work queue
            # must not offer a decided review to anyone.
            self._case.transition(ReviewStatus.CANCELLING, actor, reason, role=role)
            await self._case.flush()
        try:
            void = await call_outside(
                VOID_AUTHORISATION,
                self._payment_operation("void", reason=reason),
                result_type=PaymentOperationResult,
                schedule_to_close=CAPTURE_GIVE_UP,
                retry=OUTSIDE_RETRY,
                summary="void authorisation",
            )
            self._state.void_reference = void.provider_reference
            self._case.audit("authorisation_voided", reason=void.idempotency_key)
        except ActivityError as failure:
            # An authorisation that cannot be voided (already expired) lapses by
            # itself; the order is still cancelled and the failure is on record.
            self._case.audit("void_failed", reason=failure_reason(failure))
        self._case.transition(ReviewStatus.CANCELLED, actor, reason, role=role)
        self._case.record_outcome(
            OrderOutcome.CANCELLED_FRAUD if fraud else OrderOutcome.CANCELLED,
            self._order.order_id,
        )
        await self._case.flush()
        await self._notify(CustomerTemplate.ORDER_CANCELLED)

    async def _notify(self, template: CustomerTemplate) -> None:
        await self._case.notify(
            NOTIFY_CUSTOMER,
            NotifyCustomerInput(
                workflow_id=workflow.info().workflow_id,
                message_id=f"{workflow.info().workflow_id}/{template}/{self._review_round}",
                order_id=self._order.order_id,
                email=self._order.customer.email,
                template=template,
                subject_id=self._subject_id,
            ),
            template=template,
            retry=OUTSIDE_RETRY,
        )

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
        return self._decision.pending or self._cancel_pending()

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

    def _history(self, status: ReviewStatus, actor: str, reason: str) -> None:
        self._state.history.append(
            StatusChange(at=workflow.now(), status=status, actor=actor, reason=reason)
        )

    def _facts(self) -> CaseFacts:
        state = self._state
        risk = state.risk
        return CaseFacts(
            status=state.status,
            details=_details(state, self._money()),
            amount_minor=state.amount_minor,
            currency=state.currency,
            market=state.market,
            risk_band=risk.band if risk else None,
            awaited_role=state.awaited_role,
            due_at=state.due_at,
        )


def _may_still_capture(failure: ActivityError) -> bool:
    """A capture that failed without the provider refusing it (given up after
    retries, or refused only because no outcome came in time) may still
    happen at the provider."""
    cause = failure.cause
    if not isinstance(cause, ApplicationError):
        return True  # a timeout: the schedule-to-close passed
    if cause.type in BUSINESS_REFUSALS:
        return cause.type == PAYMENT_REFUSED and OUTCOME_NOT_RECEIVED in (cause.details or ())
    return not cause.non_retryable


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
