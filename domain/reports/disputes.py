"""Disputes: outcomes by provider and reason family, win rates by reason and
by evidence completeness, money recovered and lost, and whether answers left
before the safety buffer or a default answered for us. Pure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.reports.model import ReportChart, ReportContent, ReportParams, ReportTable
from domain.reports.stats import rate

NAME = "disputes"
OUTCOMES = ("won", "lost", "accepted", "expired")
DEFAULT_SAFETY_BUFFER_HOURS = 12.0


@dataclass(frozen=True)
class DisputeRow:
    """One dispute opened in the period."""

    provider: str
    dispute_id: str
    reason: str  # the normalised reason family
    status: str
    amount_minor: int
    currency: str
    opened_at: datetime
    due_by: datetime | None = None
    # When our contest or acceptance reached the provider (None: never).
    answered_at: datetime | None = None
    # The last evidence assembly found nothing missing (None: never assembled).
    evidence_complete: bool | None = None
    # The configured default answered, not a person.
    by_default: bool = False


@dataclass(frozen=True)
class DisputesData:
    disputes: list[DisputeRow] = field(default_factory=list)
    safety_buffer_hours: float = DEFAULT_SAFETY_BUFFER_HOURS


def outcome(row: DisputeRow) -> str:
    return row.status if row.status in OUTCOMES else "open"


def win_rate(rows: list[DisputeRow]) -> float | None:
    won = sum(1 for r in rows if r.status == "won")
    decided = sum(1 for r in rows if r.status in ("won", "lost"))
    return rate(won, decided)


def answered_before_buffer(row: DisputeRow, buffer_hours: float) -> bool | None:
    """None when there was no deadline or no answer."""
    if row.due_by is None or row.answered_at is None:
        return None
    return row.answered_at <= row.due_by - timedelta(hours=buffer_hours)


def compute(data: DisputesData, params: ReportParams) -> ReportContent:
    rows = data.disputes
    groups: dict[tuple[str, str], list[DisputeRow]] = defaultdict(list)
    for row in rows:
        groups[(row.provider, row.reason)].append(row)
    columns = ["provider", "reason", "opened", *OUTCOMES, "open", "win_rate"]
    by_provider = ReportTable(
        name="outcomes_by_provider_reason",
        title="Disputes by provider and reason family",
        columns=columns,
        rows=[
            [
                provider,
                reason,
                len(group),
                *(sum(1 for r in group if r.status == o) for o in OUTCOMES),
                sum(1 for r in group if outcome(r) == "open"),
                win_rate(group),
            ]
            for (provider, reason), group in sorted(groups.items())
        ],
    )

    by_reason: dict[str, list[DisputeRow]] = defaultdict(list)
    for row in rows:
        by_reason[row.reason].append(row)
    win_by_reason = ReportTable(
        name="win_rate_by_reason",
        title="Win rate by reason family (won / (won + lost))",
        columns=["reason", "won", "lost", "win_rate"],
        rows=[
            [
                reason,
                sum(1 for r in group if r.status == "won"),
                sum(1 for r in group if r.status == "lost"),
                win_rate(group),
            ]
            for reason, group in sorted(by_reason.items())
        ],
    )

    def completeness(row: DisputeRow) -> str:
        if row.evidence_complete is None:
            return "not_assembled"
        return "complete" if row.evidence_complete else "incomplete"

    by_evidence: dict[str, list[DisputeRow]] = defaultdict(list)
    for row in rows:
        by_evidence[completeness(row)].append(row)
    win_by_evidence = ReportTable(
        name="win_rate_by_evidence",
        title="Win rate by evidence completeness",
        columns=["evidence", "disputes", "won", "lost", "win_rate"],
        rows=[
            [
                key,
                len(group),
                sum(1 for r in group if r.status == "won"),
                sum(1 for r in group if r.status == "lost"),
                win_rate(group),
            ]
            for key, group in sorted(by_evidence.items())
        ],
    )

    money: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        totals = money[row.currency]
        totals[0] += row.amount_minor
        if row.status == "won":
            totals[1] += row.amount_minor
        elif row.status in ("lost", "accepted", "expired"):
            totals[2] += row.amount_minor
    amounts = ReportTable(
        name="amounts",
        title="Amounts disputed, recovered (won) and lost (lost, accepted, expired), minor units",
        columns=["currency", "disputed_minor", "recovered_minor", "lost_minor"],
        rows=[[c, *t] for c, t in sorted(money.items())],
    )

    with_deadline = [r for r in rows if r.due_by is not None]
    answered = [r for r in with_deadline if r.answered_at is not None]
    in_time = [r for r in answered if answered_before_buffer(r, data.safety_buffer_hours)]
    defaults = [r for r in rows if r.by_default]
    compliance = ReportTable(
        name="deadline_compliance",
        title=f"Deadline compliance (safety buffer {data.safety_buffer_hours:g} h)",
        columns=[
            "with_deadline",
            "answered",
            "answered_before_buffer",
            "compliance_rate",
            "defaults_taken",
        ],
        rows=[
            [
                len(with_deadline),
                len(answered),
                len(in_time),
                rate(len(in_time), len(with_deadline)),
                len(defaults),
            ]
        ],
    )

    reasons = sorted(by_reason)
    chart = ReportChart(
        name="outcomes_by_reason",
        title="Dispute outcomes by reason family",
        categories=reasons,
        series={
            o: [float(sum(1 for r in by_reason[reason] if outcome(r) == o)) for reason in reasons]
            for o in (*OUTCOMES, "open")
        },
        y_label="disputes",
    )
    return ReportContent(
        headline={
            "opened": len(rows),
            **{o: sum(1 for r in rows if r.status == o) for o in OUTCOMES},
            "win_rate": win_rate(rows),
            "defaults_taken": len(defaults),
        },
        tables=[by_provider, win_by_reason, win_by_evidence, amounts, compliance],
        charts=[chart],
    )
