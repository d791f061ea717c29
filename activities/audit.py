"""Audit entries, case status and task bookkeeping: short local writes, run as
local activities.

All are idempotent (unique entry id; a case snapshot that never goes back in
time; task opens/closes that apply once), so a local activity retried after a
worker crash writes nothing twice.
"""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from domain.audit import (
    RECORD_AUDIT,
    RECORD_CASE_STATUS,
    RECORD_TRANSITION,
    STEP_WRITE_REFUSED,
    AuditEntry,
    CaseStatusInput,
    RecordTransitionInput,
)
from store import audit, cases, steps

# Errors a retry of the same write meets again: a value PostgreSQL cannot hold
# (SQLSTATE class 22: U+0000 in text, a number out of range...), a violated
# constraint (class 23), a value asyncpg cannot encode. A lost connection, a
# timeout or a server shutting down are not here: they are retried.
REFUSED_FOR_GOOD: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.exceptions._base.DataError,  # an argument asyncpg cannot encode (int64...)
    UnicodeEncodeError,
    OverflowError,
)


class AuditActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name=RECORD_AUDIT)
    async def record_audit(self, entry: AuditEntry) -> None:
        inserted = await audit.insert_entry(self.pool, entry)
        activity_logger(actor=entry.actor, role=entry.role.value).debug(
            "audit_recorded", entry_id=entry.entry_id, action=entry.action, inserted=inserted
        )

    @activity.defn(name=RECORD_CASE_STATUS)
    async def record_case_status(self, input: CaseStatusInput) -> None:
        applied = await cases.upsert(self.pool, input)
        activity_logger().debug("case_status_recorded", status=input.status, applied=applied)

    @activity.defn(name=RECORD_TRANSITION)
    async def record_transition(self, input: RecordTransitionInput) -> None:
        """Everything one workflow step writes, in one transaction: a reader
        never sees the audit row of a decision without its closed task, and
        the step costs one local activity (one marker event) instead of four,
        and, without task changes, one round trip to PostgreSQL.
        """
        try:
            await steps.record_step(self.pool, input)
        except REFUSED_FOR_GOOD as err:
            # Retrying cannot help: the workflow records the failure instead
            # (workflows/steps.py). Only the error's class and SQLSTATE: the
            # message may quote the refused value (customer data).
            sqlstate = getattr(err, "sqlstate", None)
            reason = f"{type(err).__name__}" + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
            activity_logger().error("transition_refused", error=reason)
            raise ApplicationError(
                f"the store refused the step's writes: {reason}",
                type=STEP_WRITE_REFUSED,
                non_retryable=True,
            ) from None
        activity_logger().debug(
            "transition_recorded",
            entries=len(input.entries),
            status=input.case.status if input.case else None,
            tasks_opened=[t.task_id for t in input.open_tasks],
            tasks_closed=[t.task_id for t in input.close_tasks],
        )
