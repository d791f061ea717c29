"""Record the history of the `step-write-failure` patch (issue 14, bug 2),
replayed by tests/replay/test_order_review_replay.py beside the histories
recorded before it (which replay unchanged: a case whose step writes succeed
never reaches the patch and records no marker):

- order_review_rev3_step_write_failed_decline: a manager's decline whose step
  the store refuses for good; the case records `step_write_failed` and an ops
  task instead, and still voids and cancels.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_step_write_histories
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.ids import order_review_id
from domain.review import (
    CURRENT_REVIEW_REVISION,
    DecisionReason,
    OrderReviewInput,
    ReviewDecision,
    ReviewStatus,
)
from tests.factories import make_order
from tests.replay.recording import run_recorder
from tests.workflows.conftest import _test_server_binary
from tests.workflows.harness import FakeWorld, wait_for_status
from tests.workflows.test_order_review import POLICY, REVIEW, decide
from workers.dev_server import ensure_search_attributes
from workflows.order_review import OrderReviewWorkflow

HISTORIES = Path(__file__).parent / "histories"
TARGET = HISTORIES / f"order_review_rev{CURRENT_REVIEW_REVISION}_step_write_failed_decline.json"


async def record() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_test_server_binary(),
    )
    await ensure_search_attributes(env.client, env.client.namespace)
    try:
        world = FakeWorld(risk=REVIEW, refuse_action="decision_decline")
        queue = f"record-{uuid.uuid4()}"
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[OrderReviewWorkflow],
            activities=world.activities(),
        ):
            now = await env.get_current_time()
            order = make_order(f"ORD-{uuid.uuid4().hex[:10]}", now=now)
            handle = await env.client.start_workflow(
                OrderReviewWorkflow.run,
                OrderReviewInput(order=order, policy=POLICY, revision=CURRENT_REVIEW_REVISION),
                id=order_review_id(order.order_id),
                task_queue=queue,
            )
            await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
            await env.sleep(timedelta(minutes=10))
            await handle.execute_update(
                OrderReviewWorkflow.decide,
                decide(ReviewDecision.DECLINE, DecisionReason.SUSPECTED_FRAUD, note="stolen card"),
            )
            result = await handle.result()
            assert result.status is ReviewStatus.CANCELLED, result.status
            assert world.audit.refused == 1 and world.payments.kinds() == ["void"]
            history = await handle.fetch_history()
            TARGET.write_text(history.to_json())
            print(f"recorded {TARGET.name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    run_recorder(record())
