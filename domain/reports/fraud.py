"""Fraud and cancellations (for management): how orders were routed, who
decided what and why, why orders were cancelled, how long reviews took, and
what fraud cost (chargebacks lost on fraud reasons) with the rule hits that
preceded them. Pure: rows from store/reports.py."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from domain.reports.model import ChartKind, ReportChart, ReportContent, ReportParams, ReportTable
from domain.reports.stats import (
    BUSINESS_NOTE,
    business_hours_between,
    count_by,
    days_of,
    local_day,
    percentile,
    rate,
    rounded,
)

NAME = "fraud"
ROUTINGS = ("auto_accept", "review", "auto_decline")


@dataclass(frozen=True)
class Decision:
    decision: str  # approve | decline | ask_customer
    reason_code: str
    actor: str
    role: str
    at: datetime


@dataclass(frozen=True)
class ReviewRow:
    """One order review opened in the period."""

    order_id: str
    market: str
    channel: str
    created_at: datetime
    status: str
    routing: str | None  # None: not scored yet
    reason_codes: tuple[str, ...] = ()
    decisions: tuple[Decision, ...] = ()
    # When the review task opened (first one), if the order went to review.
    review_opened_at: datetime | None = None
    cancel_requested: bool = False
    cancel_reason: str = ""
    # An early fraud warning reached the order (chargeback: order_release_held).
    early_fraud_warning: bool = False


@dataclass(frozen=True)
class FraudLoss:
    """A chargeback lost on a fraud reason, closed in the period."""

    dispute_id: str
    order_id: str | None
    amount_minor: int
    currency: str
    # The scoring reason codes of the disputed order's review (empty: none found).
    reason_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FraudData:
    reviews: list[ReviewRow] = field(default_factory=list)
    losses: list[FraudLoss] = field(default_factory=list)


def manual_decisions(row: ReviewRow) -> list[Decision]:
    return [d for d in row.decisions if d.role != "system"]


def final_decision(row: ReviewRow) -> Decision | None:
    """The approve or decline that settled the order (asking the customer does not)."""
    settling = [d for d in row.decisions if d.decision in ("approve", "decline")]
    return settling[-1] if settling else None


def cancellation_cause(row: ReviewRow) -> str | None:
    """Why a cancelled order was cancelled; None when it was not."""
    if row.status != "cancelled":
        return None
    settled = final_decision(row)
    if row.cancel_requested and (settled is None or settled.decision != "decline"):
        return "early_fraud_warning" if row.early_fraud_warning else "customer"
    if settled is not None and settled.decision == "decline":
        if settled.reason_code == "policy_default":
            return "default_at_deadline"
        return "fraud_decline"
    if row.routing == "auto_decline":
        return "fraud_decline"
    if row.cancel_reason.startswith("capture failed"):
        return "capture_failed"
    return "other"


def review_hours(row: ReviewRow) -> tuple[float, bool] | None:
    """Task opened -> the person's settling decision, in business hours of the
    order's market: (hours, True), or (elapsed hours, False) without a calendar."""
    settled = final_decision(row)
    if row.review_opened_at is None or settled is None or settled.role == "system":
        return None
    return business_hours_between(row.review_opened_at, settled.at, market=row.market)


