"""`steward ops list|queue|show|open|claim|assign|escalate|answer|resolve|export`:
the ops desk from a terminal.

Registered on the main `steward` app in starters/cli.py. Every command goes
through the HTTP API (`/v1/ops-requests`) with the caller's API key: who acts,
and in which role, is the key's, never a flag. Everything typed is validated
before anything is contacted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.ops_request import (
    InventoryResolution,
    OpsRequestDraft,
    OpsRequestState,
    OpsRequestStatus,
    OpsRequestType,
    OpsRequestView,
    OutcomeCode,
    Priority,
    RootCause,
)
from starters.case_cli import api_get, api_post, console, due_text, fail, parse_key, status_style
from store.ops_requests import OpsRequestRow, as_csv

ops_app = typer.Typer(
    help="The ops desk: requests from chat, the API and here; claim, assign, escalate, resolve.",
    no_args_is_help=True,
)

PATH = "/v1/ops-requests"


def _choice(value: str | None, allowed: type[Any], what: str) -> str | None:
    if value is None:
        return None
    names = [m.value for m in allowed]
    if value not in names:
        raise typer.BadParameter(f"{value!r} is not a {what} (valid: {', '.join(names)})")
    return value


def _rows_table(rows: list[OpsRequestRow], title: str) -> Table:
    table = Table(title=title)
    for column in ("request", "type", "priority", "status", "assignee", "due", "site/order"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.request_id,
            row.type.replace("_", " "),
            row.priority,
            Text(row.status, style=status_style(row.status)),
            row.assignee or "-",
            due_text(row.due_at, datetime.now(UTC))
            if row.due_at and row.status != "resolved"
            else "-",
            row.site_id or row.order_id or "-",
        )
    return table


@ops_app.command("list")
def list_requests(
    type: Annotated[str | None, typer.Option(help="address_change, cctv_retrieval...")] = None,
    status: Annotated[str | None, typer.Option(help="open, assigned, escalated...")] = None,
    assignee: Annotated[str | None, typer.Option(help="a coordinator")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="unresolved only")] = False,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 50,
) -> None:
    """Ops requests, most recently opened first."""
    params = {
        "type": _choice(type, OpsRequestType, "request type"),
        "status": _choice(status, OpsRequestStatus, "status"),
        "assignee": assignee,
        "open": open_only or None,
        "limit": limit,
    }
    rows = api_get(PATH, list[OpsRequestRow], params)
    console.print(_rows_table(rows, f"Ops requests ({len(rows)})"))


@ops_app.command("queue")
def queue(
    assignee: Annotated[str | None, typer.Option(help="one coordinator's queue")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """The work queue: open requests by priority, then business-time due."""
    rows = api_get(f"{PATH}/queue", list[OpsRequestRow], {"assignee": assignee, "limit": limit})
    console.print(_rows_table(rows, f"Ops queue ({len(rows)})"))


@ops_app.command("show")
def show(request_id: Annotated[str, typer.Argument(callback=parse_key)]) -> None:
    """One request: its state, actions, linked cases, escalations."""
    state = api_get(f"{PATH}/{request_id}", OpsRequestView)
    console.print(render(state))


def render(state: OpsRequestState) -> Panel:
    lines = [
        Text.assemble(
            (state.status, status_style(state.status)),
            f" · {state.type.replace('_', ' ')} · {state.priority} · ",
            f"requested by {state.requester} via {state.channel}",
        ),
        Text(f"assignee: {state.assignee or '- (queue)'}"),
    ]
    if state.due_at and state.status is not OpsRequestStatus.RESOLVED:
        lines.append(
            Text.assemble(
                "due: ",
                due_text(state.due_at, datetime.now(UTC)),
                f" ({state.sla} of business time)",
            )
        )
    if state.order_id or state.site_id:
        lines.append(Text(f"order: {state.order_id or '-'}  site: {state.site_id or '-'}"))
    if state.answer:
        lines.append(Text(f"answer: {state.answer}"))
    if isinstance(state, OpsRequestView):
        # The requester's words, read back from the personal-data store.
        if state.qc_reason:
            lines.append(Text(f"what to check: {state.qc_reason}"))
        if state.description:
            lines.append(Text(f"note: {state.description}"))
    for action in state.actions:
        mark = "✓" if action.ok else "✗"
        lines.append(
            Text(
                f"{mark} {action.at:%Y-%m-%d %H:%M} {action.kind} {action.reference} "
                f"{action.linked_case or ''} {action.note}".rstrip()
            )
        )
    for escalation in state.escalations:
        lines.append(
            Text(
                f"escalated by {escalation.escalated_by}: {escalation.blocker} "
                f"(needs {escalation.needed_from}); "
                + (f"answered by {escalation.answered_by}" if escalation.answered_by else "open")
            )
        )
    if state.resolution:
        r = state.resolution
        lines.append(
            Text(
                f"resolved {r.outcome} / {r.root_cause} by {r.resolved_by}; "
                f"SLA {'met' if state.sla_met else 'missed'}"
            )
        )
    return Panel(Group(*lines), title=f"Ops request {state.request_id}")


@ops_app.command("open")
def open_request(
    type: Annotated[str, typer.Argument(help="the request type, e.g. order_status")],
    details: Annotated[
        list[str] | None, typer.Argument(help="the type's fields as name=value")
    ] = None,
    priority: Annotated[str, typer.Option(help="urgent, high, normal, low")] = "normal",
    note: Annotated[str, typer.Option(help="what the desk should know")] = "",
) -> None:
    """Open a request: `steward ops open order_status order_id=FR-1`."""
    _choice(type, OpsRequestType, "request type")
    _choice(priority, Priority, "priority")
    fields: dict[str, Any] = {"type": type}
    for item in details or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not name=value")
        if name.startswith("address."):
            fields.setdefault("address", {})[name.removeprefix("address.")] = value
        elif name in ("affected_order_ids", "linked_workflow_ids"):
            fields[name] = [v for v in value.split(",") if v]
        else:
            fields[name] = value
    body = {"details": fields, "priority": priority, "description": note}
    try:
        OpsRequestDraft.model_validate(body)
    except ValidationError as err:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()))
    from starters.api_client import cli_client, cli_errors

    with cli_errors(), cli_client() as api:
        opened = api.request("POST", PATH, json_body=body, params={"channel": "cli"})
    console.print(f"opened [bold]{opened['request_id']}[/bold]")


def _decide(request_id: str, action: str, body: dict[str, Any] | None) -> None:
    state = api_post(f"{PATH}/{request_id}/{action}", body, OpsRequestState)
    console.print(render(state))


@ops_app.command("claim")
def claim(request_id: Annotated[str, typer.Argument(callback=parse_key)]) -> None:
    """Take a request."""
    _decide(request_id, "claim", None)


@ops_app.command("assign")
def assign(
    request_id: Annotated[str, typer.Argument(callback=parse_key)],
    to: Annotated[
        str | None, typer.Option(help="a colleague; leave out: back to the queue")
    ] = None,
    reason: Annotated[str, typer.Option()] = "",
) -> None:
    """Reassign to a colleague, or back to the queue."""
    _decide(request_id, "assign", {"to": to, "reason": reason})


@ops_app.command("reprioritise")
def reprioritise(
    request_id: Annotated[str, typer.Argument(callback=parse_key)],
    priority: Annotated[str, typer.Argument(help="urgent, high, normal, low")],
    reason: Annotated[str, typer.Option()] = "",
) -> None:
    """Change a request's priority (its SLA and due time follow)."""
    _choice(priority, Priority, "priority")
    if not reason.strip():
        raise typer.BadParameter("--reason is required", param_hint="--reason")
    _decide(request_id, "reprioritise", {"priority": priority, "reason": reason})


