"""Record the chargeback histories replayed by tests/replay/test_chargeback_replay.py.

Same rule as record_histories.py: re-record only when no run of the old code
is still open anywhere; otherwise guard the change with `workflow.patched`.

    .venv/bin/python -m tests.replay.record_chargeback_histories [OUT_DIR]

OUT_DIR (default: the histories folder) lets a run check the recorder without
touching the recorded files.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.chargeback import (
    ChargebackInput,
    ChargebackResult,
    DisputeEvent,
    DisputeEventKind,
    DisputeProvider,
    DisputeStatus,
    ResponseAction,
    chargeback_workflow_id,
)
from tests.replay.recording import run_recorder
from tests.workflows.conftest import _test_server_binary
from tests.workflows.harness import FakeWorld, wait_for_status
from tests.workflows.test_chargeback import POLICY, answer, event
from workers.dev_server import ensure_search_attributes
from workflows.chargeback import ChargebackWorkflow

HISTORIES = Path(__file__).parent / "histories"

Handle = WorkflowHandle[ChargebackWorkflow, ChargebackResult]


async def _start(client: Client, queue: str, first: DisputeEvent) -> Handle:
    return await client.start_workflow(
        ChargebackWorkflow.run,
        ChargebackInput(event=first, policy=POLICY),
        id=chargeback_workflow_id(first.provider, first.dispute_id),
        task_queue=queue,
    )


async def _adyen_pre_arbitration(env: WorkflowEnvironment, queue: str, out: Path) -> str:
    psp = "9915000000000001"
    t0 = await env.get_current_time()
    handle = await _start(
        env.client,
        queue,
        event(
            t0,
            DisputeEventKind.OPENED,
            dispute_id=psp,
            provider=DisputeProvider.ADYEN,
            at=t0,
            due_in=timedelta(days=20),
            event_id=f"{psp}:NOTIFICATION_OF_CHARGEBACK:true",
        ),
    )
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    await env.sleep(timedelta(days=15))  # the coordinator answers two weeks in
    await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(
            t0,
            DisputeEventKind.WON,
            dispute_id=psp,
            provider=DisputeProvider.ADYEN,
            at=t0 + timedelta(days=16),
            event_id=f"{psp}:CHARGEBACK_REVERSED:true",
        ),
    )
    await wait_for_status(handle, DisputeStatus.WON)
    await env.sleep(timedelta(days=10))
    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(
            t0,
            DisputeEventKind.SECOND_CHARGEBACK,
            dispute_id=psp,
            provider=DisputeProvider.ADYEN,
            at=t0 + timedelta(days=26),
            due_in=timedelta(days=40),
            event_id=f"{psp}:SECOND_CHARGEBACK:true",
        ),
    )
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    await handle.result()  # nobody answers: the default acts at the buffer
    history = await handle.fetch_history()
    (out / "chargeback_adyen_pre_arbitration.json").write_text(history.to_json())
    return f"{len(history.events)} events"


async def _stripe_default(env: WorkflowEnvironment, queue: str, out: Path) -> str:
    handle = await _start(
        env.client,
        queue,
        event(
            await env.get_current_time(),
            DisputeEventKind.OPENED,
            dispute_id="dp_recorded_default",
            due_in=timedelta(days=5),
            amount_minor=2_000,
        ),
    )
    await handle.result()
    history = await handle.fetch_history()
    (out / "chargeback_stripe_default_accept.json").write_text(history.to_json())
    return f"{len(history.events)} events"


Scenario = Callable[[WorkflowEnvironment, str, Path], Awaitable[str]]


async def record(out: Path = HISTORIES) -> None:
    scenarios: list[tuple[str, Scenario]] = [
        ("adyen_pre_arbitration", _adyen_pre_arbitration),
        ("stripe_default_accept", _stripe_default),
    ]
    for name, scenario in scenarios:
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter,
            test_server_existing_path=_test_server_binary(),
        )
        await ensure_search_attributes(env.client, env.client.namespace)
        try:
            queue = f"record-{uuid.uuid4()}"
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=[ChargebackWorkflow],
                activities=FakeWorld().activities(),
            ):
                print(f"recorded {name}: {await scenario(env, queue, out)}")
        finally:
            await env.shutdown()


if __name__ == "__main__":
    run_recorder(record(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
