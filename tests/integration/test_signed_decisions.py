"""Issue 20's report, replayed on the real stack as production wires it: the
API's client from `starters.client.connect` (it signs), the worker from
`build_worker` (it verifies), both finding the decision key from the same
settings. An ops person's `temporal workflow update execute --name decide`
(a client without the decision key, with or without the codec) is refused in
words and leaves nothing in history; the same decision through the API is
applied, and the payment captured once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from domain.common import Role
from domain.ids import order_review_id
from domain.ops_request import OutcomeCode, ResolveInput, RootCause, ops_request_id
from domain.review import DecideInput, DecisionReason, ReviewDecision
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from starters.client import connect
from store import ledger
from tests.integration.polling import eventually
from tests.integration.test_api import new_order_id, risky_order_json, wait_for_status
from workers import activities
from workers.dev_server import TemporalDevServer
from workers.settings import Settings
from workers.worker import build_worker
from workflows.ops_request import OpsRequestWorkflow
from workflows.order_review import OrderReviewWorkflow

KEYS = {
    "sd-system": ("order-management", Role.SYSTEM),
    "it-ops": ("olivia", Role.OPS),  # wait_for_status reads with it
    "sd-alice": ("alice", Role.COORDINATOR),
}


@pytest.fixture
def settings(integration_settings: Settings, tmp_path: Any) -> Settings:
    # A data dir of its own: the decision key is created there, shared by the
    # API's client and the worker as in `steward up`.
    return integration_settings.model_copy(
        update={"task_queue": f"signed-{uuid.uuid4()}", "data_dir": tmp_path}
    )


@pytest_asyncio.fixture(loop_scope="session")
async def api(db_pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    signing = await connect(settings)
    worker = build_worker(
        signing,
        settings,
        [OrderReviewWorkflow, OpsRequestWorkflow],
        activities.build_activities(db_pool, settings),
    )
    async with worker:
        app = create_app(
            settings, client=signing, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS)
        )
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50400))
        async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
            yield http


def as_a_manager() -> DecideInput:
    return DecideInput(
        decision=ReviewDecision.APPROVE,
        reason_code=DecisionReason.VERIFIED_CUSTOMER,
        note="self-declared",
        actor="mallory",
        role=Role.MANAGER,
    )


async def test_a_decision_sent_around_the_api_is_refused(
    api: httpx.AsyncClient, client: Client, dev_server: TemporalDevServer, db_pool: asyncpg.Pool
) -> None:
    order_id = new_order_id("SD")
    started = await api.post(
        "/v1/order-reviews", json=risky_order_json(order_id), headers={"X-API-Key": "sd-system"}
    )
    assert started.status_code == 202, started.text
    await wait_for_status(api, order_id, "awaiting_review")
    workflow_id = order_review_id(order_id)

    # With the codec (the UI's codec endpoint) but without the decision key.
    with pytest.raises(WorkflowUpdateFailedError) as with_codec:
        await client.get_workflow_handle(workflow_id).execute_update("decide", as_a_manager())
    cause = with_codec.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "DecisionNotSigned"
    assert "not signed by the Steward API" in cause.message
    # Plain JSON, as `temporal workflow update execute` sends it without a codec.
    plain = await Client.connect(dev_server.target, data_converter=pydantic_data_converter)
    with pytest.raises(WorkflowUpdateFailedError) as without_codec:
        await plain.get_workflow_handle(workflow_id).execute_update("decide", as_a_manager())
    assert isinstance(without_codec.value.cause, ApplicationError)
    assert without_codec.value.cause.type == "DecisionNotSigned"

    history = await client.get_workflow_handle(workflow_id).fetch_history()
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    assert not [e for e in history.events if e.event_type == accepted]
    assert (await ledger.totals_for_order(db_pool, order_id)).captured_minor == 0

    decided = await api.post(
        f"/v1/order-reviews/{order_id}/decision",
        json={"decision": "approve", "reason_code": "verified_customer", "note": "called"},
        headers={"X-API-Key": "sd-alice"},
    )
    assert decided.status_code == 200, decided.text
    state = await wait_for_status(api, order_id, "released")
    assert [(d["actor"], d["role"]) for d in state["decisions"]] == [("alice", "coordinator")]
    totals = await ledger.totals_for_order(db_pool, order_id)
    assert totals.captured_minor == state["amount_minor"]


async def test_a_later_process_s_decision_sent_around_the_api_is_refused_too(
    api: httpx.AsyncClient, client: Client
) -> None:
    """The verifier runs before every update of every workflow: an ops
    request's resolution (issue 17) sent to Temporal directly is refused like
    the review's decision, and applied through the API."""
    alice = {"X-API-Key": "sd-alice"}
    opened = await api.post("/v1/ops-requests", json={"details": {"type": "other"}}, headers=alice)
    assert opened.status_code == 202, opened.text
    request_id = opened.json()["request_id"]
    path = f"/v1/ops-requests/{request_id}"
    await eventually(lambda: api.get(path, headers=alice), lambda r: r.status_code == 200)
    forged = ResolveInput(
        outcome=OutcomeCode.DONE,
        root_cause=RootCause.UNKNOWN,
        actor="mallory",
        role=Role.MANAGER,
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await client.get_workflow_handle(ops_request_id(request_id)).execute_update(
            "resolve", forged
        )
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "DecisionNotSigned"
    assert (await api.get(path, headers=alice)).json()["status"] == "open"

    resolved = await api.post(
        f"{path}/resolve", json={"outcome": "done", "root_cause": "unknown"}, headers=alice
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolution"]["resolved_by"] == "alice"
