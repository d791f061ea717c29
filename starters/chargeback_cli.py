"""`steward chargeback list|show|contest|accept|link` (also `steward disputes`):
the chargeback queue from a terminal.

It reads and answers through the HTTP API (`/v1/chargebacks`) with the
caller's API key: who answers, and in which role, is the key's. Input is
validated before anything is contacted.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.chargeback import (
    ChargebackState,
    DisputeProvider,
    LinkOrderInput,
    RespondInput,
    ResponseAction,
)
from domain.common import Role, format_amount
from starters.case_cli import RetiredActor, RetiredRole, api_get, api_post

chargeback_app = typer.Typer(
    help="Chargebacks and disputes: list by deadline, show one, contest or accept, link to "
    "an order.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)
_DISPUTE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/bold red] {message}")
    raise typer.Exit(code)


def parse_provider(value: str) -> str:
    try:
        return DisputeProvider(value.strip().lower()).value
    except ValueError:
        raise typer.BadParameter(
            f"unknown provider {value!r}; valid: {', '.join(p.value for p in DisputeProvider)}"
        ) from None


def parse_dispute_id(value: str) -> str:
    value = value.strip()
    if not _DISPUTE_ID.match(value):
        raise typer.BadParameter(f"{value!r} is not a dispute id")
    return value


def _when(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if dt else "—"


def _left(dt: datetime | None, now: datetime) -> Text:
    if dt is None:
        return Text("no response allowed", style="dim")
    hours = (dt - now).total_seconds() / 3600
    if hours < 0:
        return Text(f"passed {-hours:.0f}h ago", style="bold red")
    text = f"in {hours / 24:.1f}d" if hours >= 48 else f"in {hours:.0f}h"
    return Text(text, style="bold yellow" if hours < 72 else "")


def disputes_table(rows: list[Any], now: datetime) -> Table:
    table = Table(title=f"Disputes ({len(rows)}), soonest deadline first", title_justify="left")
    for column in ("provider", "dispute", "order", "stage", "status", "reason", "amount", "due"):
        table.add_column(column, no_wrap=column in ("dispute", "due"))
    table.add_column("left")
    for row in rows:
        table.add_row(
            row.provider,
            row.dispute_id,
            row.order_id or "—",
            row.stage.replace("_", " "),
            row.status.replace("_", " "),
            row.reason.replace("_", " "),
            format_amount(row.amount_minor, row.currency),
            _when(row.due_by),
            _left(row.due_by, now) if row.closed_at is None else Text("closed", style="dim"),
        )
    return table


def dispute_panel(state: ChargebackState, now: datetime) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("order", state.order_id or "unknown to Steward")
    facts.add_row("amount", format_amount(state.amount_minor, state.currency))
    reason = state.reason.value
    if state.provider_reason_code:
        reason += f" ({state.scheme + ' ' if state.scheme else ''}{state.provider_reason_code})"
    facts.add_row("reason", reason)
    facts.add_row("stage · status", f"{state.stage.value} · {state.status.value}")
    facts.add_row(
        "provider deadline", Text.assemble(_when(state.due_by), " ", _left(state.due_by, now))
    )
    if state.respond_by and not state.status_closed():
        facts.add_row("default acts", _when(state.respond_by))
    if state.awaited_role:
        facts.add_row(
            "waiting for", state.awaited_role.value + (" (escalated)" if state.escalated else "")
        )
    facts.add_row("CCTV clip", state.cctv_status)
    evidence = Table(title="Evidence", title_justify="left", show_edge=False)
    evidence.add_column("")
    evidence.add_column("kind")
    evidence.add_column("what we have")
    for item in state.evidence.items:
        evidence.add_row(
            Text("✓", style="green") if item.available else Text("✗", style="red"),
            item.kind.value,
            item.summary,
        )
    parts: list[Any] = [facts, evidence]
    if state.missing_evidence:
        parts.append(
            Text(
                f"Missing for {state.reason.value}: {', '.join(state.missing_evidence)}",
                style="yellow",
            )
        )
    for decision in state.decisions:
        parts.append(
            Text(
                f"{_when(decision.decided_at)} {decision.action.value} by {decision.actor} "
                f"({decision.role.value}){' [default]' if decision.by_default else ''}: "
                f"{decision.note}"
            )
        )
    return Panel(
        Group(*parts), title=f"Dispute {state.provider.value} {state.dispute_id}", expand=False
    )


ProviderArgument = Annotated[
    str, typer.Argument(help="stripe or adyen", metavar="PROVIDER", callback=parse_provider)
]
DisputeArgument = Annotated[
    str,
    typer.Argument(
        help="The provider's dispute id", metavar="DISPUTE_ID", callback=parse_dispute_id
    ),
]


@chargeback_app.command("list")
def disputes_list(
    all_: Annotated[bool, typer.Option("--all", help="Include closed disputes")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Disputes by provider deadline, soonest first."""
    from store.disputes import DisputeRow

    rows = api_get("/v1/chargebacks", list[DisputeRow], {"open": not all_, "limit": limit})
    console.print(disputes_table(rows, datetime.now(UTC)))


