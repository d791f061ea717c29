"""Ops requests with their personal values behind subject ids (issue 21).

The edge (clients/ops_request.py keep_personal_values, run here on a
recording connection: the values are encrypted before they leave it) keeps
the requester's description, a QC check's reason and a new address in the
personal-data store; the workflow gets their subject ids, hands the address
subject to fulfilment's action, and its history holds none of the values.
Runs opened with the old shape (the values in the input) are covered by
tests/workflows/test_ops_request.py and the replay tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from clients.ops_request import keep_personal_values
from domain.ops_request import (
    AddressChangeDetails,
    FulfilmentActionKind,
    OpsRequestDraft,
    OpsRequestInput,
    OpsRequestStatus,
    OutcomeCode,
    QcCheckDetails,
    ResolveInput,
    RootCause,
)
from store import ops_requests as ops_store
from tests.unit.recording_db import RecordingConnection
from tests.workflows.harness import Harness
from tests.workflows.test_ops_request import COORDINATOR, OpsWorld, request, start
from tests.workflows.test_order_review_personal_data import history_bytes
from workflows.ops_request import OpsRequestWorkflow

pytestmark = pytest.mark.workflows([OpsRequestWorkflow])

STREET = "17 avenue Montaigne"
POSTCODE = "75008"
DESCRIPTION = "Mme Vauquelin phoned from +33 6 12 34 56 78"
QC_REASON = "Mme Vauquelin says the clasp was scratched"
DONE = ResolveInput(
    actor="camille",
    role=COORDINATOR.role,
    outcome=OutcomeCode.DONE,
    root_cause=RootCause.CUSTOMER_REQUEST,
)


@pytest.fixture
def world() -> OpsWorld:
    return OpsWorld()


def new_address() -> dict[str, Any]:
    return {"line1": STREET, "city": "Paris", "postal_code": POSTCODE, "country": "FR"}


async def through_the_edge(
    harness: Harness, details: dict[str, Any]
) -> tuple[OpsRequestInput, RecordingConnection]:
    """The input the API starts the workflow with, for a draft with these details."""
    plain = request(harness, details)
    draft = OpsRequestDraft.model_validate(
        {"details": details, "priority": "normal", "description": DESCRIPTION}
    )
    db = RecordingConnection()
    private, description_ref = await keep_personal_values(
        db,  # type: ignore[arg-type]  # records what put_subject sends
        draft,
        request_id=plain.request_id,
        workflow_id=f"ops-request:{plain.request_id}",
    )
    sent = db.sent()
    for value in (STREET, DESCRIPTION, QC_REASON):
        assert value.encode() not in sent, f"{value!r} left the edge unencrypted"
    return plain.model_copy(update={"draft": private, "description_ref": description_ref}), db


async def test_an_address_change_carries_subject_ids_and_its_history_holds_no_value(
    harness: Harness, world: OpsWorld
) -> None:
    input, _ = await through_the_edge(
        harness, {"type": "address_change", "order_id": "FR-2101", "address": new_address()}
    )
    workflow_id = f"ops-request:{input.request_id}"
    details = input.draft.details
    assert isinstance(details, AddressChangeDetails) and details.address is None
    assert details.address_subject_id == ops_store.address_subject_id(workflow_id)
    assert input.description_ref == ops_store.text_subject_id(workflow_id)
    assert input.draft.description == ""

    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    resolved = await handle.execute_update(OpsRequestWorkflow.resolve, DONE)
    assert resolved.status is OpsRequestStatus.RESOLVED
    (action,) = world.desk.actions
    # Fulfilment's action gets the subject id; the activity reads the address.
    assert action.kind is FulfilmentActionKind.CHANGE_ADDRESS
    assert action.address is None
    assert action.address_subject_id == details.address_subject_id
    await handle.result()

    stored = await history_bytes(handle)
    assert input.request_id.encode() in stored  # the right history, decoded
    assert details.address_subject_id.encode() in stored
    for value in (STREET, POSTCODE, DESCRIPTION, "Vauquelin"):
        assert value.encode() not in stored, f"{value!r} is in the ops request's history"
    for entry in world.audit.entries():
        assert STREET not in entry.model_dump_json()


async def test_a_qc_check_s_reason_is_a_subject_too(harness: Harness, world: OpsWorld) -> None:
    input, _ = await through_the_edge(
        harness, {"type": "qc_check", "order_id": "FR-2102", "reason": QC_REASON}
    )
    details = input.draft.details
    assert isinstance(details, QcCheckDetails) and details.reason is None
    # One message subject holds the requester's texts: the description and the reason.
    assert details.reason_subject_id == input.description_ref
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    await handle.execute_update(OpsRequestWorkflow.resolve, DONE)
    await handle.result()
    (action,) = world.desk.actions
    assert action.kind is FulfilmentActionKind.QC_CHECK
    stored = await history_bytes(handle)
    assert input.request_id.encode() in stored
    for value in (QC_REASON, DESCRIPTION, "Vauquelin"):
        assert value.encode() not in stored, f"{value!r} is in the ops request's history"


async def test_the_old_input_shape_still_carries_the_address(
    harness: Harness, world: OpsWorld
) -> None:
    """What the checks above guard against: a run opened before issue 21's
    edge (the address in its input) still runs, and its history holds it."""
    input = request(
        harness, {"type": "address_change", "order_id": "FR-2103", "address": new_address()}
    )
    handle = await start(harness, input)
    await handle.execute_update(OpsRequestWorkflow.claim, COORDINATOR)
    await handle.execute_update(OpsRequestWorkflow.resolve, DONE)
    await handle.result()
    (action,) = world.desk.actions
    assert action.address is not None and action.address.line1 == STREET
    assert action.address_subject_id is None
    assert STREET.encode() in await history_bytes(handle)
