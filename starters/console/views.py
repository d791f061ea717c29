"""What the console's templates show, computed without I/O: the work queue's
rows, a case page's facts, the decision forms a role may use, and the masking
of personal data.

Templates only print what these functions return, so the rules (which role
sees which form, what is masked, what is overdue) are unit-tested here
(tests/unit/test_console_views.py) and the templates stay dumb.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from domain.audit import AuditRow, CaseRow
from domain.common import Role, format_amount
from domain.payments import LedgerTotals
from domain.tasks import TaskRow

# ------------------------------------------------------------------ masking

_EMAIL = re.compile(r"^([^@\s]{1,64})@([^@\s]+)$")


def mask_email(value: str | None) -> str:
    """camille.durand@example.fr -> c•••••@example.fr: enough to recognise, not to write."""
    if not value:
        return "—"
    match = _EMAIL.match(value.strip())
    if match is None:
        return "•••"
    return f"{match.group(1)[0]}•••••@{match.group(2)}"


def mask_phone(value: str | None) -> str:
    """+33 6 12 34 56 78 -> •••••••78: the last two digits only."""
    digits = re.sub(r"\D", "", value or "")
    if len(digits) < 4:
        return "—" if not digits else "•••"
    return "•" * 7 + digits[-2:]


def address_text(address: Any) -> str:
    """One line of an address, for the cases whose decision needs it."""
    parts = [
        getattr(address, name, None)
        for name in ("line1", "line2", "postal_code", "city", "country")
    ]
    return ", ".join(str(p) for p in parts if p)


# ---------------------------------------------------------------- the queue

PROCESS_LABELS = {
    "order-review": "Order review",
    "return": "Return",
    "failed-delivery": "Failed delivery",
    "carrier-claim": "Carrier claim",
    "chargeback": "Chargeback",
    "fulfilment": "Fulfilment",
    "ops-request": "Ops request",
    "campaign": "Campaign",
    "privacy-request": "Privacy request",
}


def process_label(process: str) -> str:
    return PROCESS_LABELS.get(process, process.replace("-", " ").capitalize())


def humanize(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {rest // 60:02d}m"
    return f"{rest // 60}m"


def case_url(workflow_id: str) -> str:
    return f"/console/cases/{quote(workflow_id, safe=':')}"


@dataclass(frozen=True)
class QueueRow:
    task_id: str
    process: str
    process_label: str
    case_id: str
    url: str
    title: str
    market: str
    awaited_role: str
    due_at: str
    due_text: str
    overdue: bool
    escalated: bool


def queue_rows(
    tasks: Sequence[TaskRow],
    markets: dict[str, str | None],
    now: datetime,
    *,
    process: str | None = None,
    market: str | None = None,
) -> list[QueueRow]:
    """Open tasks by due time (the most urgent first), filtered by process and market."""
    rows = []
    for task in sorted(tasks, key=lambda t: (t.due_at, -t.priority, t.task_id)):
        task_market = markets.get(task.workflow_id) or ""
        if process and task.process != process:
            continue
        if market and task_market != market:
            continue
        delta = task.due_at - now
        overdue = delta.total_seconds() < 0
        rows.append(
            QueueRow(
                task_id=task.task_id,
                process=task.process,
                process_label=process_label(task.process),
                case_id=task.case_id,
                url=case_url(task.workflow_id),
                title=task.title,
                market=task_market or "—",
                awaited_role=task.awaited_role.value,
                due_at=task.due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                due_text=f"overdue {humanize(delta)}" if overdue else f"in {humanize(delta)}",
                overdue=overdue,
                escalated=task.escalated,
            )
        )
    return rows


# ------------------------------------------------------------ decision forms


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str  # select | text | textarea | number | checkbox
    choices: tuple[Choice, ...] = ()
    required: bool = False
    hint: str = ""
    placeholder: str = ""


@dataclass(frozen=True)
class DecisionForm:
    """One form on a case page; `action` names the decision the console applies."""

    action: str
    title: str
    submit: str
    fields: tuple[FormField, ...]


def _choices(values: Sequence[Any]) -> tuple[Choice, ...]:
    return tuple(Choice(str(v.value), str(v.value).replace("_", " ")) for v in values)


# A required select of the later forms starts blank, so a decision is never
# taken by submitting the first option unread (the browser and the API both
# refuse the blank).
BLANK = Choice("", "— choose —")


def _pick(values: Sequence[Any]) -> tuple[Choice, ...]:
    return (BLANK, *_choices(values))


def decision_forms(process: str, status: str, role: Role, state: Any = None) -> list[DecisionForm]:
    """The decisions `role` may take on a case of `process` in `status`, as
    the API allows them (the workflow still has the last word). `state`, the
    case's live state, narrows some forms (the holds this role may release,
    a pending QC, an open escalation)."""
    from domain.chargeback import ResponseAction
    from domain.deliveries import DeliveryDecision, ServiceLevel
    from domain.returns import QcGrade, QcOutcome
    from domain.review import DecisionReason, ReviewDecision
    from starters.api.routes_order_review import HUMAN_REASONS

    deciders = (Role.COORDINATOR, Role.MANAGER)
    note = FormField("note", "Note for the audit trail", "textarea")
    forms: list[DecisionForm] = []
    if process == "order-review" and status == "awaiting_review" and role in deciders:
        forms.append(
            DecisionForm(
                "order-review-decision",
                "Decide the review",
                "Record decision",
                (
                    FormField(
                        "decision", "Decision", "select", _choices(list(ReviewDecision)), True
                    ),
                    FormField(
                        "reason_code",
                        "Reason",
                        "select",
                        _choices([r for r in DecisionReason if r in HUMAN_REASONS]),
                        True,
                    ),
                    FormField(note.name, note.label, note.kind, hint="Required to decline."),
                ),
            )
        )
    if process == "return" and status == "manual_qc" and role in deciders:
        forms.append(
            DecisionForm(
                "return-qc-decision",
                "Manual QC",
                "Record QC decision",
                (
                    FormField("grade", "Grade", "select", _choices(list(QcGrade)), True),
                    FormField(
                        "outcome",
                        "Outcome (not first choice)",
                        "select",
                        (Choice("", "—"), *_choices(list(QcOutcome))),
                    ),
                    FormField(
                        "partial_refund_minor",
                        "Partial refund (minor units)",
                        "number",
                        hint="partial_refund only",
                    ),
                    FormField("reason", "Reason", "textarea", required=True),
                ),
            )
        )
    if process == "return" and status == "awaiting_finance" and role is Role.FINANCE:
        forms.append(
            DecisionForm(
                "return-finance-approval",
                "Finance approval (four eyes)",
                "Record approval",
                (
                    FormField(
                        "approved",
                        "Approve the refund",
                        "select",
                        (Choice("true", "approve"), Choice("false", "refuse")),
                        True,
                    ),
                    FormField(note.name, note.label, note.kind, hint="Required to refuse."),
                ),
            )
        )
    if process == "failed-delivery" and status == "awaiting_decision" and role in deciders:
        forms.append(
            DecisionForm(
                "failed-delivery-decision",
                "Reship or return to stock",
                "Record decision",
                (
                    FormField(
                        "decision", "Decision", "select", _choices(list(DeliveryDecision)), True
                    ),
                    FormField(
                        "service_level", "Service level", "select", _choices(list(ServiceLevel))
                    ),
                    FormField("pickup_point_id", "Pickup point (reship)", "text"),
                    note,
                ),
            )
        )
    if process == "chargeback" and status == "awaiting_coordinator" and role in deciders:
        forms.append(
            DecisionForm(
                "chargeback-response",
                "Contest or accept",
                "Send response",
                (
                    FormField(
                        "response", "Response", "select", _choices(list(ResponseAction)), True
                    ),
                    FormField("note", "Note (sent to the provider when contesting)", "textarea"),
                    *(
                        (
                            FormField(
                                "override_missing_evidence",
                                "Contest although evidence is missing (managers)",
                                "checkbox",
                            ),
                        )
                        if role is Role.MANAGER
                        else ()
                    ),
                ),
            )
        )
    # A dispute Steward could not tie to an order waits for a coordinator to link it.
    unlinked = state is not None and getattr(state, "order_id", "") is None
    if process == "chargeback" and unlinked and role in deciders and status not in CLOSED_DISPUTES:
        forms.append(
            DecisionForm(
                "chargeback-link",
                "Link the dispute to its order",
                "Link order",
                (
                    FormField("order_id", "Order id", "text", required=True),
                    FormField("note", "How the order was found", "textarea"),
                ),
            )
        )
    forms += _fulfilment_forms(process, status, role, state)
    forms += _ops_request_forms(process, status, role, state)
    forms += _campaign_forms(process, status, role, state)
    forms += _privacy_request_forms(process, status, role)
    return forms


CLOSED_DISPUTES = frozenset({"won", "lost", "expired", "accepted"})
ISO_HINT = "ISO 8601 with its offset, e.g. 2026-12-03T10:00+01:00"


def _fulfilment_forms(process: str, status: str, role: Role, state: Any) -> list[DecisionForm]:
    from domain.fulfilment import (
        DEFAULT_HOLD_RELEASER_ROLES,
        HOLD_PLACER_ROLES,
        HOLD_RELEASER_ROLES,
        LEFT_WAREHOUSE,
        QC_DECIDER_ROLES,
        QC_ESCALATED_ROLES,
        FulfilmentStatus,
        HoldReason,
        QcOutcome,
        SpecialDeliveryKind,
    )

    if process != "fulfilment" or status not in {s.value for s in FulfilmentStatus}:
        return []
    if FulfilmentStatus(status) in LEFT_WAREHOUSE:
        return []
    note = FormField("note", "Note for the audit trail", "textarea")
    forms: list[DecisionForm] = []
    if role in HOLD_PLACER_ROLES:
        forms.append(
            DecisionForm(
                "fulfilment-place-hold",
                "Place a hold",
                "Place hold",
                (FormField("reason", "Reason", "select", _pick(list(HoldReason)), True), note),
            )
        )
    holds = [h for h in getattr(state, "holds", []) if h.active]
    releasable = [
        h for h in holds if role in HOLD_RELEASER_ROLES.get(h.reason, DEFAULT_HOLD_RELEASER_ROLES)
    ]
    if releasable:
        forms.append(
            DecisionForm(
                "fulfilment-release-hold",
                "Release a hold",
                "Release hold",
                (
                    FormField(
                        "handle",
                        "Hold",
                        "select",
                        tuple(
                            Choice(h.handle, f"{h.handle} ({_enum(h.reason)})")
                            for h in holds
                            if h in releasable
                        ),
                        True,
                    ),
                    note,
                ),
            )
        )
    if role in HOLD_PLACER_ROLES:
        forms.append(
            DecisionForm(
                "fulfilment-change-address",
                "Change the shipping address",
                "Change address",
                (
                    FormField("line1", "Address line 1", "text", required=True),
                    FormField("line2", "Address line 2", "text"),
                    FormField("postal_code", "Postal code", "text", required=True),
                    FormField("city", "City", "text", required=True),
                    FormField("region", "Region", "text"),
                    FormField(
                        "country", "Country (ISO code)", "text", required=True, placeholder="FR"
                    ),
                    FormField(
                        note.name,
                        note.label,
                        note.kind,
                        hint="From packing on, the carrier is asked to intercept the parcel.",
                    ),
                ),
            )
        )
        forms.append(
            DecisionForm(
                "fulfilment-special-delivery",
                "Special delivery",
                "Arrange delivery",
                (
                    FormField("kind", "Kind", "select", _pick(list(SpecialDeliveryKind)), True),
                    FormField("window_start", "Window start (timed)", "text", hint=ISO_HINT),
                    FormField("window_end", "Window end (timed)", "text", hint=ISO_HINT),
                    FormField("carrier", "Carrier (named carrier)", "text"),
                    FormField("service", "Service (named carrier)", "text"),
                    FormField("store_id", "Store (collect in store)", "text"),
                    note,
                ),
            )
        )
    qc = getattr(state, "qc", None)
    qc_held = any(_enum(h.reason) == HoldReason.OUTBOUND_QC.value for h in holds)
    escalated = bool(getattr(state, "escalated", False))
    qc_roles = QC_ESCALATED_ROLES if escalated else QC_DECIDER_ROLES
    if qc is not None and qc_held and role in qc_roles:
        outcomes = [QcOutcome.PASS, QcOutcome.FAIL]
        if escalated:
            outcomes += [QcOutcome.CANCEL_REFUND, QcOutcome.WAIT]
        forms.append(
            DecisionForm(
                "fulfilment-qc-decision",
                "Outbound QC decision",
                "Record QC decision",
                (
                    FormField("outcome", "Outcome", "select", _pick(outcomes), True),
                    FormField(
                        "checklist",
                        "Checklist checked (one item per line)",
                        "textarea",
                        hint="Required for a pass.",
                    ),
                    FormField("serial_number", "Serial number", "text"),
                    FormField("photo_refs", "Photo references (one per line)", "textarea"),
                    FormField(note.name, note.label, note.kind, hint="Required for a fail."),
                ),
            )
        )
    return forms


def _ops_request_forms(process: str, status: str, role: Role, state: Any) -> list[DecisionForm]:
    from domain.ops_request import (
        DESK_ROLES,
        RESOLVER_ROLES,
        InventoryResolution,
        OpsRequestType,
        OutcomeCode,
        RootCause,
    )

    if process != "ops-request" or status == "resolved":
        return []
    forms: list[DecisionForm] = []
    if status != "awaiting_finance":
        forms += _ops_desk_forms(role, state)
    escalated = status == "escalated"
    if role in DESK_ROLES and status != "awaiting_finance":
        forms.append(
            DecisionForm(
                "ops-request-assign",
                "Assign",
                "Assign",
                (
                    FormField(
                        "to", "Assign to", "text", hint="A colleague's name; empty: the queue."
                    ),
                    FormField("reason", "Reason", "textarea"),
                ),
            )
        )
    if role in RESOLVER_ROLES and not escalated and status != "awaiting_finance":
        forms.append(
            DecisionForm(
                "ops-request-escalate",
                "Escalate to the senior QA coordinator",
                "Escalate",
                (
                    FormField("summary", "Summary", "textarea", required=True),
                    FormField("tried", "What was tried", "textarea", required=True),
                    FormField("blocker", "Blocker", "textarea", required=True),
                    FormField("needed_from", "Needed from", "text", required=True),
                    FormField("needed_what", "Needed what", "textarea", required=True),
                    FormField(
                        "next_check_at", "Next check at", "text", required=True, hint=ISO_HINT
                    ),
                ),
            )
        )
    if escalated and role is Role.MANAGER:
        forms.append(
            DecisionForm(
                "ops-request-answer",
                "Answer the escalation",
                "Send answer",
                (FormField("note", "Answer", "textarea", required=True),),
            )
        )
    if status == "awaiting_finance" and role is Role.FINANCE:
        forms.append(
            DecisionForm(
                "ops-request-write-off",
                "Write-off approval (four eyes)",
                "Record approval",
                (
                    FormField(
                        "approved",
                        "Approve the write-off",
                        "select",
                        (BLANK, Choice("true", "approve"), Choice("false", "refuse")),
                        True,
                    ),
                    FormField("note", "Note for the audit trail", "textarea"),
                ),
            )
        )
    if (
        role in RESOLVER_ROLES
        and status != "awaiting_finance"
        and (not escalated or role is Role.MANAGER)
    ):
        inventory = _enum(getattr(state, "type", "")) == OpsRequestType.INVENTORY_DISCREPANCY
        forms.append(
            DecisionForm(
                "ops-request-resolve",
                "Resolve",
                "Resolve",
                (
                    FormField("outcome", "Outcome", "select", _pick(list(OutcomeCode)), True),
                    FormField("root_cause", "Root cause", "select", _pick(list(RootCause)), True),
                    *(
                        (
                            FormField(
                                "inventory",
                                "Inventory resolution",
                                "select",
                                (Choice("", "—"), *_choices(list(InventoryResolution))),
                                hint="Required to resolve a discrepancy as done.",
                            ),
                        )
                        if inventory
                        else ()
                    ),
                    FormField("note", "Note for the audit trail", "textarea"),
                ),
            )
        )
    return forms


def _ops_desk_forms(role: Role, state: Any) -> list[DecisionForm]:
    """Claim, reprioritise and (an inventory discrepancy) record the recount:
    the desk's roles, while the request is open and not with finance."""
    from domain.ops_request import DESK_ROLES, OpsRequestType, Priority

    if role not in DESK_ROLES:
        return []
    forms = [
        DecisionForm("ops-request-claim", "Take the request", "Claim", ()),
        DecisionForm(
            "ops-request-reprioritise",
            "Change the priority",
            "Reprioritise",
            (
                FormField(
                    "priority",
                    "Priority",
                    "select",
                    _pick(list(Priority)),
                    True,
                    hint="The SLA and the due time follow.",
                ),
                FormField("reason", "Reason", "textarea", required=True),
            ),
        ),
    ]
    if _enum(getattr(state, "type", "")) == OpsRequestType.INVENTORY_DISCREPANCY:
        forms.append(
            DecisionForm(
                "ops-request-recount",
                "Record the warehouse's recount",
                "Record recount",
                (FormField("counted_quantity", "Counted quantity", "number", required=True),),
            )
        )
    return forms


