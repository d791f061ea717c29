"""A customer's free-text reply to a failed delivery stays in the case (the
workflow's state, encrypted in Temporal) and never reaches the audit log in
PostgreSQL (issue 21; patch `customer-reply-text-private`)."""

from __future__ import annotations

import pytest

from domain.deliveries import CustomerOption, FailedDeliveryStatus
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.inputs import shipment
from tests.workflows.test_failed_delivery import reply, start
from workflows.failed_delivery import FailedDeliveryWorkflow

pytestmark = pytest.mark.workflows([FailedDeliveryWorkflow])

MESSAGE = "Leave it with Mme Vauquelin, concierge, 12 rue du Bac, code 4512B"


async def test_the_reply_text_stays_out_of_the_audit_trail(
    harness: Harness, world: FakeWorld
) -> None:
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    await handle.signal(
        FailedDeliveryWorkflow.customer_replied,
        reply(CustomerOption.RESCHEDULE, message=MESSAGE, channel="email"),
    )
    entry = await eventually(
        lambda: next(iter(world.audit.entries("customer_replied", handle.id)), None),
        what="the reply on record",
    )
    assert entry.reason == "reschedule via email (with a message, kept in the case)"
    assert "Vauquelin" not in entry.model_dump_json()
    # The coordinator still reads it in the case.
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.customer_reply is not None and state.customer_reply.message == MESSAGE


async def test_a_reply_kept_in_the_personal_data_store_holds_only_its_subject_id(
    harness: Harness, world: FakeWorld
) -> None:
    """Issue 21: the API keeps the words in the personal-data store and the
    signal carries the subject id; the case and the audit hold no text."""
    record = shipment(harness.now())
    handle = await start(harness, record)
    await wait_for_status(handle, FailedDeliveryStatus.AWAITING_CUSTOMER)
    sent = reply(CustomerOption.RESCHEDULE, channel="email").model_copy(
        update={"message_subject_id": "subj_reply-test-0001"}
    )
    await handle.signal(FailedDeliveryWorkflow.customer_replied, sent)
    entry = await eventually(
        lambda: next(iter(world.audit.entries("customer_replied", handle.id)), None),
        what="the reply on record",
    )
    assert entry.reason == "reschedule via email (with a message, kept in the personal-data store)"
    state = await handle.query(FailedDeliveryWorkflow.status)
    assert state.customer_reply is not None
    assert state.customer_reply.message == ""
    assert state.customer_reply.message_subject_id == "subj_reply-test-0001"
