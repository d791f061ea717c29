"""Employee sales (issue 18's special-sales campaigns): sell-through,
returns and participation, by campaign, product category and SKU, for the
orders employees placed in the period. Pure.

Sell-through is what the campaign's post-mortem pack calls it (store/campaign.py
figures): units kept (sold, less units cancelled or returned) over units
allocated to the campaign. The return rate is units returned over units sold."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from domain.reports.model import ReportChart, ReportContent, ReportParams, ReportTable
from domain.reports.stats import rate

NAME = "employee_sales"
# The sales channel of every employee order (domain/orders.py Channel).
CHANNEL = "employee_sale"


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: str
    name: str
    state: str
    currency: str
    eligible: int  # employees the roster made eligible (in the market, with a market filter)
    buyers: int  # of them, employees who ordered in the period
    orders: int
    revenue_minor: int


@dataclass(frozen=True)
class SkuRow:
    campaign_id: str
    sku: str
    category: str
    allocated: int
    sold: int  # units ordered in the period
    cancelled: int = 0  # of them, given back by a cancellation
    returned: int = 0  # of them, given back by a return


@dataclass(frozen=True)
class EmployeeSalesData:
    campaigns: list[CampaignRow] = field(default_factory=list)
    skus: list[SkuRow] = field(default_factory=list)


def _kept(row: SkuRow) -> int:
    return row.sold - row.cancelled - row.returned


def compute(data: EmployeeSalesData, params: ReportParams) -> ReportContent:
    skus_of: dict[str, list[SkuRow]] = defaultdict(list)
    for sku in data.skus:
        skus_of[sku.campaign_id].append(sku)

    def totals(rows: list[SkuRow]) -> tuple[int, int, int, int]:
        return (
            sum(r.allocated for r in rows),
            sum(r.sold for r in rows),
            sum(r.returned for r in rows),
            sum(_kept(r) for r in rows),
        )

    campaigns = ReportTable(
        name="by_campaign",
        title="Campaigns with orders in the period: sell-through (units kept / allocated), "
        "returns (units returned / sold), participation (buyers / eligible employees)",
        columns=[
            "campaign_id",
            "name",
            "state",
            "orders",
            "units_allocated",
            "units_sold",
            "units_returned",
            "return_rate",
            "sell_through",
            "eligible",
            "buyers",
            "participation",
            "revenue_minor",
            "currency",
        ],
        rows=[],
    )
    for c in sorted(data.campaigns, key=lambda c: c.campaign_id):
        allocated, sold, returned, kept = totals(skus_of[c.campaign_id])
        campaigns.rows.append(
            [
                c.campaign_id,
                c.name,
                c.state,
                c.orders,
                allocated,
                sold,
                returned,
                rate(returned, sold),
                rate(kept, allocated),
                c.eligible,
                c.buyers,
                rate(c.buyers, c.eligible),
                c.revenue_minor,
                c.currency,
            ]
        )

    by_category: dict[str, list[SkuRow]] = defaultdict(list)
    for sku in data.skus:
        by_category[sku.category].append(sku)
    categories = ReportTable(
        name="by_category",
        title="By product category, every campaign together",
        columns=[
            "category",
            "units_allocated",
            "units_sold",
            "units_returned",
            "return_rate",
            "sell_through",
        ],
        rows=[],
    )
    for category, rows in sorted(by_category.items()):
        allocated, sold, returned, kept = totals(rows)
        categories.rows.append(
            [category, allocated, sold, returned, rate(returned, sold), rate(kept, allocated)]
        )

    skus = ReportTable(
        name="by_sku",
        title="By SKU, most sold first",
        columns=[
            "campaign_id",
            "sku",
            "category",
            "units_allocated",
            "units_sold",
            "units_cancelled",
            "units_returned",
            "sell_through",
        ],
        rows=[
            [
                s.campaign_id,
                s.sku,
                s.category,
                s.allocated,
                s.sold,
                s.cancelled,
                s.returned,
                rate(_kept(s), s.allocated),
            ]
            for s in sorted(data.skus, key=lambda s: (-s.sold, s.campaign_id, s.sku))
        ],
    )

    names = [row[0] for row in categories.rows]
    chart = ReportChart(
        name="sell_through_by_category",
        title="Sell-through by product category",
        categories=[str(n) for n in names],
        series={"sell-through": [float(row[5] or 0.0) for row in categories.rows]},
        y_label="units kept / allocated",
    )
    allocated, sold, returned, kept = totals(list(data.skus))
    eligible = sum(c.eligible for c in data.campaigns)
    buyers = sum(c.buyers for c in data.campaigns)
    return ReportContent(
        headline={
            "campaigns": len(data.campaigns),
            "orders": sum(c.orders for c in data.campaigns),
            "units_sold": sold,
            "units_returned": returned,
            "return_rate": rate(returned, sold),
            "sell_through": rate(kept, allocated),
            "participation": rate(buyers, eligible),
        },
        tables=[campaigns, categories, skus],
        charts=[chart],
        notes=[
            "Units allocated are the campaign's whole allocation, whatever the period and "
            "market: with a market filter the sell-through is that market's employees' units "
            "kept over the whole allocation."
        ],
    )
