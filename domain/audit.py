"""The audit trail: who did what, when, why, and what changed.

Entries are written by workflows through a local activity. Each entry id is
derived from what the entry says (see `AuditEntryIds`), and the table has a
unique constraint on it, so a retried write never adds a row twice.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import Field

from domain.common import NonEmptyStr, Role, StewardModel
from domain.outcomes import OutcomeWrite
from domain.tasks import CloseTaskInput, OpenTaskInput, UpdateTaskInput


class AuditEntry(StewardModel):
    entry_id: NonEmptyStr
    workflow_id: NonEmptyStr
    process: NonEmptyStr
    case_id: NonEmptyStr
    actor: NonEmptyStr
    role: Role
    action: NonEmptyStr
    reason: str = ""
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime
    # The order a case belongs to when its case id is another key (a failed
    # delivery's shipment id...), so `steward audit ORDER_ID` finds it. Optional
    # with a default: entries in recorded histories have no such field.
    order_id: str | None = None


class AuditEntryIds:
    """Entry ids that name what an entry says, not where it fell in a task.

    A workflow task's local write commits before the task completes. When the
    worker dies in between, the retried task replays and may take events in a
    different order (a signal that arrived meanwhile comes first). Ids from a
    per-run counter then shift: the retry's new entry took the id of an entry
    the dead task had already written, `ON CONFLICT DO NOTHING` dropped it, and
    an entry already written landed again under the next id (found by
    `make chaos`). An id made of the run, the entry's content and how many
    entries with that same content came before it in the run is the same in
    every attempt that writes the same entry, and differs for any other:
    nothing lost, nothing twice.

    Plain state of the workflow (no I/O, no clock), rebuilt identically on
    replay; it grows by one small counter per distinct entry content.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def next_id(
        self,
        *,
        workflow_id: str,
        run_id: str,
        case_id: str,
        actor: str,
        role: str,
        action: str,
        reason: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> str:
        # The time is left out on purpose: a retried task runs seconds later.
        content = json.dumps(
            [run_id, case_id, actor, role, action, reason, before, after],
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:20]
        occurrence = self._seen.get(digest, 0) + 1
        self._seen[digest] = occurrence
        return f"{workflow_id}/{action}/{digest}.{occurrence}"


class AuditRow(AuditEntry):
    recorded_at: datetime


class CaseStatusInput(StewardModel):
    """The latest status of a case, upserted for lists and reports."""

    workflow_id: NonEmptyStr
    process: NonEmptyStr
    case_id: NonEmptyStr
    status: NonEmptyStr
    market: str | None = None
    risk_band: str | None = None
    awaited_role: str | None = None
    due_at: datetime | None = None
    amount_minor: int | None = None
    currency: str | None = None
    updated_at: datetime


class CaseRow(CaseStatusInput):
    """A row of the case list: the latest status plus when the case first appeared."""

    created_at: datetime


RECORD_AUDIT = "record_audit"
RECORD_CASE_STATUS = "record_case_status"


class RecordTransitionInput(StewardModel):
    """Every local write of one workflow step, applied in one transaction by
    one local activity: audit entries, the case status row and task changes.

    Batching them keeps each step to a single marker event in the history
    (see DESIGN.md §6) and makes the step atomic in the store.
    """

    entries: list[AuditEntry] = Field(default_factory=list)
    case: CaseStatusInput | None = None
    open_tasks: list[OpenTaskInput] = Field(default_factory=list)
    update_tasks: list[UpdateTaskInput] = Field(default_factory=list)
    close_tasks: list[CloseTaskInput] = Field(default_factory=list)
    # What the step decided about the order (store/outcomes.py): written in
    # the same transaction as the audit rows, each once per write key.
    outcomes: list[OutcomeWrite] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.entries
            or self.case
            or self.open_tasks
            or self.update_tasks
            or self.close_tasks
            or self.outcomes
        )


RECORD_TRANSITION = "record_transition"

# The store refused a step's writes for good (a value it cannot hold, a
# constraint): retrying would fail the same way, so `record_transition` raises
# a non-retryable ApplicationError of this type, its message naming only the
# error class and SQLSTATE, never the values.
STEP_WRITE_REFUSED = "StepWriteRefused"
# What a workflow records instead of a step it could not write
# (workflows/steps.py): an audit row of this action and an ops task of this kind.
STEP_WRITE_FAILED = "step_write_failed"
