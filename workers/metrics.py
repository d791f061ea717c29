"""Live metrics for Prometheus (issue 19), on the API (`GET /metrics`) and
the workers (their own port, STEWARD_WORKER_METRICS_PORT), with the official
client library; the Temporal SDK's own metrics (workflow and activity task
latencies, poll results, slots...) come from its runtime telemetry's
Prometheus exporter on STEWARD_TEMPORAL_METRICS_PORT.

Steward's metrics read PostgreSQL (the case list, the task table, the
ledger), so every API and worker process reports the same figures: cases by
process and status, open and overdue tasks by role, money movements by kind
and outcome, report runs by status. Webhook events accepted and refused by
source and reason are counted where they arrive, in the API process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from functools import lru_cache
from typing import Any

import asyncpg
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.exposition import generate_latest
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from workers.settings import Settings

log = structlog.get_logger(__name__)

# One registry for Steward's own metrics (not the library's default one, so a
# test building several apps never registers twice and nothing else leaks in).
REGISTRY = CollectorRegistry(auto_describe=True)

CASES = Gauge(
    "steward_cases",
    "Cases by process and status (the case list)",
    ["process", "status"],
    registry=REGISTRY,
)
OPEN_TASKS = Gauge(
    "steward_open_tasks", "Open human tasks by awaited role", ["role"], registry=REGISTRY
)
OVERDUE_TASKS = Gauge(
    "steward_overdue_tasks",
    "Open human tasks past their due time, by role",
    ["role"],
    registry=REGISTRY,
)
MONEY_MOVEMENTS = Gauge(
    "steward_money_movements",
    "Money movements by kind (capture, void, refund) and outcome (succeeded, pending, "
    "refused, in_flight)",
    ["kind", "outcome"],
    registry=REGISTRY,
)
MONEY_AMOUNT = Gauge(
    "steward_money_movements_amount_minor",
    "Amount of the money movements in minor units, by kind, outcome and currency",
    ["kind", "outcome", "currency"],
    registry=REGISTRY,
)
REPORT_RUNS = Gauge(
    "steward_report_runs",
    "Report runs by report and status",
    ["report", "status"],
    registry=REGISTRY,
)
WEBHOOK_EVENTS = Counter(
    "steward_webhook_events",
    "Webhook deliveries received by this API process, by source, outcome (accepted, "
    "refused) and reason",
    ["source", "outcome", "reason"],
    registry=REGISTRY,
)
SCRAPE_ERRORS = Counter(
    "steward_metrics_refresh_errors", "Failed reads of the store's figures", registry=REGISTRY
)

_CASES_SQL = "SELECT process, status, count(*) AS n FROM cases GROUP BY process, status"
_TASKS_SQL = """
SELECT awaited_role AS role, count(*) AS n, count(*) FILTER (WHERE due_at < now()) AS overdue
FROM human_tasks WHERE closed_at IS NULL GROUP BY awaited_role"""
_MONEY_SQL = """
SELECT kind, 'succeeded' AS outcome, currency, count(*) AS n, sum(amount_minor) AS amount
FROM payment_ledger GROUP BY kind, currency
UNION ALL
SELECT kind, status, currency, count(*), sum(amount_minor)
FROM payment_modifications WHERE status <> 'succeeded' AND kind IS NOT NULL
GROUP BY kind, status, currency
UNION ALL
SELECT 'refund', 'in_flight', currency, count(*), sum(amount_minor)
FROM refunds_in_flight GROUP BY currency"""
_REPORTS_SQL = "SELECT report, status, count(*) AS n FROM report_runs GROUP BY report, status"


async def refresh_store_metrics(pool: asyncpg.Pool) -> None:
    """Read the figures and replace the gauges' values (a status that has no
    case any more disappears instead of keeping its last count)."""
    async with pool.acquire() as conn:
        cases = await conn.fetch(_CASES_SQL)
        tasks = await conn.fetch(_TASKS_SQL)
        money = await conn.fetch(_MONEY_SQL)
        reports = await conn.fetch(_REPORTS_SQL)
    CASES.clear()
    for row in cases:
        CASES.labels(row["process"], row["status"]).set(row["n"])
    OPEN_TASKS.clear()
    OVERDUE_TASKS.clear()
    for row in tasks:
        OPEN_TASKS.labels(row["role"]).set(row["n"])
        OVERDUE_TASKS.labels(row["role"]).set(row["overdue"])
    MONEY_MOVEMENTS.clear()
    MONEY_AMOUNT.clear()
    counts: dict[tuple[str, str], int] = {}
    for row in money:
        key = (row["kind"], row["outcome"])
        counts[key] = counts.get(key, 0) + row["n"]
        MONEY_AMOUNT.labels(row["kind"], row["outcome"], (row["currency"] or "").strip()).set(
            row["amount"] or 0
        )
    for (kind, outcome), n in counts.items():
        MONEY_MOVEMENTS.labels(kind, outcome).set(n)
    REPORT_RUNS.clear()
    for row in reports:
        REPORT_RUNS.labels(row["report"], row["status"]).set(row["n"])


class CachedRefresh:
    """Refresh on scrape at most every `min_interval` seconds: Prometheus and
    a person's browser scraping at once do not double the queries."""

    def __init__(self, pool: asyncpg.Pool, min_interval: float = 5.0) -> None:
        self.pool = pool
        self.min_interval = min_interval
        self._last = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> None:
        async with self._lock:
            if time.monotonic() - self._last < self.min_interval:
                return
            try:
                await refresh_store_metrics(self.pool)
            except (asyncpg.PostgresError, OSError) as err:
                SCRAPE_ERRORS.inc()
                log.warning("metrics_refresh_failed", error=str(err))
            self._last = time.monotonic()


