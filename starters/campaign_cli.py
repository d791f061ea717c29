"""`steward campaigns ...`: employee special sales from a terminal.

Every command goes through the HTTP API (`/v1/campaigns`) with the caller's
API key: who prepares, approves or closes, and in which role, is the key's
(four eyes included), never a flag. Registered in starters/cli.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from domain.campaign import CampaignSchedule, CampaignState, CampaignView, RequestView, zone
from domain.common import format_amount
from starters.case_cli import api_get, api_post, fail, parse_order_id

campaigns_app = typer.Typer(
    help="Employee special sales: prepare, import the roster, approve, close, report.",
    no_args_is_help=True,
)
console = Console()

CampaignId = Annotated[str, typer.Argument(help="The campaign id, e.g. ES-2027-06")]


def _id(value: str) -> str:
    return parse_order_id(value)


def _show(state: CampaignState) -> None:
    s = state.schedule
    console.print(f"[bold]{state.campaign_id}[/bold] · {state.name} · [bold]{state.status}[/bold]")
    console.print(
        f"opens {s.opens_at:%Y-%m-%d %H:%M} UTC · closes {s.closes_at:%Y-%m-%d %H:%M} UTC "
        f"({state.timezone})"
    )
    if state.report is not None and not state.report.issues:
        console.print("validation report: no error, no warning")
    elif state.report is not None:
        table = Table("severity", "field", "reason", title="Validation report")
        for issue in state.report.issues:
            table.add_row(issue.severity.value, issue.field, issue.reason)
        console.print(table)
    if state.approved_by:
        console.print(f"approved by {state.approved_by}")
    for d in state.discrepancies:
        console.print(f"[red]{d.kind}[/red] order {d.order_id}: {d.detail}")
    for r in state.requests.values():
        console.print(
            f"request {r.request_id} ({r.kind}) due {r.due_at:%Y-%m-%d %H:%M}: "
            f"{r.outcome or 'open'}{' (escalated)' if r.escalated else ''}"
        )
        if isinstance(r, RequestView) and r.description is not None:
            # GET reads the collaborator's words back (issue 21); markup off:
            # they are the collaborator's, not Rich's.
            console.print(f"  from {r.employee_id}: {r.description}", markup=False)


_DURATION = re.compile(r"^(\d{1,4})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: str, *, option: str) -> timedelta:
    """A duration like 90m, 2h or 3d; anything else exits 2 naming the option."""
    match = _DURATION.match(value.strip())
    if match is None or int(match.group(1)) == 0:
        fail(f"{option}: {value!r} is not a duration like 5m, 2h or 3d", code=2)
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def shifted_window(
    body: dict[str, Any], *, opens_in: timedelta, lasts: timedelta | None, now: datetime
) -> dict[str, Any]:
    """The campaign's body with its window moved to open `opens_in` from now
    (on the minute, local time in its timezone) and last `lasts` (default:
    as long as in the file): a demo sale that opens in a few minutes."""
    try:
        tz = zone(str(body.get("timezone")))
        length = lasts or (
            datetime.fromisoformat(body["closes_local"])
            - datetime.fromisoformat(body["opens_local"])
        )
    except (KeyError, TypeError, ValueError) as err:
        fail(f"the file's timezone, opens_local or closes_local is not usable: {err}", code=2)
    opens = (now + opens_in).astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    if opens < (now + opens_in).astimezone(tz).replace(tzinfo=None):
        opens += timedelta(minutes=1)
    return {
        **body,
        "opens_local": opens.isoformat(),
        "closes_local": (opens + length).isoformat(),
    }


@campaigns_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    campaign_id: Annotated[
        str | None, typer.Option("--id", help="another campaign id than the file's")
    ] = None,
    opens_in: Annotated[
        str | None,
        typer.Option("--opens-in", help="open this long from now instead (5m, 2h, 3d)"),
    ] = None,
    lasts: Annotated[
        str | None, typer.Option("--lasts", help="with --opens-in: how long it stays open")
    ] = None,
) -> None:
    """Prepare a campaign from its parameters (JSON, local times in its timezone).

    `--opens-in 5m --lasts 2h --id ES-DEMO-1` prepares the file's campaign
    to open in five minutes: the first hour's demo sale (docs/campaign.md)."""
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        fail(f"{file}: not a JSON file ({err})", code=2)
    if not isinstance(body, dict):
        fail(f"{file}: not a campaign (a JSON object)", code=2)
    if lasts is not None and opens_in is None:
        fail("--lasts: only with --opens-in", code=2)
    if opens_in is not None:
        body = shifted_window(
            body,
            opens_in=parse_duration(opens_in, option="--opens-in"),
            lasts=parse_duration(lasts, option="--lasts") if lasts else None,
            now=datetime.now(UTC),
        )
    if campaign_id is not None:
        body["campaign_id"] = _id(campaign_id)
    answer = api_post("/v1/campaigns", body, _Created)
    console.print(
        f"campaign {answer.campaign_id} {'prepared' if answer.created else 'already prepared'}: "
        f"opens {answer.schedule.opens_at:%Y-%m-%d %H:%M}, "
        f"closes {answer.schedule.closes_at:%Y-%m-%d %H:%M} (UTC)"
    )