@ops_app.command("escalate")
def escalate(
    request_id: Annotated[str, typer.Argument(callback=parse_key)],
    summary: Annotated[str, typer.Option(help="what this is about")],
    tried: Annotated[str, typer.Option(help="what was tried")],
    blocker: Annotated[str, typer.Option(help="what blocks")],
    needed_from: Annotated[str, typer.Option(help="who must act")],
    needed_what: Annotated[str, typer.Option(help="what is needed from them")],
    next_check: Annotated[str, typer.Option(help="ISO date-time with offset")],
) -> None:
    """Escalate to the senior QA coordinator with a structured update."""
    try:
        when = datetime.fromisoformat(next_check)
    except ValueError:
        raise typer.BadParameter("not an ISO date-time", param_hint="--next-check") from None
    if when.tzinfo is None:
        raise typer.BadParameter("give an offset (Z, +01:00)", param_hint="--next-check")
    _decide(
        request_id,
        "escalate",
        {
            "summary": summary,
            "tried": tried,
            "blocker": blocker,
            "needed_from": needed_from,
            "needed_what": needed_what,
            "next_check_at": when.isoformat(),
        },
    )


@ops_app.command("answer")
def answer(
    request_id: Annotated[str, typer.Argument(callback=parse_key)],
    note: Annotated[str, typer.Option(help="the senior QA coordinator's answer")],
) -> None:
    """Answer an escalation (manager key): the request returns to its owner."""
    _decide(request_id, "escalation-answer", {"note": note})


