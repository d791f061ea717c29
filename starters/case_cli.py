"""What the `steward` command groups share: the consoles, one clear line for
a failure, the API calls every reading or deciding command makes (`api_get`,
`api_post`: through starters/api_client.py with the caller's API key, the
answer's errors turned into that line), running an operator command's
coroutine with unreachable servers turned into that line, id parsing, the
refusal of the retired `--as` / `--role` flags, time formatting, and the case
list every process group prints.

Every group validates what was typed before it contacts anything.
"""

from __future__ import annotations

import re
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar, overload

import typer
from pydantic import BaseModel, TypeAdapter
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from domain.audit import CaseRow
from domain.common import format_amount
from workers.settings import get_settings

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)

console = Console()
err_console = Console(stderr=True)

_ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")


# ---------------------------------------------------------------- running


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/bold red] {message}")
    raise typer.Exit(code)


def redact(dsn: str) -> str:
    # postgresql://user:secret@host/db -> postgresql://user:***@host/db
    return re.sub(r"(//[^:/@]+:)[^@]+@", r"\1***@", dsn)


def run_command(coro: Coroutine[Any, Any, _T], *, long_running: bool = False) -> _T:
    """Run `coro`, turning a case error or an unreachable server into one clear line.

    A long-running process (the worker) runs on the configured event loop
    (STEWARD_EVENT_LOOP, uvloop by default); one-shot commands on asyncio's.
    """
    from clients.errors import CaseClosed, CaseNotFound, CaseRefused, CaseUnavailable
    from workers.event_loop import run_on_event_loop

    settings = get_settings()
    try:
        return run_on_event_loop(coro, settings.event_loop if long_running else "asyncio")
    except (CaseNotFound, CaseClosed, CaseUnavailable) as err:
        fail(str(err))
    except CaseRefused as err:
        fail(f"decision refused: {err.message}")
    except (ConnectionError, OSError) as err:
        fail(
            f"cannot reach PostgreSQL at {redact(settings.database_dsn)} ({err}); "
            "is `steward up` running?"
        )
    except RuntimeError as err:
        if "client connect" in str(err).lower():
            fail(f"cannot reach Temporal at {settings.temporal_target}; is `steward up` running?")
        raise


# ------------------------------------------------------------- the API


@overload
def api_get(path: str, answer: type[_M], params: dict[str, Any] | None = None) -> _M: ...
@overload
def api_get(path: str, answer: Any, params: dict[str, Any] | None = None) -> Any: ...
def api_get(path: str, answer: Any, params: dict[str, Any] | None = None) -> Any:
    """GET `path` with the caller's key; the answer validated as `answer`
    (a model, or e.g. list[CaseRow]). Any failure: one red line and exit."""
    from starters.api_client import cli_client, cli_errors

    with cli_errors(), cli_client() as api:
        return TypeAdapter(answer).validate_python(api.get(path, params))


def api_post(
    path: str, body: dict[str, Any] | None, answer: type[_M], params: dict[str, Any] | None = None
) -> _M:
    """POST a decision with the caller's key (actor and role are the key's);
    a refusal (403, 409, 422...) is one red line with the API's reason."""
    from starters.api_client import cli_client, cli_errors

    with cli_errors(), cli_client() as api:
        return answer.model_validate(api.request("POST", path, json_body=body, params=params))


def _retired(flag: str) -> Any:
    def refuse(value: str | None) -> None:
        if value is not None:
            raise typer.BadParameter(
                f"{flag} is gone: who decides, and in which role, comes from your API key "
                "(`steward login`, or STEWARD_API_KEY), never from a flag",
                param_hint=flag,
            )

    return refuse


RETIRED_FLAGS = ("--as", "--role")


class RetiredFlagsGroup(TyperGroup):
    """The `steward` group: `--as` / `--role` anywhere on a command line are
    refused with the reason, on every command (the process groups that came
    after the flags were retired never had them, and say so the same way)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        for arg in args:
            if arg == "--":
                break
            flag = arg.split("=", 1)[0]
            if flag in RETIRED_FLAGS:
                _retired(flag)(arg)
        return super().parse_args(ctx, args)


# Hidden options that only exist to say why they are gone.
RetiredActor = Annotated[
    str | None, typer.Option("--as", hidden=True, callback=_retired("--as"), expose_value=True)
]
RetiredRole = Annotated[
    str | None, typer.Option("--role", hidden=True, callback=_retired("--role"))
]


# ------------------------------------------------------------- validation


def valid_list(values: Sequence[str]) -> str:
    return ", ".join(values)


def parse_order_id(value: str) -> str:
    value = value.strip()
    if not _ORDER_ID.match(value):
        raise typer.BadParameter(
            f"{value!r} is not an order id (letters, digits, '.', '_', '-'; at most 64)"
        )
    return value


def parse_key(value: str) -> str:
    if not _KEY.match(value):
        raise typer.BadParameter(
            f"{value!r} is not a valid id (letters, digits, '.', '_' and '-', up to 64)"
        )
    return value


# ------------------------------------------------------------- formatting


def local_time(dt: datetime | None, *, seconds: bool = False) -> str:
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


def status_style(status: str) -> str:
    return _STYLE.get(status, "cyan")


# -------------------------------------------------------------- case lists


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
            Text(row.status, style=status_style(row.status)),
            row.market or "—",
            amount,
            row.awaited_role or "—",
            row.due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if row.due_at else "—",
            row.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        )
    return table


StatusOption = Annotated[str | None, typer.Option("--status", help="Only cases in this status")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=500)]
