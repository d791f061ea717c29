"""A failed delivery's personal values behind subject ids (issue 21): the
pseudonymised shipment, address references and how the rules compare them,
and the API refusing a reference a caller sets. Pure, plus the API's
validation (no Temporal, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from domain.common import Role
from domain.deliveries import (
    AddressRef,
    CustomerOption,
    CustomerReply,
    DeliveryDecideInput,
    DeliveryDecision,
    FailedDeliveryPolicy,
    ScoreDeliveryAddressInput,
    ShipmentRecord,
    current_destination,
    is_pseudonymous_address,
    needs_risk_review,
    pseudonymise_shipment,
    same_destination,
)
from domain.order_privacy import is_pseudonymised
from domain.orders import Address
from tests.factories import make_order
from tests.unit.test_api_validation import (  # noqa: F401  (the fixtures)
    api,
    auth,
    codec,
    fields,
    settings,
)

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
NEW = Address(line1="1 Rue du Bac", city="Lyon", postal_code="69001", country="FR")
REF = AddressRef(subject_id="subj_address-unit-0001", fingerprint="fp_" + "b" * 32, country="FR")
SENT_TO = "fp_" + "a" * 32
POLICY = FailedDeliveryPolicy(high_value_minor=100_000)


def record(destination: Address | None = None) -> ShipmentRecord:
    return ShipmentRecord(
        shipment_id="SH-PD-1",
        carrier="ups",
        tracking_number="1ZPD1",
        expected_delivery_at=NOW,
        order=make_order("FR-PD-1", now=NOW),
        destination=destination,
    )


def test_a_pseudonymised_shipment_keeps_business_facts_only() -> None:
    clear = record(destination=NEW)
    private = pseudonymise_shipment(clear, "subj_shipment-unit-01", SENT_TO)
    assert is_pseudonymised(private.order)
    assert private.destination is not None and is_pseudonymous_address(private.destination)
    assert private.destination.country == "FR"
    assert (private.subject_id, private.address_fingerprint) == ("subj_shipment-unit-01", SENT_TO)
    text = private.model_dump_json()
    for value in (clear.order.customer.email, clear.order.customer.full_name, NEW.line1, "Lyon"):
        assert value not in text
    assert private.order.payment == clear.order.payment
    assert private.order.items == clear.order.items


def test_an_address_and_its_reference_are_never_both_given() -> None:
    with pytest.raises(ValidationError, match="address_ref"):
        CustomerReply(
            event_id="e1", option=CustomerOption.NEW_ADDRESS, address=NEW, address_ref=REF
        )
    with pytest.raises(ValidationError, match="address_ref"):
        DeliveryDecideInput(
            decision=DeliveryDecision.RESHIP,
            address=NEW,
            address_ref=REF,
            actor="a",
            role=Role.COORDINATOR,
        )
    with pytest.raises(ValidationError, match="exactly one"):
        ScoreDeliveryAddressInput(workflow_id="w", shipment_id="s")
    reply = CustomerReply(event_id="e1", option=CustomerOption.NEW_ADDRESS, address_ref=REF)
    assert reply.new_address == REF
    with pytest.raises(ValidationError, match="address is required"):
        CustomerReply(event_id="e1", option=CustomerOption.NEW_ADDRESS)


def test_kept_addresses_compare_by_fingerprint() -> None:
    other_subject = REF.model_copy(update={"subject_id": "subj_address-unit-0002"})
    assert same_destination(REF, other_subject)
    assert not same_destination(REF, REF.model_copy(update={"fingerprint": SENT_TO}))
    # One in clear and one kept never match (the workflow has no key to compare).
    assert not same_destination(REF, NEW) and not same_destination(NEW, REF)
    assert same_destination(NEW, NEW.model_copy(update={"city": " lyon "}))


def test_the_parcels_own_address_is_not_rescored_by_fingerprint() -> None:
    private = pseudonymise_shipment(record(), "subj_shipment-unit-01", SENT_TO)
    here = current_destination(private)
    assert isinstance(here, AddressRef) and here.fingerprint == SENT_TO
    assert not needs_risk_review(private, REF.model_copy(update={"fingerprint": SENT_TO}), POLICY)
    assert needs_risk_review(private, REF, POLICY)
    # A case started in clear keeps comparing addresses.
    assert current_destination(record()) == record().address
    assert not needs_risk_review(record(), record().address, POLICY)


def test_a_caller_may_not_set_the_address_reference(api: TestClient) -> None:  # noqa: F811
    response = api.post(
        "/v1/failed-deliveries/SH-11/customer-reply",
        json={"event_id": "e1", "option": "new_address", "address_ref": REF.model_dump()},
        headers=auth("k-system"),
    )
    assert response.status_code == 422
    assert fields(response) == {
        "address_ref": "set by Steward: send the customer's new address in address"
    }
    decision = api.post(
        "/v1/failed-deliveries/SH-11/decision",
        json={"decision": "reship", "address_ref": REF.model_dump()},
        headers=auth("k-coord"),
    )
    assert decision.status_code == 422
    assert "address_ref" in fields(decision)