@ops_app.command("resolve")
def resolve(
    request_id: Annotated[str, typer.Argument(callback=parse_key)],
    outcome: Annotated[str, typer.Option(help="done, answered, not_possible, duplicate...")],
    root_cause: Annotated[str, typer.Option(help="customer_request, carrier_issue...")],
    note: Annotated[str, typer.Option()] = "",
    inventory: Annotated[
        str | None, typer.Option(help="found, mis_pick, adjusted (inventory discrepancies)")
    ] = None,
) -> None:
    """Resolve: runs the fulfilment action of the type (address change...)."""
    _choice(outcome, OutcomeCode, "outcome")
    _choice(root_cause, RootCause, "root cause")
    _choice(inventory, InventoryResolution, "inventory resolution")
    _decide(
        request_id,
        "resolve",
        {"outcome": outcome, "root_cause": root_cause, "note": note, "inventory": inventory},
    )


@ops_app.command("cover")
def cover(
    coordinator: Annotated[str, typer.Argument(help="the absent coordinator")],
    to: Annotated[str | None, typer.Option(help="a colleague; leave out: the queue")] = None,
    reason: Annotated[str, typer.Option()] = "",
) -> None:
    """Move an absent coordinator's open requests and tasks."""
    from starters.api_client import cli_client, cli_errors

    with cli_errors(), cli_client() as api:
        result = api.post(
            f"{PATH}/absences", {"coordinator": coordinator, "cover": to, "reason": reason}
        )
    console.print(
        f"moved {len(result['requests_moved'])} request(s) and "
        f"{len(result['tasks_moved'])} task(s) to {to or 'the queue'}"
    )


@ops_app.command("export")
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="the CSV file")],
    type: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 5000,
) -> None:
    """The CSV export (type, opened, first response, resolved, business hours, SLA...)."""
    _choice(type, OpsRequestType, "request type")
    rows = api_get(PATH, list[OpsRequestRow], {"type": type, "limit": limit})
    text = as_csv(rows)
    output.write_text(text)
    console.print(f"wrote {len(rows)} request(s) to {output}")


@ops_app.command("simulate")
def simulate(
    requests: Annotated[int, typer.Option(min=1, max=5000, help="requests in the day")] = 120,
    seconds_per_hour: Annotated[
        float, typer.Option(min=0, max=3600, help="real seconds per desk hour")
    ] = 2.0,
    seed: Annotated[int, typer.Option()] = 17,
) -> None:
    """A realistic day of chat requests through the signed Slack endpoint."""
    import asyncio

    import httpx

    from starters.api_client import cli_client, cli_errors
    from starters.ops_simulator import DayReport, signing_secret, simulate_day
    from workers.settings import get_settings

    with cli_errors(), cli_client() as api:
        reviews = api.get("/v1/order-reviews", {"limit": 200})
        base_url = api.base_url
    orders = [row["case_id"] for row in reviews]
    secret = signing_secret(get_settings())

    async def day() -> DayReport:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            return await simulate_day(
                http,
                secret,
                requests=requests,
                orders=orders,
                seed=seed,
                seconds_per_hour=seconds_per_hour,
            )

    report = asyncio.run(day())
    acks = sorted(report.ack_ms)
    p95 = acks[int(len(acks) * 0.95) - 1] if acks else 0.0
    console.print(
        f"sent {report.sent} signed Slack commands: {report.opened} opened, "
        f"{report.refused} answered with a refusal; acknowledgement p95 {p95:.0f} ms, "
        f"max {acks[-1] if acks else 0:.0f} ms"
    )
    console.print(", ".join(f"{kind} {n}" for kind, n in report.kinds.most_common()))
