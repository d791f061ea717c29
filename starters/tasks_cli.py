"""`steward tasks`: the work queue (the group's own command, starters/cli.py)
and `steward tasks resolve`, which closes a task no process will close
(docs/tasks.md). Through the API with your key: the actor and role are the
key's; the API refuses a task of a running process, or of another role."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from domain.task_resolution import MAX_REASON_LENGTH, TaskResolution, TaskResolutionOutcome
from starters.case_cli import api_post, console, valid_list

tasks_app = typer.Typer(
    help="The work queue for your key's role; `resolve` closes a task no process will close.",
    no_args_is_help=False,
    rich_markup_mode="rich",
)


def _outcome(value: str) -> str:
    try:
        return TaskResolutionOutcome(value.strip().lower()).value
    except ValueError:
        raise typer.BadParameter(
            f"unknown outcome {value!r}; valid outcomes: "
            f"{valid_list([o.value for o in TaskResolutionOutcome])}"
        ) from None


def _reason(value: str) -> str:
    text = value.strip()
    if not text:
        raise typer.BadParameter("a resolution needs a reason (what was done or found)")
    if len(text) > MAX_REASON_LENGTH:
        raise typer.BadParameter(f"at most {MAX_REASON_LENGTH} characters")
    return text


def _task_id(value: str) -> str:
    text = value.strip()
    if not text or len(text) > 500 or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise typer.BadParameter(f"{value!r} is not a task id (as `steward tasks` lists it)")
    return text


@tasks_app.command()
def resolve(
    task_id: Annotated[
        str,
        typer.Argument(
            help="The task id, as `steward tasks` lists it",
            metavar="TASK_ID",
            callback=_task_id,
        ),
    ],
    outcome: Annotated[
        str,
        typer.Option(
            help=f"What became of it: {', '.join(o.value for o in TaskResolutionOutcome)}",
            callback=_outcome,
        ),
    ],
    reason: Annotated[
        str, typer.Option(help="What was done or found (kept in the audit)", callback=_reason)
    ],
) -> None:
    """Close a task no process will close (a payment webhook's or a late
    capture's finance task, a step write's ops task, or one left open by a
    process that ended), as your key's role. Moves no money."""
    # Slashes and colons stay as they are: the API takes the id as a path.
    path = f"/v1/tasks/{quote(task_id, safe='/:')}/resolution"
    answer = api_post(path, {"outcome": outcome, "reason": reason}, TaskResolution)
    task = answer.task
    if answer.resolved_now:
        console.print(
            f"[green]resolved[/green] {task.task_id} ({task.kind}): {task.outcome}, "
            f"by {task.closed_by}"
        )
    else:
        console.print(
            f"[yellow]already resolved[/yellow] {task.task_id} ({task.kind}): {task.outcome}, "
            f"by {task.closed_by}; nothing changed"
        )
