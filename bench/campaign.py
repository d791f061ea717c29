"""Employee sale at its opening: accepted campaign orders per second (the
quota and stock taken in PostgreSQL, then the order review started, as
`POST /v1/campaigns/{id}/orders` does) against bare order starts (the same
order review started without a campaign), and the p95 of the quota decision
alone. Part of `make bench` (bench/run.py); alone:

    .venv/bin/python -m bench.campaign [--orders 1000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from temporalio.client import Client

from clients import campaign as campaigns
from clients import order_review
from domain.campaign import (
    CampaignOrderLine,
    CampaignOrderRequest,
    CampaignParameters,
    PriceLine,
    Quota,
    parse_roster,
    schedule_for,
)
from domain.orders import Address, Device, ItemCategory, Order, Payment
from store import campaign as campaign_store
from store.db import create_pool
from workers.personal_keys import configure_personal_data
from workers.settings import Settings

PARIS = ZoneInfo("Europe/Paris")
SKUS = {"HB-TOTE-MM-NOIR": 122_500, "SLG-WALLET-NOIR": 30_000}


@dataclass
class CampaignBench:
    orders: int
    concurrency: int
    accepted: int
    campaign_per_second: float
    bare_per_second: float
    quota_p50_ms: float
    quota_p95_ms: float
    order_p95_ms: float
    bare_p95_ms: float

    @property
    def ratio(self) -> float:
        return self.campaign_per_second / self.bare_per_second if self.bare_per_second else 0.0

    def as_json(self) -> dict[str, float | int]:
        return {**asdict(self), "ratio": round(self.ratio, 3)}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000 if ordered else 0.0


async def _drive(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    began = time.perf_counter()
    await asyncio.gather(*(one(job) for job in jobs))
    return time.perf_counter() - began


def _payment(ref: str, amount: int) -> Payment:
    now = datetime.now(UTC)
    return Payment(
        authorisation_ref=ref,
        amount_minor=amount,
        currency="EUR",
        card_fingerprint=f"fp-{ref}",
        card_country="FR",
        avs_result="match",
        cvv_result="match",
        three_ds="authenticated",
        authorised_at=now,
        authorisation_expires_at=now + timedelta(days=7),
    )


ADDRESS = Address(line1="18 Rue de Grenelle", city="Paris", postal_code="75007", country="FR")
DEVICE = Device(device_id="bench-device", ip_address="192.0.2.10", ip_country="FR")


async def open_campaign(pool: asyncpg.Pool, employees: int) -> str:
    now = datetime.now(UTC)
    params = CampaignParameters(
        campaign_id=f"BENCH-{uuid.uuid4().hex[:8]}",
        name="Bench sale",
        timezone="Europe/Paris",
        opens_local=(now - timedelta(minutes=1)).astimezone(PARIS).replace(tzinfo=None),
        closes_local=(now + timedelta(hours=2)).astimezone(PARIS).replace(tzinfo=None),
        legal_entities=[f"Bench {uuid.uuid4().hex[:6]}"],
        countries=["FR"],
        currency="EUR",
        site="PAR-1",
        quotas={"G1": Quota(max_units=10, max_amount_minor=10_000_000)},
        prices=[
            PriceLine(
                sku=sku,
                name=sku.title(),
                category=ItemCategory.HANDBAGS,
                list_price_minor=price * 2,
                sale_price_minor=price,
                allocated_units=100_000,
            )
            for sku, price in SKUS.items()
        ],
    )
    schedule = schedule_for(params)
    await campaign_store.create_campaign(pool, params, schedule, "bench")
    entity = params.legal_entities[0]
    roster = "employee_id,name,work_email,legal_entity,country,grade,start_date,leave_date\n" + (
        "".join(
            f"E{n:05d},Employee {n},e{n}@bench.example,{entity},FR,G1,2020-01-06,\n"
            for n in range(employees)
        )
    )
    parsed = parse_roster(
        roster.encode(),
        params,
        sale_opens=schedule.opens_at.date(),
        sale_closes=schedule.closes_at.date(),
    )
    await campaign_store.import_roster(pool, params.campaign_id, parsed)
    await campaign_store.set_gate(pool, params.campaign_id, "open", None)
    return params.campaign_id


async def campaign_bench(
    client: Client, pool: asyncpg.Pool, task_queue: str, *, orders: int, concurrency: int
) -> CampaignBench:
    """`orders` employee orders (two per employee, all within quota and stock)
    against as many bare order-review starts, in ABBA halves."""
    campaign_id = await open_campaign(pool, max(1, orders // 2))
    quota_s: list[float] = []
    order_s: list[float] = []
    bare_s: list[float] = []
    accepted = 0

    def campaign_job(n: int) -> Callable[[], Awaitable[None]]:
        sku, price = list(SKUS.items())[n % 2]
        request = CampaignOrderRequest(
            order_id=f"{campaign_id}-{n:06d}",
            employee_id=f"E{n // 2:05d}",
            lines=[CampaignOrderLine(sku=sku, quantity=1)],
            shipping_address=ADDRESS,
            payment=_payment(f"bench-{campaign_id}-{n}", price),
            device=DEVICE,
        )

        async def job() -> None:
            nonlocal accepted
            began = time.perf_counter()
            who = await campaign_store.employee_identity(pool, campaign_id, request.employee_id)
            decided = time.perf_counter()
            decision = await campaign_store.take_quota(pool, campaign_id, request)
            quota_s.append(time.perf_counter() - decided)
            if decision.accepted:
                accepted += 1
                order = await campaigns.employee_order(pool, campaign_id, request, who)
                # As the API does (clients/campaign.py place_order): the
                # employee's values go to the personal-data store and the
                # review runs on a subject id (issue 21).
                await order_review.start_review(client, order, task_queue, db=pool)
            order_s.append(time.perf_counter() - began)

        return job

    def bare_job(n: int) -> Callable[[], Awaitable[None]]:
        sku, price = list(SKUS.items())[n % 2]
        order = Order.model_validate(
            {
                "order_id": f"BARE-{campaign_id}-{n:06d}",
                "market": "FR",
                "channel": "web",
                "currency": "EUR",
                "placed_at": datetime.now(UTC),
                "customer": {
                    "customer_id": f"C-{n:06d}",
                    "email": f"c{n}@bench.example",
                    "full_name": f"Customer {n}",
                    "account_created_at": datetime.now(UTC) - timedelta(days=900),
                },
                "billing_address": ADDRESS,
                "shipping_address": ADDRESS,
                "items": [
                    {
                        "sku": sku,
                        "name": sku.title(),
                        "category": "handbags",
                        "unit_price_minor": price,
                        "quantity": 1,
                    }
                ],
                "payment": _payment(f"bare-{campaign_id}-{n}", price),
                "device": DEVICE,
            }
        )

        async def job() -> None:
            began = time.perf_counter()
            # A bare start as the API makes it: the same subject write.
            await order_review.start_review(client, order, task_queue, db=pool)
            bare_s.append(time.perf_counter() - began)

        return job

    half = orders // 2
    campaign_time = bare_time = 0.0
    # ABBA: the server's drift as its store grows favours neither side.
    campaign_time += await _drive([campaign_job(n) for n in range(half)], concurrency)
    bare_time += await _drive([bare_job(n) for n in range(half)], concurrency)
    bare_time += await _drive([bare_job(n) for n in range(half, orders)], concurrency)
    campaign_time += await _drive([campaign_job(n) for n in range(half, orders)], concurrency)
    return CampaignBench(
        orders=orders,
        concurrency=concurrency,
        accepted=accepted,
        campaign_per_second=round(accepted / campaign_time, 2),
        bare_per_second=round(orders / bare_time, 2),
        quota_p50_ms=round(_percentile(quota_s, 0.50), 1),
        quota_p95_ms=round(_percentile(quota_s, 0.95), 1),
        order_p95_ms=round(_percentile(order_s, 0.95), 1),
        bare_p95_ms=round(_percentile(bare_s, 0.95), 1),
    )


async def bench_on_stack(
    client: Client, settings: Settings, *, orders: int, concurrency: int
) -> CampaignBench:
    # The roster's names and emails are personal data: this process reads and
    # writes them with the stack's keyring, as the API does.
    configure_personal_data(settings)
    pool = await create_pool(settings.database_dsn)
    try:
        return await campaign_bench(
            client, pool, settings.task_queue, orders=orders, concurrency=concurrency
        )
    finally:
        await pool.close()


def describe(result: CampaignBench) -> str:
    return (
        f"employee sale at opening: {result.accepted} orders accepted, "
        f"{result.campaign_per_second:.2f}/s (p95 {result.order_p95_ms:,.0f} ms) vs bare order "
        f"starts {result.bare_per_second:.2f}/s (p95 {result.bare_p95_ms:,.0f} ms): ratio "
        f"{result.ratio:.3f}; quota decision p50 {result.quota_p50_ms:.1f} ms, "
        f"p95 {result.quota_p95_ms:.1f} ms"
    )


async def _main(args: argparse.Namespace) -> None:
    from bench.stack import BenchStack

    async with BenchStack() as stack:
        print(f"stack up in {stack.startup_s:.1f}s")
        result = await bench_on_stack(
            stack.client, stack.settings, orders=args.orders, concurrency=args.concurrency
        )
    print(describe(result))
    print(json.dumps(result.as_json(), indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    asyncio.run(_main(parser.parse_args()))
