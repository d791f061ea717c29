"""The step write against the real store (issue 14, bug 2): a value
PostgreSQL can never hold is refused once, non-retryable, with an error that
names its class and SQLSTATE but not the value; the step's rows are not half
written; a store that cannot be reached is still retried."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.audit import AuditActivities
from domain.audit import STEP_WRITE_REFUSED, AuditEntry, CaseStatusInput, RecordTransitionInput
from domain.common import Role
from store import audit, cases

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def entry(seq: int, **kw: object) -> AuditEntry:
    data: dict[str, object] = {
        "entry_id": f"order-review:FR-1/{seq:04d}",
        "workflow_id": "order-review:FR-1",
        "process": "order-review",
        "case_id": "FR-1",
        "actor": "steward",
        "role": Role.SYSTEM,
        "action": "decision_decline",
        "reason": "checked",
        "before": {},
        "after": {},
        "occurred_at": T0,
        "order_id": None,
    }
    data.update(kw)
    # model_construct: what a workflow might hold from before the edge refused such text.
    return AuditEntry.model_construct(**data)  # type: ignore[arg-type]


def case(amount_minor: int) -> CaseStatusInput:
    return CaseStatusInput.model_construct(
        workflow_id="order-review:FR-1",
        process="order-review",
        case_id="FR-1",
        status="cancelling",
        market="FR",
        risk_band=None,
        awaited_role=None,
        due_at=None,
        amount_minor=amount_minor,
        currency="EUR",
        updated_at=T0,
    )


def batch(**fields: Any) -> RecordTransitionInput:
    return RecordTransitionInput.model_construct(
        **{"open_tasks": [], "update_tasks": [], "close_tasks": [], "case": None, **fields}
    )


@pytest.mark.parametrize(
    ("step", "sqlstate"),
    [
        (batch(entries=[entry(1), entry(2, reason="note \x00 secret")]), "22"),
        (batch(entries=[entry(1)], case=case(2**63)), None),
    ],
    ids=["nul_in_text", "amount_beyond_int64"],
)
async def test_a_value_the_store_cannot_hold_is_refused_for_good(
    clean_db: asyncpg.Pool, step: RecordTransitionInput, sqlstate: str | None
) -> None:
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as refused:
        await env.run(AuditActivities(clean_db).record_transition, step)
    assert refused.value.type == STEP_WRITE_REFUSED
    assert refused.value.non_retryable
    assert "secret" not in refused.value.message and str(2**63) not in refused.value.message
    if sqlstate:
        assert f"SQLSTATE {sqlstate}" in refused.value.message
    # One transaction: not even the valid entry of the step was written.
    assert await audit.list_by_case(clean_db, "FR-1") == []
    assert await cases.get(clean_db, "order-review:FR-1") is None


async def test_a_store_that_cannot_be_reached_is_retried(clean_db: asyncpg.Pool) -> None:
    class ClosedPool:
        def __getattr__(self, name: str) -> object:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")

    env = ActivityEnvironment()
    with pytest.raises(asyncpg.exceptions.ConnectionDoesNotExistError):
        await env.run(
            AuditActivities(ClosedPool()).record_transition,  # type: ignore[arg-type]
            RecordTransitionInput(entries=[entry(1)]),
        )
