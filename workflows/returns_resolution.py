"""The resolution stages of a return: the refund (with finance's four eyes
and the dispute freeze) and the exchange.

ReturnWorkflow (workflows/returns.py) inherits these stages; they live in
their own module only so that each file reads as one part of the process.
They use the workflow's attributes declared below and nothing else, and like
every workflow module they are replayed: changing what they do is a
`workflow.patched` matter.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.common import Role, format_amount
    from domain.ids import ORDER_REVIEW, order_review_id
    from domain.notifications import NOTIFY_CUSTOMER, CustomerTemplate, NotifyCustomerInput
    from domain.outcomes import OrderOutcome
    from domain.payments import PAYMENT_BUSINESS_REFUSALS, PaymentOperationInput
    from domain.returns import (
        CHECK_STOCK,
        CONTACT_EMAIL_FIELD,
        CheckStockInput,
        CheckStockResult,
        CustomerChoice,
        FinanceApprovalRecord,
        ReturnInput,
        ReturnLine,
        ReturnPolicy,
        ReturnState,
        ReturnStatus,
    )
    from domain.review import OrderReviewContract, ReviewStatus, review_input
    from workflows import visibility
    from workflows.case import (
        CaseBook,
        PendingDecision,
        call_outside,
        outside_retry,
        refund_until_unfrozen,
        start_or_link,
    )
    from workflows.steps import STEWARD, failure_reason, wait_until

OUTSIDE_RETRY = outside_retry(*PAYMENT_BUSINESS_REFUSALS)
# A provider that keeps failing for a day is a person's problem, not a retry's.
REFUND_GIVE_UP = timedelta(days=1)
# A refund the provider refused opens a finance task (runs before it did not).
PATCH_REFUND_FAILED_TASK = "return-refund-failed-task"
REFUND_FAILED_TASK_SLA = timedelta(days=2)


class ReturnResolution:
    """Refund and exchange, for ReturnWorkflow."""

    # The workflow's own attributes (set in ReturnWorkflow.__init__).
    _input: ReturnInput
    _policy: ReturnPolicy
    _state: ReturnState
    _case: CaseBook
    _finance: PendingDecision[FinanceApprovalRecord]
    _choice: CustomerChoice | None
    _full_refund_minor: int
    _refund_operations: int

    # ------------------------------------------------------------- money

    async def _refund(self, amount: int, requester: str, done: ReturnStatus) -> None:
        self._state.refund_minor = amount
        self._state.refund_requested_by = requester
        if amount > self._policy.finance_threshold_minor and not await self._finance_approved():
            self._case.transition(ReturnStatus.REFUND_DECLINED, STEWARD, "refund not approved")
            return
        self._state.awaited_role = None
        self._state.due_at = None
        self._case.transition(ReturnStatus.REFUNDING, STEWARD, f"refund {self._money(amount)}")
        await self._case.flush()
        self._refund_operations += 1
        # Deterministic: a retried activity, a frozen refund re-tried a day
        # later or a reset workflow all present the same idempotency key.
        operation = PaymentOperationInput(
            workflow_id=workflow.info().workflow_id,
            operation_id=f"refund-{self._refund_operations}",
            order_id=self._input.order.order_id,
            provider=self._input.order.payment_provider,
            authorisation_ref=self._input.order.authorisation_ref,
            amount_minor=amount,
            currency=self._input.order.currency,
            reason=f"return {self._input.rma_id}",
        )
        refund = await refund_until_unfrozen(
            operation,
            retry=OUTSIDE_RETRY,
            summary="refund payment",
            schedule_to_close=REFUND_GIVE_UP,
            recheck_every=self._policy.refund_recheck_every,
            give_up_after_freeze=self._policy.refund_freeze_deadline,
            on_failed=self._refund_failed,
            on_frozen=self._refund_frozen,
            on_still_frozen=self._refund_still_frozen,
            on_gave_up=self._refund_abandoned,
        )
        if refund is None:
            return
        self._state.refund_reference = refund.provider_reference
        self._state.due_at = None
        self._case.audit(
            "refund_issued",
            reason=refund.idempotency_key,
            after={
                "amount_minor": refund.amount_minor,
                "currency": refund.currency,
                "provider_reference": refund.provider_reference,
            },
        )
        self._close_task(STEWARD, "refunded")
        if done is ReturnStatus.REFUNDED:
            # Goods back and money back: the customer's returns count once per
            # return (an exchange's settlement is not a return of value).
            self._case.record_outcome(
                OrderOutcome.RETURNED,
                self._input.order.order_id,
                amount_minor=refund.amount_minor,
                currency=refund.currency,
            )
        self._case.transition(done, STEWARD, f"refunded {self._money(amount)}")
        await self._case.flush()
        await self._notify(CustomerTemplate.RETURN_REFUNDED)

    async def _refund_failed(self, failure: ActivityError) -> None:
        reason = failure_reason(failure)
        self._case.audit("refund_failed", reason=reason)
        self._close_task(STEWARD, "refund failed")
        if workflow.patched(PATCH_REFUND_FAILED_TASK):
            # The customer is still owed the money: finance must see it and
            # settle it by hand (runs before this patch only set the status).
            self._case.open_human_task(
                "refund_failed",
                f"Refund {self._money(self._state.refund_minor or 0)} of return "
                f"{self._input.rma_id} refused by the provider: {reason}",
                Role.FINANCE,
                workflow.now() + REFUND_FAILED_TASK_SLA,
            )
        self._case.transition(ReturnStatus.REFUND_FAILED, STEWARD, "provider refused")

    async def _refund_frozen(self, failure: ActivityError, since: datetime) -> None:
        self._state.open_dispute = True
        self._state.due_at = since + self._policy.refund_freeze_deadline
        self._case.audit("refund_frozen", reason="the order has an open dispute")
        self._case.transition(ReturnStatus.REFUND_FROZEN, STEWARD, "dispute open on the order")

    async def _refund_still_frozen(self, since: datetime, give_up: datetime) -> None:
        """Past the escalation delay a manager sees the frozen refund."""
        escalate_at = since + self._policy.refund_freeze_escalate_after
        if workflow.now() >= escalate_at and self._case.open_task_id is None:
            self._case.open_human_task(
                "refund_frozen",
                f"Refund of return {self._input.rma_id} frozen by a dispute since {since:%Y-%m-%d}",
                Role.MANAGER,
                give_up,
            )
            self._case.audit("refund_freeze_escalated", reason=f"frozen since {since}")
            self._case.refresh()
        await self._case.flush()

    async def _refund_abandoned(self) -> None:
        self._case.audit(
            "refund_freeze_deadline",
            reason=f"dispute still open after {self._policy.refund_freeze_deadline}",
        )
        self._close_task(STEWARD, "refund abandoned")
        self._case.transition(ReturnStatus.REFUND_FAILED, STEWARD, "dispute never resolved")

    async def _finance_approved(self) -> bool:
        """Four eyes above the threshold; past the deadline the refund is not made."""
        opened = workflow.now()
        sla = opened + self._policy.finance_sla
        deadline = opened + self._policy.finance_deadline
        self._state.escalated = False
        self._case.open_human_task(
            "refund_approval",
            f"Approve refund {self._money(self._state.refund_minor or 0)} · return "
            f"{self._input.rma_id} · requested by {self._state.refund_requested_by}",
            Role.FINANCE,
            sla,
        )
        self._case.transition(ReturnStatus.AWAITING_FINANCE, STEWARD, "above the finance threshold")
        await self._case.flush()
        approved: Callable[[], bool] = lambda: self._finance.pending  # noqa: E731
        if not await wait_until(approved, until=sla, timer="finance-sla"):
            # Still finance's decision (four eyes), just louder and later.
            self._case.escalate(
                Role.FINANCE,
                due=deadline,
                reason=f"finance SLA of {self._policy.finance_sla}",
                counts_as_reminder=True,
            )
            await self._case.flush()
            if not await wait_until(approved, until=deadline, timer="finance-deadline"):
                self._case.audit(
                    "finance_approval_timeout",
                    reason=f"no approval within {self._policy.finance_deadline}",
                )
                self._close_task(STEWARD, "expired")
                return False
        record = self._finance.take()
        assert record is not None
        self._state.finance_approval = record
        self._case.audit(
            "refund_approved" if record.approved else "refund_refused",
            actor=record.actor,
            role=Role.FINANCE,
            reason=record.note,
            after={"amount_minor": self._state.refund_minor, "approved": record.approved},
        )
        self._close_task(record.actor, "approved" if record.approved else "refused")
        return record.approved

    # ---------------------------------------------------------- exchange

    async def _exchange(self, requester: str) -> None:
        replacement = self._input.replacement
        assert replacement is not None
        wanted = [ReturnLine(sku=i.sku, quantity=i.quantity) for i in replacement.items]
        stock = await self._check_stock(wanted)
        if not stock.in_stock:
            choice = await self._ask_customer(stock.missing_skus)
            if choice is CustomerChoice.REFUND:
                await self._refund(self._full_refund_minor, requester, ReturnStatus.REFUNDED)
                return
            wait_until = workflow.now() + self._policy.exchange_wait_deadline
            self._state.due_at = wait_until
            self._case.refresh()
            await self._case.flush()
            while not stock.in_stock:
                if workflow.now() >= wait_until:
                    self._case.audit("exchange_wait_expired", reason=", ".join(stock.missing_skus))
                    await self._refund(self._full_refund_minor, requester, ReturnStatus.REFUNDED)
                    return
                await workflow.sleep(
                    min(self._policy.refund_recheck_every, wait_until - workflow.now()),
                    summary="replacement-stock-recheck",
                )
                stock = await self._check_stock(wanted)
        review_id = order_review_id(replacement.order_id)
        # The replacement lives on after the return closes; if order management
        # already sent it for review, that review is the one.
        started = (
            "replacement_ordered"
            if await start_or_link(
                OrderReviewContract.WORKFLOW_TYPE,
                # No business-hours calendar: building one is not for a workflow.
                # Issue 21: the edge kept its personal values under
                # replacement_subject_id (the review reads them by it), as the
                # API starts a review; None: the order carries them.
                review_input(
                    replacement,
                    business_calendar=False,
                    subject_id=self._input.replacement_subject_id,
                ),
                id=review_id,
                summary=f"Exchange for return {self._input.rma_id}",
                search_attributes=visibility.start_attributes(
                    ORDER_REVIEW, ReviewStatus.RECEIVED, market=replacement.market
                ),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            else "replacement_already_under_review"
        )
        self._state.replacement_order_id = replacement.order_id
        self._state.price_difference_minor = replacement.total_minor - self._full_refund_minor
        self._case.audit(
            started,
            actor=requester,
            reason=f"new order {replacement.order_id} under review ({review_id})",
            after={
                "replacement_total_minor": replacement.total_minor,
                "refund_minor": self._full_refund_minor,
                # Positive: the customer pays more; negative: gets money back.
                "price_difference_minor": self._state.price_difference_minor,
            },
        )
        # The replacement is captured in full by its own review; the returned
        # items are refunded here, so the customer nets the price difference.
        await self._refund(self._full_refund_minor, requester, ReturnStatus.EXCHANGED)

    async def _ask_customer(self, missing: list[str]) -> CustomerChoice:
        due = workflow.now() + self._policy.customer_choice_timeout
        self._state.awaited_role = None
        self._state.due_at = due
        self._case.audit("replacement_out_of_stock", reason=", ".join(missing))
        self._case.transition(ReturnStatus.AWAITING_CUSTOMER, STEWARD, "replacement out of stock")
        await self._case.flush()
        await self._notify(CustomerTemplate.EXCHANGE_OUT_OF_STOCK)
        if await wait_until(lambda: self._choice is not None, until=due, timer="customer-choice"):
            assert self._choice is not None
            return self._choice
        self._case.audit("customer_choice_timeout", reason="no answer; refund by default")
        return CustomerChoice.REFUND

    async def _check_stock(self, lines: list[ReturnLine]) -> CheckStockResult:
        return await call_outside(
            CHECK_STOCK,
            CheckStockInput(market=self._input.order.market, lines=lines),
            result_type=CheckStockResult,
            retry=OUTSIDE_RETRY,
            summary="check replacement stock",
        )

    # ------------------------------------------------------------ shared

    async def _notify(self, template: CustomerTemplate) -> None:
        workflow_id = workflow.info().workflow_id
        await self._case.notify(
            NOTIFY_CUSTOMER,
            NotifyCustomerInput(
                workflow_id=workflow_id,
                message_id=f"{workflow_id}/{template}",
                order_id=self._input.order.order_id,
                email=self._input.contact.email,
                template=template,
                locale=self._input.contact.locale,
                # Issue 21: the address is read from the contact's subject
                # when the message is sent (contact.email is a placeholder).
                subject_id=self._input.contact_subject_id,
                email_field=CONTACT_EMAIL_FIELD,
            ),
            template=template,
            retry=OUTSIDE_RETRY,
        )

    # ------------------------------------------------------------ the case

    def _close_task(self, actor: str, outcome: str) -> None:
        self._case.close_human_task(actor, outcome, clears_escalation=True)

    def _money(self, amount_minor: int) -> str:
        return format_amount(amount_minor, self._input.order.currency)
