"""Record the chargeback histories replayed by tests/replay/test_chargeback_replay.py.

Same rule as record_histories.py: re-record only when no run of the old code
is still open anywhere; otherwise guard the change with `workflow.patched`.

    .venv/bin/python -m tests.replay.record_chargeback_histories
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.chargeback import DisputeEventKind, DisputeProvider, DisputeStatus, ResponseAction
from tests.workflows.conftest import _test_server_binary
from tests.workflows.test_chargeback import FakeWorld, answer, event, start, wait_for
from workers.dev_server import ensure_search_attributes
from workflows.chargeback import ChargebackWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _adyen_pre_arbitration(env: WorkflowEnvironment, queue: str) -> str:
    psp = "9915000000000001"
    t0 = datetime.now(UTC)
    handle = await start(
        env,
        queue,
        event(
            DisputeEventKind.OPENED,
            dispute_id=psp,
            provider=DisputeProvider.ADYEN,
            at=t0,
            due_in=timedelta(days=20),
            event_id=f"{psp}:NOTIFICATION_OF_CHARGEBACK:true",
        ),
    )
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)
    await env.sleep(timedelta(days=15))  # the coordinator answers two weeks in
    await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(
            DisputeEventKind.WON,
            dispute_id=psp,
            provider=DisputeProvider.ADYEN,
            at=t0 + timedelta(days=16),
            event_id=f"{psp}:CHARGEBACK_REVERSED:true",
        ),
    )
    await wait_for(env, handle, DisputeStatus.WON)
    await env.sleep(timedelta(days=10))
    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(
            DisputeEventKind.SECOND_CHARGEBACK,
            dispute_id=psp,
            provider=DisputeProvider.ADYEN,
            at=t0 + timedelta(days=26),
            due_in=timedelta(days=40),
            event_id=f"{psp}:SECOND_CHARGEBACK:true",
        ),
    )
    await wait_for(env, handle, DisputeStatus.AWAITING_COORDINATOR)
    await handle.result()  # nobody answers: the default acts at the buffer
    history = await handle.fetch_history()
    (HISTORIES / "chargeback_adyen_pre_arbitration.json").write_text(history.to_json())
    return f"{len(history.events)} events"


async def _stripe_default(env: WorkflowEnvironment, queue: str) -> str:
    handle = await start(
        env,
        queue,
        event(
            DisputeEventKind.OPENED,
            dispute_id="dp_recorded_default",
            due_in=timedelta(days=5),
            amount_minor=2_000,
        ),
    )
    await handle.result()
    history = await handle.fetch_history()
    (HISTORIES / "chargeback_stripe_default_accept.json").write_text(history.to_json())
    return f"{len(history.events)} events"


async def record() -> None:
    for name, scenario in (
        ("adyen_pre_arbitration", _adyen_pre_arbitration),
        ("stripe_default_accept", _stripe_default),
    ):
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter,
            test_server_existing_path=_test_server_binary(),
        )
        await ensure_search_attributes(env.client, env.client.namespace)
        try:
            world = FakeWorld()
            queue = f"record-{uuid.uuid4()}"
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=[ChargebackWorkflow],
                activities=world.activities(),
            ):
                print(f"recorded {name}: {await scenario(env, queue)}")
        finally:
            await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
