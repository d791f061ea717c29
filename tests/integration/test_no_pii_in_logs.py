"""No personal value reaches the structured logs, an activity failure message
or a PostgreSQL table outside the personal-data store (issue 21), on the
process paths a customer's data travels: an order review that waits for a
coordinator, asks the customer who answers in their own words, and is
approved; a failed delivery whose message to the customer bounces (a failed
activity) and which the customer answers with a free-text message; a return
with the customer's contact; a privacy request that erases them.

Then every process through the API and its webhooks (tests/integration/
pii_probe.py: an order review, fulfilment, a failed delivery, a carrier
claim, a return, a privacy request, the ops desk, an employee sale, a
chargeback), one test per process: the production log pipeline at DEBUG,
every failure of every workflow the scenario started (decoded) and every
table outside the personal-data store hold none of the values it typed.
Complements test_no_pii_in_temporal.py (Temporal's database and the decoded
histories)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import structlog
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from clients import failed_delivery, order_review, privacy_request, returns
from domain.carrier_events import TrackingStatus
from domain.common import Role
from domain.deliveries import CustomerOption, CustomerReply, ShipmentRecord
from domain.privacy_request import (
    Jurisdiction,
    PrivacyRequestKind,
    PrivacyRequestStatus,
    VerifyDecision,
    VerifyInput,
)
from domain.returns import (
    CustomerContact,
    OrderLine,
    Resolution,
    ReturnInput,
    ReturnLine,
    ReturnOrder,
    ReturnReason,
)
from domain.review import (
    CustomerAnswer,
    DecideInput,
    DecisionReason,
    ReviewDecision,
    ReviewStatus,
)
from store import audit as audit_store
from store import deliveries
from tests.factories import make_order
from tests.integration import pii_probe as probe
from tests.integration.polling import eventually
from tests.workflows.inputs import tracking_event
from workers import activities
from workers.settings import Settings


async def test_no_personal_value_in_logs_failures_or_tables(
    client: Client,
    db_pool: asyncpg.Pool,
    integration_settings: Settings,
    capfd: pytest.CaptureFixture[str],
) -> None:
    unique = uuid.uuid4().hex[:10]
    email = f"henriette.{unique}@example.com"
    # The parcel's order was placed with an address that bounces: the
    # failed delivery's message to the customer fails (an activity failure).
    bouncing = f"henriette.{unique}@bounce.example"
    name = f"Henriette Vauquelin-{unique}"
    street = f"{unique} rue du Faubourg Saint-Honoré"
    phone = f"+33 6 {unique[:2]} 55 {unique[2:4]} 11"
    ip = "198.51.100.77"
    message = f"Please leave it with {name}'s concierge at {street}"
    secrets = (email, bouncing, name, street, phone, ip, message)
    order = make_order(
        f"PII-{unique}",
        customer={
            "customer_id": f"C-{unique}",
            "email": email,
            "full_name": name,
            "phone": phone,
        },
        billing_address={"line1": street},
        shipping_address={"line1": street},
        payment={"avs_result": "mismatch", "cvv_result": "mismatch"},
        device={"device_id": f"dev-{unique}", "ip_address": ip},
    )
    settings = integration_settings.model_copy(update={"task_queue": f"pii-logs-{unique}"})
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ):
        # Order review: a coordinator asks the customer, who answers in their
        # own words; started and answered as the API does (issue 21: the
        # order's values and the words by subject id).
        await order_review.start_review(client, order, settings.task_queue, db=db_pool)
        await eventually(
            lambda: order_review.get_status(client, order.order_id),
            lambda s: s.status is ReviewStatus.AWAITING_REVIEW,
            what="the review to wait for a coordinator",
        )
        for decision in (ReviewDecision.ASK_CUSTOMER, ReviewDecision.APPROVE):
            await eventually(
                lambda: order_review.get_status(client, order.order_id),
                lambda s: s.status is ReviewStatus.AWAITING_REVIEW,
                what="the review to wait for a coordinator",
            )
            await order_review.decide(
                client,
                order.order_id,
                DecideInput(
                    decision=decision,
                    reason_code=DecisionReason.VERIFIED_CUSTOMER,
                    note="checked the account history",
                    actor="alice",
                    role=Role.COORDINATOR,
                ),
            )
            if decision is ReviewDecision.ASK_CUSTOMER:
                # The customer answers anyway (by phone), in their own words.
                await eventually(
                    lambda: order_review.get_status(client, order.order_id),
                    lambda s: s.status is ReviewStatus.AWAITING_CUSTOMER,
                    what="the review to wait for the customer",
                )
                await order_review.answer_customer(
                    client,
                    order.order_id,
                    CustomerAnswer(
                        event_id=f"answer-{unique}",
                        confirmed=True,
                        message=message,
                        channel="phone",
                    ),
                    db=db_pool,
                )
        await client.get_workflow_handle(f"order-review:{order.order_id}").result()

        # Failed delivery: the message to the customer bounces; the customer
        # answers anyway with a free-text message.
        parcel_order = order.model_copy(
            update={
                "order_id": f"PII-{unique}-2",
                "customer": order.customer.model_copy(update={"email": bouncing}),
            }
        )
        shipment = ShipmentRecord(
            shipment_id=f"SH-{unique}",
            carrier="ups",
            tracking_number=f"1Z{unique.upper()}",
            expected_delivery_at=datetime.now(UTC),
            order=parcel_order,
        )
        await deliveries.register_shipment(db_pool, shipment)
        event = tracking_event(shipment, TrackingStatus.DELIVERY_FAILED, at=datetime.now(UTC))
        await failed_delivery.start_failed_delivery(client, shipment, event, settings.task_queue)
        await eventually(
            lambda: failed_delivery.get_delivery(client, shipment.shipment_id),
            lambda s: s.status == "awaiting_customer",
            what="the failed delivery to wait for the customer",
        )
        await failed_delivery.relay_customer_reply(
            client,
            shipment.shipment_id,
            CustomerReply(
                event_id=f"reply-{unique}", option=CustomerOption.RESCHEDULE, message=message
            ),
            db=db_pool,
        )
        rows = await eventually(
            lambda: audit_store.list_by_case(db_pool, shipment.shipment_id),
            lambda rows: any(r.action == "customer_replied" for r in rows),
            what="the customer's reply on record",
        )
        failed_sends = [r for r in rows if r.action == "customer_notification_failed"]
        assert failed_sends, "the bounced message is on record"
        # The words are in the personal-data store, read back for a person.
        delivery = await failed_delivery.get_delivery(client, shipment.shipment_id)
        assert delivery.customer_reply is not None and delivery.customer_reply.message == ""
        shown = await failed_delivery.with_reply_message(db_pool, delivery)
        assert shown.customer_reply is not None and shown.customer_reply.message == message

        # Return: the customer's contact for the label and the refund.
        rma_id = f"RMA-{unique}"
        await returns.start_return(
            client,
            ReturnInput(
                rma_id=rma_id,
                order=ReturnOrder(
                    order_id=order.order_id,
                    market="FR",
                    currency="EUR",
                    delivered_at=datetime.now(UTC) - timedelta(days=3),
                    authorisation_ref=order.payment.authorisation_ref,
                    lines=[
                        OrderLine(
                            sku=item.sku,
                            name=item.name,
                            unit_price_minor=item.unit_price_minor,
                            quantity=item.quantity,
                        )
                        for item in order.items
                    ],
                ),
                lines=[ReturnLine(sku=order.items[0].sku, quantity=1)],
                reason=ReturnReason.TOO_SMALL,
                resolution=Resolution.REFUND,
                contact=CustomerContact(email=email),
                requested_by="cs-julie",
            ),
            settings.task_queue,
        )
        await eventually(
            lambda: returns.get_status(client, rma_id),
            lambda s: s.status == "label_issued",
            what="the return label issued",
        )

        # Privacy request: the customer is forgotten (what is not on hold).
        request_id = f"PR-{unique}"
        await privacy_request.file_request(
            client,
            db_pool,
            request_id=request_id,
            kind=PrivacyRequestKind.ERASURE,
            email=email,
            jurisdiction=Jurisdiction.EU,
            requested_by="alice",
            task_queue=settings.task_queue,
            now=datetime.now(UTC),
        )
        await eventually(
            lambda: privacy_request.get_request(client, request_id),
            lambda s: s.status is PrivacyRequestStatus.AWAITING_VERIFICATION,
            what="the request to await verification",
        )
        await privacy_request.verify_request(
            client,
            request_id,
            VerifyInput(
                decision=VerifyDecision.VERIFIED, reason="ID ok", actor="alice", role=Role.MANAGER
            ),
        )
        await eventually(
            lambda: privacy_request.get_request(client, request_id),
            lambda s: s.answered_at is not None,
            what="the requester answered",
        )

    logs = capfd.readouterr()
    printed = logs.out + logs.err
    # Proof the logs were captured: the order id is in them.
    assert order.order_id in printed
    values = {f"value {n}": secret for n, secret in enumerate(secrets)}
    in_logs = [values[label] for label in probe.find_values(printed, values)]
    assert not in_logs, f"{in_logs} in the logs"
    for failure in failed_sends:
        assert not probe.find_values(failure.reason, values), failure.reason
    found = await probe.table_leaks(db_pool, "several", values)
    assert not found, "\n".join(map(str, found))


def test_the_probe_reads_the_production_logs_and_finds_a_value_written_there() -> None:
    """The control of the test below: a value logged through structlog (as
    Steward's code logs) or a stdlib logger (as temporalio logs a failure) is
    found, JSON-escaped or not; the logging set-up is put back after."""
    person = probe.Persona.new("control")
    before = logging.getLogger().handlers[:]
    with probe.captured_logs() as logs:
        structlog.get_logger("steward.control").info("address_seen", street=person.street)
        logging.getLogger("temporalio.activity").debug("failed: %s", person.email)
    assert logging.getLogger().handlers == before
    found = {f.label for f in probe.log_leaks("control", logs.getvalue(), person.values())}
    assert found == {"control.street", "control.email"}, logs.getvalue()


async def test_the_probe_finds_a_value_in_a_table(db_pool: asyncpg.Pool) -> None:
    """The control of the table search: an email in a text column, a street
    in a jsonb column and a region JSON-escaped in a text column (the row's
    text doubles its backslash) of a table of its own are found."""
    person = probe.Persona.new("control")
    table = f"pii_probe_control_{uuid.uuid4().hex[:8]}"
    await db_pool.execute(f"CREATE TABLE {table} (note text, record jsonb, raw text)")
    try:
        await db_pool.execute(
            f"INSERT INTO {table} VALUES ($1, $2, $3)",
            f"write to {person.email} please",
            {"order": {"shipping_address": {"line1": person.street}}},
            json.dumps({"region": person.region}),
        )
        found = await probe.table_leaks(db_pool, "control", person.values())
    finally:
        await db_pool.execute(f"DROP TABLE {table}")
    assert {(f.where, f.label) for f in found} == {
        (f"table {table}", "control.email"),
        (f"table {table}", "control.street"),
        (f"table {table}", "control.region"),
    }


@pytest.mark.parametrize("process", sorted(probe.SCENARIOS))
async def test_no_personal_value_in_a_process_s_logs_failures_or_tables(
    process: str, client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> None:
    trail = await probe.trail_of(process, client, db_pool, integration_settings)
    # Proof the logs were captured: every case the scenario started is in them.
    for workflow_id in trail.named:
        assert workflow_id.rsplit(":", 1)[-1] in trail.logs, f"{workflow_id} not in the logs"
    found = probe.log_leaks(process, trail.logs, trail.values)
    examined = 0
    for workflow_id in sorted(trail.workflow_ids):
        examined += len(await probe.failures(client, workflow_id))
        found += await probe.failure_leaks(
            client, probe.process_of(workflow_id), workflow_id, trail.values
        )
    found += await probe.table_leaks(db_pool, process, trail.values)
    assert not found, "personal values outside the store:\n" + "\n".join(map(str, found))
    if process in ("failed_delivery", "fulfilment"):
        # The bounced message to the customer is a failure that was searched.
        assert examined, "the bounced notification left no failure to search"
