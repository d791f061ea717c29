"""What the API refuses before any route runs, and the error bodies its
OpenAPI document promises.

`RequestGuardMiddleware` answers, for every route:
- 413 for a body over the request limit (1 MiB; the codec's history pages
  8 MiB). A workflow's input travels as one Temporal payload and the server
  refuses a payload over 2 MB with an error the API could only answer 500 to;
  the limit keeps every accepted body well under it after encryption.
- 422 for a control character (U+0000-U+001F, U+007F) in a path or query
  parameter: PostgreSQL text refuses U+0000, and no id or filter carries the
  others. The field is named (`query.assignee`, `path.case_id`).

`document_errors` makes the OpenAPI document say so (and FastAPI's 400 for a
body it cannot parse), and makes every 4xx it
documents use the one error body the API sends (`ErrorResponse`), instead of
FastAPI's default `HTTPValidationError`, which no response of this API has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.campaign import MAX_ROSTER_BYTES
from domain.common import control_character_error

# Under Temporal's 2 MB payload limit with room for the codec and metadata.
MAX_REQUEST_BYTES: Final = 1024 * 1024
# Path prefixes with their own, larger limit (checked again by the route).
LARGER_LIMITS: Final[dict[str, int]] = {"/codec/": 8 * 1024 * 1024}
# Paths with their own limit: a campaign's HR roster (CSV, stored in
# PostgreSQL only, never a Temporal payload; checked again by the route).
PATTERN_LIMITS: Final[tuple[tuple[re.Pattern[str], int], ...]] = (
    (re.compile(r"^/v1/campaigns/[^/]+/roster$"), MAX_ROSTER_BYTES),
)
_UNCHANGED: Final = "nothing was started or changed"


_LOG_ESCAPES: Final = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}


def loggable(text: str) -> str:
    """`text` with its control characters escaped (`\\x00`, `\\x1b`): a hostile
    path must not write ANSI sequences to an operator's terminal through the log."""
    return text.translate(_LOG_ESCAPES)


def body_limit(path: str) -> int:
    for prefix, limit in LARGER_LIMITS.items():
        if path.startswith(prefix):
            return limit
    for pattern, limit in PATTERN_LIMITS:
        if pattern.match(path):
            return limit
    return MAX_REQUEST_BYTES


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


def parameter_errors(scope: Scope) -> list[dict[str, str]]:
    """One entry per path or query parameter carrying a control character."""
    errors: list[dict[str, str]] = []
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8"):
        reason = control_character_error(name, free_text=False) or control_character_error(
            value, free_text=False
        )
        if reason is not None:
            errors.append({"field": f"query.{name}", "reason": reason})
    path: str = scope.get("path", "")
    if control_character_error(path, free_text=False) is None:
        return errors
    params: dict[str, Any] = {}
    for template in _path_templates(scope.get("app")):
        found = template.fullmatch(path)
        if found is not None:
            params = found.groupdict()
            break
    named = False
    for name, value in params.items():
        if isinstance(value, str):
            reason = control_character_error(value, free_text=False)
            if reason is not None:
                errors.append({"field": f"path.{name}", "reason": reason})
                named = True
    if not named:
        reason = control_character_error(path, free_text=False) or "invalid"
        errors.append({"field": "path", "reason": reason})
    return errors


def _path_templates(app: Any) -> list[re.Pattern[str]]:
    """The documented paths as patterns (`/v1/audit/{case_id}`), to name the parameter."""
    if app is None or not hasattr(app, "openapi"):
        return []
    cached: list[re.Pattern[str]] | None = getattr(app.state, "path_templates", None)
    if cached is None:
        cached = [
            re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))
            for path in app.openapi().get("paths", {})
        ]
        app.state.path_templates = cached
    return cached


class RequestGuardMiddleware:
    """Refuses oversized bodies (413) and control characters in parameters
    (422) before routing, so no route, workflow or query ever sees them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors = parameter_errors(scope)
        if errors:
            fields = ", ".join(e["field"] for e in errors)
            await _send_json(
                send,
                422,
                {
                    "message": f"invalid request: {len(errors)} error(s) in {fields}; {_UNCHANGED}",
                    "detail": errors,
                },
            )
            return
        limit = body_limit(scope.get("path", ""))
        too_large = {
            "detail": f"body: larger than {limit} bytes, the limit of a request to this "
            f"endpoint (Temporal refuses a payload over 2 MB); {_UNCHANGED}"
        }
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, too_large)
            return
        # Read the body here (at most limit + 1 bytes), then hand it on whole.
        chunks: list[bytes] = []
        size = 0
        more = True
        disconnected: Message | None = None
        while more:
            message = await receive()
            if message["type"] != "http.request":
                disconnected = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_json(send, 413, too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                if disconnected is not None:
                    return disconnected
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# ------------------------------------------------------------------ OpenAPI

_ERROR_REF: Final = {"$ref": "#/components/schemas/ErrorResponse"}
_DEFAULT_VALIDATION_REF: Final = "#/components/schemas/HTTPValidationError"
_METHODS: Final = ("get", "post", "put", "patch", "delete")


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def document_errors(app: FastAPI) -> None:
    """Post-process the generated OpenAPI document: every operation's 422 (and
    the 413 of an operation taking a body) describes `ErrorResponse`, the body
    the API's handlers and `RequestGuardMiddleware` send."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for item in schema.get("paths", {}).values():
            for method in _METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
                current = responses.get("422")
                if takes_input and (
                    current is None
                    or "content" not in current
                    or current["content"].get("application/json", {}).get("schema", {}).get("$ref")
                    == _DEFAULT_VALIDATION_REF
                ):
                    description = (current or {}).get("description")
                    if not description or description == "Validation Error":
                        description = "Invalid request: one entry per field with the reason"
                    responses["422"] = _error(description)
                if "requestBody" in operation and "413" not in responses:
                    responses["413"] = _error("The body is larger than the request limit")
                if "requestBody" in operation and "400" not in responses:
                    # FastAPI's own answer to a body it cannot parse at all.
                    responses["400"] = _error("Malformed body")
                for code, response in responses.items():
                    # An error documented without a body: it has the one body.
                    if code[:1] in "45" and "content" not in response:
                        response["content"] = {"application/json": {"schema": _ERROR_REF}}
        components = schema.get("components", {}).get("schemas", {})
        text = json.dumps(schema)
        for unused in ("HTTPValidationError", "ValidationError"):
            if f"#/components/schemas/{unused}" not in text:
                components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
