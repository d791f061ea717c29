"""The coordinators' console, served by the API at /console: server-rendered
pages (Jinja2), no JavaScript, the same keys, roles and decisions as the API.

- Sign-in with an API key: the key is checked against the API's key store and
  kept server-side; the browser holds only a random session id in a cookie
  (HttpOnly, SameSite=Strict, Secure when served over TLS). A revoked key ends
  its sessions at the next request; sessions expire after 8 idle hours.
- CSRF: every form carries the session's token (the sign-in form a
  double-submit token), compared in constant time; SameSite=Strict on top.
- Decisions call the API's own route functions with the signed-in principal,
  so the validation, the role checks and the decision signing are the API's;
  a refusal is shown in words on the case page. Every sign-in, sign-out and
  decision is in the audit log under the signed-in actor (the decisions by
  the workflows, sign-in and sign-out here).
- Security headers on every console response: a CSP without inline scripts
  (no script at all), frame-ancestors 'none' and X-Frame-Options,
  Referrer-Policy, nosniff.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clients.errors import CaseClosed, CaseNotFound, CaseRefused, CaseUnavailable
from domain.audit import AuditEntry
from domain.common import Role
from starters.auth import ApiKeyStore, Principal, roles_of
from starters.console import views

log = structlog.get_logger(__name__)

PREFIX = "/console"
SESSION_COOKIE = "steward_session"
LOGIN_CSRF_COOKIE = "steward_login_csrf"
SESSION_IDLE_SECONDS = 8 * 3600
QUEUE_REFRESH_SECONDS = 30
_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


# ---------------------------------------------------------------- sessions


@dataclass
class Session:
    key: str  # server-side only: re-checked at every request, so revoking it ends the session
    principal: Principal
    csrf: str
    last_seen: float


class Sessions:
    """Server-side sessions of one API process (a restart signs everyone out)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}

    def open(self, key: str, principal: Principal) -> str:
        # Forget the sessions nobody used for 8 hours, so the table stays small.
        now = time.monotonic()
        for stale in [
            sid for sid, s in self._by_id.items() if now - s.last_seen > SESSION_IDLE_SECONDS
        ]:
            del self._by_id[stale]
        session_id = secrets.token_urlsafe(32)
        self._by_id[session_id] = Session(key, principal, secrets.token_urlsafe(32), now)
        return session_id

    def get(self, session_id: str | None, keys: ApiKeyStore) -> Session | None:
        session = self._by_id.get(session_id or "")
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > SESSION_IDLE_SECONDS or keys.lookup(session.key) is None:
            self._by_id.pop(session_id or "", None)
            return None
        session.last_seen = now
        return session

    def close(self, session_id: str | None) -> Session | None:
        return self._by_id.pop(session_id or "", None)


def _sessions(request: Request) -> Sessions:
    sessions: Sessions | None = getattr(request.app.state, "console_sessions", None)
    if sessions is None:
        sessions = request.app.state.console_sessions = Sessions()
    return sessions


