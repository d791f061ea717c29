"""Carrier silence sweep: `carrier-silence-sweep` (a Temporal Schedule, hourly).

One activity per run: it finds the parcels with no scan `silence` after their
expected delivery and opens a lost-parcel claim for each. The workflow only
gives the sweep a deadline, retries and a history; the rule lives in the
activity and the store, so changing it never breaks replay.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.carrier_sweep import (
        SWEEP_SILENT_SHIPMENTS,
        CarrierSweepInput,
        CarrierSweepResult,
    )

# A sweep that cannot finish within the hour is overtaken by the next run.
SWEEP_TIMEOUT = timedelta(minutes=10)
SWEEP_GIVE_UP = timedelta(minutes=50)
SWEEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
)


@workflow.defn(name="CarrierSilenceSweepWorkflow")
class CarrierSilenceSweepWorkflow:
    @workflow.run
    async def run(self, input: CarrierSweepInput) -> CarrierSweepResult:
        # The workflow's clock, so a retried activity sweeps the same moment.
        as_of = input.as_of or workflow.now()
        workflow.set_current_details(f"Sweeping parcels silent for {input.silence} as of {as_of}")
        result = await workflow.execute_activity(
            SWEEP_SILENT_SHIPMENTS,
            CarrierSweepInput(silence=input.silence, as_of=as_of),
            result_type=CarrierSweepResult,
            start_to_close_timeout=SWEEP_TIMEOUT,
            schedule_to_close_timeout=SWEEP_GIVE_UP,
            retry_policy=SWEEP_RETRY,
            summary="open claims for silent parcels",
        )
        workflow.set_current_details(
            f"{result.shipments_swept} silent parcel(s), {len(result.claims_opened)} claim(s) "
            f"opened as of {as_of:%Y-%m-%d %H:%M} UTC"
        )
        workflow.logger.info(
            "carrier silence swept",
            extra={"shipments": result.shipments_swept, "claims": len(result.claims_opened)},
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result
