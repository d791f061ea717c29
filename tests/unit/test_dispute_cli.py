"""`steward disputes`: validation before contact, the Rich renderings, and the
simulated dispute traffic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from domain.chargeback import (
    ChargebackState,
    DisputeDecision,
    DisputeEventKind,
    DisputeProvider,
    DisputeReason,
    DisputeStage,
    DisputeStatus,
    EvidenceItem,
    EvidenceKind,
    EvidencePack,
    ResponseAction,
)
from domain.common import Role
from starters import cli
from starters.chargeback_cli import dispute_panel, disputes_table
from starters.chargeback_simulator import generate_dispute_events
from starters.simulator import generate_orders
from store.disputes import DisputeRow

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture(autouse=True)
def no_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the CLI connected before validating its input")

    monkeypatch.setattr("starters.client.connect", refuse)
    monkeypatch.setattr("store.db.create_pool", refuse)


def test_chargeback_help_lists_the_commands() -> None:
    result = invoke("chargeback", "--help")
    assert result.exit_code == 0
    for command in ("list", "show", "contest", "accept"):
        assert command in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("chargeback", "show", "paypal", "dp_1"), "unknown provider 'paypal'"),
        (("chargeback", "show", "stripe", "dp 1"), "is not a dispute id"),
        (
            (
                "chargeback",
                "contest",
                "stripe",
                "dp_1",
                "--note",
                "x",
                "--role",
                "manager",
            ),
            "--role is gone",
        ),
        (
            ("chargeback", "contest", "stripe", "dp_1", "--note", " "),
            "--note: a contest needs a note",
        ),
    ],
)
def test_bad_input_is_refused_before_contact(args: tuple[str, ...], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def render(renderable: Any) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_table_shows_deadlines_soonest_first_with_time_left() -> None:
    row = DisputeRow(
        provider="adyen",
        dispute_id="9915555555555555",
        workflow_id="chargeback:adyen:9915555555555555",
        order_id="FR-100001",
        stage="pre_arbitration",
        status="awaiting_coordinator",
        reason="not_received",
        provider_reason_code="13.1",
        due_by=NOW + timedelta(hours=30),
        amount_minor=245000,
        currency="EUR",
        payment_ref="",
        opened_at=NOW,
        updated_at=NOW,
        closed_at=None,
    )
    text = render(disputes_table([row], NOW))
    assert "9915555555555555" in text and "2,450.00 EUR" in text
    assert "pre arbitration" in text and "in 30h" in text


def test_panel_shows_evidence_missing_and_decisions() -> None:
    state = ChargebackState(
        provider=DisputeProvider.STRIPE,
        dispute_id="dp_1",
        order_id="FR-1",
        stage=DisputeStage.DISPUTE,
        status=DisputeStatus.SUBMITTED,
        reason=DisputeReason.NOT_RECEIVED,
        provider_reason_code="product_not_received",
        amount_minor=385000,
        currency="JPY",
        due_by=NOW + timedelta(days=3),
        evidence=EvidencePack(
            items=[
                EvidenceItem(
                    kind=EvidenceKind.ORDER_AND_REVIEW, available=True, summary="order FR-1"
                ),
                EvidenceItem(
                    kind=EvidenceKind.PROOF_OF_DELIVERY, available=False, summary="no POD"
                ),
            ]
        ),
        missing_evidence=[EvidenceKind.PROOF_OF_DELIVERY],
        decisions=[
            DisputeDecision(
                action=ResponseAction.CONTEST,
                note="override: signed at the door",
                actor="morgan",
                role=Role.MANAGER,
                decided_at=NOW,
            )
        ],
    )
    text = render(dispute_panel(state, NOW))
    assert "385,000 JPY" in text
    assert "Missing for not_received: proof_of_delivery" in text
    assert "contest by morgan (manager)" in text


def test_simulated_disputes_are_seeded_and_come_from_both_providers() -> None:
    orders = generate_orders(11, 400, NOW)
    first = generate_dispute_events(11, orders, NOW)
    again = generate_dispute_events(11, orders, NOW)
    assert [e.event_id for e in first] == [e.event_id for e in again]
    providers = {e.provider for e in first if e.kind is DisputeEventKind.OPENED}
    assert providers == {DisputeProvider.STRIPE, DisputeProvider.ADYEN}
    assert any(e.kind is DisputeEventKind.EARLY_FRAUD_WARNING for e in first)
    # As the providers send them: the payment's references, the order only
    # as Adyen's merchantReference (Stripe's dispute metadata is empty).
    authorisations = {o.payment.authorisation_ref: o.order_id for o in orders}
    assert all(authorisations.keys() & set(e.payment_refs) for e in first)
    assert all(e.order_id is None for e in first if e.provider is DisputeProvider.STRIPE)
    assert all(
        e.order_id == authorisations[e.payment_refs[0]]
        for e in first
        if e.provider is DisputeProvider.ADYEN
    )
    assert all(e.due_by > NOW for e in first if e.due_by is not None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("chargeback", "link", "stripe", "dp_1", "FR 1"), "order_id"),
        (
            ("chargeback", "link", "stripe", "dp_1", "FR-1", "--as", "a"),
            "--as is gone",
        ),
        (("chargeback", "link", "paypal", "dp_1", "FR-1"), "unknown provider"),
    ],
)
def test_link_validates_before_contacting_anything(args: tuple[str, ...], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