def _campaign_forms(process: str, status: str, role: Role, state: Any) -> list[DecisionForm]:
    if process != "campaign":
        return []
    forms = _campaign_preparer_forms(status, role) + _campaign_request_forms(status, role, state)
    if role is not Role.MANAGER:
        return forms
    return forms + _campaign_manager_forms(status)


def _campaign_request_forms(status: str, role: Role, state: Any) -> list[DecisionForm]:
    """A collaborator's gift or after-sales request: its owner role (or a
    manager) ships it or refuses it, while the campaign runs."""
    from domain.campaign import RequestOutcome

    if status in ("reconciled", "cancelled") or role not in (Role.COORDINATOR, Role.MANAGER):
        return []
    open_requests = [
        r
        for r in dict(getattr(state, "requests", None) or {}).values()
        if r.outcome is None and role in (r.owner_role, Role.MANAGER)
    ]
    if not open_requests:
        return []
    return [
        DecisionForm(
            "campaign-request-resolution",
            "Resolve a collaborator's request",
            "Record resolution",
            (
                FormField(
                    "request_id",
                    "Request",
                    "select",
                    tuple(
                        Choice(
                            r.request_id, f"{r.request_id} ({_enum(r.kind)}, due {_when(r.due_at)})"
                        )
                        for r in sorted(open_requests, key=lambda r: r.due_at)
                    ),
                    True,
                ),
                FormField("outcome", "Outcome", "select", _pick(list(RequestOutcome)), True),
                FormField("reason", "Reason", "textarea", hint="Required to refuse."),
            ),
        )
    ]


