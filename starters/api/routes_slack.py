"""Slack intake for the ops desk: the `/steward` slash command and the
"Ops request" message shortcut (a modal with the type's fields).

Every request is checked with slack_sdk's SignatureVerifier (the signing
secret, Slack's `v0` signature over the timestamp and the raw body, and the
timestamp's age): a forged or stale request gets 401 and opens nothing.
Slack waits 3 seconds for the acknowledgement; the route only validates and
starts the workflow (tens of milliseconds), and every later update
(assigned, waiting for, escalated, resolved) is posted into the requester's
thread by the workflow through the chat port (activities/chat.py).

A retried command (same trigger id) opens nothing twice: the request id is
derived from Slack's trigger id. Bad input is answered in Slack (ephemeral,
one line per field) and opens nothing.

    /steward status ORDER_ID
    /steward address-change ORDER_ID line1="12 rue de la Paix" city=Paris
             postal_code=75002 country=FR
    /steward special-delivery ORDER_ID kind=signature
    /steward qc-check ORDER_ID reason="scratch on the clasp"
    /steward cctv SITE ZONE WINDOW_START WINDOW_END [order=ORDER_ID] [link=WORKFLOW_ID,...]
    /steward inventory SITE SKU WMS_QTY ERP_QTY unit_cost=MINOR currency=EUR
             [orders=A,B] [zone=ZONE]
    /steward carrier-claim CARRIER TRACKING lost|damaged
    /steward other free text
  options on every type: priority=urgent|high|normal|low note="..."
"""

from __future__ import annotations

import json
import shlex
import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

import asyncpg
import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from slack_sdk.signature import SignatureVerifier

from activities.chat import ChatPort
from clients import ops_request as ops_client
from domain.ops_request import REQUIRED_FIELDS, Channel, ChatThread, OpsRequestDraft, OpsRequestType
from starters.api.routes_common import AppSettings, DbPool, TemporalClient
from starters.ops_simulator import signing_secret
from workers.activities import chat_port

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/slack", tags=["slack"])

SHORTCUT_CALLBACK = "ops_request"
MODAL_CALLBACK = "ops_request_modal"

# Slash-command words for each type, and the positional arguments each takes.
COMMANDS: dict[str, tuple[OpsRequestType, tuple[str, ...]]] = {
    "status": (OpsRequestType.ORDER_STATUS, ("order_id",)),
    "address-change": (OpsRequestType.ADDRESS_CHANGE, ("order_id",)),
    "special-delivery": (OpsRequestType.SPECIAL_DELIVERY, ("order_id",)),
    "qc-check": (OpsRequestType.QC_CHECK, ("order_id",)),
    "cctv": (
        OpsRequestType.CCTV_RETRIEVAL,
        ("site_id", "camera_zone", "window_start", "window_end"),
    ),
    "inventory": (
        OpsRequestType.INVENTORY_DISCREPANCY,
        ("site_id", "sku", "wms_quantity", "erp_quantity"),
    ),
    "carrier-claim": (OpsRequestType.CARRIER_CLAIM, ("carrier", "tracking_number", "claim_type")),
    "other": (OpsRequestType.OTHER, ()),
}
_ADDRESS_KEYS = ("line1", "line2", "city", "postal_code", "region", "country")
_LIST_KEYS = {"orders": "affected_order_ids", "link": "linked_workflow_ids"}
_ALIASES = {"order": "order_id", "zone": "cctv_zone", "unit_cost": "unit_cost_minor"}


class CommandError(ValueError):
    """A slash command that cannot become a request; the text to answer."""


def parse_command(text: str) -> dict[str, Any]:
    """`/steward` text -> the body of an ops request draft (not yet validated)."""
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise CommandError(f"cannot read the command: {err}") from None
    if not words or words[0] in ("help", "?"):
        raise CommandError(help_text())
    verb, rest = words[0].lower(), words[1:]
    if verb not in COMMANDS:
        raise CommandError(f"unknown request type {verb!r}.\n{help_text()}")
    request_type, positional = COMMANDS[verb]
    details: dict[str, Any] = {"type": request_type.value}
    draft: dict[str, Any] = {"details": details}
    free: list[str] = []
    address: dict[str, str] = {}
    args = [w for w in rest if "=" not in w]
    options = [w for w in rest if "=" in w]
    for name, value in zip(positional, args, strict=False):
        details[name] = value
    free = args[len(positional) :]
    if request_type in (OpsRequestType.OTHER, OpsRequestType.QC_CHECK) and free:
        if request_type is OpsRequestType.QC_CHECK:
            details.setdefault("reason", " ".join(free))
        else:
            draft["description"] = " ".join(free)
        free = []
    if free:
        raise CommandError(f"unexpected words: {' '.join(free)}")
    for option in options:
        key, _, value = option.partition("=")
        key = key.strip().lower()
        if key == "priority":
            draft["priority"] = value
        elif key == "note":
            draft["description"] = value
        elif key in _ADDRESS_KEYS and request_type is OpsRequestType.ADDRESS_CHANGE:
            address[key] = value
        elif key in _LIST_KEYS:
            details[_LIST_KEYS[key]] = [v for v in value.split(",") if v]
        else:
            details[_ALIASES.get(key, key)] = value
    if address:
        details["address"] = address
    return draft


