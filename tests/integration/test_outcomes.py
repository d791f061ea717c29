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
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.audit import AuditActivities
from activities.disputes import DisputeActivities
from clients import carrier_events
from domain.audit import AuditEntry, RecordTransitionInput
from domain.carrier_events import CarrierEvent, TrackingStatus
from domain.chargeback import (
    AssembleEvidenceInput,
    ChargebackState,
    DisputeProvider,
    DisputeReason,
    DisputeStage,
    DisputeStatus,
    EvidenceKind,
    ResponseAction,
    default_response,
)
from domain.common import Role
from domain.deliveries import ShipmentRecord
from domain.ids import order_review_id
from domain.orders import Order
from domain.outcomes import OUTCOME_EFFECTS, Counter, OrderOutcome, OutcomeWrite, outcome_key
from store import outcomes, signals, steps
from tests.factories import make_order
from workers.settings import Settings

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


# ------------------------------------------- a fraud dispute Steward can win


async def _ordered_and_delivered(
    pool: asyncpg.Pool, client: Client, order: Order, *, delivered: bool = True
) -> None:
    """What production leaves behind: scoring recorded the order (and its
    payment checks), the review scored and released it, the warehouse
    registered the parcel and the carrier said delivered (through the intake,
    which writes the `delivered` outcome)."""
    await signals.record_and_load_signals(pool, order)
    review = order_review_id(order.order_id)
    at = order.placed_at
    entries = [
        AuditEntry(
            entry_id=f"{review}/{n:04d}",
            workflow_id=review,
            process="order_review",
            case_id=order.order_id,
            actor="steward",
            role=Role.SYSTEM,
            action=action,
            reason=reason,
            after=after,
            occurred_at=at + timedelta(minutes=n),
        )
        for n, (action, reason, after) in enumerate(
            [
                ("scored", "no risk signal", {"score": 0, "band": "low"}),
                ("status_changed", "released", {"status": "released"}),
                ("customer_notified", "order_confirmed", {"message_id": "m1"}),
            ],
            start=1,
        )
    ]
    await steps.record_step(pool, RecordTransitionInput(entries=entries))
    shipment = ShipmentRecord(
        shipment_id=f"SH-{order.order_id}",
        carrier="ups",
        tracking_number=f"1Z{order.order_id}",
        expected_delivery_at=at + timedelta(days=2),
        order=order,
    )
    await carrier_events.register_shipment(pool, shipment)
    if delivered:
        event = CarrierEvent(
            event_id=f"ev-{order.order_id}",
            carrier="ups",
            tracking_number=shipment.tracking_number,
            status=TrackingStatus.DELIVERED,
            occurred_at=at + timedelta(days=2),
        )
        for _ in range(2):  # the carrier's webhook, delivered twice
            await carrier_events.ingest_event(client, pool, event, "unused-queue")


async def _fraud_default(pool: asyncpg.Pool, order: Order) -> tuple[ResponseAction, str]:
    evidence = DisputeActivities(pool, {}).assemble_dispute_evidence
    result = await ActivityEnvironment().run(
        evidence,
        AssembleEvidenceInput(
            workflow_id="chargeback:stripe:dp_fraud",
            provider=DisputeProvider.STRIPE,
            dispute_id="dp_fraud",
            order_id=order.order_id,
            reason=DisputeReason.FRAUD,
        ),
    )
    state = ChargebackState(
        provider=DisputeProvider.STRIPE,
        dispute_id="dp_fraud",
        order_id=order.order_id,
        stage=DisputeStage.DISPUTE,
        status=DisputeStatus.AWAITING_COORDINATOR,
        reason=DisputeReason.FRAUD,
        amount_minor=order.total_minor,
        currency=order.currency,
        evidence=result.pack,
    )
    # What the chargeback workflow runs at the safety buffer, with the policy
    # every new case starts with.
    return default_response(state, Settings(_env_file=None).dispute_policy())


async def test_a_fraud_dispute_steward_can_win_is_contested_by_default(
    clean_db: asyncpg.Pool, client: Client
) -> None:
    for n in range(3):
        earlier = make_order(f"FR-71{n}", placed_at=T0 - timedelta(days=90 - 20 * n))
        await _ordered_and_delivered(clean_db, client, earlier)
    disputed = make_order("FR-7200", placed_at=T0)  # AVS and CVV match, 3-D Secure
    await _ordered_and_delivered(clean_db, client, disputed)
    counters = await outcomes.customer_counters(clean_db, disputed.customer.customer_id)
    assert counters.completed_orders == 4  # each delivery counted once

    action, why = await _fraud_default(clean_db, disputed)
    assert (action, why) == (ResponseAction.CONTEST, "policy default: evidence complete, contested")
    pack = (
        await ActivityEnvironment().run(
            DisputeActivities(clean_db, {}).assemble_dispute_evidence,
            AssembleEvidenceInput(
                workflow_id="chargeback:stripe:dp_fraud",
                provider=DisputeProvider.STRIPE,
                dispute_id="dp_fraud",
                order_id=disputed.order_id,
                reason=DisputeReason.FRAUD,
            ),
        )
    ).pack
    prior = pack.get(EvidenceKind.PRIOR_ORDERS)
    assert prior is not None and prior.available
    assert prior.summary.startswith("3 earlier undisputed, delivered order(s)")
    assert "7,350.00 EUR in all" in prior.summary
    talk = pack.get(EvidenceKind.CUSTOMER_COMMUNICATION)
    assert talk is not None and "order_review: sent order_confirmed by email" in talk.summary
    policy = pack.get(EvidenceKind.REFUND_POLICY)
    assert policy is not None and policy.reference == "refund-policy/FR/v2026-01"


async def test_a_fraud_dispute_without_history_or_3ds_is_accepted_and_reported(
    clean_db: asyncpg.Pool, client: Client
) -> None:
    disputed = make_order(
        "FR-7300",
        placed_at=T0,
        customer={"customer_id": "C-NEW-1", "email": "new.customer@example.com"},
        payment={"three_ds": "not_performed"},
    )
    await _ordered_and_delivered(clean_db, client, disputed)

    action, why = await _fraud_default(clean_db, disputed)
    assert action is ResponseAction.ACCEPT
    assert why == (
        "policy default: evidence incomplete (authorisation_results, prior_orders), "
        "accepted and reported"
    )