def _campaign_preparer_forms(status: str, role: Role) -> list[DecisionForm]:
    """Submit the draft for validation; cancel before the sale opens
    (coordinator or manager, as the API's `Preparer`)."""
    if role not in (Role.COORDINATOR, Role.MANAGER):
        return []
    forms: list[DecisionForm] = []
    if status == "draft":
        forms.append(DecisionForm("campaign-submit", "Submit for validation", "Submit", ()))
    if status in ("draft", "validating", "awaiting_approval", "scheduled"):
        forms.append(
            DecisionForm(
                "campaign-cancel",
                "Cancel the campaign (before its sale opens)",
                "Cancel campaign",
                (FormField("reason", "Reason", "textarea", required=True),),
            )
        )
    return forms


def _campaign_manager_forms(status: str) -> list[DecisionForm]:
    reason = FormField("reason", "Reason", "textarea")
    if status == "awaiting_approval":
        return [
            DecisionForm(
                "campaign-approval",
                "Approve the campaign (four eyes)",
                "Record approval",
                (
                    FormField(
                        "approve",
                        "Decision",
                        "select",
                        (BLANK, Choice("true", "approve"), Choice("false", "refuse")),
                        True,
                    ),
                    FormField(
                        "acknowledge_warnings", "I have read the validation warnings", "checkbox"
                    ),
                    FormField(reason.name, reason.label, reason.kind, hint="Required to refuse."),
                ),
            )
        ]
    if status in ("scheduled", "open"):
        return [
            DecisionForm(
                "campaign-close-now",
                "Close the sale now",
                "Close now",
                (FormField("reason", "Reason", "textarea", required=True),),
            ),
            DecisionForm(
                "campaign-window",
                "Close early or extend",
                "Change closing time",
                (
                    FormField(
                        "closes_local",
                        "New closing time (the campaign's local time)",
                        "text",
                        required=True,
                        placeholder="2026-12-03T18:00",
                        hint="Earlier than now planned: an early close; later: an extension.",
                    ),
                    reason,
                ),
            ),
        ]
    return []


