"""`steward returns ...`: input validation before anything is contacted, and
the Rich renderings a coordinator reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from domain.audit import CaseRow
from domain.common import Role
from domain.returns import (
    FinanceApprovalRecord,
    ParentReason,
    QcDecisionRecord,
    QcGrade,
    QcOutcome,
    Resolution,
    ReturnLine,
    ReturnReason,
    ReturnState,
    ReturnStatus,
    ReturnStatusChange,
)
from starters import cli
from starters.returns_cli import return_panel, returns_table

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture(autouse=True)
def no_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation must fail before the CLI reaches Temporal or PostgreSQL."""

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the CLI connected before validating its input")

    monkeypatch.setattr("starters.client.connect", refuse)
    monkeypatch.setattr("store.db.create_pool", refuse)


def test_help_lists_the_commands() -> None:
    result = invoke("returns", "--help")
    assert result.exit_code == 0
    for command in ("list", "show", "qc", "approve-refund"):
        assert command in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("qc", "RMA-1", "--grade", "shiny", "--reason", "x"), "unknown grade"),
        (
            ("qc", "RMA-1", "--grade", "ko", "--reason", "x", "--role", "manager"),
            "--role is gone",
        ),
        (
            ("qc", "RMA-1", "--grade", "ko", "--reason", "x", "--outcome", "burn"),
            "unknown outcome 'burn'",
        ),
        (("qc", "RMA 1", "--grade", "ko", "--reason", "x"), "is not an RMA id"),
        (("approve-refund", "RMA-1", "--refuse"), "--note: a refused refund"),
        (("approve-refund", "RMA-1", "--as", "fiona"), "--as is gone"),
        (("list", "--status", "lost"), "unknown status 'lost'"),
    ],
)
def test_bad_input_is_refused_before_connecting(args: tuple[str, ...], message: str) -> None:
    result = invoke("returns", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def render(renderable: Any) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_panel_shows_qc_refund_and_finance() -> None:
    state = ReturnState(
        rma_id="RMA-240117",
        order_id="FR-100234",
        market="FR",
        currency="EUR",
        status=ReturnStatus.REFUNDED,
        reason=ReturnReason.DEFECTIVE,
        parent_reason=ParentReason.QUALITY,
        resolution=Resolution.REFUND,
        lines=[ReturnLine(sku="HB-TOTE-MM-NOIR", quantity=1)],
        value_minor=780_000,
        manual_qc=QcDecisionRecord(
            grade=QcGrade.SECOND_CHOICE,
            reason="scuffed corner",
            outcome=QcOutcome.PARTIAL_REFUND,
            partial_refund_minor=600_000,
            actor="sophie",
            role=Role.MANAGER,
            decided_at=NOW,
        ),
        refund_minor=600_000,
        refund_requested_by="sophie",
        refund_reference="sim_refund_abc",
        finance_approval=FinanceApprovalRecord(
            approved=True, note="ok", actor="fiona", decided_at=NOW
        ),
        history=[
            ReturnStatusChange(at=NOW, status=ReturnStatus.REFUNDED, actor="steward", reason="ok")
        ],
    )
    text = render(return_panel(state))
    assert "Return RMA-240117" in text
    assert "7,800.00 EUR" in text
    assert "second_choice by sophie (manager): scuffed corner" in text
    assert "6,000.00 EUR requested by sophie · sim_refund_abc" in text
    assert "approved by fiona" in text
    assert "Cancelled" not in text
    cancelled = state.model_copy(
        update={"status": ReturnStatus.CANCELLED, "cancel_reason": "kept it after all"}
    )
    assert "the customer said: kept it after all" in render(return_panel(cancelled))


def test_table_lists_returns() -> None:
    row = CaseRow(
        workflow_id="return:RMA-1",
        process="return",
        case_id="RMA-1",
        status="manual_qc",
        market="JP",
        awaited_role="coordinator",
        due_at=NOW + timedelta(hours=48),
        amount_minor=385_000,
        currency="JPY",
        updated_at=NOW,
        created_at=NOW,
    )
    text = render(returns_table([row]))
    assert "RMA-1" in text and "manual_qc" in text and "385,000 JPY" in text
    assert "2026-11-26 12:00 UTC" in text
