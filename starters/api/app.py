"""The Steward HTTP API: webhooks for upstream systems, coordinator endpoints,
the work queue, the audit trail and the codec server for the Temporal UI.

`create_app` is the composition seam: give it a client and a pool (tests, an
embedding process) and it uses them; leave them out and its lifespan connects
to Temporal and PostgreSQL from the settings.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import fastapi_offline
import structlog
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from clients.order_review import (
    DecisionRefused,
    ReviewClosed,
    ReviewNotFound,
    ReviewUnavailable,
)
from starters.api import (
    codec_routes,
    openapi_examples,
    routes_campaign,
    routes_carrier_claim,
    routes_carrier_events,
    routes_chargeback,
    routes_failed_delivery,
    routes_fulfilment,
    routes_ops_request,
    routes_order_review,
    routes_privacy_request,
    routes_reports,
    routes_returns,
    routes_risk,
    routes_slack,
    routes_webhooks,
    routes_work,
)
from starters.api.request_guard import RequestGuardMiddleware, document_errors, loggable
from starters.auth import ApiKeyStore
from workers.codec import EncryptionCodec, load_or_create_keyring
from workers.metrics import WebhookMetricsMiddleware
from workers.personal_keys import configure_personal_data
from workers.settings import Settings

log = structlog.get_logger(__name__)

API_VERSION = "1.0.0"
HEALTH_TIMEOUT_SECONDS = 3.0

_DESCRIPTION = """\
Durable back-office processes on Temporal.

