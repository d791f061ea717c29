"""Order review with its personal values behind a subject id (issue 21).

The edge keeps the order's personal values in the personal-data store and
starts the review with the order pseudonymised and the subject id; the
workflow hands the subject id to every activity that needs the values
(scoring, the release, the customer message) and its history holds none of
them. Runs started with the old input shape (no subject id) are covered by
tests/workflows/test_order_review.py and the replay tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from domain.ids import order_review_id
from domain.order_privacy import PLACEHOLDER_EMAIL, is_pseudonymised, pseudonymise_order
from domain.orders import Order
from domain.review import (
    CURRENT_REVIEW_REVISION,
    OrderReviewInput,
    ReviewStatus,
)
from tests.workflows.harness import FakeWorld, Harness
from tests.workflows.test_order_review import ACCEPT, DECLINE, POLICY, fresh_order
from workflows.order_review import OrderReviewWorkflow

pytestmark = [pytest.mark.workflows([OrderReviewWorkflow])]

SUBJECT = "subj_order-review-test-0001"


def personal_values(order: Order) -> list[str]:
    values = [
        order.customer.email,
        order.customer.full_name,
        order.billing_address.line1,
        order.shipping_address.line1,
        order.shipping_address.city,
        order.shipping_address.postal_code,
        order.device.ip_address,
    ]
    if order.customer.phone:
        values.append(order.customer.phone)
    return values


async def start_pseudonymised(harness: Harness, order: Order) -> WorkflowHandle[Any, Any]:
    return await harness.start(
        OrderReviewWorkflow.run,
        OrderReviewInput(
            order=pseudonymise_order(order),
            policy=POLICY,
            revision=CURRENT_REVIEW_REVISION,
            subject_id=SUBJECT,
        ),
        id=order_review_id(order.order_id),
    )


async def history_bytes(handle: WorkflowHandle[Any, Any]) -> bytes:
    """The run's whole history as stored (the harness has no codec: payloads
    are their JSON, searchable as bytes)."""
    return b"\n".join([e.SerializeToString() async for e in handle.fetch_history_events()])


@pytest.mark.world(risk=ACCEPT)
async def test_an_accepted_review_passes_the_subject_id_and_holds_no_personal_value(
    harness: Harness, world: FakeWorld
) -> None:
    order = fresh_order(harness.now())
    handle = await start_pseudonymised(harness, order)
    result = await handle.result()
    assert result.status is ReviewStatus.RELEASED

    (scored,) = world.scoring.scored
    assert scored.subject_id == SUBJECT and is_pseudonymised(scored.order)
    (release,) = world.warehouse.releases
    assert release.subject_id == SUBJECT
    assert release.order is not None and is_pseudonymised(release.order)
    # Business facts stay in the workflow: the warehouse still gets its country.
    assert release.destination_country == order.shipping_address.country

    stored = await history_bytes(handle)
    assert order.order_id.encode() in stored  # the right history, decoded
    assert SUBJECT.encode() in stored
    for value in personal_values(order):
        assert value.encode() not in stored, f"{value!r} is in the review's history"


@pytest.mark.world(risk=DECLINE)
async def test_a_declined_review_tells_the_customer_through_the_subject(
    harness: Harness, world: FakeWorld
) -> None:
    order = fresh_order(harness.now())
    handle = await start_pseudonymised(harness, order)
    result = await handle.result()
    assert result.status is ReviewStatus.CANCELLED

    (message,) = world.notifications.sent
    assert message.subject_id == SUBJECT
    assert message.email_field == "customer.email"
    assert str(message.email) == PLACEHOLDER_EMAIL
    stored = await history_bytes(handle)
    for value in personal_values(order):
        assert value.encode() not in stored, f"{value!r} is in the review's history"


@pytest.mark.world(risk=ACCEPT)
async def test_the_old_input_shape_still_carries_the_order(
    harness: Harness, world: FakeWorld
) -> None:
    order = fresh_order(harness.now())
    handle = await harness.start(
        OrderReviewWorkflow.run,
        OrderReviewInput(order=order, policy=POLICY, revision=CURRENT_REVIEW_REVISION),
        id=order_review_id(order.order_id),
    )
    await handle.result()
    (scored,) = world.scoring.scored
    assert scored.subject_id is None
    assert scored.order.customer.email == order.customer.email
    # What the check above guards against: the old shape's history holds them.
    assert order.customer.email.encode() in await history_bytes(handle)