def _secure(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


class SignInRequired(Exception):
    pass


async def current_session(request: Request) -> Session:
    session = _sessions(request).get(
        request.cookies.get(SESSION_COOKIE), request.app.state.api_keys
    )
    if session is None:
        raise SignInRequired
    structlog.contextvars.bind_contextvars(
        actor=session.principal.actor, role=session.principal.role.value
    )
    return session


SignedIn = Annotated[Session, Depends(current_session)]


async def form_data(request: Request) -> dict[str, str]:
    """The urlencoded form (no multipart dependency: the console posts no files)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "form expected")
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _csrf_ok(expected: str, form: dict[str, str]) -> bool:
    return bool(expected) and hmac.compare_digest(expected, form.get("csrf", ""))


def _csrf_refused() -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><title>Refused</title><p>The form expired or did not come from "
        'this console (CSRF check). <a href="/console">Back to the console</a></p>',
        status_code=status.HTTP_403_FORBIDDEN,
    )


async def _audit(request: Request, principal: Principal, action: str, reason: str) -> None:
    from store import audit as audit_store

    now = datetime.now(UTC)
    entry = AuditEntry(
        entry_id=f"console:{principal.actor}/{action}/{uuid.uuid4().hex}",
        workflow_id=f"console:{principal.actor}",
        process="console",
        case_id=principal.actor,
        actor=principal.actor,
        role=principal.role,
        action=action,
        reason=reason,
        occurred_at=now,
    )
    try:
        await audit_store.insert_entry(request.app.state.pool, entry)
    except Exception:  # never lock a person out because the audit row failed
        log.exception("console_audit_failed", action=action)


def _render(request: Request, template: str, context: dict[str, Any], code: int = 200) -> Response:
    return templates.TemplateResponse(request, template, context, status_code=code)


def _base(request: Request, session: Session | None) -> dict[str, Any]:
    return {
        "principal": session.principal if session else None,
        "csrf": session.csrf if session else "",
        "reports_url": f"{PREFIX}/reports" if session else None,
    }


# ----------------------------------------------------------------- sign-in


@router.get("/login")
async def login_page(request: Request, error: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    response = _render(
        request, "login.html", {**_base(request, None), "login_csrf": token, "error": error}
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
        path=PREFIX,
    )  # fmt: skip
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_data(request)
    if not _csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), form):
        return _csrf_refused()
    key = form.get("api_key", "").strip()
    keys: ApiKeyStore = request.app.state.api_keys
    principal = keys.lookup(key) if key else None
    if principal is None:
        log.info("console_sign_in_refused")
        token = secrets.token_urlsafe(32)
        response = _render(
            request,
            "login.html",
            {**_base(request, None), "login_csrf": token, "error": "Unknown API key."},
            code=status.HTTP_401_UNAUTHORIZED,
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
            secure=_secure(request), path=PREFIX,
        )  # fmt: skip
        return response
    session_id = _sessions(request).open(key, principal)
    await _audit(request, principal, "console_signed_in", "signed in to the console")
    log.info("console_signed_in", actor=principal.actor, role=principal.role.value)
    response = RedirectResponse(f"{PREFIX}/", status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=_secure(request),
        path=PREFIX,
    )  # fmt: skip
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
async def logout(request: Request, session: SignedIn) -> Response:
    form = await form_data(request)
    if not _csrf_ok(session.csrf, form):
        return _csrf_refused()
    _sessions(request).close(request.cookies.get(SESSION_COOKIE))
    await _audit(request, session.principal, "console_signed_out", "signed out of the console")
    response = RedirectResponse(f"{PREFIX}/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


# ------------------------------------------------------------------- queue


@router.get("")
async def console_root() -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/")
async def queue(
    request: Request, session: SignedIn, process: str = "", market: str = ""
) -> Response:
    from store import tasks as task_store

    pool = request.app.state.pool
    role = session.principal.role
    tasks = await task_store.list_open(pool, role=role, limit=500)
    ids = list({t.workflow_id for t in tasks})
    records = await pool.fetch(
        "SELECT workflow_id, market FROM cases WHERE workflow_id = ANY($1::text[])", ids
    )
    markets = {r["workflow_id"]: r["market"] for r in records}
    rows = views.queue_rows(
        tasks, markets, datetime.now(UTC), process=process or None, market=market or None
    )
    return _render(
        request,
        "queue.html",
        {
            **_base(request, session),
            "rows": rows,
            "processes": sorted({t.process for t in tasks}),
            "markets": sorted({m for m in markets.values() if m}),
            "process": process,
            "market": market,
            "refresh": QUEUE_REFRESH_SECONDS,
            "process_label": views.process_label,
        },
    )


# --------------------------------------------------------------- case page


async def _state(request: Request, process: str, key: str) -> BaseModel | None:
    """The case's live state from its workflow (None for a process the console
    only lists, or a case Temporal no longer holds)."""
    from clients import (
        campaign,
        carrier_claim,
        chargeback,
        failed_delivery,
        fulfilment,
        ops_request,
        order_review,
        privacy_request,
        returns,
    )

    client = request.app.state.client
    parts = key.split(":", 1)
    try:
        if process == "fulfilment":
            return await fulfilment.get_fulfilment(client, key)
        if process == "ops-request":
            return await ops_request.get_request(client, key)
        if process == "campaign":
            return await campaign.get_campaign(client, key)
        if process == "privacy-request":
            return await privacy_request.get_request(client, key)
        if process == "order-review":
            return await order_review.get_status(client, key)
        if process == "return":
            return await returns.get_status(client, key)
        if process == "failed-delivery":
            return await failed_delivery.get_delivery(client, key)
        if process == "carrier-claim" and len(parts) == 2:
            return await carrier_claim.get_claim(client, parts[0], parts[1])
        if process == "chargeback" and len(parts) == 2:
            return await chargeback.get_status(client, parts[0], parts[1])
    except CaseNotFound:
        return None
    return None


async def _with_customer_words(pool: Any, process: str, state: Any) -> Any:
    """The customer's words put back from the personal-data store (issue 21:
    the workflow holds only their subject id), read the way the API's GET
    does; an erased message reads [erased]."""
    from clients import failed_delivery, order_review

    if state is None:
        return None
    if process == "order-review":
        return await order_review.with_messages(pool, state)
    if process == "failed-delivery":
        return await failed_delivery.with_reply_message(pool, state)
    if process == "campaign":
        from clients import campaign

        return await campaign.with_request_texts(pool, state)
    if process == "return":
        from clients import returns

        return await returns.with_cancel_reason(pool, state)
    if process == "ops-request":
        from clients import ops_request

        return await ops_request.with_request_texts(pool, state)
    return state


def _order_of(process: str, key: str, state: Any) -> str | None:
    if process == "order-review":
        return key
    order_id = getattr(state, "order_id", None)
    return str(order_id) if order_id else None


async def _case_context(
    request: Request, session: Session, workflow_id: str
) -> dict[str, Any] | None:
    from store import audit as audit_store
    from store import cases as case_store
    from store import ledger
    from store import tasks as task_store

    process, sep, key = workflow_id.partition(":")
    if not sep or not key or len(workflow_id) > 300:
        return None
    pool = request.app.state.pool
    row = await case_store.get(pool, workflow_id)
    try:
        state = await _state(request, process, key)
    except CaseUnavailable:
        state = None
    if row is None and state is None:
        return None
    state = await _with_customer_words(pool, process, state)
    case_id = row.case_id if row is not None else key
    order_id = _order_of(process, key, state)
    totals = await ledger.totals_for_order(pool, order_id) if order_id else None
    audit = await audit_store.list_by_case(pool, case_id, process=process)
    tasks = await task_store.list_for_workflow(pool, workflow_id)
    role = session.principal.role
    running = True
    if any(t.closed_at is None and t.awaited_role is role for t in tasks):
        # Whether a task of the role may be resolved here (docs/tasks.md).
        from clients.task_resolution import process_running

        try:
            running = await process_running(request.app.state.client, workflow_id)
        except CaseUnavailable:
            running = True  # unknown: offer only the handed-off kinds
    settings = request.app.state.settings
    ui = f"{request.url.scheme}://{request.url.hostname}:{settings.temporal_ui_port}"
    view = views.case_view(
        workflow_id=workflow_id,
        process=process,
        case_id=case_id,
        role=session.principal.role,
        row=row,
        state=state,
        totals=totals,
        audit=audit,
        temporal_ui=ui,
        namespace=settings.temporal_namespace,
        tasks=tasks,
        process_running=running,
    )
    return {**_base(request, session), "case": view, "nonce": uuid.uuid4().hex}


@router.get("/cases/{workflow_id:path}")
async def case_page(
    request: Request, workflow_id: str, session: SignedIn, done: str = ""
) -> Response:
    context = await _case_context(request, session, workflow_id)
    if context is None:
        return _render(
            request, "not_found.html", {**_base(request, session), "what": workflow_id}, code=404
        )
    return _render(request, "case.html", {**context, "done": done, "error": ""})


def _body(form: dict[str, str], **defaults: Any) -> dict[str, Any]:
    return {k: v for k, v in {**defaults, **form}.items() if k not in ("csrf", "nonce", "action")}


async def _apply(
    request: Request, principal: Principal, process: str, key: str, form: dict[str, str]
) -> None:
    """Apply a decision through the API's own route function (its body model,
    its error mapping, its signed client); role checks as the API's."""
    from starters.api import (
        routes_chargeback,
        routes_failed_delivery,
        routes_order_review,
        routes_returns,
    )

    client = request.app.state.client
    action = form.get("action", "")
    idempotency = form.get("nonce") or None
    deciders = (Role.COORDINATOR, Role.MANAGER)

    def allow(*roles: Role) -> None:
        if principal.role not in roles:
            names = ", ".join(sorted(r.value for r in roles))
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role.value} may not do this (needs one of: {names})",
            )

    if process == "order-review" and action == "order-review-decision":
        allow(*deciders)
        body = routes_order_review.DecisionBody.model_validate(_body(form))
        await routes_order_review.decide_order_review(
            order_id=key,
            body=body,
            principal=principal,
            client=client,
            pool=request.app.state.pool,
            idempotency_key=idempotency,
        )
    elif process == "return" and action == "return-qc-decision":
        allow(*deciders)
        fields = _body(form)
        fields["outcome"] = fields.get("outcome") or None
        fields["partial_refund_minor"] = fields.get("partial_refund_minor") or None
        qc = routes_returns.QcDecisionBody.model_validate(fields)
        await routes_returns.qc_decision(
            rma_id=key, body=qc, principal=principal, client=client, idempotency_key=idempotency
        )
    elif process == "return" and action == "return-finance-approval":
        allow(Role.FINANCE)
        approval = routes_returns.FinanceApprovalBody.model_validate(_body(form))
        await routes_returns.finance_approval(
            rma_id=key,
            body=approval,
            principal=principal,
            client=client,
            idempotency_key=idempotency,
        )
    elif process == "failed-delivery" and action == "failed-delivery-decision":
        allow(*deciders)
        fields = _body(form)
        fields["pickup_point_id"] = fields.get("pickup_point_id") or None
        delivery = routes_failed_delivery.DeliveryDecisionBody.model_validate(fields)
        await routes_failed_delivery.decide_delivery(
            shipment_id=key,
            body=delivery,
            principal=principal,
            client=client,
            pool=request.app.state.pool,
            idempotency_key=idempotency,
        )
    elif process == "chargeback" and action == "chargeback-link":
        allow(*deciders)
        provider_text, _, dispute_id = key.partition(":")
        link = routes_chargeback.LinkBody.model_validate(_body(form))
        await routes_chargeback.link_dispute(
            provider=routes_chargeback.DisputeProvider(provider_text),
            dispute_id=dispute_id,
            body=link,
            principal=principal,
            client=client,
            pool=request.app.state.pool,
            idempotency_key=idempotency,
        )
    elif process == "chargeback" and action == "chargeback-response":
        allow(*deciders)
        provider_text, _, dispute_id = key.partition(":")
        provider = routes_chargeback.DisputeProvider(provider_text)
        response = form.get("response", "")
        if response == "accept":
            accept = routes_chargeback.AcceptBody.model_validate({"note": form.get("note", "")})
            await routes_chargeback.accept_dispute(
                provider=provider,
                dispute_id=dispute_id,
                principal=principal,
                client=client,
                body=accept,
                idempotency_key=idempotency,
            )
        else:
            contest = routes_chargeback.ContestBody.model_validate(
                {
                    "note": form.get("note", ""),
                    "override_missing_evidence": form.get("override_missing_evidence") == "on",
                }
            )
            await routes_chargeback.contest_dispute(
                provider=provider,
                dispute_id=dispute_id,
                body=contest,
                principal=principal,
                client=client,
                idempotency_key=idempotency,
            )
    elif not await _apply_more(request, principal, process, key, form):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="no such decision on this case")


