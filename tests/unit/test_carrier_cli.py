"""`steward deliveries|claims`: input refused before anything is contacted,
and the panels a coordinator reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from domain.carrier_events import TrackingStatus
from domain.claims import CarrierClaimState, ClaimDocument, ClaimStatus, ClaimType
from domain.common import Role
from domain.deliveries import (
    CustomerMessage,
    CustomerOption,
    CustomerReply,
    DeliveryDecision,
    DeliveryDecisionRecord,
    FailedDeliveryState,
    FailedDeliveryStatus,
    Recommendation,
)
from starters import carrier_claim_cli, cli, failed_delivery_cli

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


def test_commands_are_listed() -> None:
    assert "list" in invoke("failed-delivery", "--help").output
    for command in ("list", "show", "reship", "refund"):
        assert command in invoke("failed-delivery", "--help").output
    for command in ("list", "show", "sweep"):
        assert command in invoke("carrier-claim", "--help").output


def test_sweep_refuses_a_silence_outside_one_to_sixty_days_before_connecting() -> None:
    for days in ("0", "61"):
        result = invoke("carrier-claim", "sweep", "--silence-days", days)
        assert result.exit_code == 2
        assert "--silence-days" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("failed-delivery", "show", "SH 1; drop"), "is not a valid id"),
        (("failed-delivery", "refund", "SH-1", "--note", " "), "--note: say why"),
        (
            ("failed-delivery", "refund", "SH-1", "--note", "x", "--role", "ops"),
            "--role is gone",
        ),
        (("failed-delivery", "reship", "SH-1", "--city", "Lyon"), "go together"),
        (
            ("failed-delivery", "reship", "SH-1", "--line1", "1 rue",
             "--city", "Lyon", "--postal-code", "69001", "--country", "France"),
            "country",
        ),
        (
            ("failed-delivery", "reship", "SH-1", "--service-level", "drone"),
            "service level",
        ),
        (("failed-delivery", "reship", "SH-1", "--as", "lea"), "--as is gone"),
        (("carrier-claim", "show", "ups", "../etc"), "is not a valid id"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_connecting(args: tuple[str, ...], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def render(renderable: Any) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_delivery_and_claim_panels() -> None:
    state = FailedDeliveryState(
        shipment_id="SH-1",
        order_id="FR-9",
        carrier="ups",
        tracking_number="1Z1",
        status=FailedDeliveryStatus.AWAITING_DECISION,
        attempt=1,
        amount_minor=385_000,
        currency="JPY",
        trigger_status=TrackingStatus.DELIVERY_FAILED,
        options_offered=list(CustomerOption),
        customer_reply=CustomerReply(event_id="m", option=CustomerOption.RESCHEDULE, channel="sms"),
        recommendation=Recommendation(
            decision=DeliveryDecision.RESHIP, reasons=["the customer chose reschedule"]
        ),
        decision=DeliveryDecisionRecord(
            decision=DeliveryDecision.RESHIP,
            actor="lea",
            role=Role.COORDINATOR,
            decided_at=NOW,
            note="home Friday",
        ),
        messages=[CustomerMessage(message_id="x", template="delivery_failed_options", sent_at=NOW)],
        awaited_role=Role.COORDINATOR,
        due_at=NOW + timedelta(hours=24),
    )
    text = render(failed_delivery_cli.delivery_panel(state))
    assert "385,000 JPY" in text  # no minor unit for yen
    assert "reship: the customer chose reschedule" in text
    assert "reship by lea (coordinator) · home Friday" in text
    assert "delivery_failed_options" in text
    assert "coordinator · due 2026-11-25 12:00 UTC" in text

    claim = CarrierClaimState(
        carrier="ups",
        tracking_number="1Z1",
        shipment_id="SH-1",
        order_id="FR-9",
        claim_type=ClaimType.DAMAGED,
        status=ClaimStatus.FILED,
        declared_value_minor=245_000,
        currency="EUR",
        filing_deadline=NOW + timedelta(days=21),
        file_by=NOW + timedelta(days=19),
        documents=[
            ClaimDocument(kind="invoice", reference="i"),
            ClaimDocument(kind="photo", reference="p"),
        ],
        claim_reference="CLM-1",
        filed_at=NOW,
    )
    text = render(carrier_claim_cli.claim_panel(claim))
    assert "2,450.00 EUR" in text and "invoice, photo" in text
    assert "Filing deadline  2026-12-15 12:00 UTC" in text
    assert "CLM-1 at 2026-11-24 12:00 UTC" in text
