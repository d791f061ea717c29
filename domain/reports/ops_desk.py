"""Ops desk (issue 17's operations requests): requests by type, first
response and resolution in business hours of the request's site (or
market), SLA met and breached (resolved after the SLA's business hours),
escalations, root causes. Pure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from domain.reports.model import ReportChart, ReportContent, ReportParams, ReportTable
from domain.reports.stats import (
    BUSINESS_NOTE,
    business_hours_between,
    count_by,
    percentile,
    rate,
    rounded,
)

NAME = "ops_desk"


@dataclass(frozen=True)
class OpsRequestRow:
    request_id: str
    type: str
    priority: str
    status: str
    market: str
    opened_at: datetime
    site_id: str | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    # Measured by the workflow in the request's own calendar when it resolved.
    business_seconds_to_resolve: int | None = None
    sla_met: bool | None = None
    escalations: int = 0
    root_cause: str | None = None


@dataclass(frozen=True)
class OpsDeskData:
    requests: list[OpsRequestRow] = field(default_factory=list)


def first_response_hours(row: OpsRequestRow) -> tuple[float, bool] | None:
    if row.first_response_at is None:
        return None
    return business_hours_between(
        row.opened_at, row.first_response_at, market=row.market, site=row.site_id
    )


def compute(data: OpsDeskData, params: ReportParams) -> ReportContent:
    rows = data.requests
    by_type: dict[str, list[OpsRequestRow]] = defaultdict(list)
    for row in rows:
        by_type[row.type].append(row)

    def figures(group: list[OpsRequestRow]) -> list[int | float | None]:
        first = [m[0] for m in (first_response_hours(r) for r in group) if m is not None]
        resolve = [
            r.business_seconds_to_resolve / 3600
            for r in group
            if r.business_seconds_to_resolve is not None
        ]
        decided = [r for r in group if r.sla_met is not None]
        met = sum(1 for r in decided if r.sla_met)
        return [
            len(group),
            sum(1 for r in group if r.resolved_at is not None),
            met,
            len(decided) - met,
            rate(met, len(decided)),
            sum(1 for r in group if r.escalations > 0),
            rounded(percentile(first, 50)),
            rounded(percentile(first, 95)),
            rounded(percentile(resolve, 50)),
            rounded(percentile(resolve, 95)),
        ]

    columns = [
        "requests",
        "resolved",
        "sla_met",
        "sla_breached",
        "sla_met_rate",
        "escalated",
        "first_response_p50_bh",
        "first_response_p95_bh",
        "resolution_p50_bh",
        "resolution_p95_bh",
    ]
    types = ReportTable(
        name="by_type",
        title="Operations requests opened in the period, by type (bh: business hours)",
        columns=["type", *columns],
        rows=[[t, *figures(g)] for t, g in sorted(by_type.items())],
    )
    by_priority: dict[str, list[OpsRequestRow]] = defaultdict(list)
    for row in rows:
        by_priority[row.priority].append(row)
    priorities = ReportTable(
        name="by_priority",
        title="By priority",
        columns=["priority", *columns],
        rows=[[p, *figures(g)] for p, g in sorted(by_priority.items())],
    )
    causes = count_by(r.root_cause for r in rows if r.root_cause)
    root_causes = ReportTable(
        name="root_causes",
        title="Root causes of the resolved requests",
        columns=["root_cause", "requests"],
        rows=[[c, n] for c, n in sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))],
    )
    names = sorted(by_type)
    chart = ReportChart(
        name="requests_by_type",
        title="Requests opened and resolved, by type",
        categories=names,
        series={
            "opened": [float(len(by_type[t])) for t in names],
            "resolved": [float(sum(1 for r in by_type[t] if r.resolved_at)) for t in names],
        },
        y_label="requests",
    )
    overall = figures(rows) if rows else [0, 0, 0, 0, None, 0, None, None, None, None]
    wall_requests = sum(
        1 for m in (first_response_hours(r) for r in rows) if m is not None and not m[1]
    )
    return ReportContent(
        headline=dict(zip(columns, overall, strict=True)),
        tables=[types, priorities, root_causes],
        charts=[chart],
        notes=[BUSINESS_NOTE.format(wall=f"{wall_requests} first response(s) were")],
    )
