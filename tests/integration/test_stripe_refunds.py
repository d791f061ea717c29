"""Stripe refunds as Stripe really answers them: `pending` first, the final
status later by webhook (`refund.updated`, `charge.refund.updated`,
`refund.failed`).

The real pieces: the refund activity on a worker (dev server) with the Stripe
adapter on Stripe's library, talking to a local fake Stripe API
(tests/integration/fake_providers.py); Steward's webhook receiving the
events signed as Stripe signs them; PostgreSQL for the ledger, the refunds in
flight and the modifications waiting for their outcome.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.disputes_stripe import stripe_client
from activities.payments import PaymentActivities
from activities.payments_stripe import StripePaymentProvider
from domain.common import Role
from domain.payments import (
    CAPTURE_PAYMENT,
    PAYMENT_REFUSED,
    REFUND_EXCEEDS_CAPTURE,
    REFUND_PAYMENT,
    PaymentOperationInput,
    PaymentOperationKind,
    PaymentOperationResult,
)
from domain.webhook_signatures import stripe_signature_header
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import ledger, payment_modifications, payment_outcome_events, refunds_in_flight
from store import tasks as task_store
from store.payment_modifications import ModificationStatus
from tests.integration.fake_providers import FakeStripe
from tests.integration.polling import eventually
from tests.integration.test_adyen_modifications import PaymentCall, PaymentCallWorkflow, refusal
from workers.settings import Settings

STRIPE_KEY = "sk_test_51StewardRefunds"
SECRET = "whsec_steward_refunds"
PRICE = 245_000


@pytest_asyncio.fixture(loop_scope="session")
async def stripe_fake() -> AsyncIterator[FakeStripe]:
    with FakeStripe(STRIPE_KEY).running() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def webhook(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    settings = integration_settings.model_copy(update={"stripe_webhook_secrets": SECRET})
    app = create_app(settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping({}))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
        yield http


@pytest_asyncio.fixture(loop_scope="session")
async def queue(
    client: Client, db_pool: asyncpg.Pool, stripe_fake: FakeStripe
) -> AsyncIterator[str]:
    provider = StripePaymentProvider(stripe_client(STRIPE_KEY, stripe_fake.url), db_pool)
    payments = PaymentActivities(db_pool, {provider.name: provider})
    name = f"stripe-refunds-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=name,
        workflows=[PaymentCallWorkflow],
        activities=[payments.capture_payment, payments.refund_payment],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield name


def operation(order_id: str, intent: str, operation_id: str, amount: int) -> PaymentOperationInput:
    return PaymentOperationInput(
        workflow_id=f"order-review:{order_id}"
        if operation_id == "capture"
        else f"return:RMA-{order_id}",
        operation_id=operation_id,
        order_id=order_id,
        provider="stripe",
        authorisation_ref=intent,
        amount_minor=amount,
        currency="EUR",
    )


async def call(
    client: Client, queue: str, activity: str, op: PaymentOperationInput
) -> PaymentOperationResult:
    return await client.execute_workflow(
        PaymentCallWorkflow.run,
        PaymentCall(activity=activity, operation=op),
        id=f"stripe-call-{uuid.uuid4().hex}",
        task_queue=queue,
    )


async def captured(client: Client, queue: str, fake: FakeStripe) -> tuple[str, str]:
    order = f"ST-{uuid.uuid4().hex[:10]}"
    intent = fake.authorise(PRICE, "EUR")
    await call(client, queue, CAPTURE_PAYMENT, operation(order, intent, "capture", PRICE))
    return order, intent


async def post(webhook: httpx.AsyncClient, event: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(event).encode()
    answer = await webhook.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={
            "Stripe-Signature": stripe_signature_header(SECRET, int(time.time()), body),
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def pending_refund(
    client: Client,
    queue: str,
    fake: FakeStripe,
    db_pool: asyncpg.Pool,
    op: PaymentOperationInput,
) -> tuple[asyncio.Task[PaymentOperationResult], str]:
    """The refund, answered `pending`, waiting for its webhook."""
    fake.refund_status = "pending"
    try:
        running = asyncio.create_task(call(client, queue, REFUND_PAYMENT, op))
        row = await eventually(
            lambda: payment_modifications.by_key(db_pool, "stripe", op.idempotency_key),
            lambda row: row is not None and row.task_token is not None,
            what="the pending refund to wait",
        )
    finally:
        fake.refund_status = "succeeded"
    assert row is not None and row.status is ModificationStatus.PENDING
    return running, row.psp_reference


async def test_a_pending_refund_waits_for_its_final_status_and_books_once(
    client: Client,
    db_pool: asyncpg.Pool,
    stripe_fake: FakeStripe,
    queue: str,
    webhook: httpx.AsyncClient,
) -> None:
    order, intent = await captured(client, queue, stripe_fake)
    op = operation(order, intent, "refund-1", 100_000)
    running, refund_id = await pending_refund(client, queue, stripe_fake, db_pool, op)

    # Pending: not done, not in the ledger, still counted as money going back.
    await asyncio.sleep(0.5)
    assert not running.done()
    assert await ledger.get(db_pool, op.idempotency_key) is None
    [in_flight] = await refunds_in_flight.list_for_order(db_pool, order)
    assert in_flight.idempotency_key == op.idempotency_key
    totals = await ledger.totals_for_order(db_pool, order)
    assert (totals.refunded_minor, totals.refund_pending_minor) == (0, 100_000)
    # An update that is not final yet changes nothing.
    not_yet = await post(webhook, stripe_fake.refund_event(refund_id, "pending"))
    assert (not_yet["delivered"], not_yet["ignored"]) == (0, 1)

    answer = await post(webhook, stripe_fake.refund_event(refund_id, "succeeded"))
    assert (answer["delivered"], answer["workflow_ids"]) == (1, [op.workflow_id])
    result = await running
    assert (result.kind, result.provider_reference) == (PaymentOperationKind.REFUND, refund_id)

    # The older twin of the same change, then a redelivery: nothing more.
    for event_type in ("charge.refund.updated", "refund.updated"):
        again = await post(
            webhook, stripe_fake.refund_event(refund_id, "succeeded", event_type=event_type)
        )
        assert again["delivered"] == 0
    [row] = [r for r in await ledger.list_for_order(db_pool, order) if r.kind == "refund"]
    assert (row.amount_minor, row.provider_reference) == (100_000, refund_id)
    assert await refunds_in_flight.list_for_order(db_pool, order) == []
    totals = await ledger.totals_for_order(db_pool, order)
    assert (totals.refunded_minor, totals.refund_pending_minor) == (100_000, 0)
    assert len([r for r in stripe_fake.requests if r.path == "/v1/refunds"]) == 1


async def test_a_pending_refund_that_fails_is_refused_and_only_then_may_be_tried_again(
    client: Client,
    db_pool: asyncpg.Pool,
    stripe_fake: FakeStripe,
    queue: str,
    webhook: httpx.AsyncClient,
) -> None:
    order, intent = await captured(client, queue, stripe_fake)
    first = operation(order, intent, "refund-1", PRICE)
    running, refund_id = await pending_refund(client, queue, stripe_fake, db_pool, first)

    # While the first may still pay the customer, a second refund under a
    # new key cannot take the same money.
    second = operation(order, intent, "refund-2", PRICE)
    with pytest.raises(WorkflowFailureError) as too_much:
        await call(client, queue, REFUND_PAYMENT, second)
    assert refusal(too_much).type == REFUND_EXCEEDS_CAPTURE

    failed = stripe_fake.refund_event(
        refund_id, "failed", event_type="refund.failed", failure_reason="expired_or_canceled_card"
    )
    assert (await post(webhook, failed))["delivered"] == 1
    with pytest.raises(WorkflowFailureError) as refused:
        await running
    error = refusal(refused)
    assert error.type == PAYMENT_REFUSED
    assert error.details == ("expired_or_canceled_card",)
    assert await ledger.get(db_pool, first.idempotency_key) is None
    assert await refunds_in_flight.list_for_order(db_pool, order) == []

    # The failure is final: the same key is refused again without asking
    # Stripe, and a new key may now refund.
    sent = len(stripe_fake.requests)
    with pytest.raises(WorkflowFailureError):
        await call(client, queue, REFUND_PAYMENT, first)
    assert [r.path for r in stripe_fake.requests[sent:]] == []
    result = await call(client, queue, REFUND_PAYMENT, second)
    assert result.amount_minor == PRICE
    totals = await ledger.totals_for_order(db_pool, order)
    assert (totals.captured_minor, totals.refunded_minor) == (PRICE, PRICE)


async def test_a_confirmed_refund_that_fails_later_is_reversed_for_finance(
    client: Client,
    db_pool: asyncpg.Pool,
    stripe_fake: FakeStripe,
    queue: str,
    webhook: httpx.AsyncClient,
) -> None:
    order, intent = await captured(client, queue, stripe_fake)
    op = operation(order, intent, "refund-1", 100_000)
    result = await call(client, queue, REFUND_PAYMENT, op)  # succeeded at once
    refund_id = result.provider_reference

    failed = stripe_fake.refund_event(
        refund_id, "failed", event_type="refund.failed", failure_reason="lost_or_stolen_card"
    )
    for _ in range(2):  # Stripe retries a delivery it did not see answered
        await post(webhook, failed)
    twin = stripe_fake.refund_event(
        refund_id,
        "failed",
        event_type="charge.refund.updated",
        failure_reason="lost_or_stolen_card",
    )
    await post(webhook, twin)

    totals = await ledger.totals_for_order(db_pool, order)
    assert (totals.captured_minor, totals.refunded_minor) == (PRICE, 0)
    assert await payment_outcome_events.reversed_keys(db_pool, order) == {
        op.idempotency_key: "refund_failed"
    }
    [task] = await task_store.list_for_workflow(db_pool, op.workflow_id)
    assert (task.kind, task.awaited_role) == ("refund_reversed", Role.FINANCE)
    assert "lost_or_stolen_card" in task.title


async def test_a_refund_steward_did_not_make_is_recorded_as_ignored(
    stripe_fake: FakeStripe, webhook: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    intent = stripe_fake.authorise(PRICE, "EUR")
    refund_id = f"re_{uuid.uuid4().hex[:24]}"
    stripe_fake.refunds[refund_id] = {
        "id": refund_id,
        "object": "refund",
        "amount": 1_000,
        "currency": "eur",
        "metadata": {},
        "payment_intent": intent,
        "status": "pending",
    }
    answer = await post(webhook, stripe_fake.refund_event(refund_id, "succeeded"))
    assert (answer["delivered"], answer["ignored"]) == (0, 1)
    ignored = await db_pool.fetchval(
        "SELECT reason FROM ignored_webhook_events WHERE object_ref = $1", refund_id
    )
    assert ignored is not None and "not a refund Steward made" in ignored


async def test_a_refund_booked_after_an_early_event_is_still_reversed_when_it_fails(
    stripe_fake: FakeStripe, webhook: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    # Stripe's event about a refund confirmed at once can reach the webhook
    # before the activity booked it: kept as an early outcome. Once booked,
    # a later failure must still reverse the booked row.
    order = f"ST-{uuid.uuid4().hex[:10]}"
    intent = stripe_fake.authorise(PRICE, "EUR")
    op = operation(order, intent, "refund-1", 100_000)
    refund_id = f"re_{uuid.uuid4().hex[:24]}"
    stripe_fake.refunds[refund_id] = {
        "id": refund_id,
        "object": "refund",
        "amount": 100_000,
        "currency": "eur",
        "metadata": {"steward_idempotency_key": op.idempotency_key},
        "payment_intent": intent,
        "status": "succeeded",
    }
    early = await post(webhook, stripe_fake.refund_event(refund_id, "succeeded"))
    assert early["delivered"] == 0
    for kind, key, amount, reference in (
        (PaymentOperationKind.CAPTURE, f"order-review:{order}/capture", PRICE, f"ch_{order}"),
        (PaymentOperationKind.REFUND, op.idempotency_key, 100_000, refund_id),
    ):
        await ledger.record(
            db_pool,
            idempotency_key=key,
            workflow_id=key.split("/")[0],
            order_id=order,
            kind=kind,
            amount_minor=amount,
            currency="EUR",
            provider="stripe",
            provider_reference=reference,
        )

    failed = stripe_fake.refund_event(
        refund_id,
        "failed",
        event_type="refund.failed",
        failure_reason="charge_for_pending_refund_disputed",
    )
    assert (await post(webhook, failed))["delivered"] == 1
    totals = await ledger.totals_for_order(db_pool, order)
    assert (totals.captured_minor, totals.refunded_minor) == (PRICE, 0)
    [task] = await task_store.list_for_workflow(db_pool, op.workflow_id)
    assert task.kind == "refund_reversed"