def _privacy_request_forms(process: str, status: str, role: Role) -> list[DecisionForm]:
    from domain.privacy_request import PRIVACY_ROLES, VerifyDecision

    if process != "privacy-request" or status != "awaiting_verification":
        return []
    if role not in PRIVACY_ROLES:
        return []
    return [
        DecisionForm(
            "privacy-request-verification",
            "Verify the requester",
            "Record verification",
            (
                FormField("decision", "Decision", "select", _pick(list(VerifyDecision)), True),
                FormField(
                    "reason",
                    "How the identity was checked (or why not)",
                    "textarea",
                    required=True,
                ),
            ),
        )
    ]


def task_forms(
    tasks: Sequence[TaskRow], role: Role, *, process_running: bool
) -> list[DecisionForm]:
    """Close a task no process will close (docs/tasks.md): a handed-off kind
    (a reversed capture, a failed step write...) at any time, any other task
    once its process no longer runs; only the role it awaits (the API checks
    both again)."""
    from domain.task_resolution import HANDED_OFF_KINDS, TaskResolutionOutcome

    open_tasks = [
        t
        for t in tasks
        if t.closed_at is None
        and t.awaited_role is role
        and (t.kind in HANDED_OFF_KINDS or not process_running)
    ]
    if not open_tasks:
        return []
    return [
        DecisionForm(
            "task-resolution",
            "Resolve a task no process will close",
            "Resolve task",
            (
                FormField(
                    "task_id",
                    "Task",
                    "select",
                    tuple(Choice(t.task_id, f"{t.title} ({t.kind})") for t in open_tasks),
                    True,
                ),
                FormField("outcome", "Outcome", "select", _pick(list(TaskResolutionOutcome)), True),
                FormField(
                    "reason",
                    "What was done or found",
                    "textarea",
                    required=True,
                    hint="Kept in the audit log. Nothing moves money here.",
                ),
            ),
        )
    ]


