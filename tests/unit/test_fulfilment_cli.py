"""`steward orders` and `steward qc`: each command validates what was typed
before it calls the API, and calls it with the caller's key (no --as / --role)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from starters.cli import app

runner = CliRunner()

STATE: dict[str, Any] = {
    "order_id": "FR-1",
    "market": "FR",
    "site": "PAR-1",
    "status": "allocated",
    "amount_minor": 245000,
    "currency": "EUR",
    "holds": [
        {
            "handle": "address-check",
            "reason": "incorrect_address",
            "placed_by": "camille",
            "role": "coordinator",
            "note": "flat number missing",
            "placed_at": "2026-12-01T09:00:00Z",
        }
    ],
    "address_fingerprint": "fp_1",
    "destination_country": "FR",
}
VIEW: dict[str, Any] = {
    "order_id": "FR-1",
    "fulfilment_status": "picking",
    "fulfilment_since": "2026-12-01T09:40:00Z",
    "states": [
        {"status": "released", "at": "2026-12-01T09:00:00Z", "actor": "steward"},
        {"status": "picking", "at": "2026-12-01T09:40:00Z", "actor": "warehouse"},
    ],
    "active_holds": [],
    "shipments": [],
    "cases": [],
    "summary": "Warehouse: picking since 2026-12-01 09:40 UTC.",
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

    def sent(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[-1].content)
        return body


def test_status_reads_the_answer_through_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi(monkeypatch, VIEW)
    result = runner.invoke(app, ["orders", "status", "FR-1"])
    assert result.exit_code == 0, result.output
    assert api.requests[0].url.path == "/v1/orders/FR-1/status"
    assert api.requests[0].headers["authorization"] == "Bearer k-test"
    assert "picking since 2026-12-01 09:40 UTC" in result.output


def test_hold_and_release_send_the_reason_never_a_role(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi(monkeypatch, STATE)
    result = runner.invoke(
        app,
        ["orders", "hold", "FR-1", "--reason", "incorrect_address", "--note", "flat missing"],
    )
    assert result.exit_code == 0, result.output
    assert api.requests[-1].url.path == "/v1/fulfilments/FR-1/holds"
    assert api.sent() == {"reason": "incorrect_address", "note": "flat missing"}
    assert "incorrect_address (address-check)" in result.output
    result = runner.invoke(app, ["orders", "release-hold", "FR-1", "address-check"])
    assert result.exit_code == 0, result.output
    assert api.requests[-1].url.path == "/v1/fulfilments/FR-1/holds/address-check/release"
    assert "--as" not in str(runner.invoke(app, ["orders", "hold", "--help"]).output)


def test_change_address_refuses_a_bad_postcode_before_calling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = FakeApi(monkeypatch, STATE)
    args = ["orders", "change-address", "FR-1", "--line1", "7 Avenue Montaigne"]
    result = runner.invoke(
        app, [*args, "--city", "Paris", "--postal-code", "7500", "--country", "fr"]
    )
    assert result.exit_code != 0
    assert "address.postal_code: invalid for FR" in result.output
    assert api.requests == []
    result = runner.invoke(
        app, [*args, "--city", "Paris", "--postal-code", "75008", "--country", "fr"]
    )
    assert result.exit_code == 0, result.output
    assert api.sent()["address"]["country"] == "FR"


def test_the_answer_shows_the_address_the_api_read_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 21: the API reads the address back from the personal-data store
    (`shipping_address`); the fulfilment itself holds only its subject id."""
    shown = {
        **STATE,
        "address_ref": "subj_0123456789abcdef",
        "shipping_address": {
            "line1": "7 Avenue Montaigne",
            "city": "Paris",
            "postal_code": "75008",
            "country": "FR",
        },
    }
    FakeApi(monkeypatch, shown)
    result = runner.invoke(app, ["qc", "show", "FR-1"])
    assert result.exit_code == 0, result.output
    assert "7 Avenue Montaigne, 75008, Paris (FR)" in result.output
    erased = {**shown, "shipping_address_erased": True}
    erased["shipping_address"] = {
        "line1": "[erased]",
        "city": "[erased]",
        "postal_code": "[erased]",
        "country": "FR",
    }
    FakeApi(monkeypatch, erased)
    result = runner.invoke(app, ["qc", "show", "FR-1"])
    assert result.exit_code == 0, result.output
    assert "[erased], [erased], [erased] (FR)" in result.output


def test_special_delivery_and_qc_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi(monkeypatch, STATE)
    result = runner.invoke(app, ["orders", "special-delivery", "FR-1", "--kind", "timed"])
    assert result.exit_code != 0 and api.requests == []  # a window is required
    result = runner.invoke(
        app,
        [
            "orders",
            "special-delivery",
            "FR-1",
            "--kind",
            "named_carrier",
            "--carrier",
            "delivengo",
            "--service",
            "white_glove",
        ],
    )
    assert result.exit_code == 0, result.output
    assert api.sent() == {
        "kind": "named_carrier",
        "carrier": "delivengo",
        "service": "white_glove",
        "note": "",
    }
    result = runner.invoke(
        app, ["qc", "decide", "FR-1", "pass", "--check", "clasp", "--serial", "SN-1"]
    )
    assert result.exit_code == 0, result.output
    assert api.requests[-1].url.path == "/v1/fulfilments/FR-1/qc-decision"
    assert api.sent()["checklist"] == ["clasp"] and api.sent()["serial_number"] == "SN-1"