def exposition() -> bytes:
    return generate_latest(REGISTRY)


_REASONS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


def webhook_outcome(status: int) -> tuple[str, str]:
    if status < 400:
        return "accepted", "accepted"
    return "refused", _REASONS.get(status, "error" if status >= 500 else str(status))


def webhook_source(path: str) -> str | None:
    """`/v1/webhooks/stripe` -> stripe; `/v1/webhooks/carrier/easypost` ->
    carrier/easypost; None for any other path."""
    prefix = "/v1/webhooks/"
    if not path.startswith(prefix):
        return None
    source = path[len(prefix) :].strip("/")
    # Bounded label values: a made-up path is one label, not one per path.
    return source if source and len(source) <= 40 and source.count("/") <= 1 else "other"


class WebhookMetricsMiddleware:
    """Counts every webhook delivery by source and by the status it was
    answered with (pure ASGI: the body is never read here)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        source = webhook_source(scope.get("path", "")) if scope["type"] == "http" else None
        if source is None:
            await self.app(scope, receive, send)
            return
        answered: list[int] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                answered.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            outcome, reason = webhook_outcome(answered[0] if answered else 500)
            WEBHOOK_EVENTS.labels(source, outcome, reason).inc()


# ---------------------------------------------------------------- workers


@lru_cache(maxsize=1)
def temporal_runtime(bind_address: str) -> Runtime:
    """One runtime per process (it binds the exporter's port once)."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))


def install_worker_runtime(settings: Settings) -> bool:
    """Make the worker's runtime (the SDK's Prometheus exporter) the
    process's default, before its first client connects; False when off or
    when a runtime is already in use."""
    runtime = worker_runtime(settings)
    if runtime is None:
        return False
    try:
        Runtime.set_default(runtime, error_if_already_set=True)
    except RuntimeError as err:
        log.warning("temporal_metrics_not_served", error=str(err))
        return False
    log.info("temporal_metrics_served", port=settings.temporal_metrics_port)
    return True


def worker_runtime(settings: Settings) -> Runtime | None:
    """The Temporal runtime a worker's client runs on: the SDK's metrics on
    STEWARD_TEMPORAL_METRICS_PORT; None (the default runtime) when 0."""
    if settings.temporal_metrics_port == 0:
        return None
    address = f"{settings.metrics_host}:{settings.temporal_metrics_port}"
    try:
        return temporal_runtime(address)
    except Exception as err:  # the port is taken: the worker runs on, unmeasured
        log.warning("temporal_metrics_not_served", address=address, error=str(err))
        return None


def start_worker_metrics(settings: Settings) -> bool:
    """Serve Steward's metrics on STEWARD_WORKER_METRICS_PORT (a thread of
    prometheus_client's); False when 0 or the port is taken (logged, the
    worker runs on)."""
    if settings.worker_metrics_port == 0:
        return False
    try:
        start_http_server(settings.worker_metrics_port, settings.metrics_host, registry=REGISTRY)
    except OSError as err:
        log.warning("worker_metrics_not_served", port=settings.worker_metrics_port, error=str(err))
        return False
    log.info("worker_metrics_served", port=settings.worker_metrics_port)
    return True


async def refresh_forever(pool: asyncpg.Pool, stop: asyncio.Event, every: float = 15.0) -> None:
    """The worker's gauges follow the store until `stop`."""
    refresh = CachedRefresh(pool, min_interval=0)
    while not stop.is_set():
        await refresh()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