# ---------------------------------------------------------------- case page


@dataclass
class CaseView:
    workflow_id: str
    process: str
    process_label: str
    case_id: str
    status: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    waiting_for: str = ""
    due: str = ""
    money: list[tuple[str, str]] = field(default_factory=list)
    evidence: list[tuple[str, str]] = field(default_factory=list)
    history: list[tuple[str, str, str, str]] = field(default_factory=list)
    timeline: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    forms: list[DecisionForm] = field(default_factory=list)
    # Pages served through the session: (label, console URL).
    links: list[tuple[str, str]] = field(default_factory=list)
    temporal_url: str = ""


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _enum(value: Any) -> str:
    return str(getattr(value, "value", value))


def _money(amount: int | None, currency: str | None) -> str:
    return format_amount(amount, currency) if amount is not None and currency else "—"


def _state_facts(process: str, state: BaseModel) -> list[tuple[str, str]]:
    """The facts a coordinator needs, per process; no personal data but the
    address of a failed delivery (its decision is about where to ship) and the
    customer's own words answering a review or a failed delivery (put back
    from the personal-data store by the route; an erased one reads
    [erased])."""
    s: Any = state
    facts: list[tuple[str, str]] = []
    if process == "order-review":
        facts.append(("Market", s.market))
        if s.risk is not None:
            facts.append(
                ("Risk", f"{s.risk.score} ({_enum(s.risk.band)}) → {_enum(s.risk.routing)}")
            )
            facts.append(
                ("Reasons", ", ".join(_enum(r) for r in s.risk.reason_codes) or "no risk signal")
            )
        if s.hard_deadline is not None:
            facts.append(("Hard deadline", _when(s.hard_deadline)))
        for d in s.decisions:
            facts.append(
                ("Decision", f"{_enum(d.decision)} by {d.actor} ({_enum(d.role)}): "
                 f"{_enum(d.reason_code)}")
            )  # fmt: skip
        for a in s.customer_answers:
            said = "confirmed" if a.confirmed else "did not confirm"
            words = f": {a.message}" if a.message else ""
            facts.append(("Customer answer", f"{said} ({a.channel}){words}"))
    elif process == "return":
        facts += [
            ("Order", f"{s.order_id} · {s.market}"),
            ("Items", ", ".join(f"{line.quantity} x {line.sku}" for line in s.lines)),
            ("Reason", f"{_enum(s.reason)} ({_enum(s.parent_reason)})"),
            ("Customer wants", _enum(s.resolution)),
        ]
        if s.refund_requested_by:
            facts.append(("Refund requested by", s.refund_requested_by))
        if s.manual_qc is not None:
            m = s.manual_qc
            facts.append(("Manual QC", f"{_enum(m.grade)} by {m.actor}: {m.reason}"))
        if s.finance_approval is not None:
            f = s.finance_approval
            facts.append(("Finance", f"{'approved' if f.approved else 'refused'} by {f.actor}"))
        if s.disposition:
            facts.append(("Disposition", _enum(s.disposition)))
        for refusal in s.refusals:
            facts.append(("Refused", refusal))
        if s.cancel_reason:
            # Read back from the personal-data store by the route (issue 21).
            facts.append(("Customer's reason for cancelling", s.cancel_reason))
    elif process == "failed-delivery":
        facts += [
            ("Order", s.order_id),
            ("Parcel", f"{s.carrier} {s.tracking_number} · attempt {s.attempt}"),
            ("Options offered", ", ".join(_enum(o) for o in s.options_offered) or "—"),
            (
                "Customer answer",
                _enum(s.customer_reply.option) if s.customer_reply else "no answer",
            ),
        ]
        if s.customer_reply is not None and s.customer_reply.address is not None:
            facts.append(("New address", address_text(s.customer_reply.address)))
        if s.customer_reply is not None and s.customer_reply.message:
            facts.append(("Customer message", s.customer_reply.message))
        if s.recommendation is not None:
            facts.append(
                ("Recommendation", f"{_enum(s.recommendation.decision)}: "
                 f"{'; '.join(s.recommendation.reasons)}")
            )  # fmt: skip
        if s.decision is not None:
            facts.append(("Decision", f"{_enum(s.decision.decision)} by {s.decision.actor}"))
    elif process == "carrier-claim":
        facts += [
            ("Type", _enum(s.claim_type)),
            ("Order", f"{s.order_id} · shipment {s.shipment_id}"),
            ("File by", _when(s.file_by)),
            ("Filed", s.claim_reference or "not yet"),
        ]
    elif process == "chargeback":
        facts += [
            ("Order", s.order_id or "unknown to Steward"),
            ("Reason", _enum(s.reason)),
            ("Stage", _enum(s.stage)),
            ("Provider deadline", _when(s.due_by)),
        ]
        for d in s.decisions:
            facts.append(("Decision", f"{_enum(d.action)} by {d.actor} ({_enum(d.role)})"))
    return facts + _more_facts(process, s)


