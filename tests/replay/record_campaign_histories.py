"""Record the campaign histories replayed by tests/replay/test_campaign_replay.py:

- campaign_lifecycle: validated with a warning, the preparer refused, approved
  by a second manager, reminders, opened, a gift request filed and resolved,
  closed early, a discrepancy, reconciled clean the next day;
- campaign_cancelled: approved, then cancelled before the opening.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a `workflow.patched`.

    .venv/bin/python -m tests.replay.record_campaign_histories [OUT_DIR]
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.campaign import (
    ApprovalInput,
    CampaignStatus,
    CancelInput,
    Discrepancy,
    FileRequestInput,
    RequestKind,
    RequestOutcome,
    ResolveRequestInput,
    Severity,
    SubmitInput,
    ValidationIssue,
    WindowChange,
)
from domain.common import Role
from tests.replay.recording import run_recorder
from tests.workflows.conftest import _test_server_binary
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.test_campaign import FakeCampaign, _approved, _start
from workers.dev_server import ensure_search_attributes
from workflows.campaign import CampaignWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _lifecycle(harness: Harness) -> WorkflowHandle[Any, Any]:
    handle, schedule = await _start(harness)
    await handle.execute_update(
        CampaignWorkflow.submit, SubmitInput(actor="alice", role=Role.COORDINATOR)
    )
    await wait_for_status(handle, CampaignStatus.AWAITING_APPROVAL)
    # Four eyes: the preparer is refused, and nothing enters the history.
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            CampaignWorkflow.approve,
            ApprovalInput(
                approve=True, acknowledge_warnings=True, actor="alice", role=Role.MANAGER
            ),
        )
    await handle.execute_update(
        CampaignWorkflow.approve,
        ApprovalInput(approve=True, acknowledge_warnings=True, actor="bob", role=Role.MANAGER),
    )
    await wait_for_status(handle, CampaignStatus.SCHEDULED)
    await harness.sleep(schedule.opens_at - harness.now() + timedelta(hours=1))
    await wait_for_status(handle, CampaignStatus.OPEN)
    await handle.execute_update(
        CampaignWorkflow.file_request,
        FileRequestInput(request_id="GR-1", kind=RequestKind.GIFT, actor="hr", role=Role.SYSTEM),
    )
    await handle.execute_update(
        CampaignWorkflow.resolve_request,
        ResolveRequestInput(
            request_id="GR-1", outcome=RequestOutcome.SHIPPED, actor="carl", role=Role.COORDINATOR
        ),
    )
    await handle.execute_update(
        CampaignWorkflow.change_window,
        WindowChange(reason="sold out", actor="bob", role=Role.MANAGER),
    )
    await handle.result()
    return handle


async def _cancelled(harness: Harness) -> WorkflowHandle[Any, Any]:
    handle, _ = await _start(harness)
    await _approved(handle)
    await handle.execute_update(
        CampaignWorkflow.cancel,
        CancelInput(reason="restructuring", actor="alice", role=Role.COORDINATOR),
    )
    await handle.result()
    return handle


async def record(
    name: str,
    fake: FakeCampaign,
    scenario: Callable[[Harness], Awaitable[WorkflowHandle[Any, Any]]],
    out: Path,
) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_test_server_binary(),
    )
    await ensure_search_attributes(env.client, env.client.namespace)
    try:
        world = FakeWorld()
        harness = Harness(env, world, await env.get_current_time())
        async with Worker(
            env.client,
            task_queue=harness.task_queue,
            workflows=[CampaignWorkflow],
            activities=[*world.activities(), fake.validate, fake.gate, fake.reconcile],
        ):
            handle = await scenario(harness)
            history = await handle.fetch_history()
        (out / f"{name}.json").write_text(history.to_json())
        print(f"recorded {name}: {len(history.events)} events")
    finally:
        await env.shutdown()


async def main(out: Path) -> None:
    await record(
        "campaign_lifecycle",
        FakeCampaign(
            reports=[
                [ValidationIssue(field="roster", reason="1 excluded", severity=Severity.WARNING)]
            ],
            reconciliations=[
                [Discrepancy(kind="order_without_capture", order_id="EO-1", detail="none")],
                [],
            ],
        ),
        _lifecycle,
        out,
    )
    await record("campaign_cancelled", FakeCampaign(), _cancelled, out)


if __name__ == "__main__":
    run_recorder(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES))
