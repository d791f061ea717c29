"""`steward reports catalogue|run|list|show|download` (issue 19).

Registered on the main `steward` app in starters/cli.py. Every command goes
through the HTTP API (`/v1/reports`) with the caller's API key (manager or
ops to run, those and finance or auditor to read); what is typed is checked
before anything is contacted.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from datetime import time as day_start
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from pydantic import BaseModel
from rich.table import Table

from domain.reports.runs import ReportRunRow, RunStatus
from starters.case_cli import api_get, api_post, console, fail

reports_app = typer.Typer(
    help="Reports: the catalogue, run one over a period, list runs, download files.",
    no_args_is_help=True,
)


class CatalogueEntry(BaseModel):
    name: str
    title: str
    audience: str
    description: str


class RunStarted(BaseModel):
    workflow_id: str
    run_id: str
    report: str


def parse_moment(value: str, timezone: str, *, flag: str) -> datetime:
    """`2026-11-23` (midnight in `timezone`) or an ISO date-time; a date-time
    without an offset is read in `timezone` too."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(
            f"unknown time zone {timezone!r}", param_hint="--timezone"
        ) from None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), day_start(0), tzinfo=zone)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "expected a date (2026-11-23) or a date-time (2026-11-23T06:00+01:00)",
            param_hint=flag,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def runs_table(runs: list[ReportRunRow]) -> Table:
    table = Table(show_lines=False)
    # The run id whole (folded, never cut): `show` and `download` take it.
    table.add_column("run", overflow="fold", min_width=36)
    table.add_column("report")
    table.add_column("from, to (UTC)", no_wrap=True)
    for column in ("filters", "status", "files"):
        table.add_column(column)
    style = {RunStatus.SUCCEEDED: "green", RunStatus.FAILED: "red", RunStatus.RUNNING: "yellow"}
    for run in runs:
        filters = ", ".join(x for x in (run.market, run.channel) if x) or "all"
        attempts = f" ({run.attempts} attempts)" if run.attempts > 1 else ""
        table.add_row(
            run.run_id,
            run.report,
            f"{run.period_from:%Y-%m-%d %H:%M}\n{run.period_to:%Y-%m-%d %H:%M}",
            filters,
            f"[{style[run.status]}]{run.status.value}[/]{attempts}",
            str(len(run.files)),
        )
    return table


@reports_app.command("catalogue")
def catalogue() -> None:
    """The reports Steward produces."""
    entries = api_get("/v1/reports/catalogue", list[CatalogueEntry])
    table = Table()
    for column in ("name", "title", "for", "what"):
        table.add_column(column)
    for entry in entries:
        table.add_row(entry.name, entry.title, entry.audience, entry.description)
    console.print(table)


@reports_app.command("run")
def run(
    name: Annotated[
        str, typer.Argument(help="fraud, disputes, service_levels, returns, deliveries")
    ],
    period_from: Annotated[str, typer.Option("--from", help="First day (included) or date-time")],
    period_to: Annotated[
        str, typer.Option("--to", help="Day or date-time the period ends (excluded)")
    ],
    market: Annotated[str | None, typer.Option(help="One market, e.g. FR")] = None,
    channel: Annotated[str | None, typer.Option(help="One sales channel, e.g. web")] = None,
    timezone: Annotated[str, typer.Option(help="Where days begin (IANA name)")] = "UTC",
    distribute: Annotated[bool, typer.Option(help="Also send it to the distribution list")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the run and print its files")] = True,
    wait_seconds: Annotated[float, typer.Option(min=1, max=600)] = 120.0,
) -> None:
    """Run one report now over [--from, --to) (through the API: manager or ops key)."""
    start = parse_moment(period_from, timezone, flag="--from")
    end = parse_moment(period_to, timezone, flag="--to")
    if end <= start:
        raise typer.BadParameter("must be after --from", param_hint="--to")
    started = api_post(
        f"/v1/reports/{name}/runs",
        {
            "period_from": start.isoformat(),
            "period_to": end.isoformat(),
            "market": market,
            "channel": channel,
            "timezone": timezone,
            "distribute": distribute,
        },
        RunStarted,
    )
    console.print(f"started {started.report} run {started.run_id} ({started.workflow_id})")
    if not wait:
        return
    deadline = time.monotonic() + wait_seconds
    while True:
        runs = api_get("/v1/reports", list[ReportRunRow], {"workflow_id": started.workflow_id})
        mine = [r for r in runs if r.run_id == started.run_id]
        if mine and mine[0].status is not RunStatus.RUNNING:
            break
        if time.monotonic() > deadline:
            fail(
                f"run {started.run_id} not finished after {wait_seconds:g} s; "
                "see `steward reports list`"
            )
        time.sleep(0.5)
    _print_run(mine[0])
    if mine[0].status is RunStatus.FAILED:
        raise typer.Exit(1)


def _print_run(run: ReportRunRow) -> None:
    console.print(runs_table([run]))
    if run.error:
        console.print(f"[red]{run.error}[/]")
    for key, value in run.headline.items():
        console.print(f"  {key}: {value}")
    for file in run.files:
        console.print(f"  /v1/reports/{run.run_id}/files/{file.name}  ({file.bytes} bytes)")


@reports_app.command("list")
def list_runs(
    report: Annotated[str | None, typer.Option(help="Only this report")] = None,
    status: Annotated[RunStatus | None, typer.Option(help="running, succeeded or failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """Report runs, newest first."""
    runs = api_get(
        "/v1/reports",
        list[ReportRunRow],
        {"report": report, "status": status.value if status else None, "limit": limit},
    )
    console.print(runs_table(runs))


@reports_app.command("show")
def show(run_id: Annotated[str, typer.Argument()]) -> None:
    """One run: its figures and files."""
    _print_run(api_get(f"/v1/reports/{run_id}", ReportRunRow))


@reports_app.command("download")
def download(
    run_id: Annotated[str, typer.Argument()],
    out: Annotated[Path, typer.Option(help="Directory to write the files into")] = Path("."),
    file: Annotated[str | None, typer.Option(help="Only this file (e.g. report.html)")] = None,
) -> None:
    """Download a run's files (the page, CSV tables, PNG charts)."""
    from starters.api_client import cli_client, cli_errors, error_for

    run = api_get(f"/v1/reports/{run_id}", ReportRunRow)
    names = [f.name for f in run.files if file is None or f.name == file]
    if not names:
        fail(f"run {run_id} has no file {file}" if file else f"run {run_id} has no files")
    target = out / run_id
    target.mkdir(parents=True, exist_ok=True)
    with cli_errors(), cli_client() as api:
        for name in names:
            response = api._http.get(f"/v1/reports/{run_id}/files/{name}")
            if not response.is_success:
                raise error_for(response, api_url=api.base_url)
            (target / name).write_bytes(response.content)
            console.print(f"{target / name}")
