"""Adyen's asynchronous modifications, end to end on the real pieces: the
payment activity on a worker (dev server), Adyen's library talking to a local
fake Checkout API (tests/integration/fake_providers.py), which sends its
CAPTURE / CANCELLATION / REFUND notifications, HMAC-signed, to Steward's
webhook served over HTTP; PostgreSQL for the ledger and the modifications.

The activity completes asynchronously: the notification completes it, once,
whatever Adyen redelivers and whenever it arrives (before the answer,
between two attempts, after the give-up)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from Adyen.util import generate_notification_sig
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.payments import PaymentActivities
from activities.payments_adyen import OUTCOME_NOT_RECEIVED, AdyenPaymentProvider, adyen_checkout
from domain.common import Role, StewardModel
from domain.payments import (
    CAPTURE_PAYMENT,
    PAYMENT_REFUSED,
    REFUND_PAYMENT,
    PaymentOperationInput,
    PaymentOperationKind,
    PaymentOperationResult,
)
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import audit, ledger, payment_modifications, payment_outcome_events, refunds_in_flight
from store import tasks as task_store
from store.payment_modifications import ModificationStatus
from tests.integration.fake_providers import FakeAdyen, serve_api
from tests.integration.polling import eventually
from workers.settings import Settings

API_KEY = "AQEyhmfxK4-test-key"
HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
MERCHANT = "MaisonEU"


class PaymentCall(StewardModel):
    activity: str
    operation: PaymentOperationInput
    start_to_close_s: float = 30
    retry_every_s: float = 1


@workflow.defn(sandboxed=False)
class PaymentCallWorkflow:
    """One payment activity with the timeouts a test needs."""

    @workflow.run
    async def run(self, call: PaymentCall) -> PaymentOperationResult:
        return await workflow.execute_activity(
            call.activity,
            call.operation,
            result_type=PaymentOperationResult,
            start_to_close_timeout=timedelta(seconds=call.start_to_close_s),
            schedule_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=call.retry_every_s),
                backoff_coefficient=1.0,
                non_retryable_error_types=[PAYMENT_REFUSED],
            ),
        )


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    return integration_settings.model_copy(
        update={"task_queue": f"adyen-{uuid.uuid4()}", "adyen_hmac_keys": HMAC_KEY}
    )


@pytest_asyncio.fixture(loop_scope="session")
async def adyen(
    client: Client, db_pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[FakeAdyen]:
    """The fake Checkout API, sending its notifications to Steward's webhook."""
    app = create_app(settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping({}))
    with FakeAdyen(API_KEY, HMAC_KEY, MERCHANT).running() as fake:
        async with serve_api(app) as api_url:
            fake.webhook_url = f"{api_url}/v1/webhooks/adyen"
            yield fake


Worker_ = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture
def payment_worker(client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen) -> Worker_:
    @asynccontextmanager
    async def running(outcome_timeout: timedelta = timedelta(hours=24)) -> AsyncIterator[str]:
        provider = AdyenPaymentProvider(
            db_pool,
            adyen_checkout(api_key=API_KEY, environment="test", checkout_url=adyen.url),
            merchant_account=MERCHANT,
            outcome_timeout=outcome_timeout,
        )
        payments = PaymentActivities(db_pool, {provider.name: provider})
        queue = f"adyen-payments-{uuid.uuid4().hex[:8]}"
        async with Worker(
            client,
            task_queue=queue,
            workflows=[PaymentCallWorkflow],
            activities=[payments.capture_payment, payments.refund_payment],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            yield queue

    return running


def operation(
    order_id: str, payment: str, kind: str, amount: int = 245_000
) -> PaymentOperationInput:
    return PaymentOperationInput(
        workflow_id=f"order-review:{order_id}" if kind == "capture" else f"return:RMA-{order_id}",
        operation_id=kind if kind == "capture" else "refund-1",
        order_id=order_id,
        provider="adyen",
        authorisation_ref=payment,
        amount_minor=amount,
        currency="EUR",
    )


async def call(
    client: Client, queue: str, activity: str, op: PaymentOperationInput, **timing: Any
) -> PaymentOperationResult:
    return await client.execute_workflow(
        PaymentCallWorkflow.run,
        PaymentCall(activity=activity, operation=op, **timing),
        id=f"adyen-call-{uuid.uuid4().hex}",
        task_queue=queue,
        execution_timeout=timedelta(seconds=90),
    )


def refusal(failed: pytest.ExceptionInfo[WorkflowFailureError]) -> ApplicationError:
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError), repr(cause)
    return cause


