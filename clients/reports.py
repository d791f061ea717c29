"""Start a report run by hand (`POST /v1/reports/{name}/runs`, `steward
reports run`): the workflow by its contract's name, never its code."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from clients.errors import CaseRefused
from domain.reports.runs import ReportRunContract, ReportRunInput, report_run_id


async def start_report_run(
    client: Client, task_queue: str, input: ReportRunInput
) -> tuple[str, str]:
    """(workflow id, run id) of the run started. The same report, period and
    filters while a run of them is going: CaseRefused (the API's 409); once
    it has finished, the same request starts a new run."""
    assert input.period_from is not None and input.period_to is not None
    workflow_id = report_run_id(
        input.report, input.period_from, input.period_to, input.market, input.channel
    )
    try:
        handle = await client.start_workflow(
            ReportRunContract.WORKFLOW_TYPE,
            input,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    except WorkflowAlreadyStartedError as err:
        raise CaseRefused(
            f"a run of {input.report} for this period and these filters is already going "
            f"({workflow_id})"
        ) from err
    return workflow_id, handle.result_run_id or ""
