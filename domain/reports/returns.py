"""Returns and refunds: return rate and reasons by market, product category
and SKU, QC outcomes, refund latency (request to money back), refunds frozen
by disputes, the exchange share. Pure.

A returned SKU's category is the one its order carried when it was released
(the fulfilment's copy of the order); a SKU of an order Steward never
released is in category `unknown`."""

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
    # sku -> product category, from the order; a SKU missing here is `unknown`.
    categories: dict[str, str] = field(default_factory=dict)

    def category(self, sku: str) -> str:
        return self.categories.get(sku) or UNKNOWN


@dataclass(frozen=True)
class SoldUnits:
    """Units of one SKU released (sold) in the period in one market."""

    market: str
    category: str
    sku: str
    units: int


@dataclass(frozen=True)
class ReturnsData:
    returns: list[ReturnRow] = field(default_factory=list)
    # Orders released (order review) in the period, by market: the denominator.
    orders_released: dict[str, int] = field(default_factory=dict)
    # The units those orders carried, by market, category and SKU: the
    # denominator of the return rates by category and SKU.
    sold: list[SoldUnits] = field(default_factory=list)


UNKNOWN = "unknown"


def _top(counts: dict[str, int]) -> str:
    """The most frequent key; a tie goes to the first by name."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


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

    # Returned units and returns (RMAs) by SKU, and by market and category.
    sku_units: dict[str, int] = defaultdict(int)
    sku_returns: dict[str, int] = defaultdict(int)
    sku_reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    sku_category: dict[str, str] = {}
    cat_units: dict[tuple[str, str], int] = defaultdict(int)
    cat_rmas: dict[tuple[str, str], set[str]] = defaultdict(set)
    cat_reasons: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reason_category: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        for category in sorted({row.category(sku) for sku in row.lines}):
            reason_category[(category, row.reason)] += 1
        for sku, quantity in row.lines.items():
            category = row.category(sku)
            if category != UNKNOWN:
                sku_category.setdefault(sku, category)
            sku_units[sku] += quantity
            sku_returns[sku] += 1
            sku_reasons[sku][row.reason] += 1
            key = (row.market, category)
            cat_units[key] += quantity
            if row.rma_id not in cat_rmas[key]:
                cat_rmas[key].add(row.rma_id)
                cat_reasons[key][row.reason] += 1
    sold_sku: dict[str, int] = defaultdict(int)
    sold_cat: dict[tuple[str, str], int] = defaultdict(int)
    for sold in data.sold:
        sold_sku[sold.sku] += sold.units
        sold_cat[(sold.market, sold.category)] += sold.units
        sku_category.setdefault(sold.sku, sold.category)
    by_category = ReportTable(
        name="by_category",
        title="Returns by market and product category (return rate: units returned / "
        "units released in the period)",
        columns=[
            "market",
            "category",
            "units_sold",
            "returns",
            "units_returned",
            "return_rate",
            "top_reason",
        ],
        rows=[
            [
                market,
                category,
                sold_cat.get((market, category), 0),
                len(cat_rmas.get((market, category), ())),
                cat_units.get((market, category), 0),
                rate(cat_units.get((market, category), 0), sold_cat.get((market, category), 0)),
                _top(cat_reasons[(market, category)])
                if (market, category) in cat_reasons
                else None,
            ]
            for market, category in sorted(set(sold_cat) | set(cat_units))
        ],
    )
    category_totals: dict[str, int] = defaultdict(int)
    for (category, _reason), n in reason_category.items():
        category_totals[category] += n
    reasons_by_category = ReportTable(
        name="reasons_by_category",
        title="Return reasons by product category",
        columns=["category", "reason", "returns", "share_of_category"],
        rows=[
            [category, reason, n, rate(n, category_totals[category])]
            for (category, reason), n in sorted(reason_category.items())
        ],
    )
    by_sku = ReportTable(
        name="by_sku",
        title="Returns by SKU (return rate: units returned / units released in the period)",
        columns=[
            "sku",
            "category",
            "units_sold",
            "returns",
            "units_returned",
            "return_rate",
            "top_reason",
        ],
        rows=[
            [
                sku,
                sku_category.get(sku, UNKNOWN),
                sold_sku.get(sku, 0),
                sku_returns[sku],
                units,
                rate(units, sold_sku.get(sku, 0)),
                _top(sku_reasons[sku]),
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
            name="returns_by_category",
            title="Units returned by product category",
            categories=sorted({c for _m, c in cat_units}),
            series={
                "units returned": [
                    float(sum(n for (_m, c), n in cat_units.items() if c == category))
                    for category in sorted({c for _m, c in cat_units})
                ]
            },
            y_label="units",
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
        tables=[rates, reasons, by_category, reasons_by_category, by_sku, qc, refunds, resolution],
        charts=charts,
        notes=[
            "A returned item's category is the one its order carried when Steward released "
            "it; `unknown` for an order Steward did not release. Return rates by category "
            "and SKU are units returned over units released in the same period."
        ],
    )
