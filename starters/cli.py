"""`steward`: run the stack, and work the queues from a terminal.

The CLI is an operator and coordinator tool on the host that runs Steward: it
talks to Temporal and PostgreSQL directly with the process settings (the same
environment variables as the stack), not through the HTTP API. Everything a
person types is validated before anything is contacted, so a typo gets a
clear message and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from domain.audit import AuditRow
from domain.common import Role
from domain.review import (
    DECIDER_ROLES,
    DecideInput,
    DecisionReason,
    OrderReviewState,
    ReviewDecision,
)
from domain.tasks import TaskRow
from starters.deliveries_cli import claims_app, deliveries_app
from starters.disputes_cli import disputes_app
from starters.returns_cli import returns_app
from workers.settings import Settings, get_settings

_T = TypeVar("_T")

app = typer.Typer(
    name="steward",
    help="Steward: durable back-office processes for luxury e-commerce, on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
review_app = typer.Typer(
    help="Order reviews: show one, approve, decline or ask the customer.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")
app.add_typer(returns_app, name="returns")
app.add_typer(disputes_app, name="disputes")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(claims_app, name="claims")

console = Console()
err_console = Console(stderr=True)

# Codes Steward writes itself; a person never claims them.
RESERVED_REASONS = frozenset({DecisionReason.POLICY_DEFAULT, DecisionReason.AUTOMATIC})
HUMAN_REASONS: tuple[DecisionReason, ...] = tuple(
    r for r in DecisionReason if r not in RESERVED_REASONS
)
_ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
MAX_SIMULATED_ORDERS = 100_000


# ------------------------------------------------------------- validation


def _valid_list(values: Sequence[str]) -> str:
    return ", ".join(values)


def parse_order_id(value: str) -> str:
    value = value.strip()
    if not _ORDER_ID.match(value):
        raise typer.BadParameter(
            f"{value!r} is not an order id (letters, digits, '.', '_', '-'; at most 64)"
        )
    return value


def parse_reason(value: str) -> DecisionReason:
    try:
        reason = DecisionReason(value.strip().lower())
    except ValueError:
        raise typer.BadParameter(
            f"unknown reason code {value!r}; valid codes: "
            f"{_valid_list([r.value for r in HUMAN_REASONS])}"
        ) from None
    if reason in RESERVED_REASONS:
        raise typer.BadParameter(
            f"{reason.value} is reserved for Steward; valid codes: "
            f"{_valid_list([r.value for r in HUMAN_REASONS])}"
        )
    return reason


def parse_decider_role(value: str) -> Role:
    names = sorted(r.value for r in DECIDER_ROLES)
    try:
        role = Role(value.strip().lower())
    except ValueError:
        raise typer.BadParameter(
            f"unknown role {value!r}; a decision needs one of: {_valid_list(names)}"
        ) from None
    if role not in DECIDER_ROLES:
        raise typer.BadParameter(
            f"role {role.value} may not decide a review; use one of: {_valid_list(names)}"
        )
    return role


def parse_role(value: str | None) -> Role | None:
    if value is None:
        return None
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise typer.BadParameter(
            f"unknown role {value!r}; valid roles: {_valid_list([r.value for r in Role])}"
        ) from None


def parse_actor(value: str) -> str:
    value = value.strip()
    if not value:
        raise typer.BadParameter("name who decides, e.g. --as alice")
    if len(value) > 200:
        raise typer.BadParameter("at most 200 characters")
    return value


# ---------------------------------------------------------------- running


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/bold red] {message}")
    raise typer.Exit(code)


def _run(coro: Coroutine[Any, Any, _T], *, long_running: bool = False) -> _T:
    """Run `coro`, turning unreachable servers into one clear line.

    A long-running process (the worker) runs on the configured event loop
    (STEWARD_EVENT_LOOP, uvloop by default); one-shot commands on asyncio's.
    """
    from clients.order_review import (
        DecisionRefused,
        ReviewClosed,
        ReviewNotFound,
        ReviewUnavailable,
    )
    from workers.event_loop import run_on_event_loop

    settings = get_settings()
    try:
        return run_on_event_loop(coro, settings.event_loop if long_running else "asyncio")
    except (ReviewNotFound, ReviewClosed, ReviewUnavailable) as err:
        _fail(str(err))
    except DecisionRefused as err:
        _fail(f"decision refused: {err.message}")
    except (ConnectionError, OSError) as err:
        _fail(
            f"cannot reach PostgreSQL at {_redact(settings.database_dsn)} ({err}); "
            "is `steward up` running?"
        )
    except RuntimeError as err:
        if "client connect" in str(err).lower():
            _fail(f"cannot reach Temporal at {settings.temporal_target}; is `steward up` running?")
        raise


def _redact(dsn: str) -> str:
    # postgresql://user:secret@host/db -> postgresql://user:***@host/db
    return re.sub(r"(//[^:/@]+:)[^@]+@", r"\1***@", dsn)


async def _with_pool(settings: Settings, body: Callable[[Any], Awaitable[_T]]) -> _T:
    from store.db import create_pool

    pool = await create_pool(settings.database_dsn, min_size=1, max_size=2)
    try:
        return await body(pool)
    finally:
        await pool.close()


def _stop_event_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


# ------------------------------------------------------------- formatting


def _local(dt: datetime | None, *, seconds: bool = False) -> str:
    if dt is None:
        return "—"
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def humanize_delta(delta: timedelta) -> str:
    """timedelta(hours=1, minutes=5) -> "1h 05m"; negative values are handled by the caller."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def due_text(due_at: datetime, now: datetime) -> Text:
    delta = due_at - now
    if delta.total_seconds() < 0:
        return Text(f"overdue {humanize_delta(delta)}", style="bold red")
    style = "yellow" if delta < timedelta(minutes=30) else ""
    return Text(f"in {humanize_delta(delta)}", style=style)


