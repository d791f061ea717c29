"""`steward deliveries list|show|reship|refund` and `steward claims list|show`.

Registered on the main `steward` app in starters/cli.py. Like the rest of the
CLI it talks to Temporal and PostgreSQL directly with the process settings,
and validates everything typed before contacting anything.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.audit import CaseRow
from domain.carrier_sweep import DEFAULT_SILENCE
from domain.claims import CarrierClaimState
from domain.common import Role, format_amount
from domain.deliveries import (
    DECIDER_ROLES,
    DeliveryDecideInput,
    DeliveryDecision,
    FailedDeliveryState,
    ServiceLevel,
)
from domain.ids import CARRIER_CLAIM, FAILED_DELIVERY
from domain.orders import Address
from workers.settings import get_settings

_T = TypeVar("_T")

deliveries_app = typer.Typer(
    help="Failed deliveries: list, show one, reship or return to stock and refund.",
    no_args_is_help=True,
)
claims_app = typer.Typer(
    help="Carrier claims: list, show one, sweep silent parcels.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
_STYLE = {
    "delivered": "green",
    "refunded": "green",
    "approved": "green",
    "awaiting_decision": "yellow",
    "awaiting_customer": "yellow",
    "refund_frozen": "red",
    "rejected": "red",
    "no_response": "red",
    "closed": "dim",
    "withdrawn": "dim",
}


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/bold red] {message}")
    raise typer.Exit(code)


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    from clients.errors import CaseNotFound, CaseRefused, CaseUnavailable

    try:
        return asyncio.run(coro)
    except (CaseNotFound, CaseUnavailable) as err:
        _fail(str(err))
    except CaseRefused as err:
        _fail(f"decision refused: {err.message}")
    except (ConnectionError, OSError) as err:
        _fail(f"cannot reach PostgreSQL or Temporal ({err}); is `steward up` running?")


def parse_key(value: str) -> str:
    if not _KEY.match(value):
        raise typer.BadParameter(
            f"{value!r} is not a valid id (letters, digits, '.', '_' and '-', up to 64)"
        )
    return value


def parse_role(value: str) -> str:
    allowed = sorted(r.value for r in DECIDER_ROLES)
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} may not decide (valid: {', '.join(allowed)})")
    return value


def parse_service_level(value: str) -> str:
    allowed = [s.value for s in ServiceLevel]
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not a service level (valid: {', '.join(allowed)})")
    return value


def _style(status: str) -> str:
    return _STYLE.get(status, "cyan")


def cases_table(title: str, rows: Sequence[CaseRow]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("Case", "Status", "Market", "Amount", "Waiting for", "Due (UTC)", "Updated"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        amount = (
            format_amount(row.amount_minor, row.currency)
            if row.amount_minor is not None and row.currency
            else "—"
        )
        table.add_row(
            row.case_id,
            Text(row.status, style=_style(row.status)),
            row.market or "—",
            amount,
            row.awaited_role or "—",
            row.due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if row.due_at else "—",
            row.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        )
    return table


def delivery_panel(state: FailedDeliveryState) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("Status", Text(state.status.value, style=_style(state.status.value)))
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


def claim_panel(state: CarrierClaimState) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("Status", Text(state.status.value, style=_style(state.status.value)))
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


async def _cases(process: str, status: str | None, limit: int) -> Sequence[CaseRow]:
    from store import cases as case_store
    from store.db import create_pool

    pool = await create_pool(get_settings().database_dsn, min_size=1, max_size=2)
    try:
        return await case_store.list_cases(pool, process, status, limit)
    finally:
        await pool.close()


StatusOption = Annotated[str | None, typer.Option("--status", help="Only cases in this status")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=500)]
ShipmentArgument = Annotated[
    str, typer.Argument(metavar="SHIPMENT_ID", help="Steward's shipment id", callback=parse_key)
]


@deliveries_app.command("list")
def deliveries_list(status: StatusOption = None, limit: LimitOption = 50) -> None:
    """Failed deliveries, most recently changed first."""
    rows = _run(_cases(FAILED_DELIVERY, status, limit))
    if not rows:
        console.print("[green]No failed deliveries.[/green]")
        return
    console.print(cases_table("Failed deliveries", rows))


@deliveries_app.command("show")
def deliveries_show(shipment_id: ShipmentArgument) -> None:
    """Options offered, the customer's answer, the recommendation and the decision."""
    from clients.failed_delivery import get_delivery
    from starters.client import connect

    async def main() -> FailedDeliveryState:
        return await get_delivery(await connect(get_settings()), shipment_id)

    console.print(delivery_panel(_run(main())))


