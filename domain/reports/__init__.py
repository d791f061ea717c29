"""The report catalogue (issue 19): one module per report, each a pure
computation over rows the store reads (store/reports.py, never Temporal
history, so reports outlive the namespace's retention).

Adding a report: a module here with `NAME`, its data class and `compute`,
an entry in CATALOGUE, and a fetcher of the same name in store/reports.py
(tests/unit/test_reports.py checks both sides name the same reports).
"""

from __future__ import annotations

from domain.reports import (
    deliveries,
    disputes,
    employee_sales,
    fraud,
    fulfilment,
    ops_desk,
    returns,
    service_levels,
)
from domain.reports.model import (
    ChartKind,
    ReportChart,
    ReportContent,
    ReportDefinition,
    ReportParams,
    ReportTable,
)

CATALOGUE: dict[str, ReportDefinition] = {
    d.name: d
    for d in (
        ReportDefinition(
            name=fraud.NAME,
            title="Fraud and cancellations",
            audience="management, order review",
            compute=fraud.compute,
            description="routing rates, manual decisions by reason and coordinator, "
            "cancellations by cause, review time p50/p95, fraud losses and the rule hits "
            "before them",
        ),
        ReportDefinition(
            name=disputes.NAME,
            title="Disputes",
            audience="chargeback coordinators, finance",
            compute=disputes.compute,
            description="outcomes by provider and reason family, win rate by reason and "
            "evidence completeness, amounts recovered and lost, deadline compliance",
        ),
        ReportDefinition(
            name=service_levels.NAME,
            title="Service levels",
            audience="operations managers",
            compute=service_levels.compute,
            description="tasks opened, met, breached, escalated per process and task kind; "
            "time to first action and resolution; backlog ageing; by role and coordinator",
        ),
        ReportDefinition(
            name=returns.NAME,
            title="Returns and refunds",
            audience="returns team, special sales",
            compute=returns.compute,
            description="return rate and reasons by market and SKU, QC outcomes, refund "
            "latency p50/p95, refunds frozen by disputes, exchange share",
        ),
        ReportDefinition(
            name=deliveries.NAME,
            title="Deliveries and claims",
            audience="logistics",
            compute=deliveries.compute,
            description="failed-delivery outcomes, second failures, carrier claims filed, "
            "paid, rejected, unanswered, money recovered, filed before the deadline",
        ),
        ReportDefinition(
            name=ops_desk.NAME,
            title="Ops desk",
            audience="senior QA coordinator, customer service operations",
            compute=ops_desk.compute,
            description="requests by type and priority, first response and resolution in "
            "business hours, SLA met and breached, escalations, root causes",
        ),
        ReportDefinition(
            name=fulfilment.NAME,
            title="Fulfilment",
            audience="logistics, warehouse, senior QA coordinator",
            compute=fulfilment.compute,
            description="fulfilments by status, holds by reason and how long they held, "
            "outbound QC pass/fail, address changes by outcome, time in each WMS state",
        ),
        ReportDefinition(
            name=employee_sales.NAME,
            title="Employee sales",
            audience="special-sales team, HR",
            compute=employee_sales.compute,
            description="sell-through, returns and participation by campaign, product "
            "category and SKU",
        ),
    )
}

__all__ = [
    "CATALOGUE",
    "ChartKind",
    "ReportChart",
    "ReportContent",
    "ReportDefinition",
    "ReportParams",
    "ReportTable",
]
