"""The silence sweep workflow under time skipping: it runs the sweep activity
once, with the workflow's clock, and retries it at the same moment."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.carrier_sweep import SWEEP_SILENT_SHIPMENTS, CarrierSweepInput, CarrierSweepResult
from workflows.carrier_sweep import CarrierSilenceSweepWorkflow


class FakeSweep:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[CarrierSweepInput] = []

    @activity.defn(name=SWEEP_SILENT_SHIPMENTS)
    async def sweep(self, input: CarrierSweepInput) -> CarrierSweepResult:
        self.calls.append(input)
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("PostgreSQL restarting")
        assert input.as_of is not None
        return CarrierSweepResult(
            as_of=input.as_of,
            silence=input.silence,
            claims_opened=["carrier-claim:ups:1ZSILENT"],
            shipments_swept=1,
        )


async def test_sweep_workflow_runs_the_activity_and_retries_at_the_same_moment(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeSweep(failures=1)
    task_queue = f"sweep-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[CarrierSilenceSweepWorkflow],
        activities=[fake.sweep],
    ):
        result = await env.client.execute_workflow(
            CarrierSilenceSweepWorkflow.run,
            CarrierSweepInput(silence=timedelta(days=7)),
            id=f"carrier-silence-sweep-{uuid.uuid4()}",
            task_queue=task_queue,
        )

    assert result.claims_opened == ["carrier-claim:ups:1ZSILENT"]
    assert result.silence == timedelta(days=7)
    assert len(fake.calls) == 2  # a transient failure is retried
    # The workflow fixes the sweep's clock: the retry sweeps the same moment.
    assert fake.calls[0].as_of is not None and fake.calls[0].as_of == fake.calls[1].as_of
    assert fake.calls[0].silence == timedelta(days=7)
