"""Returns and refunds: return rate and reasons by market and SKU, QC
outcomes, refund latency (request to money back), refunds frozen by disputes,
the exchange share. Pure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from domain.reports.model import ReportChart, ReportContent, ReportParams, ReportTable
from domain.reports.stats import count_by, hours_between, percentile, rate, rounded

NAME = "returns"


@dataclass(frozen=True)
class ReturnRow:
    """One return requested in the period."""

    rma_id: str
    order_id: str
    market: str
    reason: str
    resolution: str  # what the customer asked for: refund | exchange | store_credit
    status: str
    requested_at: datetime
    lines: dict[str, int] = field(default_factory=dict)  # sku -> quantity
    qc_grade: str | None = None
    refunded_at: datetime | None = None
    refund_frozen: bool = False


@dataclass(frozen=True)
class ReturnsData:
    returns: list[ReturnRow] = field(default_factory=list)
    # Orders released (order review) in the period, by market: the denominator.
    orders_released: dict[str, int] = field(default_factory=dict)


def refund_latency_hours(row: ReturnRow) -> float | None:
    return None if row.refunded_at is None else hours_between(row.requested_at, row.refunded_at)


def compute(data: ReturnsData, params: ReportParams) -> ReportContent:
    rows = data.returns
    by_market = count_by(r.market for r in rows)
    markets = sorted(set(by_market) | set(data.orders_released))
    rates = ReportTable(
        name="return_rate_by_market",
        title="Return rate by market (returns requested / orders released in the period)",
        columns=["market", "orders_released", "returns", "return_rate"],
        rows=[
            [
                m,
                data.orders_released.get(m, 0),
                by_market.get(m, 0),
                rate(by_market.get(m, 0), data.orders_released.get(m, 0)),
            ]
            for m in markets
        ],
    )

    reason_market: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        reason_market[(row.market, row.reason)] += 1
    reasons = ReportTable(
        name="reasons_by_market",
        title="Return reasons by market",
        columns=["market", "reason", "returns", "share_of_market"],
        rows=[
            [m, reason, n, rate(n, by_market[m])]
            for (m, reason), n in sorted(reason_market.items())
        ],
    )

    sku_units: dict[str, int] = defaultdict(int)
    sku_returns: dict[str, int] = defaultdict(int)
    sku_reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        for sku, quantity in row.lines.items():
            sku_units[sku] += quantity
            sku_returns[sku] += 1
            sku_reasons[sku][row.reason] += 1
    by_sku = ReportTable(
        name="by_sku",
        title="Returns by SKU",
        columns=["sku", "returns", "units", "top_reason"],
        rows=[
            [
                sku,
                sku_returns[sku],
                units,
                sorted(sku_reasons[sku].items(), key=lambda kv: (-kv[1], kv[0]))[0][0],
            ]
            for sku, units in sorted(sku_units.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    )

    grades = count_by(r.qc_grade for r in rows if r.qc_grade is not None)
    graded = sum(grades.values())
    qc = ReportTable(
        name="qc_outcomes",
        title="QC grades reported by the 3PL",
        columns=["grade", "returns", "share"],
        rows=[[g, n, rate(n, graded)] for g, n in grades.items()],
    )

    latencies = [h for h in (refund_latency_hours(r) for r in rows) if h is not None]
    frozen = sum(1 for r in rows if r.refund_frozen)
    exchanges = sum(1 for r in rows if r.resolution == "exchange")
    refunds = ReportTable(
        name="refunds",
        title="Refunds: latency from the request to the money back (hours), frozen by disputes",
        columns=["refunded", "latency_p50_h", "latency_p95_h", "frozen_by_dispute"],
        rows=[
            [
                len(latencies),
                rounded(percentile(latencies, 50)),
                rounded(percentile(latencies, 95)),
                frozen,
            ]
        ],
    )
    resolutions = count_by(r.resolution for r in rows)
    resolution = ReportTable(
        name="resolutions",
        title="What customers asked for",
        columns=["resolution", "returns", "share"],
        rows=[[k, n, rate(n, len(rows))] for k, n in resolutions.items()],
    )

    all_reasons = count_by(r.reason for r in rows)
    charts = [
        ReportChart(
            name="reasons",
            title="Return reasons",
            categories=list(all_reasons),
            series={"returns": [float(n) for n in all_reasons.values()]},
            y_label="returns",
        ),
        ReportChart(
            name="qc_grades",
            title="QC grades",
            categories=list(grades),
            series={"returns": [float(n) for n in grades.values()]},
            y_label="returns",
        ),
    ]
    released = sum(data.orders_released.values())
    return ReportContent(
        headline={
            "returns_requested": len(rows),
            "orders_released": released,
            "return_rate": rate(len(rows), released),
            "refunded": len(latencies),
            "refund_latency_p50_h": rounded(percentile(latencies, 50)),
            "refund_latency_p95_h": rounded(percentile(latencies, 95)),
            "refunds_frozen_by_dispute": frozen,
            "exchange_share": rate(exchanges, len(rows)),
        },
        tables=[rates, reasons, by_sku, qc, refunds, resolution],
        charts=charts,
        notes=[
            "Orders carry no product category in Steward's store yet: returns are reported "
            "by SKU and market."
        ],
    )
