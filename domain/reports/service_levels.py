"""Service levels: for every process and task kind, the tasks opened, met,
breached and escalated, time to first action and to resolution; the backlog
and its ageing now; by role and by coordinator. Pure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from domain.reports.model import ReportChart, ReportContent, ReportParams, ReportTable
from domain.reports.stats import (
    CLOCK_NOTE,
    age_bucket,
    bucket_labels,
    hours_between,
    percentile,
    rate,
    rounded,
)

NAME = "service_levels"


@dataclass(frozen=True)
class TaskRow:
    process: str
    kind: str
    awaited_role: str
    opened_at: datetime
    due_at: datetime
    closed_at: datetime | None = None
    closed_by: str | None = None
    escalated: bool = False
    # The first audit entry a person wrote on the case after the task opened.
    first_action_at: datetime | None = None


@dataclass(frozen=True)
class ServiceLevelData:
    # Tasks opened in the period.
    tasks: list[TaskRow] = field(default_factory=list)
    # Tasks open at `as_of`, whenever they opened (the backlog).
    backlog: list[TaskRow] = field(default_factory=list)
    as_of: datetime | None = None


def met(task: TaskRow) -> bool:
    return task.closed_at is not None and task.closed_at <= task.due_at


def breached(task: TaskRow, as_of: datetime) -> bool:
    """Closed after its due time, or still open past it."""
    if task.closed_at is not None:
        return task.closed_at > task.due_at
    return as_of > task.due_at


def _hours(values: list[float]) -> list[float | None]:
    return [rounded(percentile(values, 50)), rounded(percentile(values, 95))]


def compute(data: ServiceLevelData, params: ReportParams) -> ReportContent:
    as_of = data.as_of or params.period_to
    groups: dict[tuple[str, str], list[TaskRow]] = defaultdict(list)
    for task in data.tasks:
        groups[(task.process, task.kind)].append(task)

    def row(group: list[TaskRow]) -> list[int | float | None]:
        first = [
            hours_between(t.opened_at, t.first_action_at)
            for t in group
            if t.first_action_at is not None
        ]
        resolved = [
            hours_between(t.opened_at, t.closed_at) for t in group if t.closed_at is not None
        ]
        breaches = sum(1 for t in group if breached(t, as_of))
        return [
            len(group),
            sum(1 for t in group if met(t)),
            breaches,
            sum(1 for t in group if t.escalated),
            rate(breaches, len(group)),
            *_hours(first),
            *_hours(resolved),
        ]

    figures = [
        "opened",
        "met",
        "breached",
        "escalated",
        "breach_rate",
        "first_action_p50_h",
        "first_action_p95_h",
        "resolution_p50_h",
        "resolution_p95_h",
    ]
    by_kind = ReportTable(
        name="by_process_kind",
        title="Tasks opened in the period, by process and task kind",
        columns=["process", "kind", *figures],
        rows=[[p, k, *row(g)] for (p, k), g in sorted(groups.items())],
    )

    by_role_groups: dict[str, list[TaskRow]] = defaultdict(list)
    by_coordinator_groups: dict[str, list[TaskRow]] = defaultdict(list)
    for task in data.tasks:
        by_role_groups[task.awaited_role].append(task)
        if task.closed_by is not None:
            by_coordinator_groups[task.closed_by].append(task)
    by_role = ReportTable(
        name="by_role",
        title="Tasks by awaited role",
        columns=["role", *figures],
        rows=[[r, *row(g)] for r, g in sorted(by_role_groups.items())],
    )
    by_coordinator = ReportTable(
        name="by_coordinator",
        title="Tasks closed, by who closed them",
        columns=["closed_by", *figures],
        rows=[[c, *row(g)] for c, g in sorted(by_coordinator_groups.items())],
    )

    labels = bucket_labels()
    ageing: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(labels, 0))
    overdue: dict[tuple[str, str], int] = defaultdict(int)
    for task in data.backlog:
        key = (task.process, task.awaited_role)
        ageing[key][age_bucket(as_of - task.opened_at)] += 1
        if as_of > task.due_at:
            overdue[key] += 1
    backlog = ReportTable(
        name="backlog_ageing",
        title=f"Open tasks as of {as_of:%Y-%m-%d %H:%M} UTC, by age",
        columns=["process", "role", "open", "overdue", *labels],
        rows=[
            [p, r, sum(b.values()), overdue[(p, r)], *(b[label] for label in labels)]
            for (p, r), b in sorted(ageing.items())
        ],
    )

    processes = sorted({p for p, _ in groups})
    charts = [
        ReportChart(
            name="met_vs_breached",
            title="Tasks met and breached, by process",
            categories=processes,
            series={
                "met": [
                    float(sum(1 for t in data.tasks if t.process == p and met(t)))
                    for p in processes
                ],
                "breached": [
                    float(sum(1 for t in data.tasks if t.process == p and breached(t, as_of)))
                    for p in processes
                ],
            },
            y_label="tasks",
        ),
        ReportChart(
            name="backlog_ageing",
            title="Open tasks by age",
            categories=labels,
            series={"open": [float(sum(b[label] for b in ageing.values())) for label in labels]},
            y_label="tasks",
        ),
    ]
    breaches = sum(1 for t in data.tasks if breached(t, as_of))
    return ReportContent(
        headline={
            "tasks_opened": len(data.tasks),
            "met": sum(1 for t in data.tasks if met(t)),
            "breached": breaches,
            "breach_rate": rate(breaches, len(data.tasks)),
            "escalated": sum(1 for t in data.tasks if t.escalated),
            "backlog": len(data.backlog),
            "backlog_overdue": sum(overdue.values()),
        },
        tables=[by_kind, by_role, by_coordinator, backlog],
        charts=charts,
        notes=[CLOCK_NOTE],
    )
