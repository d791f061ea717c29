"""Record the histories of the `chargeback-link-order` patch (issue 12), replayed
by tests/replay/test_chargeback_replay.py beside the histories recorded
before it (which must keep replaying unchanged):

- chargeback_stripe_link_order: a Stripe dispute naming no payment Steward
  holds asks for its order, a coordinator links it, the round goes on
  (evidence, contest) and the dispute is won;
- chargeback_efw_unlinked_default: an early fraud warning nobody links within
  a day ends accepted with nothing held.

Re-record only when no run of this code is still open anywhere; otherwise
guard the change with a new `workflow.patched`.

    .venv/bin/python -m tests.replay.record_chargeback_link_histories
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.chargeback import (
    ChargebackInput,
    DisputeEvent,
    DisputeEventKind,
    DisputeStatus,
    LinkOrderInput,
    ResponseAction,
    chargeback_workflow_id,
)
from domain.common import Role
from tests.replay.recording import run_recorder
from tests.workflows.conftest import _test_server_binary
from tests.workflows.harness import FakeWorld, wait_for_status
from tests.workflows.test_chargeback import POLICY, answer, event
from workers.dev_server import ensure_search_attributes
from workflows.chargeback import ChargebackWorkflow

HISTORIES = Path(__file__).parent / "histories"


def _unresolved(base: DisputeEvent) -> DisputeEvent:
    return base.model_copy(update={"order_id": None, "payment_refs": ["pi_3Qrec", "ch_3Qrec"]})


async def _stripe_link_order(client: Client, queue: str, now: datetime) -> str:
    did = "dp_recorded_link_order"
    handle = await client.start_workflow(
        ChargebackWorkflow.run,
        ChargebackInput(
            event=_unresolved(event(now, DisputeEventKind.OPENED, dispute_id=did)), policy=POLICY
        ),
        id=chargeback_workflow_id("stripe", did),
        task_queue=queue,
    )
    while (await handle.query(ChargebackWorkflow.status)).awaited_role is not Role.COORDINATOR:
        await asyncio.sleep(0.05)
    await handle.execute_update(
        ChargebackWorkflow.link_order,
        LinkOrderInput(order_id="FR-100001", actor="camille", role=Role.COORDINATOR),
    )
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    await handle.execute_update(ChargebackWorkflow.respond, answer(ResponseAction.CONTEST))
    await handle.signal(
        ChargebackWorkflow.dispute_event,
        event(now + timedelta(minutes=5), DisputeEventKind.WON, dispute_id=did),
    )
    await handle.result()
    history = await handle.fetch_history()
    (HISTORIES / "chargeback_stripe_link_order.json").write_text(history.to_json())
    return f"{len(history.events)} events"


async def _efw_unlinked_default(client: Client, queue: str, now: datetime) -> str:
    warning = _unresolved(
        event(
            now,
            DisputeEventKind.EARLY_FRAUD_WARNING,
            dispute_id="issfr_recorded_unlinked",
            due_in=None,
            amount_minor=0,
        )
    )
    handle = await client.start_workflow(
        ChargebackWorkflow.run,
        ChargebackInput(event=warning, policy=POLICY),
        id=chargeback_workflow_id("stripe", warning.dispute_id),
        task_queue=queue,
    )
    await handle.result()
    history = await handle.fetch_history()
    (HISTORIES / "chargeback_efw_unlinked_default.json").write_text(history.to_json())
    return f"{len(history.events)} events"


Scenario = Callable[[Client, str, datetime], Awaitable[str]]


async def record() -> None:
    scenarios: list[tuple[str, Scenario]] = [
        ("stripe_link_order", _stripe_link_order),
        ("efw_unlinked_default", _efw_unlinked_default),
    ]
    for name, scenario in scenarios:
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter,
            test_server_existing_path=_test_server_binary(),
        )
        await ensure_search_attributes(env.client, env.client.namespace)
        try:
            queue = f"record-{uuid.uuid4()}"
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=[ChargebackWorkflow],
                activities=FakeWorld().activities(),
            ):
                now = await env.get_current_time()
                print(f"recorded {name}: {await scenario(env.client, queue, now)}")
        finally:
            await env.shutdown()


if __name__ == "__main__":
    run_recorder(record())
