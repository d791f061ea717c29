"""A capture the review gave up on (every attempt failed or timed out for 2
hours) may still have taken the money: no Stripe webhook tells Steward about
a capture, so `await_capture_outcome` reads the PaymentIntent (the real
adapter against a local fake Stripe); the simulated provider is asked the
same way. The real activity and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.disputes_stripe import stripe_client
from activities.payments import PaymentActivities
from activities.payments_stripe import StripePaymentProvider
from activities.ports import PortTimeoutError
from activities.simulated import FaultPlan, SimulatedPaymentProvider
from domain.payments import PaymentOperationInput, PaymentOperationKind, PaymentOperationStatus
from store import ledger
from tests.integration.fake_providers import FakeStripe

KEY = "sk_test_late_capture"
AMOUNT = 245_000


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe(KEY).running() as server:
        yield server


def capture_of(intent_id: str, provider: str = "stripe") -> PaymentOperationInput:
    order_id = f"LC-{uuid.uuid4().hex[:10]}"
    return PaymentOperationInput(
        workflow_id=f"order-review:{order_id}",
        operation_id="capture",
        order_id=order_id,
        provider=provider,
        authorisation_ref=intent_id,
        amount_minor=AMOUNT,
        currency="EUR",
    )


def reads(fake: FakeStripe) -> list[str]:
    return [r.path for r in fake.requests if r.method == "GET"]


async def test_a_capture_stripe_took_after_the_give_up_is_booked_once_and_refunded(
    fake: FakeStripe, db_pool: asyncpg.Pool
) -> None:
    intent_id = fake.authorise(AMOUNT, "EUR")
    # Stripe captured; its answer never reached Steward (the attempt timed out).
    fake.intents[intent_id].update(status="succeeded", amount_capturable=0, amount_received=AMOUNT)
    payments = PaymentActivities(
        db_pool, {"stripe": StripePaymentProvider(stripe_client(KEY, fake.url), db_pool)}
    )
    env = ActivityEnvironment()
    capture = capture_of(intent_id)

    found = await env.run(payments.await_capture_outcome, capture)
    assert found.status is PaymentOperationStatus.SUCCEEDED
    assert (found.amount_minor, found.currency) == (AMOUNT, "EUR")
    assert found.provider_reference == fake.intents[intent_id]["latest_charge"]
    booked = await ledger.get(db_pool, capture.idempotency_key)
    assert booked is not None and booked.kind is PaymentOperationKind.CAPTURE
    # Asked again (a retried attempt): the ledger answers, Stripe is read once.
    assert await env.run(payments.await_capture_outcome, capture) == found
    assert reads(fake) == [f"/v1/payment_intents/{intent_id}"]

    # What the review then does: refund exactly that, once (workflows/order_review.py).
    refund = capture.model_copy(update={"operation_id": "late-capture-refund"})
    refunded = await env.run(payments.refund_payment, refund)
    assert refunded.status is PaymentOperationStatus.SUCCEEDED
    totals = await ledger.totals_for_order(db_pool, capture.order_id)
    assert (totals.captured_minor, totals.refunded_minor) == (AMOUNT, AMOUNT)
    (stripe_refund,) = [r for r in fake.refunds.values() if r["payment_intent"] == intent_id]
    assert stripe_refund["amount"] == AMOUNT


async def test_an_authorisation_stripe_never_captured_is_not_taken(
    fake: FakeStripe, db_pool: asyncpg.Pool
) -> None:
    intent_id = fake.authorise(AMOUNT, "EUR")  # still requires_capture
    payments = PaymentActivities(
        db_pool, {"stripe": StripePaymentProvider(stripe_client(KEY, fake.url), db_pool)}
    )
    capture = capture_of(intent_id)
    answer = await ActivityEnvironment().run(payments.await_capture_outcome, capture)
    assert answer.status is PaymentOperationStatus.REFUSED
    assert await ledger.get(db_pool, capture.idempotency_key) is None
    assert reads(fake) == [f"/v1/payment_intents/{intent_id}"]


async def test_a_simulated_capture_whose_answer_was_lost_is_found(db_pool: asyncpg.Pool) -> None:
    # The simulator commits the capture, then the request times out.
    simulator = SimulatedPaymentProvider(db_pool, FaultPlan(faults=["timeout_after_commit"]))
    now = datetime.now(UTC)
    capture = capture_of(f"auth-{uuid.uuid4().hex[:10]}", provider="simulated")
    await simulator.register_authorisation(
        authorisation_ref=capture.authorisation_ref,
        amount_minor=AMOUNT,
        currency="EUR",
        authorised_at=now,
        expires_at=now + timedelta(days=7),
    )
    payments = PaymentActivities(db_pool, {"simulated": simulator})
    env = ActivityEnvironment()
    with pytest.raises(PortTimeoutError):
        await env.run(payments.capture_payment, capture)
    assert await ledger.get(db_pool, capture.idempotency_key) is None

    found = await env.run(payments.await_capture_outcome, capture)
    assert found.status is PaymentOperationStatus.SUCCEEDED and found.amount_minor == AMOUNT
    booked = await ledger.get(db_pool, capture.idempotency_key)
    assert booked is not None and booked.provider_reference == found.provider_reference
    void = capture.model_copy(update={"operation_id": "void"})
    # Never captured under another key: nothing found.
    assert (await env.run(payments.await_capture_outcome, void)).status is (
        PaymentOperationStatus.REFUSED
    )
