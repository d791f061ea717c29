"""A fulfilment's address change with the address behind a subject id (issue 21).

The edge (API route, ops desk) keeps the new address in the personal-data
store (store/fulfilment.put_edge_address) and sends `address_subject_id`; the
update, the apply activity's input and the whole history hold no part of the
address, and the activity still works on the real address (the fake resolves
the id as the real activity does with store/fulfilment.get_address). The old
shape (`address` in the update) is covered by tests/workflows/test_fulfilment.py
and the replay tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.fulfilment import (
    ChangeAddressInput,
    ChangeAddressOutcome,
    FulfilmentContract,
    FulfilmentStatus,
    HoldReason,
)
from domain.orders import Address
from tests.workflows.harness import FakeWorld, Harness
from tests.workflows.test_fulfilment import (
    COORDINATOR,
    fulfilment_input,
    start,
    state_of,
    update,
)
from workflows.fulfilment import FulfilmentWorkflow

pytestmark = pytest.mark.workflows([FulfilmentWorkflow])

LYON = Address(
    line1="17 place Bellecour", line2="Escalier Vauquelin", city="Lyon", postal_code="69002",
    country="FR",
)  # fmt: skip
GENEVA = Address(line1="9 quai du Mont-Blanc", city="Genève", postal_code="1201", country="CH")
LYON_SUBJECT = "subj_fulfilment-edge-lyon-01"
GENEVA_SUBJECT = "subj_fulfilment-edge-geneva-1"


def values_of(address: Address) -> list[str]:
    return [v for v in (address.line1, address.line2, address.city, address.postal_code) if v]


async def history_bytes(handle: WorkflowHandle[Any, Any]) -> bytes:
    """The run's whole history as stored (no codec in the harness: payloads
    are their JSON, searchable as bytes)."""
    return b"\n".join([e.SerializeToString() async for e in handle.fetch_history_events()])


async def test_an_address_change_by_subject_id_keeps_the_address_out_of_the_history(
    harness: Harness, world: FakeWorld
) -> None:
    world.fulfilment.edge_addresses[LYON_SUBJECT] = LYON
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    state = await update(
        handle,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        ChangeAddressInput(address_subject_id=LYON_SUBJECT, note="customer moved", **COORDINATOR),
    )
    change = state.address_changes[-1]
    assert change.outcome is ChangeAddressOutcome.APPLIED
    assert state.address_ref == LYON_SUBJECT and state.address_fingerprint == change.after
    # The activity got the subject id and resolved the real address.
    (applied,) = world.fulfilment.addresses
    assert applied.address is None and applied.address_subject_id == LYON_SUBJECT
    assert applied.destination_country == "FR" and applied.rescore is False
    assert world.fulfilment.applied_addresses == [LYON]
    assert world.fulfilment.warehouse_addresses == [LYON_SUBJECT]
    entry = world.audit.entries("address_changed")[0]
    assert entry.after["rescored"] is False and entry.after["country"] == "FR"

    history = await history_bytes(handle)
    assert LYON_SUBJECT.encode() in history  # the search below reads the payloads
    for value in values_of(LYON):
        assert value.encode() not in history, value
    assert "Bellecour" not in str(entry.model_dump())


@pytest.mark.world(rescore_high=True)
async def test_a_new_country_by_subject_id_is_rescored_by_the_activity(
    harness: Harness, world: FakeWorld
) -> None:
    """The workflow cannot see the country behind the id: the activity
    rescores when it is not the current destination's, and says so."""
    world.fulfilment.edge_addresses[GENEVA_SUBJECT] = GENEVA
    input = fulfilment_input(harness)  # under FR's high-value line: only the country rescores
    handle = await start(harness, input)
    state = await update(
        handle,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        ChangeAddressInput(address_subject_id=GENEVA_SUBJECT, **COORDINATOR),
    )
    (applied,) = world.fulfilment.addresses
    assert applied.rescore is False  # not high value ...
    entry = world.audit.entries("address_changed")[0]
    assert entry.after["rescored"] is True  # ... but a new country
    assert entry.after["country"] == "CH" and state.destination_country == "CH"
    assert state.address_changes[-1].outcome is ChangeAddressOutcome.HELD_FOR_REVIEW
    assert [h.reason for h in state.active_holds] == [HoldReason.ADDRESS_CHANGE]
    history = await history_bytes(handle)
    for value in values_of(GENEVA):
        assert value.encode() not in history, value


async def test_an_unknown_address_subject_refuses_the_change_and_the_case_goes_on(
    harness: Harness, world: FakeWorld
) -> None:
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(
            handle,
            FulfilmentContract.UPDATE_CHANGE_ADDRESS,
            ChangeAddressInput(address_subject_id="subj_nobody-knows-this", **COORDINATOR),
        )
    assert "address_subject_id: unknown subject subj_nobody-knows-this" in str(refused.value.cause)
    state = await state_of(handle)
    assert state.status is FulfilmentStatus.RELEASED and state.address_changes == []
    assert state.address_ref == input.address_ref
    # The next change with a kept address goes through.
    world.fulfilment.edge_addresses[LYON_SUBJECT] = LYON
    state = await update(
        handle,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        ChangeAddressInput(address_subject_id=LYON_SUBJECT, **COORDINATOR),
    )
    assert state.address_changes[-1].outcome is ChangeAddressOutcome.APPLIED
