"""A failed delivery on subject ids (issue 21), under time skipping.

The edge (clients/carrier_events.py, the API) starts the case with the
shipment pseudonymised (`pseudonymise_shipment`: the order's customer,
addresses and IP are placeholders; the shipment's subject id and the keyed
fingerprint of its address come with it) and relays a new address as an
`AddressRef` (subject id, fingerprint, country). The workflow passes the
references to the activities that need the values (the customer message, the
rescoring of a new address, the reship label) and its history holds none of
them. The activities reading the values back are checked on a real stack in
tests/integration/test_failed_delivery_personal_data.py; runs started with
the old shape are tests/workflows/test_failed_delivery.py and the replays.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.carrier_events import TrackingStatus
from domain.claims import ClaimStatus
from domain.deliveries import (
    AddressRef,
    CustomerOption,
    DeliveryDecision,
    FailedDeliveryStatus,
    ShipmentRecord,
    is_pseudonymous_address,
    pseudonymise_shipment,
)
from domain.ids import carrier_claim_id
from domain.order_privacy import PLACEHOLDER_EMAIL, is_pseudonymised
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.inputs import shipment, tracking_event
from tests.workflows.test_failed_delivery import HIGH_RISK, NEW_ADDRESS, decide, reply, start
from workflows.carrier_claim import CarrierClaimWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow

pytestmark = [pytest.mark.workflows([FailedDeliveryWorkflow, CarrierClaimWorkflow])]

SUBJECT = "subj_shipment-test-0001"
SENT_TO = "fp_" + "a" * 32  # the keyed fingerprint of the parcel's address
NEW_REF = AddressRef(
    subject_id="subj_address-test-0001", fingerprint="fp_" + "b" * 32, country="FR"
)


def personal_values(record: ShipmentRecord) -> list[str]:
    order = record.order
    values = [
        order.customer.email,
        order.customer.full_name,
        order.billing_address.line1,
        order.shipping_address.line1,
        order.device.ip_address,
        NEW_ADDRESS.line1,
    ]
    if order.customer.phone:
        values.append(order.customer.phone)
    return values


async def history_bytes(handle: WorkflowHandle[Any, Any]) -> bytes:
    return b"\n".join([e.SerializeToString() async for e in handle.fetch_history_events()])


async def assert_no_personal_value(
    handle: WorkflowHandle[Any, Any], record: ShipmentRecord
) -> None:
    stored = await history_bytes(handle)
    assert record.shipment_id.encode() in stored  # the right history, readable
    assert SUBJECT.encode() in stored
    for value in personal_values(record):
        assert value.encode() not in stored, f"{value!r} is in the failed delivery's history"


async def test_a_new_address_by_reference_is_rescored_and_reshipped_by_reference(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    private = pseudonymise_shipment(record, SUBJECT, SENT_TO)
    handle = await start(harness, private)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address_ref=NEW_REF, message="call me"),
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    # A high-value parcel to a new address: rescored by reference.
    (rescored,) = world.scoring.rescored
    assert rescored.subject_id == SUBJECT and rescored.address_ref == NEW_REF
    assert rescored.address is None and world.scoring.scored == []

    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address_ref=NEW_REF)
    )
    await wait_for_status(handle, FailedDeliveryStatus.RESHIPPED)
    (booking,) = world.deliveries.bookings
    assert booking.destination_ref == NEW_REF
    assert is_pseudonymous_address(booking.destination) and booking.destination.country == "FR"
    assert booking.shipment.subject_id == SUBJECT and is_pseudonymised(booking.shipment.order)
    # Every customer message names its recipient by the shipment's subject.
    assert [n.subject_id for n in world.deliveries.notifications] == [SUBJECT, SUBJECT]
    assert {n.email for n in world.deliveries.notifications} == {PLACEHOLDER_EMAIL}

    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        tracking_event(
            record,
            TrackingStatus.DELIVERED,
            tracking=f"RESHIP-{record.shipment_id}",
            at=harness.now(),
        ),
    )
    result = await handle.result()
    assert result.status is FailedDeliveryStatus.DELIVERED
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.decision is not None and state.decision.address_ref == NEW_REF
    assert state.decision.address is None
    await assert_no_personal_value(handle, record)


@pytest.mark.world(risk=HIGH_RISK)
async def test_a_refused_new_address_is_compared_by_fingerprint(
    harness: Harness, world: FakeWorld
) -> None:
    """Risk refuses the customer's new address: a reship there is refused by
    its fingerprint (another reference to the same address too), the parcel's
    own address (its fingerprint) needs no rescoring."""
    record = shipment(harness.now())
    handle = await start(harness, pseudonymise_shipment(record, SUBJECT, SENT_TO))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address_ref=NEW_REF),
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.recommendation is not None and state.recommendation.reship_blocked
    same_place = NEW_REF.model_copy(update={"subject_id": "subj_address-test-0002"})
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address_ref=same_place)
        )
    assert isinstance(refused.value.cause, ApplicationError)
    assert "risk review refused this address" in refused.value.cause.message
    # Back to where it was sent: the same fingerprint, no second scoring.
    await handle.execute_update(FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP))
    await wait_for_status(handle, FailedDeliveryStatus.RESHIPPED)
    assert len(world.scoring.rescored) == 1
    (booking,) = world.deliveries.bookings
    # The current destination by the shipment's own subject: the activity
    # reads the address the parcel was sent to.
    assert booking.destination_ref is not None
    assert booking.destination_ref.subject_id == SUBJECT
    assert booking.destination_ref.fingerprint == SENT_TO
    await assert_no_personal_value(handle, record)


async def test_a_lost_parcel_claim_carries_the_pseudonymised_shipment(
    harness: Harness, world: FakeWorld
) -> None:
    """A failed delivery that claims for its parcel passes the claim the
    pseudonymised record: the claim's history holds no personal value."""
    record = shipment(harness.now())
    handle = await start(harness, pseudonymise_shipment(record, SUBJECT, SENT_TO))
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RETURN_TO_STOCK)
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_RETURN)
    await handle.signal(
        FailedDeliveryWorkflow.carrier_event,
        tracking_event(record, TrackingStatus.LOST, at=harness.now()),
    )
    assert (await handle.result()).status is FailedDeliveryStatus.REFUNDED
    claim_id = carrier_claim_id(record.carrier, record.tracking_number)
    claim = harness.client.get_workflow_handle(claim_id)
    await wait_for_status(claim, ClaimStatus.GATHERING_EVIDENCE)
    (claim_started,) = [
        e
        async for e in claim.fetch_history_events()
        if e.HasField("workflow_execution_started_event_attributes")
    ]
    assert claim_started is not None
    await assert_no_personal_value(handle, record)
    await assert_no_personal_value(claim, record)


async def test_a_case_started_before_takes_a_new_address_by_reference(
    harness: Harness, world: FakeWorld
) -> None:
    """A case started with the shipment in clear (before issue 21) still
    running when the API relays a new address by reference: the address is
    rescored and booked through the store, never put in clear."""
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.NEW_ADDRESS, address_ref=NEW_REF),
    )
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_DECISION)
    (rescored,) = world.scoring.rescored
    assert rescored.subject_id is None and rescored.address_ref == NEW_REF
    await handle.execute_update(
        FailedDeliveryWorkflow.decide, decide(DeliveryDecision.RESHIP, address_ref=NEW_REF)
    )
    await wait_for_status(handle, FailedDeliveryStatus.RESHIPPED)
    (booking,) = world.deliveries.bookings
    assert booking.destination_ref == NEW_REF and booking.shipment.subject_id is None
