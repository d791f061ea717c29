"""Provider webhooks: Stripe and Adyen dispute events, and the warehouse's
CCTV answers.

Stripe and Adyen authenticate by signature, not by API key: the raw body is
verified before anything is parsed, and a request that fails verification or
is malformed gets a 4xx naming the reason and starts nothing. Every authentic
event is acknowledged (2xx, Adyen's `[accepted]`): Stripe retries anything
else for days and disables failing endpoints, Adyen queues it for 30 days and
its webhook always carries its default event codes (AUTHORISATION, CAPTURE,
REFUND...). The events Steward does not act on are recorded with their type
and why (store.webhook_events, `GET /v1/webhooks/ignored`), and every dispute
item of an Adyen batch is delivered whatever else the batch holds. A whole
batch is verified and normalised before any item is delivered, so a bad item
cannot leave half a batch applied.

Stripe's refund.updated, charge.refund.updated and refund.failed report a
refund's final status: a refund Stripe answered `pending` waits for it.

Adyen's CAPTURE, CANCELLATION and REFUND items are the outcomes of the
modifications Steward's Adyen payment adapter sent: each goes to the payment
operation waiting for it (clients/payment_outcomes.py), and so do the later
CAPTURE_FAILED, REFUND_FAILED and REFUNDED_REVERSED (a failure ends a waiting
operation as refused; after a confirmed one it reverses the ledger row and
opens a finance task).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import Field
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from clients import chargeback, payment_outcomes
from domain.chargeback import (
    DisputeEvent,
    DisputeProvider,
    IgnoredEvent,
    WebhookPayloadError,
    read_adyen_item,
    read_stripe_event,
)
from domain.common import NonEmptyStr, Role, StewardModel
from domain.evidence import CctvClipReady
from domain.payment_providers import (
    ModificationOutcome,
    StripeRefundUpdate,
    read_adyen_modification,
    read_stripe_refund,
)
from domain.webhook_signatures import SignatureError, verify_adyen_item, verify_stripe_signature
from starters.api.routes_common import AppSettings, DbPool, TemporalClient, error_responses
from starters.auth import Principal, authenticate, require_roles
from store import disputes as dispute_store
from store import webhook_events
from store.webhook_events import IgnoredEventRow
from workers.settings import Settings

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

# Provider bodies are small; anything larger is not a provider talking.
MAX_BODY_BYTES = 512 * 1024


class WebhookResult(StewardModel):
    received: int
    delivered: int = Field(description="Events handed to their case (not duplicates)")
    ignored: int = Field(
        default=0,
        description="Authentic events Steward does not act on: acknowledged and recorded "
        "(GET /v1/webhooks/ignored)",
    )
    workflow_ids: list[str]


def _refuse(code: int, detail: str) -> HTTPException:
    log.info("webhook_refused", status=code, reason=detail)
    return HTTPException(status_code=code, detail=f"{detail}; nothing was started or changed")


async def _raw_body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise _refuse(
            status.HTTP_413_CONTENT_TOO_LARGE, f"body: larger than {MAX_BODY_BYTES} bytes"
        )
    return body


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(status.HTTP_400_BAD_REQUEST, f"body: not valid JSON ({exc})") from None


async def _deliver(
    client: Client,
    pool: asyncpg.Pool,
    events: list[DisputeEvent],
    settings: Settings,
) -> WebhookResult:
    delivered = 0
    ids: list[str] = []
    for event in events:
        result = await chargeback.deliver_event(
            client, pool, event, task_queue=settings.task_queue, policy=settings.dispute_policy()
        )
        delivered += int(result.delivered)
        ids.append(result.workflow_id)
        # A repeat is not resolved again: only a delivered event says its order.
        resolved = (
            {
                "order_id": result.event.order_id,
                "order_source": result.event.order_source or "unresolved",
            }
            if result.event is not None
            else {}
        )
        log.info(
            "dispute_event_received",
            provider=event.provider.value,
            dispute_id=event.dispute_id,
            event_id=event.event_id,
            kind=event.kind.value,
            delivered=result.delivered,
            workflow_id=result.workflow_id,
            **resolved,
        )
    return WebhookResult(received=len(events), delivered=delivered, workflow_ids=ids)


async def _ignore(pool: asyncpg.Pool, ignored: list[IgnoredEvent]) -> None:
    for event in ignored:
        first = await chargeback.record_ignored(pool, event)
        log.info(
            "webhook_event_ignored",
            provider=event.provider.value,
            event_type=event.event_type,
            event_key=event.event_key,
            reason=event.reason,
            first_time=first,
        )


@router.post(
    "/stripe",
    response_model=WebhookResult,
    responses=error_responses(422, 503)
    | {400: {"description": "Malformed body"}, 401: {"description": "Bad Stripe-Signature"}},
    summary="Stripe Event objects (charge.dispute.*, radar.early_fraud_warning.created; "
    "refund.updated, charge.refund.updated and refund.failed settle the refund they report; "
    "any other authentic event is acknowledged and recorded as ignored)",
)
async def stripe_webhook(
    request: Request,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookResult:
    body = await _raw_body(request)
    try:
        verify_stripe_signature(
            body=body,
            header=stripe_signature,
            secrets=settings.stripe_secrets,
            now=time.time(),
            tolerance_seconds=settings.stripe_tolerance_seconds,
        )
    except SignatureError as exc:
        raise _refuse(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    payload = _json(body)
    if not isinstance(payload, dict):
        raise _refuse(status.HTTP_400_BAD_REQUEST, "body: expected a Stripe Event object")
    try:
        event = read_stripe_event(payload)
    except WebhookPayloadError as exc:
        raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if isinstance(event, IgnoredEvent):
        try:
            refund = read_stripe_refund(payload)
        except WebhookPayloadError as exc:
            raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        if refund is not None:
            return await _stripe_refund(client, pool, refund, event)
        await _ignore(pool, [event])
        return WebhookResult(received=1, delivered=0, ignored=1, workflow_ids=[])
    return await _deliver(client, pool, [event], settings)


async def _stripe_refund(
    client: Client, pool: asyncpg.Pool, refund: StripeRefundUpdate, as_ignored: IgnoredEvent
) -> WebhookResult:
    """A refund's final status goes to the refund operation waiting for it
    (clients/payment_outcomes.py: a pending refund's activity completes, a
    failure after a confirmed one reverses it); anything else is recorded as
    ignored, with why."""
    if refund.outcome is None:
        reason = f"refund {refund.refund_id} is {refund.status}: not final yet"
    else:
        routed = await payment_outcomes.route_modification_outcome(client, pool, refund.outcome)
        log.info(
            "payment_outcome_received",
            provider=refund.outcome.provider.value,
            event_key=refund.outcome.event_key,
            routed=routed.routed.value,
            workflow_id=routed.workflow_id,
        )
        if routed.routed is payment_outcomes.Routed.UNMATCHED:
            reason = "not a refund Steward made (no steward_idempotency_key in its metadata)"
        elif routed.routed is payment_outcomes.Routed.KEPT_FOR_LATER:
            reason = "no refund operation waits for it (yet): its outcome is kept for it"
        else:
            delivered = int(
                routed.routed in (payment_outcomes.Routed.SETTLED, payment_outcomes.Routed.REVERSED)
            )
            ids = [routed.workflow_id] if routed.workflow_id else []
            return WebhookResult(received=1, delivered=delivered, workflow_ids=ids)
    await _ignore(pool, [as_ignored.model_copy(update={"reason": reason})])
    return WebhookResult(received=1, delivered=0, ignored=1, workflow_ids=[])


@router.post(
    "/adyen",
    response_class=PlainTextResponse,
    responses={
        200: {"description": "`[accepted]`, as Adyen expects, for every authentic batch"},
        400: {"description": "Malformed body"},
        401: {"description": "An item's HMAC signature is missing or wrong"},
        422: {"description": "A dispute item is malformed"},
    },
    summary="Adyen standard notifications (HMAC-signed items): dispute codes are handled, "
    "CAPTURE / CANCELLATION / REFUND (and CAPTURE_FAILED / REFUND_FAILED / REFUNDED_REVERSED) "
    "settle the payment operation they are about, "
    "the others are acknowledged and recorded as ignored",
)
async def adyen_webhook(
    request: Request,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
) -> PlainTextResponse:
    payload = _json(await _raw_body(request))
    items = payload.get("notificationItems") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise _refuse(status.HTTP_400_BAD_REQUEST, "notificationItems: expected a non-empty list")
    events: list[DisputeEvent] = []
    ignored: list[IgnoredEvent] = []
    outcomes: list[tuple[ModificationOutcome, IgnoredEvent]] = []
    for index, wrapper in enumerate(items):
        where = f"notificationItems[{index}].NotificationRequestItem"
        item = wrapper.get("NotificationRequestItem") if isinstance(wrapper, dict) else None
        if not isinstance(item, dict):
            raise _refuse(status.HTTP_400_BAD_REQUEST, f"{where}: expected an object")
        try:
            verify_adyen_item(item, settings.adyen_keys)
        except SignatureError as exc:
            raise _refuse(status.HTTP_401_UNAUTHORIZED, f"{where}.{exc}") from None
        try:
            read = read_adyen_item(item, f"{where}.")
        except WebhookPayloadError as exc:
            raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        if isinstance(read, IgnoredEvent):
            outcome = _modification_outcome(item, where)
            if outcome is not None:
                outcomes.append((outcome, read))
            else:
                ignored.append(read)
        else:
            events.append(read)
    await _deliver(client, pool, events, settings)
    ignored += await _route_modification_outcomes(client, pool, outcomes)
    await _ignore(pool, ignored)
    return PlainTextResponse("[accepted]")


def _modification_outcome(item: dict[str, Any], where: str) -> ModificationOutcome | None:
    """A CAPTURE / CANCELLATION / REFUND item: the outcome of a payment
    modification Steward may be waiting for (None: another event code)."""
    try:
        return read_adyen_modification(item, f"{where}.")
    except WebhookPayloadError as exc:
        raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


async def _route_modification_outcomes(
    client: Client, pool: asyncpg.Pool, outcomes: list[tuple[ModificationOutcome, IgnoredEvent]]
) -> list[IgnoredEvent]:
    """Hand each outcome to the payment operation waiting for it
    (clients/payment_outcomes.py); the ones no operation has asked for yet
    are also recorded as ignored, with why."""
    unmatched: list[IgnoredEvent] = []
    for outcome, as_ignored in outcomes:
        routed = await payment_outcomes.route_modification_outcome(client, pool, outcome)
        log.info(
            "payment_outcome_received",
            provider=outcome.provider.value,
            event_key=outcome.event_key,
            routed=routed.routed.value,
            workflow_id=routed.workflow_id,
        )
        if routed.routed is payment_outcomes.Routed.KEPT_FOR_LATER:
            unmatched.append(
                as_ignored.model_copy(
                    update={
                        "reason": "no payment operation of Steward has sent this modification "
                        "(yet): its outcome is kept for one that does"
                    }
                )
            )
        elif routed.routed is payment_outcomes.Routed.UNMATCHED:
            unmatched.append(
                as_ignored.model_copy(
                    update={
                        "reason": "no refund of Steward's has this pspReference: nothing to reverse"
                    }
                )
            )
    return unmatched


@router.get(
    "/ignored",
    response_model=list[IgnoredEventRow],
    responses=error_responses(401, 422),
    summary="Authentic provider events acknowledged without action, newest first",
)
async def list_ignored_events(
    principal: Annotated[Principal, Depends(authenticate)],
    pool: DbPool,
    provider: DisputeProvider | None = None,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[IgnoredEventRow]:
    return await webhook_events.list_ignored(
        pool,
        provider=provider.value if provider else None,
        event_type=event_type,
        limit=limit,
    )


class CctvAnswer(StewardModel):
    """The warehouse's answer to a CCTV clip request."""

    event_id: NonEmptyStr = Field(description="The warehouse's message id; repeats are ignored")
    request_id: NonEmptyStr = Field(description="The request id Steward sent")
    available: bool = True
    clip_ref: str | None = Field(default=None, max_length=500)
    station: str | None = Field(default=None, max_length=100)
    reason: str = Field(default="", max_length=500)