ActorOption = Annotated[str, typer.Option("--as", help="Who decides (recorded in the audit)")]
RoleOption = Annotated[
    str, typer.Option("--role", help="coordinator or manager", callback=parse_role)
]
NoteOption = Annotated[str, typer.Option("--note", help="Why (recorded in the audit)")]


def _decide(shipment_id: str, decision: DeliveryDecideInput) -> None:
    from clients.failed_delivery import decide_delivery
    from starters.client import connect

    async def main() -> FailedDeliveryState:
        return await decide_delivery(await connect(get_settings()), shipment_id, decision)

    state = _run(main())
    console.print(
        f"[green]{decision.decision.value}[/green] recorded for shipment "
        f"[bold]{shipment_id}[/bold] "
        f"by {decision.actor} ({decision.role.value}); status now [bold]{state.status.value}[/bold]"
    )
    console.print(delivery_panel(state))


def _decision(**fields: Any) -> DeliveryDecideInput:
    try:
        return DeliveryDecideInput.model_validate(fields)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        _fail(problems, code=2)


@deliveries_app.command("reship")
def deliveries_reship(
    shipment_id: ShipmentArgument,
    actor: ActorOption,
    role: RoleOption = "coordinator",
    service_level: Annotated[
        str, typer.Option("--service-level", callback=parse_service_level)
    ] = "standard",
    line1: Annotated[str | None, typer.Option("--line1", help="New address: street")] = None,
    city: Annotated[str | None, typer.Option("--city")] = None,
    postal_code: Annotated[str | None, typer.Option("--postal-code")] = None,
    country: Annotated[str | None, typer.Option("--country", help="ISO 3166 alpha-2")] = None,
    pickup_point: Annotated[str | None, typer.Option("--pickup-point")] = None,
    note: NoteOption = "",
) -> None:
    """Ship a second time (to the same or a new address, or a pickup point)."""
    new_address = [line1, city, postal_code, country]
    address: Address | None = None
    if any(new_address):
        if not all(new_address):
            _fail("--line1, --city, --postal-code and --country go together", code=2)
        try:
            address = Address(
                line1=line1 or "",
                city=city or "",
                postal_code=postal_code or "",
                country=country or "",
            )
        except ValidationError as err:
            _fail("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in err.errors()), code=2)
    _decide(
        shipment_id,
        _decision(
            decision=DeliveryDecision.RESHIP,
            address=address,
            pickup_point_id=pickup_point,
            service_level=ServiceLevel(service_level),
            note=note,
            actor=actor,
            role=Role(role),
        ),
    )


@deliveries_app.command("refund")
def deliveries_refund(
    shipment_id: ShipmentArgument,
    actor: ActorOption,
    note: NoteOption,
    role: RoleOption = "coordinator",
) -> None:
    """Return the parcel to stock (inbound QC, restock) and refund the order once."""
    if not note.strip():
        _fail("--note: say why the parcel goes back to stock", code=2)
    _decide(
        shipment_id,
        _decision(
            decision=DeliveryDecision.RETURN_TO_STOCK, note=note, actor=actor, role=Role(role)
        ),
    )


@claims_app.command("list")
def claims_list(status: StatusOption = None, limit: LimitOption = 50) -> None:
    """Carrier claims, most recently changed first."""
    rows = _run(_cases(CARRIER_CLAIM, status, limit))
    if not rows:
        console.print("[green]No carrier claims.[/green]")
        return
    console.print(cases_table("Carrier claims", rows))


@claims_app.command("show")
def claims_show(
    carrier: Annotated[str, typer.Argument(help="Carrier code, e.g. ups", callback=parse_key)],
    tracking_number: Annotated[str, typer.Argument(callback=parse_key)],
) -> None:
    """Evidence, filing deadline, follow-ups and outcome of one claim."""
    from clients.carrier_claim import get_claim
    from starters.client import connect

    async def main() -> CarrierClaimState:
        return await get_claim(await connect(get_settings()), carrier.lower(), tracking_number)

    console.print(claim_panel(_run(main())))


@claims_app.command("sweep")
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
    from clients.carrier_events import sweep_silent_shipments
    from starters.client import connect
    from store.db import create_pool

    settings = get_settings()

    async def main() -> tuple[datetime, list[str]]:
        client = await connect(settings)
        pool = await create_pool(settings.database_dsn, min_size=1, max_size=2)
        now = datetime.now(UTC)
        try:
            results = await sweep_silent_shipments(
                client, pool, settings.task_queue, now=now, silence=timedelta(days=silence_days)
            )
        finally:
            await pool.close()
        return now, [r.workflow_id for r in results if r.workflow_id]

    now, opened = _run(main())
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


__all__ = ["claims_app", "deliveries_app"]
