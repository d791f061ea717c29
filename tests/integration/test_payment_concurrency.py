"""Money movements under concurrency (issue 13): a second attempt of the same
operation while the first still runs, and slow refunds that must not starve
the worker's other database work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.payments import PaymentActivities
from activities.ports import PortTimeoutError
from activities.simulated import FaultPlan, SimulatedPaymentProvider
from domain.audit import AuditEntry, CaseStatusInput, RecordTransitionInput
from domain.common import Role
from domain.orders import Order
from domain.payments import (
    IDEMPOTENCY_KEY_REUSED,
    PAYMENT_REFUSED,
    REFUND_EXCEEDS_CAPTURE,
    PaymentOperationInput,
    PaymentOperationKind,
    PaymentOperationStatus,
)
from store import ledger, refunds_in_flight, steps
from store import simulated as sim
from store.db import STORE_POOL_SIZE, create_pool
from tests.factories import make_order
from workers.activities import WORLD_POOL_SIZE, build_activities, create_world_pool
from workers.settings import Settings


class SteadyPlan(FaultPlan):
    """Every call takes exactly `latency_ms` (FaultPlan's jitter is ±50 %):
    the tests below need to know the provider is still busy."""

    async def delay(self) -> None:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)


def op(order: Order, operation_id: str, amount_minor: int | None = None) -> PaymentOperationInput:
    return PaymentOperationInput(
        workflow_id=f"return:RMA-{order.order_id}",
        operation_id=operation_id,
        order_id=order.order_id,
        provider=order.payment.provider,
        authorisation_ref=order.payment.authorisation_ref,
        amount_minor=order.payment.amount_minor if amount_minor is None else amount_minor,
        currency=order.currency,
    )


async def authorise(provider: SimulatedPaymentProvider, order: Order) -> None:
    await provider.register_authorisation(
        authorisation_ref=order.payment.authorisation_ref,
        amount_minor=order.payment.amount_minor,
        currency=order.payment.currency,
        authorised_at=order.payment.authorised_at,
        expires_at=order.payment.authorisation_expires_at,
    )


async def captured(
    payments: PaymentActivities, provider: SimulatedPaymentProvider, order: Order
) -> None:
    await authorise(provider, order)
    capture = op(order, "capture").model_copy(
        update={"workflow_id": f"order-review:{order.order_id}"}
    )
    await ActivityEnvironment().run(payments.capture_payment, capture)


# -- a second attempt while the first still runs --------------------------------------


async def test_a_second_attempt_of_a_running_refund_answers_with_its_result(
    clean_db: asyncpg.Pool,
) -> None:
    # Temporal starts attempt 2 when attempt 1 passes its start-to-close
    # timeout, while attempt 1 is still waiting for the provider. Both are the
    # same refund (same key): both must answer with the one refund, never count
    # the other's as a second one (RefundExceedsCapture).
    plan = SteadyPlan()
    provider = SimulatedPaymentProvider(clean_db, plan)
    payments = PaymentActivities(clean_db, {provider.name: provider})
    order = make_order("FR-1301")
    await captured(payments, provider, order)
    refund = op(order, "refund-1")  # all of it: one refund fits, two would not

    plan.latency_ms = 600
    first = asyncio.create_task(ActivityEnvironment().run(payments.refund_payment, refund))
    await asyncio.sleep(0.1)  # attempt 1 is with the provider
    second = asyncio.create_task(ActivityEnvironment().run(payments.refund_payment, refund))
    results = await asyncio.gather(first, second, return_exceptions=True)

    assert not [r for r in results if isinstance(r, BaseException)], results
    one, two = results
    assert one == two
    assert one.status is PaymentOperationStatus.SUCCEEDED
    assert one.amount_minor == order.payment.amount_minor
    operations = await sim.list_operations(clean_db, order.payment.authorisation_ref)
    assert [o.kind for o in operations] == ["capture", "refund"]
    assert operations[1].provider_reference == one.provider_reference
    rows = await ledger.list_for_order(clean_db, order.order_id)
    assert [(r.kind, r.provider_reference) for r in rows if r.kind == "refund"] == [
        (PaymentOperationKind.REFUND, one.provider_reference)
    ]
    totals = await ledger.totals_for_order(clean_db, order.order_id)
    assert totals.refunded_minor == totals.captured_minor == order.payment.amount_minor
    assert await refunds_in_flight.list_for_order(clean_db, order.order_id) == []


@pytest.mark.parametrize("kind", ["capture", "void"])
async def test_a_second_attempt_of_a_running_capture_or_void_answers_with_its_result(
    clean_db: asyncpg.Pool, kind: str
) -> None:
    # Capture and void take no order lock and apply no ledger rule: the
    # provider's key and the ledger's unique key are the whole guarantee.
    plan = SteadyPlan()
    provider = SimulatedPaymentProvider(clean_db, plan)
    payments = PaymentActivities(clean_db, {provider.name: provider})
    order = make_order(f"FR-131{len(kind)}")
    await authorise(provider, order)
    operation = op(order, kind).model_copy(update={"workflow_id": f"order-review:{order.order_id}"})
    activity = payments.capture_payment if kind == "capture" else payments.void_authorisation

    plan.latency_ms = 600
    first = asyncio.create_task(ActivityEnvironment().run(activity, operation))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(ActivityEnvironment().run(activity, operation))
    one, two = await asyncio.gather(first, second)

    assert one == two and one.kind == kind
    operations = await sim.list_operations(clean_db, order.payment.authorisation_ref)
    assert [o.provider_reference for o in operations] == [one.provider_reference]
    rows = await ledger.list_for_order(clean_db, order.order_id)
    assert [r.provider_reference for r in rows] == [one.provider_reference]


async def test_two_different_refunds_at_once_still_cannot_exceed_the_capture(
    clean_db: asyncpg.Pool,
) -> None:
    # The other half of the order lock's job: two different refunds (a return
    # and a goodwill gesture) racing for the last money; one of them is refused.
    plan = SteadyPlan()
    provider = SimulatedPaymentProvider(clean_db, plan)
    payments = PaymentActivities(clean_db, {provider.name: provider})
    order = make_order("FR-1320")
    await captured(payments, provider, order)
    amount = order.payment.amount_minor * 2 // 3

    plan.latency_ms = 600
    first = asyncio.create_task(
        ActivityEnvironment().run(payments.refund_payment, op(order, "refund-1", amount))
    )
    await asyncio.sleep(0.1)
    second = asyncio.create_task(
        ActivityEnvironment().run(payments.refund_payment, op(order, "refund-2", amount))
    )
    results = await asyncio.gather(first, second, return_exceptions=True)

    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1
    assert getattr(refused[0], "type", None) == REFUND_EXCEEDS_CAPTURE
    assert getattr(refused[0], "non_retryable", None) is True
    operations = await sim.list_operations(clean_db, order.payment.authorisation_ref)
    assert [o.kind for o in operations] == ["capture", "refund"]
    totals = await ledger.totals_for_order(clean_db, order.order_id)
    assert totals.refunded_minor == amount
    assert await refunds_in_flight.list_for_order(clean_db, order.order_id) == []


# -- refunds in flight ------------------------------------------------------------------


async def test_a_refund_whose_outcome_is_unknown_stays_in_flight_until_its_retry(
    clean_db: asyncpg.Pool,
) -> None:
    plan = FaultPlan()
    provider = SimulatedPaymentProvider(clean_db, plan)
    payments = PaymentActivities(clean_db, {provider.name: provider})
    order = make_order("FR-1330")
    await captured(payments, provider, order)
    plan.script("timeout_after_commit")
    refund = op(order, "refund-1", 200_000)

    with pytest.raises(PortTimeoutError):
        await ActivityEnvironment().run(payments.refund_payment, refund)
    # The provider paid; the ledger does not know yet, the row says so.
    (in_flight,) = await refunds_in_flight.list_for_order(clean_db, order.order_id)
    assert (in_flight.idempotency_key, in_flight.amount_minor) == (refund.idempotency_key, 200_000)

    # Another refund counts it: 45,001 more would exceed the capture.
    with pytest.raises(ApplicationError) as exceeded:
        await ActivityEnvironment().run(payments.refund_payment, op(order, "refund-2", 45_001))
    assert exceeded.value.type == REFUND_EXCEEDS_CAPTURE
    # The same key for another amount is a caller's bug, in flight as in the ledger.
    with pytest.raises(ApplicationError) as reused:
        await ActivityEnvironment().run(payments.refund_payment, op(order, "refund-1", 1_000))
    assert reused.value.type == IDEMPOTENCY_KEY_REUSED

    result = await ActivityEnvironment().run(payments.refund_payment, refund)
    operations = await sim.list_operations(clean_db, order.payment.authorisation_ref)
    assert [(o.kind, o.provider_reference) for o in operations][1:] == [
        ("refund", result.provider_reference)
    ]
    assert await refunds_in_flight.list_for_order(clean_db, order.order_id) == []
    assert (await ledger.totals_for_order(clean_db, order.order_id)).refunded_minor == 200_000


async def test_a_refund_the_provider_refuses_is_no_longer_in_flight(
    clean_db: asyncpg.Pool,
) -> None:
    provider = SimulatedPaymentProvider(clean_db)
    payments = PaymentActivities(clean_db, {provider.name: provider})
    # The ledger claims a capture the provider never made: the provider
    # refuses the refund (not_captured), so no money moved under its key.
    other = make_order("FR-1332")
    await authorise(provider, other)
    await ledger.record(
        clean_db,
        idempotency_key=f"order-review:{other.order_id}/capture",
        workflow_id=f"order-review:{other.order_id}",
        order_id=other.order_id,
        kind=PaymentOperationKind.CAPTURE,
        amount_minor=245_000,
        currency="EUR",
        provider="simulated",
        provider_reference="sim_capture_ghost",
    )
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(payments.refund_payment, op(other, "refund-1", 1_000))
    assert refused.value.type == PAYMENT_REFUSED
    assert refused.value.details == ("not_captured",)
    assert await refunds_in_flight.list_for_order(clean_db, other.order_id) == []


# -- slow refunds and the worker's other database work ----------------------------------


@pytest.fixture
async def store_pool(postgres_dsn: str, clean_db: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """A pool of the size every worker runs with (store.db.create_pool's default)."""
    pool = await create_pool(postgres_dsn)
    assert pool.get_max_size() == STORE_POOL_SIZE
    yield pool
    pool.terminate()


@pytest.fixture
async def world_pool(integration_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The simulated world's pool, as a worker creates it."""
    pool = await create_world_pool(integration_settings)
    assert pool.get_max_size() == WORLD_POOL_SIZE
    yield pool
    pool.terminate()


async def test_a_worker_gives_the_simulated_world_its_own_pool(
    store_pool: asyncpg.Pool, world_pool: asyncpg.Pool, integration_settings: Settings
) -> None:
    # Every simulator reachable from the activities uses the world's pool,
    # every activity class the store's.
    activities = build_activities(store_pool, integration_settings, world_pool=world_pool)
    simulators, owners = [], []
    seen: set[int] = set()
    pending = [getattr(fn, "__self__", None) for fn in activities]
    while pending:
        obj = pending.pop()
        if obj is None or id(obj) in seen or isinstance(obj, str | int | float):
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            pending.extend(obj.values())
            continue
        if not hasattr(obj, "__dict__"):
            continue
        if isinstance(getattr(obj, "pool", None), asyncpg.Pool):
            (simulators if type(obj).__name__.startswith("Simulated") else owners).append(obj)
        pending.extend(v for v in vars(obj).values() if not isinstance(v, asyncpg.Pool))
    assert {type(s).__name__ for s in simulators} >= {
        "SimulatedPaymentProvider",
        "SimulatedWarehouse",
        "SimulatedNotifier",
        "SimulatedCarrier",
        "SimulatedDisputeProvider",
        "SimulatedCctvArchive",
    }
    assert all(s.pool is world_pool for s in simulators), [
        type(s).__name__ for s in simulators if s.pool is not world_pool
    ]
    assert owners and all(o.pool is store_pool for o in owners)


def a_step(n: int) -> RecordTransitionInput:
    at = datetime.now(UTC)
    return RecordTransitionInput(
        entries=[
            AuditEntry(
                entry_id=f"order-review:FR-1399/step-{n}",
                workflow_id="order-review:FR-1399",
                process="order_review",
                case_id="FR-1399",
                actor="steward",
                role=Role.SYSTEM,
                action="scored",
                occurred_at=at,
            )
        ],
        case=CaseStatusInput(
            workflow_id="order-review:FR-1399",
            process="order_review",
            case_id="FR-1399",
            status="scored",
            updated_at=at,
        ),
    )


@pytest.mark.parametrize("wiring", ["provider_on_the_store_pool", "provider_on_its_own_pool"])
async def test_slow_refunds_do_not_delay_a_step_write(
    integration_settings: Settings, store_pool: asyncpg.Pool, wiring: str
) -> None:
    # Issue 13, bug 2: with the provider at 1.5 s, pool size + 2 refunds at once
    # held every connection of the pool (and, with the provider on the same
    # pool, waited on each other for good); the worker's step writes waited.
    size = store_pool.get_max_size()
    own_pool = None
    if wiring == "provider_on_its_own_pool":  # as a worker runs it
        own_pool = await create_world_pool(integration_settings)
    plan = SteadyPlan()
    provider = SimulatedPaymentProvider(own_pool or store_pool, plan)
    payments = PaymentActivities(store_pool, {provider.name: provider})
    orders = [make_order(f"FR-14{n:02d}") for n in range(size + 2)]
    for order in orders:
        await captured(payments, provider, order)

    plan.latency_ms = 1500
    started = time.monotonic()
    refunds = [
        asyncio.create_task(ActivityEnvironment().run(payments.refund_payment, op(o, "refund-1")))
        for o in orders
    ]
    try:
        await asyncio.sleep(0.2)  # every refund is with the provider by now
        write_started = time.monotonic()
        await asyncio.wait_for(steps.record_step(store_pool, a_step(1)), timeout=1.0)
        write_took = time.monotonic() - write_started
        assert write_took < 1.0
        # While the refunds are still in flight: the write did not wait for them.
        assert time.monotonic() - started < plan.latency_ms / 1000
        results = await asyncio.wait_for(asyncio.gather(*refunds), timeout=30)
    finally:
        for task in refunds:
            task.cancel()
        await asyncio.gather(*refunds, return_exceptions=True)
        if own_pool is not None:
            own_pool.terminate()
    assert [r.status for r in results] == [PaymentOperationStatus.SUCCEEDED] * len(orders)
    refunded = await store_pool.fetchval(
        "SELECT count(*) FROM payment_ledger WHERE kind = 'refund'"
    )
    assert refunded == len(orders)