class CctvDelivered(StewardModel):
    request_id: str
    workflow_id: str
    status: str


@router.post(
    "/warehouse/cctv",
    response_model=CctvDelivered,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="The warehouse delivers a packing-station clip (signals the requester)",
)
async def warehouse_cctv(
    body: CctvAnswer,
    principal: Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS))],
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
) -> CctvDelivered:
    if body.available and not body.clip_ref:
        raise _refuse(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "clip_ref: required when available is true"
        )
    request = await dispute_store.sim_answer_cctv_request(
        pool, request_id=body.request_id, available=body.available, clip_ref=body.clip_ref
    )
    if request is None:
        raise _refuse(status.HTTP_404_NOT_FOUND, f"request_id: no CCTV request {body.request_id}")
    clip = CctvClipReady(
        event_id=body.event_id,
        request_id=body.request_id,
        order_id=request.order_id,
        available=body.available,
        clip_ref=body.clip_ref,
        station=body.station or request.station,
        reason=body.reason,
    )
    try:
        await chargeback.deliver_cctv_clip(client, request.reply_to, clip)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"request_id: the requesting process {request.reply_to} is no longer "
            "running; the answer is recorded with the warehouse request only",
        ) from None
    log.info("cctv_clip_delivered", request_id=body.request_id, workflow_id=request.reply_to)
    return CctvDelivered(
        request_id=body.request_id, workflow_id=request.reply_to, status=request.status
    )
