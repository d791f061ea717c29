"""`steward simulate` fills a stack with data for every report (issue 19): a
small run of the same steps (starters/simulation.py run_simulation) on a
real worker, the dev server and PostgreSQL, then every report of the
catalogue over the run's period has rows, and the figures a demo is about
are there: coordinators' decisions, disputes answered and closed, returns
graded by the 3PL with a product category, failed deliveries, ops desk
requests resolved with a root cause.

The fraud, dispute and parcel-failure rates are raised for this run only
(16 orders at the real rates would often give no dispute and no failed
parcel); the generators stay seeded, so the run is the same every time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from domain.reports import CATALOGUE
from domain.reports.model import ReportContent, ReportParams
from starters import carrier_events_simulator, chargeback_simulator, simulator
from starters.simulation import run_simulation
from store import reports as report_store
from store.db import create_pool
from tests.integration.polling import eventually
from workers import activities
from workers.settings import Settings

pytestmark = pytest.mark.integration

SEED = 19
ORDERS = 16
RATES = {pattern: 0.04 for pattern in simulator.PATTERN_RATES}


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    return integration_settings.model_copy(update={"task_queue": f"simulate-{uuid.uuid4()}"})


@pytest_asyncio.fixture(loop_scope="session")
async def worker(
    client: Client, clean_db: asyncpg.Pool, settings: Settings
) -> AsyncIterator[Worker]:
    # The worker's own pools, as in a deployment (the simulation is another
    # process): activities never wait for a connection the simulation holds.
    store = await create_pool(settings.database_dsn, min_size=1, max_size=10)
    world = await activities.create_world_pool(settings)
    try:
        async with Worker(
            client,
            task_queue=settings.task_queue,
            workflows=workflows.ALL_WORKFLOWS,
            activities=activities.build_activities(store, settings, world_pool=world),
        ) as running:
            yield running
    finally:
        await world.close()
        await store.close()


async def test_a_small_simulate_run_gives_every_report_rows(
    client: Client,
    clean_db: asyncpg.Pool,
    settings: Settings,
    worker: Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chargeback_simulator, "DISPUTE_RATE", 0.35)
    monkeypatch.setattr(chargeback_simulator, "EFW_RATE", 0.0)
    monkeypatch.setattr(carrier_events_simulator, "FAILED_RATE", 0.3)
    monkeypatch.setattr(carrier_events_simulator, "LOST_RATE", 0.1)
    started = datetime.now(UTC)
    traffic = simulator.generate_traffic(SEED, ORDERS, started, rates=RATES)

    report = await run_simulation(
        client,
        clean_db,
        settings,
        traffic,
        seed=SEED,
        rate=200.0,
        ship_wait_seconds=30.0,
    )

    assert report.sent.failed == 0, report.sent.errors
    assert report.decisions.approved + report.decisions.declined >= 1
    assert report.dispute_outcomes.won + report.dispute_outcomes.lost >= 1
    assert report.dispute_outcomes.errors == []
    assert report.parcels.failed_deliveries + report.parcels.claims >= 1
    assert report.returns.started >= 1 and report.returns.failed == 0, report.returns.errors
    assert report.return_decisions.errors == []
    assert report.ops.resolved >= 1, report.ops.errors
    assert report.campaign.errors == [] and report.campaign.status == "open"
    assert report.campaign.orders_accepted >= 1 and report.campaign.orders_refused == 1

    params = ReportParams(
        period_from=started - timedelta(hours=1), period_to=datetime.now(UTC) + timedelta(hours=1)
    )
    settled = report.dispute_outcomes.won + report.dispute_outcomes.lost

    async def every_report() -> dict[str, ReportContent]:
        context = report_store.FetchContext(now=datetime.now(UTC))
        contents = {}
        for name, definition in CATALOGUE.items():
            data = await report_store.FETCHERS[name](clean_db, params, context)
            contents[name] = definition.compute(data, params)
        return contents

    def closed_disputes(contents: dict[str, ReportContent]) -> int:
        outcomes = contents["disputes"].table("outcomes_by_provider_reason")
        return sum(int(n or 0) for column in ("won", "lost") for n in outcomes.column(column))

    # The workflows write their last rows (a dispute's outcome, a refund, a
    # resolution) after the call that caused them answered: wait for them.
    contents = await eventually(
        every_report,
        lambda c: (
            closed_disputes(c) == settled
            and bool(c["returns"].headline["refunded"])
            and bool(c["ops_desk"].table("root_causes").rows)
            and all(any(t.rows for t in content.tables) for content in c.values())
        ),
        what="every report to have rows",
    )

    fraud = contents["fraud"]
    assert fraud.table("manual_decisions_by_coordinator").rows
    # The 16 orders settled before anything else; the employee orders may be scoring still.
    scored = fraud.headline["orders_scored"]
    assert isinstance(scored, int) and scored >= report.sent.started
    assert closed_disputes(contents) == settled >= 1
    levels = contents["service_levels"]
    assert levels.table("by_process_kind").row_by(process="order-review") is not None
    returns = contents["returns"]
    assert returns.table("qc_outcomes").rows
    assert returns.headline["refunded"], returns.headline  # a refund came back
    categories = set(returns.table("by_category").column("category"))
    assert categories - {"unknown"}, categories
    assert contents["deliveries"].table("failed_delivery_outcomes").rows
    assert contents["ops_desk"].table("root_causes").rows
    sales = contents["employee_sales"].table("by_campaign")
    assert sales.column("campaign_id") == [report.campaign.campaign_id]
    sale = sales.row_by(campaign_id=report.campaign.campaign_id)
    assert sale is not None and sale[3] == report.campaign.orders_accepted
    fulfilment = contents["fulfilment"]
    assert fulfilment.table("time_in_state").row_by(state="allocated") is not None
    assert fulfilment.headline["handed_to_carrier"] == report.warehouse.by_kind.get(
        "handed_to_carrier", 0
    )