def tasks_table(rows: Sequence[TaskRow], now: datetime) -> Table:
    table = Table(title=f"Open tasks ({len(rows)})", title_justify="left", expand=False)
    table.add_column("Due in", no_wrap=True)
    table.add_column("Case", no_wrap=True, style="bold")
    table.add_column("Role", no_wrap=True)
    table.add_column("Title")
    table.add_column("Escalated", justify="center")
    for row in rows:
        table.add_row(
            due_text(row.due_at, now),
            row.case_id,
            row.awaited_role.value,
            row.title,
            Text("yes", style="bold red") if row.escalated else Text("—", style="dim"),
        )
    return table


def _format_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    keys = list(dict.fromkeys([*before, *after]))
    parts = []
    for key in keys:
        if key in before and key in after:
            parts.append(f"{key}: {before[key]} → {after[key]}")
        elif key in after:
            parts.append(f"{key}: {after[key]}")
        else:
            parts.append(f"{key}: {before[key]} → —")
    return "\n".join(parts)


def audit_table(order_id: str, rows: Sequence[AuditRow]) -> Table:
    table = Table(title=f"Decision path of order {order_id}", title_justify="left")
    table.add_column("Time", no_wrap=True)
    # An order's path spans processes (review, failed delivery, claim, return).
    table.add_column("Process", no_wrap=True)
    table.add_column("Actor", no_wrap=True)
    table.add_column("Role", no_wrap=True)
    table.add_column("Action", no_wrap=True, style="bold")
    table.add_column("Reason")
    table.add_column("Before → after")
    for row in rows:
        table.add_row(
            row.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            row.process,
            row.actor,
            row.role.value,
            row.action,
            row.reason or "—",
            _format_change(row.before, row.after) or "—",
        )
    return table


_STATUS_STYLE = {
    "released": "green",
    "cancelled": "red",
    "awaiting_review": "yellow",
    "awaiting_customer": "yellow",
    "capturing": "cyan",
    "cancelling": "magenta",
}


