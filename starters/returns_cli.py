"""`steward returns list|show|qc|approve-refund`: returns from a terminal.

Registered on the main `steward` app in starters/cli.py. `list`, `show`, `qc`
and `approve-refund` go through the HTTP API (`/v1/returns`) with the caller's
API key: who decides, and in which role, is the key's (finance's four eyes
included). `simulate` is an operator command on the stack's servers.
Everything typed is validated before anything is contacted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.audit import CaseRow
from domain.common import Role, format_amount
from domain.returns import (
    QcDecisionInput,
    QcGrade,
    QcOutcome,
    ReturnState,
    ReturnStatus,
)
from starters.case_cli import RetiredActor, RetiredRole, api_get, api_post
from workers.settings import get_settings

_T = TypeVar("_T")

returns_app = typer.Typer(
    help="Returns: list, show one, decide a manual QC, approve a refund (finance).",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

_STYLE = {
    "refunded": "green",
    "exchanged": "green",
    "store_credited": "green",
    "manual_qc": "yellow",
    "awaiting_finance": "yellow",
    "awaiting_customer": "yellow",
    "refund_frozen": "red",
    "refund_failed": "red",
    "rejected": "red",
    "expired": "dim",
    "cancelled": "dim",
}


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/bold red] {message}")
    raise typer.Exit(code)


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    from clients.returns import (
        ReturnClosed,
        ReturnDecisionRefused,
        ReturnNotFound,
        ReturnUnavailable,
    )

    settings = get_settings()
    try:
        return asyncio.run(coro)
    except (ReturnNotFound, ReturnClosed, ReturnUnavailable) as err:
        _fail(str(err))
    except ReturnDecisionRefused as err:
        _fail(f"decision refused: {err.message}")
    except (ConnectionError, OSError) as err:
        _fail(f"cannot reach PostgreSQL ({err}); is `steward up` running?")
    except RuntimeError as err:
        if "client connect" in str(err).lower():
            _fail(f"cannot reach Temporal at {settings.temporal_target}; is `steward up` running?")
        raise


def _when(dt: datetime | None) -> str:
    return "—" if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _problems(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())


def parse_enum(kind: type[Any], value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return kind(value.strip().lower())
    except ValueError:
        valid = ", ".join(m.value for m in kind)
        raise typer.BadParameter(f"unknown {what} {value!r}; valid: {valid}") from None


def parse_rma(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 64 or not value.replace("-", "").replace("_", "").isalnum():
        raise typer.BadParameter(f"{value!r} is not an RMA id (letters, digits, '-', '_')")
    return value


def returns_table(rows: Sequence[CaseRow]) -> Table:
    table = Table(title=f"Returns ({len(rows)})", title_justify="left")
    for column in ("RMA", "Status", "Market", "Value", "Waiting for", "Due", "Updated"):
        table.add_column(column, no_wrap=column != "Status")
    for row in rows:
        value = (
            format_amount(row.amount_minor, row.currency)
            if row.amount_minor is not None and row.currency
            else "—"
        )
        table.add_row(
            row.case_id,
            Text(row.status, style=_STYLE.get(row.status, "")),
            row.market or "—",
            value,
            row.awaited_role or "—",
            _when(row.due_at),
            _when(row.updated_at),
        )
    return table


def return_panel(state: ReturnState) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold cyan", no_wrap=True)
    facts.add_column()
    status = Text(state.status.value, style=_STYLE.get(state.status.value, ""))
    if state.escalated:
        status.append("  escalated", style="bold red")
    facts.add_row("Status", status)
    facts.add_row("Order", f"{state.order_id} · {state.market}")
    facts.add_row("Items", ", ".join(f"{line.quantity} x {line.sku}" for line in state.lines))
    facts.add_row("Value", format_amount(state.value_minor, state.currency))
    facts.add_row("Reason", f"{state.reason.value} ({state.parent_reason.value})")
    facts.add_row("Wants", state.resolution.value)
    for refusal in state.refusals:
        facts.add_row("Refused", refusal)
    if state.cancel_reason:
        # The API reads the customer's words back from the personal-data store.
        facts.add_row("Cancelled", f"the customer said: {state.cancel_reason}")
    if state.open_dispute:
        facts.add_row("Dispute", Text("open on the order: refunds frozen", style="bold red"))
    if state.tracking_number:
        facts.add_row("Tracking", f"{state.tracking_number} (label expires "
                      f"{_when(state.label_expires_at)})")  # fmt: skip
    if state.qc:
        facts.add_row("3PL QC", f"{state.qc.grade.value} {state.qc.notes}".strip())
    if state.manual_qc:
        m = state.manual_qc
        facts.add_row("Manual QC", f"{m.grade.value} by {m.actor} ({m.role.value}): {m.reason}")
    if state.refund_minor is not None:
        facts.add_row(
            "Refund",
            f"{format_amount(state.refund_minor, state.currency)} requested by "
            f"{state.refund_requested_by}" + (f" · {state.refund_reference}"
                                               if state.refund_reference else ""),
        )  # fmt: skip
    if state.finance_approval:
        f = state.finance_approval
        facts.add_row("Finance", f"{'approved' if f.approved else 'refused'} by {f.actor}")
    if state.disposition:
        facts.add_row("Disposition", state.disposition.value)
    if state.replacement_order_id:
        facts.add_row("Replacement", state.replacement_order_id)
    if state.awaited_role:
        facts.add_row("Waiting for", state.awaited_role.value)
    if state.due_at:
        facts.add_row("Due", _when(state.due_at))
    history = Table(title="Status history", title_justify="left", expand=True)
    for column in ("Time", "Status", "By", "Why"):
        history.add_column(column)
    for h in state.history:
        history.add_row(_when(h.at), h.status.value, h.actor, h.reason)
    return Panel(
        Group(facts, history),
        title=f"Return {state.rma_id}",
        title_align="left",
        border_style=_STYLE.get(state.status.value, "white"),
    )


RmaArgument = Annotated[str, typer.Argument(metavar="RMA_ID", callback=parse_rma)]


@returns_app.command("list")
def returns_list(
    status: Annotated[
        str | None, typer.Option(help=f"Only this status: {', '.join(s for s in ReturnStatus)}")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Returns, most recently changed first."""
    chosen = parse_enum(ReturnStatus, status, "status")
    rows = api_get(
        "/v1/returns", list[CaseRow], {"status": chosen.value if chosen else None, "limit": limit}
    )
    console.print(returns_table(rows))