def _more_facts(process: str, s: Any) -> list[tuple[str, str]]:
    """Fulfilment, ops request, campaign and privacy request: what their
    decisions need; no address, no requester's email, no free text from
    customers (those stay in the personal-data store)."""
    facts: list[tuple[str, str]] = []
    if process == "fulfilment":
        facts += [
            ("Order", f"{s.order_id} · {s.market} · site {s.site}"),
            ("Destination", s.destination_country),
        ]
        active = [h for h in s.holds if h.active]
        facts.append(
            (
                "Active holds",
                "; ".join(f"{h.handle} ({_enum(h.reason)}) by {h.placed_by}" for h in active)
                or "none",
            )
        )
        for h in s.holds:
            if not h.active:
                facts.append(("Released hold", f"{h.handle} by {h.released_by}"))
        if s.special_delivery is not None:
            d = s.special_delivery
            detail = ", ".join(
                str(v)
                for v in (
                    _when(d.window_start) if d.window_start else None,
                    _when(d.window_end) if d.window_end else None,
                    d.carrier,
                    d.service,
                    d.store_id,
                )
                if v
            )
            facts.append(("Special delivery", f"{_enum(d.kind)} {detail} by {d.set_by}".strip()))
        for change in s.address_changes:
            facts.append(
                (
                    "Address change",
                    f"{_enum(change.outcome)} by {change.actor} "
                    f"({change.country_before} → {change.country_after})",
                )
            )
        if s.carrier or s.tracking_number:
            facts.append(("Parcel", f"{s.carrier or ''} {s.tracking_number or ''}".strip()))
        if s.cancel_reason:
            facts.append(("Cancelled", s.cancel_reason))
    elif process == "ops-request":
        facts += [
            ("Type", f"{_enum(s.type)} · priority {_enum(s.priority)}"),
            ("Requested by", f"{s.requester} via {_enum(s.channel)}"),
            ("Market", s.market + (f" · site {s.site_id}" if s.site_id else "")),
            ("Order", s.order_id or "—"),
            ("Assignee", s.assignee or "the queue"),
        ]
        # Issue 21: the requester's words, read back from the personal-data
        # store by the route (clients/ops_request.py with_request_texts).
        if getattr(s, "qc_reason", None):
            facts.append(("What to check", s.qc_reason))
        if getattr(s, "description", None):
            facts.append(("Requester's note", s.description))
        for e in s.escalations:
            answered = f"answered by {e.answered_by}" if e.answered_by else "open"
            facts.append(
                ("Escalation", f"{e.summary} · needs {e.needed_what} from {e.needed_from} "
                 f"· by {e.escalated_by} · {answered}")
            )  # fmt: skip
        if s.answer:
            facts.append(("Answer", s.answer))
        if s.write_off_minor is not None:
            facts.append(("Write-off (minor units)", str(s.write_off_minor)))
            if s.status == "awaiting_finance" and s.resolution is not None:
                # Four eyes: finance sees who proposed it (they may not approve).
                facts.append(("Write-off proposed by", s.resolution.resolved_by))
        if s.finance_approved_by:
            facts.append(("Write-off approved by", s.finance_approved_by))
        if s.resolution is not None:
            r = s.resolution
            facts.append(
                ("Resolution", f"{_enum(r.outcome)} ({_enum(r.root_cause)}) by {r.resolved_by}")
            )
        if s.linked_cases:
            facts.append(("Linked cases", ", ".join(s.linked_cases)))
    elif process == "campaign":
        facts += [
            ("Name", s.name),
            ("Timezone", s.timezone),
            ("Opens", _when(s.schedule.opens_at)),
            ("Closes", _when(s.schedule.closes_at)),
            ("Prepared by", ", ".join(s.prepared_by) or "—"),
            ("Approved by", s.approved_by or "not yet"),
        ]
        if s.report is not None:
            facts.append(
                ("Validation", f"{len(s.report.errors)} error(s), "
                 f"{len(s.report.warnings)} warning(s)")
            )  # fmt: skip
        if s.requests:
            facts.append(("Requests", str(len(s.requests))))
        for r in s.requests.values():
            # The collaborator's words, read back from the personal-data
            # store (clients/campaign.py with_request_texts; erased: [erased]).
            words = getattr(r, "description", None)
            if words is not None:
                status = _enum(r.outcome) if r.outcome else f"open, due {_when(r.due_at)}"
                facts.append(
                    (f"Request {r.request_id}", f"{_enum(r.kind)} from {r.employee_id} "
                     f"({status}): {words}")
                )  # fmt: skip
        if s.discrepancies:
            facts.append(("Discrepancies", str(len(s.discrepancies))))
        if s.cancelled_reason:
            facts.append(("Cancelled", s.cancelled_reason))
    elif process == "privacy-request":
        facts += [
            ("Kind", f"{_enum(s.kind)} · {_enum(s.jurisdiction)}"),
            ("Received", _when(s.received_at)),
            ("Answer due (statutory)", _when(s.sla_due_at)),
            ("Subjects", f"{s.subjects} · erased {s.erased} · retained {s.retained}"),
        ]
        if s.verification is not None:
            facts.append(("Verification", f"{_enum(s.verification)} by {s.verified_by}"))
        for hold in s.holds:
            until = f" until {_when(hold.until)}" if hold.until else ""
            facts.append(("Legal hold", f"{_enum(hold.kind)} {hold.reference}{until}"))
        if s.answered_at is not None:
            facts.append(("Answered", _when(s.answered_at)))
    return facts


