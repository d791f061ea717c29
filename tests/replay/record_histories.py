"""Record the histories replayed by tests/replay.

Run after a deliberate change to a workflow's commands, *before* merging it,
only when the old histories no longer need to replay (no run of the old code
is still open anywhere):

    .venv/bin/python -m tests.replay.record_histories

Otherwise keep the old files and guard the change with `workflow.patched`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.common import Role
from domain.review import DecisionReason, ReviewDecision, ReviewStatus
from tests.workflows.conftest import _test_server_binary
from tests.workflows.test_order_review import (
    ACCEPT,
    REVIEW,
    FakeWorld,
    decide,
    fresh_order,
    start,
    wait_for_status,
)
from workers.dev_server import ensure_search_attributes
from workflows.order_review import OrderReviewWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def record() -> None:
    for name, assessment in (("auto_accept", ACCEPT), ("review_escalated_approve", REVIEW)):
        # A fresh server per history: its clock only moves forward.
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter,
            test_server_existing_path=_test_server_binary(),
        )
        await ensure_search_attributes(env.client, env.client.namespace)
        try:
            world = FakeWorld(assessment)
            queue = f"record-{uuid.uuid4()}"
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=[OrderReviewWorkflow],
                activities=world.activities(),
            ):
                handle = await start(env, queue, fresh_order())
                if assessment is REVIEW:
                    await wait_for_status(env, handle, ReviewStatus.AWAITING_REVIEW)
                    await env.sleep(timedelta(hours=5))  # reminder and escalation
                    await handle.execute_update(
                        OrderReviewWorkflow.decide,
                        decide(
                            ReviewDecision.APPROVE,
                            DecisionReason.VERIFIED_CUSTOMER,
                            actor="marc",
                            role=Role.MANAGER,
                        ),
                    )
                await handle.result()
                history = await handle.fetch_history()
                (HISTORIES / f"order_review_{name}.json").write_text(history.to_json())
                print(f"recorded {name}: {len(history.events)} events")
        finally:
            await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
