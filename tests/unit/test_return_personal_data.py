"""A return's personal values at the API edge (issue 21): the customer's email
and an exchange's replacement order go to the personal-data store, the return
starts with placeholders and subject ids, and a caller may not name the
subject ids itself. Without Temporal or PostgreSQL (recording stand-ins)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from domain.order_privacy import PLACEHOLDER_EMAIL, is_pseudonymised, pseudonymise_order
from domain.returns import (
    CancelReturnRequest,
    CustomerContact,
    ReturnInput,
    return_without_personal_values,
)
from tests.factories import make_order, order_data
from tests.unit.recording_db import RecordingConnection
from tests.unit.test_api_validation import RecordingClient, _json, auth, fields, make_client
from workers.codec import EncryptionCodec, Keyring
from workers.settings import Settings

EMAIL = "ines.fournier@example.fr"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, STEWARD_DATA_DIR=tmp_path, STEWARD_TASK_QUEUE="unit-tq")


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec(Keyring.generate())


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "rma_id": "RMA-PD-1",
        "order": {
            "order_id": "FR-PD-1",
            "market": "FR",
            "currency": "EUR",
            "delivered_at": (datetime.now(UTC) - timedelta(days=3)).isoformat(),
            "lines": [
                {
                    "sku": "HB-TOTE-MM-NOIR",
                    "name": "Tote MM",
                    "unit_price_minor": 245_000,
                    "quantity": 1,
                }
            ],
            "authorisation_ref": "auth-FR-PD-1",
        },
        "lines": [{"sku": "HB-TOTE-MM-NOIR", "quantity": 1}],
        "reason": "too_small",
        "resolution": "refund",
        "contact": {"email": EMAIL, "locale": "fr"},
    }
    data.update(overrides)
    return data


def test_the_api_keeps_the_email_and_the_replacement_and_starts_with_subject_ids(
    settings: Settings, codec: EncryptionCodec
) -> None:
    temporal = RecordingClient()
    db = RecordingConnection()
    api = make_client(settings, codec, temporal=temporal, pool=db)
    replacement = order_data("FR-PD-EXC", customer={"email": EMAIL})
    response = api.post(
        "/v1/returns",
        json=body(resolution="exchange", replacement=json.loads(_json(replacement))),
        headers=auth("k-system"),
    )
    assert response.status_code == 202, response.text

    ((args, _),) = temporal.starts
    started: ReturnInput = args[1]
    assert started.contact == CustomerContact(email=PLACEHOLDER_EMAIL, locale="fr")
    assert started.contact_subject_id is not None
    assert started.contact_subject_id.startswith("subj_")
    assert started.replacement is not None and is_pseudonymised(started.replacement)
    assert started.replacement_subject_id is not None
    assert started.replacement_subject_id != started.contact_subject_id
    # Business facts stay: the replacement's items and total.
    assert started.replacement.total_minor == make_order("FR-PD-EXC").total_minor
    sent = started.model_dump_json()
    personal = (
        EMAIL,
        replacement["customer"]["full_name"],
        replacement["customer"]["phone"],
        replacement["shipping_address"]["line1"],
        replacement["device"]["ip_address"],
    )
    for value in personal:
        assert value not in sent, f"{value!r} is in the return's input"
        # Encrypted in the store: not one of them among the values written.
        assert value.encode() not in db.sent()
    inserted = [a for sql, a in db.statements if "INSERT INTO personal_subjects" in sql]
    assert {row[0] for row in inserted} == {
        started.contact_subject_id,
        started.replacement_subject_id,
    }
    assert {row[1] for row in inserted} == {"contact", "order"}
    refs = {a for sql, a in db.statements if "INSERT INTO personal_subject_refs" in sql}
    assert (started.contact_subject_id, "return", "RMA-PD-1") in refs
    assert (started.contact_subject_id, "order", "FR-PD-1") in refs
    assert (started.replacement_subject_id, "return", "RMA-PD-1") in refs


@pytest.mark.parametrize("name", ["contact_subject_id", "replacement_subject_id"])
def test_a_caller_may_not_name_a_subject_id(
    settings: Settings, codec: EncryptionCodec, name: str
) -> None:
    # Both stand-ins fail the test if the API reaches them.
    api = make_client(settings, codec)
    response = api.post(
        "/v1/returns", json=body(**{name: "subj_abcdefgh1234"}), headers=auth("k-system")
    )
    assert response.status_code == 422
    assert fields(response) == {name: "Extra inputs are not permitted"}


def test_the_input_takes_exactly_one_of_an_email_and_its_subject() -> None:
    clear = ReturnInput.model_validate(
        {**body(), "requested_by": "cs-julie"}
    )  # the old shape: still accepted (running cases)
    assert clear.contact_subject_id is None
    kept = return_without_personal_values(
        clear, contact_subject_id="subj_contact-0001", replacement_subject_id=None
    )
    assert str(kept.contact.email) == PLACEHOLDER_EMAIL and kept.contact.locale == "fr"
    with pytest.raises(ValidationError, match="contact: with a contact_subject_id"):
        ReturnInput.model_validate({**clear.model_dump(), "contact_subject_id": "subj_c-00000001"})
    with pytest.raises(ValidationError, match="contact_subject_id: the contact's email is a"):
        ReturnInput.model_validate({**kept.model_dump(), "contact_subject_id": None})
    with pytest.raises(ValidationError, match="contact_subject_id"):
        ReturnInput.model_validate({**kept.model_dump(), "contact_subject_id": "not-a-subject"})


def test_a_replacement_subject_id_needs_a_pseudonymised_replacement() -> None:
    replacement = make_order("FR-PD-EXC2")
    request = {
        **body(resolution="exchange", replacement=replacement.model_dump()),
        "requested_by": "cs-julie",
    }
    assert ReturnInput.model_validate(request).replacement == replacement  # old shape
    with pytest.raises(ValidationError, match="replacement: with a replacement_subject_id"):
        ReturnInput.model_validate({**request, "replacement_subject_id": "subj_r-00000001"})
    kept = ReturnInput.model_validate(
        {
            **request,
            "replacement": pseudonymise_order(replacement).model_dump(),
            "replacement_subject_id": "subj_r-00000001",
        }
    )
    assert kept.replacement is not None and is_pseudonymised(kept.replacement)


def test_a_cancel_carries_exactly_one_of_the_reason_and_its_subject(
    settings: Settings, codec: EncryptionCodec
) -> None:
    assert CancelReturnRequest(event_id="c1", reason="kept it").reason_for_the_case == "kept it"
    kept = CancelReturnRequest(event_id="c1", reason_subject_id="subj_reason-0001")
    assert kept.reason_for_the_case == "the customer's reason, kept in the personal-data store"
    for wrong in ({}, {"reason": "kept it", "reason_subject_id": "subj_reason-0001"}):
        with pytest.raises(ValidationError, match="reason: give the customer's reason"):
            CancelReturnRequest.model_validate({"event_id": "c1", **wrong})
    # The API sets the subject id; a caller naming one is refused before
    # anything is stored or signalled (both stand-ins fail the test if used).
    api = make_client(settings, codec)
    response = api.post(
        "/v1/returns/RMA-1/cancel",
        json={"event_id": "c1", "reason": "kept it", "reason_subject_id": "subj_reason-0001"},
        headers=auth("k-ops"),
    )
    assert response.status_code == 422
    assert fields(response) == {"reason_subject_id": "Extra inputs are not permitted"}