def _evidence(process: str, state: BaseModel) -> list[tuple[str, str]]:
    s: Any = state
    if process == "fulfilment" and s.qc is not None:
        qc = s.qc
        items = [
            ("QC rules", f"{qc.rule_set_version}: {', '.join(qc.reasons)}"),
            ("QC outcome", f"{_enum(qc.outcome)} by {qc.decided_by}" if qc.outcome else "pending"),
        ]
        if qc.checklist:
            items.append(("Checklist", ", ".join(qc.checklist)))
        if qc.serial_number:
            items.append(("Serial number", qc.serial_number))
        return items
    if process == "campaign" and s.report is not None:
        return [(f"{_enum(i.severity)}: {i.field}", i.reason) for i in s.report.issues]
    if process == "return" and s.qc is not None:
        return [("3PL QC", f"{_enum(s.qc.grade)} {s.qc.notes}".strip())]
    if process == "chargeback":
        items = [
            (_enum(i.kind), ("✓ " if i.available else "✗ ") + i.summary) for i in s.evidence.items
        ]
        if s.missing_evidence:
            items.append(("missing", ", ".join(s.missing_evidence)))
        return items
    if process == "carrier-claim":
        return [("documents", ", ".join(d.kind for d in s.documents) or "—")]
    return []


def case_links(
    process: str, case_id: str, status: str, role: Role, state: Any
) -> list[tuple[str, str]]:
    """An access request's export, once ready, for the roles that handle
    privacy requests (the API's export route checks both again)."""
    from domain.privacy_request import PRIVACY_ROLES

    if (
        process == "privacy-request"
        and status == "exported"
        and _enum(getattr(state, "kind", "")) == "access"
        and role in PRIVACY_ROLES
    ):
        return [
            (
                "Open the access export",
                f"/console/privacy-requests/{quote(case_id, safe='')}/export",
            )
        ]
    return []


