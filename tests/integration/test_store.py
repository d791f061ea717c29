"""The store against a real, migrated PostgreSQL: audit, tasks, cases, ledger,
signals, and the scoring activity that reads them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.audit import AuditActivities
from activities.scoring import ScoringActivities
from activities.simulated import SimulatedPaymentProvider
from activities.tasks import TaskActivities
from domain.audit import (
    STEP_WRITE_REFUSED,
    AuditEntry,
    AuditEntryIds,
    CaseStatusInput,
    RecordTransitionInput,
)
from domain.common import Role
from domain.orders import Address
from domain.outcomes import OrderOutcome, OutcomeWrite, outcome_key
from domain.payments import PaymentOperationKind
from domain.risk import ReasonCode, Routing, ScoreOrderInput
from domain.risk_rules import IdentityKind, RiskList, identity_hash, order_fingerprints
from domain.tasks import CloseTaskInput, OpenTaskInput, UpdateTaskInput
from store import audit, cases, ledger, outcomes, signals, steps, tasks
from store import simulated as sim
from tests.factories import make_order

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def entry(seq: int, *, case_id: str = "FR-1", at: datetime = T0, **kw: object) -> AuditEntry:
    data: dict[str, object] = {
        "entry_id": f"order-review:{case_id}/{seq}",
        "workflow_id": f"order-review:{case_id}",
        "process": "order-review",
        "case_id": case_id,
        "actor": "steward",
        "role": Role.SYSTEM,
        "action": "scored",
        "reason": "automatic",
        "before": {"status": "received"},
        "after": {"status": "scored", "score": 12, "at": T0},
        "occurred_at": at,
    }
    data.update(kw)
    return AuditEntry.model_validate(data)


# -- audit ----------------------------------------------------------------------


async def test_audit_duplicate_entry_id_writes_one_row(clean_db: asyncpg.Pool) -> None:
    assert await audit.insert_entry(clean_db, entry(1)) is True
    # A retried local activity sends the same entry again.
    assert await audit.insert_entry(clean_db, entry(1, action="changed-on-retry")) is False
    rows = await audit.list_by_case(clean_db, "FR-1")
    assert len(rows) == 1
    assert rows[0].action == "scored"
    assert rows[0].after == {"status": "scored", "score": 12, "at": T0.isoformat()}
    assert rows[0].recorded_at is not None


async def test_a_retried_task_that_took_a_signal_first_loses_and_repeats_no_entry(
    clean_db: asyncpg.Pool,
) -> None:
    # Found by make chaos: the killed task wrote two entries; its retry took a
    # signal that arrived meanwhile first and wrote three. Every entry is in
    # the log exactly once.
    def step(actions: list[str], at: datetime) -> list[AuditEntry]:
        ids = AuditEntryIds()
        out = []
        for action in actions:
            e = entry(0, action=action, at=at)
            content = e.model_dump(mode="json")
            entry_id = ids.next_id(
                run_id="run-1",
                **{
                    k: content[k]
                    for k in ("workflow_id", "case_id", "actor", "role", "action", "reason")
                },
                before=content["before"],
                after=content["after"],
            )
            out.append(e.model_copy(update={"entry_id": entry_id}))
        return out

    killed = step(["claim_filed", "status_changed"], T0)
    retried = step(["carrier_outcome", "claim_filed", "status_changed"], T0 + timedelta(seconds=9))
    await steps.record_step(clean_db, RecordTransitionInput(entries=killed))
    await steps.record_step(clean_db, RecordTransitionInput(entries=retried))
    rows = await audit.list_by_case(clean_db, "FR-1")
    assert sorted(r.action for r in rows) == ["carrier_outcome", "claim_filed", "status_changed"]


async def test_audit_log_is_append_only(clean_db: asyncpg.Pool) -> None:
    await audit.insert_entry(clean_db, entry(1))
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await clean_db.execute("UPDATE audit_log SET actor = 'mallory'")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await clean_db.execute("DELETE FROM audit_log")
    assert (await audit.list_by_case(clean_db, "FR-1"))[0].actor == "steward"


async def test_audit_trail_in_time_order(clean_db: asyncpg.Pool) -> None:
    # Written out of order (a later local activity retried first)...
    await audit.insert_entry(clean_db, entry(3, at=T0 + timedelta(minutes=5), action="approved"))
    await audit.insert_entry(clean_db, entry(1, at=T0, action="scored"))
    await audit.insert_entry(clean_db, entry(2, at=T0, action="task_opened"))
    await audit.insert_entry(clean_db, entry(1, case_id="FR-2"))
    rows = await audit.list_by_case(clean_db, "FR-1")
    # ...read in the order things happened; insertion order breaks a tie.
    assert [r.action for r in rows] == ["scored", "task_opened", "approved"]
    assert len(await audit.list_by_workflow(clean_db, "order-review:FR-2")) == 1
    window = await audit.list_between(clean_db, T0, T0 + timedelta(minutes=1))
    assert len(window) == 3


async def test_record_audit_activity(clean_db: asyncpg.Pool) -> None:
    activities = AuditActivities(clean_db)
    env = ActivityEnvironment()
    await env.run(activities.record_audit, entry(1))
    await env.run(activities.record_audit, entry(1))
    assert len(await audit.list_by_case(clean_db, "FR-1")) == 1


# -- tasks ----------------------------------------------------------------------


def task(
    n: int, due_in_min: int, *, priority: int = 0, role: Role = Role.COORDINATOR
) -> OpenTaskInput:
    return OpenTaskInput(
        task_id=f"order-review:FR-{n}/order_review/1",
        process="order-review",
        case_id=f"FR-{n}",
        workflow_id=f"order-review:FR-{n}",
        kind="order_review",
        title=f"Review order FR-{n}",
        awaited_role=role,
        due_at=T0 + timedelta(minutes=due_in_min),
        priority=priority,
        opened_at=T0,
    )


async def test_open_tasks_sorted_by_due_then_priority(clean_db: asyncpg.Pool) -> None:
    for t in (
        task(1, 90),
        task(2, 30, priority=10),
        task(3, 30, priority=70),
        task(4, 10, role=Role.MANAGER),
    ):
        assert await tasks.open(clean_db, t) is True
    assert await tasks.open(clean_db, task(1, 5)) is False  # retried open changes nothing

    queue = await tasks.list_open(clean_db)
    assert [t.case_id for t in queue] == ["FR-4", "FR-3", "FR-2", "FR-1"]
    coordinator = await tasks.list_open(clean_db, role=Role.COORDINATOR)
    assert [t.case_id for t in coordinator] == ["FR-3", "FR-2", "FR-1"]
    assert [t.case_id for t in await tasks.list_open(clean_db, limit=1)] == ["FR-4"]
    assert await tasks.list_open(clean_db, process="return") == []

    one = await tasks.get(clean_db, task(1, 0).task_id)
    assert one is not None
    assert one.due_at == T0 + timedelta(minutes=90)
    assert one.opened_at == T0
    assert one.closed_at is None and one.escalated is False


async def test_task_update_assign_and_idempotent_close(clean_db: asyncpg.Pool) -> None:
    t = task(1, 60)
    await tasks.open(clean_db, t)
    assert await tasks.update(clean_db, UpdateTaskInput(task_id=t.task_id, reminders_sent=2))
    # A late retry of an older reminder cannot lower the count.
    await tasks.update(clean_db, UpdateTaskInput(task_id=t.task_id, reminders_sent=1))
    escalate = UpdateTaskInput(
        task_id=t.task_id,
        awaited_role=Role.MANAGER,
        escalated=True,
        due_at=T0 + timedelta(hours=3),
    )
    assert await tasks.update(clean_db, escalate)
    assert await tasks.assign(clean_db, t.task_id, "manager.lea")
    row = await tasks.get(clean_db, t.task_id)
    assert row is not None
    assert (row.reminders_sent, row.awaited_role, row.escalated) == (2, Role.MANAGER, True)
    assert row.due_at == T0 + timedelta(hours=3)
    assert [x.task_id for x in await tasks.list_open(clean_db, assignee="manager.lea")] == [
        t.task_id
    ]

    closing = CloseTaskInput(
        task_id=t.task_id,
        closed_by="manager.lea",
        outcome="approve",
        closed_at=T0 + timedelta(hours=1),
    )
    assert await tasks.close(clean_db, closing) is True
    again = closing.model_copy(update={"outcome": "decline", "closed_at": T0 + timedelta(hours=2)})
    assert await tasks.close(clean_db, again) is False  # the first close wins
    assert (
        await tasks.update(clean_db, UpdateTaskInput(task_id=t.task_id, reminders_sent=5)) is False
    )
    row = await tasks.get(clean_db, t.task_id)
    assert row is not None
    assert (row.outcome, row.closed_by, row.reminders_sent) == ("approve", "manager.lea", 2)
    assert await tasks.list_open(clean_db) == []
    assert len(await tasks.list_for_workflow(clean_db, t.workflow_id)) == 1


async def test_task_activities_are_idempotent(clean_db: asyncpg.Pool) -> None:
    acts = TaskActivities(clean_db)
    env = ActivityEnvironment()
    t = task(7, 60)
    await env.run(acts.open_task, t)
    await env.run(acts.open_task, t)
    await env.run(acts.update_task, UpdateTaskInput(task_id=t.task_id, escalated=True))
    closing = CloseTaskInput(
        task_id=t.task_id, closed_by="c.martin", outcome="approve", closed_at=T0
    )
    await env.run(acts.close_task, closing)
    await env.run(acts.close_task, closing)
    await env.run(acts.update_task, UpdateTaskInput(task_id=t.task_id, reminders_sent=1))
    row = await tasks.get(clean_db, t.task_id)
    assert (
        row is not None and row.escalated and row.outcome == "approve" and row.reminders_sent == 0
    )


# -- cases ----------------------------------------------------------------------


def status(state: str, at: datetime, **kw: object) -> CaseStatusInput:
    data: dict[str, object] = {
        "workflow_id": "order-review:FR-1",
        "process": "order-review",
        "case_id": "FR-1",
        "status": state,
        "updated_at": at,
    }
    data.update(kw)
    return CaseStatusInput.model_validate(data)


async def test_case_status_upsert_keeps_the_latest(clean_db: asyncpg.Pool) -> None:
    first = status("received", T0, market="FR", amount_minor=245_000, currency="EUR")
    assert await cases.upsert(clean_db, first)
    awaiting = status(
        "awaiting_review",
        T0 + timedelta(minutes=1),
        risk_band="medium",
        awaited_role="coordinator",
        due_at=T0 + timedelta(hours=2),
    )
    assert await cases.upsert(clean_db, awaiting)
    # A stale snapshot arriving late never goes back in time.
    assert await cases.upsert(clean_db, status("scored", T0 + timedelta(seconds=30))) is False
    row = await cases.get(clean_db, "order-review:FR-1")
    assert row is not None
    assert (row.status, row.market, row.amount_minor, row.currency) == (
        "awaiting_review",
        "FR",
        245_000,
        "EUR",
    )
    assert row.awaited_role == "coordinator" and row.risk_band == "medium"
    assert row.created_at == T0 and row.updated_at == T0 + timedelta(minutes=1)

    released = status("released", T0 + timedelta(minutes=9))
    await AuditActivities(clean_db).record_case_status(released)
    row = await cases.get(clean_db, "order-review:FR-1")
    assert row is not None
    assert row.status == "released" and row.awaited_role is None and row.due_at is None
    assert row.market == "FR"

    other = status("awaiting_review", T0, workflow_id="order-review:FR-2", case_id="FR-2")
    await cases.upsert(clean_db, other)
    assert [c.case_id for c in await cases.list(clean_db, process="order-review")] == [
        "FR-1",
        "FR-2",
    ]
    waiting = await cases.list_cases(clean_db, status="awaiting_review")
    assert [c.case_id for c in waiting] == ["FR-2"]
    assert await cases.get(clean_db, "nope") is None


# -- ledger ---------------------------------------------------------------------


async def _record(
    db: asyncpg.Pool,
    key: str,
    kind: PaymentOperationKind = PaymentOperationKind.CAPTURE,
    amount_minor: int = 245_000,
    reference: str = "sim_capture_1",
) -> ledger.LedgerEntry:
    return await ledger.record(
        db,
        idempotency_key=key,
        workflow_id="order-review:FR-1",
        order_id="FR-1",
        kind=kind,
        amount_minor=amount_minor,
        currency="EUR",
        provider="simulated",
        provider_reference=reference,
    )


async def test_ledger_records_each_key_once(clean_db: asyncpg.Pool) -> None:
    first = await _record(clean_db, "order-review:FR-1/capture")
    second = await _record(clean_db, "order-review:FR-1/capture")
    assert first == second
    assert await clean_db.fetchval("SELECT count(*) FROM payment_ledger") == 1
    with pytest.raises(ledger.LedgerConflictError):
        await _record(clean_db, "order-review:FR-1/capture", amount_minor=1)
    refund = PaymentOperationKind.REFUND
    await _record(clean_db, "return:R1/refund-1", refund, 45_000, "sim_refund_1")

    totals = await ledger.totals_for_order(clean_db, "FR-1")
    assert (totals.captured_minor, totals.refunded_minor, totals.refundable_minor) == (
        245_000,
        45_000,
        200_000,
    )
    assert totals.currency == "EUR" and not totals.voided
    assert [e.kind for e in await ledger.list_for_order(clean_db, "FR-1")] == ["capture", "refund"]
    assert (await ledger.get(clean_db, "return:R1/refund-1")) is not None
    empty = await ledger.totals_for_order(clean_db, "nothing")
    assert empty.currency is None and empty.captured_minor == 0
    with pytest.raises(asyncpg.CheckViolationError):
        await clean_db.execute(
            "INSERT INTO payment_ledger (idempotency_key, workflow_id, order_id, kind, "
            "amount_minor, currency, provider, provider_reference) "
            "VALUES ('k', 'w', 'o', 'capture', -1, 'EUR', 'p', 'r')"
        )


# -- signals --------------------------------------------------------------------


async def test_velocity_counts_other_orders_in_the_24h_before(clean_db: asyncpg.Pool) -> None:
    order = make_order("FR-500", placed_at=T0)
    # The same customer, card, device and address: two earlier orders in the
    # window, one 25 h before (too old) and one placed after (not yet known).
    for order_id, placed in (
        ("FR-401", T0 - timedelta(hours=2)),
        ("FR-402", T0 - timedelta(hours=23)),
        ("FR-301", T0 - timedelta(hours=25)),
        ("FR-601", T0 + timedelta(hours=1)),
    ):
        await signals.record_and_load_signals(clean_db, make_order(order_id, placed_at=placed))
    # Another email on the same card, twice, and a third email once.
    for order_id, email in (
        ("FR-410", "a.n.other@example.com"),
        ("FR-411", "A.N.Other+x@example.com"),
        ("FR-412", "third@example.com"),
    ):
        await signals.record_and_load_signals(
            clean_db,
            make_order(
                order_id,
                placed_at=T0 - timedelta(hours=1),
                customer={"customer_id": "C-999", "email": email},
                payment={"card_fingerprint": "fp-C-778120-visa-4242"},
                device={"device_id": f"dev-{order_id}"},
                shipping_address={"line1": "1 Other Street", "postal_code": "75001"},
            ),
        )

    # Scoring records and loads in one statement; a retry records nothing
    # and sees the same numbers, since the order never counts against itself.
    first_time, found = await signals.record_and_load_signals(clean_db, order)
    assert first_time is True
    assert await signals.record_and_load_signals(clean_db, order) == (False, found)
    assert await signals.load_signals(clean_db, order) == found
    seen = await clean_db.fetchrow(
        "SELECT market, amount_minor, currency, placed_at FROM orders_seen WHERE order_id = $1",
        order.order_id,
    )
    assert seen is not None
    assert tuple(seen) == (order.market, order.total_minor, order.currency, order.placed_at)
    assert found.orders_24h_by_email == 2
    assert found.orders_24h_by_device == 2
    assert found.orders_24h_by_address == 2
    assert found.orders_24h_by_card == 5
    # "a.n.other" and "a.n.other+x" are one person after normalisation.
    assert found.emails_24h_by_card == 2
    # Orders arriving later do not change this order's numbers: a re-score
    # after a retry or an outage gives the same answer.
    await signals.record_and_load_signals(
        clean_db, make_order("FR-602", placed_at=T0 + timedelta(hours=3))
    )
    assert await signals.load_signals(clean_db, order) == found


async def test_lists_history_and_forwarders(clean_db: asyncpg.Pool) -> None:
    order = make_order("FR-700")
    clean = await signals.load_signals(clean_db, order)
    assert clean.blocklisted == [] and not clean.allowlisted and not clean.freight_forwarder_address
    assert clean.completed_orders == 0

    stored = await signals.add_to_list(
        clean_db, RiskList.BLOCK, IdentityKind.EMAIL, " Camille.Durand@Example.fr", "fraud", "ana"
    )
    assert stored == identity_hash(IdentityKind.EMAIL, order.customer.email)
    await signals.add_to_list(clean_db, "block", "address", order.billing_address, "drop", "ana")
    await signals.add_to_list(clean_db, "allow", "customer", "C-778120", "VIC client", "ana")
    await signals.set_customer_history(
        clean_db, "C-778120", completed_orders=12, chargebacks=0, returns=1
    )
    # Then the processes write outcomes back (store/outcomes.py): one order
    # delivered and returned.
    earlier = make_order("FR-699")
    await signals.record_and_load_signals(clean_db, earlier)
    for outcome in (OrderOutcome.DELIVERED, OrderOutcome.RETURNED):
        await outcomes.record(
            clean_db,
            OutcomeWrite(
                key=outcome_key("test:FR-699", outcome),
                order_id="FR-699",
                outcome=outcome,
                process="test",
                occurred_at=T0,
            ),
        )
    found = await signals.load_signals(clean_db, order)
    assert found.blocklisted == ["email", "address"]
    assert found.allowlisted is True
    assert (found.completed_orders, found.chargebacks, found.returns) == (13, 0, 2)
    # No clear value is ever written.
    dump = await clean_db.fetchval("SELECT string_agg(value_hash || reason, ',') FROM risk_lists")
    assert "camille" not in dump.lower()

    assert await signals.remove_from_list(clean_db, "block", "email", "camille.durand@example.fr")
    assert (await signals.load_signals(clean_db, order)).blocklisted == ["address"]

    forwarder = Address(
        line1="12 Industrial Way", city="New Castle", postal_code="19720", country="US"
    )
    await signals.add_freight_forwarder(clean_db, forwarder, "ShipHub New Castle")
    to_forwarder = make_order(
        "FR-701", shipping_address={**forwarder.model_dump(), "line1": "12, INDUSTRIAL WAY"}
    )
    assert (await signals.load_signals(clean_db, to_forwarder)).freight_forwarder_address
    await signals.add_freight_forwarder_postal_code(clean_db, "us", "97230", "Portland hub")
    to_postal = make_order(
        "FR-702",
        shipping_address={"line1": "9 Any Road", "postal_code": "97230 ", "country": "US"},
    )
    assert (await signals.load_signals(clean_db, to_postal)).freight_forwarder_address


async def test_score_order_activity(clean_db: asyncpg.Pool) -> None:
    provider = SimulatedPaymentProvider(clean_db)
    scoring = ScoringActivities(clean_db, {"simulated": provider})
    env = ActivityEnvironment()
    placed = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    for n in range(3):
        # Same email, other cards: email velocity only.
        earlier = make_order(
            f"FR-80{n}",
            placed_at=placed - timedelta(minutes=10 + n),
            payment={"card_fingerprint": f"fp-other-{n}"},
        )
        await env.run(scoring.score_order, ScoreOrderInput(order=earlier))
    order = make_order("FR-900", placed_at=placed)
    first = await env.run(scoring.score_order, ScoreOrderInput(order=order))
    retried = await env.run(scoring.score_order, ScoreOrderInput(order=order))
    assert first == retried  # the order does not count against itself on retry
    assert first.reason_codes == [ReasonCode.VELOCITY_EMAIL]
    assert first.routing is Routing.AUTO_ACCEPT
    assert await clean_db.fetchval("SELECT count(*) FROM orders_seen") == 4

    auth = await sim.get_authorisation(clean_db, order.payment.authorisation_ref)
    assert auth is not None
    assert (auth.amount_minor, auth.currency, auth.status) == (245_000, "EUR", "authorised")
    assert auth.expires_at == order.payment.authorisation_expires_at

    await signals.add_to_list(clean_db, "block", "card", order.payment.card_fingerprint, "x", "y")
    declined = await env.run(scoring.score_order, ScoreOrderInput(order=order))
    assert declined.routing is Routing.AUTO_DECLINE


def test_fingerprints_are_frozen() -> None:
    # Fingerprints travel between functions; nobody may swap a hash on the way.
    fp = order_fingerprints(make_order())
    with pytest.raises(dataclasses.FrozenInstanceError):
        fp.email_hash = "x"  # type: ignore[misc]


async def test_record_transition_writes_a_step_atomically(clean_db: asyncpg.Pool) -> None:
    acts = AuditActivities(clean_db)
    env = ActivityEnvironment()
    t = task(1, 60)
    opened = RecordTransitionInput(
        entries=[entry(1), entry(2, action="task_opened")],
        case=status("awaiting_review", T0, market="FR", awaited_role="coordinator"),
        open_tasks=[t],
    )
    await env.run(acts.record_transition, opened)
    await env.run(acts.record_transition, opened)  # a retried local activity
    decided = RecordTransitionInput(
        entries=[entry(3, action="approved", at=T0 + timedelta(minutes=5))],
        case=status("capturing", T0 + timedelta(minutes=5)),
        update_tasks=[UpdateTaskInput(task_id=t.task_id, reminders_sent=1)],
        close_tasks=[
            CloseTaskInput(task_id=t.task_id, closed_by="c.martin", outcome="approve", closed_at=T0)
        ],
    )
    await env.run(acts.record_transition, decided)
    assert [r.action for r in await audit.list_by_case(clean_db, "FR-1")] == [
        "scored",
        "task_opened",
        "approved",
    ]
    row = await tasks.get(clean_db, t.task_id)
    assert row is not None and row.outcome == "approve" and row.reminders_sent == 1
    case = await cases.get(clean_db, "order-review:FR-1")
    assert case is not None and case.status == "capturing" and case.market == "FR"

    # One failing write rolls the whole step back.
    broken = RecordTransitionInput(
        entries=[entry(4, action="never-seen")],
        case=status("released", T0 + timedelta(minutes=9), currency="EURO"),
    )
    # A value the store refuses for good (here too long) is refused, not retried for ever.
    with pytest.raises(ApplicationError) as refused:
        await env.run(acts.record_transition, broken)
    assert refused.value.type == STEP_WRITE_REFUSED and refused.value.non_retryable
    assert len(await audit.list_by_case(clean_db, "FR-1")) == 3


async def test_a_step_without_tasks_is_one_statement_with_the_same_rules(
    clean_db: asyncpg.Pool,
) -> None:
    # Three rows in one instant keep the order the workflow wrote them in.
    first = RecordTransitionInput(
        entries=[
            entry(1, action="review_started", order_id="FR-1"),
            entry(2, action="status_changed"),
            entry(3, action="scored", after={"score": 12, "reasons": ["velocity_email"]}),
        ],
        case=status("scored", T0, market="FR", risk_band="low", amount_minor=9_900),
    )
    await steps.record_step(clean_db, first)
    await steps.record_step(clean_db, first)  # a retried local activity
    rows = await audit.list_by_case(clean_db, "FR-1")
    assert [r.action for r in rows] == ["review_started", "status_changed", "scored"]
    assert rows[0].order_id == "FR-1" and rows[1].order_id is None
    assert rows[2].after == {"score": 12, "reasons": ["velocity_email"]}
    assert rows[0].before == {"status": "received"}

    # A late retry of an older snapshot leaves the newer case row alone;
    # a step with audit rows only leaves the case row alone too.
    newer = RecordTransitionInput(
        entries=[entry(4, action="payment_captured", at=T0 + timedelta(minutes=1))],
        case=status("capturing", T0 + timedelta(minutes=1)),
    )
    await steps.record_step(clean_db, newer)
    await steps.record_step(clean_db, first)
    await steps.record_step(clean_db, RecordTransitionInput(entries=[entry(5, action="noted")]))
    case = await cases.get(clean_db, "order-review:FR-1")
    assert case is not None
    assert (case.status, case.market, case.risk_band, case.amount_minor) == (
        "capturing",
        "FR",
        "low",
        9_900,
    )
    assert await clean_db.fetchval("SELECT count(*) FROM audit_log") == 5

    # A case row alone, with no audit rows.
    await steps.record_step(
        clean_db,
        RecordTransitionInput(case=status("released", T0 + timedelta(minutes=2))),
    )
    case = await cases.get(clean_db, "order-review:FR-1")
    assert case is not None and case.status == "released"
