"""`steward privacy-request` goes through the API with the caller's key: the
paths and bodies it sends, no --as/--role, bad input refused before any call;
`steward personal-data rotate-key` is listed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.privacy_request import PrivacyRequestState
from starters import privacy_request_cli
from starters.cli import app

runner = CliRunner()
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
STATE = PrivacyRequestState(
    request_id="PR-1",
    kind="erasure",
    jurisdiction="EU",
    status="on_hold",
    received_at=NOW,
    sla_due_at=NOW + timedelta(days=30),
    subjects=2,
    erased=1,
    retained=1,
    proceeds_at=NOW + timedelta(days=3650),
    hold_reasons=["invoice_retention invoice:FR-1 until 2036-11-30"],
)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    seen: list[tuple[str, str, Any]] = []

    def get(path: str, answer: Any, params: Any = None) -> Any:
        seen.append(("GET", path, params))
        if path.endswith("/export"):
            return {"request_id": "PR-1", "subjects": [{"fields": {"email": "a@b.fr"}}]}
        return STATE

    def post(path: str, body: Any, answer: Any, params: Any = None) -> Any:
        seen.append(("POST", path, body))
        if path == "/v1/privacy-requests":
            return answer(workflow_id="privacy-request:PR-1", request_id="PR-1", subjects=2)
        return STATE

    monkeypatch.setattr(privacy_request_cli, "api_get", get)
    monkeypatch.setattr(privacy_request_cli, "api_post", post)
    return seen


def test_file_show_verify_go_through_the_api(calls: list[tuple[str, str, Any]]) -> None:
    filed = runner.invoke(
        app,
        [
            "privacy-request",
            "file",
            "PR-1",
            "--email",
            "camille.durand@example.fr",
            "--kind",
            "erasure",
            "--jurisdiction",
            "EU",
        ],
    )
    assert filed.exit_code == 0, filed.output
    assert "privacy-request:PR-1" in filed.output and "2 record(s)" in filed.output
    shown = runner.invoke(app, ["privacy-request", "show", "PR-1"])
    assert shown.exit_code == 0 and "invoice_retention invoice:FR-1" in shown.output
    verified = runner.invoke(
        app, ["privacy-request", "verify", "PR-1", "--decision", "verified", "--reason", "ID ok"]
    )
    assert verified.exit_code == 0, verified.output
    assert calls == [
        (
            "POST",
            "/v1/privacy-requests",
            {
                "request_id": "PR-1",
                "kind": "erasure",
                "email": "camille.durand@example.fr",
                "jurisdiction": "EU",
            },
        ),
        ("GET", "/v1/privacy-requests/PR-1", None),
        (
            "POST",
            "/v1/privacy-requests/PR-1/verification",
            {"decision": "verified", "reason": "ID ok"},
        ),
    ]


def test_export_writes_a_private_file(calls: list[Any], tmp_path: Path) -> None:
    target = tmp_path / "export.json"
    result = runner.invoke(app, ["privacy-request", "export", "PR-1", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["request_id"] == "PR-1"
    assert target.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "args",
    [
        ["privacy-request", "verify", "PR-1", "--decision", "maybe", "--reason", "x"],
        [
            "privacy-request",
            "file",
            "PR 1",
            "--email",
            "a@b.fr",
            "--kind",
            "erasure",
            "--jurisdiction",
            "EU",
        ],
        [
            "privacy-request",
            "file",
            "PR-1",
            "--email",
            "a@b.fr",
            "--kind",
            "forget",
            "--jurisdiction",
            "EU",
        ],
        [
            "privacy-request",
            "verify",
            "PR-1",
            "--decision",
            "verified",
            "--reason",
            "x",
            "--role",
            "manager",
        ],
    ],
)
def test_bad_input_is_refused_before_any_call(
    args: list[str], calls: list[tuple[str, str, Any]]
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert calls == []


def test_the_operator_command_is_listed() -> None:
    result = runner.invoke(app, ["personal-data", "--help"])
    assert result.exit_code == 0 and "rotate-key" in result.output
