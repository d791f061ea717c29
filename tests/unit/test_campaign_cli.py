"""`steward campaigns` goes through the API with the caller's key: the paths
and bodies it sends (the roster as text/csv), no --as/--role, bad input
refused before any call, the API's refusal shown as one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from domain.campaign import CampaignSchedule, CampaignState, CampaignStatus
from starters import api_client, campaign_cli
from starters.cli import app

runner = CliRunner()
NOW = datetime(2027, 6, 1, 7, 0, tzinfo=UTC)
STATE = CampaignState(
    campaign_id="ES-2027-06",
    name="Summer employee sale",
    status=CampaignStatus.AWAITING_APPROVAL,
    timezone="Europe/Paris",
    schedule=CampaignSchedule(
        opens_at=NOW + timedelta(days=6),
        closes_at=NOW + timedelta(days=10),
        opening_reminder_at=NOW + timedelta(days=5),
        closing_reminder_at=NOW + timedelta(days=9, hours=20),
    ),
    prepared_by=["alice"],
)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    seen: list[tuple[str, str, Any]] = []

    def get(path: str, answer: Any, params: Any = None) -> Any:
        seen.append(("GET", path, params))
        return STATE

    def post(path: str, body: Any, answer: Any, params: Any = None) -> Any:
        seen.append(("POST", path, body))
        return STATE

    monkeypatch.setattr(campaign_cli, "api_get", get)
    monkeypatch.setattr(campaign_cli, "api_post", post)
    return seen


def test_decisions_go_through_the_api(calls: list[tuple[str, str, Any]]) -> None:
    for args in (
        ["submit", "ES-2027-06"],
        ["approve", "ES-2027-06", "--acknowledge-warnings"],
        ["refuse", "ES-2027-06", "--reason", "prices not final"],
        ["close", "ES-2027-06"],
        ["extend", "ES-2027-06", "--until", "2027-06-12T18:00"],
        ["cancel", "ES-2027-06", "--reason", "restructuring"],
        ["show", "ES-2027-06"],
    ):
        result = runner.invoke(app, ["campaigns", *args])
        assert result.exit_code == 0, result.output
        assert "awaiting_approval" in result.output
    base = "/v1/campaigns/ES-2027-06"
    assert calls == [
        ("POST", f"{base}/submit", None),
        ("POST", f"{base}/approval", {"approve": True, "acknowledge_warnings": True, "reason": ""}),
        ("POST", f"{base}/approval", {"approve": False, "reason": "prices not final"}),
        ("POST", f"{base}/window", {"reason": "", "close_now": True}),
        ("POST", f"{base}/window", {"closes_local": "2027-06-12T18:00", "reason": ""}),
        ("POST", f"{base}/cancel", {"reason": "restructuring"}),
        ("GET", base, None),
    ]


def test_no_role_flags_and_bad_ids_refused_before_any_call(
    calls: list[tuple[str, str, Any]],
) -> None:
    assert runner.invoke(app, ["campaigns", "approve", "ES-1", "--as", "marc"]).exit_code != 0
    assert runner.invoke(app, ["campaigns", "show", "bad id!"]).exit_code == 2
    assert calls == []


def test_import_roster_sends_the_csv_with_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) == 1:
            return httpx.Response(
                200,
                json={
                    "campaign_id": "ES-2027-06",
                    "rows": 3,
                    "eligible": 2,
                    "excluded": 1,
                    "roster_hash": "ab" * 32,
                    "warnings": [
                        {
                            "line": 4,
                            "field": "leave_date",
                            "reason": "leaves on 2027-06-08",
                            "severity": "warning",
                        }
                    ],
                },
            )
        return httpx.Response(
            422,
            json={
                "message": "roster refused",
                "detail": [{"field": "line 3.grade", "reason": "unknown grade 'G7'"}],
            },
        )

    monkeypatch.setattr(
        api_client,
        "cli_client",
        lambda: api_client.ApiClient(
            "http://api", "stw_key", transport=httpx.MockTransport(handler)
        ),
    )
    roster = tmp_path / "roster.csv"
    roster.write_bytes(b"employee_id,name\n")
    ok = runner.invoke(app, ["campaigns", "import-roster", "ES-2027-06", str(roster)])
    assert ok.exit_code == 0, ok.output
    assert "3 rows, 2 eligible, 1 excluded" in ok.output and "leaves on 2027-06-08" in ok.output
    request = sent[0]
    assert request.url.path == "/v1/campaigns/ES-2027-06/roster"
    assert request.headers["content-type"] == "text/csv"
    assert request.headers["authorization"] == "Bearer stw_key"
    assert request.content == b"employee_id,name\n"
    refused = runner.invoke(app, ["campaigns", "import-roster", "ES-2027-06", str(roster)])
    assert refused.exit_code == 2
    assert "line 3.grade" in refused.output


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "campaign.json"


def test_create_can_move_the_example_to_open_in_a_few_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[dict[str, Any]] = []

    def post(path: str, body: Any, answer: Any, params: Any = None) -> Any:
        sent.append(body)
        return answer(campaign_id=body["campaign_id"], created=True, schedule=STATE.schedule)

    monkeypatch.setattr(campaign_cli, "api_post", post)
    result = runner.invoke(
        app,
        ["campaigns", "create", str(EXAMPLE), "--id", "ES-DEMO-1", "--opens-in", "5m"],
    )
    assert result.exit_code == 0, result.output
    (body,) = sent
    assert body["campaign_id"] == "ES-DEMO-1"
    opens = datetime.fromisoformat(body["opens_local"])
    closes = datetime.fromisoformat(body["closes_local"])
    # The file's sale lasts 4 days 9 hours; it keeps that length.
    assert closes - opens == timedelta(days=4, hours=9)
    # Everything else is the example's.
    example = json.loads(EXAMPLE.read_text())
    assert {
        k: v for k, v in body.items() if k not in ("campaign_id", "opens_local", "closes_local")
    } == {
        k: v for k, v in example.items() if k not in ("campaign_id", "opens_local", "closes_local")
    }


def test_the_window_opens_on_the_minute_in_the_campaigns_timezone() -> None:
    body = json.loads(EXAMPLE.read_text())
    # 07:58:30 UTC is 09:58:30 in Paris in June: in 5 minutes, on the minute: 10:04.
    now = datetime(2027, 6, 1, 7, 58, 30, tzinfo=UTC)
    moved = campaign_cli.shifted_window(
        body, opens_in=timedelta(minutes=5), lasts=timedelta(hours=2), now=now
    )
    assert (moved["opens_local"], moved["closes_local"]) == (
        "2027-06-01T10:04:00",
        "2027-06-01T12:04:00",
    )


def test_bad_durations_are_refused_before_any_call(calls: list[tuple[str, str, Any]]) -> None:
    for args in (
        ["--opens-in", "soon"],
        ["--opens-in", "0m"],
        ["--opens-in", "5m", "--lasts", "2 weeks"],
        ["--lasts", "2h"],
    ):
        result = runner.invoke(app, ["campaigns", "create", str(EXAMPLE), *args])
        assert result.exit_code == 2, (args, result.output)
        assert "--opens-in" in result.output or "--lasts" in result.output
    assert calls == []
