"""Record the fulfilment history of issue 21's address change by subject id,
replayed by tests/replay/test_fulfilment_replay.py (every fulfilment_*.json):

- fulfilment_rev3_address_subject_delivered: a hold; an address change sent
  as `address_subject_id` (the edge kept the address) before packing; a
  change by an unknown subject, refused (the case goes on); after packing a
  change to another country by subject id (the activity rescores it, the
  carrier intercepts); handed to the carrier with a booking, delivered.

Only histories not on disk yet are recorded (name some to re-record them).
Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_fulfilment_subject_histories
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.fulfilment import (
    ChangeAddressInput,
    FulfilmentContract,
    FulfilmentStatus,
    HoldReason,
    PlaceHoldInput,
    ReleaseHoldInput,
    WarehouseEventKind,
)
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness
from tests.workflows.test_fulfilment import (
    COORDINATOR,
    event,
    fulfilment_input,
    reach,
    start,
    update,
)
from tests.workflows.test_fulfilment_personal_data import (
    GENEVA,
    GENEVA_SUBJECT,
    LYON,
    LYON_SUBJECT,
)
from workflows.fulfilment import FulfilmentWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _address_subject_delivered(harness: Harness) -> WorkflowHandle[Any, Any]:
    harness.world.fulfilment.edge_addresses.update({LYON_SUBJECT: LYON, GENEVA_SUBJECT: GENEVA})
    input = fulfilment_input(harness)
    handle = await start(harness, input)
    oid, t0 = input.order_id, harness.now()
    signal = FulfilmentContract.SIGNAL_WAREHOUSE_EVENT
    await handle.signal(signal, event(oid, WarehouseEventKind.ALLOCATED, t0))
    state = await update(
        handle,
        FulfilmentContract.UPDATE_PLACE_HOLD,
        PlaceHoldInput(reason=HoldReason.INCORRECT_ADDRESS, note="flat missing", **COORDINATOR),
    )
    await update(
        handle,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        ChangeAddressInput(address_subject_id=LYON_SUBJECT, note="customer moved", **COORDINATOR),
    )
    try:
        await update(
            handle,
            FulfilmentContract.UPDATE_CHANGE_ADDRESS,
            ChangeAddressInput(address_subject_id="subj_nobody-knows-this", **COORDINATOR),
        )
    except WorkflowUpdateFailedError:
        pass
    else:
        raise SystemExit("an unknown address subject was accepted")
    await update(
        handle,
        FulfilmentContract.UPDATE_RELEASE_HOLD,
        ReleaseHoldInput(handle=state.holds[0].handle, note="fixed", **COORDINATOR),
    )
    await handle.signal(signal, event(oid, WarehouseEventKind.PACKED, t0 + timedelta(minutes=70)))
    await reach(handle, FulfilmentStatus.PACKED)
    await update(
        handle,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        ChangeAddressInput(address_subject_id=GENEVA_SUBJECT, **COORDINATOR),
    )
    await handle.signal(
        signal,
        event(
            oid,
            WarehouseEventKind.HANDED_TO_CARRIER,
            t0 + timedelta(hours=3),
            carrier="ups",
            tracking_number="1ZREC0021",
        ),
    )
    await reach(handle, FulfilmentStatus.HANDED_TO_CARRIER)
    await handle.signal(signal, event(oid, WarehouseEventKind.DELIVERED, t0 + timedelta(days=1)))
    await handle.result()
    return handle


async def main(names: list[str]) -> None:
    """Record `names` (default: every history not on disk yet: never overwrite one)."""
    for name, scenario in (
        ("fulfilment_rev3_address_subject_delivered", _address_subject_delivered),
    ):
        wanted = name in names if names else not (HISTORIES / f"{name}.json").exists()
        if wanted:
            await record_history(name, [FulfilmentWorkflow], FakeWorld(), scenario, HISTORIES)


if __name__ == "__main__":
    run_recorder(main(sys.argv[1:]))
