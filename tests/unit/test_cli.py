"""The `steward` CLI: help, input validation before anything is contacted, and
the Rich renderings coordinators read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

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
    """Validation must fail before the CLI reaches Temporal or PostgreSQL."""

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the CLI connected before validating its input")

    monkeypatch.setattr("starters.client.connect", refuse)
    monkeypatch.setattr("store.db.create_pool", refuse)


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
            ["--reason", "--note", "--as", "--role", "ORDER_ID"],
        ),
        (("tasks", "--help"), ["--role", "--assignee", "--process"]),
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
    listed = invoke("--help").output
    assert f" {name} " in listed
    assert f" {old_name} " not in listed
    alias, group = invoke(old_name, "--help"), invoke(name, "--help")
    assert alias.exit_code == group.exit_code == 0
    # The same commands, under either name.
    assert alias.output.split("Commands")[1] == group.output.split("Commands")[1]


def test_unknown_reason_code_lists_the_valid_ones() -> None:
    result = invoke(
        "order-review", "approve", "FR-1", "--reason", "looks_fine", "--as", "alice", "--role",
        "coordinator",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown reason code 'looks_fine'" in result.output
    for code in ("verified_customer", "customer_confirmed", "suspected_fraud"):
        assert code in result.output
    assert "policy_default" not in result.output  # reserved codes are not offered


def test_reserved_reason_code_is_refused() -> None:
    result = invoke(
        "order-review", "decline", "FR-1", "--reason", "automatic", "--note", "x", "--as", "alice",
        "--role", "manager",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "reserved for Steward" in result.output


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("ops", "role ops may not decide a review; use one of: coordinator, manager"),
        ("boss", "unknown role 'boss'"),
    ],
)
def test_decider_role_is_checked(role: str, message: str) -> None:
    result = invoke(
        "order-review", "approve", "FR-1", "--reason", "verified_customer", "--as", "alice",
        "--role", role,
    )  # fmt: skip
    assert result.exit_code == 2
    assert message in result.output


def test_decline_needs_a_note_and_actor_is_required() -> None:
    no_note = invoke(
        "order-review", "decline", "FR-1", "--reason", "stolen_card", "--as", "alice", "--role",
        "coordinator",
    )  # fmt: skip
    assert no_note.exit_code == 2
    assert "a decline needs a note" in no_note.output
    no_actor = invoke(
        "order-review", "approve", "FR-1", "--reason", "verified_customer", "--role", "coordinator"
    )
    assert no_actor.exit_code == 2
    assert "--as" in no_actor.output
    blank_actor = invoke(
        "order-review", "approve", "FR-1", "--reason", "verified_customer", "--as", "  ", "--role",
        "coordinator",
    )  # fmt: skip
    assert blank_actor.exit_code == 2


def test_bad_order_ids_and_options_are_refused() -> None:
    assert "is not an order id" in invoke("order-review", "show", "FR 1; drop").output
    assert invoke("audit", "../etc").exit_code == 2
    tasks = invoke("tasks", "--role", "boss")
    assert tasks.exit_code == 2
    assert "valid roles: coordinator, manager, finance, ops, system, auditor" in tasks.output
    assert invoke("simulate", "--count", "0").exit_code == 2
    assert invoke("simulate", "--rate", "0").exit_code == 2


def test_unreachable_temporal_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Failed client connect: connection refused")

    monkeypatch.setattr("starters.client.connect", unreachable)
    result = invoke("order-review", "show", "FR-1")
    assert result.exit_code == 1
    assert "cannot reach Temporal at 127.0.0.1:7233" in result.output


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
