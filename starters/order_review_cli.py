"""`steward order-review show|approve|decline|ask-customer` (also `steward review`).

Registered on the main `steward` app in starters/cli.py. It reads and decides
through the HTTP API (`/v1/order-reviews`) with the caller's API key: who
decides, and in which role, is the key's. Everything typed is validated before
anything is contacted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.review import (
    DecisionReason,
    OrderReviewState,
    ReviewDecision,
)
from starters.case_cli import (
    RetiredActor,
    RetiredRole,
    api_get,
    api_post,
    console,
    due_text,
    fail,
    local_time,
    parse_order_id,
    valid_list,
)

order_review_app = typer.Typer(
    help="Order reviews: show one, approve, decline or ask the customer.",
    no_args_is_help=True,
)

# Codes Steward writes itself; a person never claims them.
RESERVED_REASONS = frozenset({DecisionReason.POLICY_DEFAULT, DecisionReason.AUTOMATIC})
HUMAN_REASONS: tuple[DecisionReason, ...] = tuple(
    r for r in DecisionReason if r not in RESERVED_REASONS
)


def parse_reason(value: str) -> DecisionReason:
    try:
        reason = DecisionReason(value.strip().lower())
    except ValueError:
        raise typer.BadParameter(
            f"unknown reason code {value!r}; valid codes: "
            f"{valid_list([r.value for r in HUMAN_REASONS])}"
        ) from None
    if reason in RESERVED_REASONS:
        raise typer.BadParameter(
            f"{reason.value} is reserved for Steward; valid codes: "
            f"{valid_list([r.value for r in HUMAN_REASONS])}"
        )
    return reason


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
        facts.add_row(
            "Due", Text.assemble(local_time(state.due_at), "  ", due_text(state.due_at, now))
        )
    if state.hard_deadline is not None:
        facts.add_row("Hard deadline", local_time(state.hard_deadline))
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
                local_time(d.decided_at, seconds=True), d.actor, d.role.value, d.decision.value,
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
            history.add_row(local_time(h.at, seconds=True), h.status.value, h.actor, h.reason)
        parts.append(history)
    return Panel(
        Group(*parts),
        title=f"Order review {state.order_id} · {state.market}",
        title_align="left",
        border_style=_STATUS_STYLE.get(state.status.value, "white"),
    )


@order_review_app.command("show")
def review_show(
    order_id: Annotated[
        str, typer.Argument(help="The order id", metavar="ORDER_ID", callback=parse_order_id)
    ],
) -> None:
    """Status, risk, deadlines and decisions of one review."""
    state = api_get(f"/v1/order-reviews/{order_id}", OrderReviewState)
    console.print(review_panel(state, datetime.now(UTC)))


ReasonOption = Annotated[
    str,
    typer.Option(
        "--reason",
        help=f"Reason code: {', '.join(r.value for r in HUMAN_REASONS)}",
        callback=parse_reason,
    ),
]
NoteOption = Annotated[str, typer.Option("--note", help="Free text for the audit trail")]


def _decide(order_id: str, decision: ReviewDecision, reason: str, note: str) -> None:
    if decision is ReviewDecision.DECLINE and not note.strip():
        fail("--note: a decline needs a note for the audit trail", code=2)
    if len(note) > 2000:
        fail("--note: at most 2000 characters", code=2)
    body = {"decision": decision.value, "reason_code": reason, "note": note}
    state = api_post(f"/v1/order-reviews/{order_id}/decision", body, OrderReviewState)
    last = state.decisions[-1] if state.decisions else None
    by = f" by {last.actor} ({last.role.value})" if last is not None else ""
    console.print(
        f"[green]{decision.value}[/green] recorded for order [bold]{order_id}[/bold]{by}; "
        f"status now [bold]{state.status.value}[/bold]"
    )
    console.print(review_panel(state, datetime.now(UTC)))


OrderIdArgument = Annotated[
    str, typer.Argument(help="The order id", metavar="ORDER_ID", callback=parse_order_id)
]


@order_review_app.command("approve")
def review_approve(
    order_id: OrderIdArgument,
    reason: ReasonOption,
    note: NoteOption = "",
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """Approve: capture the payment and release the order to the warehouse."""
    _decide(order_id, ReviewDecision.APPROVE, reason, note)


@order_review_app.command("decline")
def review_decline(
    order_id: OrderIdArgument,
    reason: ReasonOption,
    note: NoteOption = "",
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """Decline: void the authorisation and cancel the order (needs --note)."""
    _decide(order_id, ReviewDecision.DECLINE, reason, note)


@order_review_app.command("ask-customer")
def review_ask_customer(
    order_id: OrderIdArgument,
    reason: ReasonOption,
    note: NoteOption = "",
    actor: RetiredActor = None,
    role: RetiredRole = None,
) -> None:
    """Ask the customer to confirm the order before deciding."""
    _decide(order_id, ReviewDecision.ASK_CUSTOMER, reason, note)


__all__ = ["order_review_app", "review_panel"]
