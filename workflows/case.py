"""The case kernel every Steward workflow runs on.

A process is a case: it has a status with a history, may await a person (a
role, with a due date) through a human task that is opened, reminded,
escalated and closed, tells the customer what happens, and shows its current
state in the store's case row, in the search attributes and in the Temporal
UI's current details. `CaseBook` does all of that once, on top of the step
recorder (workflows/steps.py), so a workflow module is its `run()` and its
stages. `PendingDecision` is the hand-off from a validated update to the main
loop; `outside_retry` builds the retry policy of calls to outside systems;
`refund_until_unfrozen` is the refund that waits out a dispute's freeze.

Replay: the commands these helpers emit, and their order, are the ones the
workflows emitted before the kernel existed (tests/replay/histories prove it);
where a workflow always differed (an escalation that moves no due date, a
task opened without its open time), the difference is an argument here, named
after what it means, so each workflow keeps its exact commands. Changing what
a helper emits is a `workflow.patched` or revision matter, not a refactor.

Like steps.py this module is passed through the sandbox: no module-level
state, no I/O, imports from temporalio, the stdlib and domain/ only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain.audit import CaseStatusInput
    from domain.common import DECISION_IN_PROGRESS, DECISION_REJECTED, Role
    from domain.ids import CARRIER_CLAIM, CHARGEBACK, FAILED_DELIVERY
    from domain.notifications import NotifyCustomerResult
    from domain.payments import (
        REFUND_FROZEN_BY_DISPUTE,
        REFUND_PAYMENT,
        PaymentOperationInput,
        PaymentOperationResult,
    )
    from domain.tasks import OpenTaskInput, UpdateTaskInput, task_id
    from workflows import visibility
    from workflows.steps import StepRecorder, failure_reason, failure_type

# Every call to an outside system (provider, carrier, warehouse, mail) may take
# this long per attempt before Temporal tries again.
OUTSIDE_CALL_TIMEOUT = timedelta(seconds=30)


def outside_retry(
    *business_refusals: str, maximum_interval: timedelta = timedelta(minutes=1)
) -> RetryPolicy:
    """Transient faults retry with backoff; the business refusals an activity
    raises (non-retryable ApplicationError types) end the call at once."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=maximum_interval,
        non_retryable_error_types=list(business_refusals),
    )


T = TypeVar("T")


async def call_outside(
    activity: str,
    arg: Any,
    result_type: type[T],
    *,
    retry: RetryPolicy,
    summary: str | None = None,
    schedule_to_close: timedelta | None = None,
) -> T:
    """One call to an outside system: each attempt bounded by
    OUTSIDE_CALL_TIMEOUT, retried by `retry` (see `outside_retry`), and given
    up after `schedule_to_close` when set. No summary on the hot path's calls:
    each is one more encrypted payload, and the activity type says it."""
    return await workflow.execute_activity(
        activity,
        arg,
        result_type=result_type,
        start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
        schedule_to_close_timeout=schedule_to_close,
        retry_policy=retry,
        summary=summary,
    )