@chargeback_app.command("show")
def disputes_show(provider: ProviderArgument, dispute_id: DisputeArgument) -> None:
    """Stage, status, deadlines, evidence and decisions of one dispute."""
    state = api_get(f"/v1/chargebacks/{provider}/{dispute_id}", ChargebackState)
    console.print(dispute_panel(state, datetime.now(UTC)))


def _respond(
    provider: str, dispute_id: str, action: ResponseAction, note: str, override: bool
) -> None:
    try:
        # The domain's own checks before sending; the actor and role are the key's.
        RespondInput(
            action=action,
            note=note,
            actor="cli",
            role=Role.MANAGER,
            override_missing_evidence=override,
        )
    except ValidationError as err:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()), 2)
    if action is ResponseAction.CONTEST:
        body: dict[str, Any] = {"note": note, "override_missing_evidence": override}
    else:
        body = {"note": note}
    state = api_post(
        f"/v1/chargebacks/{provider}/{dispute_id}/{action.value}", body, ChargebackState
    )
    last = state.decisions[-1] if state.decisions else None
    by = f" by {last.actor} ({last.role.value})" if last is not None else ""
    console.print(
        f"[green]{action.value}[/green] sent for {provider} dispute [bold]{dispute_id}[/bold]"
        f"{by}; status now [bold]{state.status.value}[/bold]"
    )
    console.print(dispute_panel(state, datetime.now(UTC)))


@chargeback_app.command("contest")
def disputes_contest(
    provider: ProviderArgument,
    dispute_id: DisputeArgument,
    note: Annotated[str, typer.Option("--note", help="Sent to the provider with the evidence")],
    override: Annotated[
        bool,
        typer.Option("--override-missing", help="Managers: contest although evidence is missing"),
    ] = False,
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """Contest with the assembled evidence and a note."""
    if not note.strip():
        _fail("--note: a contest needs a note for the provider and the audit", code=2)
    _respond(provider, dispute_id, ResponseAction.CONTEST, note, override)


@chargeback_app.command("accept")
def disputes_accept(
    provider: ProviderArgument,
    dispute_id: DisputeArgument,
    note: Annotated[str, typer.Option("--note")] = "",
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """Accept the dispute: the money goes back to the cardholder."""
    _respond(provider, dispute_id, ResponseAction.ACCEPT, note, False)


@chargeback_app.command("link")
def disputes_link(
    provider: ProviderArgument,
    dispute_id: DisputeArgument,
    order_id: Annotated[
        str, typer.Argument(help="The order the disputed payment belongs to", metavar="ORDER_ID")
    ],
    note: Annotated[str, typer.Option("--note", help="How the order was found")] = "",
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """Link a dispute Steward could not resolve to its order (evidence, refund freeze)."""
    try:
        LinkOrderInput(order_id=order_id, note=note, actor="cli", role=Role.COORDINATOR)
    except ValidationError as err:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()), 2)
    state = api_post(
        f"/v1/chargebacks/{provider}/{dispute_id}/link",
        {"order_id": order_id, "note": note},
        ChargebackState,
    )
    console.print(
        f"[green]linked[/green] {provider} dispute [bold]{dispute_id}[/bold] to order "
        f"[bold]{state.order_id}[/bold]; status now [bold]{state.status.value}[/bold]"
    )
