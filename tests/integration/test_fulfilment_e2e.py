"""Fulfilment end to end (issue 16): a real worker, PostgreSQL and the dev
server. The order review's release starts the fulfilment; a hold placed
through the API stops the simulated warehouse from picking; the signed
warehouse webhook moves the order and de-duplicates by event id; an address
change is stored in the personal-data store, never in Temporal in clear; the
order status answer reads PostgreSQL only; bad input gets a 4xx naming the
field and changes nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

import store
import workflows
from activities.fulfilment import SimulatedWms
from clients import fulfilment, order_review
from domain.audit import AuditEntry
from domain.common import Role
from domain.fulfilment import FulfilmentStatus, FulfilmentView, WarehouseEventKind
from domain.ids import CARRIER_CLAIM
from domain.orders import Address
from domain.review import ReviewStatus
from starters import fulfilment_simulator
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import audit as audit_store
from store import fulfilment as fulfilment_store
from store import personal_data, signals
from store.deliveries import get_shipment
from tests.factories import make_order
from tests.integration.polling import eventually
from tests.integration.test_order_review_personal_data import decoded_history
from workers import activities
from workers.dev_server import TemporalDevServer
from workers.settings import Settings

MIGRATIONS = Path(store.__file__).parent / "migrations"
SECRET = "wh-it-secret"
KEYS = {
    "it-wms": ("wms", Role.SYSTEM),
    "it-coord": ("camille", Role.COORDINATOR),
    "it-auditor": ("audrey", Role.AUDITOR),
}
WMS = {"Authorization": "Bearer it-wms", "X-Steward-Webhook-Secret": SECRET}
COORDINATOR = {"Authorization": "Bearer it-coord"}
AUDITOR = {"Authorization": "Bearer it-auditor"}


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    return integration_settings.model_copy(
        update={"task_queue": f"fulfilment-{uuid.uuid4()}", "webhook_secret": SECRET}
    )


@pytest_asyncio.fixture(loop_scope="session")
async def worker(
    client: Client, db_pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[Worker]:
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client, db_pool: asyncpg.Pool, settings: Settings, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=client, pool=db_pool, api_keys=ApiKeyStore.from_mapping(KEYS))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
        yield http


async def released_order(client: Client, settings: Settings, **order: Any) -> str:
    unique = uuid.uuid4().hex[:10]
    placed = make_order(f"FUL-{unique}", **order)
    await order_review.start_review(client, placed, settings.task_queue)
    await eventually(
        lambda: order_review.get_status(client, placed.order_id),
        lambda s: s.status is ReviewStatus.RELEASED,
        what="the review to release the order",
    )
    await eventually(
        lambda: fulfilment.get_fulfilment(client, placed.order_id),
        lambda s: s.status is FulfilmentStatus.RELEASED,
        what="the release to start the fulfilment",
    )
    return placed.order_id


async def test_release_hold_webhook_address_and_status(
    api: httpx.AsyncClient,
    client: Client,
    db_pool: asyncpg.Pool,
    settings: Settings,
    dev_server: TemporalDevServer,
) -> None:
    unique = uuid.uuid4().hex[:8]
    order_id = await released_order(client, settings)
    # Started once: a second start (a retried release) starts nothing.
    kept = await fulfilment_store.load_order(db_pool, order_id)
    assert kept is not None
    # The address it is released with is the one in the order's own subject
    # (no second copy): the shipment booked at handover reads it from there.
    first = await fulfilment.get_fulfilment(client, order_id)
    assert first.address_ref == fulfilment_store.order_subject_id(order_id)
    assert (
        await fulfilment_store.get_address(db_pool, first.address_ref, order_id=order_id)
        == kept.shipping_address
    )

    # A hold placed through the API: the simulated warehouse will not pick.
    answer = await api.post(
        f"/v1/fulfilments/{order_id}/holds",
        json={"reason": "incorrect_address", "note": "flat number missing"},
        headers=COORDINATOR,
    )
    assert answer.status_code == 200, answer.text
    handle = answer.json()["holds"][0]["handle"]
    wms = SimulatedWms(db_pool)
    assert await wms.start_picking(order_id) is False
    later = datetime.now(UTC) + timedelta(hours=1)
    # Other tests' released orders share the simulated warehouse: look at this order's events.
    mine: list[str] = []
    while events := await wms.tick(later):
        mine += [e.kind.value for e in events if e.order_id == order_id]
    assert mine == ["allocated", "pick_refused"], mine

    # Bad input changes nothing: an auditor's key, an unknown order, a bad postcode.
    refused = await api.post(
        f"/v1/fulfilments/{order_id}/holds/{handle}/release", json={}, headers=AUDITOR
    )
    assert refused.status_code == 403
    unknown = await api.post(
        "/v1/fulfilments/NOPE-1/holds", json={"reason": "other"}, headers=COORDINATOR
    )
    assert unknown.status_code == 404 and "order_id" in unknown.text
    bad = await api.post(
        f"/v1/fulfilments/{order_id}/address",
        json={"address": {"line1": "1 r", "city": "Paris", "postal_code": "7500", "country": "FR"}},
        headers=COORDINATOR,
    )
    assert bad.status_code == 422 and "address.postal_code" in bad.text

    # The address change: stored encrypted, fingerprint only in the state.
    street = f"{unique} avenue Montaigne"
    changed_to = {"line1": street, "city": "Paris", "postal_code": "75008", "country": "FR"}
    changed = await api.post(
        f"/v1/fulfilments/{order_id}/address",
        json={"address": changed_to, "note": "customer asked by phone"},
        headers=COORDINATOR,
    )
    assert changed.status_code == 200, changed.text
    state = FulfilmentView.model_validate(changed.json())
    assert state.address_changes[-1].outcome == "applied"
    # Issue 21: the API kept it as an edge subject (refs the order, so a
    # privacy request finds it) and the fulfilment holds only the id; the
    # answer and GET read it back.
    assert state.address_ref == fulfilment_store.edge_address_subject_id(
        order_id, fulfilment_store.keyed_fingerprint(Address(**changed_to))
    )
    assert state.shipping_address == Address(**changed_to)
    stored = await fulfilment_store.get_address(db_pool, state.address_ref)
    assert stored.line1 == street
    assert state.address_ref in await personal_data.find_subjects(db_pool, ref=("order", order_id))
    # A privacy request finds the customer by the email's fingerprint and
    # reaches the address through its owner, the order's subject.
    customer = await personal_data.find_subjects(db_pool, fingerprint_of=kept.customer.email)
    assert state.address_ref in await personal_data.live_subjects(db_pool, customer)
    shown = await api.get(f"/v1/fulfilments/{order_id}", headers=AUDITOR)
    assert shown.status_code == 200 and shown.json()["shipping_address"]["line1"] == street
    # The simulated warehouse was given the subject (it reads the address by it).
    assert (
        await db_pool.fetchval(
            "SELECT address_ref FROM sim_wms_orders WHERE order_id = $1", order_id
        )
        == state.address_ref
    )
    # A caller may not name the subject: Steward sets it (422 naming the field).
    named = await api.post(
        f"/v1/fulfilments/{order_id}/address",
        json={"address_subject_id": state.address_ref},
        headers=COORDINATOR,
    )
    assert named.status_code == 422 and "address_subject_id" in named.text, named.text
    # An order Steward never released: 404, and nothing kept for it.
    missing = await api.post(
        f"/v1/fulfilments/NOPE-{unique}/address", json={"address": changed_to}, headers=COORDINATOR
    )
    assert missing.status_code == 404 and "order_id" in missing.text, missing.text
    assert await personal_data.find_subjects(db_pool, ref=("order", f"NOPE-{unique}")) == []
    assert len((await fulfilment.get_fulfilment(client, order_id)).address_changes) == 1

    released = await api.post(
        f"/v1/fulfilments/{order_id}/holds/{handle}/release",
        json={"note": "confirmed"},
        headers=COORDINATOR,
    )
    assert released.status_code == 200 and released.json()["holds"][0]["released_at"]
    assert await wms.start_picking(order_id) is True

    # The warehouse webhook: out of order, repeated; the secret is required.
    now = datetime.now(UTC)

    def wms_event(kind: WarehouseEventKind, minutes: int) -> dict[str, Any]:
        return {
            "event_id": f"wh-{order_id}-{kind}",
            "order_id": order_id,
            "kind": kind.value,
            "occurred_at": (now + timedelta(minutes=minutes)).isoformat(),
            "site": "PAR-1",
        }

    no_secret = await api.post(
        "/v1/webhooks/warehouse/events",
        json={"events": [wms_event(WarehouseEventKind.ALLOCATED, 1)]},
        headers={"Authorization": "Bearer it-wms"},
    )
    assert no_secret.status_code == 401
    batch = [
        wms_event(WarehouseEventKind.PICKING_STARTED, 10),
        wms_event(WarehouseEventKind.ALLOCATED, 1),
    ]
    first = await api.post("/v1/webhooks/warehouse/events", json={"events": batch}, headers=WMS)
    assert first.status_code == 202 and first.json()["delivered"] == 2
    again = await api.post("/v1/webhooks/warehouse/events", json={"events": batch}, headers=WMS)
    assert again.json() == {"received": 2, "delivered": 0, "duplicates": 2, "unrouted": []}
    await eventually(
        lambda: fulfilment.get_fulfilment(client, order_id),
        lambda s: s.status is FulfilmentStatus.PICKING,
        what="picking",
    )

    # The status answer, from PostgreSQL only.
    answer = await api.get(f"/v1/orders/{order_id}/status", headers=AUDITOR)
    assert answer.status_code == 200
    view = answer.json()
    assert view["fulfilment_status"] == "picking"
    # (allocated may arrive after picking in another workflow task: then it is stale)
    states = [s["status"] for s in view["states"]]
    assert states[0] == "released" and states[-1] == "picking", states
    assert view["active_holds"] == []
    assert {c["process"] for c in view["cases"]} >= {"order-review", "fulfilment"}
    assert (await api.get("/v1/orders/NOPE-2/status", headers=AUDITOR)).status_code == 404

    # The parcel leaves and arrives: the fulfilment closes; a change is a 409 naming it.
    closing = [
        wms_event(WarehouseEventKind.PACKING_STARTED, 20),
        wms_event(WarehouseEventKind.PACKED, 30),
        {**wms_event(WarehouseEventKind.HANDED_TO_CARRIER, 40), "carrier": "ups"},
        wms_event(WarehouseEventKind.DELIVERED, 60),
    ]
    closing[2]["tracking_number"] = f"1ZE2E{unique}".upper()
    sent = await api.post("/v1/webhooks/warehouse/events", json={"events": closing}, headers=WMS)
    assert sent.json()["delivered"] == 4
    handle = client.get_workflow_handle(f"fulfilment:{order_id}")
    assert (await handle.result())["status"] == "delivered"
    closed = await api.post(
        f"/v1/fulfilments/{order_id}/holds", json={"reason": "other"}, headers=COORDINATOR
    )
    assert closed.status_code == 409 and "closed" in closed.text, closed.text

    # The shipment booked at handover was sent to the new address (read by its subject).
    booked = await eventually(
        lambda: get_shipment(db_pool, f"{order_id}-1"),
        lambda row: row is not None,
        what="the shipment booked at handover",
    )
    assert booked is not None and booked.record.destination is not None
    assert booked.record.destination.line1 == street

    # Temporal never holds the new street in clear (payload codec, no SA, no details).
    history = b"".join(
        path.read_bytes() for path in dev_server.db_path.parent.glob(dev_server.db_path.name + "*")
    )
    assert order_id.encode() in history
    assert street.encode() not in history
    # Nor decoded (issue 21): the update and the activities carry the subject id only.
    decoded = await decoded_history(client, f"fulfilment:{order_id}")
    assert state.address_ref.encode() in decoded
    assert street.encode() not in decoded, "the new street is in the fulfilment's history"

    # Erased (a privacy request destroys the subject's key): GET shows the placeholder.
    assert await personal_data.erase_subject(db_pool, state.address_ref, reason="test erasure")
    erased = (await api.get(f"/v1/fulfilments/{order_id}", headers=AUDITOR)).json()
    assert erased["shipping_address_erased"] is True
    assert erased["shipping_address"]["line1"] == personal_data.ERASED_PLACEHOLDER


async def test_the_simulated_warehouse_moves_a_released_order_to_the_carrier(
    client: Client, db_pool: asyncpg.Pool, settings: Settings, worker: Worker
) -> None:
    """`steward orders simulate-warehouse` (the demo of `make up`): the
    simulator's own timeline takes a released order to the carrier, each event
    through the webhook's intake to its fulfilment, which books the shipment
    with the address the order was released with."""
    order_id = await released_order(client, settings)
    began = datetime.now(UTC)
    ticks = 0

    def clock() -> datetime:
        # Ten minutes of warehouse time per tick: two days (one carrier cut-off) in 288 ticks.
        nonlocal ticks
        ticks += 1
        return began + timedelta(minutes=10 * ticks)

    seen: list[tuple[str, bool]] = []
    report = await fulfilment_simulator.run(
        client,
        db_pool,
        duration=timedelta(days=2),
        speed=1.0,
        every=timedelta(0),
        clock=clock,
        on_event=lambda event, routed: (
            seen.append((event.kind.value, routed)) if event.order_id == order_id else None
        ),
    )
    assert seen == [
        ("allocated", True),
        ("picking_started", True),
        ("packing_started", True),
        ("packed", True),
        ("handed_to_carrier", True),
    ]
    assert report.by_kind["handed_to_carrier"] >= 1
    state = await eventually(
        lambda: fulfilment.get_fulfilment(client, order_id),
        lambda s: s.status is FulfilmentStatus.HANDED_TO_CARRIER,
        what="handed to the carrier",
    )
    assert state.tracking_number
    # Booked after the status changed (its own activity): wait for the row itself.
    booked = await eventually(
        lambda: db_pool.fetchrow(
            "SELECT tracking_number FROM shipments WHERE order_id = $1", order_id
        ),
        lambda row: row is not None,
        what="the shipment booked at handover",
    )
    assert booked["tracking_number"] == state.tracking_number


async def test_release_facts_read_the_profile_the_warning_and_the_vip_mark(
    db_pool: asyncpg.Pool,
) -> None:
    """What the release reads for the QC rules in one round trip: a VIP is a
    customer on the allow list with a reason starting "vip"."""
    unique = uuid.uuid4().hex[:8]
    vip, trusted = f"C-VIP-{unique}", f"C-OK-{unique}"
    assert await fulfilment_store.release_facts(db_pool, vip, f"O-{unique}") == (
        fulfilment_store.ReleaseFacts(completed_orders=0, chargebacks=0, fraud_warning_ref=None)
    )
    await signals.add_to_list(db_pool, "allow", "customer", vip, "vip_customer", "risk-team")
    await signals.add_to_list(db_pool, "allow", "customer", trusted, "verified", "risk-team")
    assert (await fulfilment_store.release_facts(db_pool, vip, f"O-{unique}")).vip is True
    assert (await fulfilment_store.release_facts(db_pool, trusted, f"O-{unique}")).vip is False

    # A carrier claim on the customer's earlier parcel (its audit rows carry
    # the order id): a prior claim for the QC rules; the order itself does not count.
    claimant, earlier = f"C-CLAIM-{unique}", f"O-EARLIER-{unique}"
    await db_pool.execute(
        """
        INSERT INTO orders_seen (order_id, customer_id, market, email_hash, card_hash,
                                 device_hash, address_hash, amount_minor, currency, placed_at)
        VALUES ($1, $2, 'FR', 'e', 'c', 'd', 'a', 1000, 'EUR', now())
        """,
        earlier,
        claimant,
    )
    assert not (await fulfilment_store.release_facts(db_pool, claimant, f"O-{unique}")).prior_claim
    await audit_store.insert_entry(
        db_pool,
        AuditEntry(
            entry_id=f"claim-{unique}",
            workflow_id=f"carrier-claim:{earlier}-1",
            process=CARRIER_CLAIM,
            case_id=f"{earlier}-1",
            actor="steward",
            role=Role.SYSTEM,
            action="claim_filed",
            reason="lost parcel",
            occurred_at=datetime.now(UTC),
            order_id=earlier,
        ),
    )
    assert (await fulfilment_store.release_facts(db_pool, claimant, f"O-{unique}")).prior_claim
    assert not (await fulfilment_store.release_facts(db_pool, claimant, earlier)).prior_claim


async def test_migration_0027_gives_earlier_address_subjects_their_owner(
    db_pool: asyncpg.Pool,
) -> None:
    """An address subject written before issue 21's owner (only the order's
    reference) gets the released order's subject as owner, so a privacy
    request for the customer reaches it; running it again changes nothing."""
    order = make_order(f"FUL-MIG-{uuid.uuid4().hex[:10]}")
    assert await fulfilment_store.save_order(db_pool, order)
    fields = {"line1": "3 quai Voltaire", "city": "Paris", "postal_code": "75007", "country": "FR"}
    earlier = await personal_data.put_subject(
        db_pool, kind="address", fields=fields, refs=[("order", order.order_id)]
    )
    customer = await personal_data.find_subjects(db_pool, fingerprint_of=order.customer.email)
    assert earlier not in await personal_data.live_subjects(db_pool, customer)
    sql = (MIGRATIONS / "0027_fulfilment_address_owner.sql").read_text()
    await db_pool.execute(sql)
    await db_pool.execute(sql)
    owner = fulfilment_store.order_subject_id(order.order_id)
    assert (await personal_data.subject_info(db_pool, earlier)).owner_id == owner
    assert earlier in await personal_data.live_subjects(db_pool, customer)


async def test_the_console_s_address_form_keeps_the_address_out_of_temporal(
    api: httpx.AsyncClient, client: Client, db_pool: asyncpg.Pool, settings: Settings
) -> None:
    """The console's form goes through the API's route function: the address
    is kept as an edge subject and the fulfilment's history holds only its id."""
    order_id = await released_order(client, settings)
    page = await api.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    signed = await api.post("/console/login", data={"csrf": csrf.group(1), "api_key": "it-coord"})
    assert signed.status_code == 303, signed.text
    case_url = f"/console/cases/fulfilment:{order_id}"
    page = await api.get(case_url)
    assert 'id="fulfilment-change-address"' in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    street = f"{uuid.uuid4().hex[:8]} rue de la Paix"
    address = {"line1": street, "city": "Paris", "postal_code": "75002", "country": "FR"}
    sent = await api.post(
        case_url,
        data={
            "csrf": csrf.group(1),
            "nonce": "n-1",
            "action": "fulfilment-change-address",
            **address,
            "note": "the client called",
        },
    )
    assert sent.status_code == 303, sent.text
    state = await fulfilment.get_fulfilment(client, order_id)
    assert state.address_changes[-1].outcome == "applied"
    assert state.address_ref == fulfilment_store.edge_address_subject_id(
        order_id, fulfilment_store.keyed_fingerprint(Address(**address))
    )
    assert (await fulfilment_store.get_address(db_pool, state.address_ref)).line1 == street
    decoded = await decoded_history(client, f"fulfilment:{order_id}")
    assert state.address_ref.encode() in decoded and street.encode() not in decoded