async def start_or_link(
    workflow_type: str, arg: Any, *, id: str, summary: str, **options: Any
) -> bool:
    """Start a process this case hands work to, which lives on after this
    case closes (a claim waits weeks for the carrier). False when one with
    that id already runs (a webhook or a sweep started it first): the case
    links to it instead of starting a second one."""
    try:
        await workflow.start_child_workflow(
            workflow_type,
            arg,
            id=id,
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=summary,
            **options,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


# ---------------------------------------------------------------- case book


@dataclass(frozen=True)
class CaseFacts:
    """What the case row, the search attributes and the UI show right now.

    One set of values feeds all three, so the work queue, a visibility query
    and the UI never disagree."""

    status: str
    details: str
    amount_minor: int
    currency: str
    market: str | None = None
    risk_band: str | None = None
    awaited_role: Role | None = None
    due_at: datetime | None = None
    # A process that only ever waits on outside systems (a carrier claim)
    # keeps the awaited-role search attribute out of its updates.
    tracks_awaited_role: bool = True


# How each process has always rendered an audit row's before/after values
# (see steps.jsonable): the rows already in the store were written this way,
# and an auditor comparing a case's old and new rows must see one shape, so
# each process keeps its own. A quirk of history, kept here so that no
# workflow carries it; a new process takes the plain rendering.
_DROPS_NONE = frozenset({FAILED_DELIVERY, CARRIER_CLAIM})
_FLATTENS_LISTS = frozenset({CHARGEBACK})


class CaseBook(StepRecorder):
    """A case's status, its human task, its customer messages and its display.

    `state` is the workflow's state model: the book sets its `status` and,
    where the process has them, `awaited_role`, `due_at`, `escalated` and
    `reminders_sent` (a process without tasks never asks it to). `facts` is
    called after every change that the case row, the search attributes and
    the current details follow; `history` appends the
    workflow's own status-history entry (None: the process keeps none);
    `closed` lists the statuses that end the case, on which whoever was
    awaited and the due date are cleared (`clear_on_close` names which of
    the two the state has).
    """

    def __init__(
        self,
        process: str,
        case_id: Callable[[], str],
        *,
        state: Any,
        facts: Callable[[], CaseFacts],
        history: Callable[[Any, str, str], None] | None = None,
        closed: frozenset[Any] = frozenset(),
        clear_on_close: tuple[str, ...] = ("awaited_role", "due_at"),
        order_id: Callable[[], str | None] | None = None,
        seen_event_ids: set[str] | None = None,
    ) -> None:
        super().__init__(
            process,
            case_id,
            order_id=order_id,
            drop_none=process in _DROPS_NONE,
            plain_lists=process in _FLATTENS_LISTS,
            seen_event_ids=seen_event_ids,
        )
        self.state: Any = state
        self._facts = facts
        self._history = history
        self._closed = closed
        self._clear_on_close = clear_on_close
        self.task_sequence = 0

    # ------------------------------------------------------------ status

    def transition(
        self,
        status: Any,
        actor: str,
        reason: str,
        *,
        role: Role = Role.SYSTEM,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Move to `status`: history, an audit row for a real change, and the
        case row, search attributes and details that follow it."""
        previous = self.state.status
        self.state.status = status
        if status in self._closed:
            for field in self._clear_on_close:
                setattr(self.state, field, None)
        if self._history is not None:
            self._history(status, actor, reason)
        self.status_changed(previous, status, actor=actor, role=role, reason=reason, after=after)
        self.refresh()

    def refresh(self) -> None:
        """Case row, search attributes and current details follow the state."""
        facts = self._facts()
        case = CaseStatusInput(
            workflow_id=workflow.info().workflow_id,
            process=self.process,
            case_id=self._case_id(),
            status=facts.status,
            market=facts.market,
            risk_band=facts.risk_band,
            awaited_role=facts.awaited_role,
            due_at=facts.due_at,
            amount_minor=facts.amount_minor,
            currency=facts.currency,
            updated_at=workflow.now(),
        )
        updates = visibility.case_updates(
            self.process,
            facts.status,
            market=facts.market,
            risk_band=facts.risk_band,
            awaited_role=facts.awaited_role,
            due_at=facts.due_at,
            tracks_awaited_role=facts.tracks_awaited_role,
        )
        self.set_case(case, updates)
        workflow.set_current_details(facts.details)

    # ------------------------------------------------------------- tasks

    def open_human_task(
        self,
        kind: str,
        title: str,
        role: Role,
        due: datetime,
        *,
        task_key: str | None = None,
        sequence: int | None = None,
        priority: int = 0,
        sets_due: bool = True,
        stamps_open_time: bool = True,
    ) -> int:
        """Open a task in the coordinators' work queue and record who is
        awaited until when. The task id is the workflow id, `task_key`
        (default: the kind) and `sequence` (default: the book's own counter,
        one per task opened); `sets_due` False leaves the
        case's due date to the workflow (a chargeback's due date is the
        provider's); without `stamps_open_time` the store stamps it."""
        if sequence is None:
            self.task_sequence += 1
            sequence = self.task_sequence
        workflow_id = workflow.info().workflow_id
        self.open_task(
            OpenTaskInput(
                task_id=task_id(workflow_id, task_key or kind, sequence),
                process=self.process,
                case_id=self._case_id(),
                workflow_id=workflow_id,
                kind=kind,
                title=title,
                awaited_role=role,
                due_at=due,
                priority=priority,
                opened_at=workflow.now() if stamps_open_time else None,
            )
        )
        self.state.awaited_role = role
        if sets_due:
            self.state.due_at = due
        return sequence

    def remind(self, action: str, *, reason: str) -> None:
        """A reminder on the open task: counted, on the task and on record."""
        self.state.reminders_sent += 1
        if self.open_task_id:
            self.update_task(
                UpdateTaskInput(task_id=self.open_task_id, reminders_sent=self.state.reminders_sent)
            )
        self.audit(action, reason=reason, after={"reminders_sent": self.state.reminders_sent})

    def escalate(
        self,
        role: Role,
        *,
        reason: str,
        due: datetime | None = None,
        action: str = "escalated",
        counts_as_reminder: bool = False,
        refresh: bool = True,
    ) -> None:
        """Hand the open task to `role` (and a new due date, when given)."""
        state = self.state
        before = {"awaited_role": state.awaited_role, "due_at": state.due_at} if due else None
        state.escalated = True
        if counts_as_reminder:
            state.reminders_sent += 1
        state.awaited_role = role
        if due is not None:
            state.due_at = due
        if self.open_task_id:
            self.update_task(
                UpdateTaskInput(
                    task_id=self.open_task_id,
                    awaited_role=role,
                    escalated=True,
                    due_at=due,
                    reminders_sent=state.reminders_sent if counts_as_reminder else None,
                )
            )
        after: dict[str, Any] = {"awaited_role": role}
        if due is not None:
            after["due_at"] = due
        self.audit(action, reason=reason, before=before, after=after)
        if refresh:
            self.refresh()

    def close_human_task(
        self,
        actor: str,
        outcome: str,
        *,
        clears_awaited: bool = True,
        clears_escalation: bool = False,
    ) -> bool:
        """Close the open task, if any; nobody is awaited any more."""
        if not self.close_task(actor, outcome):
            return False
        if clears_awaited:
            self.state.awaited_role = None
        if clears_escalation:
            self.state.escalated = False
        return True

    # ---------------------------------------------------------- customer

    async def notify(
        self,
        activity: str,
        message: Any,
        *,
        template: str,
        retry: RetryPolicy,
        after: dict[str, Any] | None = None,
        tolerate_failure: bool = False,
        on_sent: Callable[[NotifyCustomerResult], None] | None = None,
    ) -> NotifyCustomerResult | None:
        """Send the customer a message through a notification activity, put it
        on record and flush. With `tolerate_failure` a refused message (a
        bounced address) is recorded and the case goes on: None. `on_sent`
        sees the answer as soon as it comes, before the record and the flush
        (a process that lists its sent messages in its state adds it there,
        stamped with the time the answer came)."""
        try:
            result = await workflow.execute_activity(
                activity,
                message,
                result_type=NotifyCustomerResult,
                start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
                retry_policy=retry,
                summary=f"notify customer: {template}",
            )
        except ActivityError as failure:
            if not tolerate_failure:
                raise
            self.audit(
                "customer_notification_failed", reason=f"{template}: {failure_reason(failure)}"
            )
            await self.flush()
            return None
        if on_sent is not None:
            on_sent(result)
        self.audit(
            "customer_notified",
            reason=template,
            after={"message_id": result.message_id, **(after or {})},
        )
        await self.flush()
        return result


# --------------------------------------------------------- pending decisions

D = TypeVar("D")


class PendingDecision(Generic[D]):
    """A decision accepted by an update, waiting for the main loop.

    The update's validator refuses with a clear, typed error (nothing enters
    history for a refused update); the handler parks the decision here and
    answers once the main loop has taken it, with the state it led to.
    """

    def __init__(self, *, busy: str = "decision: another decision is being applied") -> None:
        self.record: D | None = None
        self._busy = busy

    @property
    def pending(self) -> bool:
        return self.record is not None

    def validate(
        self,
        rule: Callable[[], None],
        *,
        rejected_type: str = DECISION_REJECTED,
        busy_type: str = DECISION_IN_PROGRESS,
    ) -> None:
        """Raise an ApplicationError when another decision is in flight or
        when the domain `rule` refuses (it raises ValueError with the field
        and the reason)."""
        if self.record is not None:
            raise ApplicationError(self._busy, type=busy_type)
        try:
            rule()
        except ValueError as refused:
            # ApplicationError carries the message to the caller unchanged.
            raise ApplicationError(str(refused), type=rejected_type) from None

    async def hand_over(self, record: D) -> None:
        """Park `record` and return once the main loop has taken it."""
        self.record = record
        await workflow.wait_condition(lambda: self.record is None)

    def take(self) -> D | None:
        record, self.record = self.record, None
        return record


# ----------------------------------------------------------- frozen refunds


async def refund_until_unfrozen(
    operation: PaymentOperationInput,
    *,
    retry: RetryPolicy,
    summary: str,
    recheck_every: timedelta,
    on_frozen: Callable[[ActivityError, datetime], Awaitable[None]],
    on_failed: Callable[[ActivityError], Awaitable[None]],
    on_gave_up: Callable[[], Awaitable[None]],
    give_up_at: datetime | None = None,
    give_up_after_freeze: timedelta | None = None,
    on_still_frozen: Callable[[datetime, datetime], Awaitable[None]] | None = None,
    schedule_to_close: timedelta | None = None,
) -> PaymentOperationResult | None:
    """Refund once (the operation's idempotency key never changes), waiting
    out a dispute that freezes the order's refunds.

    While the provider answers REFUND_FROZEN_BY_DISPUTE the refund is tried
    again every `recheck_every` on a durable timer, until `give_up_at` (or
    `give_up_after_freeze` after the first refusal). The hooks record what the
    case shows: `on_frozen` at the first refusal, `on_still_frozen` before
    each wait (with the freeze start and the give-up time), `on_gave_up` at
    the deadline, `on_failed` on any other refusal. None: no money moved.
    """
    if (give_up_at is None) == (give_up_after_freeze is None):
        raise ValueError("give exactly one of give_up_at and give_up_after_freeze")
    frozen_since: datetime | None = None
    while True:
        try:
            return await workflow.execute_activity(
                REFUND_PAYMENT,
                operation,
                result_type=PaymentOperationResult,
                start_to_close_timeout=OUTSIDE_CALL_TIMEOUT,
                schedule_to_close_timeout=schedule_to_close,
                retry_policy=retry,
                summary=summary,
            )
        except ActivityError as failure:
            if failure_type(failure) != REFUND_FROZEN_BY_DISPUTE:
                await on_failed(failure)
                return None
            if frozen_since is None:
                frozen_since = workflow.now()
                await on_frozen(failure, frozen_since)
        deadline = give_up_at or frozen_since + (give_up_after_freeze or timedelta(0))
        if workflow.now() >= deadline:
            await on_gave_up()
            return None
        if on_still_frozen is not None:
            await on_still_frozen(frozen_since, deadline)
        await workflow.sleep(
            min(recheck_every, deadline - workflow.now()), summary="refund-freeze-recheck"
        )
