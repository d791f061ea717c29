"""Every decision form of the console reaches the workflow as the API would
send it: the update's name, the decision built from the form, the signed-in
actor and role (never a form field), the page's nonce as the idempotency key.
Temporal is a stand-in that records the update and lets the workflow refuse."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.common import Role
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from workers.codec import EncryptionCodec, Keyring
from workers.settings import Settings

KEYS = {
    "k-coord": ("alice", Role.COORDINATOR),
    "k-manager": ("marc", Role.MANAGER),
    "k-finance": ("fiona", Role.FINANCE),
}


class RecordingTemporal:
    """Records each update and refuses it as the workflow would, with a reason."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, str, Any, dict[str, Any]]] = []

    def get_workflow_handle(self, workflow_id: str) -> Any:
        outer = self

        class Handle:
            async def execute_update(self, name: str, arg: Any, **kwargs: Any) -> Any:
                outer.updates.append((workflow_id, name, arg, kwargs))
                raise WorkflowUpdateFailedError(
                    ApplicationError("refused by the stand-in", type="DecisionRejected")
                )

            async def query(self, *args: Any, **kwargs: Any) -> Any:
                raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")

        return Handle()


class NoPool:
    """The pool: audit writes fail (the console carries on), case lookups find nothing."""

    async def fetchrow(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def fetch(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    async def execute(self, *args: Any, **kwargs: Any) -> None:
        raise OSError("no database in this test")

    def acquire(self) -> Any:
        raise OSError("no database in this test")


@pytest.fixture
def console(tmp_path: Path) -> tuple[TestClient, RecordingTemporal]:
    temporal = RecordingTemporal()
    app = create_app(
        Settings(_env_file=None, STEWARD_DATA_DIR=tmp_path),
        client=temporal,  # type: ignore[arg-type]
        pool=NoPool(),  # type: ignore[arg-type]
        api_keys=ApiKeyStore.from_mapping(KEYS),
        codec=EncryptionCodec(Keyring.generate()),
    )
    return TestClient(app), temporal


def sign_in(http: TestClient, key: str) -> str:
    page = http.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    http.post("/console/login", data={"csrf": token.group(1), "api_key": key})
    session = http.cookies.get("steward_session")
    assert session
    sessions = http.app.state.console_sessions  # type: ignore[attr-defined]
    csrf: str = sessions._by_id[session].csrf
    return csrf


@pytest.mark.parametrize(
    ("key", "workflow_id", "form", "update", "expected"),
    [
        (
            "k-coord",
            "failed-delivery:SH-1",
            {"action": "failed-delivery-decision", "decision": "reship",
             "service_level": "express", "pickup_point_id": "PP-9", "note": "pickup"},
            "decide",
            {"decision": "reship", "service_level": "express", "pickup_point_id": "PP-9",
             "actor": "alice", "role": Role.COORDINATOR},
        ),
        (
            "k-manager",
            "chargeback:stripe:dp_1",
            {"action": "chargeback-response", "response": "contest", "note": "clip attached",
             "override_missing_evidence": "on"},
            "respond",
            {"action": "contest", "override_missing_evidence": True, "actor": "marc",
             "role": Role.MANAGER},
        ),
        (
            "k-coord",
            "chargeback:adyen:dp_2",
            {"action": "chargeback-response", "response": "accept", "note": ""},
            "respond",
            {"action": "accept", "actor": "alice"},
        ),
        (
            "k-manager",
            "return:RMA-1",
            {"action": "return-qc-decision", "grade": "ko", "outcome": "repair",
             "partial_refund_minor": "", "reason": "scratched"},
            "qc_decision",
            {"grade": "ko", "outcome": "repair", "partial_refund_minor": None, "actor": "marc"},
        ),
        (
            "k-finance",
            "return:RMA-2",
            {"action": "return-finance-approval", "approved": "false", "note": "no photos"},
            "finance_approval",
            {"approved": False, "note": "no photos", "actor": "fiona", "role": Role.FINANCE},
        ),
    ],
)  # fmt: skip
def test_each_form_sends_the_decision_as_the_signed_in_person(
    console: tuple[TestClient, RecordingTemporal],
    key: str,
    workflow_id: str,
    form: dict[str, str],
    update: str,
    expected: dict[str, Any],
) -> None:
    http, temporal = console
    csrf = sign_in(http, key)
    # A forged actor in the form never decides: refused as the API refuses an
    # unknown field, or ignored (the chargeback forms read only their fields).
    forged = {**form, "csrf": csrf, "nonce": "n-41", "actor": "mallory", "role": "manager"}
    http.post(f"/console/cases/{workflow_id}", data=forged)
    assert all(arg.actor == expected["actor"] for _, _, arg, _ in temporal.updates)
    temporal.updates.clear()

    sent = {**form, "csrf": csrf, "nonce": "n-42"}
    answer = http.post(f"/console/cases/{workflow_id}", data=sent)
    assert answer.status_code == 409
    assert "Refused: refused by the stand-in" in answer.text  # the workflow's reason, in words
    ((target, name, arg, kwargs),) = temporal.updates
    assert target == workflow_id
    assert name.endswith(update) or update in name
    decision = arg.model_dump()
    for field, value in expected.items():
        assert decision[field] == value, field
    assert kwargs["id"].endswith("/n-42")  # the page's nonce: a double submit applies once


def test_a_form_of_another_role_is_refused_before_temporal(
    console: tuple[TestClient, RecordingTemporal],
) -> None:
    http, temporal = console
    csrf = sign_in(http, "k-coord")
    answer = http.post(
        "/console/cases/return:RMA-3",
        data={"csrf": csrf, "action": "return-finance-approval", "approved": "true"},
    )
    assert answer.status_code == 403
    assert "role coordinator may not do this (needs one of: finance)" in answer.text
    assert temporal.updates == []


def test_sessions_end_when_idle_or_when_the_key_is_revoked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from starters.auth import Principal
    from starters.console import routes

    keys = ApiKeyStore.from_mapping({"k1": ("alice", Role.COORDINATOR)})
    sessions = routes.Sessions()
    clock = [1000.0]
    monkeypatch.setattr(routes.time, "monotonic", lambda: clock[0])
    principal = Principal("alice", Role.COORDINATOR)
    idle = sessions.open("k1", principal)
    clock[0] += routes.SESSION_IDLE_SECONDS + 1
    assert sessions.get(idle, keys) is None
    active = sessions.open("k1", principal)
    assert sessions.get(active, keys) is not None
    revoked = ApiKeyStore.from_mapping({"k2": ("bob", Role.MANAGER)})  # k1 removed
    assert sessions.get(active, revoked) is None
    assert sessions.get(active, keys) is None  # gone for good


@pytest.mark.parametrize(
    ("key", "workflow_id", "form", "update", "expected"),
    [
        (
            "k-coord",
            "ops-request:OPS-1",
            {"action": "ops-request-claim"},
            "claim",
            {"actor": "alice", "role": Role.COORDINATOR},
        ),
        (
            "k-manager",
            "ops-request:OPS-2",
            {"action": "ops-request-reprioritise", "priority": "urgent", "reason": "VIP"},
            "reprioritise",
            {"priority": "urgent", "reason": "VIP", "actor": "marc", "role": Role.MANAGER},
        ),
        (
            "k-coord",
            "ops-request:OPS-3",
            {"action": "ops-request-recount", "counted_quantity": "7"},
            "recount",
            {"counted_quantity": 7, "actor": "alice"},
        ),
        (
            "k-coord",
            "campaign:ES-2027-03",
            {"action": "campaign-submit"},
            "submit",
            {"actor": "alice", "role": Role.COORDINATOR},
        ),
        (
            "k-manager",
            "campaign:ES-2027-04",
            {"action": "campaign-cancel", "reason": "supplier late"},
            "cancel",
            {"reason": "supplier late", "actor": "marc", "role": Role.MANAGER},
        ),
    ],
)  # fmt: skip
def test_the_desk_and_campaign_forms_send_the_decision_as_the_signed_in_person(
    console: tuple[TestClient, RecordingTemporal],
    key: str,
    workflow_id: str,
    form: dict[str, str],
    update: str,
    expected: dict[str, Any],
) -> None:
    """Issue 20's decisions each role may take: claim, reprioritise, recount
    an ops request; submit and cancel a campaign."""
    http, temporal = console
    csrf = sign_in(http, key)
    answer = http.post(f"/console/cases/{workflow_id}", data={**form, "csrf": csrf, "nonce": "n-7"})
    assert answer.status_code == 409, answer.text
    assert "Refused: refused by the stand-in" in answer.text
    ((target, name, arg, kwargs),) = temporal.updates
    assert (target, name) == (workflow_id, update)
    decision = arg.model_dump()
    for field, value in expected.items():
        assert decision[field] == value, field
    # One idempotency key per page render and form: a double submit applies once.
    assert kwargs["id"] == f"{decision['actor']}/n-7-{form['action']}"


@pytest.mark.parametrize(
    ("workflow_id", "form", "needs"),
    [
        ("ops-request:OPS-4", {"action": "ops-request-claim"}, "coordinator, manager, ops"),
        ("campaign:ES-2027-05", {"action": "campaign-submit"}, "coordinator, manager"),
        (
            "campaign:ES-2027-06",
            {"action": "campaign-cancel", "reason": "x"},
            "coordinator, manager",
        ),
    ],
)
def test_finance_may_not_take_the_desk_or_campaign_decisions(
    console: tuple[TestClient, RecordingTemporal],
    workflow_id: str,
    form: dict[str, str],
    needs: str,
) -> None:
    http, temporal = console
    csrf = sign_in(http, "k-finance")
    answer = http.post(f"/console/cases/{workflow_id}", data={**form, "csrf": csrf, "nonce": "n-8"})
    assert answer.status_code == 403
    assert f"role finance may not do this (needs one of: {needs})" in answer.text
    assert temporal.updates == []


def test_the_access_export_is_served_through_the_session_for_the_privacy_roles(
    console: tuple[TestClient, RecordingTemporal],
) -> None:
    http, _ = console
    assert (
        http.get("/console/privacy-requests/PR-1/export", follow_redirects=False).status_code == 303
    )
    sign_in(http, "k-finance")
    refused = http.get("/console/privacy-requests/PR-1/export")
    assert refused.status_code == 403
    assert "role finance may not do this (needs one of: coordinator, manager)" in refused.text
    sign_in(http, "k-coord")
    # Through the API's own route: a request Temporal does not know is a 404.
    unknown = http.get("/console/privacy-requests/PR-1/export")
    assert unknown.status_code == 404, unknown.text
    assert "PR-1" in unknown.text
    assert http.get("/console/privacy-requests/..%2Fx/export").status_code == 404