@returns_app.command("show")
def returns_show(rma_id: RmaArgument) -> None:
    """Status, QC, refund and deadlines of one return."""
    console.print(return_panel(api_get(f"/v1/returns/{rma_id}", ReturnState)))


@returns_app.command("qc")
def returns_qc(
    rma_id: RmaArgument,
    grade: Annotated[str, typer.Option(help=f"{', '.join(g for g in QcGrade)}")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit)")],
    outcome: Annotated[
        str | None,
        typer.Option(help=f"Not first choice: {', '.join(o for o in QcOutcome)}"),
    ] = None,
    partial_refund_minor: Annotated[
        int | None, typer.Option(min=1, help="partial_refund only: amount in minor units")
    ] = None,
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """Decide a manual QC (coordinator; the senior QA manager once escalated):
    confirm the grade and, if not first choice, the outcome."""
    try:
        # The domain's own checks (outcome vs grade, partial amount) before sending.
        QcDecisionInput(
            grade=parse_enum(QcGrade, grade, "grade"),
            reason=reason,
            outcome=parse_enum(QcOutcome, outcome, "outcome"),
            partial_refund_minor=partial_refund_minor,
            actor="cli",
            role=Role.COORDINATOR,
        )
    except ValidationError as err:
        _fail(_problems(err), code=2)
    body = {
        "grade": grade.strip().lower(),
        "reason": reason,
        "outcome": outcome.strip().lower() if outcome else None,
        "partial_refund_minor": partial_refund_minor,
    }
    state = api_post(f"/v1/returns/{rma_id}/qc-decision", body, ReturnState)
    by = f" by {state.manual_qc.actor}" if state.manual_qc else ""
    console.print(
        f"QC [green]{body['grade']}[/green] recorded for return [bold]{rma_id}[/bold]{by}; "
        f"status now [bold]{state.status.value}[/bold]"
    )
    console.print(return_panel(state))


@returns_app.command("approve-refund")
def returns_approve_refund(
    rma_id: RmaArgument,
    refuse: Annotated[bool, typer.Option("--refuse", help="Refuse instead of approve")] = False,
    note: Annotated[str, typer.Option(help="Why (required to refuse)")] = "",
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """Finance's second approval of a refund above the threshold (a finance key;
    never the person who requested the refund)."""
    if refuse and not note.strip():
        _fail("--note: a refused refund needs a note for the audit trail", code=2)
    body = {"approved": not refuse, "note": note}
    state = api_post(f"/v1/returns/{rma_id}/finance-approval", body, ReturnState)
    verb = "refused" if refuse else "approved"
    by = f" by {state.finance_approval.actor}" if state.finance_approval else ""
    console.print(
        f"Refund {verb} for return [bold]{rma_id}[/bold]{by}; "
        f"status now [bold]{state.status.value}[/bold]"
    )
    console.print(return_panel(state))


@returns_app.command("simulate")
def returns_simulate(
    count: Annotated[int, typer.Option(min=1, max=2_000, help="How many orders to send")] = 20,
    seed: Annotated[int, typer.Option(help="Seed for reproducible traffic")] = 7,
    wait: Annotated[
        float, typer.Option(min=1, max=600, help="Seconds to wait for orders to be captured")
    ] = 60,
) -> None:
    """Send orders through review, then return the captured ones: realistic
    reasons, resolutions, carrier scans and 3PL grades."""
    from clients.order_review import start_review
    from starters import simulator
    from starters.client import connect
    from starters.returns_simulator import plan_returns, run_returns
    from store import ledger
    from store.db import create_pool
    from workers.personal_keys import configure_personal_data

    settings = get_settings()
    # The orders' personal values go to the personal-data store (issue 21).
    configure_personal_data(settings)

    async def main() -> tuple[int, Any]:
        now = datetime.now(UTC)
        orders = simulator.generate_orders(seed, count, now)
        client = await connect(settings)
        pool = await create_pool(settings.database_dsn, min_size=1, max_size=2)
        try:
            for order in orders:
                await start_review(client, order, settings.task_queue, db=pool)
            # Only money Steward captured can come back as a refund.
            captured: list[Any] = []
            deadline = asyncio.get_running_loop().time() + wait
            while asyncio.get_running_loop().time() < deadline:
                captured = [
                    o
                    for o in orders
                    if (await ledger.totals_for_order(pool, o.order_id)).captured_minor > 0
                ]
                if len(captured) == len(orders):
                    break
                await asyncio.sleep(1.0)
            # Started as the API starts them: the customers' emails go to the
            # personal-data store, the returns carry subject ids (issue 21).
            report = await run_returns(
                client, plan_returns(seed, captured, now), settings.task_queue, db=pool
            )
        finally:
            await pool.close()
        return len(captured), report

    captured, report = _run(main())
    table = Table(
        title=f"Returns for {captured} captured orders (seed {seed})", title_justify="left"
    )
    table.add_column("What")
    table.add_column("Count", justify="right")
    for label, counter in (("fate", report.fates), ("reason", report.reasons),
                           ("3PL grade", report.grades)):  # fmt: skip
        for key, value in sorted(counter.items()):
            table.add_row(f"{label}: {key}", str(value))
    console.print(table)
    console.print(
        f"started {report.started} · already existed {report.already_existed} · "
        f"failed {report.failed}"
    )
    for line in report.errors[:5]:
        err_console.print(f"[red]{line}[/red]")
    if report.failed:
        raise typer.Exit(1)
