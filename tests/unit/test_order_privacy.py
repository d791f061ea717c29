"""The pseudonymised order Temporal holds (issue 21, domain/order_privacy.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.order_privacy import (
    ORDER_PERSONAL_PATHS,
    PSEUDONYM_VALUES,
    is_pseudonymised,
    pseudonymise_order,
)
from domain.review import OrderReviewInput, review_input
from tests.factories import make_order


def test_every_personal_value_is_replaced_and_business_facts_stay() -> None:
    order = make_order("FR-PD-1", customer={"phone": "+33 6 12 34 56 78"})
    masked = pseudonymise_order(order)
    assert set(PSEUDONYM_VALUES) == set(ORDER_PERSONAL_PATHS)
    text = masked.model_dump_json()
    for value in (
        order.customer.email,
        order.customer.full_name,
        "+33 6 12 34 56 78",
        order.shipping_address.line1,
        order.shipping_address.city,
        order.shipping_address.postal_code,
        order.billing_address.line1,
        order.device.ip_address,
    ):
        assert value not in text
    assert is_pseudonymised(masked) and not is_pseudonymised(order)
    # What the workflow and the release still need.
    assert masked.order_id == order.order_id and masked.items == order.items
    assert masked.payment == order.payment and masked.total_minor == order.total_minor
    assert masked.shipping_address.country == order.shipping_address.country
    assert masked.customer.customer_id == order.customer.customer_id


def test_a_review_input_with_a_subject_id_refuses_an_order_in_clear() -> None:
    order = make_order("FR-PD-2")
    with pytest.raises(ValidationError, match="must be pseudonymised"):
        OrderReviewInput(order=order, subject_id="subj_abcdefgh1234")
    started = review_input(pseudonymise_order(order), subject_id="subj_abcdefgh1234")
    assert started.subject_id == "subj_abcdefgh1234"
    # The old shape: no subject id, the order as received.
    assert review_input(order).subject_id is None
