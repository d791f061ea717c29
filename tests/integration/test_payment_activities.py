"""Money movements through the simulated provider: idempotency under faults,
business refusals, and the ledger. Plus the warehouse and email ports, which
follow the same contract."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio import workflow
from temporalio.activity import _Definition
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.notifications import NotificationActivities
from activities.payments import PaymentActivities
from activities.ports import PortTimeoutError, PortUnavailableError
from activities.simulated import (
    FaultPlan,
    SimulatedNotifier,
    SimulatedPaymentProvider,
    SimulatedWarehouse,
)
from activities.warehouse import RELEASE_REJECTED, WarehouseActivities
from domain.notifications import CustomerTemplate, NotifyCustomerInput
from domain.orders import Order
from domain.payments import (
    CAPTURE_PAYMENT,
    IDEMPOTENCY_KEY_REUSED,
    PAYMENT_REFUSED,
    PROVIDER_RATE_LIMITED,
    REFUND_EXCEEDS_CAPTURE,
    UNKNOWN_PAYMENT_PROVIDER,
    PaymentOperationInput,
    PaymentOperationKind,
    PaymentOperationResult,
)
from domain.warehouse import ReleaseItem, ReleaseOrderInput
from store import ledger
from store import simulated as sim
from tests.factories import make_order
from workers.activities import build_activities
from workers.settings import Settings


class World:
    """A simulated provider with a scripted fault queue, and the activities on it."""

    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], datetime] | None = None) -> None:
        self.pool = pool
        self.plan = FaultPlan(retry_after=timedelta(milliseconds=200))
        self.provider = SimulatedPaymentProvider(
            pool, self.plan, clock=clock or (lambda: datetime.now(UTC))
        )
        self.payments = PaymentActivities(pool, {"simulated": self.provider})
        self.env = ActivityEnvironment()

    async def authorise(self, order: Order) -> None:
        await self.provider.register_authorisation(
            authorisation_ref=order.payment.authorisation_ref,
            amount_minor=order.payment.amount_minor,
            currency=order.payment.currency,
            authorised_at=order.payment.authorised_at,
            expires_at=order.payment.authorisation_expires_at,
        )

    async def run(
        self, fn: Callable[..., Any], op: PaymentOperationInput
    ) -> PaymentOperationResult:
        result: PaymentOperationResult = await self.env.run(fn, op)
        return result

    async def operations(self, order: Order) -> list[sim.SimOperation]:
        return await sim.list_operations(self.pool, order.payment.authorisation_ref)


def op(order: Order, operation_id: str, amount_minor: int | None = None) -> PaymentOperationInput:
    return PaymentOperationInput(
        workflow_id=f"order-review:{order.order_id}",
        operation_id=operation_id,
        order_id=order.order_id,
        provider=order.payment.provider,
        authorisation_ref=order.payment.authorisation_ref,
        amount_minor=order.payment.amount_minor if amount_minor is None else amount_minor,
        currency=order.currency,
    )


@pytest.fixture
async def world(clean_db: asyncpg.Pool) -> World:
    return World(clean_db)


# -- capture under faults ----------------------------------------------------------


async def test_timeout_after_commit_then_retry_captures_once(world: World) -> None:
    order = make_order("FR-1001")
    await world.authorise(order)
    world.plan.script("timeout_after_commit")
    capture = op(order, "capture")

    with pytest.raises(PortTimeoutError):
        await world.run(world.payments.capture_payment, capture)
    # The provider captured; Steward does not know yet and has no ledger row.
    assert len(await world.operations(order)) == 1
    assert await ledger.get(world.pool, capture.idempotency_key) is None

    result = await world.run(world.payments.capture_payment, capture)
    again = await world.run(world.payments.capture_payment, capture)

    ops = await world.operations(order)
    rows = await ledger.list_for_order(world.pool, order.order_id)
    assert len(ops) == 1 and len(rows) == 1
    assert result.provider_reference == ops[0].provider_reference == rows[0].provider_reference
    assert again == result
    assert result.kind is PaymentOperationKind.CAPTURE
    assert result.idempotency_key == "order-review:FR-1001/capture"
    assert (result.amount_minor, result.currency) == (245_000, "EUR")
    auth = await sim.get_authorisation(world.pool, order.payment.authorisation_ref)
    assert auth is not None and auth.captured_minor == 245_000 and auth.status == "captured"


async def test_concurrent_requests_with_one_key_capture_once(world: World) -> None:
    # Two captures with the same key race for the authorisation's lock; the
    # loser must answer with the winner's reference, not fail or capture again.
    order = make_order("FR-1002")
    await world.authorise(order)
    key = f"order-review:{order.order_id}/capture"
    references = await asyncio.gather(
        *(
            world.provider.capture(
                idempotency_key=key,
                authorisation_ref=order.payment.authorisation_ref,
                amount_minor=order.payment.amount_minor,
                currency=order.currency,
            )
            for _ in range(4)
        )
    )
    ops = await world.operations(order)
    assert len(ops) == 1
    assert set(references) == {ops[0].provider_reference}
    auth = await sim.get_authorisation(world.pool, order.payment.authorisation_ref)
    assert auth is not None and auth.captured_minor == order.payment.amount_minor


async def test_http_500_fails_before_any_effect_then_succeeds(world: World) -> None:
    order = make_order("FR-1002")
    await world.authorise(order)
    world.plan.script("http_500")
    with pytest.raises(PortUnavailableError) as failed:
        await world.run(world.payments.capture_payment, op(order, "capture"))
    # A plain exception: Temporal retries it.
    assert not isinstance(failed.value, ApplicationError)
    assert await world.operations(order) == []

    result = await world.run(world.payments.capture_payment, op(order, "capture"))
    assert [o.provider_reference for o in await world.operations(order)] == [
        result.provider_reference
    ]


async def test_http_429_is_retryable_after_the_providers_delay(world: World) -> None:
    order = make_order("FR-1003")
    await world.authorise(order)
    world.plan.script("http_429")
    with pytest.raises(ApplicationError) as limited:
        await world.run(world.payments.capture_payment, op(order, "capture"))
    assert limited.value.type == PROVIDER_RATE_LIMITED
    assert limited.value.non_retryable is False
    assert limited.value.next_retry_delay == timedelta(milliseconds=200)
    assert await world.operations(order) == []
    await world.run(world.payments.capture_payment, op(order, "capture"))
    assert len(await world.operations(order)) == 1


async def test_timeout_before_commit_does_nothing(world: World) -> None:
    order = make_order("FR-1004")
    await world.authorise(order)
    world.plan.script("timeout_before_commit")
    with pytest.raises(PortTimeoutError):
        await world.run(world.payments.capture_payment, op(order, "capture"))
    assert await world.operations(order) == []


async def test_random_failures_never_move_money_twice(clean_db: asyncpg.Pool) -> None:
    world = World(clean_db)
    world.plan = FaultPlan(failure_rate=0.5, seed=7, retry_after=timedelta(0))
    world.provider.plan = world.plan
    order = make_order("FR-1005")
    await world.authorise(order)
    attempts = 0
    while True:
        attempts += 1
        try:
            await world.run(world.payments.capture_payment, op(order, "capture"))
            break
        except (PortTimeoutError, PortUnavailableError, ApplicationError) as exc:
            assert not getattr(exc, "non_retryable", False)
        assert attempts < 50
    assert len(await world.operations(order)) == 1
    assert len(await ledger.list_for_order(clean_db, order.order_id)) == 1


# -- business refusals -------------------------------------------------------------


async def refused(
    world: World, fn: Callable[..., Any], payment: PaymentOperationInput
) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await world.run(fn, payment)
    assert caught.value.non_retryable is True
    return caught.value


async def test_capture_above_the_authorised_amount_is_refused(world: World) -> None:
    order = make_order("FR-1101")
    await world.authorise(order)
    error = await refused(world, world.payments.capture_payment, op(order, "capture", 245_001))
    assert error.type == PAYMENT_REFUSED
    assert error.details == ("amount_exceeds_authorisation",)
    assert await world.operations(order) == []
    assert await ledger.list_for_order(world.pool, order.order_id) == []


async def test_capture_of_an_unknown_authorisation_is_refused(world: World) -> None:
    error = await refused(
        world, world.payments.capture_payment, op(make_order("FR-1102"), "capture")
    )
    assert error.details == ("unknown_authorisation",)


async def test_capture_of_an_expired_authorisation_is_refused(clean_db: asyncpg.Pool) -> None:
    order = make_order("FR-1103")
    eight_days_later = order.payment.authorised_at + timedelta(days=8)
    world = World(clean_db, clock=lambda: eight_days_later)
    await world.authorise(order)
    error = await refused(world, world.payments.capture_payment, op(order, "capture"))
    assert error.details == ("authorisation_expired",)
    auth = await sim.get_authorisation(clean_db, order.payment.authorisation_ref)
    assert auth is not None and auth.status == "expired"  # the provider remembers
    error = await refused(world, world.payments.void_authorisation, op(order, "void"))
    assert error.details == ("authorisation_expired",)


async def test_void_then_capture_and_second_void_are_refused(world: World) -> None:
    order = make_order("FR-1104")
    await world.authorise(order)
    voided = await world.run(world.payments.void_authorisation, op(order, "void"))
    assert voided.kind is PaymentOperationKind.VOID
    # Retrying the same void is not a second void: same answer.
    assert await world.run(world.payments.void_authorisation, op(order, "void")) == voided
    error = await refused(world, world.payments.capture_payment, op(order, "capture"))
    assert error.details == ("authorisation_voided",)
    error = await refused(world, world.payments.void_authorisation, op(order, "void-2"))
    assert error.details == ("already_voided",)
    totals = await ledger.totals_for_order(world.pool, order.order_id)
    assert totals.voided and totals.captured_minor == 0


async def test_void_after_capture_is_refused(world: World) -> None:
    order = make_order("FR-1105")
    await world.authorise(order)
    await world.run(world.payments.capture_payment, op(order, "capture"))
    error = await refused(world, world.payments.void_authorisation, op(order, "void"))
    assert error.details == ("already_captured",)


async def test_refunds_up_to_the_captured_amount(world: World) -> None:
    order = make_order("FR-1106")
    await world.authorise(order)
    await world.run(world.payments.capture_payment, op(order, "capture", 200_000))
    first = await world.run(world.payments.refund_payment, op(order, "refund-1", 150_000))
    # The retried refund is answered from the ledger; it is not a second refund.
    assert await world.run(world.payments.refund_payment, op(order, "refund-1", 150_000)) == first

    error = await refused(world, world.payments.refund_payment, op(order, "refund-2", 50_001))
    assert error.type == REFUND_EXCEEDS_CAPTURE
    # Refused by the ledger before the provider was asked.
    assert [o.kind for o in await world.operations(order)] == ["capture", "refund"]

    await world.run(world.payments.refund_payment, op(order, "refund-2", 50_000))
    totals = await ledger.totals_for_order(world.pool, order.order_id)
    assert (totals.captured_minor, totals.refunded_minor) == (200_000, 200_000)


async def test_provider_refuses_what_the_ledger_wrongly_allows(world: World) -> None:
    # Defence in depth: should the ledger ever claim a capture the provider
    # never made, the provider still refuses the refund.
    order = make_order("FR-1107")
    await world.authorise(order)
    await ledger.record(
        world.pool,
        idempotency_key=f"order-review:{order.order_id}/capture",
        workflow_id=f"order-review:{order.order_id}",
        order_id=order.order_id,
        kind=PaymentOperationKind.CAPTURE,
        amount_minor=245_000,
        currency="EUR",
        provider="simulated",
        provider_reference="sim_capture_ghost",
    )
    error = await refused(world, world.payments.refund_payment, op(order, "refund-1", 1_000))
    assert error.type == PAYMENT_REFUSED
    assert error.details == ("not_captured",)
    assert len(await ledger.list_for_order(world.pool, order.order_id)) == 1


async def test_unknown_provider_is_refused(world: World) -> None:
    order = make_order("FR-1108", payment={"provider": "adyen"})
    error = await refused(world, world.payments.capture_payment, op(order, "capture"))
    assert error.type == UNKNOWN_PAYMENT_PROVIDER


# -- through Temporal: real retries ---------------------------------------------------


@workflow.defn(sandboxed=False)
class CaptureOnlyWorkflow:
    @workflow.run
    async def run(self, payment: PaymentOperationInput) -> PaymentOperationResult:
        return await workflow.execute_activity(
            CAPTURE_PAYMENT,
            payment,
            result_type=PaymentOperationResult,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=50),
                backoff_coefficient=1.0,
                maximum_attempts=6,
            ),
        )


async def test_temporal_retries_capture_through_every_fault(
    client: Client, clean_db: asyncpg.Pool
) -> None:
    world = World(clean_db)
    order = make_order("FR-1201")
    await world.authorise(order)
    world.plan.script("timeout_after_commit", "http_500", "http_429", "timeout_before_commit")
    queue = f"payments-it-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[CaptureOnlyWorkflow],
        activities=[world.payments.capture_payment],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        result = await client.execute_workflow(
            CaptureOnlyWorkflow.run,
            op(order, "capture"),
            id=f"test-capture-{uuid.uuid4().hex}",
            task_queue=queue,
            execution_timeout=timedelta(seconds=30),
        )
    ops = await world.operations(order)
    rows = await ledger.list_for_order(clean_db, order.order_id)
    assert len(ops) == 1 and len(rows) == 1
    assert result.provider_reference == ops[0].provider_reference == rows[0].provider_reference
    assert world.plan.pending == []


async def test_temporal_does_not_retry_a_refusal(client: Client, clean_db: asyncpg.Pool) -> None:
    world = World(clean_db)
    order = make_order("FR-1202")
    await world.authorise(order)
    queue = f"payments-it-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[CaptureOnlyWorkflow],
        activities=[world.payments.capture_payment],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(
                CaptureOnlyWorkflow.run,
                op(order, "capture", 999_999),
                id=f"test-capture-{uuid.uuid4().hex}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError) and cause.type == PAYMENT_REFUSED
    assert activity_error.retry_state is not None
    assert activity_error.retry_state.name == "NON_RETRYABLE_FAILURE"


# -- warehouse and email ----------------------------------------------------------------


async def test_warehouse_release_is_idempotent_by_workflow(clean_db: asyncpg.Pool) -> None:
    plan = FaultPlan(faults=["timeout_after_commit"])
    acts = WarehouseActivities(SimulatedWarehouse(clean_db, plan))
    env = ActivityEnvironment()
    release = ReleaseOrderInput(
        workflow_id="order-review:FR-1301",
        order_id="FR-1301",
        market="US",
        destination_country="US",
        items=[ReleaseItem(sku="HB-TOTE-MM-NOIR", quantity=1)],
    )
    with pytest.raises(PortTimeoutError):
        await env.run(acts.release_order_to_warehouse, release)
    first = await env.run(acts.release_order_to_warehouse, release)
    again = await env.run(acts.release_order_to_warehouse, release)
    assert first == again
    assert first.warehouse == "sim-3pl-new-jersey"
    count = await clean_db.fetchval("SELECT count(*) FROM sim_warehouse_releases")
    assert count == 1
    stored = await sim.get_release(clean_db, "order-review:FR-1301/release")
    assert stored is not None and stored.release_id == first.release_id

    with pytest.raises(ApplicationError) as rejected:
        await env.run(
            acts.release_order_to_warehouse,
            release.model_copy(update={"workflow_id": "order-review:FR-1302", "items": []}),
        )
    assert rejected.value.type == RELEASE_REJECTED and rejected.value.non_retryable


async def test_notification_sent_once_and_no_clear_email_stored(
    clean_db: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    acts = NotificationActivities(SimulatedNotifier(clean_db, FaultPlan(faults=["http_500"])))
    env = ActivityEnvironment()
    message = NotifyCustomerInput(
        workflow_id="order-review:FR-1401",
        message_id="order-review:FR-1401/order_confirmed",
        order_id="FR-1401",
        email="camille.durand@example.fr",
        template=CustomerTemplate.ORDER_CONFIRMED,
        locale="fr",
    )
    with pytest.raises(PortUnavailableError):
        await env.run(acts.notify_customer, message)
    first = await env.run(acts.notify_customer, message)
    second = await env.run(acts.notify_customer, message)
    assert first.delivered and second.delivered
    assert await sim.count_notifications(clean_db, "FR-1401") == 1
    stored = await clean_db.fetchrow("SELECT * FROM sim_notifications")
    assert stored is not None and "camille" not in str(dict(stored))
    logged = capsys.readouterr()
    assert "FR-1401" in logged.out + logged.err  # the message was logged...
    assert "camille" not in logged.out + logged.err  # ...without the address

    with pytest.raises(ApplicationError) as bounced:
        await env.run(
            acts.notify_customer,
            message.model_copy(update={"message_id": "m2", "email": "someone@bounce.example"}),
        )
    assert bounced.value.non_retryable


async def test_build_activities_registers_every_name(clean_db: asyncpg.Pool) -> None:
    settings = Settings(_env_file=None, STEWARD_SIM_LATENCY_MS=5)
    activities = build_activities(clean_db, settings)
    names = {_Definition.must_from_callable(fn).name for fn in activities}
    assert names == {
        "score_order",
        "capture_payment",
        "void_authorisation",
        "refund_payment",
        # A capture the review gave up on: did it happen after all?
        "await_capture_outcome",
        "release_order_to_warehouse",
        # Fulfilment (activities/fulfilment.py, issue 16).
        "set_warehouse_hold",
        "apply_address_change",
        "request_carrier_intercept",
        "book_fulfilment_shipment",
        "cancel_warehouse_order",
        "allocate_replacement_unit",
        "notify_fulfilment_customer",
        "relay_fraud_warning",
        "notify_customer",
        "record_audit",
        "record_case_status",
        "record_transition",
        "open_task",
        "update_task",
        "close_task",
        # Returns (activities/returns.py).
        "check_return_eligibility",
        "issue_return_label",
        "record_return_disposition",
        "check_replacement_stock",
        "prepare_return_parcel_claim",
        # The hourly carrier silence sweep (activities/carrier_sweep.py).
        "sweep_silent_shipments",
        # Failed deliveries and carrier claims (activities/deliveries.py, claims.py).
        "notify_delivery_customer",
        "book_reshipment",
        # A customer's new address, scored in the activity (issue 21: the
        # workflow holds its subject id only).
        "score_delivery_address",
        "inspect_returned_parcel",
        "restock_returned_parcel",
        "open_carrier_investigation",
        "gather_claim_documents",
        "file_carrier_claim",
        "chase_carrier_claim",
        "record_claim_outcome",
        # Chargebacks (activities/disputes.py, evidence.py).
        "assemble_dispute_evidence",
        "submit_dispute_response",
        "hold_order_release",
        "record_dispute",
        "request_cctv_clip",
        # Privacy requests (activities/privacy.py, issue 21).
        "check_legal_holds",
        "erase_personal_data",
        "prepare_privacy_export",
        "confirm_privacy_request",
        # Employee sales (activities/campaign.py, issue 18).
        "validate_campaign",
        "set_campaign_gate",
        "reconcile_campaign",
        # A return of an employee-sale order gives its quota back.
        "return_campaign_quota",
        # The operations desk (activities/ops_desk.py, issue 17).
        "record_ops_request",
        "post_chat_message",
        "answer_order_status",
        "find_shipment_for_claim",
        "ops_fulfilment_action",
        # Reports (activities/reports.py, issue 19).
        "run_report",
        "record_report_failure",
    }


async def test_same_key_for_another_amount_is_refused(world: World) -> None:
    order = make_order("FR-1109")
    await world.authorise(order)
    await world.run(world.payments.capture_payment, op(order, "capture", 100_000))
    error = await refused(world, world.payments.capture_payment, op(order, "capture", 120_000))
    assert error.type == IDEMPOTENCY_KEY_REUSED
    assert len(await world.operations(order)) == 1
