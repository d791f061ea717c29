"""The step machinery every Steward workflow shares.

A workflow step buffers its local writes (audit entries, the case row, task
changes) and its search attributes, then `flush` sends them out as one
`record_transition` local activity and one upsert. Keeping that in one place
keeps every workflow's commands identical: the recorded histories in
tests/replay depend on the commands below and their order, so changing them
is a `workflow.patched` (or revision) matter, not a refactor.

This is workflow code, imported by the workflows through the sandbox's
pass-through (like domain/): one copy is shared by every run instead of being
re-imported for each, so it must keep no module-level state, import only
temporalio, the stdlib and domain/, and do no I/O itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from domain.audit import (
        RECORD_TRANSITION,
        STEP_WRITE_FAILED,
        STEP_WRITE_REFUSED,
        AuditEntry,
        AuditEntryIds,
        CaseStatusInput,
        RecordTransitionInput,
    )
    from domain.common import Role
    from domain.outcomes import OrderOutcome, OutcomeWrite, outcome_key
    from domain.tasks import CloseTaskInput, OpenTaskInput, UpdateTaskInput, task_id

STEWARD = "steward"
LOCAL_WRITE_TIMEOUT = timedelta(seconds=10)
# A step write that can never succeed stops being retried: at once when the
# store refuses its values (STEP_WRITE_REFUSED), else after this long (an
# outage longer than this loses the step's rows, replaced by the record below).
STEP_WRITE_GIVE_UP = timedelta(minutes=30)
# Behaviour guarded by this patch: a step write that gave up is recorded as a
# `step_write_failed` audit row and an ops task, and the case goes on.
STEP_WRITE_FAILURE_PATCH = "step-write-failure"


class StepRecorder:
    """Buffers one step's local writes and search attributes until `flush`.

    `case_id` and `order_id` are read at each audit, not at construction: some
    workflows learn them (or their parts) after the run has started. A workflow
    whose entries have never carried an order id passes no `order_id`, so its
    entries keep omitting the field instead of setting it to None.
    """

    def __init__(
        self,
        process: str,
        case_id: Callable[[], str],
        *,
        order_id: Callable[[], str | None] | None = None,
        drop_none: bool = False,
        plain_lists: bool = False,
        seen_event_ids: set[str] | None = None,
    ) -> None:
        self.process = process
        self._case_id = case_id
        self._order_id = order_id
        # How each workflow has always rendered before/after; entries already
        # in the store were written this way, so each keeps its own.
        self._drop_none = drop_none
        self._plain_lists = plain_lists
        self.pending = RecordTransitionInput()
        # Counts every entry of the run: the step_write_failed task's id uses it.
        self.audit_sequence = 0
        self._entry_ids = AuditEntryIds()
        self.open_task_id: str | None = None
        self.seen_event_ids: set[str] = seen_event_ids if seen_event_ids is not None else set()
        self.search_attribute_updates: list[SearchAttributeUpdate[Any]] = []

    def first_time(self, event_id: str) -> bool:
        """Signals carry the source event id; a redelivered event is dropped."""
        if event_id in self.seen_event_ids:
            return False
        self.seen_event_ids.add(event_id)
        return True

    def audit(
        self,
        action: str,
        *,
        actor: str = STEWARD,
        role: Role = Role.SYSTEM,
        reason: str = "",
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        self.pending.entries.append(
            self._entry(action, actor=actor, role=role, reason=reason, before=before, after=after)
        )

    def record_outcome(
        self,
        outcome: OrderOutcome,
        order_id: str,
        *,
        amount_minor: int = 0,
        currency: str | None = None,
    ) -> None:
        """Write back what this step decided about the order, with the step's
        audit rows. Keyed by the workflow id and the outcome: the same case
        deciding it again (a retried write, a replay) counts once."""
        workflow_id = workflow.info().workflow_id
        self.pending.outcomes.append(
            OutcomeWrite(
                key=outcome_key(workflow_id, outcome),
                order_id=order_id,
                outcome=outcome,
                process=self.process,
                occurred_at=workflow.now(),
                amount_minor=amount_minor,
                currency=currency,
            )
        )

    def _entry(
        self,
        action: str,
        *,
        actor: str = STEWARD,
        role: Role = Role.SYSTEM,
        reason: str = "",
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> AuditEntry:
        # The entry id names the entry's content (AuditEntryIds), so a retried
        # write, or a retried workflow task that writes the same entry again,
        # hits the store's unique constraint instead of adding a duplicate.
        self.audit_sequence += 1
        info = workflow.info()
        extra: dict[str, Any] = {}
        if self._order_id is not None:
            extra["order_id"] = self._order_id()
        case_id = self._case_id()
        rendered_before = jsonable(
            before or {}, drop_none=self._drop_none, plain_lists=self._plain_lists
        )
        rendered_after = jsonable(
            after or {}, drop_none=self._drop_none, plain_lists=self._plain_lists
        )
        return AuditEntry(
            entry_id=self._entry_ids.next_id(
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                case_id=case_id,
                actor=actor,
                role=str(role),
                action=action,
                reason=reason,
                before=rendered_before,
                after=rendered_after,
            ),
            workflow_id=info.workflow_id,
            process=self.process,
            case_id=case_id,
            actor=actor,
            role=role,
            action=action,
            reason=reason,
            before=rendered_before,
            after=rendered_after,
            occurred_at=workflow.now(),
            **extra,
        )

    def status_changed(
        self,
        previous: str,
        status: str,
        *,
        actor: str = STEWARD,
        role: Role = Role.SYSTEM,
        reason: str,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Audit a status change; re-entering the same status is history only,
        not a change worth an audit row."""
        if previous == status:
            return
        self.audit(
            "status_changed",
            actor=actor,
            role=role,
            reason=reason,
            before={"status": previous},
            after=after if after is not None else {"status": status},
        )

    def set_case(self, case: CaseStatusInput, updates: list[SearchAttributeUpdate[Any]]) -> None:
        """The case row and the search attributes that follow the state; only
        the latest of a step is written."""
        self.pending.case = case
        self.search_attribute_updates = updates

    def open_task(self, task: OpenTaskInput) -> None:
        self.open_task_id = task.task_id
        self.pending.open_tasks.append(task)

    def update_task(self, update: UpdateTaskInput) -> None:
        self.pending.update_tasks.append(update)

    def close_task(self, actor: str, outcome: str) -> bool:
        """Close the open task, if any; False when there was none, so the
        caller leaves the rest of its state alone."""
        if self.open_task_id is None:
            return False
        self.pending.close_tasks.append(
            CloseTaskInput(
                task_id=self.open_task_id,
                closed_by=actor,
                outcome=outcome,
                closed_at=workflow.now(),
            )
        )
        self.open_task_id = None
        return True

    async def flush(self, *, publish_search_attributes: bool = True) -> None:
        """Write the step's audit rows, case row and task changes in one local
        activity, and publish the matching search attributes.

        Without `publish_search_attributes` the search attributes wait for the
        next flush (or the next state change replaces them): for a state that
        is expected to last milliseconds."""
        if self.search_attribute_updates and publish_search_attributes:
            # One upsert per step, not per change: each upsert is a history event.
            workflow.upsert_search_attributes(self.search_attribute_updates)
            self.search_attribute_updates = []
        if self.pending.is_empty():
            return
        batch, self.pending = self.pending, RecordTransitionInput()
        # No summary: the type (record_transition) says it, and a summary is
        # one more encrypted payload on every step of every process.
        try:
            await workflow.execute_local_activity(
                RECORD_TRANSITION,
                batch,
                start_to_close_timeout=LOCAL_WRITE_TIMEOUT,
                schedule_to_close_timeout=STEP_WRITE_GIVE_UP,
            )
        except FailureError as failure:
            # A local activity's failure: ActivityError, or (this SDK) its cause itself.
            if not workflow.patched(STEP_WRITE_FAILURE_PATCH):
                raise
            await self._record_step_write_failed(batch, failure)

    async def _record_step_write_failed(
        self, batch: RecordTransitionInput, failure: FailureError
    ) -> None:
        """The step's writes gave up: record that, in values the store always
        takes (ids, action names, the error's class), with an ops task, and
        close the tasks the step closed; the case goes on. Money never waits on
        a bookkeeping row: a decided review still voids or captures and
        releases, and the next step writes the case row again."""
        cause = failure.cause if isinstance(failure, ActivityError) else failure
        if isinstance(cause, ApplicationError) and cause.type == STEP_WRITE_REFUSED:
            why = cause.message  # the activity names only the error class and SQLSTATE
        elif isinstance(cause, ApplicationError):
            why = f"{cause.type or 'ApplicationError'}"
        else:
            why = type(cause or failure).__name__
        lost = (
            f"audit actions [{', '.join(e.action for e in batch.entries)}], "
            f"case row {'yes' if batch.case else 'no'}, "
            f"tasks opened [{', '.join(t.task_id for t in batch.open_tasks)}], "
            f"tasks updated [{', '.join(t.task_id for t in batch.update_tasks)}]"
            + (f", outcomes [{', '.join(o.key for o in batch.outcomes)}]" if batch.outcomes else "")
        )
        entry = self._entry(
            STEP_WRITE_FAILED,
            reason=f"a step's writes gave up ({why}); not recorded: {lost}",
        )
        workflow_id = workflow.info().workflow_id
        record = RecordTransitionInput(
            entries=[entry],
            open_tasks=[
                OpenTaskInput(
                    task_id=task_id(workflow_id, STEP_WRITE_FAILED, self.audit_sequence),
                    process=self.process,
                    case_id=entry.case_id,
                    workflow_id=workflow_id,
                    kind=STEP_WRITE_FAILED,
                    title=f"A step of {entry.case_id} could not be recorded: see its audit",
                    awaited_role=Role.OPS,
                    due_at=workflow.now(),
                    priority=1000,
                    opened_at=workflow.now(),
                )
            ],
            close_tasks=batch.close_tasks,
        )
        workflow.logger.error("step write gave up (%s); recorded as %s", why, entry.entry_id)
        try:
            await workflow.execute_local_activity(
                RECORD_TRANSITION, record, start_to_close_timeout=LOCAL_WRITE_TIMEOUT
            )
        except FailureError as again:
            # Not even ids and names could be written: fail the workflow task
            # (not the workflow), so it shows in the UI and resumes once fixed.
            raise RuntimeError(f"the step_write_failed record was refused too: {again}") from None