async def _resolve_task(
    request: Request, principal: Principal, workflow_id: str, form: dict[str, str]
) -> bool:
    """A task of this case no process will close, through the API's route
    (its role check: the role the task awaits; its 409 while the process runs)."""
    from domain.task_resolution import TaskResolutionBody
    from starters.api import routes_work

    task_id = form.get("task_id", "")
    if not task_id.startswith(f"{workflow_id}/"):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="task_id: not a task of this case"
        )
    body = TaskResolutionBody.model_validate(
        {"outcome": form.get("outcome", ""), "reason": form.get("reason", "")}
    )
    await routes_work.resolve(
        task_id=task_id,
        body=body,
        principal=principal,
        pool=request.app.state.pool,
        client=request.app.state.client,
    )
    return True


def _allow(principal: Principal, principal_type: Any) -> None:
    """The role check of the API route whose principal parameter is
    `principal_type` (the console calls the route function directly)."""
    roles = roles_of(principal_type)
    if principal.role not in roles:
        names = ", ".join(sorted(r.value for r in roles))
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"role {principal.role.value} may not do this (needs one of: {names})",
        )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _or_none(fields: dict[str, Any], *names: str) -> dict[str, Any]:
    """Empty form fields are absent values, not empty strings."""
    return {**fields, **{n: (fields.get(n) or None) for n in names}}


