"""`steward`: run the stack, and work the queues from a terminal.

Two kinds of commands. Operator commands (`up`, `worker`, `api`, `migrate`,
`simulate`, `returns simulate`) run or feed the servers and reach Temporal and
PostgreSQL directly with the process settings. Every command that reads cases
or decides (`tasks`, `audit`, and the process groups) goes through the HTTP
API with an API key (`steward login`, or STEWARD_API_KEY; starters/api_client.py):
the actor and role are the key's, never a flag. Everything a person types is
validated before anything is contacted, so a typo gets a clear message and
changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from domain.audit import AuditRow
from domain.common import Role
from domain.tasks import TaskRow
from starters.campaign_cli import campaigns_app
from starters.carrier_claim_cli import carrier_claim_app
from starters.case_cli import (
    RetiredActor,
    RetiredFlagsGroup,
    RetiredRole,
    api_get,
    console,
    due_text,
    err_console,
    fail,
    humanize_delta,
    parse_order_id,
    run_command,
    valid_list,
)
from starters.chargeback_cli import chargeback_app
from starters.failed_delivery_cli import failed_delivery_app
from starters.fulfilment_cli import orders_app, qc_app
from starters.ops_request_cli import ops_app
from starters.order_review_cli import order_review_app
from starters.privacy_request_cli import personal_data_app, privacy_request_app
from starters.reports_cli import reports_app
from starters.returns_cli import returns_app
from starters.risk_cli import risk_app
from starters.tasks_cli import tasks_app
from workers.settings import Settings, get_settings

_T = TypeVar("_T")

# Re-exported: the CLI's formatting helpers, as tests and scripts know them.
__all__ = ["app", "due_text", "humanize_delta", "main"]

app = typer.Typer(
    name="steward",
    cls=RetiredFlagsGroup,
    help="Steward: durable back-office processes for luxury e-commerce, on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
# One group per process, named after it (as its client module, API routes
# and docs page are). The groups' first names stay as hidden aliases, so a
# script written against them keeps working.
for group, name, old_name in (
    (order_review_app, "order-review", "review"),
    (returns_app, "returns", None),
    (failed_delivery_app, "failed-delivery", "deliveries"),
    (carrier_claim_app, "carrier-claim", "claims"),
    (chargeback_app, "chargeback", "disputes"),
    # Employee special sales (issue 18).
    (campaigns_app, "campaigns", None),
    # Fulfilment (issue 16): the order in the warehouse, and outbound QC.
    (orders_app, "orders", None),
    (qc_app, "qc", None),
    # The operations desk (issue 17).
    (ops_app, "ops", None),
    # Reports and KPIs (issue 19).
    (reports_app, "reports", None),
    # Privacy requests and the personal-data keys (issue 21).
    (privacy_request_app, "privacy-request", None),
    (personal_data_app, "personal-data", None),
    # What the risk rules read: lists, forwarders, customer history (issue 15).
    (risk_app, "risk", None),
):
    app.add_typer(group, name=name)
    if old_name is not None:
        app.add_typer(group, name=old_name, hidden=True)

MAX_SIMULATED_ORDERS = 100_000
# How long `simulate` waits for reviews to release or cancel their orders
# before shipping the released ones.
SHIP_WAIT_SECONDS = 30.0


@app.callback()
def _find_running_stack(ctx: typer.Context) -> None:
    # Every command but `up` talks to the stack `steward up` runs under the
    # data dir, on the ports it recorded (starters/stack_file.py), unless the
    # environment says otherwise.
    if ctx.invoked_subcommand != "up" and not ctx.resilient_parsing:
        from starters.stack_file import use_running_stack

        if use_running_stack() is not None:
            get_settings.cache_clear()


# ------------------------------------------------------------- validation


def parse_role(value: str | None) -> Role | None:
    if value is None:
        return None
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise typer.BadParameter(
            f"unknown role {value!r}; valid roles: {valid_list([r.value for r in Role])}"
        ) from None


# ---------------------------------------------------------------- running


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
        fail(str(err))


@app.command()
def migrate() -> None:
    """Apply the store's schema migrations to DATABASE_URL, then exit (production one-shot)."""
    from store.migrate import apply_migrations
    from workers.logging import configure_logging
    from workers.personal_keys import prepare_personal_data

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)

    async def main() -> list[str]:
        async def migrate_and_seal(pool: Any) -> list[str]:
            applied = await apply_migrations(pool)
            # Personal data a migration moved gets encrypted now (issue 21).
            await prepare_personal_data(settings, pool)
            return applied

        return await _with_pool(settings, migrate_and_seal)

    applied = run_command(main())
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
    from workers.personal_keys import prepare_personal_data
    from workers.worker import run_worker

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    # The Temporal SDK's metrics (issue 19), before the first client connects.
    from workers.metrics import install_worker_runtime

    install_worker_runtime(settings)

    async def main() -> None:
        stop = _stop_event_on_signals()
        client = await connect(settings)
        pool = await create_pool(settings.database_dsn)
        try:
            # Idempotent and serialised by an advisory lock: safe from every worker.
            await apply_migrations(pool)
            await prepare_personal_data(settings, pool)
            await run_worker(client, pool, settings, stop)
        finally:
            await pool.close()

    run_command(main(), long_running=True)


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
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=port or settings.api_port,
        log_config=None,  # keep the structlog JSON set-up
        access_log=False,  # the app logs every request itself, with the actor
        server_header=False,
    )