async def wait_until(condition: Callable[[], bool], *, until: datetime, timer: str) -> bool:
    """Wait for `condition` until `until`; True if it became true in time.

    A deadline already past starts no timer: the condition is only checked,
    so arriving late adds nothing to the history."""
    remaining = until - workflow.now()
    if remaining <= timedelta(0):
        return bool(condition())
    try:
        await workflow.wait_condition(condition, timeout=remaining, timeout_summary=timer)
    except TimeoutError:
        return False
    return True


def failure_type(failure: ActivityError) -> str | None:
    cause = failure.cause
    return cause.type if isinstance(cause, ApplicationError) else None


def failure_reason(failure: ActivityError) -> str:
    """The business reason an activity gave up, for the audit trail."""
    cause = failure.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}" if cause.type else cause.message
    return str(cause or failure)


def jsonable(
    values: dict[str, Any], *, drop_none: bool = False, plain_lists: bool = False
) -> dict[str, Any]:
    """Audit before/after are JSON in the store; keep enums and times plain.

    `drop_none` leaves absent facts out rather than recording them as changes;
    `plain_lists` also flattens enums inside lists."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if drop_none and value is None:
            continue
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif plain_lists and isinstance(value, list):
            out[key] = [v.value if hasattr(v, "value") else v for v in value]
        elif hasattr(value, "value"):
            out[key] = value.value
        else:
            out[key] = value
    return out