def help_text() -> str:
    lines = ['Usage: /steward TYPE ARGUMENTS [priority=...] [note="..."]']
    for verb, (request_type, positional) in COMMANDS.items():
        needed = [f for f in REQUIRED_FIELDS[request_type] if f not in positional]
        lines.append(
            f"• {verb} {' '.join(p.upper() for p in positional)}"
            + (f" {' '.join(f + '=...' for f in needed)}" if needed else "")
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- verifying


def _verifier(settings: Any) -> SignatureVerifier:
    # STEWARD_SLACK_SIGNING_SECRET, or the embedded stack's own (data dir).
    return SignatureVerifier(signing_secret(settings))


async def verified_body(request: Request, settings: AppSettings) -> bytes:
    """The raw body, once slack_sdk's verifier accepts its signature and age."""
    verifier = _verifier(settings)
    body = await request.body()
    if not verifier.is_valid_request(body, dict(request.headers)):
        log.info("slack_signature_refused")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or stale Slack signature")
    return body


VerifiedBody = Annotated[bytes, Depends(verified_body)]


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}


def _chat(request: Request, pool: asyncpg.Pool, settings: Any) -> ChatPort:
    chat: ChatPort | None = getattr(request.app.state, "chat", None)
    if chat is None:
        chat = chat_port(settings, pool)
        request.app.state.chat = chat
    return chat


def _ephemeral(text: str) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": text})


def _problems_text(problems: list[ops_client.FieldProblem]) -> str:
    return "Nothing was opened:\n" + "\n".join(f"• {p.field}: {p.reason}" for p in problems)


async def _open(
    client: Any,
    pool: asyncpg.Pool,
    settings: Any,
    raw: dict[str, Any],
    *,
    user: str,
    trigger_id: str,
    chat: ChatThread,
) -> ops_client.Opened:
    """Validate and open; IntakeRefused with one problem per field."""
    try:
        draft = OpsRequestDraft.model_validate(raw)
    except ValidationError as err:
        raise ops_client.IntakeRefused(ops_client.draft_problems(err.errors())) from None
    return await ops_client.open_request(
        client,
        pool,
        draft,
        requester=f"slack:{user}",
        channel=Channel.SLACK,
        task_queue=settings.task_queue,
        now=datetime.now(UTC),
        request_id=ops_client.derived_request_id("slack", trigger_id),
        chat=chat,
        escalation_channel=settings.ops_escalation_channel,
    )


# ------------------------------------------------------------------ routes


@router.post(
    "/commands",
    summary="Slack slash command `/steward` (signed by Slack)",
    responses={401: {"description": "Forged or stale Slack signature"}},
)
async def slash_command(
    body: VerifiedBody,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
) -> Response:
    started = time.perf_counter()
    form = _form(body)
    try:
        raw = parse_command(form.get("text", ""))
    except CommandError as err:
        return _ephemeral(str(err))
    try:
        opened = await _open(
            client,
            pool,
            settings,
            raw,
            user=form.get("user_id", "unknown"),
            trigger_id=form.get("trigger_id") or form.get("command_ts", "") or str(time.time()),
            chat=ChatThread(channel=form.get("channel_id", "unknown"), user=form.get("user_id")),
        )
    except ops_client.IntakeRefused as refused:
        return _ephemeral(_problems_text(refused.problems))
    log.info(
        "slack_command_acknowledged",
        request_id=opened.request_id,
        created=opened.created,
        ack_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    if not opened.created:
        return _ephemeral(f"{opened.request_id} is already open; updates follow in its thread.")
    return _ephemeral(
        f"Opened {opened.request_id}; updates follow in the thread the desk starts here."
    )


@router.post(
    "/interactions",
    summary="Slack interactivity: the message shortcut and its modal (signed by Slack)",
    responses={401: {"description": "Forged or stale Slack signature"}},
)
async def interaction(
    request: Request,
    body: VerifiedBody,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
) -> Response:
    try:
        payload = json.loads(_form(body).get("payload", ""))
    except json.JSONDecodeError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "payload: not JSON") from None
    kind = payload.get("type")
    if kind == "message_action" and payload.get("callback_id") == SHORTCUT_CALLBACK:
        channel = (payload.get("channel") or {}).get("id", "unknown")
        message = payload.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts")
        metadata = json.dumps({"channel": channel, "thread_ts": thread_ts})
        await _chat(request, pool, settings).open_modal(
            trigger_id=payload["trigger_id"], view=modal(metadata)
        )
        return Response(status_code=status.HTTP_200_OK)
    if kind == "view_submission" and (payload.get("view") or {}).get("callback_id") == (
        MODAL_CALLBACK
    ):
        view = payload["view"]
        metadata = json.loads(view.get("private_metadata") or "{}")
        raw = draft_from_view(view.get("state", {}).get("values", {}))
        try:
            opened = await _open(
                client,
                pool,
                settings,
                raw,
                user=(payload.get("user") or {}).get("id", "unknown"),
                trigger_id=payload.get("trigger_id") or view.get("id", ""),
                chat=ChatThread(
                    channel=metadata.get("channel", "unknown"),
                    thread_ts=metadata.get("thread_ts"),
                    user=(payload.get("user") or {}).get("id"),
                ),
            )
        except ops_client.IntakeRefused as refused:
            return JSONResponse(
                {"response_action": "errors", "errors": _block_errors(refused.problems)}
            )
        log.info("slack_modal_submitted", request_id=opened.request_id, created=opened.created)
        return JSONResponse({"response_action": "clear"})
    return Response(status_code=status.HTTP_200_OK)


