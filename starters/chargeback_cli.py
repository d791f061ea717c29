"""`steward chargeback list|show|contest|accept|link` (also `steward disputes`):
the chargeback queue from a terminal.

Like the rest of the CLI it talks to Temporal and PostgreSQL directly with the
process settings. Input is validated before anything is contacted.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.chargeback import (
    RESPONDER_ROLES,
    ChargebackState,
    DisputeProvider,
    LinkOrderInput,
    RespondInput,
    ResponseAction,
)
from domain.common import Role, format_amount
from workers.settings import get_settings

_T = TypeVar("_T")

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


def parse_responder_role(value: str) -> str:
    names = ", ".join(sorted(r.value for r in RESPONDER_ROLES))
    try:
        role = Role(value.strip().lower())
    except ValueError:
        raise typer.BadParameter(f"unknown role {value!r}; use one of: {names}") from None
    if role not in RESPONDER_ROLES:
        raise typer.BadParameter(f"role {role.value} may not answer a dispute; use one of: {names}")
    return role.value


def _run(coro: Awaitable[_T]) -> _T:
    from clients.chargeback import (
        DisputeNotFound,
        DisputeUnavailable,
        LinkRefused,
        ResponseRefused,
        UnknownOrder,
    )

    async def main() -> _T:
        return await coro

    try:
        return asyncio.run(main())
    except (DisputeNotFound, DisputeUnavailable) as err:
        _fail(str(err))
    except ResponseRefused as err:
        _fail(f"response refused: {err.message}")
    except UnknownOrder as err:
        _fail(err.message, 2)
    except LinkRefused as err:
        _fail(f"link refused: {err.message}")
    except (ConnectionError, OSError) as err:
        _fail(f"cannot reach PostgreSQL ({err}); is `steward up` running?")
    except RuntimeError as err:
        if "client connect" in str(err).lower():
            _fail("cannot reach Temporal; is `steward up` running?")
        raise


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
ActorOption = Annotated[str, typer.Option("--as", help="Who answers (recorded in the audit)")]
RoleOption = Annotated[
    str,
    typer.Option("--role", help="coordinator or manager", callback=parse_responder_role),
]


@chargeback_app.command("list")
def disputes_list(
    all_: Annotated[bool, typer.Option("--all", help="Include closed disputes")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Disputes by provider deadline, soonest first."""
    from store import disputes as dispute_store
    from store.db import create_pool

    settings = get_settings()

    async def main() -> list[Any]:
        pool = await create_pool(settings.database_dsn, min_size=1, max_size=2)
        try:
            return await dispute_store.list_disputes(pool, open_only=not all_, limit=limit)
        finally:
            await pool.close()

    console.print(disputes_table(_run(main()), datetime.now(UTC)))


@chargeback_app.command("show")
def disputes_show(provider: ProviderArgument, dispute_id: DisputeArgument) -> None:
    """Stage, status, deadlines, evidence and decisions of one dispute."""
    from clients.chargeback import get_status
    from starters.client import connect

    settings = get_settings()

    async def main() -> ChargebackState:
        return await get_status(await connect(settings), provider, dispute_id)

    console.print(dispute_panel(_run(main()), datetime.now(UTC)))


def _respond(
    provider: str,
    dispute_id: str,
    action: ResponseAction,
    note: str,
    actor: str,
    role: str,
    override: bool,
) -> None:
    try:
        answer = RespondInput(
            action=action,
            note=note,
            actor=actor,
            role=Role(role),
            override_missing_evidence=override,
        )
    except ValidationError as err:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()), 2)
    from clients.chargeback import respond
    from starters.client import connect

    settings = get_settings()

    async def main() -> ChargebackState:
        return await respond(await connect(settings), provider, dispute_id, answer)

    state = _run(main())
    console.print(
        f"[green]{action.value}[/green] sent for {provider} dispute [bold]{dispute_id}[/bold] "
        f"by {actor} ({role}); status now [bold]{state.status.value}[/bold]"
    )
    console.print(dispute_panel(state, datetime.now(UTC)))


@chargeback_app.command("contest")
def disputes_contest(
    provider: ProviderArgument,
    dispute_id: DisputeArgument,
    note: Annotated[str, typer.Option("--note", help="Sent to the provider with the evidence")],
    actor: ActorOption,
    role: RoleOption = "coordinator",
    override: Annotated[
        bool,
        typer.Option("--override-missing", help="Managers: contest although evidence is missing"),
    ] = False,
) -> None:
    """Contest with the assembled evidence and a note."""
    if not note.strip():
        _fail("--note: a contest needs a note for the provider and the audit", code=2)
    _respond(provider, dispute_id, ResponseAction.CONTEST, note, actor, role, override)


@chargeback_app.command("accept")
def disputes_accept(
    provider: ProviderArgument,
    dispute_id: DisputeArgument,
    actor: ActorOption,
    role: RoleOption = "coordinator",
    note: Annotated[str, typer.Option("--note")] = "",
) -> None:
    """Accept the dispute: the money goes back to the cardholder."""
    _respond(provider, dispute_id, ResponseAction.ACCEPT, note, actor, role, False)


@chargeback_app.command("link")
def disputes_link(
    provider: ProviderArgument,
    dispute_id: DisputeArgument,
    order_id: Annotated[
        str, typer.Argument(help="The order the disputed payment belongs to", metavar="ORDER_ID")
    ],
    actor: ActorOption,
    role: RoleOption = "coordinator",
    note: Annotated[str, typer.Option("--note", help="How the order was found")] = "",
) -> None:
    """Link a dispute Steward could not resolve to its order (evidence, refund freeze)."""
    try:
        link = LinkOrderInput(order_id=order_id, note=note, actor=actor, role=Role(role))
    except ValidationError as err:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()), 2)
    from clients.chargeback import link_order
    from starters.client import connect
    from store.db import create_pool

    settings = get_settings()

    async def main() -> ChargebackState:
        pool = await create_pool(settings.database_dsn, min_size=1, max_size=2)
        try:
            return await link_order(await connect(settings), pool, provider, dispute_id, link)
        finally:
            await pool.close()

    state = _run(main())
    console.print(
        f"[green]linked[/green] {provider} dispute [bold]{dispute_id}[/bold] to order "
        f"[bold]{state.order_id}[/bold] by {actor} ({role}); status now "
        f"[bold]{state.status.value}[/bold]"
    )