def compute(data: FraudData, params: ReportParams) -> ReportContent:
    reviews = data.reviews
    scored = [r for r in reviews if r.routing is not None]
    routing_counts = count_by(r.routing or "" for r in scored)

    routing = ReportTable(
        name="routing",
        title="Orders scored, by routing",
        columns=["routing", "orders", "rate"],
        rows=[
            [k, routing_counts.get(k, 0), rate(routing_counts.get(k, 0), len(scored))]
            for k in ROUTINGS
        ],
    )

    by_reason: dict[tuple[str, str], int] = defaultdict(int)
    by_coordinator: dict[tuple[str, str], int] = defaultdict(int)
    for row in reviews:
        for decision in manual_decisions(row):
            by_reason[(decision.decision, decision.reason_code)] += 1
            by_coordinator[(decision.actor, decision.decision)] += 1
    decisions_by_reason = ReportTable(
        name="manual_decisions_by_reason",
        title="Manual decisions by reason code",
        columns=["decision", "reason_code", "decisions"],
        rows=[[d, r, n] for (d, r), n in sorted(by_reason.items())],
    )
    decisions_by_coordinator = ReportTable(
        name="manual_decisions_by_coordinator",
        title="Manual decisions by coordinator",
        columns=["coordinator", "decision", "decisions"],
        rows=[[a, d, n] for (a, d), n in sorted(by_coordinator.items())],
    )

    causes = count_by(c for c in (cancellation_cause(r) for r in reviews) if c is not None)
    cancelled = sum(causes.values())
    cancellations = ReportTable(
        name="cancellations_by_cause",
        title="Cancellations by cause",
        columns=["cause", "orders", "share"],
        rows=[[c, n, rate(n, cancelled)] for c, n in causes.items()],
    )

    measured = [m for m in (review_hours(r) for r in reviews) if m is not None]
    hours = [h for h, _ in measured]
    wall_clock = sum(1 for _, business in measured if not business)
    review_time = ReportTable(
        name="review_time",
        title="Review time (task opened to the coordinator's decision), business hours",
        columns=["reviews", "p50_hours", "p95_hours"],
        rows=[[len(hours), rounded(percentile(hours, 50)), rounded(percentile(hours, 95))]],
    )

    loss_totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rule_hits: dict[str, int] = defaultdict(int)
    for loss in data.losses:
        loss_totals[loss.currency][0] += 1
        loss_totals[loss.currency][1] += loss.amount_minor
        for code in loss.reason_codes or ("(no rule hit)",):
            rule_hits[code] += 1
    losses = ReportTable(
        name="fraud_losses",
        title="Fraud losses: chargebacks lost on fraud reasons",
        columns=["currency", "chargebacks_lost", "amount_minor"],
        rows=[[c, n, a] for c, (n, a) in sorted(loss_totals.items())],
    )
    hits = ReportTable(
        name="rule_hits_before_losses",
        title="Rule hits on the orders later lost to fraud chargebacks",
        columns=["reason_code", "lost_chargebacks"],
        rows=[[c, n] for c, n in sorted(rule_hits.items(), key=lambda kv: (-kv[1], kv[0]))],
    )

    days = days_of(params.period_from, params.period_to, params.timezone)
    per_day: dict[str, list[float]] = {k: [0.0] * len(days) for k in ROUTINGS}
    index = {d: i for i, d in enumerate(days)}
    for row in scored:
        day = local_day(row.created_at, params.timezone)
        if day in index and row.routing in per_day:
            per_day[row.routing][index[day]] += 1
    charts = [
        ReportChart(
            name="routing_by_day",
            title="Orders scored per day, by routing",
            kind=ChartKind.LINE,
            categories=[d.isoformat() for d in days],
            series=per_day,
            y_label="orders",
        ),
        ReportChart(
            name="cancellations_by_cause",
            title="Cancellations by cause",
            categories=list(causes),
            series={"orders": [float(n) for n in causes.values()]},
            y_label="orders",
        ),
    ]
    return ReportContent(
        headline={
            "orders_received": len(reviews),
            "orders_scored": len(scored),
            "auto_accept_rate": rate(routing_counts.get("auto_accept", 0), len(scored)),
            "review_rate": rate(routing_counts.get("review", 0), len(scored)),
            "auto_decline_rate": rate(routing_counts.get("auto_decline", 0), len(scored)),
            "cancelled": cancelled,
            "review_p50_hours": rounded(percentile(hours, 50)),
            "review_p95_hours": rounded(percentile(hours, 95)),
            "fraud_chargebacks_lost": len(data.losses),
        },
        tables=[
            routing,
            decisions_by_reason,
            decisions_by_coordinator,
            cancellations,
            review_time,
            losses,
            hits,
        ],
        charts=charts,
        notes=[BUSINESS_NOTE.format(wall=f"{wall_clock} review(s) were")],
    )
