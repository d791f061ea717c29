"""Deliveries and claims: failed-delivery outcomes (reshipped, returned),
second failures, carrier claims filed / paid / rejected / unanswered, the
money recovered, and whether claims were filed before the carrier's
deadline. Pure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from domain.reports.model import ReportChart, ReportContent, ReportParams, ReportTable
from domain.reports.stats import count_by, rate

NAME = "deliveries"

RESHIPPED = frozenset({"reshipped", "delivered"})
RETURNED = frozenset({"awaiting_return", "inspecting", "refunding", "refund_frozen", "refunded"})
CLAIM_OUTCOMES = ("approved", "rejected", "no_response", "withdrawn")


@dataclass(frozen=True)
class FailedDeliveryRow:
    shipment_id: str
    market: str | None
    status: str
    opened_at: datetime
    second_failure: bool = False


@dataclass(frozen=True)
class ClaimRow:
    claim_id: str  # the workflow id
    carrier: str
    status: str
    opened_at: datetime
    filed_at: datetime | None = None
    filing_deadline: datetime | None = None
    reimbursed_minor: int = 0
    currency: str = ""


@dataclass(frozen=True)
class DeliveriesData:
    failed_deliveries: list[FailedDeliveryRow] = field(default_factory=list)
    claims: list[ClaimRow] = field(default_factory=list)


def delivery_outcome(row: FailedDeliveryRow) -> str:
    if row.status in RESHIPPED:
        return "reshipped"
    if row.status in RETURNED:
        return "returned"
    if row.status == "closed":
        return "closed"
    return "open"


def claim_outcome(row: ClaimRow) -> str:
    if row.status in CLAIM_OUTCOMES:
        return row.status
    return "filed" if row.filed_at is not None else "open"


def filed_in_time(row: ClaimRow) -> bool | None:
    if row.filed_at is None or row.filing_deadline is None:
        return None
    return row.filed_at <= row.filing_deadline


def compute(data: DeliveriesData, params: ReportParams) -> ReportContent:
    deliveries = data.failed_deliveries
    outcomes = count_by(delivery_outcome(r) for r in deliveries)
    second = sum(1 for r in deliveries if r.second_failure)
    failed = ReportTable(
        name="failed_delivery_outcomes",
        title="Failed deliveries opened in the period, by outcome",
        columns=["outcome", "cases", "share"],
        rows=[[o, n, rate(n, len(deliveries))] for o, n in outcomes.items()],
    )
    second_failures = ReportTable(
        name="second_failures",
        title="Second failures (a reshipped parcel failed again; never reshipped twice)",
        columns=["failed_deliveries", "second_failures", "rate"],
        rows=[[len(deliveries), second, rate(second, len(deliveries))]],
    )

    by_carrier: dict[str, list[ClaimRow]] = defaultdict(list)
    for claim in data.claims:
        by_carrier[claim.carrier].append(claim)
    claim_columns = ["open", "filed", *CLAIM_OUTCOMES]
    claims = ReportTable(
        name="claims_by_carrier",
        title="Carrier claims opened in the period, by carrier and outcome",
        columns=["carrier", "claims", *claim_columns, "filed_before_deadline", "filed_late"],
        rows=[
            [
                carrier,
                len(group),
                *(sum(1 for c in group if claim_outcome(c) == o) for o in claim_columns),
                sum(1 for c in group if filed_in_time(c) is True),
                sum(1 for c in group if filed_in_time(c) is False),
            ]
            for carrier, group in sorted(by_carrier.items())
        ],
    )
    recovered: dict[str, int] = defaultdict(int)
    for claim in data.claims:
        if claim.status == "approved" and claim.currency:
            recovered[claim.currency] += claim.reimbursed_minor
    recovery = ReportTable(
        name="claims_recovery",
        title="Money recovered from carriers (approved claims), minor units",
        columns=["currency", "recovered_minor"],
        rows=[[c, n] for c, n in sorted(recovered.items())],
    )
    carriers = sorted(by_carrier)
    chart = ReportChart(
        name="claims_by_carrier",
        title="Claim outcomes by carrier",
        categories=carriers,
        series={
            o: [float(sum(1 for c in by_carrier[k] if claim_outcome(c) == o)) for k in carriers]
            for o in claim_columns
        },
        y_label="claims",
    )
    failed_chart = ReportChart(
        name="failed_delivery_outcomes",
        title="Failed delivery outcomes",
        categories=list(outcomes),
        series={"cases": [float(n) for n in outcomes.values()]},
        y_label="cases",
    )
    filed = [c for c in data.claims if c.filed_at is not None]
    return ReportContent(
        headline={
            "failed_deliveries": len(deliveries),
            "reshipped": outcomes.get("reshipped", 0),
            "returned": outcomes.get("returned", 0),
            "second_failures": second,
            "claims": len(data.claims),
            "claims_filed": len(filed),
            "claims_paid": sum(1 for c in data.claims if c.status == "approved"),
            "filed_before_deadline_rate": rate(
                sum(1 for c in filed if filed_in_time(c)), len(filed)
            ),
        },
        tables=[failed, second_failures, claims, recovery],
        charts=[failed_chart, chart],
    )
