"""Closing a work-queue task that no process will close.

Some tasks are handed to a person and left there: Steward opens them to say
"look at this" and nothing in Steward ever closes them. They come from

- the payment webhooks (clients/payment_outcomes.py): `capture_reversed`,
  `refund_reversed` (a confirmed capture or refund failed after all, or a
  refund came back) and `amount_mismatch` (the provider confirmed another
  amount), addressed to finance, whatever the case's process is doing;
- the order review's give-up (workflows/order_review.py): `late_capture`
  (captured after the review gave up, or its outcome never came), opened just
  before the review cancels and ends;
- the step recorder (workflows/steps.py): `step_write_failed`, addressed to
  ops, while the case goes on without it.

Those kinds may be resolved by the role they are addressed to at any time
(`HANDED_OFF_KINDS`). Any other task belongs to its process, which closes it
when it is decided: it may be resolved here only once that process is no
longer running (it ended, was terminated, or its history is gone) and left
the task open. A resolution closes the task and writes one audit row; it
never moves money or signals a process.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field

from domain.audit import STEP_WRITE_FAILED
from domain.common import FreeText, Role, StewardModel
from domain.payments import PaymentOperationKind
from domain.tasks import TaskRow

# Kinds no process closes (see the module docstring for who opens them).
HANDED_OFF_KINDS: Final[frozenset[str]] = frozenset(
    {
        STEP_WRITE_FAILED,
        "late_capture",
        "amount_mismatch",
        *(f"{kind.value}_reversed" for kind in PaymentOperationKind),
    }
)

# The audit action of a resolution.
TASK_RESOLVED: Final = "task_resolved"
MAX_REASON_LENGTH: Final = 1000


class TaskResolutionOutcome(StrEnum):
    # Settled by hand outside Steward (refunded in the provider's dashboard,
    # the missing row re-entered...).
    HANDLED = "handled"
    # Looked at: nothing to do (already settled, a false alarm).
    NO_ACTION_NEEDED = "no_action_needed"
    # Another task or case covers it.
    DUPLICATE = "duplicate"


class TaskResolutionBody(StewardModel):
    """A resolution. Who resolves comes from the API key, never from the body."""

    outcome: TaskResolutionOutcome
    reason: Annotated[
        FreeText,
        Field(
            min_length=1,
            max_length=MAX_REASON_LENGTH,
            description="What was done or found (kept in the audit log)",
            examples=["refunded by hand in the Adyen dashboard, ref 8815"],
        ),
    ]


class TaskResolution(StewardModel):
    """The task after the request; `resolved_now` False: it was already
    resolved the same way by the same person (a repeated request)."""

    task: TaskRow
    resolved_now: bool


class Refusal(StewardModel):
    """Why a resolution is refused: `status` is the HTTP status it answers."""

    status: int
    detail: str


def resolution_refusal(
    task: TaskRow,
    *,
    role: Role,
    actor: str,
    outcome: TaskResolutionOutcome,
    process_running: bool | None,
) -> Refusal | None:
    """Why `actor` (with `role`) may not resolve `task` with `outcome`, or
    None when they may (or when it is the same resolution again: the caller
    answers it unchanged).

    `process_running`: whether the task's workflow is still running; None
    when it was not asked (a handed-off kind never needs it).
    """
    if task.awaited_role is not role:
        return Refusal(
            status=403,
            detail=f"task {task.task_id} awaits {task.awaited_role.value}; "
            f"role {role.value} may not resolve it",
        )
    if task.closed_at is not None:
        if task.closed_by == actor and task.outcome == outcome.value:
            return None
        return Refusal(
            status=409,
            detail=f"task {task.task_id} is already closed "
            f"(by {task.closed_by}, outcome {task.outcome}, at {task.closed_at.isoformat()})",
        )
    if task.kind in HANDED_OFF_KINDS:
        return None
    if process_running is None:
        raise ValueError(f"whether {task.workflow_id} runs is needed for a {task.kind} task")
    if process_running:
        return Refusal(
            status=409,
            detail=f"task {task.task_id} belongs to the running process {task.workflow_id}, "
            f"which closes it: decide it through {task.process}",
        )
    return None


def needs_process_state(task: TaskRow) -> bool:
    """Whether deciding needs to know if the task's process still runs."""
    return task.closed_at is None and task.kind not in HANDED_OFF_KINDS


def audit_before(task: TaskRow) -> dict[str, object]:
    return {
        "task_id": task.task_id,
        "kind": task.kind,
        "awaited_role": task.awaited_role.value,
        "due_at": task.due_at.isoformat(),
        "closed_at": None,
    }


def audit_after(
    task_id: str, outcome: TaskResolutionOutcome, actor: str, at: datetime
) -> dict[str, object]:
    return {
        "task_id": task_id,
        "outcome": outcome.value,
        "closed_by": actor,
        "closed_at": at.isoformat(),
    }
