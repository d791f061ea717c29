"""Bench-only workflows: the floor the order review is measured against.

`BareWorkflow` runs the same sequence of regular and local activities as one
order review run (the sequence is read from a real review's history, not
hard-coded), but every activity is a no-op and there is no business logic,
store write, search attribute or query state. `BareUpdateWorkflow` waits for
one update the way a review waits for `decide`, with a validator and a
deadline, so the two update round trips compare like for like.
`BareSecondWorkflow` is what `BareWorkflow` with `start_second` starts from
its last regular activity, as the review's release activity starts the
order's fulfilment: it only waits for a signal (no timer), as a fulfilment
waits for the warehouse's first event.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    # Passed through as the review passes domain/ through: otherwise each run
    # re-creates these classes in its sandbox (and the pydantic converter
    # rebuilds their schema), a cost the review does not pay. The floor is
    # the leanest workflow of this shape, not a handicapped one.
    from bench.bare_types import LOCAL, REGULAR, BareDecision, BareInput, BareResult
    from workflows import visibility

NOOP_ACTIVITY = "bench_noop"
START_SECOND_ACTIVITY = "bench_start_second"
SECOND_WORKFLOW = "BenchBareSecondWorkflow"
# Listed under its own process name: the fulfilment row must not pick these up.
SECOND_PROCESS = "bench-second"
ACTIVITY_TIMEOUT = timedelta(seconds=30)
LOCAL_TIMEOUT = timedelta(seconds=10)
# A bare update target gives up after this long, as every Steward wait has a deadline.
UPDATE_WAIT_LIMIT = timedelta(hours=1)


@activity.defn(name=NOOP_ACTIVITY)
async def bench_noop(step: int) -> int:
    return step


@activity.defn(name=START_SECOND_ACTIVITY)
async def bench_start_second(step: int) -> int:
    """Start the second workflow as FulfilmentStart starts a fulfilment (the
    worker's client, the same reuse policy, start search attributes), nothing else."""
    info = activity.info()
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await activity.client().start_workflow(
            SECOND_WORKFLOW,
            id=f"bench-second:{info.workflow_id}",
            task_queue=info.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=visibility.start_attributes(SECOND_PROCESS, "released", market="FR"),
        )
    return step


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, input: BareInput) -> BareResult:
        regular = local = 0
        last_regular = max((i for i, s in enumerate(input.steps) if s == REGULAR), default=-1)
        for index, step in enumerate(input.steps):
            if input.publish_case and index == len(input.steps) - 1:
                workflow.upsert_search_attributes(
                    visibility.case_updates(
                        "order-review", "released", market="FR", risk_band="low"
                    )
                )
            if step == LOCAL:
                local += 1
                await workflow.execute_local_activity(
                    NOOP_ACTIVITY, index, result_type=int, start_to_close_timeout=LOCAL_TIMEOUT
                )
            elif step == REGULAR:
                regular += 1
                await workflow.execute_activity(
                    START_SECOND_ACTIVITY
                    if input.start_second and index == last_regular
                    else NOOP_ACTIVITY,
                    index,
                    result_type=int,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                )
            else:
                raise ValueError(f"unknown bench step {step!r}")
        return BareResult(activities=regular, local_activities=local)


@workflow.defn(name="BenchBareUpdateWorkflow")
class BareUpdateWorkflow:
    def __init__(self) -> None:
        self._decision: BareDecision | None = None

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None, timeout=UPDATE_WAIT_LIMIT
            )
        except TimeoutError:
            return "timed_out"
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self._decision is not None
        return self._decision.decision

    @workflow.query
    def ready(self) -> bool:
        return True

    @workflow.update
    def decide(self, decision: BareDecision) -> str:
        self._decision = decision
        return decision.decision

    @decide.validator
    def _validate_decide(self, decision: BareDecision) -> None:
        if self._decision is not None:
            raise ValueError("already decided")
        if not decision.actor:
            raise ValueError("actor is required")


@workflow.defn(name=SECOND_WORKFLOW)
class BareSecondWorkflow:
    def __init__(self) -> None:
        self._woken = False

    @workflow.run
    async def run(self) -> str:
        # No timer: the fulfilment's first task issues no command either.
        await workflow.wait_condition(lambda: self._woken)
        return "woken"

    @workflow.signal
    def wake(self) -> None:
        self._woken = True


BENCH_WORKFLOWS: list[type] = [BareWorkflow, BareUpdateWorkflow, BareSecondWorkflow]
BENCH_ACTIVITIES = [bench_noop, bench_start_second]
