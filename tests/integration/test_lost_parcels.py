"""Lost parcels against real PostgreSQL and the dev server: a lost return
parcel becomes a shipment its claim follows (declaring the returned items
only), and a late delivery reaches a claim whose failed delivery has closed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

import workflows
from activities.returns import ReturnActivities
from clients.carrier_events import ingest_event
from domain.carrier_events import CarrierEvent, Route, TrackingStatus
from domain.claims import CarrierClaimInput, CarrierClaimState, ClaimType
from domain.deliveries import ShipmentRecord
from domain.ids import carrier_claim_id
from domain.order_privacy import is_pseudonymised
from domain.returns import ReturnLine, ReturnParcelClaimInput
from store import deliveries as delivery_store
from tests.factories import make_order
from tests.integration.test_api import eventually
from workers import activities
from workers.settings import Settings

TWO_ITEMS: list[dict[str, Any]] = [
    {
        "sku": "HB-TOTE-MM-NOIR",
        "name": "Tote MM",
        "category": "handbags",
        "unit_price_minor": 245_000,
        "quantity": 1,
    },
    {
        "sku": "SLG-WALLET-NOIR",
        "name": "Wallet",
        "category": "small_leather_goods",
        "unit_price_minor": 62_000,
        "quantity": 2,
    },
]


def _outbound(order_id: str) -> ShipmentRecord:
    suffix = uuid.uuid4().hex[:10].upper()
    return ShipmentRecord(
        shipment_id=f"SH-{suffix}",
        carrier="ups",
        tracking_number=f"1Z{suffix}",
        expected_delivery_at=datetime.now(UTC) - timedelta(days=20),
        order=make_order(order_id=order_id, items=TWO_ITEMS, shipping_minor=3_000),
    )


async def test_lost_return_parcel_is_registered_for_its_claim(db_pool: asyncpg.Pool) -> None:
    order_id = f"ORD-{uuid.uuid4().hex[:10]}"
    await delivery_store.register_shipment(db_pool, _outbound(order_id))
    returns = ReturnActivities(db_pool, cast(Any, None), cast(Any, None))
    rma = f"RMA-{uuid.uuid4().hex[:8]}"
    tracking = f"RET{uuid.uuid4().hex[:10].upper()}"
    request = ReturnParcelClaimInput(
        workflow_id=f"return:{rma}",
        rma_id=rma,
        order_id=order_id,
        carrier="dhl",
        tracking_number=tracking,
        lines=[ReturnLine(sku="SLG-WALLET-NOIR", quantity=1)],
        expected_delivery_at=datetime.now(UTC),
    )
    env = ActivityEnvironment()
    prepared = await env.run(returns.prepare_return_parcel_claim, request)
    again = await env.run(returns.prepare_return_parcel_claim, request)  # a retry

    assert prepared.shipment is not None and again.shipment == prepared.shipment
    # Only the wallet travels back: that is what the claim declares.
    order = prepared.shipment.order
    assert [(i.sku, i.quantity) for i in order.items] == [("SLG-WALLET-NOIR", 1)]
    assert order.payment.amount_minor == 62_000 and order.shipping_minor == 0
    row = await delivery_store.find_by_tracking(db_pool, "dhl", tracking)
    assert row is not None and row.record.shipment_id == f"{rma}-RETURN"
    assert row.tracked_by == carrier_claim_id("dhl", tracking)
    # Issue 21: the claim's input (the activity's result, in Temporal) holds
    # the order pseudonymised; the store keeps the parcel's real values.
    assert is_pseudonymised(order)
    sent = prepared.model_dump_json()
    customer = _outbound(order_id).order
    for value in (
        customer.customer.email,
        customer.customer.full_name,
        customer.shipping_address.line1,
        customer.device.ip_address,
    ):
        assert value not in sent, f"{value!r} is in the claim's input"
    assert row.record.order.customer.email == customer.customer.email
    # The claim's activities read them back by the shipment's own subject.
    assert prepared.shipment.subject_id == delivery_store.shipment_subject_id(f"{rma}-RETURN")
    assert row.subject_id == prepared.shipment.subject_id
    assert row.record.order.shipping_address == customer.shipping_address

    unknown = await env.run(
        returns.prepare_return_parcel_claim,
        request.model_copy(update={"order_id": "ORD-NEVER-SHIPPED"}),
    )
    assert unknown.shipment is None and unknown.reason.startswith("order_id:")


async def test_late_delivery_reaches_the_claim_after_its_failed_delivery_closed(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> None:
    settings = integration_settings.model_copy(update={"task_queue": f"test-{uuid.uuid4()}"})
    shipment = _outbound(f"ORD-{uuid.uuid4().hex[:10]}")
    # Followed by a failed delivery that has since closed (no such run now).
    await delivery_store.register_shipment(
        db_pool, shipment, tracked_by=f"failed-delivery:{shipment.shipment_id}"
    )
    claim_id = carrier_claim_id(shipment.carrier, shipment.tracking_number)
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ):
        claim = await client.start_workflow(
            "CarrierClaimWorkflow",
            CarrierClaimInput(
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                claim_type=ClaimType.LOST,
                reported_at=datetime.now(UTC),
                shipment=shipment,
                remedy_workflow_id=f"failed-delivery:{shipment.shipment_id}",
            ),
            id=claim_id,
            task_queue=settings.task_queue,
        )
        delivered = CarrierEvent(
            event_id=f"ups-{uuid.uuid4().hex[:12]}",
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            shipment_id=shipment.shipment_id,
            status=TrackingStatus.DELIVERED,
            occurred_at=datetime.now(UTC),
        )
        routed = await ingest_event(client, db_pool, delivered, settings.task_queue)
        assert routed.route is Route.TRACKING_WORKFLOW and routed.workflow_id == claim_id
        state = await eventually(
            lambda: claim.query("status", result_type=CarrierClaimState),
            lambda s: s.found_at is not None,
            what="the claim to hear of the delivery",
        )
        await claim.terminate("test over")
    assert state.found_at == delivered.occurred_at