@tasks_app.callback(invoke_without_command=True)
def tasks(
    ctx: typer.Context,
    awaiting: Annotated[
        str | None,
        typer.Option(
            "--awaiting",
            help="Tasks awaiting this role (default: your key's role)",
            callback=parse_role,
        ),
    ] = None,
    assignee: Annotated[str | None, typer.Option(help="Only tasks assigned to this person")] = None,
    process: Annotated[
        str | None, typer.Option(help="Only this process, e.g. order-review")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many")] = 50,
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """The work queue for your key's role: open tasks, soonest deadline first."""
    if ctx.invoked_subcommand is not None:
        return  # `steward tasks resolve ...`
    params = {"role": awaiting, "assignee": assignee, "process": process, "limit": limit}
    rows = api_get("/v1/tasks", list[TaskRow], params)
    if not rows:
        console.print("[green]No open tasks.[/green]")
        return
    console.print(tasks_table(rows, datetime.now(UTC)))


# `steward tasks` lists; `steward tasks resolve` closes a task no process closes.
app.add_typer(tasks_app, name="tasks")


@app.command()
def audit(
    order_id: Annotated[
        str, typer.Argument(help="The order id", metavar="ORDER_ID", callback=parse_order_id)
    ],
) -> None:
    """The whole decision path of an order: who did what, when and why."""
    rows = api_get(f"/v1/audit/{order_id}", list[AuditRow])
    if not rows:
        fail(f"no audit entries for order {order_id}")
    console.print(audit_table(order_id, rows))


@app.command()
def login(
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", help="The API (default: the running stack's, or 8400)"),
    ] = None,
) -> None:
    """Store your API key for the other commands (asked for, never echoed;
    checked against the API; kept 0600 in your config directory)."""
    from starters.api_client import (
        ApiClient,
        Credentials,
        cli_errors,
        credentials_path,
        resolve_api_url,
        write_credentials,
    )

    key = typer.prompt("API key", hide_input=True).strip()
    if not key:
        fail("no key given", code=2)
    url = (api_url or resolve_api_url()).rstrip("/")
    with cli_errors(), ApiClient(url, key) as api:
        me = api.whoami()
    path = write_credentials(credentials_path(), Credentials(api_key=key, api_url=api_url))
    console.print(
        f"signed in as [bold]{me['actor']}[/bold] ({me['role']}) at {url}; key stored in {path}"
    )


@app.command()
def logout() -> None:
    """Forget the stored API key."""
    from starters.api_client import credentials_path, remove_credentials

    path = credentials_path()
    console.print(f"removed {path}" if remove_credentials(path) else "no stored key")


@app.command()
def whoami() -> None:
    """The actor and role of the API key the commands use."""
    from starters.api_client import cli_client, cli_errors

    with cli_errors(), cli_client() as api:
        me = api.whoami()
        console.print(f"{me['actor']} ({me['role']}) at {api.base_url}")


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
    """Send realistic orders (with fraud patterns) through order reviews, then
    what follows them: coordinators' decisions, disputes and their outcomes,
    the warehouse, parcels with failed deliveries and claims, returns and ops
    desk requests (enough for every report: docs/reports.md)."""
    from starters import simulator
    from starters.simulation import run_simulation
    from workers.personal_keys import configure_personal_data

    chosen_seed = seed if seed is not None else random.SystemRandom().randrange(1, 100_000)
    settings = get_settings()
    # The orders' personal values and the parcels' addresses go to the
    # personal-data store (issue 21): this process needs its keyring.
    configure_personal_data(settings)
    traffic = simulator.generate_traffic(chosen_seed, count, datetime.now(UTC))

    async def main() -> tuple[simulator.SeedReport, simulator.SendReport]:
        from starters.client import connect

        client = await connect(settings)

        async def simulate_with(pool: Any) -> tuple[simulator.SeedReport, simulator.SendReport]:
            with Progress(
                TextColumn("[bold]sending orders"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                bar = progress.add_task("send", total=len(traffic.orders))
                report = await run_simulation(
                    client,
                    pool,
                    settings,
                    traffic,
                    seed=chosen_seed,
                    rate=rate,
                    ship_wait_seconds=SHIP_WAIT_SECONDS,
                    on_sent=lambda _o, _r: progress.advance(bar),
                    say=console.print,
                )
            return report.seeded, report.sent

        return await _with_pool(settings, simulate_with)

    seeded, sent = run_command(main())
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
