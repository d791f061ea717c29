"""The silence sweep workflow under time skipping: it runs the sweep activity
once, with the workflow's clock, and retries it at the same moment."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from domain.carrier_sweep import CarrierSweepInput
from tests.workflows.harness import FakeWorld, Harness
from workflows.carrier_sweep import CarrierSilenceSweepWorkflow

pytestmark = pytest.mark.workflows([CarrierSilenceSweepWorkflow])


@pytest.mark.world(sweep_failures=1)
async def test_sweep_workflow_runs_the_activity_and_retries_at_the_same_moment(
    harness: Harness, world: FakeWorld
) -> None:
    result = await harness.execute(
        CarrierSilenceSweepWorkflow.run,
        CarrierSweepInput(silence=timedelta(days=7)),
        id=f"carrier-silence-sweep-{uuid.uuid4()}",
    )

    calls = world.sweep.sweeps
    assert result.claims_opened == ["carrier-claim:ups:1ZSILENT"]
    assert result.silence == timedelta(days=7)
    assert len(calls) == 2  # a transient failure is retried
    # The workflow fixes the sweep's clock: the retry sweeps the same moment.
    assert calls[0].as_of is not None and calls[0].as_of == calls[1].as_of
    assert calls[0].silence == timedelta(days=7)
