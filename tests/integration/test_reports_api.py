"""Reports through the API on a real Temporal dev server and PostgreSQL: a
run started by hand runs the workflow on a worker, lists with its files and
serves them; bad requests are refused naming the field and start nothing;
/metrics shows the store's figures and the webhook deliveries."""

from __future__ import annotations

import struct
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from activities.reports import ReportActivities
from activities.simulated import SimulatedNotifier
from bench.report_data import Seeder
from domain.common import Role
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from tests.integration.polling import eventually
from tests.integration.test_reports import T0, T1, _seed_others, _seed_reviews
from workers.settings import Settings
from workflows.report_run import ReportRunWorkflow

pytestmark = pytest.mark.integration

KEYS = {
    "rp-manager": ("marc", Role.MANAGER),
    "rp-coord": ("alice", Role.COORDINATOR),
    "rp-auditor": ("audrey", Role.AUDITOR),
}
MANAGER = {"Authorization": "Bearer rp-manager"}
COORDINATOR = {"Authorization": "Bearer rp-coord"}
AUDITOR = {"Authorization": "Bearer rp-auditor"}


@pytest.fixture
def settings(integration_settings: Settings, tmp_path: Path) -> Settings:
    return integration_settings.model_copy(
        update={"task_queue": f"test-{uuid.uuid4()}", "reports_dir_path": tmp_path / "reports"}
    )


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client, clean_db: asyncpg.Pool, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    seeder = Seeder()
    _seed_reviews(seeder)
    _seed_others(seeder)
    await seeder.write(clean_db)
    reports = ReportActivities(
        clean_db, settings.reports_dir, SimulatedNotifier(clean_db), ["reports@example.com"]
    )
    app = create_app(
        settings, client=client, pool=clean_db, api_keys=ApiKeyStore.from_mapping(KEYS)
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[ReportRunWorkflow],
            activities=[reports.run_report, reports.record_report_failure],
        ),
        httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http,
    ):
        yield http


WEEK = {"period_from": T0.isoformat(), "period_to": T1.isoformat()}


async def test_a_run_by_hand_lists_with_its_files_and_serves_them(
    api: httpx.AsyncClient, clean_db: asyncpg.Pool
) -> None:
    started = await api.post(
        "/v1/reports/fraud/runs", json={**WEEK, "market": "FR", "distribute": True}, headers=MANAGER
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    workflow_id = started.json()["workflow_id"]
    assert workflow_id.startswith("report-run:fraud:") and workflow_id.endswith(":FR:all")

    async def finished() -> dict[str, Any] | None:
        answer = await api.get("/v1/reports", params={"workflow_id": workflow_id}, headers=AUDITOR)
        runs = [r for r in answer.json() if r["run_id"] == run_id]
        return runs[0] if runs and runs[0]["status"] != "running" else None

    found = await eventually(finished, lambda r: r is not None, what="the report run", timeout=30)
    assert found is not None and found["status"] == "succeeded", found
    run = found
    assert run["market"] == "FR" and run["requested_by"] == "marc"
    # FR orders of the week: A1, A2, A4, A6, A7, A8 (A3 and A5 are GB).
    assert run["headline"]["orders_scored"] == 6
    names = {f["name"] for f in run["files"]}
    assert {"report.html", "routing.csv", "routing_by_day.png"} <= names

    page = await api.get(f"/v1/reports/{run_id}/files/report.html", headers=AUDITOR)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<table>" in page.text and "data:image/png;base64," in page.text
    png = await api.get(f"/v1/reports/{run_id}/files/routing_by_day.png", headers=AUDITOR)
    assert png.headers["content-type"] == "image/png"
    assert struct.unpack(">II", png.content[16:24]) == (800, 400)
    csv_file = await api.get(f"/v1/reports/{run_id}/files/routing.csv", headers=AUDITOR)
    assert csv_file.text.splitlines()[1] == "auto_accept,3,0.5"
    # Told once through the notification port.
    sent = await clean_db.fetchval(
        "SELECT count(*) FROM sim_notifications WHERE template = 'report_ready'"
    )
    assert sent == 1

    missing = await api.get(f"/v1/reports/{run_id}/files/nothing.csv", headers=AUDITOR)
    assert missing.status_code == 404
    traversal = await api.get(f"/v1/reports/{run_id}/files/..%2Fsecret.html", headers=AUDITOR)
    assert traversal.status_code in (404, 422)
    # A coordinator's key does not read reports (they name coordinators).
    forbidden = await api.get("/v1/reports", headers=COORDINATOR)
    assert forbidden.status_code == 403


async def test_bad_requests_name_the_field_and_start_nothing(
    api: httpx.AsyncClient, client: Client
) -> None:
    naive = await api.post(
        "/v1/reports/fraud/runs",
        json={"period_from": "2026-11-02T00:00:00", "period_to": T1.isoformat()},
        headers=MANAGER,
    )
    assert naive.status_code == 422
    assert "period_from" in naive.text and "time zone" in naive.text
    reversed_ = await api.post(
        "/v1/reports/fraud/runs",
        json={"period_from": T1.isoformat(), "period_to": T0.isoformat()},
        headers=MANAGER,
    )
    assert reversed_.status_code == 422 and "period_to must be after" in reversed_.text
    zone = await api.post(
        "/v1/reports/fraud/runs", json={**WEEK, "timezone": "Mars/Olympus"}, headers=MANAGER
    )
    assert zone.status_code == 422 and "timezone" in zone.text
    unknown = await api.post("/v1/reports/nonesuch/runs", json=WEEK, headers=MANAGER)
    assert unknown.status_code == 404 and "known: deliveries" in unknown.text
    coordinator = await api.post("/v1/reports/fraud/runs", json=WEEK, headers=COORDINATOR)
    assert coordinator.status_code == 403
    listed = await api.get("/v1/reports", headers=AUDITOR)
    assert listed.json() == []
    started = [
        w.id
        async for w in client.list_workflows("WorkflowType = 'ReportRunWorkflow'")
        if "nonesuch" in w.id
    ]
    assert started == []


async def test_metrics_show_the_store_and_the_webhooks(api: httpx.AsyncClient) -> None:
    refused = await api.post(
        "/v1/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"}
    )
    assert refused.status_code >= 400
    metrics = await api.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    # Released order reviews in the seed: A0, A1, A2, A4, A7, A8.
    assert 'steward_cases{process="order-review",status="released"} 6.0' in text
    assert 'steward_cases{process="return",status="refunded"} 1.0' in text
    assert (
        f'steward_webhook_events_total{{outcome="refused",reason="{reason(refused.status_code)}",'
        'source="stripe"}' in text
    )


def reason(status: int) -> str:
    from workers.metrics import webhook_outcome

    return webhook_outcome(status)[1]