@campaigns_app.command("import-roster")
def import_roster(
    campaign_id: CampaignId,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import the HR roster (UTF-8 CSV): all rows or none, with a report per line."""
    from starters.api_client import cli_client, cli_errors, error_for

    path = f"/v1/campaigns/{_id(campaign_id)}/roster"
    with cli_errors(), cli_client() as api:
        # A CSV body, not JSON: the client's transport, its key and its errors.
        response = api._http.post(
            path, content=file.read_bytes(), headers={"content-type": "text/csv"}
        )
        if not response.is_success:
            raise error_for(response, api_url=api.base_url)
        report: dict[str, Any] = response.json()
    console.print(
        f"roster imported: {report['rows']} rows, {report['eligible']} eligible, "
        f"{report['excluded']} excluded (hash {report['roster_hash'][:12]})"
    )
    for w in report["warnings"]:
        console.print(f"[yellow]line {w['line']}[/yellow] {w['field']}: {w['reason']}")


@campaigns_app.command("submit")
def submit(campaign_id: CampaignId) -> None:
    """Submit the draft for validation."""
    _show(api_post(f"/v1/campaigns/{_id(campaign_id)}/submit", None, CampaignState))


@campaigns_app.command("approve")
def approve(
    campaign_id: CampaignId,
    acknowledge_warnings: Annotated[bool, typer.Option("--acknowledge-warnings")] = False,
    reason: Annotated[str, typer.Option("--reason")] = "",
) -> None:
    """Approve (a manager who did not prepare it)."""
    body = {"approve": True, "acknowledge_warnings": acknowledge_warnings, "reason": reason}
    _show(api_post(f"/v1/campaigns/{_id(campaign_id)}/approval", body, CampaignState))


@campaigns_app.command("refuse")
def refuse(campaign_id: CampaignId, reason: Annotated[str, typer.Option("--reason")]) -> None:
    """Refuse the approval: the campaign goes back to draft."""
    body = {"approve": False, "reason": reason}
    _show(api_post(f"/v1/campaigns/{_id(campaign_id)}/approval", body, CampaignState))


@campaigns_app.command("show")
def show(campaign_id: CampaignId) -> None:
    """A campaign's status, schedule, validation report, discrepancies and requests."""
    _show(api_get(f"/v1/campaigns/{_id(campaign_id)}", CampaignView))


@campaigns_app.command("close")
def close(
    campaign_id: CampaignId,
    at: Annotated[
        str | None, typer.Option("--at", help="local time, e.g. 2027-06-10T18:00 (default: now)")
    ] = None,
    reason: Annotated[str, typer.Option("--reason")] = "",
) -> None:
    """Close the sale early (now, or at a local time)."""
    body: dict[str, Any] = {"reason": reason}
    body.update({"closes_local": at} if at else {"close_now": True})
    _show(api_post(f"/v1/campaigns/{_id(campaign_id)}/window", body, CampaignState))


@campaigns_app.command("extend")
def extend(
    campaign_id: CampaignId,
    until: Annotated[str, typer.Option("--until", help="new local closing time")],
    reason: Annotated[str, typer.Option("--reason")] = "",
) -> None:
    """Extend the sale to a later local closing time."""
    body = {"closes_local": until, "reason": reason}
    _show(api_post(f"/v1/campaigns/{_id(campaign_id)}/window", body, CampaignState))


@campaigns_app.command("cancel")
def cancel(campaign_id: CampaignId, reason: Annotated[str, typer.Option("--reason")]) -> None:
    """Cancel a campaign before its sale opens."""
    _show(api_post(f"/v1/campaigns/{_id(campaign_id)}/cancel", {"reason": reason}, CampaignState))


@campaigns_app.command("report")
def report(
    campaign_id: CampaignId,
    out: Annotated[
        Path | None, typer.Option("--out", help="directory of the post-mortem pack")
    ] = None,
) -> None:
    """Print the campaign's figures and write the post-mortem pack (CSV, PNG)."""
    from starters.campaign_report import write_pack

    campaign = _id(campaign_id)
    answer: dict[str, Any] = api_get(f"/v1/campaigns/{campaign}/report", dict[str, Any])
    figures = answer["figures"]
    currency = figures["currency"]
    table = Table("figure", campaign, *(p["campaign_id"] for p in answer["previous"]))
    for name, render in (
        ("orders", str),
        ("units", str),
        ("revenue_minor", lambda v: format_amount(int(v), currency)),
        ("return_rate", lambda v: f"{float(v):.1%}"),
    ):
        table.add_row(
            name.removesuffix("_minor"),
            render(figures[name]),
            *(render(p.get(name, 0)) for p in answer["previous"]),
        )
    console.print(table)
    for category, rate in figures["sell_through_by_category"].items():
        console.print(f"sell-through {category}: {rate:.1%}")
    for entity, rate in figures["participation_by_entity"].items():
        console.print(f"participation {entity}: {rate:.1%}")
    for path in write_pack(answer, out or Path(f"campaign-report-{campaign}")):
        console.print(f"wrote {path}")


class _Created(BaseModel):
    """The answer of POST /v1/campaigns."""

    campaign_id: str
    created: bool
    schedule: CampaignSchedule
