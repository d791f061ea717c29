"""The risk team's API at the edge (issue 15): who may change what, and bad
input refused with a 422 naming the field before anything is touched (the
pool is a stub that fails the test when used); the CLI goes through the API
with the key and validates before contacting it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain.common import Role
from domain.risk_admin import (
    CHANGE_ROLES,
    CustomerHistoryCorrection,
    ListEntryChange,
    RiskChange,
    history_problem,
    list_change,
    role_refusal,
)
from domain.risk_rules import IdentityKind, RiskList, identity_hash
from tests.unit.test_api_validation import auth, make_client
from workers.codec import EncryptionCodec, Keyring
from workers.settings import Settings

SHIP_TO = {"line1": "12 rue de la Paix", "city": "Paris", "postal_code": "75002", "country": "FR"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    # One app for the module: every request here is refused before the
    # handler reaches the pool (a stub that fails the test when used).
    data_dir = tmp_path_factory.mktemp("risk-api")
    settings = Settings(_env_file=None, STEWARD_DATA_DIR=data_dir, STEWARD_TASK_QUEUE="unit-tq")
    return make_client(settings, EncryptionCodec(Keyring.generate()))


def test_tightening_is_open_to_coordinators_loosening_needs_a_manager() -> None:
    coordinator_may = {c for c in RiskChange if role_refusal(c, Role.COORDINATOR) is None}
    assert coordinator_may == {
        RiskChange.BLOCK_ADD,
        RiskChange.ALLOW_REMOVE,
        RiskChange.FORWARDER_ADD,
        RiskChange.FORWARDER_POSTAL_CODE_ADD,
    }
    assert all(role_refusal(c, Role.MANAGER) is None for c in RiskChange)
    for role in (Role.AUDITOR, Role.OPS, Role.FINANCE):
        assert all(role_refusal(c, role) is not None for c in RiskChange)
    assert {c for c in RiskChange if Role.SYSTEM in CHANGE_ROLES[c]} == {RiskChange.HISTORY_CORRECT}
    assert list_change(RiskList.ALLOW, add=True) is RiskChange.ALLOW_ADD
    assert list_change(RiskList.BLOCK, add=False) is RiskChange.BLOCK_REMOVE


def test_an_entry_is_named_by_the_same_fingerprint_scoring_matches() -> None:
    by_value = ListEntryChange(
        kind=IdentityKind.EMAIL, value=" A.B+x@Example.com", reason="confirmed_fraud"
    )
    assert by_value.entry_fingerprint() == identity_hash(IdentityKind.EMAIL, "a.b@example.com")
    by_address = ListEntryChange.model_validate(
        {"kind": "address", "address": SHIP_TO, "reason": "confirmed_fraud"}
    )
    fingerprint = by_address.entry_fingerprint()
    by_print = ListEntryChange(
        kind=IdentityKind.ADDRESS, fingerprint=fingerprint, reason="false_positive"
    )
    assert by_print.entry_fingerprint() == fingerprint


def test_a_correction_must_add_up() -> None:
    assert CustomerHistoryCorrection(chargebacks=0, reason="data_correction").changes() == {
        "chargebacks": 0
    }
    assert history_problem({"chargebacks": 3, "chargebacks_won": 1, "chargebacks_lost": 2}) is None
    problem = history_problem({"chargebacks": 1, "chargebacks_won": 1, "chargebacks_lost": 1})
    assert problem is not None and problem.startswith("chargebacks:")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/risk/lists/block/entries", {"kind": "email", "value": "x@example.net"}, "reason"),
        (
            "/v1/risk/lists/block/entries",
            {"kind": "email", "value": "x@example.net", "reason": "because"},
            "reason",
        ),
        (
            "/v1/risk/lists/block/entries",
            {
                "kind": "email",
                "value": "x@example.net",
                "fingerprint": "a" * 64,
                "reason": "confirmed_fraud",
            },
            "value",
        ),
        (
            "/v1/risk/lists/block/entries",
            {"kind": "email", "reason": "confirmed_fraud"},
            "value",
        ),
        (
            "/v1/risk/lists/block/entries",
            {"kind": "email", "address": SHIP_TO, "reason": "confirmed_fraud"},
            "address",
        ),
        (
            "/v1/risk/lists/block/entries",
            {"kind": "address", "value": "12 rue de la Paix", "reason": "confirmed_fraud"},
            "address",
        ),
        (
            "/v1/risk/lists/block/entries",
            {"kind": "email", "fingerprint": "not-a-hash", "reason": "confirmed_fraud"},
            "fingerprint",
        ),
        (
            "/v1/risk/lists/block/entries",
            {"kind": "phone", "value": "x", "reason": "confirmed_fraud"},
            "kind",
        ),
        (
            "/v1/risk/lists/block/entries",
            {"kind": "email", "value": "x\u0000y", "reason": "confirmed_fraud"},
            "value",
        ),
        (
            "/v1/risk/lists/grey/entries",
            {"kind": "email", "value": "x", "reason": "confirmed_fraud"},
            "path.list_name",
        ),
        (
            "/v1/risk/freight-forwarders/addresses",
            {"reason": "freight_forwarder", "name": "x"},
            "address",
        ),
        (
            "/v1/risk/freight-forwarders/postal-codes",
            {"country": "usa", "postal_code": "97230", "name": "x", "reason": "freight_forwarder"},
            "country",
        ),
        (
            "/v1/risk/freight-forwarders/postal-codes",
            {"country": "US", "postal_code": "--", "name": "x", "reason": "freight_forwarder"},
            "postal_code",
        ),
        (
            "/v1/risk/customer-history/corrections",
            {"customer_id": "C-1", "reason": "data_correction"},
            "completed_orders",
        ),
        (
            "/v1/risk/customer-history/corrections",
            {"customer_id": "C-1", "chargebacks": -1, "reason": "data_correction"},
            "chargebacks",
        ),
        (
            "/v1/risk/customer-history/corrections",
            {"customer_id": "C 1", "returns": 1, "reason": "data_correction"},
            "customer_id",
        ),
    ],
)
def test_bad_input_is_422_naming_the_field_before_anything_is_touched(
    api: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    answer = api.post(path, json=body, headers=auth("k-manager"))
    assert answer.status_code == 422, answer.text
    assert field in [d["field"] for d in answer.json()["detail"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "key"),
    [
        ("POST", "/v1/risk/lists/allow/entries", {"kind": "customer", "value": "C-1"}, "k-coord"),
        ("DELETE", "/v1/risk/lists/block/entries", {"kind": "customer", "value": "C-1"}, "k-coord"),
        ("POST", "/v1/risk/lists/block/entries", {"kind": "customer", "value": "C-1"}, "k-auditor"),
        ("POST", "/v1/risk/lists/block/entries", {"kind": "customer", "value": "C-1"}, "k-ops"),
        ("POST", "/v1/risk/lists/block/entries", {"kind": "customer", "value": "C-1"}, "k-system"),
        (
            "DELETE",
            "/v1/risk/freight-forwarders/addresses",
            {"fingerprint": "a" * 64},
            "k-coord",
        ),
        (
            "DELETE",
            "/v1/risk/freight-forwarders/postal-codes",
            {"country": "US", "postal_code": "97230"},
            "k-coord",
        ),
        (
            "POST",
            "/v1/risk/customer-history/corrections",
            {"customer_id": "C-1", "returns": 0},
            "k-coord",
        ),
    ],
)
def test_a_role_the_change_does_not_allow_is_403_before_anything_is_touched(
    api: TestClient, method: str, path: str, body: dict[str, Any], key: str
) -> None:
    answer = api.request(method, path, json={**body, "reason": "false_positive"}, headers=auth(key))
    assert answer.status_code == 403, answer.text
    assert "may not make" in answer.json()["detail"]


def test_reading_needs_a_reader_key(api: TestClient) -> None:
    assert api.get("/v1/risk/lists/block/entries").status_code == 401
    assert api.get("/v1/risk/lists/block/entries", headers=auth("k-ops")).status_code == 403


def test_the_cli_changes_through_the_api_with_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from starters import api_client
    from starters.cli import app

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "change": "risk_block_list_removed",
                "fingerprint": "f" * 64,
                "changed": True,
                "before": {"list": "block"},
                "after": {},
                "audit_entry_id": "risk:marc/k1",
            },
        )

    real = api_client.ApiClient.from_environment

    def with_mock(*args: Any, **kwargs: Any) -> api_client.ApiClient:
        return real(*args, **{**kwargs, "transport": httpx.MockTransport(handler)})

    monkeypatch.setattr(api_client.ApiClient, "from_environment", staticmethod(with_mock))
    monkeypatch.setenv("STEWARD_API_URL", "http://steward.test")
    monkeypatch.setenv("STEWARD_API_KEY", "k-manager")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "risk",
            "block",
            "remove",
            "--kind",
            "email",
            "--value",
            "x@example.net",
            "--reason",
            "false_positive",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "risk_block_list_removed" in result.output
    [request] = seen
    assert (request.method, request.url.path) == ("DELETE", "/v1/risk/lists/block/entries")
    assert request.headers["authorization"] == "Bearer k-manager"
    assert request.headers["idempotency-key"]
    assert json.loads(request.content) == {
        "kind": "email",
        "value": "x@example.net",
        "reason": "false_positive",
        "note": "",
    }

    # A typo is refused before anything is contacted.
    bad = runner.invoke(
        app, ["risk", "block", "add", "--kind", "email", "--reason", "confirmed_fraud"]
    )
    assert bad.exit_code == 2
    assert "value" in bad.output
    assert len(seen) == 1
