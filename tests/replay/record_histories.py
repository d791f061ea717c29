"""Record the histories replayed by tests/replay.

One history per path and per review revision (domain/review.py): revision 1
as `order_review_<path>.json`, later ones as `order_review_rev<N>_<path>.json`.
Files already there are kept: they are what runs of that revision did, and
must go on replaying. To record a new revision's histories:

    .venv/bin/python -m tests.replay.record_histories

`--overwrite` re-records them all; only do that when no run of the old code
is still open anywhere. Otherwise guard a change with `workflow.patched` or a
new revision.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.common import Role
from domain.review import CURRENT_REVIEW_REVISION, DecisionReason, ReviewDecision, ReviewStatus
from domain.risk import RiskAssessment
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


def history_file(name: str, revision: int) -> Path:
    prefix = "order_review_" if revision == 1 else f"order_review_rev{revision}_"
    return HISTORIES / f"{prefix}{name}.json"


# name -> (risk assessment, the decision a manager takes after escalation)
PATHS: dict[str, tuple[RiskAssessment, ReviewDecision | None]] = {
    "auto_accept": (ACCEPT, None),
    "review_escalated_approve": (REVIEW, ReviewDecision.APPROVE),
    "review_escalated_decline": (REVIEW, ReviewDecision.DECLINE),
}


async def record(*, overwrite: bool = False) -> None:
    for revision in range(1, CURRENT_REVIEW_REVISION + 1):
        for name, (assessment, decision) in PATHS.items():
            target = history_file(name, revision)
            if overwrite or not target.exists():
                await record_one(target, assessment, decision, revision)


async def record_one(
    target: Path, assessment: RiskAssessment, decision: ReviewDecision | None, revision: int
) -> None:
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
            handle = await start(env, queue, fresh_order(), revision=revision)
            if decision is not None:
                await wait_for_status(env, handle, ReviewStatus.AWAITING_REVIEW)
                await env.sleep(timedelta(hours=5))  # reminder and escalation
                reason, note = (
                    (DecisionReason.VERIFIED_CUSTOMER, "checked")
                    if decision is ReviewDecision.APPROVE
                    else (DecisionReason.SUSPECTED_FRAUD, "card reported stolen by the issuer")
                )
                await handle.execute_update(
                    OrderReviewWorkflow.decide,
                    decide(decision, reason, note=note, actor="marc", role=Role.MANAGER),
                )
            await handle.result()
            history = await handle.fetch_history()
            target.write_text(history.to_json())
            print(f"recorded {target.name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record(overwrite="--overwrite" in sys.argv[1:]))