def case_view(
    *,
    workflow_id: str,
    process: str,
    case_id: str,
    role: Role,
    row: CaseRow | None,
    state: BaseModel | None,
    totals: LedgerTotals | None,
    audit: Sequence[AuditRow],
    temporal_ui: str,
    namespace: str,
    tasks: Sequence[TaskRow] = (),
    process_running: bool = True,
) -> CaseView:
    s: Any = state
    status = _enum(s.status) if s is not None else (row.status if row else "unknown")
    view = CaseView(
        workflow_id=workflow_id,
        process=process,
        process_label=process_label(process),
        case_id=case_id,
        status=status,
    )
    if s is not None:
        view.facts = _state_facts(process, s)
        view.evidence = _evidence(process, s)
        view.history = [
            (_when(h.at), _enum(h.status), h.actor, h.reason) for h in getattr(s, "history", [])
        ]
    awaited = getattr(s, "awaited_role", None) if s is not None else None
    due = getattr(s, "due_at", None) if s is not None else None
    if s is None and row is not None:
        awaited, due = row.awaited_role, row.due_at
    view.waiting_for = _enum(awaited) if awaited else "nobody"
    view.due = _when(due) if due else ""
    # An order review's amount is what the provider authorised upstream.
    amount = "Authorised" if process == "order-review" else "Amount"
    if row is not None and row.amount_minor is not None:
        view.money.append((amount, _money(row.amount_minor, row.currency)))
    elif s is not None and getattr(s, "amount_minor", None) is not None:
        view.money.append((amount, _money(s.amount_minor, s.currency)))
    if totals is not None and totals.currency:
        view.money += [
            ("Captured", _money(totals.captured_minor, totals.currency)),
            ("Refunded", _money(totals.refunded_minor, totals.currency)),
        ]
        if totals.refund_pending_minor:
            view.money.append(
                ("Refund pending", _money(totals.refund_pending_minor, totals.currency))
            )
        if totals.voided:
            view.money.append(("Authorisation", "voided"))
    view.timeline = [
        (
            a.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            a.actor,
            a.role.value,
            a.action,
            a.reason or "",
        )
        for a in audit
    ]
    view.forms = decision_forms(process, status, role, s)
    view.forms += task_forms(tasks, role, process_running=process_running)
    view.links = case_links(process, case_id, status, role, s)
    view.temporal_url = (
        f"{temporal_ui}/namespaces/{quote(namespace)}/workflows/{quote(workflow_id, safe='')}"
    )
    return view


__all__ = [
    "CaseView",
    "DecisionForm",
    "QueueRow",
    "case_links",
    "case_view",
    "decision_forms",
    "mask_email",
    "mask_phone",
    "queue_rows",
    "task_forms",
]
