"""Record the histories of order review revision 4 (business-hours SLA,
issue 17), replayed by tests/replay/test_order_review_replay.py with every
other review history:

- order_review_rev4_business_hours_escalated: the desk is closed the day the
  review opens and the next; the reminder and the escalation come in
  business time of the day after; a manager approves.
- order_review_rev4_auto_accept, order_review_rev4_review_escalated_approve,
  order_review_rev4_review_escalated_decline: the paths every revision has
  (tests/replay/test_order_review_replay.py asks for them), on a wall-clock
  policy. (tests/replay/record_histories.py, which recorded them for
  revisions 1-3, no longer runs against today's harness.)

    .venv/bin/python -m tests.replay.record_order_review_business_hours_history [OUT_DIR]
"""

from __future__ import annotations

import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.common import Role
from domain.review import DecisionReason, ReviewDecision, ReviewStatus
from tests.replay.recording import record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.test_order_review import (
    ACCEPT,
    POLICY,
    REVIEW,
    decide,
    fresh_order,
    start,
)
from tests.workflows.test_order_review_business_hours import closed_today_and_tomorrow
from workflows.order_review import OrderReviewWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _escalated_in_business_time(harness: Harness) -> WorkflowHandle[Any, Any]:
    now = harness.now()
    policy = POLICY.model_copy(update={"calendar": closed_today_and_tomorrow(now)})
    handle = await start(harness, fresh_order(now), policy, revision=4)
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    opens = datetime.combine(now.date() + timedelta(days=2), time(6), tzinfo=now.tzinfo)
    server_now = await harness.env.get_current_time()
    await harness.sleep(opens + POLICY.review_sla + timedelta(minutes=5) - server_now)
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
    return handle


def _standard_path(decision: ReviewDecision | None) -> Any:
    async def scenario(harness: Harness) -> WorkflowHandle[Any, Any]:
        handle = await start(harness, revision=4)
        if decision is not None:
            await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
            await harness.sleep(timedelta(hours=5))  # reminder and escalation
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
        return handle

    return scenario


async def main(out: Path) -> None:
    await record_history(
        "order_review_rev4_business_hours_escalated",
        [OrderReviewWorkflow],
        FakeWorld(risk=REVIEW),
        _escalated_in_business_time,
        out,
    )
    for name, risk, decision in (
        ("auto_accept", ACCEPT, None),
        ("review_escalated_approve", REVIEW, ReviewDecision.APPROVE),
        ("review_escalated_decline", REVIEW, ReviewDecision.DECLINE),
    ):
        await record_history(
            f"order_review_rev4_{name}",
            [OrderReviewWorkflow],
            FakeWorld(risk=risk),
            _standard_path(decision),
            out,
        )


if __name__ == "__main__":
    run_recorder(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
