"""Record the histories replayed by tests/replay.

One history per path and per review revision (domain/review.py): revision 1
as `order_review_<path>.json`, later ones as `order_review_rev<N>_<path>.json`.
Files already there are kept: they are what runs of that revision did, and
must go on replaying. To record a new revision's histories:

    .venv/bin/python -m tests.replay.record_histories [--out DIR] [--overwrite]

`--out DIR` writes to another directory (to check the scenarios still run
without touching the recorded files). `--overwrite` re-records them all;
only do that when no run of the old code is still open anywhere. Otherwise
guard a change with `workflow.patched` or a new revision.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.common import Role
from domain.review import CURRENT_REVIEW_REVISION, DecisionReason, ReviewDecision, ReviewStatus
from domain.risk import RiskAssessment
from tests.replay.recording import Scenario, record_history, run_recorder
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.test_order_review import ACCEPT, REVIEW, decide, start
from workflows.order_review import OrderReviewWorkflow

HISTORIES = Path(__file__).parent / "histories"


def history_name(name: str, revision: int) -> str:
    prefix = "order_review_" if revision == 1 else f"order_review_rev{revision}_"
    return f"{prefix}{name}"


# name -> (risk assessment, the decision a manager takes after escalation)
PATHS: dict[str, tuple[RiskAssessment, ReviewDecision | None]] = {
    "auto_accept": (ACCEPT, None),
    "review_escalated_approve": (REVIEW, ReviewDecision.APPROVE),
    "review_escalated_decline": (REVIEW, ReviewDecision.DECLINE),
}


def scenario(decision: ReviewDecision | None, revision: int) -> Scenario:
    async def run(harness: Harness) -> WorkflowHandle[Any, Any]:
        handle = await start(harness, revision=revision)
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

    return run


async def record(out: Path = HISTORIES, *, overwrite: bool = False) -> list[str]:
    """Record every revision's paths whose file is not in `out` yet (all of
    them with `overwrite`); the names recorded."""
    recorded = []
    for revision in range(1, CURRENT_REVIEW_REVISION + 1):
        for path, (assessment, decision) in PATHS.items():
            name = history_name(path, revision)
            if overwrite or not (out / f"{name}.json").exists():
                await record_history(
                    name,
                    [OrderReviewWorkflow],
                    FakeWorld(risk=assessment),
                    scenario(decision, revision),
                    out,
                )
                recorded.append(name)
    return recorded


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HISTORIES, help="directory to write to")
    parser.add_argument("--overwrite", action="store_true", help="re-record files already there")
    args = parser.parse_args()
    run_recorder(record(args.out, overwrite=args.overwrite))
