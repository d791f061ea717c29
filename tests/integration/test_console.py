"""The console's routes on the real stack (a worker, Temporal, PostgreSQL, the
API app): sign-in and its cookie, CSRF on every form, the security headers,
the work queue for the key's role, a decision through the form, a refusal in
words, a role that may not decide, sign-out; every console action audited
under the signed-in actor."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from domain.common import Role
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import audit as audit_store
from store import order_subjects, personal_data
from store import returns as returns_store
from tests.integration.polling import eventually
from tests.integration.test_api import (
    new_order_id,
    risky_order_json,
    status_of,
    wait_for_status,
)
from tests.integration.test_provider_webhooks import (
    STRIPE_SECRET,
    post_stripe,
    reviewed_order,
    stripe_dispute,
    stripe_event,
    uid,
)
from tests.integration.test_returns_refund import return_json
from workers import activities
from workers.settings import Settings

KEYS = {
    "it-system": ("order-management", Role.SYSTEM),
    "it-ops": ("olivia", Role.OPS),  # wait_for_status reads with it
    "co-alice": ("alice", Role.COORDINATOR),
    "co-audrey": ("audrey", Role.AUDITOR),
    "co-fiona": ("fiona", Role.FINANCE),
}
SYSTEM = {"Authorization": "Bearer it-system"}


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    return integration_settings.model_copy(
        update={"task_queue": f"console-{uuid.uuid4()}", "stripe_webhook_secrets": STRIPE_SECRET}
    )


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client, db_pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ):
        app = create_app(
            settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS)
        )
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50200))
        async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
            yield http


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


async def sign_in(api: httpx.AsyncClient, key: str) -> httpx.Response:
    page = await api.get("/console/login")
    return await api.post("/console/login", data={"csrf": csrf_of(page), "api_key": key})


async def test_sign_in_cookie_csrf_and_headers(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    anonymous = await api.get("/console/")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login"
    headers = anonymous.headers
    assert "script-src" not in headers["content-security-policy"]  # no script at all
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"

    page = await api.get("/console/login")
    forged = await api.post("/console/login", data={"csrf": "forged", "api_key": "co-alice"})
    assert forged.status_code == 403
    assert "CSRF" in forged.text
    wrong = await api.post("/console/login", data={"csrf": csrf_of(page), "api_key": "nope"})
    assert wrong.status_code == 401
    assert "Unknown API key." in wrong.text

    signed = await sign_in(api, "co-alice")
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith("steward_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS it is set
    queue = await api.get("/console/")
    assert queue.status_code == 200
    assert "alice · coordinator" in queue.text
    assert '<meta http-equiv="refresh"' in queue.text

    # Signing out needs the session's CSRF token too; then the session is gone.
    refused = await api.post("/console/logout", data={"csrf": "forged"})
    assert refused.status_code == 403
    out = await api.post("/console/logout", data={"csrf": csrf_of(queue)})
    assert out.status_code == 303
    assert (await api.get("/console/")).status_code == 303
    actions = [r.action for r in await audit_store.list_by_case(db_pool, "alice")]
    assert "console_signed_in" in actions and "console_signed_out" in actions


async def test_a_coordinator_decides_a_review_through_the_form(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    order_id = new_order_id("CO")
    started = await api.post("/v1/order-reviews", json=risky_order_json(order_id), headers=SYSTEM)
    assert started.status_code == 202, started.text
    await wait_for_status(api, order_id, "awaiting_review")

    # An auditor sees the case but has no form, and a forged post is refused.
    await sign_in(api, "co-audrey")
    case_url = f"/console/cases/order-review:{order_id}"
    as_auditor = await api.get(case_url)
    assert as_auditor.status_code == 200
    assert 'id="order-review-decision"' not in as_auditor.text
    forged_role = await api.post(
        case_url,
        data={
            "csrf": csrf_of(as_auditor),
            "action": "order-review-decision",
            "decision": "approve",
            "reason_code": "verified_customer",
        },
    )
    assert forged_role.status_code == 403
    assert "role auditor may not do this (needs one of: coordinator, manager)" in forged_role.text
    await api.post("/console/logout", data={"csrf": csrf_of(as_auditor)})

    await sign_in(api, "co-alice")
    queue = await api.get("/console/", params={"process": "order-review"})
    assert order_id in queue.text
    page = await api.get(case_url)
    assert 'id="order-review-decision"' in page.text
    assert "awaiting_review" in page.text
    assert "/namespaces/default/workflows/order-review%3A" in page.text  # Temporal UI link
    for label in ('for="order-review-decision-decision"', 'for="order-review-decision-note"'):
        assert label in page.text  # every field has its label

    no_csrf = await api.post(
        case_url, data={"action": "order-review-decision", "decision": "approve"}
    )
    assert no_csrf.status_code == 403
    reserved = await api.post(
        case_url,
        data={
            "csrf": csrf_of(page),
            "nonce": "n-1",
            "action": "order-review-decision",
            "decision": "approve",
            "reason_code": "automatic",
            "note": "",
        },
    )
    assert reserved.status_code == 422
    assert "Refused: reason_code: automatic is reserved for Steward" in reserved.text
    assert (await wait_for_status(api, order_id, "awaiting_review"))["decisions"] == []

    decided = await api.post(
        case_url,
        data={
            "csrf": csrf_of(page),
            "nonce": "n-2",
            "action": "order-review-decision",
            "decision": "approve",
            "reason_code": "verified_customer",
            "note": "called the client",
        },
    )
    assert decided.status_code == 303, decided.text
    assert decided.headers["location"].endswith("?done=1")
    state = await wait_for_status(api, order_id, "released")
    assert [(d["actor"], d["role"]) for d in state["decisions"]] == [("alice", "coordinator")]
    after = await api.get(decided.headers["location"])
    assert "Decision recorded." in after.text
    assert "decision_approve" in after.text  # the audit timeline
    assert order_id not in (await api.get("/console/")).text  # left the queue
    rows = await audit_store.list_by_case(db_pool, order_id)
    assert ("alice", "decision_approve") in [(r.actor, r.action) for r in rows]


async def test_the_case_page_shows_the_customer_s_words_kept_in_the_store(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    """Issue 21 keeps a customer's answer in the personal-data store and the
    review holds its subject id: the case page and the decision's response
    read the words back; an erased answer reads [erased]."""
    order_id = new_order_id("CW")
    coordinator = {"Authorization": "Bearer co-alice"}
    started = await api.post("/v1/order-reviews", json=risky_order_json(order_id), headers=SYSTEM)
    assert started.status_code == 202, started.text
    await wait_for_status(api, order_id, "awaiting_review")
    asked = await api.post(
        f"/v1/order-reviews/{order_id}/decision",
        json={"decision": "ask_customer", "reason_code": "identity_check_needed"},
        headers=coordinator,
    )
    assert asked.status_code == 200, asked.text
    words = f"Yes it was me, travelling to Lyon {uuid.uuid4().hex[:8]}"
    answered = await api.post(
        f"/v1/order-reviews/{order_id}/customer-answer",
        json={"event_id": f"ans-{order_id}", "confirmed": True, "message": words},
        headers=SYSTEM,
    )
    assert answered.status_code == 202, answered.text
    await eventually(
        lambda: status_of(api, order_id),
        lambda s: len(s["customer_answers"]) == 1 and s["status"] == "awaiting_review",
        what="the answer to reach the review",
    )

    await sign_in(api, "co-alice")
    case_url = f"/console/cases/order-review:{order_id}"
    page = await api.get(case_url)
    assert page.status_code == 200
    assert f"confirmed (email): {words}" in page.text

    decided = await api.post(
        f"/v1/order-reviews/{order_id}/decision",
        json={"decision": "approve", "reason_code": "verified_customer"},
        headers=coordinator,
    )
    assert decided.status_code == 200, decided.text
    assert [a["message"] for a in decided.json()["customer_answers"]] == [words]

    sid = order_subjects.message_subject_id(order_id, f"ans-{order_id}")
    assert await personal_data.erase_subject(db_pool, sid, reason="test")
    erased = await api.get(case_url)
    assert words not in erased.text
    assert f"confirmed (email): {personal_data.ERASED_PLACEHOLDER}" in erased.text
    await api.post("/console/logout", data={"csrf": csrf_of(erased)})


@pytest.mark.parametrize("path", ["/console/cases/order-review:NOPE-1", "/console/cases/nope"])
async def test_unknown_case_is_404(api: httpx.AsyncClient, path: str) -> None:
    await sign_in(api, "co-alice")
    response = await api.get(path)
    assert response.status_code == 404
    assert "No such case" in response.text


async def test_reports_page_follows_the_role(api: httpx.AsyncClient) -> None:
    await sign_in(api, "co-alice")
    page = await api.get("/console/reports")
    assert page.status_code == 200
    assert 'id="not-for-role"' in page.text
    forbidden = await api.get("/console/reports/run-1/report.html")
    assert forbidden.status_code == 403
    await api.post("/console/logout", data={"csrf": csrf_of(page)})
    await sign_in(api, "co-audrey")
    page = await api.get("/console/reports")
    assert 'id="not-for-role"' not in page.text
    assert 'id="reports"' in page.text or 'id="no-reports"' in page.text
    missing = await api.get("/console/reports/no-such-run/report.html")
    assert missing.status_code == 404
    assert (await api.get("/console/reports/x/..%2Fsecret.html")).status_code == 404


async def test_an_ops_request_s_forms_follow_the_api_s_roles_and_csrf(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    from tests.integration.polling import eventually

    # The requester's note is kept in the personal-data store (issue 21).
    note = f"call back before noon {uuid.uuid4().hex[:6]}"
    opened = await api.post(
        "/v1/ops-requests",
        json={"details": {"type": "other"}, "description": note},
        headers={"X-API-Key": "co-alice"},
    )
    assert opened.status_code == 202, opened.text
    request_id = opened.json()["request_id"]
    path = f"/v1/ops-requests/{request_id}"
    reader = {"X-API-Key": "co-audrey"}
    await eventually(lambda: api.get(path, headers=reader), lambda r: r.status_code == 200)
    case_url = f"/console/cases/ops-request:{request_id}"
    resolve = {"action": "ops-request-resolve", "outcome": "done", "root_cause": "unknown"}

    await sign_in(api, "co-audrey")  # an auditor reads, and has no form
    page = await api.get(case_url)
    assert page.status_code == 200 and "Requested by" in page.text
    assert note in page.text  # read back for the page
    assert 'id="ops-request-resolve"' not in page.text
    forged = await api.post(case_url, data={"csrf": csrf_of(page), **resolve})
    assert forged.status_code == 403
    assert "role auditor may not do this (needs one of: coordinator, manager)" in forged.text
    await api.post("/console/logout", data={"csrf": csrf_of(page)})

    await sign_in(api, "it-ops")  # ops assigns, but does not resolve (the API's roles)
    page = await api.get(case_url)
    assert 'id="ops-request-assign"' in page.text
    assert 'id="ops-request-resolve"' not in page.text
    refused = await api.post(case_url, data={"csrf": csrf_of(page), **resolve})
    assert refused.status_code == 403 and "role ops may not do this" in refused.text
    assign = {"action": "ops-request-assign", "to": "bruno", "reason": "night shift"}
    assert (await api.post(case_url, data=assign)).status_code == 403  # no CSRF token
    assert (await api.get(path, headers=reader)).json()["assignee"] is None
    done = await api.post(case_url, data={"csrf": csrf_of(page), "nonce": "n-1", **assign})
    assert done.status_code == 303, done.text
    state = (await api.get(path, headers=reader)).json()
    assert (state["assignee"], state["status"]) == ("bruno", "assigned")
    assert "Assignee</dt><dd>bruno" in (await api.get(done.headers["location"])).text
    # The signed-in actor, from her key (the transition's row follows the update).
    await eventually(
        lambda: audit_store.list_by_case(db_pool, request_id),
        lambda rows: "olivia" in [r.actor for r in rows],
        what="the assignment's audit row",
    )


async def test_a_coordinator_links_an_unresolved_dispute_to_its_order_through_the_form(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    from tests.integration.polling import eventually

    dispute_id = uid("dp_1Q", 22)
    created = stripe_event(
        "charge.dispute.created",
        stripe_dispute(dispute_id, charge=uid("ch_3Q", 22), payment_intent=uid("pi_3Q", 22)),
    )
    assert (await post_stripe(api, created)).status_code == 200
    path = f"/v1/chargebacks/stripe/{dispute_id}"
    reader = {"X-API-Key": "co-audrey"}
    # Wait for the link task: the workflow asks for the order once it found none.
    await eventually(
        lambda: api.get(
            "/v1/tasks", params={"role": "coordinator", "process": "chargeback"}, headers=reader
        ),
        lambda r: any(t["workflow_id"] == f"chargeback:stripe:{dispute_id}" for t in r.json()),
        what="the link task",
    )
    await sign_in(api, "co-alice")
    case_url = f"/console/cases/chargeback:stripe:{dispute_id}"
    page = await api.get(case_url)
    assert 'id="chargeback-link"' in page.text
    link = {"action": "chargeback-link", "note": "card and amount match"}
    unknown = await api.post(
        case_url, data={"csrf": csrf_of(page), "nonce": "n-1", **link, "order_id": "CO-nobody"}
    )
    assert unknown.status_code == 422
    assert "Refused: order_id: Steward knows no order CO-nobody" in unknown.text
    assert (await api.get(path, headers=reader)).json()["order_id"] is None

    order_id = await reviewed_order(db_pool, uid("pi_3Q", 22), "stripe")
    linked = await api.post(
        case_url, data={"csrf": csrf_of(page), "nonce": "n-2", **link, "order_id": order_id}
    )
    assert linked.status_code == 303, linked.text
    assert (await api.get(path, headers=reader)).json()["order_id"] == order_id
    after = await api.get(linked.headers["location"])
    assert 'id="chargeback-link"' not in after.text  # linked: the form is gone


async def test_finance_resolves_a_task_no_process_closes_from_the_case_page(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    from datetime import UTC, datetime, timedelta

    from domain.audit import CaseStatusInput
    from domain.tasks import OpenTaskInput
    from store import cases
    from store import tasks as task_store

    order_id = new_order_id("CT")
    workflow_id = f"order-review:{order_id}"
    now = datetime.now(UTC)
    await cases.upsert(
        db_pool,
        CaseStatusInput(
            workflow_id=workflow_id,
            process="order-review",
            case_id=order_id,
            status="released",
            updated_at=now,
        ),
    )
    task_id = f"{workflow_id}/capture_reversed/1"
    await task_store.open(
        db_pool,
        OpenTaskInput(
            task_id=task_id,
            process="order-review",
            case_id=order_id,
            workflow_id=workflow_id,
            kind="capture_reversed",
            title=f"Capture of {order_id} reversed by the provider",
            awaited_role=Role.FINANCE,
            due_at=now + timedelta(hours=4),
        ),
    )
    case_url = f"/console/cases/{workflow_id}"
    await sign_in(api, "co-alice")  # not the role the task awaits: no form
    page = await api.get(case_url)
    assert page.status_code == 200 and 'id="task-resolution"' not in page.text
    await api.post("/console/logout", data={"csrf": csrf_of(page)})

    await sign_in(api, "co-fiona")
    page = await api.get(case_url)
    assert 'id="task-resolution"' in page.text
    resolution = {"action": "task-resolution", "outcome": "handled"}
    other = await api.post(
        case_url,
        data={"csrf": csrf_of(page), **resolution, "task_id": "return:RMA-1/x/1", "reason": "x"},
    )
    assert other.status_code == 422 and "task_id: not a task of this case" in other.text
    no_reason = await api.post(
        case_url, data={"csrf": csrf_of(page), **resolution, "task_id": task_id, "reason": ""}
    )
    assert no_reason.status_code == 422 and "Refused: reason:" in no_reason.text
    done = await api.post(
        case_url,
        data={
            "csrf": csrf_of(page),
            **resolution,
            "task_id": task_id,
            "reason": "captured again by hand in the dashboard",
        },
    )
    assert done.status_code == 303, done.text
    closed = await task_store.get(db_pool, task_id)
    assert closed is not None and closed.closed_by == "fiona"
    rows = await audit_store.list_by_case(db_pool, order_id)
    assert ("fiona", "task_resolved") in [(r.actor, r.action) for r in rows]
    assert 'id="task-resolution"' not in (await api.get(done.headers["location"])).text


async def test_the_case_page_shows_a_returns_cancel_reason_kept_in_the_store(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    """Issue 21 keeps a customer's reason for cancelling a return in the
    personal-data store and the return holds its subject id: the case page
    reads the words back like GET does; an erased one reads [erased]."""
    rma_id = f"RMA-CW-{uuid.uuid4().hex[:8]}"
    body = return_json(rma_id, f"ORD-{rma_id}")
    started = await api.post("/v1/returns", json=body, headers=SYSTEM)
    assert started.status_code == 202, started.text
    await eventually(
        lambda: api.get(f"/v1/returns/{rma_id}", headers=SYSTEM),
        lambda r: r.status_code == 200 and r.json()["status"] == "label_issued",
        what="the return label",
    )
    words = f"Kept it after all, it fits my sister {uuid.uuid4().hex[:8]}"
    cancelled = await api.post(
        f"/v1/returns/{rma_id}/cancel",
        json={"event_id": "c-1", "reason": words},
        headers=SYSTEM,
    )
    assert cancelled.status_code == 202, cancelled.text
    await eventually(
        lambda: api.get(f"/v1/returns/{rma_id}", headers=SYSTEM),
        lambda r: r.json()["status"] == "cancelled" and r.json()["cancel_reason"] == words,
        what="the cancel to reach the return",
    )

    await sign_in(api, "co-alice")
    case_url = f"/console/cases/return:{rma_id}"
    page = await api.get(case_url)
    assert page.status_code == 200
    assert words in page.text
    assert await personal_data.erase_subject(
        db_pool, returns_store.cancel_reason_subject_id(rma_id, "c-1"), reason="test"
    )
    erased = await api.get(case_url)
    assert words not in erased.text
    assert personal_data.ERASED_PLACEHOLDER in erased.text
    await api.post("/console/logout", data={"csrf": csrf_of(erased)})
