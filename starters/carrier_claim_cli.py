"""`steward carrier-claim list|show|sweep` (also `steward claims`).

Registered on the main `steward` app in starters/cli.py. It goes through the
HTTP API (`/v1/carrier-claims`, `/v1/carrier/sweep`) with the caller's API key,
and validates everything typed before contacting anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.audit import CaseRow
from domain.carrier_sweep import DEFAULT_SILENCE
from domain.claims import CarrierClaimState
from domain.common import format_amount
from starters.case_cli import (
    LimitOption,
    StatusOption,
    api_get,
    api_post,
    cases_table,
    console,
    parse_key,
    status_style,
)


class SweepAnswer(BaseModel):
    """POST /v1/carrier/sweep's answer (ops or system keys)."""

    claims_opened: list[str]


carrier_claim_app = typer.Typer(
    help="Carrier claims: list, show one, sweep silent parcels.", no_args_is_help=True
)


def claim_panel(state: CarrierClaimState) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("Status", Text(state.status.value, style=status_style(state.status.value)))
    facts.add_row("Type", state.claim_type.value)
    facts.add_row("Order", f"{state.order_id} · shipment {state.shipment_id}")
    facts.add_row("Declared value", format_amount(state.declared_value_minor, state.currency))
    facts.add_row("Filing deadline", f"{state.filing_deadline:%Y-%m-%d %H:%M} UTC")
    facts.add_row("File by", f"{state.file_by:%Y-%m-%d %H:%M} UTC")
    facts.add_row("Investigation", state.investigation_ref or "—")
    facts.add_row("Documents", ", ".join(d.kind for d in state.documents) or "—")
    if state.cctv_note:
        facts.add_row("CCTV", state.cctv_note)
    facts.add_row(
        "Filed",
        f"{state.claim_reference} at {state.filed_at:%Y-%m-%d %H:%M} UTC"
        if state.claim_reference and state.filed_at
        else "not yet",
    )
    facts.add_row("Follow-ups", str(state.follow_ups))
    if state.outcome:
        facts.add_row(
            "Outcome",
            f"{'approved' if state.outcome.approved else 'rejected'} · "
            f"{format_amount(state.outcome.reimbursed_minor, state.outcome.currency)}",
        )
    if state.remedy_workflow_id:
        facts.add_row("Customer remedy", state.remedy_workflow_id)
    return Panel(
        facts, title=f"Carrier claim {state.carrier} {state.tracking_number}", expand=False
    )


@carrier_claim_app.command("list")
def claims_list(status: StatusOption = None, limit: LimitOption = 50) -> None:
    """Carrier claims, most recently changed first."""
    rows = api_get("/v1/carrier-claims", list[CaseRow], {"status": status, "limit": limit})
    if not rows:
        console.print("[green]No carrier claims.[/green]")
        return
    console.print(cases_table("Carrier claims", rows))


@carrier_claim_app.command("show")
def claims_show(
    carrier: Annotated[str, typer.Argument(help="Carrier code, e.g. ups", callback=parse_key)],
    tracking_number: Annotated[str, typer.Argument(callback=parse_key)],
) -> None:
    """Evidence, filing deadline, follow-ups and outcome of one claim."""
    path = f"/v1/carrier-claims/{carrier.lower()}/{tracking_number}"
    console.print(claim_panel(api_get(path, CarrierClaimState)))


@carrier_claim_app.command("sweep")
def claims_sweep(
    silence_days: Annotated[
        int,
        typer.Option(
            "--silence-days", min=1, max=60, help="Days without a scan past the expected delivery"
        ),
    ] = DEFAULT_SILENCE.days,
) -> None:
    """Run one silence sweep now: a lost-parcel claim for every silent parcel.

    The same sweep the `carrier-silence-sweep` schedule runs every hour; a
    parcel already claimed is never claimed twice.
    """
    now = datetime.now(UTC)
    answer = api_post("/v1/carrier/sweep", None, SweepAnswer, {"silence_days": silence_days})
    opened = answer.claims_opened
    if not opened:
        console.print(
            f"[green]No parcel silent for {silence_days} days past its expected delivery "
            f"({now:%Y-%m-%d %H:%M} UTC).[/green]"
        )
        return
    table = Table(title=f"Claims opened for silent parcels ({silence_days} days)")
    table.add_column("Claim", no_wrap=True)
    for workflow_id in opened:
        table.add_row(workflow_id)
    console.print(table)


__all__ = ["carrier_claim_app", "claim_panel"]
