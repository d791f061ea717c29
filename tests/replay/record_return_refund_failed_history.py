"""Record the history of the `return-refund-failed-task` patch, replayed by
tests/replay/test_delivery_replay.py beside the return histories recorded
before it (which must keep replaying unchanged):

- return_refund_refused_finance_task: the provider refuses the refund for
  good; the return ends `refund_failed` with a finance task open.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_return_refund_failed_history [OUT_DIR]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.conftest import _test_server_binary
from tests.workflows.harness import FakeWorld, Harness
from tests.workflows.test_returns import deliver, qc, return_input, start
from workers.dev_server import ensure_search_attributes
from workflows.returns import ReturnWorkflow

HISTORIES = Path(__file__).parent / "histories"
NAME = "return_refund_refused_finance_task"


async def record(out: Path = HISTORIES) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_test_server_binary(),
    )
    await ensure_search_attributes(env.client, env.client.namespace)
    try:
        world = FakeWorld(refuse_refund=True)
        harness = Harness(env, world, await env.get_current_time())
        async with Worker(
            env.client,
            task_queue=harness.task_queue,
            workflows=[ReturnWorkflow],
            activities=world.activities(),
        ):
            handle = await start(harness, return_input(harness.now()))
            await deliver(harness, handle)
            await handle.signal(ReturnWorkflow.qc_result, qc())
            await handle.result()
            history = await handle.fetch_history()
        (out / f"{NAME}.json").write_text(history.to_json())
        print(f"recorded {NAME}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
