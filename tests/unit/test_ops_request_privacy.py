"""Ops requests' personal values at the edge (issue 21), without Temporal or
PostgreSQL: exactly one of a value and its subject id in the details; a
caller may not set a subject id (422 naming it, nothing stored or started);
the edge keeps the values encrypted and hands the workflow the ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from clients.ops_request import keep_personal_values
from domain.common import Role
from domain.ops_request import AddressChangeDetails, OpsRequestDraft, QcCheckDetails
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import ops_requests as ops_store
from store import personal_data
from store.order_subjects import order_subject_id
from tests.unit.recording_db import RecordingConnection
from tests.unit.test_api_validation import MustNotBeCalled
from workers.codec import EncryptionCodec, Keyring
from workers.settings import Settings

ADDRESS = {"line1": "17 avenue Montaigne", "city": "Paris", "postal_code": "75008", "country": "FR"}
SUBJECT = "subj_abcdefgh12345678"


def test_an_address_change_has_exactly_one_of_address_and_subject() -> None:
    assert AddressChangeDetails.model_validate(
        {"order_id": "FR-1", "address": None, "address_subject_id": SUBJECT}
    ).address_subject_id == (SUBJECT)
    with pytest.raises(ValidationError, match="address: the new address is required"):
        AddressChangeDetails.model_validate({"order_id": "FR-1", "address": None})
    with pytest.raises(ValidationError, match="address_subject_id: set by Steward"):
        AddressChangeDetails.model_validate(
            {"order_id": "FR-1", "address": ADDRESS, "address_subject_id": SUBJECT}
        )
    with pytest.raises(ValidationError, match="address_subject_id"):
        AddressChangeDetails.model_validate(
            {"order_id": "FR-1", "address": None, "address_subject_id": "not-a-subject"}
        )


def test_a_qc_check_has_exactly_one_of_reason_and_subject() -> None:
    with pytest.raises(ValidationError, match="reason: what to check is required"):
        QcCheckDetails.model_validate({"order_id": "FR-1", "reason": None})
    with pytest.raises(ValidationError, match="reason_subject_id: set by Steward"):
        QcCheckDetails.model_validate(
            {"order_id": "FR-1", "reason": "scratch", "reason_subject_id": SUBJECT}
        )


async def test_the_edge_keeps_the_values_and_hands_the_workflow_their_ids() -> None:
    draft = OpsRequestDraft.model_validate(
        {
            "details": {"type": "address_change", "order_id": "FR-1", "address": ADDRESS},
            "description": "Mme Vauquelin called",
        }
    )
    db = RecordingConnection()
    private, description_ref = await keep_personal_values(
        cast(Any, db), draft, request_id="OPS-1", workflow_id="ops-request:OPS-1"
    )
    assert private.description == ""
    details = private.details
    assert isinstance(details, AddressChangeDetails) and details.address is None
    assert details.address_subject_id == ops_store.address_subject_id("ops-request:OPS-1")
    assert description_ref == ops_store.text_subject_id("ops-request:OPS-1")
    sent = db.sent()
    assert b"Montaigne" not in sent and b"Vauquelin" not in sent  # encrypted
    inserted = [args for sql, args in db.statements if "INSERT INTO personal_subjects" in sql]
    # Both subjects are owned by the order's subject: a privacy request on
    # the customer reaches them.
    assert [(a[1], a[2]) for a in inserted] == [
        ("message", order_subject_id("FR-1")),
        ("address", order_subject_id("FR-1")),
    ]
    refs = {args[1:] for sql, args in db.statements if "INSERT INTO personal_subject_refs" in sql}
    assert refs == {("ops_request", "OPS-1"), ("order", "FR-1")}


async def test_a_request_without_personal_values_stores_nothing() -> None:
    draft = OpsRequestDraft.model_validate({"details": {"type": "order_status", "order_id": "A"}})
    db = RecordingConnection()
    private, description_ref = await keep_personal_values(
        cast(Any, db), draft, request_id="OPS-2", workflow_id="ops-request:OPS-2"
    )
    assert (private, description_ref, db.statements) == (draft, None, [])


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, STEWARD_DATA_DIR=tmp_path, STEWARD_TASK_QUEUE="unit-tq")
    app = create_app(
        settings,
        client=cast(Any, MustNotBeCalled("Temporal client")),
        pool=cast(Any, MustNotBeCalled("database pool")),
        api_keys=ApiKeyStore.from_mapping({"k-coord": ("alice", Role.COORDINATOR)}),
        codec=EncryptionCodec(Keyring.generate()),
    )
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    ("details", "field"),
    [
        (
            {"type": "address_change", "order_id": "FR-1", "address_subject_id": SUBJECT},
            "details.address_subject_id",
        ),
        (
            {"type": "qc_check", "order_id": "FR-1", "reason_subject_id": SUBJECT},
            "details.reason_subject_id",
        ),
    ],
)
def test_a_caller_may_not_set_a_subject_id(
    api: TestClient, details: dict[str, Any], field: str
) -> None:
    # The id instead of the value, or both: 422 naming the id; nothing stored
    # or started (the pool and the client fail the test if reached).
    value = "address" if "address_subject_id" in details else "reason"
    for body in (
        {"details": {**details, value: None}},
        {"details": {**details, value: ADDRESS if value == "address" else "scratch"}},
    ):
        response = api.post(
            "/v1/ops-requests", json=body, headers={"Authorization": "Bearer k-coord"}
        )
        assert response.status_code == 422, response.text
        assert field.rsplit(".", 1)[1] in response.text
        assert "set by Steward" in response.text


def test_personal_data_is_configured_for_these_tests() -> None:
    # keep_personal_values encrypts with the session's throw-away keyring.
    assert personal_data.is_configured()
