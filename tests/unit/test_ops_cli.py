"""`steward ops`: each command validates what was typed before it calls the
API, and calls it with the caller's key (no --as / --role)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from starters.cli import app

runner = CliRunner()

STATE: dict[str, Any] = {
    "request_id": "OPS-1",
    "type": "other",
    "priority": "normal",
    "status": "assigned",
    "requester": "cs.alice",
    "channel": "slack",
    "market": "GB",
    "opened_at": "2026-12-01T09:00:00Z",
    "sla": "PT8H",
    "due_at": "2026-12-01T17:00:00Z",
    "assignee": "camille",
}
ROW: dict[str, Any] = {
    "request_id": "OPS-1",
    "workflow_id": "ops-request:OPS-1",
    "type": "other",
    "priority": "high",
    "priority_rank": 200,
    "status": "resolved",
    "requester": "cs.alice",
    "channel": "slack",
    "market": "GB",
    "site_id": None,
    "order_id": "FR-1",
    "assignee": "camille",
    "awaited_role": None,
    "opened_at": "2026-12-01T09:00:00Z",
    "due_at": "2026-12-01T13:00:00Z",
    "first_response_at": "2026-12-01T09:05:00Z",
    "resolved_at": "2026-12-01T10:30:00Z",
    "business_seconds_to_resolve": 5400,
    "sla_met": True,
    "escalated": False,
    "escalations": 0,
    "outcome": "done",
    "root_cause": "customer_request",
    "linked_cases": ["fulfilment:FR-1"],
    "updated_at": "2026-12-01T10:30:00Z",
}


class FakeApi:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, body: Any) -> None:
        self.requests: list[httpx.Request] = []
        self.body = body
        from starters import api_client

        def client() -> api_client.ApiClient:
            return api_client.ApiClient(
                "http://api.test", "k-test", transport=httpx.MockTransport(self.answer)
            )

        monkeypatch.setattr(api_client, "cli_client", client)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.body)


@pytest.fixture(autouse=True)
def no_api(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the CLI called the API before validating its input")

    monkeypatch.setattr("starters.api_client.ApiClient.request", refuse)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ops", "list", "--type", "parcel"], "'parcel' is not a request type"),
        (["ops", "resolve", "OPS-1", "--outcome", "fixed", "--root-cause", "unknown"], "outcome"),
        (["ops", "reprioritise", "OPS-1", "urgent"], "--reason is required"),
        (["ops", "show", "bad id!"], "not a valid id"),
        (["ops", "open", "address_change", "order_id=FR-1"], "details.address_change.address"),
        (
            [
                "ops",
                "escalate",
                "OPS-1",
                "--summary",
                "s",
                "--tried",
                "t",
                "--blocker",
                "b",
                "--needed-from",
                "x",
                "--needed-what",
                "y",
                "--next-check",
                "2026-12-01T10:00",
            ],
            "give an offset",
        ),
        # Who acts comes from the key: --as is refused, saying so (issue 20).
        (["ops", "claim", "OPS-1", "--as", "bob"], "comes from your API key"),
    ],
)
def test_bad_input_is_refused_before_the_api(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    # The error box wraps at the terminal's width: compare its words in one line.
    flat = " ".join(result.output.replace("│", " ").split())
    assert message in flat


def test_claim_goes_through_the_api_with_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    api = FakeApi(monkeypatch, STATE)
    result = runner.invoke(app, ["ops", "claim", "OPS-1"])
    assert result.exit_code == 0, result.output
    (request,) = api.requests
    assert (request.method, request.url.path) == ("POST", "/v1/ops-requests/OPS-1/claim")
    assert request.headers["Authorization"] == "Bearer k-test"
    assert "camille" in result.output


def test_show_prints_the_requester_s_words_the_api_read_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 21: the words are not in the workflow; GET reads them from the
    # personal-data store and `show` prints them.
    monkeypatch.undo()
    api = FakeApi(monkeypatch, {**STATE, "description": "call Mme Durand first"})
    result = runner.invoke(app, ["ops", "show", "OPS-1"])
    assert result.exit_code == 0, result.output
    assert api.requests[0].url.path == "/v1/ops-requests/OPS-1"
    assert "note: call Mme Durand first" in " ".join(result.output.replace("│", " ").split())


def test_resolve_sends_the_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    api = FakeApi(monkeypatch, STATE)
    result = runner.invoke(
        app,
        ["ops", "resolve", "OPS-1", "--outcome", "done", "--root-cause", "carrier_issue"],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(api.requests[0].content)
    assert body == {
        "outcome": "done",
        "root_cause": "carrier_issue",
        "note": "",
        "inventory": None,
    }


def test_open_sends_the_type_s_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    api = FakeApi(monkeypatch, {"request_id": "OPS-9", "workflow_id": "x", "created": True})
    result = runner.invoke(
        app,
        [
            "ops",
            "open",
            "address_change",
            "order_id=FR-1",
            "address.line1=1 Main St",
            "address.city=London",
            "address.postal_code=SW1A 1AA",
            "address.country=GB",
            "--priority",
            "urgent",
        ],
    )
    assert result.exit_code == 0, result.output
    (request,) = api.requests
    assert request.url.params["channel"] == "cli"
    body = json.loads(request.content)
    assert body["details"]["address"]["city"] == "London" and body["priority"] == "urgent"
    assert "OPS-9" in result.output


def test_export_writes_the_csv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.undo()
    FakeApi(monkeypatch, [ROW])
    out = tmp_path / "ops.csv"
    result = runner.invoke(app, ["ops", "export", "-o", str(out)])
    assert result.exit_code == 0, result.output
    header, line = out.read_text().splitlines()
    assert header.split(",")[:4] == ["request_id", "type", "priority", "status"]
    assert ",1.50,true,false,0,done,customer_request," in line
