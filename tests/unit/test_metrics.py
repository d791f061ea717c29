"""Live metrics (workers/metrics.py) without a database: webhook deliveries
counted by source, outcome and reason; the worker's endpoint served on its
port; and the CLI's period parsing for `steward reports run`."""

from __future__ import annotations

import socket
import urllib.request
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
import typer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from starters.reports_cli import parse_moment
from workers.metrics import (
    REGISTRY,
    WEBHOOK_EVENTS,
    WebhookMetricsMiddleware,
    start_worker_metrics,
    webhook_outcome,
    webhook_source,
)
from workers.settings import Settings


def test_webhook_sources_and_reasons() -> None:
    assert webhook_source("/v1/webhooks/stripe") == "stripe"
    assert webhook_source("/v1/webhooks/carrier/easypost") == "carrier/easypost"
    assert webhook_source("/v1/order-reviews") is None
    # Made-up paths are one label, not one per path.
    assert webhook_source("/v1/webhooks/a/b/c/d") == "other"
    assert webhook_outcome(200) == ("accepted", "accepted")
    assert webhook_outcome(401) == ("refused", "unauthenticated")
    assert webhook_outcome(422) == ("refused", "invalid")
    assert webhook_outcome(502) == ("refused", "error")


def _count(source: str, outcome: str, reason: str) -> float:
    return WEBHOOK_EVENTS.labels(source, outcome, reason)._value.get()


async def test_the_middleware_counts_each_delivery_once() -> None:
    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({}, status_code=202 if body == b"ok" else 401)

    app = Starlette(routes=[Route("/v1/webhooks/{source}", hook, methods=["POST"])])
    transport = httpx.ASGITransport(app=WebhookMetricsMiddleware(app))
    before_ok = _count("carrier", "accepted", "accepted")
    before_refused = _count("carrier", "refused", "unauthenticated")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        await http.post("/v1/webhooks/carrier", content=b"ok")
        await http.post("/v1/webhooks/carrier", content=b"forged")
        await http.post("/v1/webhooks/carrier", content=b"forged")
    assert _count("carrier", "accepted", "accepted") == before_ok + 1
    assert _count("carrier", "refused", "unauthenticated") == before_refused + 2


def test_the_worker_serves_its_metrics_on_its_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(_env_file=None, STEWARD_WORKER_METRICS_PORT=port)
    assert start_worker_metrics(settings)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for name in ("steward_cases", "steward_open_tasks", "steward_money_movements"):
        assert f"# TYPE {name} gauge" in text
    # Off when its port is 0.
    assert not start_worker_metrics(Settings(_env_file=None, STEWARD_WORKER_METRICS_PORT=0))
    assert REGISTRY is not None


def test_report_periods_typed_on_the_command_line() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert parse_moment("2026-11-23", "Europe/Paris", flag="--from") == datetime(
        2026, 11, 23, tzinfo=paris
    )
    assert parse_moment("2026-11-23T06:00:00+00:00", "Europe/Paris", flag="--from") == datetime(
        2026, 11, 23, 6, tzinfo=UTC
    )
    with pytest.raises(typer.BadParameter, match="date"):
        parse_moment("23/11/2026", "UTC", flag="--from")
    with pytest.raises(typer.BadParameter, match="time zone"):
        parse_moment("2026-11-23", "Mars/Olympus", flag="--from")