async def _apply_more(
    request: Request, principal: Principal, process: str, key: str, form: dict[str, str]
) -> bool:
    """Fulfilment, ops request, campaign and privacy request decisions, through
    the API's route functions; False when `form` names no decision of these."""
    from starters.api import (
        routes_campaign,
        routes_fulfilment,
        routes_ops_request,
        routes_privacy_request,
    )

    client = request.app.state.client
    action = form.get("action", "")
    if action == "task-resolution":
        return await _resolve_task(request, principal, f"{process}:{key}", form)
    # One idempotency key per page render and form: a double submit applies
    # once, another form of the same page is another decision.
    nonce = f"{form['nonce']}-{action}" if form.get("nonce") else None
    fields = _body(form)
    if process == "fulfilment" and action.startswith("fulfilment-"):
        fl = routes_fulfilment
        _allow(principal, fl.Changer)
        if action == "fulfilment-place-hold":
            hold = fl.PlaceHoldInput.model_validate(fields)
            token = re.sub(r"[^a-z0-9]", "", form.get("nonce", "").lower())[:8]
            if token:  # the page's own handle: a double submit places one hold
                handle = f"{hold.reason.value.replace('_', '-')}-{token}"
                hold = fl.PlaceHoldInput.model_validate({**fields, "handle": handle})
            await fl.place_hold(order_id=key, body=hold, principal=principal, client=client)
        elif action == "fulfilment-release-hold":
            release = fl.ReleaseBody.model_validate({"note": fields.get("note", "")})
            await fl.release_hold(
                order_id=key,
                handle=fields.get("handle", ""),
                body=release,
                principal=principal,
                client=client,
            )
        elif action == "fulfilment-change-address":
            address = _or_none(
                {
                    k: fields.get(k, "")
                    for k in ("line1", "line2", "postal_code", "city", "region", "country")
                },
                "line2",
                "region",
            )
            change = fl.ChangeAddressInput.model_validate(
                {"address": address, "note": fields.get("note", "")}
            )
            await fl.change_address(
                order_id=key,
                body=change,
                principal=principal,
                client=client,
                pool=request.app.state.pool,
            )
        elif action == "fulfilment-special-delivery":
            arrangement = fl.SpecialDeliveryInput.model_validate(
                _or_none(fields, "window_start", "window_end", "carrier", "service", "store_id")
            )
            await fl.special_delivery(
                order_id=key, body=arrangement, principal=principal, client=client
            )
        elif action == "fulfilment-qc-decision":
            fields["checklist"] = _lines(fields.get("checklist", ""))
            fields["photo_refs"] = _lines(fields.get("photo_refs", ""))
            qc = fl.QcDecisionInput.model_validate(_or_none(fields, "serial_number"))
            await fl.qc_decision(order_id=key, body=qc, principal=principal, client=client)
        else:
            return False
        return True
    if process == "ops-request" and action.startswith("ops-request-"):
        ops = routes_ops_request
        common = {"request_id": key, "principal": principal, "client": client,
                  "idempotency_key": nonce}  # fmt: skip
        if action == "ops-request-claim":
            _allow(principal, ops.Desk)
            await ops.claim(**common)
        elif action == "ops-request-reprioritise":
            _allow(principal, ops.Desk)
            priority = ops.ReprioritiseBody.model_validate(_or_none(fields, "priority"))
            await ops.reprioritise(body=priority, **common)
        elif action == "ops-request-recount":
            _allow(principal, ops.Desk)
            count = ops.RecountBody.model_validate(_or_none(fields, "counted_quantity"))
            await ops.recount(body=count, **common)
        elif action == "ops-request-assign":
            _allow(principal, ops.Desk)
            body = ops.AssignBody.model_validate(_or_none(fields, "to"))
            await ops.assign(body=body, **common)
        elif action == "ops-request-escalate":
            _allow(principal, ops.Resolver)
            escalation = ops.EscalateBody.model_validate(fields)
            await ops.escalate(body=escalation, **common)
        elif action == "ops-request-answer":
            _allow(principal, ops.Manager)
            answer = ops.AnswerBody.model_validate(fields)
            await ops.answer_escalation(body=answer, **common)
        elif action == "ops-request-resolve":
            _allow(principal, ops.Resolver)
            resolve = ops.ResolveBody.model_validate(_or_none(fields, "inventory"))
            await ops.resolve(body=resolve, **common)
        elif action == "ops-request-write-off":
            _allow(principal, ops.Finance)
            write_off = ops.WriteOffBody.model_validate(fields)
            await ops.approve_write_off(body=write_off, **common)
        else:
            return False
        return True
    if process == "campaign" and action == "campaign-request-resolution":
        cp = routes_campaign
        _allow(principal, cp.Preparer)
        await cp.resolve_request(
            campaign_id=key,
            request_id=fields.pop("request_id", ""),
            body=cp.ResolutionBody.model_validate(fields),
            principal=principal,
            client=client,
        )
        return True
    if process == "campaign" and action == "campaign-submit":
        cp = routes_campaign
        _allow(principal, cp.Preparer)
        await cp.submit(campaign_id=key, principal=principal, client=client, idempotency_key=nonce)
        return True
    if process == "campaign" and action == "campaign-cancel":
        cp = routes_campaign
        _allow(principal, cp.Preparer)
        await cp.cancel(
            campaign_id=key,
            body=cp.CancelBody.model_validate(fields),
            principal=principal,
            client=client,
            idempotency_key=nonce,
        )
        return True
    if process == "campaign" and action.startswith("campaign-"):
        cp = routes_campaign
        _allow(principal, cp.Manager)
        if action == "campaign-approval":
            fields["acknowledge_warnings"] = fields.get("acknowledge_warnings") == "on"
            approval = cp.ApprovalBody.model_validate(fields)
            await cp.approval(
                campaign_id=key,
                body=approval,
                principal=principal,
                client=client,
                idempotency_key=nonce,
            )
        elif action in ("campaign-close-now", "campaign-window"):
            if action == "campaign-close-now":
                if not fields.get("reason", "").strip():
                    raise HTTPException(
                        status.HTTP_422_UNPROCESSABLE_CONTENT,
                        detail="reason: say why the sale closes now",
                    )
                window = {"close_now": True, "reason": fields["reason"]}
            else:
                window = {"closes_local": fields.get("closes_local") or None,
                          "reason": fields.get("reason", "")}  # fmt: skip
                if window["closes_local"] is None:
                    raise HTTPException(
                        status.HTTP_422_UNPROCESSABLE_CONTENT,
                        detail="closes_local: the new closing time is required",
                    )
            await cp.change_window(
                campaign_id=key,
                body=cp.WindowBody.model_validate(window),
                principal=principal,
                client=client,
                pool=request.app.state.pool,
            )
        else:
            return False
        return True
    if process == "privacy-request" and action == "privacy-request-verification":
        pr = routes_privacy_request
        _allow(principal, pr.Handler)
        await pr.verify_request(
            request_id=key,
            body=pr.VerifyBody.model_validate(fields),
            principal=principal,
            client=client,
            idempotency_key=nonce,
        )
        return True
    return False


