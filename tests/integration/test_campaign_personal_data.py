"""Employee sales and personal data (issue 21) on a real PostgreSQL and
Temporal: the bench's employee orders start their reviews on subject ids as
the API does; a roster employee's erasure waits for the campaign's
reconciliation (the legal hold finds the roster's subjects); a request id of
another campaign is refused instead of being filed without its words. The
histories of a whole campaign and of an employee order's review are searched
for the roster's and the request's values in tests/integration/test_campaign.py
(test_a_short_campaign_end_to_end)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.privacy import PrivacyActivities
from activities.simulated import SimulatedNotifier
from bench.campaign import ADDRESS, campaign_bench
from domain.common import Role
from domain.ids import order_review_id
from domain.privacy_request import CheckHoldsInput, HoldKind, Jurisdiction
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import campaign as campaign_store
from store import personal_data
from tests.integration.test_campaign import (
    HEADER,
    SKUS,
    SYSTEM,
    open_campaign,
    order_body,
    params,
)
from tests.integration.test_order_review_personal_data import decoded_history
from tests.integration.test_privacy_holds import check
from workers.settings import Settings

MIGRATION = Path(__file__).resolve().parents[2] / "store/migrations/0029_campaign_roster_refs.sql"
DESK = {"Authorization": "Bearer cpd-desk"}


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        integration_settings,
        client=client,
        pool=db_pool,
        api_keys=ApiKeyStore.from_mapping(
            {"cpd-desk": ("desk", Role.COORDINATOR), "cs-system": ("storefront", Role.SYSTEM)}
        ),
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
        yield http


async def test_the_bench_employee_sale_starts_its_reviews_on_subject_ids(
    client: Client, db_pool: asyncpg.Pool
) -> None:
    bench_campaigns = "SELECT campaign_id FROM campaigns WHERE prepared_by = 'bench'"
    before = {r["campaign_id"] for r in await db_pool.fetch(bench_campaigns)}
    # No worker on this queue: the reviews are started, never run; their
    # input is what the bench gave Temporal.
    result = await campaign_bench(
        client, db_pool, f"cpd-bench-{uuid.uuid4().hex[:8]}", orders=2, concurrency=2
    )
    assert result.accepted == 2
    (campaign_id,) = {r["campaign_id"] for r in await db_pool.fetch(bench_campaigns)} - before
    started = {f"{campaign_id}-{n:06d}": ("e0@bench.example", "Employee 0") for n in range(2)} | {
        f"BARE-{campaign_id}-{n:06d}": (f"c{n}@bench.example", f"Customer {n}") for n in range(2)
    }
    try:
        for order_id, (email, name) in started.items():
            history = await decoded_history(client, order_review_id(order_id))
            assert order_id.encode() in history
            assert b'"subject_id":"subj_' in history.replace(b" ", b""), order_id
            for value in (email, name, ADDRESS.line1):
                assert value.encode() not in history, f"{value!r} in {order_id}'s review input"
        # The employee's values are in the personal-data store, for scoring.
        kept = await personal_data.get_subject(
            db_pool, personal_data.subject_id_for("order", f"{campaign_id}-000000")
        )
        assert kept["customer.email"] == "e0@bench.example"
        assert kept["shipping_address.line1"] == ADDRESS.line1
    finally:
        for order_id in started:
            await client.get_workflow_handle(order_review_id(order_id)).terminate("test over")


async def test_a_roster_employee_is_held_until_the_campaign_is_reconciled(
    db_pool: asyncpg.Pool,
) -> None:
    tag = uuid.uuid4().hex[:10]
    email = f"mila.{tag}@maison.example"
    now = datetime.now(UTC)
    p = params(now + timedelta(days=1), now + timedelta(days=2), entity=f"Maison {tag}")
    roster = HEADER + f"E1,Mila Novak-{tag},{email},Maison {tag},FR,G1,2020-01-06,\n"
    await open_campaign(db_pool, p, roster, state="scheduled")
    await campaign_store.file_request(
        db_pool,
        request_id=f"REQ-{tag}",
        campaign_id=p.campaign_id,
        employee_id="E1",
        kind="after_sales",
        description=f"My bag's strap broke, call me at {email}",
        opened_by="desk",
    )
    employee = await db_pool.fetchval(
        "SELECT subject_id FROM campaign_roster WHERE campaign_id = $1", p.campaign_id
    )
    message = personal_data.subject_id_for("message", f"campaign-request/REQ-{tag}")

    # The roster's subject is found by the email, its request's words with it
    # (owned), and both are held by the campaign until it is reconciled.
    found = await ActivityEnvironment().run(
        PrivacyActivities(db_pool, SimulatedNotifier(db_pool)).check_legal_holds,
        CheckHoldsInput(
            request_id=f"PR-{tag}",
            match_fingerprint=personal_data.fingerprint(email),
            subject_ids=[],
            jurisdiction=Jurisdiction.EU,
            invoice_retention=timedelta(days=3653),
        ),
    )
    assert found.subject_ids == sorted([employee, message])
    (hold,) = found.holds
    assert (hold.kind, hold.reference) == (HoldKind.CAMPAIGN, f"campaign:{p.campaign_id}")
    assert hold.subject_ids == sorted([employee, message])
    await db_pool.execute(
        "INSERT INTO campaign_figures (campaign_id, closed_at, figures) VALUES ($1, now(), '{}')",
        p.campaign_id,
    )
    assert await check(db_pool, email) == {}


async def test_migration_0029_gives_earlier_roster_subjects_their_campaign_ref(
    db_pool: asyncpg.Pool,
) -> None:
    campaign_id = f"ES-{uuid.uuid4().hex[:10]}"
    sid = await personal_data.put_subject(
        db_pool,
        kind="employee",
        fields={"name": "Old Import", "email": f"old.{campaign_id}@maison.example"},
        subject_id=personal_data.subject_id_for("employee", f"{campaign_id}/i0/E1"),
        refs=[("campaign_roster", campaign_id)],  # what an import wrote before
    )
    await db_pool.execute(MIGRATION.read_text())
    await db_pool.execute(MIGRATION.read_text())  # idempotent
    refs = (await personal_data.refs_of(db_pool, [sid]))[sid]
    assert sorted(refs) == [("campaign", campaign_id), ("campaign_roster", campaign_id)]


async def test_a_request_id_of_another_campaign_is_refused(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    now = datetime.now(UTC)
    roster = HEADER + "E1,Noor Haddad,noor@maison.example,Maison SAS,FR,G1,2020-01-06,\n"
    first = params(now + timedelta(days=1), now + timedelta(days=2))
    second = params(now + timedelta(days=1), now + timedelta(days=2))
    for p in (first, second):
        await open_campaign(db_pool, p, roster, state="scheduled")
    request_id = f"REQ-{uuid.uuid4().hex[:10]}"
    assert await campaign_store.file_request(
        db_pool,
        request_id=request_id,
        campaign_id=first.campaign_id,
        employee_id="E1",
        kind="gift",
        description="A scarf for Noor's mother, 3 rue Oberkampf",
        opened_by="desk",
    )
    answer = await api.post(
        f"/v1/campaigns/{second.campaign_id}/requests",
        json={
            "request_id": request_id,
            "employee_id": "E1",
            "kind": "gift",
            "description": "Another text",
        },
        headers=DESK,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == [
        {"field": "request_id", "reason": f"{request_id} is a request of another campaign"}
    ]
    # The first campaign's request keeps its own words.
    texts = await campaign_store.request_texts(db_pool, first.campaign_id, [request_id])
    assert texts == {request_id: ("E1", "A scarf for Noor's mother, 3 rue Oberkampf")}
    with pytest.raises(campaign_store.OrderInvalid):
        await campaign_store.file_request(
            db_pool,
            request_id=request_id,
            campaign_id=second.campaign_id,
            employee_id="E1",
            kind="gift",
            description="Another text",
            opened_by="desk",
        )


async def test_an_order_whose_personal_data_was_erased_is_not_reviewed_again(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool, client: Client
) -> None:
    """The storefront retries an accepted order after a privacy request
    erased its values (the employee since re-imported): a 409 naming
    order_id, no review started again, no quota taken twice."""
    now = datetime.now(UTC)
    p = params(now - timedelta(minutes=1), now + timedelta(hours=1))
    roster = HEADER + "E1,Noor Haddad,noor@maison.example,Maison SAS,FR,G1,2020-01-06,\n"
    await open_campaign(db_pool, p, roster)
    order_id = f"{p.campaign_id}-1"
    body = order_body(order_id, "E1", [(SKUS[1], 1)])
    placed = await api.post(f"/v1/campaigns/{p.campaign_id}/orders", json=body, headers=SYSTEM)
    assert placed.status_code == 201, placed.text
    review = client.get_workflow_handle(order_review_id(order_id))
    try:
        await personal_data.erase_subject(
            db_pool, personal_data.subject_id_for("order", order_id), reason="test"
        )
        again = await api.post(f"/v1/campaigns/{p.campaign_id}/orders", json=body, headers=SYSTEM)
        assert again.status_code == 409, again.text
        assert again.json()["detail"].startswith(f"order_id: the personal data of order {order_id}")
        usage = await campaign_store.employee_usage(db_pool, p.campaign_id)
        assert [u["units_taken"] for u in usage] == [1]
    finally:
        await review.terminate("test over")
