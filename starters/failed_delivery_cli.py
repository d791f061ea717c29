"""`steward failed-delivery list|show|reship|refund` (also `steward deliveries`).

Registered on the main `steward` app in starters/cli.py. It reads and decides
through the HTTP API (`/v1/failed-deliveries`) with the caller's API key: who
decides, and in which role, is the key's. Everything typed is validated before
anything is contacted.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.audit import CaseRow
from domain.common import Role, format_amount
from domain.deliveries import (
    DeliveryDecideInput,
    DeliveryDecision,
    FailedDeliveryState,
    ServiceLevel,
)
from domain.orders import Address
from starters.case_cli import (
    LimitOption,
    RetiredActor,
    RetiredRole,
    StatusOption,
    api_get,
    api_post,
    cases_table,
    console,
    fail,
    parse_key,
    status_style,
)

failed_delivery_app = typer.Typer(
    help="Failed deliveries: list, show one, reship or return to stock and refund.",
    no_args_is_help=True,
)


def parse_service_level(value: str) -> str:
    allowed = [s.value for s in ServiceLevel]
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not a service level (valid: {', '.join(allowed)})")
    return value


def delivery_panel(state: FailedDeliveryState) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("Status", Text(state.status.value, style=status_style(state.status.value)))
    facts.add_row(
        "Order", f"{state.order_id} · {format_amount(state.amount_minor, state.currency)}"
    )
    facts.add_row(
        "Parcel",
        f"{state.carrier} {state.tracking_number} · attempt {state.attempt} · "
        f"{state.trigger_status.value}",
    )
    facts.add_row("Options offered", ", ".join(o.value for o in state.options_offered) or "—")
    reply = state.customer_reply
    facts.add_row(
        "Customer",
        f"{reply.option.value} ({reply.channel})" if reply else "no answer",
    )
    if state.risk:
        facts.add_row("New address risk", f"{state.risk.score} ({state.risk.band.value})")
    if state.recommendation:
        facts.add_row(
            "Recommendation",
            f"{state.recommendation.decision.value}: {'; '.join(state.recommendation.reasons)}",
        )
    if state.decision:
        d = state.decision
        facts.add_row(
            "Decision",
            f"{d.decision.value} by {d.actor} ({d.role.value})"
            + (" · default" if d.by_default else "")
            + (f" · {d.note}" if d.note else ""),
        )
    if state.reship_tracking_number:
        facts.add_row(
            "Second shipment", f"{state.reship_shipment_id} · {state.reship_tracking_number}"
        )
    if state.awaited_role and state.due_at:
        facts.add_row(
            "Waiting for", f"{state.awaited_role.value} · due {state.due_at:%Y-%m-%d %H:%M} UTC"
        )
    if state.refund_reference:
        facts.add_row("Refund", state.refund_reference)
    if state.claim_workflow_ids:
        facts.add_row("Claims", ", ".join(state.claim_workflow_ids))
    messages = Table(
        "Sent (UTC)", "Customer message", title="Customer messages", title_justify="left"
    )
    for message in state.messages:
        messages.add_row(
            message.sent_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"), message.template
        )
    return Panel(Group(facts, messages), title=f"Failed delivery {state.shipment_id}", expand=False)


ShipmentArgument = Annotated[
    str, typer.Argument(metavar="SHIPMENT_ID", help="Steward's shipment id", callback=parse_key)
]


@failed_delivery_app.command("list")
def deliveries_list(status: StatusOption = None, limit: LimitOption = 50) -> None:
    """Failed deliveries, most recently changed first."""
    rows = api_get("/v1/failed-deliveries", list[CaseRow], {"status": status, "limit": limit})
    if not rows:
        console.print("[green]No failed deliveries.[/green]")
        return
    console.print(cases_table("Failed deliveries", rows))


@failed_delivery_app.command("show")
def deliveries_show(shipment_id: ShipmentArgument) -> None:
    """Options offered, the customer's answer, the recommendation and the decision."""
    console.print(
        delivery_panel(api_get(f"/v1/failed-deliveries/{shipment_id}", FailedDeliveryState))
    )


NoteOption = Annotated[str, typer.Option("--note", help="Why (recorded in the audit)")]


def _decide(shipment_id: str, decision: DeliveryDecideInput) -> None:
    body = decision.model_dump(
        mode="json", include={"decision", "address", "pickup_point_id", "service_level", "note"}
    )
    state = api_post(f"/v1/failed-deliveries/{shipment_id}/decision", body, FailedDeliveryState)
    by = f" by {state.decision.actor} ({state.decision.role.value})" if state.decision else ""
    console.print(
        f"[green]{decision.decision.value}[/green] recorded for shipment "
        f"[bold]{shipment_id}[/bold]{by}; status now [bold]{state.status.value}[/bold]"
    )
    console.print(delivery_panel(state))


def _decision(**fields: Any) -> DeliveryDecideInput:
    # The domain's own checks before sending; the actor and role sent are the key's.
    try:
        return DeliveryDecideInput.model_validate(
            {**fields, "actor": "cli", "role": Role.COORDINATOR}
        )
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        fail(problems, code=2)


@failed_delivery_app.command("reship")
def deliveries_reship(
    shipment_id: ShipmentArgument,
    service_level: Annotated[
        str, typer.Option("--service-level", callback=parse_service_level)
    ] = "standard",
    line1: Annotated[str | None, typer.Option("--line1", help="New address: street")] = None,
    city: Annotated[str | None, typer.Option("--city")] = None,
    postal_code: Annotated[str | None, typer.Option("--postal-code")] = None,
    country: Annotated[str | None, typer.Option("--country", help="ISO 3166 alpha-2")] = None,
    pickup_point: Annotated[str | None, typer.Option("--pickup-point")] = None,
    note: NoteOption = "",
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """Ship a second time (to the same or a new address, or a pickup point)."""
    new_address = [line1, city, postal_code, country]
    address: Address | None = None
    if any(new_address):
        if not all(new_address):
            fail("--line1, --city, --postal-code and --country go together", code=2)
        try:
            address = Address(
                line1=line1 or "",
                city=city or "",
                postal_code=postal_code or "",
                country=country or "",
            )
        except ValidationError as err:
            fail("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in err.errors()), code=2)
    _decide(
        shipment_id,
        _decision(
            decision=DeliveryDecision.RESHIP,
            address=address,
            pickup_point_id=pickup_point,
            service_level=ServiceLevel(service_level),
            note=note,
        ),
    )


@failed_delivery_app.command("refund")
def deliveries_refund(
    shipment_id: ShipmentArgument,
    note: NoteOption,
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """Return the parcel to stock (inbound QC, restock) and refund the order once."""
    if not note.strip():
        fail("--note: say why the parcel goes back to stock", code=2)
    _decide(shipment_id, _decision(decision=DeliveryDecision.RETURN_TO_STOCK, note=note))


__all__ = ["delivery_panel", "failed_delivery_app"]