# ------------------------------------------------------------------- modal

# Every field a type may need, in one modal: each labelled with the types it is for.
MODAL_FIELDS: tuple[tuple[str, str], ...] = (
    ("order_id", "Order id (address change, special delivery, QC, status)"),
    ("line1", "New address: line 1 (address change)"),
    ("city", "New address: city"),
    ("postal_code", "New address: postal code"),
    ("country", "New address: country code (FR, GB...)"),
    ("kind", "Special delivery: timed, named_carrier, signature, collect_in_store"),
    ("reason", "QC check: what to check"),
    ("site_id", "Site (CCTV, inventory): LON1, PAR1, MIL1, NJ1"),
    ("camera_zone", "CCTV camera zone (packing, picking, storage...)"),
    ("window_start", "CCTV window start (2026-12-01T14:00Z)"),
    ("window_end", "CCTV window end"),
    ("sku", "Inventory: SKU"),
    ("wms_quantity", "Inventory: WMS quantity"),
    ("erp_quantity", "Inventory: ERP quantity"),
    ("unit_cost_minor", "Inventory: unit cost in minor units"),
    ("currency", "Inventory: currency"),
    ("carrier", "Carrier claim: carrier"),
    ("tracking_number", "Carrier claim: tracking number"),
    ("claim_type", "Carrier claim: lost or damaged"),
    ("description", "Anything the desk should know"),
)


def modal(private_metadata: str) -> dict[str, Any]:
    options = [
        {"text": {"type": "plain_text", "text": t.value.replace("_", " ")}, "value": t.value}
        for t in OpsRequestType
    ]
    priorities = [
        {"text": {"type": "plain_text", "text": p}, "value": p}
        for p in ("urgent", "high", "normal", "low")
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": "type",
            "label": {"type": "plain_text", "text": "Request type"},
            "element": {"type": "static_select", "action_id": "value", "options": options},
        },
        {
            "type": "input",
            "block_id": "priority",
            "optional": True,
            "label": {"type": "plain_text", "text": "Priority"},
            "element": {"type": "static_select", "action_id": "value", "options": priorities},
        },
    ]
    for block_id, label in MODAL_FIELDS:
        blocks.append(
            {
                "type": "input",
                "block_id": block_id,
                "optional": True,
                "label": {"type": "plain_text", "text": label[:150]},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": block_id == "description",
                },
            }
        )
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": "Ops request"},
        "submit": {"type": "plain_text", "text": "Open"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def _value(values: dict[str, Any], block_id: str) -> str | None:
    element = (values.get(block_id) or {}).get("value") or {}
    if "selected_option" in element:
        selected = element.get("selected_option")
        return selected.get("value") if selected else None
    value = element.get("value")
    return value.strip() if isinstance(value, str) and value.strip() else None


def draft_from_view(values: dict[str, Any]) -> dict[str, Any]:
    """The modal's values -> the body of an ops request draft (not yet validated)."""
    request_type = _value(values, "type") or ""
    details: dict[str, Any] = {"type": request_type}
    draft: dict[str, Any] = {"details": details}
    if (priority := _value(values, "priority")) is not None:
        draft["priority"] = priority
    if (description := _value(values, "description")) is not None:
        draft["description"] = description
    address = {k: v for k in _ADDRESS_KEYS if (v := _value(values, k)) is not None}
    if address and request_type == OpsRequestType.ADDRESS_CHANGE:
        details["address"] = address
    for block_id, _ in MODAL_FIELDS:
        if block_id in _ADDRESS_KEYS or block_id == "description":
            continue
        if (value := _value(values, block_id)) is not None:
            details[block_id] = value
    return draft


def _block_errors(problems: list[ops_client.FieldProblem]) -> dict[str, str]:
    """Slack shows a modal's errors under the block they name."""
    block_ids = {b for b, _ in MODAL_FIELDS} | {"type", "priority"}
    errors: dict[str, str] = {}
    for problem in problems:
        parts = problem.field.split(".")
        block = next((p for p in reversed(parts) if p in block_ids), "type")
        errors.setdefault(block, f"{problem.field}: {problem.reason}"[:150])
    return errors


__all__ = ["help_text", "modal", "parse_command", "router"]