def review_panel(state: OrderReviewState, now: datetime) -> Panel:
    from clients.order_review import format_amount

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold cyan", no_wrap=True)
    facts.add_column()
    status = Text(state.status.value, style=_STATUS_STYLE.get(state.status.value, ""))
    if state.escalated:
        status.append("  escalated to a manager", style="bold red")
    facts.add_row("Status", status)
    facts.add_row("Amount", format_amount(state.amount_minor, state.currency))
    if state.risk is not None:
        risk = state.risk
        facts.add_row(
            "Risk",
            f"{risk.score} ({risk.band.value}) → {risk.routing.value}  "
            f"[dim]rules {risk.rule_set_version}[/dim]",
        )
        facts.add_row("Reasons", ", ".join(r.value for r in risk.reason_codes) or "no risk signal")
    if state.awaited_role is not None:
        facts.add_row("Waiting for", state.awaited_role.value)
    if state.due_at is not None:
        facts.add_row("Due", Text.assemble(_local(state.due_at), "  ", due_text(state.due_at, now)))
    if state.hard_deadline is not None:
        facts.add_row("Hard deadline", _local(state.hard_deadline))
    if state.reminders_sent:
        facts.add_row("Reminders", str(state.reminders_sent))
    for label, value in (
        ("Capture", state.capture_reference),
        ("Void", state.void_reference),
        ("Warehouse", state.warehouse_release_id),
    ):
        if value:
            facts.add_row(label, value)
    if state.cancel_request is not None:
        facts.add_row(
            "Cancel request",
            f"{state.cancel_request.reason} (by {state.cancel_request.requested_by})",
        )

    parts: list[Any] = [facts]
    if state.decisions:
        decisions = Table(title="Decisions", title_justify="left", expand=True)
        for column in ("Time", "Actor", "Role", "Decision", "Reason", "Note"):
            decisions.add_column(column)
        for d in state.decisions:
            decisions.add_row(
                _local(d.decided_at, seconds=True), d.actor, d.role.value, d.decision.value,
                d.reason_code.value, d.note or "—",
            )  # fmt: skip
        parts.append(decisions)
    if state.customer_answers:
        answers = Table(title="Customer answers", title_justify="left", expand=True)
        for column in ("Event", "Confirmed", "Channel", "Message"):
            answers.add_column(column)
        for a in state.customer_answers:
            answers.add_row(a.event_id, "yes" if a.confirmed else "no", a.channel, a.message)
        parts.append(answers)
    if state.history:
        history = Table(title="Status history", title_justify="left", expand=True)
        for column in ("Time", "Status", "By", "Why"):
            history.add_column(column)
        for h in state.history:
            history.add_row(_local(h.at, seconds=True), h.status.value, h.actor, h.reason)
        parts.append(history)
    return Panel(
        Group(*parts),
        title=f"Order review {state.order_id} · {state.market}",
        title_align="left",
        border_style=_STATUS_STYLE.get(state.status.value, "white"),
    )


# --------------------------------------------------------------- commands


@app.command()
def up() -> None:
    """Run the whole embedded stack: PostgreSQL, Temporal (with its UI), worker and API."""
    from starters.stack import run_stack
    from workers.event_loop import run_on_event_loop

    settings = get_settings()
    try:
        # The worker and the API share this loop: see workers/event_loop.py.
        run_on_event_loop(run_stack(settings), settings.event_loop)
    except RuntimeError as err:
        _fail(str(err))


@app.command()
def migrate() -> None:
    """Apply the store's schema migrations to DATABASE_URL, then exit (production one-shot)."""
    from store.migrate import apply_migrations
    from workers.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)

    async def main() -> list[str]:
        return await _with_pool(settings, apply_migrations)

    applied = _run(main())
    console.print(
        f"applied {', '.join(applied)}" if applied else "schema is up to date; nothing applied"
    )


@app.command()
def worker() -> None:
    """Run a worker only (against TEMPORAL_ADDRESS / DATABASE_URL or a running `steward up`)."""
    from starters.client import connect
    from store.db import create_pool
    from store.migrate import apply_migrations
    from workers.logging import configure_logging
    from workers.worker import run_worker

    settings = get_settings()
    configure_logging(settings.log_level)

    async def main() -> None:
        stop = _stop_event_on_signals()
        client = await connect(settings)
        pool = await create_pool(settings.database_dsn)
        try:
            # Idempotent and serialised by an advisory lock: safe from every worker.
            await apply_migrations(pool)
            await run_worker(client, pool, settings, stop)
        finally:
            await pool.close()

    _run(main(), long_running=True)


@app.command()
def api(
    port: Annotated[
        int | None, typer.Option(help="Port (default STEWARD_API_PORT, 8400)", min=1, max=65535)
    ] = None,
) -> None:
    """Run the HTTP API only (uvicorn), bound to STEWARD_API_HOST (127.0.0.1)."""
    import uvicorn

    from starters.api.app import create_app
    from workers.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=port or settings.api_port,
        log_config=None,  # keep the structlog JSON set-up
        access_log=False,  # the app logs every request itself, with the actor
        server_header=False,
    )


