"""`steward reports`: input refused before the API is contacted; a run
through the API (an httpx mock of it) with the caller's key, waited for,
its figures and files printed; a failed run exits 1; download writes files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from starters import cli

runner = CliRunner()
RUN_ID = "01a23671-f559-70a8-a621-37d008076039"


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})


def run_row(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": RUN_ID,
        "workflow_id": "report-run:fraud:x:FR:all",
        "report": "fraud",
        "cadence": "manual",
        "period_from": "2026-11-22T23:00:00Z",
        "period_to": "2026-11-29T23:00:00Z",
        "market": "FR",
        "channel": None,
        "status": status,
        "attempts": 1,
        "requested_by": "marc",
        "started_at": "2026-12-02T11:00:00Z",
        "finished_at": None if status == "running" else "2026-12-02T11:00:02Z",
        "error": "attempt 4: PostgresError: down" if status == "failed" else None,
        "files": [{"name": "report.html", "media_type": "text/html", "bytes": 12}]
        if status == "succeeded"
        else [],
        "headline": {"orders_scored": 23} if status == "succeeded" else {},
        **extra,
    }


class FakeApi:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, final: str) -> None:
        self.requests: list[httpx.Request] = []
        self.polls = 0
        self.final = final
        from starters import api_client

        def client() -> api_client.ApiClient:
            return api_client.ApiClient(
                "http://api.test", "k-test", transport=httpx.MockTransport(self.answer)
            )

        monkeypatch.setattr(api_client, "cli_client", client)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST":
            return httpx.Response(
                202,
                json={
                    "workflow_id": "report-run:fraud:x:FR:all",
                    "run_id": RUN_ID,
                    "report": "fraud",
                },
            )
        if path == "/v1/reports":
            self.polls += 1
            return httpx.Response(200, json=[run_row("running" if self.polls < 2 else self.final)])
        if path == f"/v1/reports/{RUN_ID}":
            return httpx.Response(200, json=run_row(self.final))
        if path == f"/v1/reports/{RUN_ID}/files/report.html":
            return httpx.Response(
                200, content=b"<html></html>", headers={"content-type": "text/html"}
            )
        return httpx.Response(404, json={"detail": "no such thing"})


def test_bad_input_is_refused_before_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi(monkeypatch, "succeeded")
    reversed_ = invoke("reports", "run", "fraud", "--from", "2026-11-30", "--to", "2026-11-23")
    assert reversed_.exit_code == 2 and "--to" in reversed_.output
    bad_date = invoke("reports", "run", "fraud", "--from", "30/11/2026", "--to", "2026-12-01")
    assert bad_date.exit_code == 2 and "--from" in bad_date.output
    zone = invoke(
        "reports",
        "run",
        "fraud",
        "--from",
        "2026-11-23",
        "--to",
        "2026-11-30",
        "--timezone",
        "Mars/Olympus",
    )
    assert zone.exit_code == 2 and "time zone" in zone.output
    assert api.requests == []


def test_a_run_goes_through_the_api_and_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi(monkeypatch, "succeeded")
    result = invoke(
        "reports",
        "run",
        "fraud",
        "--from",
        "2026-11-23",
        "--to",
        "2026-11-30",
        "--timezone",
        "Europe/Paris",
        "--market",
        "FR",
    )
    assert result.exit_code == 0, result.output
    post = api.requests[0]
    assert post.method == "POST" and post.url.path == "/v1/reports/fraud/runs"
    assert post.headers["authorization"] == "Bearer k-test"
    body = json.loads(post.content)
    # Paris midnight, sent with its offset.
    assert datetime.fromisoformat(body["period_from"]).astimezone(UTC) == datetime(
        2026, 11, 22, 23, tzinfo=UTC
    )
    assert body["market"] == "FR" and body["distribute"] is False
    assert api.polls == 2  # polled until it left `running`
    assert RUN_ID in result.output and "orders_scored: 23" in result.output
    assert f"/v1/reports/{RUN_ID}/files/report.html" in result.output


def test_a_failed_run_exits_1_with_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeApi(monkeypatch, "failed")
    result = invoke("reports", "run", "fraud", "--from", "2026-11-23", "--to", "2026-11-30")
    assert result.exit_code == 1
    assert "PostgresError: down" in result.output


def test_download_writes_the_run_s_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    FakeApi(monkeypatch, "succeeded")
    result = invoke("reports", "download", RUN_ID, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / RUN_ID / "report.html").read_bytes() == b"<html></html>"
