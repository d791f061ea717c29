"""Employee special sales: the launch validation, the quota gate and the
reconciliation. The stock at the site and the catalogue sit behind ports
(activities/ports.py: SaleStock, Catalogue); their simulators read the
simulated world's tables."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from temporalio import activity

from activities.context import activity_logger
from activities.ports import Catalogue, SaleStock
from domain.campaign import (
    RECONCILE_CAMPAIGN,
    RETURN_CAMPAIGN_QUOTA,
    SET_CAMPAIGN_GATE,
    VALIDATE_CAMPAIGN,
    CampaignReturnInput,
    CampaignReturnResult,
    CatalogueEntry,
    GateInput,
    ReconcileInput,
    ReconcileResult,
    ValidateCampaignInput,
    ValidationReport,
    validate_parameters,
)
from store import campaign as campaign_store


class SimulatedSaleStock:
    """The simulated warehouse's stock (sim_stock); one site."""

    name = "simulated"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def available(self, *, site: str, skus: list[str]) -> dict[str, int]:
        return await campaign_store.sim_available(self._pool, skus)


class SimulatedCatalogue:
    """The simulated catalogue (sim_catalogue)."""

    name = "simulated"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def entries(self, *, skus: list[str]) -> dict[str, CatalogueEntry]:
        return await campaign_store.sim_catalogue(self._pool, skus)


# The demo world of the embedded stack (`steward up` seeds it where the
# simulated catalogue and stock do not know a SKU): the example campaign's
# SKU (examples/campaign.json) and a few more a demo price list may add, each
# complete in the catalogue and in stock at the site.
DEMO_CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        sku="HB-TOTE-MM-NOIR",
        description="Tote MM in black grained calfskin, cotton-canvas lining",
        visuals=4,
        category="handbags",
    ),
    CatalogueEntry(
        sku="SLG-WALLET-NOIR",
        description="Compact wallet in black grained calfskin, six card slots",
        visuals=3,
        category="small_leather_goods",
    ),
    CatalogueEntry(
        sku="ACC-SCARF-90-SOIE",
        description="Silk twill scarf, 90 x 90 cm, hand-rolled edges",
        visuals=2,
        category="accessories",
    ),
    CatalogueEntry(
        sku="SH-LOAFER-NOIR-40",
        description="Leather loafer, black, size 40",
        visuals=3,
        category="shoes",
    ),
)
DEMO_STOCK: dict[str, int] = {
    "HB-TOTE-MM-NOIR": 200,
    "SLG-WALLET-NOIR": 300,
    "ACC-SCARF-90-SOIE": 150,
    "SH-LOAFER-NOIR-40": 60,
}


async def seed_demo_sale_world(pool: asyncpg.Pool) -> list[str]:
    """Seed the simulated catalogue and stock with the demo SKUs the simulated
    world does not know yet (never overwriting); the SKUs seeded."""
    return await campaign_store.seed_sim_world_if_missing(pool, DEMO_CATALOGUE, DEMO_STOCK)


class CampaignActivities:
    def __init__(self, pool: asyncpg.Pool, stock: SaleStock, catalogue: Catalogue) -> None:
        self._pool = pool
        self._stock = stock
        self._catalogue = catalogue

    @activity.defn(name=VALIDATE_CAMPAIGN)
    async def validate_campaign(self, input: ValidateCampaignInput) -> ValidationReport:
        record = await campaign_store.get_campaign(self._pool, input.campaign_id)
        params = record.parameters
        skus = [p.sku for p in params.prices]
        roster = await campaign_store.roster_summary(self._pool, input.campaign_id)
        issues = validate_parameters(
            params,
            now=input.now,
            overlapping=await campaign_store.overlapping(self._pool, input.campaign_id),
            available=await self._stock.available(site=params.site, skus=skus),
            catalogue=await self._catalogue.entries(skus=skus),
            roster=roster,
        )
        activity_logger(campaign_id=input.campaign_id).info(
            "campaign_validated", issues=len(issues)
        )
        return ValidationReport(
            validated_at=input.now, roster_hash=roster.roster_hash, issues=issues
        )

    @activity.defn(name=SET_CAMPAIGN_GATE)
    async def set_campaign_gate(self, input: GateInput) -> None:
        await campaign_store.set_gate(self._pool, input.campaign_id, input.state, input.schedule)

    @activity.defn(name=RECONCILE_CAMPAIGN)
    async def reconcile_campaign(self, input: ReconcileInput) -> ReconcileResult:
        """Compare orders, captures, shipments, returns and refunds; when
        nothing disagrees, write the payroll export and the campaign's figures."""
        facts = await campaign_store.reconciliation_facts(self._pool, input.campaign_id)
        found = campaign_store.discrepancies(facts)
        result = ReconcileResult(discrepancies=found, orders=len(facts))
        if not found:
            record = await campaign_store.get_campaign(self._pool, input.campaign_id)
            text, rows = campaign_store.payroll_csv(facts, record.parameters.currency)
            async with self._pool.acquire() as conn, conn.transaction():
                await campaign_store.record_export(conn, input.campaign_id, text, rows)
                await campaign_store.record_figures(conn, input.campaign_id, input.closed_at)
            result.export_rows = rows
        activity_logger(campaign_id=input.campaign_id).info(
            "campaign_reconciled",
            orders=len(facts),
            discrepancies=len(found),
            at=datetime.now(UTC).isoformat(),
        )
        return result

    @activity.defn(name=RETURN_CAMPAIGN_QUOTA)
    async def return_campaign_quota(self, input: CampaignReturnInput) -> CampaignReturnResult:
        """A return of an employee-sale order gives its items back to the
        campaign: each SKU is one release, idempotent by its id (the same for
        every attempt), so a retried step gives the quota back once. The
        campaign's rule decides whether units and amount go back to the
        employee's quota; the return counts in its figures either way."""
        record = await campaign_store.get_campaign(self._pool, input.campaign_id)
        result = CampaignReturnResult(quota_back=record.parameters.quota_back_on_return)
        for release in input.releases:
            try:
                applied = await campaign_store.release_quota(
                    self._pool, input.campaign_id, input.order_id, release
                )
            except campaign_store.OrderInvalid as refused:
                # More than the order has left (a cancellation released it
                # already, say): nothing to give back, and no retry changes it.
                result.refused[release.sku] = str(refused)
                continue
            (result.applied if applied else result.already).append(release.sku)
        activity_logger(campaign_id=input.campaign_id, order_id=input.order_id).info(
            "campaign_return_released",
            rma_id=input.rma_id,
            applied=result.applied,
            already=result.already,
            refused=sorted(result.refused),
        )
        return result
