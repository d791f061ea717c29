"""Order outcomes written back with a step's audit rows (issue 15).

Each outcome kind goes through the `record_transition` activity twice, as a
retried local write does (same entries, same outcome key): the order's outcome
and the customer's counters move exactly once. And the counters feed the risk
signals the rules read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.audit import AuditActivities
from domain.audit import AuditEntry, RecordTransitionInput
from domain.common import Role
from domain.outcomes import OUTCOME_EFFECTS, Counter, OrderOutcome, OutcomeWrite, outcome_key
from store import outcomes, signals
from tests.factories import make_order

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _step(workflow_id: str, write: OutcomeWrite) -> RecordTransitionInput:
    return RecordTransitionInput(
        entries=[
            AuditEntry(
                entry_id=f"{workflow_id}/0007",
                workflow_id=workflow_id,
                process=write.process,
                case_id=workflow_id.split(":", 1)[1],
                actor="steward",
                role=Role.SYSTEM,
                action="status_changed",
                reason=f"outcome {write.outcome}",
                occurred_at=write.occurred_at,
                order_id=write.order_id,
            )
        ],
        outcomes=[write],
    )


@pytest.mark.parametrize("kind", list(OrderOutcome))
async def test_each_outcome_counts_once_through_a_retried_step_write(
    clean_db: asyncpg.Pool, kind: OrderOutcome
) -> None:
    order = make_order("FR-7001", placed_at=T0)
    await signals.record_and_load_signals(clean_db, order)
    customer = order.customer.customer_id
    before = await outcomes.customer_counters(clean_db, customer)
    workflow_id = f"{OUTCOME_EFFECTS[kind].writers[0]}:case-{kind.value}"
    write = OutcomeWrite(
        key=outcome_key(workflow_id, kind),
        order_id=order.order_id,
        outcome=kind,
        process=OUTCOME_EFFECTS[kind].writers[0],
        occurred_at=T0 + timedelta(days=3),
        amount_minor=120_000 if kind is OrderOutcome.RETURNED else 0,
        currency="EUR" if kind is OrderOutcome.RETURNED else None,
    )
    record = AuditActivities(clean_db).record_transition
    env = ActivityEnvironment()
    await env.run(record, _step(workflow_id, write))
    await env.run(record, _step(workflow_id, write))  # the retried local write

    after = await outcomes.customer_counters(clean_db, customer)
    moved = {
        c: getattr(after, c.value) - getattr(before, c.value)
        for c in Counter
        if getattr(after, c.value) != getattr(before, c.value)
    }
    assert moved == dict.fromkeys(OUTCOME_EFFECTS[kind].counters, 1)
    expected_value = {"EUR": 120_000} if kind is OrderOutcome.RETURNED else {}
    assert after.returned_value == expected_value
    assert (
        await clean_db.fetchval(
            "SELECT outcome FROM orders_seen WHERE order_id = $1", order.order_id
        )
        == kind.value
    )
    assert await clean_db.fetchval("SELECT count(*) FROM order_outcomes") == 1
    assert await clean_db.fetchval("SELECT count(*) FROM audit_log") == 1


async def test_a_later_stage_is_not_overwritten_and_counters_feed_the_signals(
    clean_db: asyncpg.Pool,
) -> None:
    order = make_order("FR-7002", placed_at=T0)
    await signals.record_and_load_signals(clean_db, order)

    def write(kind: OrderOutcome, case: str, at: timedelta) -> OutcomeWrite:
        return OutcomeWrite(
            key=outcome_key(case, kind),
            order_id=order.order_id,
            outcome=kind,
            process="test",
            occurred_at=T0 + at,
            amount_minor=50_000 if kind is OrderOutcome.RETURNED else 0,
            currency="EUR" if kind is OrderOutcome.RETURNED else None,
        )

    assert await outcomes.record(clean_db, write(OrderOutcome.DELIVERED, "o", timedelta(days=2)))
    assert await outcomes.record(clean_db, write(OrderOutcome.RETURNED, "r1", timedelta(days=9)))
    # A late delivery scan of another parcel (a new key) counts nothing more
    # on the order's outcome: returned outranks delivered.
    assert not await outcomes.record(
        clean_db, write(OrderOutcome.DELIVERED, "o", timedelta(days=10))
    )
    assert await clean_db.fetchval(
        "SELECT outcome FROM orders_seen WHERE order_id = $1", order.order_id
    ) == ("returned")
    # A second return of the same order (another RMA) is another return.
    assert await outcomes.record(clean_db, write(OrderOutcome.RETURNED, "r2", timedelta(days=11)))
    counters = await outcomes.customer_counters(clean_db, order.customer.customer_id)
    assert (counters.completed_orders, counters.returns) == (1, 2)
    assert counters.returned_value == {"EUR": 100_000}
    found = await signals.load_signals(clean_db, make_order("FR-7003", placed_at=T0))
    assert (found.completed_orders, found.returns, found.chargebacks) == (1, 2, 0)


async def test_an_order_steward_never_saw_is_recorded_but_counts_nothing(
    clean_db: asyncpg.Pool,
) -> None:
    write = OutcomeWrite(
        key=outcome_key("chargeback:stripe:dp_1", OrderOutcome.CHARGED_BACK_LOST),
        order_id="EXT-1",
        outcome=OrderOutcome.CHARGED_BACK_LOST,
        process="chargeback",
        occurred_at=T0,
    )
    assert await outcomes.record(clean_db, write)
    assert await clean_db.fetchval("SELECT count(*) FROM customer_history") == 0
    assert await outcomes.outcomes_of(clean_db, "EXT-1") == [
        ("charged_back_lost", "chargeback", T0)
    ]