Authenticate with an API key: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
A key names one actor and one role (system, ops, coordinator, manager, finance,
auditor); decisions are recorded under the key's actor and role.
"""


def ui_origins(settings: Settings) -> list[str]:
    """Browser origins of the Temporal Web UI that may call the codec endpoints."""
    port = settings.temporal_ui_port
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]


def create_app(
    settings: Settings,
    client: Client | None = None,
    pool: asyncpg.Pool | None = None,
    *,
    api_keys: ApiKeyStore | None = None,
    codec: EncryptionCodec | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Imported here: connecting needs Temporal/PostgreSQL client code that
        # tests injecting their own objects never touch.
        from starters.client import connect
        from store.db import create_pool

        owned_pool: asyncpg.Pool | None = None
        if app.state.client is None:
            app.state.client = await connect(settings)
        if app.state.pool is None:
            owned_pool = app.state.pool = await create_pool(settings.database_dsn)
        log.info(
            "api_started",
            temporal=settings.temporal_target,
            namespace=settings.temporal_namespace,
            task_queue=settings.task_queue,
            api_keys=len(app.state.api_keys),
        )
        try:
            yield
        finally:
            if owned_pool is not None:
                await owned_pool.close()

    app = FastAPI(
        title="Steward API",
        version=API_VERSION,
        description=_DESCRIPTION,
        lifespan=lifespan,
        # Served by _install_docs from local assets instead of a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.client = client
    app.state.pool = pool
    # `is None`, not `or`: an empty key store is falsy but still the caller's choice.
    app.state.api_keys = api_keys if api_keys is not None else ApiKeyStore.from_settings(settings)
    app.state.codec = (
        codec
        if codec is not None
        else EncryptionCodec(load_or_create_keyring(settings.keyring_path))
    )
    configure_personal_data(settings)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=ui_origins(settings),
        allow_credentials=True,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["content-type", "x-namespace", "authorization", "x-api-key"],
    )
    # 413 for an oversized body, 422 for a control character in a parameter.
    app.add_middleware(RequestGuardMiddleware)
    # Webhook deliveries by source and answer, for /metrics (issue 19).
    app.add_middleware(WebhookMetricsMiddleware)
    # Outermost, so its log line covers CORS rejections too.
    app.add_middleware(RequestLogMiddleware, access_log=settings.access_log)

    _install_error_handlers(app)
    _install_docs(app)
    openapi_examples.add_request_examples(app)
    app.include_router(routes_order_review.router)
    app.include_router(routes_work.router)
    app.include_router(routes_returns.router)
    app.include_router(routes_carrier_events.router)
    app.include_router(routes_campaign.router)
    # A process whose prefix was renamed to its name keeps the first one as a
    # deprecated alias: served, hidden from the schema.
    app.include_router(routes_ops_request.router, prefix=routes_ops_request.PREFIX)
    app.include_router(routes_slack.router)
    for process in (routes_failed_delivery, routes_carrier_claim, routes_chargeback):
        app.include_router(process.router, prefix=process.PREFIX)
        for old_prefix in process.DEPRECATED_PREFIXES:
            app.include_router(
                process.router, prefix=old_prefix, include_in_schema=False, deprecated=True
            )
    app.include_router(routes_webhooks.router)
    app.include_router(routes_privacy_request.router, prefix=routes_privacy_request.PREFIX)
    # Fulfilment (issue 16): its process routes, the order status answer and
    # the warehouse's event webhook.
    app.include_router(routes_fulfilment.router, prefix=routes_fulfilment.PREFIX)
    app.include_router(routes_fulfilment.orders_router)
    app.include_router(routes_fulfilment.webhook_router)
    app.include_router(codec_routes.router)
    # Reports and live metrics (issue 19).
    app.include_router(routes_reports.router)
    app.include_router(routes_reports.metrics_router)
    # What the risk rules read, maintained by the risk team (issue 15).
    app.include_router(routes_risk.router, prefix=routes_risk.PREFIX)
    # The coordinators' console in the browser (issue 20): /console.
    from starters.console.routes import install_console

    install_console(app)
    # Every documented 4xx body is the one the API sends (ErrorResponse).
    document_errors(app)

    @app.get("/healthz", tags=["health"], summary="Liveness and dependencies")
    async def healthz(request: Request) -> JSONResponse:
        checks = {
            "temporal": await _check(_temporal_ok(request.app.state.client)),
            "database": await _check(_database_ok(request.app.state.pool)),
        }
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "degraded", **checks},
            status_code=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    return app


async def _check(probe: Any) -> str:
    try:
        await asyncio.wait_for(probe, timeout=HEALTH_TIMEOUT_SECONDS)
    except Exception as err:  # a health check reports, it never raises
        return f"error: {type(err).__name__}"
    return "ok"


async def _temporal_ok(client: Client | None) -> None:
    if client is None:
        raise RuntimeError("not connected")
    if not await client.service_client.check_health():
        raise RuntimeError("unhealthy")


async def _database_ok(pool: asyncpg.Pool | None) -> None:
    if pool is None:
        raise RuntimeError("not connected")
    await pool.fetchval("SELECT 1")


# -------------------------------------------------------------------- docs

# Swagger UI's and ReDoc's JavaScript and CSS, from the fastapi-offline
# package: /docs and /redoc work on a machine without Internet.
DOCS_ASSETS_URL = "/docs-assets"
_DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"


def _install_docs(app: FastAPI) -> None:
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=_DOCS_ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


# ------------------------------------------------------------------ errors

# Pydantic prefixes messages from our own validators with this.
_VALUE_ERROR_PREFIX = re.compile(r"^(Value|Assertion) error, ")
# Domain model validators start their message with the field they are about
# ("payment.amount_minor 100 differs ..."); we use it to point the client at
# that field instead of at the enclosing object.
_LEADING_FIELD = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*) ")
_SOURCES = ("body", "query", "path", "header", "cookie")


def field_path(loc: Sequence[int | str], reason: str, *, model_level: bool = False) -> str:
    """("body", "items", 0, "quantity") -> "items[0].quantity"; "query.limit" for parameters.

    `model_level` marks an error raised by a validator on a whole object, whose
    reason names the field first.
    """
    source = str(loc[0]) if loc and loc[0] in _SOURCES else "body"
    parts = list(loc[1:]) if loc and loc[0] in _SOURCES else list(loc)
    if source == "body" and len(parts) == 1 and isinstance(parts[0], int):
        parts = []  # a JSON decode error's character offset, not a field
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if source != "body":
        return f"{source}.{path}" if path else source
    leading = _LEADING_FIELD.match(reason) if model_level else None
    if leading and ("_" in leading.group(1) or "." in leading.group(1)):
        path = f"{path}.{leading.group(1)}" if path else leading.group(1)
    return path or "body"


def _reason(error: dict[str, Any]) -> str:
    return _VALUE_ERROR_PREFIX.sub("", str(error.get("msg", "invalid")))


def validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    details: list[dict[str, str]] = []
    for error in errors:
        reason = _reason(error)
        # A model validator's input is the object itself (a dict).
        model_level = error.get("type") == "value_error" and isinstance(error.get("input"), dict)
        path = field_path(error.get("loc", ()), reason, model_level=model_level)
        # Never echo `input`: it may be a customer's address or email.
        details.append({"field": path, "reason": reason})
    return details


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(exc.errors())
        fields = ", ".join(d["field"] for d in details)
        log.info("request_invalid", fields=fields)
        return JSONResponse(
            {
                "message": f"invalid request: {len(details)} error(s) in {fields}; "
                "nothing was started or changed",
                "detail": details,
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(ReviewNotFound)
    async def not_found(request: Request, exc: ReviewNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(DecisionRefused)
    async def refused(request: Request, exc: DecisionRefused) -> JSONResponse:
        log.info("decision_refused", reason=exc.message)
        return JSONResponse({"detail": exc.message}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(ReviewClosed)
    async def closed(request: Request, exc: ReviewClosed) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(ReviewUnavailable)
    async def unavailable(request: Request, exc: ReviewUnavailable) -> JSONResponse:
        log.warning("review_unavailable", error=str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)

    @app.exception_handler(RPCError)
    async def temporal_error(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            log.warning("temporal_unavailable", error=exc.message)
            return JSONResponse(
                {"detail": "Temporal did not answer; retry later"},
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        log.error("temporal_error", status=exc.status.name, error=exc.message)
        return JSONResponse(
            {"detail": "unexpected Temporal error"},
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )


# ----------------------------------------------------------------- logging


class RequestLogMiddleware:
    """One log line per request, with a request id and the caller's actor.

    Pure ASGI (not BaseHTTPMiddleware) so the endpoint runs in this task's
    context: what the auth dependency binds (actor, role) is still bound when
    the line is written, and nothing leaks into the next request.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        # Off: a request that succeeded is logged at DEBUG, so the INFO level
        # shows what happened in the cases, not every poll of the queue.
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request_id, method=scope["method"], path=loggable(scope["path"])
        )
        status_code = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            level = logging.INFO if self.access_log or status_code >= 400 else logging.DEBUG
            log.log(
                level,
                "http_request",
                status=status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            structlog.contextvars.clear_contextvars()