@app.command()
def tasks(
    role: Annotated[
        str | None,
        typer.Option(
            help="Only tasks awaiting this role (coordinator, manager...)", callback=parse_role
        ),
    ] = None,
    assignee: Annotated[str | None, typer.Option(help="Only tasks assigned to this person")] = None,
    process: Annotated[
        str | None, typer.Option(help="Only this process, e.g. order-review")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many")] = 50,
) -> None:
    """The work queue: open tasks, soonest deadline first."""
    awaited = Role(role) if role else None
    settings = get_settings()

    async def main() -> list[TaskRow]:
        from store import tasks as task_store

        async def body(pool: Any) -> list[TaskRow]:
            return await task_store.list_open(
                pool, role=awaited, assignee=assignee, process=process, limit=limit
            )

        return await _with_pool(settings, body)

    rows = _run(main())
    if not rows:
        console.print("[green]No open tasks.[/green]")
        return
    console.print(tasks_table(rows, datetime.now(UTC)))


@app.command()
def audit(
    order_id: Annotated[
        str, typer.Argument(help="The order id", metavar="ORDER_ID", callback=parse_order_id)
    ],
) -> None:
    """The whole decision path of an order review: who did what, when and why."""
    settings = get_settings()

    async def main() -> list[AuditRow]:
        from store import audit as audit_store

        async def body(pool: Any) -> list[AuditRow]:
            # Every process of the order: its review, a failed delivery (found
            # by order id though keyed by shipment), a return...
            return await audit_store.list_by_case(pool, order_id)

        return await _with_pool(settings, body)

    rows = _run(main())
    if not rows:
        _fail(f"no audit entries for order {order_id}")
    console.print(audit_table(order_id, rows))


@review_app.command("show")
def review_show(
    order_id: Annotated[
        str, typer.Argument(help="The order id", metavar="ORDER_ID", callback=parse_order_id)
    ],
) -> None:
    """Status, risk, deadlines and decisions of one review."""
    from clients.order_review import get_status
    from starters.client import connect

    settings = get_settings()

    async def main() -> OrderReviewState:
        client = await connect(settings)
        return await get_status(client, order_id)

    console.print(review_panel(_run(main()), datetime.now(UTC)))


ReasonOption = Annotated[
    str,
    typer.Option(
        "--reason",
        help=f"Reason code: {', '.join(r.value for r in HUMAN_REASONS)}",
        callback=parse_reason,
    ),
]
NoteOption = Annotated[str, typer.Option("--note", help="Free text for the audit trail")]
ActorOption = Annotated[
    str, typer.Option("--as", help="Who decides (recorded in the audit)", callback=parse_actor)
]
RoleOption = Annotated[
    str,
    typer.Option(
        "--role", help="The decider's role: coordinator or manager", callback=parse_decider_role
    ),
]


def _decide(
    order_id: str, decision: ReviewDecision, reason: str, note: str, actor: str, role: str
) -> None:
    # Callbacks already validated these; the casts restore their parsed types.
    reason_code = DecisionReason(reason)
    decider_role = Role(role)
    if decision is ReviewDecision.DECLINE and not note.strip():
        _fail("--note: a decline needs a note for the audit trail", code=2)
    try:
        decide_input = DecideInput(
            decision=decision, reason_code=reason_code, note=note, actor=actor, role=decider_role
        )
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        _fail(problems, code=2)

    from clients.order_review import decide
    from starters.client import connect

    settings = get_settings()

    async def main() -> OrderReviewState:
        client = await connect(settings)
        # The CLI has no retry loop: a fresh update id per invocation.
        return await decide(client, order_id, decide_input)

    state = _run(main())
    console.print(
        f"[green]{decision.value}[/green] recorded for order [bold]{order_id}[/bold] "
        f"by {actor} ({decider_role.value}); status now [bold]{state.status.value}[/bold]"
    )
    console.print(review_panel(state, datetime.now(UTC)))


OrderIdArgument = Annotated[
    str, typer.Argument(help="The order id", metavar="ORDER_ID", callback=parse_order_id)
]


@review_app.command("approve")
def review_approve(
    order_id: OrderIdArgument,
    reason: ReasonOption,
    actor: ActorOption,
    role: RoleOption,
    note: NoteOption = "",
) -> None:
    """Approve: capture the payment and release the order to the warehouse."""
    _decide(order_id, ReviewDecision.APPROVE, reason, note, actor, role)


@review_app.command("decline")
def review_decline(
    order_id: OrderIdArgument,
    reason: ReasonOption,
    actor: ActorOption,
    role: RoleOption,
    note: NoteOption = "",
) -> None:
    """Decline: void the authorisation and cancel the order (needs --note)."""
    _decide(order_id, ReviewDecision.DECLINE, reason, note, actor, role)


@review_app.command("ask-customer")
def review_ask_customer(
    order_id: OrderIdArgument,
    reason: ReasonOption,
    actor: ActorOption,
    role: RoleOption,
    note: NoteOption = "",
) -> None:
    """Ask the customer to confirm the order before deciding."""
    _decide(order_id, ReviewDecision.ASK_CUSTOMER, reason, note, actor, role)


@app.command()
def simulate(
    count: Annotated[
        int, typer.Option(min=1, max=MAX_SIMULATED_ORDERS, help="How many orders to send")
    ] = 50,
    seed: Annotated[
        int | None, typer.Option(help="Seed for reproducible traffic (default: random)")
    ] = None,
    rate: Annotated[float, typer.Option(min=0.01, max=500.0, help="Orders per second")] = 5.0,
) -> None:
    """Send realistic orders (with fraud patterns) through order reviews."""
    from starters import simulator

    chosen_seed = seed if seed is not None else random.SystemRandom().randrange(1, 100_000)
    settings = get_settings()
    traffic = simulator.generate_traffic(chosen_seed, count, datetime.now(UTC))

    async def main() -> tuple[simulator.SeedReport, simulator.SendReport]:
        from clients.order_review import start_review
        from starters.client import connect

        seeded = await _with_pool(settings, lambda pool: simulator.seed_signals(pool, traffic))
        client = await connect(settings)

        async def start(order: Any) -> bool:
            return (await start_review(client, order, settings.task_queue)).started

        with Progress(
            TextColumn("[bold]sending orders"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            bar = progress.add_task("send", total=len(traffic.orders))
            sent = await simulator.send_orders(
                start, traffic.orders, rate, on_sent=lambda _o, _r: progress.advance(bar)
            )
        # Some orders come back as Stripe / Adyen disputes or early fraud warnings.
        from starters import disputes_simulator

        events = disputes_simulator.generate_dispute_events(
            chosen_seed, [o.order for o in traffic.orders], datetime.now(UTC)
        )
        report = await _with_pool(
            settings,
            lambda pool: disputes_simulator.send_disputes(
                client,
                pool,
                events,
                task_queue=settings.task_queue,
                policy=settings.dispute_policy(),
            ),
        )
        console.print(
            f"disputes sent: stripe {report.stripe} · adyen {report.adyen} · "
            f"early fraud warnings {report.early_fraud_warnings} · failed {report.failed}"
        )
        # Some parcels fail, get lost or arrive damaged.
        from starters import deliveries_simulator

        parcels = deliveries_simulator.generate_parcels(
            chosen_seed, [o.order for o in traffic.orders], datetime.now(UTC)
        )
        parcel_report = await _with_pool(
            settings,
            lambda pool: deliveries_simulator.send_parcels(
                client, pool, parcels, task_queue=settings.task_queue
            ),
        )
        console.print(
            f"parcels shipped: {parcel_report.shipments} · failed deliveries "
            f"{parcel_report.failed_deliveries} · carrier claims {parcel_report.claims}"
        )
        return seeded, sent

    seeded, sent = _run(main())
    console.print(
        f"Seed [bold]{chosen_seed}[/bold] · store seeded with {seeded.histories} customer "
        f"histories, {seeded.list_entries} list entries, {seeded.forwarders} forwarders"
    )
    table = Table(title="Orders sent", title_justify="left")
    table.add_column("Pattern")
    table.add_column("Orders", justify="right")
    generated = traffic.pattern_counts()
    for pattern in simulator.FraudPattern:
        if generated[pattern]:
            table.add_row(pattern.value, str(generated[pattern]))
    console.print(table)
    console.print(
        f"started {sent.started} · already existed {sent.already_existed} · failed {sent.failed}"
    )
    for line in sent.errors[:5]:
        err_console.print(f"[red]{line}[/red]")
    if sent.failed:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - `python -m starters.cli`
    app(prog_name=os.path.basename(sys.argv[0]) or "steward")


if __name__ == "__main__":  # pragma: no cover
    main()
