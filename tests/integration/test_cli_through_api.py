"""The `steward` CLI decides only through the HTTP API, as the key's actor and
role: a real worker, the Temporal dev server, PostgreSQL and the API app; the
CLI's HTTP client reaches the app through a bridge onto the test's event loop
(the app's Temporal client lives there), nothing is mocked in between.

A return's refund above the finance threshold waits for finance's approval:
a coordinator's key is refused (403, the API's reason), the person who asked
for the refund is refused with their own finance key (four eyes, 409), and a
different finance person's approval moves the money, once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker
from typer.testing import CliRunner

from activities.payments import PaymentActivities
from activities.simulated import FaultPlan, SimulatedPaymentProvider
from domain.common import Role
from domain.payments import PaymentOperationInput, PaymentOperationKind
from starters import api_client, cli
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import ledger
from tests.integration.test_returns_refund import return_json, wait_status
from workers import activities
from workers.settings import Settings
from workflows.returns import ReturnWorkflow

KEYS = {
    "cli-fiona-ops": ("fiona", Role.OPS),  # fiona opens the return: she requested the refund
    "cli-fiona-fin": ("fiona", Role.FINANCE),
    "cli-frank-fin": ("frank", Role.FINANCE),
    "cli-alice": ("alice", Role.COORDINATOR),
    "cli-system": ("carrier-gateway", Role.SYSTEM),
    "rt-cs": ("cs-julie", Role.OPS),  # the key wait_status reads with
}
SECRET = "cli-webhook-secret"
WEBHOOK = {"X-API-Key": "cli-system", "X-Steward-Webhook-Secret": SECRET}
PRICE = 750_000  # 7,500.00 EUR: above finance's threshold, below manual QC's


class LoopBridge(httpx.BaseTransport):
    """A sync httpx transport (the CLI's) onto the ASGI app served on `loop`."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._asgi = httpx.ASGITransport(app=app, client=("127.0.0.1", 50100))
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def forward() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run_coroutine_threadsafe(forward(), self._loop).result(timeout=120)


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    return integration_settings.model_copy(
        update={"task_queue": f"cli-{uuid.uuid4()}", "webhook_secret": SECRET}
    )


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    client: Client, db_pool: asyncpg.Pool, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, Callable[..., Any]]]:
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[ReturnWorkflow],
        activities=activities.build_activities(db_pool, settings),
    ):
        app = create_app(
            settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS)
        )
        bridge = LoopBridge(app, asyncio.get_running_loop())
        monkeypatch.setattr(
            api_client,
            "cli_client",
            lambda: api_client.ApiClient.from_environment(transport=bridge),
        )
        runner = CliRunner()

        async def steward(key: str, *args: str) -> Any:
            env = {
                "STEWARD_API_KEY": key,
                "STEWARD_API_URL": "http://steward.test",
                "COLUMNS": "200",
                "NO_COLOR": "1",
            }
            return await asyncio.to_thread(runner.invoke, cli.app, list(args), env=env)

        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50101))
        async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
            yield http, steward


async def captured_order(db: asyncpg.Pool) -> str:
    """An order whose PRICE was captured (provider and ledger), as order review leaves it."""
    order_id = f"CLI-{uuid.uuid4().hex[:10]}"
    provider = SimulatedPaymentProvider(db, FaultPlan())
    now = datetime.now(UTC)
    await provider.register_authorisation(
        authorisation_ref=f"auth-{order_id}",
        amount_minor=PRICE,
        currency="EUR",
        authorised_at=now - timedelta(days=5),
        expires_at=now + timedelta(days=2),
    )
    await PaymentActivities(db, {provider.name: provider}).capture_payment(
        PaymentOperationInput(
            workflow_id=f"order-review:{order_id}",
            operation_id="capture",
            order_id=order_id,
            provider=provider.name,
            authorisation_ref=f"auth-{order_id}",
            amount_minor=PRICE,
            currency="EUR",
        )
    )
    return order_id


async def test_refund_approval_through_the_cli_follows_the_key(
    stack: tuple[httpx.AsyncClient, Callable[..., Any]], db_pool: asyncpg.Pool
) -> None:
    api, steward = stack
    order_id = await captured_order(db_pool)
    rma_id = f"RMA-{uuid.uuid4().hex[:10]}"
    body = return_json(rma_id, order_id)
    body["order"]["lines"][0]["unit_price_minor"] = PRICE
    opened = await api.post("/v1/returns", json=body, headers={"X-API-Key": "cli-fiona-ops"})
    assert opened.status_code == 202, opened.text
    tracking = (await wait_status(api, rma_id, "label_issued"))["tracking_number"]
    for number, kind in enumerate(("in_transit", "delivered_to_warehouse")):
        scan = {
            "event_id": f"scan-{number}",
            "kind": kind,
            "tracking_number": tracking,
            "occurred_at": "2026-11-24T10:00:00+00:00",
        }
        sent = await api.post(f"/v1/returns/{rma_id}/carrier-events", json=scan, headers=WEBHOOK)
        assert sent.status_code == 202, sent.text
    qc = {"event_id": "qc-1", "grade": "first_choice", "notes": "as new", "photos": []}
    sent = await api.post(f"/v1/returns/{rma_id}/qc-results", json=qc, headers=WEBHOOK)
    assert sent.status_code == 202, sent.text
    await wait_status(api, rma_id, "awaiting_finance")

    # A coordinator's key: refused by the API before anything reaches the case.
    coordinator = await steward("cli-alice", "returns", "approve-refund", rma_id)
    assert coordinator.exit_code == 1
    assert "not allowed: role coordinator may not do this (needs one of: finance)" in (
        coordinator.output
    )
    # No flag makes anyone finance any more.
    flagged = await steward("cli-alice", "returns", "approve-refund", rma_id, "--role", "finance")
    assert flagged.exit_code == 2
    assert "--role is gone" in flagged.output

    # The requester, with her own finance key: four eyes, in words.
    requester = await steward("cli-fiona-fin", "returns", "approve-refund", rma_id)
    assert requester.exit_code == 1
    assert "refused: actor: fiona requested this refund and may not approve it (four eyes)" in (
        " ".join(requester.output.split())
    )
    assert (await wait_status(api, rma_id, "awaiting_finance"))["finance_approval"] is None
    assert (await ledger.totals_for_order(db_pool, order_id)).refunded_minor == 0

    # Someone else in finance: approved under their own name, the money moves once.
    approved = await steward("cli-frank-fin", "returns", "approve-refund", rma_id)
    assert approved.exit_code == 0, approved.output
    assert f"Refund approved for return {rma_id} by frank" in approved.output
    final = await wait_status(api, rma_id, "refunded")
    assert final["finance_approval"]["actor"] == "frank"
    refunds = [
        e
        for e in await ledger.list_for_order(db_pool, order_id)
        if e.kind is PaymentOperationKind.REFUND
    ]
    assert [e.amount_minor for e in refunds] == [PRICE]

    # Reading goes through the API too, as any authenticated key.
    shown = await steward("cli-alice", "returns", "show", rma_id)
    assert shown.exit_code == 0, shown.output
    assert "approved by frank" in shown.output