def order_id() -> str:
    return f"AD-{uuid.uuid4().hex[:10]}"


async def test_a_capture_completes_when_its_notification_arrives_and_redelivery_changes_nothing(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    op = operation(order, payment, "capture")
    async with payment_worker() as queue:
        result = await call(client, queue, CAPTURE_PAYMENT, op)

    [sent] = adyen.modifications()
    assert sent.path == f"/v71/payments/{payment}/captures"
    assert sent.headers["idempotency-key"] == op.idempotency_key
    assert sent.body == {
        "merchantAccount": MERCHANT,
        "reference": op.idempotency_key,
        "amount": {"value": 245_000, "currency": "EUR"},
    }
    [delivery] = adyen.state.deliveries
    assert (delivery.status, delivery.text) == (200, "[accepted]")
    capture_psp = delivery.body["notificationItems"][0]["NotificationRequestItem"]["pspReference"]
    assert result.provider_reference == capture_psp
    assert result.kind is PaymentOperationKind.CAPTURE
    assert result.idempotency_key == op.idempotency_key

    rows = await ledger.list_for_order(db_pool, order)
    assert [(r.kind, r.amount_minor, r.provider_reference) for r in rows] == [
        (PaymentOperationKind.CAPTURE, 245_000, capture_psp)
    ]
    recorded = await payment_modifications.get(db_pool, "adyen", capture_psp)
    assert recorded is not None and recorded.status is ModificationStatus.SUCCEEDED

    # Adyen redelivers (it did not see our answer): acknowledged, nothing changes.
    again = await asyncio.to_thread(adyen.deliver, delivery.body)
    assert (again.status, again.text) == (200, "[accepted]")
    assert await ledger.list_for_order(db_pool, order) == rows
    assert await payment_modifications.get(db_pool, "adyen", capture_psp) == recorded


async def test_a_refused_refund_fails_with_adyens_reason_and_moves_nothing(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    async with payment_worker() as queue:
        await call(client, queue, CAPTURE_PAYMENT, operation(order, payment, "capture"))
        adyen.fail_next["REFUND"] = "Transaction not permitted"
        with pytest.raises(WorkflowFailureError) as failed:
            await call(client, queue, REFUND_PAYMENT, operation(order, payment, "refund", 100_000))

    error = refusal(failed)
    assert error.type == PAYMENT_REFUSED
    assert error.non_retryable
    assert error.details == ("Transaction not permitted",)
    assert "Transaction not permitted" in error.message
    totals = await ledger.totals_for_order(db_pool, order)
    assert (totals.captured_minor, totals.refunded_minor) == (245_000, 0)
    # No money moved: the refund no longer counts as in flight.
    assert await refunds_in_flight.list_for_order(db_pool, order) == []


async def test_an_outcome_overtaking_the_answer_is_kept_for_the_activity(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    adyen.mode = "before_answer"
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    async with payment_worker() as queue:
        result = await call(client, queue, CAPTURE_PAYMENT, operation(order, payment, "capture"))

    [delivery] = adyen.state.deliveries
    assert delivery.status == 200
    capture_psp = delivery.body["notificationItems"][0]["NotificationRequestItem"]["pspReference"]
    assert result.provider_reference == capture_psp
    rows = await ledger.list_for_order(db_pool, order)
    assert [(r.kind, r.provider_reference) for r in rows] == [
        (PaymentOperationKind.CAPTURE, capture_psp)
    ]
    recorded = await payment_modifications.get(db_pool, "adyen", capture_psp)
    assert recorded is not None
    assert recorded.idempotency_key == f"order-review:{order}/capture"
    assert recorded.status is ModificationStatus.SUCCEEDED


async def test_an_outcome_between_two_attempts_is_read_by_the_next_which_sends_nothing_again(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    adyen.mode = "hold"
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    op = operation(order, payment, "capture")
    async with payment_worker() as queue:
        running = asyncio.create_task(
            call(client, queue, CAPTURE_PAYMENT, op, start_to_close_s=2, retry_every_s=5)
        )
        waiting = await eventually(
            lambda: payment_modifications.by_key(db_pool, "adyen", op.idempotency_key),
            lambda row: row is not None and row.task_token is not None,
            what="the first attempt to wait",
        )
        # The first attempt times out (2 s); the notification comes before
        # the second starts (5 s later): nobody waits for it.
        await asyncio.sleep(2.5)
        [delivery] = await asyncio.to_thread(adyen.release)
        assert delivery.status == 200
        result = await running

    assert waiting is not None
    assert result.provider_reference == waiting.psp_reference
    assert len(adyen.modifications()) == 1  # the second attempt sent nothing
    rows = await ledger.list_for_order(db_pool, order)
    assert [(r.kind, r.provider_reference) for r in rows] == [
        (PaymentOperationKind.CAPTURE, waiting.psp_reference)
    ]


async def test_no_notification_in_time_is_refused_for_a_person_and_a_late_one_still_books(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    adyen.mode = "hold"
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    op = operation(order, payment, "capture")
    async with payment_worker(outcome_timeout=timedelta(seconds=1)) as queue:
        with pytest.raises(WorkflowFailureError) as failed:
            await call(client, queue, CAPTURE_PAYMENT, op, start_to_close_s=2, retry_every_s=1)

    error = refusal(failed)
    assert error.type == PAYMENT_REFUSED
    assert error.details == (OUTCOME_NOT_RECEIVED,)
    assert "Customer Area" in error.message
    assert len(adyen.modifications()) == 1
    assert await ledger.list_for_order(db_pool, order) == []

    # The capture did happen: when its notification finally comes, the
    # ledger records it (the money moved), though nobody waits any more.
    [delivery] = await asyncio.to_thread(adyen.release)
    assert delivery.status == 200
    rows = await ledger.list_for_order(db_pool, order)
    assert [(r.kind, r.amount_minor) for r in rows] == [(PaymentOperationKind.CAPTURE, 245_000)]


# -- what Adyen reports after (or instead of) the first outcome ------------------


def notification(body: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = body["notificationItems"][0]["NotificationRequestItem"]
    return item


def follow_up(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Another notification about the same modification (CAPTURE_FAILED...),
    signed with the webhook's HMAC key as Adyen signs it."""
    item = {k: v for k, v in notification(body).items() if k != "additionalData"}
    item.update(fields)
    item["additionalData"] = {"hmacSignature": generate_notification_sig(item, HMAC_KEY).decode()}
    return {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}


async def test_a_capture_failed_while_the_review_waits_is_a_refused_capture(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    adyen.mode = "hold"
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    op = operation(order, payment, "capture")
    async with payment_worker() as queue:
        running = asyncio.create_task(call(client, queue, CAPTURE_PAYMENT, op))
        await eventually(
            lambda: payment_modifications.by_key(db_pool, "adyen", op.idempotency_key),
            lambda row: row is not None and row.task_token is not None,
            what="the capture to wait",
        )
        [held] = adyen.state.held
        adyen.state.held = []
        failed_after_all = follow_up(held, eventCode="CAPTURE_FAILED", reason="Capture declined")
        delivery = await asyncio.to_thread(adyen.deliver, failed_after_all)
        assert (delivery.status, delivery.text) == (200, "[accepted]")
        with pytest.raises(WorkflowFailureError) as failed:
            await running

    error = refusal(failed)
    assert error.type == PAYMENT_REFUSED
    assert error.details == ("Capture declined",)
    assert await ledger.list_for_order(db_pool, order) == []
    # The CAPTURE that Adyen sent before (delivered late) conflicts and books nothing.
    late = await asyncio.to_thread(adyen.deliver, held)
    assert late.status == 200
    assert await ledger.list_for_order(db_pool, order) == []


async def test_a_capture_failed_after_its_success_reverses_the_ledger_for_finance_once(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    op = operation(order, payment, "capture")
    async with payment_worker() as queue:
        await call(client, queue, CAPTURE_PAYMENT, op)
    [delivery] = adyen.state.deliveries
    capture_psp = notification(delivery.body)["pspReference"]

    failed_after_all = follow_up(
        delivery.body, eventCode="CAPTURE_FAILED", reason="Rejected by the card scheme"
    )
    for _ in range(2):  # Adyen redelivers: one reversal, one task
        answer = await asyncio.to_thread(adyen.deliver, failed_after_all)
        assert (answer.status, answer.text) == (200, "[accepted]")

    # The capture row stays (its key is never reused); the totals leave it out.
    [row] = await ledger.list_for_order(db_pool, order)
    assert (row.kind, row.provider_reference) == (PaymentOperationKind.CAPTURE, capture_psp)
    totals = await ledger.totals_for_order(db_pool, order)
    assert totals.captured_minor == 0
    assert await payment_outcome_events.reversed_keys(db_pool, order) == {
        op.idempotency_key: "capture_failed"
    }
    [task] = [t for t in await task_store.list_for_workflow(db_pool, op.workflow_id)]
    assert task.awaited_role is Role.FINANCE
    assert task.kind == "capture_reversed"
    assert "Rejected by the card scheme" in task.title
    assert task.closed_at is None
    [entry] = await audit.list_by_workflow(db_pool, op.workflow_id)
    assert (entry.action, entry.actor) == ("capture_reversed", "adyen")
    [event] = await payment_outcome_events.list_for_order(db_pool, order)
    assert (event.event_code, event.effect) == ("CAPTURE_FAILED", "capture_reversed")


async def test_refunded_reversed_takes_the_refund_out_of_the_ledger_and_tells_finance(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    refund_op = operation(order, payment, "refund", 100_000)
    async with payment_worker() as queue:
        await call(client, queue, CAPTURE_PAYMENT, operation(order, payment, "capture"))
        await call(client, queue, REFUND_PAYMENT, refund_op)
    refund_body = adyen.state.deliveries[-1].body
    assert notification(refund_body)["eventCode"] == "REFUND"
    totals = await ledger.totals_for_order(db_pool, order)
    assert (totals.captured_minor, totals.refunded_minor) == (245_000, 100_000)

    came_back = follow_up(refund_body, eventCode="REFUNDED_REVERSED", reason="")
    for _ in range(2):
        answer = await asyncio.to_thread(adyen.deliver, came_back)
        assert (answer.status, answer.text) == (200, "[accepted]")

    totals = await ledger.totals_for_order(db_pool, order)
    assert (totals.captured_minor, totals.refunded_minor) == (245_000, 0)
    assert await payment_outcome_events.reversed_keys(db_pool, order) == {
        refund_op.idempotency_key: "refunded_reversed"
    }
    [task] = await task_store.list_for_workflow(db_pool, refund_op.workflow_id)
    assert (task.kind, task.awaited_role) == ("refund_reversed", Role.FINANCE)
    assert "customer was not refunded" in task.title

    # A REFUND_FAILED for the same refund afterwards reverses nothing twice.
    failed = follow_up(refund_body, eventCode="REFUND_FAILED", reason="Account closed")
    assert (await asyncio.to_thread(adyen.deliver, failed)).status == 200
    assert (await ledger.totals_for_order(db_pool, order)).refunded_minor == 0
    assert len(await payment_outcome_events.reversed_keys(db_pool, order)) == 1


async def test_a_refund_failed_while_the_return_waits_is_a_refused_refund(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    refund_op = operation(order, payment, "refund", 100_000)
    async with payment_worker() as queue:
        await call(client, queue, CAPTURE_PAYMENT, operation(order, payment, "capture"))
        adyen.mode = "hold"
        running = asyncio.create_task(call(client, queue, REFUND_PAYMENT, refund_op))
        await eventually(
            lambda: payment_modifications.by_key(db_pool, "adyen", refund_op.idempotency_key),
            lambda row: row is not None and row.task_token is not None,
            what="the refund to wait",
        )
        [held] = adyen.state.held
        adyen.state.held = []
        failed = follow_up(held, eventCode="REFUND_FAILED", reason="")
        assert (await asyncio.to_thread(adyen.deliver, failed)).status == 200
        with pytest.raises(WorkflowFailureError) as refused:
            await running

    error = refusal(refused)
    assert error.type == PAYMENT_REFUSED
    assert error.details == ("refund_failed",)
    totals = await ledger.totals_for_order(db_pool, order)
    assert (totals.captured_minor, totals.refunded_minor) == (245_000, 0)
    assert await refunds_in_flight.list_for_order(db_pool, order) == []


async def test_a_notified_amount_that_is_not_the_requested_one_is_not_a_success(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    adyen.mode = "hold"
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    op = operation(order, payment, "capture")
    async with payment_worker() as queue:
        running = asyncio.create_task(call(client, queue, CAPTURE_PAYMENT, op))
        await eventually(
            lambda: payment_modifications.by_key(db_pool, "adyen", op.idempotency_key),
            lambda row: row is not None and row.task_token is not None,
            what="the capture to wait",
        )
        [held] = adyen.state.held
        adyen.state.held = []
        other = follow_up(held, amount={"currency": "EUR", "value": 24_500})
        assert (await asyncio.to_thread(adyen.deliver, other)).status == 200
        with pytest.raises(WorkflowFailureError) as failed:
            await running

    error = refusal(failed)
    assert error.type == PAYMENT_REFUSED
    [detail] = error.details
    assert detail.startswith("amount_mismatch: notified 24500 EUR, requested 245000 EUR")
    assert await ledger.list_for_order(db_pool, order) == []
    [event] = await payment_outcome_events.list_for_order(db_pool, order)
    assert (event.event_code, event.effect) == ("CAPTURE", "amount_mismatch")
    [task] = await task_store.list_for_workflow(db_pool, op.workflow_id)
    assert (task.kind, task.awaited_role) == ("amount_mismatch", Role.FINANCE)
    # Another currency is a mismatch too (the unit test covers the reading).


async def test_an_overtaking_outcome_with_another_amount_is_not_a_success_either(
    client: Client, db_pool: asyncpg.Pool, adyen: FakeAdyen, payment_worker: Worker_
) -> None:
    adyen.mode = "before_answer"
    adyen.notify_value_next["CAPTURE"] = 200_000
    order = order_id()
    payment = adyen.authorise(245_000, "EUR")
    op = operation(order, payment, "capture")
    async with payment_worker() as queue:
        with pytest.raises(WorkflowFailureError) as failed:
            await call(client, queue, CAPTURE_PAYMENT, op)

    error = refusal(failed)
    assert error.type == PAYMENT_REFUSED
    [detail] = error.details
    assert detail.startswith("amount_mismatch: notified 200000 EUR, requested 245000 EUR")
    assert await ledger.list_for_order(db_pool, order) == []
    [event] = await payment_outcome_events.list_for_order(db_pool, order)
    assert (event.event_code, event.effect) == ("CAPTURE", "amount_mismatch")
    [task] = await task_store.list_for_workflow(db_pool, op.workflow_id)
    assert (task.kind, task.awaited_role) == ("amount_mismatch", Role.FINANCE)
    row = await payment_modifications.by_key(db_pool, "adyen", op.idempotency_key)
    assert row is not None and row.status is ModificationStatus.REFUSED