def _refusal_text(error: Exception) -> str:
    if isinstance(error, HTTPException):
        return str(error.detail)
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in error.errors()
        )
    if isinstance(error, RequestValidationError):
        return "; ".join(f"{e.get('loc', ['form'])[-1]}: {e.get('msg')}" for e in error.errors())
    if isinstance(error, CaseRefused):
        return error.message
    return str(error)


@router.post("/cases/{workflow_id:path}")
async def decide(request: Request, workflow_id: str, session: SignedIn) -> Response:
    form = await form_data(request)
    if not _csrf_ok(session.csrf, form):
        return _csrf_refused()
    process, _, key = workflow_id.partition(":")
    try:
        await _apply(request, session.principal, process, key, form)
    except (
        HTTPException,
        ValidationError,
        RequestValidationError,
        CaseRefused,
        CaseClosed,
        CaseNotFound,
        CaseUnavailable,
        ValueError,
    ) as refused:
        reason = _refusal_text(refused)
        # The field only: a refused value (an address...) stays out of the logs.
        field = reason.split(":", 1)[0] if ":" in reason else "form"
        log.info("console_decision_refused", workflow_id=workflow_id, field=field[:80])
        context = await _case_context(request, session, workflow_id)
        code = (
            refused.status_code
            if isinstance(refused, HTTPException)
            else status.HTTP_409_CONFLICT
            if isinstance(refused, CaseRefused | CaseClosed)
            else status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        if context is None:  # the case is gone from Temporal and the store: say both
            return _render(
                request,
                "not_found.html",
                {**_base(request, session), "what": workflow_id, "error": reason},
                code=code,
            )
        return _render(request, "case.html", {**context, "done": "", "error": reason}, code=code)
    log.info("console_decided", workflow_id=workflow_id, action=form.get("action", ""))
    return RedirectResponse(
        f"{views.case_url(workflow_id)}?done=1", status_code=status.HTTP_303_SEE_OTHER
    )


# ------------------------------------------------------- privacy export


@router.get("/privacy-requests/{request_id}/export")
async def privacy_export(request: Request, request_id: str, session: SignedIn) -> Response:
    """An access request's export (HTML), through the API's own route with the
    signed-in principal: its role check (`Handler`) and its refusal before
    the export is ready; viewing it is audited under the signed-in actor."""
    from domain.common import BUSINESS_KEY_PATTERN
    from starters.api import routes_privacy_request as pr

    if not re.match(BUSINESS_KEY_PATTERN, request_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such privacy request")
    _allow(session.principal, pr.Handler)
    response = await pr.export(
        request_id=request_id,
        principal=session.principal,
        client=request.app.state.client,
        pool=request.app.state.pool,
        format="html",
    )
    await _audit(request, session.principal, "privacy_export_viewed", request_id)
    return response


# ----------------------------------------------------------------- reports

_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FILE_NAME = re.compile(r"^[a-z0-9_]{1,64}\.(csv|png|html)$")


@router.get("/reports")
async def reports(request: Request, session: SignedIn) -> Response:
    """The report runs (issue 19) with their files, for the roles reports are for."""
    from starters.api.routes_reports import REPORT_READERS
    from store import reports as report_store

    allowed = session.principal.role in REPORT_READERS
    runs = await report_store.list_runs(request.app.state.pool, limit=50) if allowed else []
    return _render(
        request,
        "reports.html",
        {
            **_base(request, session),
            "allowed": allowed,
            "readers": ", ".join(r.value for r in REPORT_READERS),
            "runs": runs,
        },
    )


@router.get("/reports/{run_id}/{name}")
async def report_file(request: Request, run_id: str, name: str, session: SignedIn) -> Response:
    from starters.api import routes_reports

    if not _RUN_ID.match(run_id) or not _FILE_NAME.match(name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such report file")
    if session.principal.role not in routes_reports.REPORT_READERS:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="reports are not for this role")
    return await routes_reports.get_file(
        run_id=run_id,
        name=name,
        principal=session.principal,
        pool=request.app.state.pool,
        settings=request.app.state.settings,
    )


# ---------------------------------------------------------------- plumbing


class ConsoleHeadersMiddleware:
    """Security headers on every /console response; a signed-out visitor of a
    console page is sent to the sign-in page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PREFIX):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() not in SECURITY_HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def install_console(app: Any) -> None:
    """Mount the console on the API app (starters/api/app.py calls this)."""
    app.include_router(router)
    app.mount(
        f"{PREFIX}/static", StaticFiles(directory=str(_HERE / "static")), name="console-static"
    )
    app.add_middleware(ConsoleHeadersMiddleware)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"{PREFIX}/login", status_code=status.HTTP_303_SEE_OTHER)


__all__ = ["PREFIX", "install_console", "router"]
