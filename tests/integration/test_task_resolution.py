"""Resolving a task no process closes, through the API against real
PostgreSQL and the dev server: the role the task awaits closes it once,
audited; a repeat changes nothing; a task of a running process is refused
until that process is gone; a handed-off task is closable while its process
runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from typer.testing import CliRunner

from domain.audit import AuditEntry
from domain.common import Role
from domain.tasks import OpenTaskInput
from starters import api_client, cli
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import audit, tasks
from tests.integration.test_cli_through_api import LoopBridge
from workers.settings import Settings

KEYS = {
    "tr-finance": ("fiona", Role.FINANCE),
    "tr-finance-2": ("frank", Role.FINANCE),
    "tr-coord": ("alice", Role.COORDINATOR),
    "tr-ops": ("olivia", Role.OPS),
}
FINANCE = {"Authorization": "Bearer tr-finance"}
FINANCE_2 = {"Authorization": "Bearer tr-finance-2"}
COORDINATOR = {"Authorization": "Bearer tr-coord"}
OPS = {"Authorization": "Bearer tr-ops"}
HANDLED = {"outcome": "handled", "reason": "refunded by hand in the Adyen dashboard"}


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        integration_settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS)
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
        yield http


async def open_task(
    pool: asyncpg.Pool, workflow_id: str, kind: str, role: Role, case_id: str
) -> str:
    task_id = f"{workflow_id}/{kind}/1"
    await tasks.open(
        pool,
        OpenTaskInput(
            task_id=task_id,
            process=workflow_id.partition(":")[0],
            case_id=case_id,
            workflow_id=workflow_id,
            kind=kind,
            title=f"{kind} of {case_id}",
            awaited_role=role,
            due_at=datetime.now(UTC) + timedelta(days=2),
        ),
    )
    return task_id


def resolution(api: httpx.AsyncClient, task_id: str, headers: dict[str, str], body: Any) -> Any:
    return api.post(f"/v1/tasks/{task_id}/resolution", json=body, headers=headers)


async def test_finance_resolves_a_webhook_task_once_audited(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    # A refund that came back (the webhook's finance task) on a return whose
    # workflow is long gone; its audit names the order.
    rma, order_id = f"RMA-{uuid.uuid4().hex[:8]}", f"FR-{uuid.uuid4().hex[:8]}"
    workflow_id = f"return:{rma}"
    await audit.insert_entry(
        db_pool,
        AuditEntry(
            entry_id=f"{workflow_id}/payment-event/1",
            workflow_id=workflow_id,
            process="return",
            case_id=rma,
            actor="adyen",
            role=Role.SYSTEM,
            action="refund_reversed",
            reason="refund came back",
            occurred_at=datetime.now(UTC),
            order_id=order_id,
        ),
    )
    task_id = await open_task(db_pool, workflow_id, "refund_reversed", Role.FINANCE, rma)

    wrong_role = await resolution(api, task_id, COORDINATOR, HANDLED)
    assert wrong_role.status_code == 403, wrong_role.text
    assert "awaits finance; role coordinator may not resolve it" in wrong_role.json()["detail"]
    for body, field in (
        ({"outcome": "refunded", "reason": "x"}, "outcome"),
        ({"outcome": "handled", "reason": ""}, "reason"),
    ):
        invalid = await resolution(api, task_id, FINANCE, body)
        assert invalid.status_code == 422
        assert field in {e["field"] for e in invalid.json()["detail"]}
    still_open = await tasks.get(db_pool, task_id)
    assert still_open is not None and still_open.closed_at is None

    first = await resolution(api, task_id, FINANCE, HANDLED)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["resolved_now"] is True
    assert answer["task"]["closed_by"] == "fiona" and answer["task"]["outcome"] == "handled"
    queue = await api.get("/v1/tasks", headers=FINANCE, params={"process": "return"})
    assert task_id not in {t["task_id"] for t in queue.json()}

    again = await resolution(api, task_id, FINANCE, HANDLED)
    assert again.status_code == 200 and again.json()["resolved_now"] is False
    other = await resolution(api, task_id, FINANCE_2, HANDLED)
    assert other.status_code == 409
    assert "already closed (by fiona, outcome handled" in other.json()["detail"]

    trail = [
        row for row in await audit.list_by_case(db_pool, order_id) if row.action == "task_resolved"
    ]
    assert len(trail) == 1
    (entry,) = trail
    assert (entry.actor, entry.role, entry.case_id) == ("fiona", Role.FINANCE, rma)
    assert entry.reason == "handled: refunded by hand in the Adyen dashboard"
    assert entry.before["closed_at"] is None and entry.before["kind"] == "refund_reversed"
    assert entry.after["outcome"] == "handled" and entry.after["closed_by"] == "fiona"

    unknown = await resolution(api, f"{workflow_id}/refund_reversed/9", FINANCE, HANDLED)
    assert unknown.status_code == 404


async def test_a_running_process_keeps_its_task_until_it_is_gone(
    api: httpx.AsyncClient, client: Client, db_pool: asyncpg.Pool
) -> None:
    # A running review nobody works on (no worker polls its queue): its
    # decision task is its own; the step recorder's ops task is not.
    order_id = f"FR-{uuid.uuid4().hex[:8]}"
    workflow_id = f"order-review:{order_id}"
    handle = await client.start_workflow(
        "OrderReview", id=workflow_id, task_queue=f"nobody-{uuid.uuid4()}"
    )
    review = await open_task(db_pool, workflow_id, "order_review", Role.COORDINATOR, order_id)
    step = await open_task(db_pool, workflow_id, "step_write_failed", Role.OPS, order_id)

    refused = await resolution(api, review, COORDINATOR, HANDLED)
    assert refused.status_code == 409, refused.text
    assert f"belongs to the running process {workflow_id}" in refused.json()["detail"]
    handed_off = await resolution(api, step, OPS, {"outcome": "no_action_needed", "reason": "ok"})
    assert handed_off.status_code == 200, handed_off.text

    await handle.terminate("the review was abandoned")
    left_open = await resolution(api, review, COORDINATOR, {"outcome": "duplicate", "reason": "FR"})
    assert left_open.status_code == 200, left_open.text
    closed = await tasks.get(db_pool, review)
    assert closed is not None and closed.closed_by == "alice" and closed.outcome == "duplicate"


async def test_the_cli_resolves_through_the_api_as_the_key(
    client: Client,
    db_pool: asyncpg.Pool,
    integration_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(
        integration_settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS)
    )
    bridge = LoopBridge(app, asyncio.get_running_loop())
    monkeypatch.setattr(
        api_client, "cli_client", lambda: api_client.ApiClient.from_environment(transport=bridge)
    )
    runner = CliRunner()

    async def steward(key: str, *args: str) -> Any:
        env = {"STEWARD_API_KEY": key, "STEWARD_API_URL": "http://steward.test", "COLUMNS": "200"}
        return await asyncio.to_thread(
            runner.invoke, cli.app, list(args), env={**env, "NO_COLOR": "1"}
        )

    # The finance task of a capture confirmed after its review gave up (the
    # review refunded it and ended).
    order_id = f"FR-{uuid.uuid4().hex[:8]}"
    task_id = await open_task(
        db_pool, f"order-review:{order_id}", "late_capture", Role.FINANCE, order_id
    )
    resolve = ("tasks", "resolve", task_id, "--outcome", "handled", "--reason", "customer told")

    refused = await steward("tr-coord", *resolve)
    assert refused.exit_code == 1
    assert "not allowed: task" in refused.output and "awaits finance" in refused.output
    done = await steward("tr-finance", *resolve)
    assert done.exit_code == 0, done.output
    assert f"resolved {task_id} (late_capture): handled, by fiona" in done.output
    again = await steward("tr-finance", *resolve)
    assert again.exit_code == 0, again.output
    assert "already resolved" in again.output and "nothing changed" in again.output
