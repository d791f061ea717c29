"""The HTTP API end to end: real Temporal dev server, real PostgreSQL, a real
worker running the order-review workflow and its activities.

Each test uses its own order ids, so tests never see each other's reviews;
the worker gets a fresh task queue so no other worker steals its tasks.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from domain.common import Role
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from tests.factories import order_data
from tests.integration.polling import eventually
from workers import activities
from workers.codec import EncryptionCodec, load_or_create_keyring
from workers.settings import Settings

KEYS = {
    "it-system": ("order-management", Role.SYSTEM),
    "it-ops": ("olivia", Role.OPS),
    "it-coord": ("alice", Role.COORDINATOR),
    "it-manager": ("marc", Role.MANAGER),
    "it-auditor": ("audrey", Role.AUDITOR),
}
SYSTEM = {"Authorization": "Bearer it-system"}
OPS = {"X-API-Key": "it-ops"}
COORDINATOR = {"Authorization": "Bearer it-coord"}
AUDITOR = {"Authorization": "Bearer it-auditor"}


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    # A fresh task queue per test: only this test's worker polls it.
    return integration_settings.model_copy(update={"task_queue": f"test-{uuid.uuid4()}"})


@pytest_asyncio.fixture(loop_scope="session")
async def worker(
    client: Client, db_pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[Worker]:
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client, db_pool: asyncpg.Pool, settings: Settings, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
        yield http


def new_order_id(prefix: str = "IT") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def order_json(order_id: str, **overrides: Any) -> dict[str, Any]:
    # Each test order gets its own customer, card and device, so velocity from
    # other tests' orders never changes its score.
    unique = order_id.lower()
    data = order_data(
        order_id,
        customer={"customer_id": f"C-{unique}"},
        payment={"card_fingerprint": f"fp-{unique}", **overrides.pop("payment", {})},
        device={"device_id": f"dev-{unique}"},
        **overrides,
    )
    result: dict[str, Any] = json.loads(json.dumps(data, default=lambda v: v.isoformat()))
    return result


def risky_order_json(order_id: str) -> dict[str, Any]:
    # AVS and CVV mismatches: enough for a coordinator, not enough to decline.
    return order_json(order_id, payment={"avs_result": "mismatch", "cvv_result": "mismatch"})


async def status_of(api: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/order-reviews/{order_id}", headers=OPS)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_status(api: httpx.AsyncClient, order_id: str, status: str) -> dict[str, Any]:
    return await eventually(
        lambda: status_of(api, order_id),
        lambda s: s["status"] == status,
        what=f"order {order_id} to be {status}",
    )


async def audit_of(api: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/audit/{order_id}", headers=AUDITOR)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def test_auto_accepted_order_is_released_and_audited(api: httpx.AsyncClient) -> None:
    order_id = new_order_id("FR")
    started = await api.post("/v1/order-reviews", json=order_json(order_id), headers=SYSTEM)
    assert started.status_code == 202, started.text
    assert started.json() == {
        "workflow_id": f"order-review:{order_id}",
        "order_id": order_id,
        "started": True,
    }

    state = await wait_for_status(api, order_id, "released")
    assert state["risk"]["routing"] == "auto_accept"
    assert state["capture_reference"] and state["warehouse_release_id"]

    rows = await eventually(
        lambda: audit_of(api, order_id),
        lambda rows: any(r["after"].get("status") == "released" for r in rows),
        what="the audit row of the release",
    )
    actions = [r["action"] for r in rows]
    assert actions[0] == "review_started"
    assert {"scored", "payment_captured", "status_changed"} <= set(actions)
    assert all(r["case_id"] == order_id for r in rows)


async def test_the_same_order_twice_starts_one_review(
    api: httpx.AsyncClient, client: Client
) -> None:
    order_id = new_order_id("FR")
    first = await api.post("/v1/order-reviews", json=order_json(order_id), headers=SYSTEM)
    second = await api.post("/v1/order-reviews", json=order_json(order_id), headers=OPS)
    assert (first.json()["started"], second.json()["started"]) == (True, False)
    assert first.json()["workflow_id"] == second.json()["workflow_id"]

    await wait_for_status(api, order_id, "released")
    # After it closed, REJECT_DUPLICATE still refuses a second review.
    third = await api.post("/v1/order-reviews", json=order_json(order_id), headers=SYSTEM)
    assert third.status_code == 202 and third.json()["started"] is False

    runs = [
        execution
        async for execution in client.list_workflows(f'WorkflowId = "order-review:{order_id}"')
    ]
    assert len(runs) <= 1  # visibility may lag, but never shows a second run


async def test_risky_order_waits_in_the_queue_until_a_coordinator_decides(
    api: httpx.AsyncClient,
) -> None:
    order_id = new_order_id("FR")
    started = await api.post("/v1/order-reviews", json=risky_order_json(order_id), headers=SYSTEM)
    assert started.status_code == 202

    state = await wait_for_status(api, order_id, "awaiting_review")
    assert state["awaited_role"] == "coordinator"
    assert set(state["risk"]["reason_codes"]) >= {"avs_mismatch", "cvv_mismatch"}

    async def queue() -> list[dict[str, Any]]:
        # No role given: a coordinator's key lists the coordinators' queue.
        response = await api.get("/v1/tasks?process=order-review", headers=COORDINATOR)
        assert response.status_code == 200, response.text
        tasks: list[dict[str, Any]] = response.json()
        return tasks

    tasks = await eventually(
        queue, lambda ts: any(t["case_id"] == order_id for t in ts), what="the review task"
    )
    assert [t["due_at"] for t in tasks] == sorted(t["due_at"] for t in tasks)
    (task,) = [t for t in tasks if t["case_id"] == order_id]
    assert task["awaited_role"] == "coordinator" and task["escalated"] is False

    decision = {"decision": "approve", "reason_code": "verified_customer", "note": "called"}
    url = f"/v1/order-reviews/{order_id}/decision"
    # Roles that never decide are stopped at the API...
    assert (await api.post(url, json=decision, headers=OPS)).status_code == 403
    assert (await api.post(url, json=decision, headers=AUDITOR)).status_code == 403
    # ...and the workflow's validator refuses what the rules forbid, with its reason.
    refused = await api.post(
        url, json={"decision": "decline", "reason_code": "suspected_fraud"}, headers=COORDINATOR
    )
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("note:")

    approved = await api.post(
        url, json=decision, headers={**COORDINATOR, "Idempotency-Key": f"{order_id}-approve"}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["decisions"][-1]["actor"] == "alice"
    assert approved.json()["decisions"][-1]["role"] == "coordinator"

    await wait_for_status(api, order_id, "released")
    queue_after = await queue()
    assert all(t["case_id"] != order_id for t in queue_after)

    closed = await api.post(url, json=decision, headers=COORDINATOR)
    assert closed.status_code == 409
    assert "closed" in closed.json()["detail"]

    rows = await audit_of(api, order_id)
    (decided,) = [r for r in rows if r["action"] == "decision_approve"]
    assert (decided["actor"], decided["role"]) == ("alice", "coordinator")


async def test_upstream_cancel_voids_the_authorisation(api: httpx.AsyncClient) -> None:
    order_id = new_order_id("FR")
    await api.post("/v1/order-reviews", json=risky_order_json(order_id), headers=SYSTEM)
    await wait_for_status(api, order_id, "awaiting_review")

    cancel = {"event_id": f"oms-{order_id}-cancel", "reason": "customer cancelled by phone"}
    url = f"/v1/order-reviews/{order_id}/cancel"
    assert (await api.post(url, json=cancel, headers=COORDINATOR)).status_code == 403
    accepted = await api.post(url, json=cancel, headers=SYSTEM)
    assert accepted.status_code == 202, accepted.text
    # The same event again is ignored by the workflow, not an error.
    assert (await api.post(url, json=cancel, headers=SYSTEM)).status_code in (202, 409)

    state = await wait_for_status(api, order_id, "cancelled")
    assert state["void_reference"]
    assert state["cancel_request"]["requested_by"] == "order-management"


async def test_ask_the_customer_then_decide(api: httpx.AsyncClient) -> None:
    order_id = new_order_id("FR")
    await api.post("/v1/order-reviews", json=risky_order_json(order_id), headers=SYSTEM)
    await wait_for_status(api, order_id, "awaiting_review")
    url = f"/v1/order-reviews/{order_id}"
    asked = await api.post(
        f"{url}/decision",
        json={"decision": "ask_customer", "reason_code": "identity_check_needed"},
        headers=COORDINATOR,
    )
    assert asked.status_code == 200, asked.text
    await wait_for_status(api, order_id, "awaiting_customer")

    answer = {"event_id": f"cs-{order_id}-1", "confirmed": True, "message": "yes, it was me"}
    answered = await api.post(f"{url}/customer-answer", json=answer, headers=SYSTEM)
    assert answered.status_code == 202, answered.text
    state = await wait_for_status(api, order_id, "awaiting_review")
    assert state["customer_answers"][0]["confirmed"] is True
    # Kept in the personal-data store, shown by the API (issue 21).
    assert state["customer_answers"][0]["message"] == "yes, it was me"
    assert state["customer_answers"][0]["message_subject_id"].startswith("subj_")

    approved = await api.post(
        f"{url}/decision",
        json={"decision": "approve", "reason_code": "customer_confirmed"},
        headers=COORDINATOR,
    )
    assert approved.status_code == 200, approved.text
    await wait_for_status(api, order_id, "released")


async def test_without_a_key_nothing_happens(api: httpx.AsyncClient, client: Client) -> None:
    order_id = new_order_id("FR")
    anonymous = await api.post("/v1/order-reviews", json=order_json(order_id))
    assert anonymous.status_code == 401
    assert (await api.get(f"/v1/order-reviews/{order_id}")).status_code == 401
    assert (await api.get("/v1/tasks")).status_code == 401
    # Nothing was started.
    assert (await api.get(f"/v1/order-reviews/{order_id}", headers=OPS)).status_code == 404


async def test_unknown_review_is_404(api: httpx.AsyncClient) -> None:
    missing = new_order_id("NOPE")
    assert (await api.get(f"/v1/order-reviews/{missing}", headers=OPS)).status_code == 404
    decision = await api.post(
        f"/v1/order-reviews/{missing}/decision",
        json={"decision": "approve", "reason_code": "verified_customer"},
        headers=COORDINATOR,
    )
    assert decision.status_code == 404
    cancel = await api.post(
        f"/v1/order-reviews/{missing}/cancel",
        json={"event_id": "e1", "reason": "x"},
        headers=SYSTEM,
    )
    assert cancel.status_code == 404


async def test_codec_decodes_what_temporal_stores(
    api: httpx.AsyncClient, client: Client, settings: Settings
) -> None:
    order_id = new_order_id("FR")
    await api.post("/v1/order-reviews", json=order_json(order_id), headers=SYSTEM)
    await wait_for_status(api, order_id, "released")

    history = await client.get_workflow_handle(f"order-review:{order_id}").fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (stored,) = started.input.payloads
    # The server holds ciphertext only.
    assert stored.metadata["encoding"] == b"binary/encrypted"
    assert order_id.encode() not in stored.data

    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in stored.metadata.items()},
                "data": base64.b64encode(stored.data).decode(),
            }
        ]
    }
    # A browser on this host (the Temporal UI) needs no key; remote callers do.
    decoded = await api.post("/codec/decode", json=body, headers={"X-Namespace": "default"})
    assert decoded.status_code == 200, decoded.text
    (plain,) = decoded.json()["payloads"]
    review_input = json.loads(base64.b64decode(plain["data"]))
    assert review_input["order"]["order_id"] == order_id

    encoded = await api.post("/codec/encode", json=decoded.json(), headers=OPS)
    (sealed,) = encoded.json()["payloads"]
    codec = EncryptionCodec(load_or_create_keyring(settings.keyring_path))
    (again,) = await codec.decode(
        [
            Payload(
                metadata={k: base64.b64decode(v) for k, v in sealed["metadata"].items()},
                data=base64.b64decode(sealed["data"]),
            )
        ]
    )
    assert json.loads(again.data)["order"]["order_id"] == order_id
