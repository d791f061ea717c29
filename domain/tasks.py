"""Human tasks: the coordinator work queue, kept in PostgreSQL because
visibility is eventually consistent and lists must be exact."""

from __future__ import annotations

from datetime import datetime

from domain.common import NonEmptyStr, Role, StewardModel


def task_id(workflow_id: str, kind: str, sequence: int = 1) -> str:
    return f"{workflow_id}/{kind}/{sequence}"


class OpenTaskInput(StewardModel):
    task_id: NonEmptyStr
    process: NonEmptyStr
    case_id: NonEmptyStr
    workflow_id: NonEmptyStr
    kind: NonEmptyStr  # e.g. "order_review", "customer_answer"
    title: NonEmptyStr
    awaited_role: Role
    assignee: str | None = None
    due_at: datetime
    priority: int = 0  # higher first among equal due times; risk score for reviews
    # Workflow time the task opened (SLA reports measure from it); None: insert time.
    opened_at: datetime | None = None


class UpdateTaskInput(StewardModel):
    """Escalation or reminder bookkeeping on an open task."""

    task_id: NonEmptyStr
    awaited_role: Role | None = None
    due_at: datetime | None = None
    escalated: bool | None = None
    reminders_sent: int | None = None


class CloseTaskInput(StewardModel):
    task_id: NonEmptyStr
    closed_by: NonEmptyStr
    outcome: NonEmptyStr
    closed_at: datetime


class TaskRow(StewardModel):
    task_id: str
    process: str
    case_id: str
    workflow_id: str
    kind: str
    title: str
    awaited_role: Role
    assignee: str | None
    due_at: datetime
    priority: int
    escalated: bool
    reminders_sent: int
    opened_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    outcome: str | None


OPEN_TASK = "open_task"
UPDATE_TASK = "update_task"
CLOSE_TASK = "close_task"
