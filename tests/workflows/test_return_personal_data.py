"""A return with its personal values behind subject ids (issue 21).

The edge (clients/returns.py start_return db=) keeps the customer's email and
an exchange's replacement order in the personal-data store and starts the
return with placeholders and the subject ids (domain/returns.py
return_without_personal_values). The workflow hands the contact's subject id
to every customer message and the replacement's subject id to the review it
starts; neither history holds a personal value. Runs started with the old
shape (values in the input) are covered by tests/workflows/test_returns.py
and the replay tests.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from domain.ids import order_review_id
from domain.order_privacy import PLACEHOLDER_EMAIL, is_pseudonymised
from domain.orders import Order
from domain.returns import (
    CONTACT_EMAIL_FIELD,
    CancelReturnRequest,
    CustomerContact,
    Resolution,
    ReturnInput,
    ReturnStatus,
    return_without_personal_values,
)
from tests.factories import make_order
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.stand_ins import StandInCarrierClaim, StandInOrderReview
from tests.workflows.test_returns import deliver, qc, return_input, start
from workflows.returns import ReturnWorkflow

pytestmark = pytest.mark.workflows([ReturnWorkflow, StandInOrderReview, StandInCarrierClaim])

CONTACT_SUBJECT = "subj_return-contact-test-0001"
REPLACEMENT_SUBJECT = "subj_return-replacement-test-0001"
REASON_SUBJECT = "subj_return-cancel-reason-test-0001"


def with_personal_values(request: ReturnInput) -> tuple[ReturnInput, list[str]]:
    """`request` with a unique customer (so a hit in the history is this
    test's) and the personal values to look for."""
    unique = uuid.uuid4().hex[:8]
    email = f"ines.{unique}@example.fr"
    replacement: Order | None = None
    values = [email]
    if request.replacement is not None:
        replacement = make_order(
            request.replacement.order_id,
            items=[i.model_dump() for i in request.replacement.items],
            customer={
                "customer_id": f"C-{unique}",
                "email": email,
                "full_name": f"Ines Fournier-{unique}",
                "phone": f"+33 6 {unique[:2]} 00 00 00",
            },
            shipping_address={"line1": f"{unique} rue du Bac", "postal_code": "75107"},
            billing_address={"line1": f"{unique} rue du Bac", "postal_code": "75107"},
            device={"device_id": f"dev-{unique}", "ip_address": "198.51.100.23"},
        )
        values += [
            replacement.customer.full_name,
            replacement.customer.phone or "",
            f"{unique} rue du Bac",
            "198.51.100.23",
        ]
    clear = request.model_copy(
        update={"contact": CustomerContact(email=email, locale="fr"), "replacement": replacement}
    )
    return ReturnInput.model_validate(clear.model_dump()), values


async def history_bytes(handle: WorkflowHandle[Any, Any]) -> bytes:
    """The run's whole history as stored (the harness has no codec)."""
    return b"\n".join([e.SerializeToString() async for e in handle.fetch_history_events()])


async def test_an_exchange_holds_subject_ids_and_no_personal_value(
    harness: Harness, world: FakeWorld
) -> None:
    clear, values = with_personal_values(
        return_input(harness.now(), resolution=Resolution.EXCHANGE)
    )
    request = return_without_personal_values(
        clear, contact_subject_id=CONTACT_SUBJECT, replacement_subject_id=REPLACEMENT_SUBJECT
    )
    assert request.replacement is not None and is_pseudonymised(request.replacement)
    handle = await start(harness, request)
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    result = await handle.result()
    assert result.status is ReturnStatus.EXCHANGED

    # Every customer message names the contact's subject; the notifier reads
    # the address there (activities/notifications.py).
    assert world.notifications.templates() == ["return_label", "return_refunded"]
    for message in world.notifications.sent:
        assert message.subject_id == CONTACT_SUBJECT
        assert message.email_field == CONTACT_EMAIL_FIELD
        assert str(message.email) == PLACEHOLDER_EMAIL
        assert message.locale == "fr"
    # The replacement's review starts as the API starts one: pseudonymised,
    # with the subject id its activities read the values by.
    review = harness.client.get_workflow_handle(order_review_id(request.replacement.order_id))
    assert await review.result() == request.replacement.order_id
    review_history = await history_bytes(review)
    assert REPLACEMENT_SUBJECT.encode() in review_history

    stored = await history_bytes(handle)
    assert request.rma_id.encode() in stored and CONTACT_SUBJECT.encode() in stored
    for value in values:
        assert value.encode() not in stored, f"{value!r} is in the return's history"
        assert value.encode() not in review_history, f"{value!r} is in the review's history"


async def test_the_old_input_shape_still_carries_the_email(
    harness: Harness, world: FakeWorld
) -> None:
    clear, values = with_personal_values(return_input(harness.now()))
    handle = await start(harness, clear)
    await deliver(harness, handle)
    await handle.signal(ReturnWorkflow.qc_result, qc())
    assert (await handle.result()).status is ReturnStatus.REFUNDED
    for message in world.notifications.sent:
        assert message.subject_id is None and str(message.email) == values[0]
    # What the test above guards against: the old shape's history holds it.
    assert values[0].encode() in await history_bytes(handle)


async def test_a_cancel_carries_the_customers_reason_by_subject_id(
    harness: Harness, world: FakeWorld
) -> None:
    clear, _ = with_personal_values(return_input(harness.now()))
    request = return_without_personal_values(
        clear, contact_subject_id=CONTACT_SUBJECT, replacement_subject_id=None
    )
    handle = await start(harness, request)
    await wait_for_status(handle, ReturnStatus.LABEL_ISSUED)
    await handle.signal(
        ReturnWorkflow.cancel,
        CancelReturnRequest(event_id="c-1", reason_subject_id=REASON_SUBJECT),
    )
    assert (await handle.result()).status is ReturnStatus.CANCELLED

    state = await handle.query(ReturnWorkflow.status)
    assert state.cancel_reason is None and state.cancel_reason_subject_id == REASON_SUBJECT
    (requested,) = {e.entry_id: e for e in world.audit.entries("cancel_requested")}.values()
    assert requested.reason == "the customer's reason, kept in the personal-data store"
    assert state.history[-1].reason == requested.reason
    assert REASON_SUBJECT.encode() in await history_bytes(handle)
