"""The `steward` CLI: help, input validation before anything is contacted, the
retired `--as` / `--role` flags, what a decision sends to the API (never an
actor or a role), and the Rich renderings coordinators read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from domain.audit import AuditRow
from domain.common import Role
from domain.review import (
    DecisionReason,
    DecisionRecord,
    OrderReviewState,
    ReviewDecision,
    ReviewStatus,
    StatusChange,
)
from domain.risk import ReasonCode, RiskAssessment, RiskBand, Routing
from domain.tasks import TaskRow
from starters import cli
from starters.order_review_cli import review_panel

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

runner = CliRunner()


def invoke(*args: str) -> Any:
    # Wide terminal: Rich must not wrap the messages we look for.
    return runner.invoke(cli.app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture(autouse=True)
def no_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation must fail before the CLI reaches the API, Temporal or PostgreSQL."""

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the CLI connected before validating its input")

    def refuse_http(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the CLI called the API before validating its input")

    monkeypatch.setattr("starters.client.connect", refuse)
    monkeypatch.setattr("store.db.create_pool", refuse)
    monkeypatch.setattr("starters.api_client.ApiClient.request", refuse_http)


class FakeApi:
    """The API as an httpx transport: records requests, answers what a test says."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, status: int, body: Any) -> None:
        self.requests: list[httpx.Request] = []
        self.status, self.body = status, body
        monkeypatch.undo()  # the ApiClient.request refusal of no_servers
        from starters import api_client

        def client() -> api_client.ApiClient:
            return api_client.ApiClient(
                "http://api.test", "k-test", transport=httpx.MockTransport(self.answer)
            )

        monkeypatch.setattr(api_client, "cli_client", client)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            (),
            [
                *("up", "worker", "api", "tasks", "audit", "simulate"),
                *("order-review", "returns", "failed-delivery", "carrier-claim", "chargeback"),
            ],
        ),
        (("order-review",), ["show", "approve", "decline", "ask-customer"]),
        (
            ("order-review", "approve", "--help"),
            ["--reason", "--note", "ORDER_ID"],
        ),
        (("tasks", "--help"), ["--awaiting", "--assignee", "--process"]),
        ((), ["login", "logout", "whoami"]),
        (("simulate", "--help"), ["--count", "--seed", "--rate"]),
        (("audit", "--help"), ["decision path"]),
    ],
)
def test_help(args: tuple[str, ...], expected: list[str]) -> None:
    result = invoke(*args, "--help") if "--help" not in args else invoke(*args)
    assert result.exit_code == 0, result.output
    for word in expected:
        assert word in result.output


@pytest.mark.parametrize(
    ("old_name", "name"),
    [
        ("review", "order-review"),
        ("deliveries", "failed-delivery"),
        ("claims", "carrier-claim"),
        ("disputes", "chargeback"),
    ],
)
def test_a_group_s_first_name_still_works_but_is_not_listed(old_name: str, name: str) -> None:
    # The names in the commands panel's first column ("│ name  help"), not
    # the words of the help texts (`simulate` speaks of disputes and deliveries).
    listed = {
        line.split()[1]
        for line in invoke("--help").output.splitlines()
        if line.startswith("│ ") and not line.startswith("│  ")
    }
    assert name in listed
    assert old_name not in listed
    alias, group = invoke(old_name, "--help"), invoke(name, "--help")
    assert alias.exit_code == group.exit_code == 0
    # The same commands, under either name.
    assert alias.output.split("Commands")[1] == group.output.split("Commands")[1]


def test_unknown_reason_code_lists_the_valid_ones() -> None:
    result = invoke("order-review", "approve", "FR-1", "--reason", "looks_fine")
    assert result.exit_code == 2
    assert "unknown reason code 'looks_fine'" in result.output
    for code in ("verified_customer", "customer_confirmed", "suspected_fraud"):
        assert code in result.output
    assert "policy_default" not in result.output  # reserved codes are not offered


def test_reserved_reason_code_is_refused() -> None:
    result = invoke("order-review", "decline", "FR-1", "--reason", "automatic", "--note", "x")
    assert result.exit_code == 2
    assert "reserved for Steward" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ("order-review", "approve", "FR-1", "--reason", "verified_customer"),
        ("returns", "approve-refund", "RMA-1"),
        ("returns", "qc", "RMA-1", "--grade", "first_choice", "--reason", "ok"),
        ("failed-delivery", "refund", "SH-1", "--note", "x"),
        ("chargeback", "accept", "stripe", "dp_1"),
        ("tasks",),
    ],
)
@pytest.mark.parametrize("flag", ["--as", "--role"])
def test_as_and_role_are_gone_with_a_clear_message(command: tuple[str, ...], flag: str) -> None:
    result = invoke(*command, flag, "finance")
    assert result.exit_code == 2
    assert f"{flag} is gone" in result.output
    assert "comes from your API key" in result.output
    # Not even offered any more.
    assert f" {flag} " not in invoke(*command[:2], "--help").output


def test_decline_needs_a_note() -> None:
    no_note = invoke("order-review", "decline", "FR-1", "--reason", "stolen_card")
    assert no_note.exit_code == 2
    assert "a decline needs a note" in no_note.output


def test_a_decision_sends_no_actor_and_no_role(monkeypatch: pytest.MonkeyPatch) -> None:
    state = OrderReviewState(
        order_id="FR-1",
        market="FR",
        status=ReviewStatus.CAPTURING,
        amount_minor=245_000,
        currency="EUR",
        decisions=[
            DecisionRecord(
                decision=ReviewDecision.APPROVE,
                reason_code=DecisionReason.VERIFIED_CUSTOMER,
                note="called",
                actor="alice",
                role=Role.COORDINATOR,
                decided_at=NOW,
            )
        ],
    )
    api = FakeApi(monkeypatch, 200, state.model_dump(mode="json"))
    result = invoke(
        "order-review", "approve", "FR-1", "--reason", "verified_customer", "--note", "called"
    )
    assert result.exit_code == 0, result.output
    (request,) = api.requests
    assert request.url.path == "/v1/order-reviews/FR-1/decision"
    assert request.headers["authorization"] == "Bearer k-test"
    assert json.loads(request.content) == {
        "decision": "approve",
        "reason_code": "verified_customer",
        "note": "called",
    }
    # Who decided is what the API answered: the key's actor and role.
    assert "by alice (coordinator)" in result.output


def test_a_refusal_is_the_api_s_reason_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeApi(
        monkeypatch, 403, {"detail": "role coordinator may not do this (needs one of: finance)"}
    )
    result = invoke("returns", "approve-refund", "RMA-1")
    assert result.exit_code == 1
    assert "not allowed: role coordinator may not do this (needs one of: finance)" in result.output


def test_tasks_default_to_the_key_s_role(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi(monkeypatch, 200, [])
    assert invoke("tasks", "--process", "order-review").exit_code == 0
    (request,) = api.requests
    assert request.url.path == "/v1/tasks"
    assert "role" not in request.url.params
    assert request.url.params["process"] == "order-review"


def test_bad_order_ids_and_options_are_refused() -> None:
    assert "is not an order id" in invoke("order-review", "show", "FR 1; drop").output
    assert invoke("audit", "../etc").exit_code == 2
    tasks = invoke("tasks", "--awaiting", "boss")
    assert tasks.exit_code == 2
    assert "valid roles: coordinator, manager, finance, ops, system, auditor" in tasks.output
    assert invoke("simulate", "--count", "0").exit_code == 2
    assert invoke("simulate", "--rate", "0").exit_code == 2


def test_unreachable_api_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    monkeypatch.setenv("STEWARD_API_KEY", "k-test")
    monkeypatch.setenv("STEWARD_API_URL", "http://127.0.0.1:9")  # discard: nobody listens
    result = invoke("order-review", "show", "FR-1")
    assert result.exit_code == 1
    assert "cannot reach the Steward API at http://127.0.0.1:9" in result.output


def test_no_key_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.undo()
    monkeypatch.delenv("STEWARD_API_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    result = invoke("tasks")
    assert result.exit_code == 2
    assert "no API key: run `steward login`" in result.output


# ------------------------------------------------------------- rendering


def render(renderable: Any) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_humanized_due_times() -> None:
    assert cli.humanize_delta(timedelta(hours=1, minutes=5)) == "1h 05m"
    assert cli.humanize_delta(timedelta(days=2, hours=3)) == "2d 3h"
    assert cli.due_text(NOW - timedelta(minutes=12), NOW).plain == "overdue 12m"
    assert cli.due_text(NOW + timedelta(minutes=90), NOW).plain == "in 1h 30m"


def test_tasks_table() -> None:
    row = TaskRow(
        task_id="order-review:FR-1/review/1",
        process="order-review",
        case_id="FR-1",
        workflow_id="order-review:FR-1",
        kind="order_review",
        title="Review order FR-1 · FR · 2,450.00 EUR · risk 62",
        awaited_role=Role.MANAGER,
        assignee=None,
        due_at=NOW - timedelta(minutes=5),
        priority=62,
        escalated=True,
        reminders_sent=1,
        opened_at=NOW - timedelta(hours=2),
        closed_at=None,
        closed_by=None,
        outcome=None,
    )
    text = render(cli.tasks_table([row], NOW))
    for expected in ("overdue 5m", "FR-1", "manager", "risk 62", "yes"):
        assert expected in text


def test_review_panel_and_audit_table() -> None:
    state = OrderReviewState(
        order_id="JP-7",
        market="JP",
        status=ReviewStatus.RELEASED,
        amount_minor=2_225_000,
        currency="JPY",
        risk=RiskAssessment(
            score=40,
            band=RiskBand.MEDIUM,
            routing=Routing.REVIEW,
            reason_codes=[ReasonCode.NEW_ACCOUNT_HIGH_VALUE, ReasonCode.HIGH_RESALE_BASKET],
            rule_set_version="2026.11.1",
        ),
        decisions=[
            DecisionRecord(
                decision=ReviewDecision.APPROVE,
                reason_code=DecisionReason.VERIFIED_CUSTOMER,
                note="called the client",
                actor="alice",
                role=Role.COORDINATOR,
                decided_at=NOW,
            )
        ],
        history=[StatusChange(at=NOW, status=ReviewStatus.RELEASED, actor="steward", reason="ok")],
        capture_reference="cap_123",
    )
    panel = render(review_panel(state, NOW))
    for expected in (
        "Order review JP-7 · JP",
        "2,225,000 JPY",  # no minor unit for yen
        "40 (medium) → review",
        "new_account_high_value, high_resale_basket",
        "alice",
        "called the client",
        "cap_123",
    ):
        assert expected in panel

    row = AuditRow(
        entry_id="order-review:JP-7/0005",
        workflow_id="order-review:JP-7",
        process="order-review",
        case_id="JP-7",
        actor="alice",
        role=Role.COORDINATOR,
        action="status_changed",
        reason="approved (verified_customer)",
        before={"status": "awaiting_review"},
        after={"status": "capturing"},
        occurred_at=NOW,
        recorded_at=NOW,
    )
    table = render(cli.audit_table("JP-7", [row]))
    assert "status: awaiting_review → capturing" in table
    assert "2026-11-24 12:00:00" in table


def test_login_checks_the_key_and_stores_it_0600(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.undo()
    seen: list[str] = []

    def whoami(self: Any) -> dict[str, str]:
        seen.append(self._http.headers["authorization"])
        return {"actor": "fiona", "role": "finance"}

    monkeypatch.setattr("starters.api_client.ApiClient.whoami", whoami)
    env = {"XDG_CONFIG_HOME": str(tmp_path), "COLUMNS": "200", "NO_COLOR": "1"}
    result = runner.invoke(
        cli.app, ["login", "--api-url", "http://api.test"], input="stw_k1\n", env=env
    )
    assert result.exit_code == 0, result.output
    assert "stw_k1" not in result.output  # never echoed
    assert "signed in as fiona (finance)" in result.output
    assert seen == ["Bearer stw_k1"]
    stored = tmp_path / "steward" / "credentials"
    assert oct(stored.stat().st_mode & 0o777) == "0o600"
    assert json.loads(stored.read_text()) == {"api_key": "stw_k1", "api_url": "http://api.test"}
    out = runner.invoke(cli.app, ["logout"], env=env)
    assert out.exit_code == 0 and not stored.exists()
