"""Where a customer's or an employee's personal values could leak, searched
(issue 21, item 5): the structured logs (the production pipeline of
workers/logging.py, at DEBUG), Temporal's histories decoded through the
payload codec (every payload of every event: inputs, signals, updates,
activity inputs and results, failures), the pending activities' last
failures, and every PostgreSQL table outside the personal-data store.

One scenario per process drives it the way the API and the webhooks do (an
in-process app over ASGI, a real worker, the session's Temporal and
PostgreSQL) with values made for the run (`Persona`), and leaves a `Trail`:
what it typed, what it logged, which workflows it started. The tests of
test_no_pii_in_logs.py and test_no_pii_in_temporal.py read the trails; each
scenario runs once per session (`trail_of`), whichever test asks first.

Every leak is reported with the process, the workflow id, the value's label
and where it was found (the event type, the table, the log line), so a
failing run says what to fix:

    .venv/bin/pytest tests/integration/test_no_pii_in_temporal.py -k fulfilment
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, quote_plus, urlencode
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import structlog
from google.protobuf.message import Message
from slack_sdk.signature import SignatureVerifier
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from activities.simulated import BOUNCING_DOMAIN
from domain.campaign import CampaignParameters, CatalogueEntry, PriceLine, Quota
from domain.common import Role
from domain.orders import ItemCategory
from domain.webhook_signatures import stripe_signature_header
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import campaign as campaign_store
from store.deliveries import get_shipment
from tests.factories import order_data
from tests.integration.polling import eventually
from workers import activities
from workers.logging import configure_logging
from workers.settings import Settings

# Tables that hold personal data by design (encrypted, or keyed hashes only).
PERSONAL_DATA_TABLES = frozenset({"personal_subjects", "personal_fingerprints"})

WEBHOOK_SECRET = "pii-probe-webhook-secret"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
KEYS = {
    "pii-system": ("storefront", Role.SYSTEM),
    "pii-ops": ("cs-julie", Role.OPS),
    "pii-coord": ("alice", Role.COORDINATOR),
    "pii-manager": ("marc", Role.MANAGER),
    "pii-finance": ("fabien", Role.FINANCE),
    "pii-auditor": ("audrey", Role.AUDITOR),
}
SYSTEM = {"Authorization": "Bearer pii-system"}
WEBHOOK = {**SYSTEM, "X-Steward-Webhook-Secret": WEBHOOK_SECRET}
OPS = {"Authorization": "Bearer pii-ops"}
COORDINATOR = {"Authorization": "Bearer pii-coord"}
MANAGER = {"Authorization": "Bearer pii-manager"}
FINANCE = {"Authorization": "Bearer pii-finance"}
AUDITOR = {"Authorization": "Bearer pii-auditor"}


# ------------------------------------------------------------------ values


@dataclass(frozen=True)
class Persona:
    """A person's values, unique to the run so a hit is never another test's."""

    tag: str
    email: str
    name: str
    phone: str
    street: str
    line2: str
    city: str
    region: str
    ip: str
    words: str  # free text the person types

    @classmethod
    def new(cls, tag: str) -> Persona:
        u = uuid.uuid4().hex[:10]
        return cls(
            tag=tag,
            email=f"ottilie.{u}@example.com",
            name=f"Ottilie Marchetti-{u}",
            phone=f"+33 6 {u[:2]} 41 {u[2:4]} 07",
            street=f"{u} rue du Faubourg Saint-Honoré",
            line2=f"Escalier {u}",
            city=f"Paris {u[:6]}",
            region=f"Île-de-France {u[4:]}",
            ip=f"2001:db8::{u[:4]}:{u[4:8]}",
            words=f"Please leave it with the concierge, code {u} at the gate",
        )

    def values(self) -> dict[str, str]:
        """Label → value: what must not appear outside the personal-data store."""
        return {
            f"{self.tag}.{name}": getattr(self, name)
            for name in (
                "email",
                "name",
                "phone",
                "street",
                "line2",
                "city",
                "region",
                "ip",
                "words",
            )
        }

    def address(self, country: str = "FR", postal_code: str = "75008") -> dict[str, Any]:
        return {
            "line1": self.street,
            "line2": self.line2,
            "city": self.city,
            "postal_code": postal_code,
            "region": self.region,
            "country": country,
        }

    def order_json(self, order_id: str, **overrides: Any) -> dict[str, Any]:
        """An order (the storefront's JSON) placed by this person; low risk unless
        `payment` says otherwise. Its own customer, card and device ids."""
        unique = order_id.lower()
        data = order_data(
            order_id,
            customer={
                "customer_id": f"C-{unique}",
                "email": self.email,
                "full_name": self.name,
                "phone": self.phone,
            },
            billing_address=self.address(),
            shipping_address=self.address(),
            payment={"card_fingerprint": f"fp-{unique}", **overrides.pop("payment", {})},
            device={"device_id": f"dev-{unique}", "ip_address": self.ip},
            **overrides,
        )
        result: dict[str, Any] = json.loads(json.dumps(data, default=lambda v: v.isoformat()))
        return result


def _forms(value: str) -> set[bytes]:
    """The ways a value is written down: as is, JSON-escaped (non-ASCII as
    \\uXXXX) once or twice, case-folded, URL-encoded."""
    escaped = json.dumps(value)[1:-1]
    # Escaped twice: JSON kept as a string in JSON, or a row's text (which
    # doubles backslashes) holding JSON-escaped text.
    twice = json.dumps(escaped)[1:-1]
    forms = {value, escaped, twice, value.lower(), value.upper()}
    forms |= {quote(value), quote_plus(value)}
    return {f.encode() for f in forms}


def find_values(haystack: bytes | str, values: Mapping[str, str]) -> list[str]:
    """The labels of the values found in `haystack`."""
    data = haystack.encode() if isinstance(haystack, str) else haystack
    return [label for label, value in values.items() if any(f in data for f in _forms(value))]


# ------------------------------------------------------------------ Temporal


def _payloads(message: Message) -> list[Payload]:
    found: list[Payload] = []
    for _, value in message.ListFields():
        if isinstance(value, Payload):
            found.append(value)
        elif isinstance(value, Message):
            found.extend(_payloads(value))
        elif isinstance(value, (str, bytes, int, float, bool)):
            continue
        else:  # a repeated field or a map
            items: Any = value.values() if callable(getattr(value, "values", None)) else value
            for item in items:
                if isinstance(item, Payload):
                    found.append(item)
                elif isinstance(item, Message):
                    found.extend(_payloads(item))
    return found


async def _decoded(client: Client, message: Message) -> bytes:
    """The message's own bytes (ids, names, plain strings) and every payload
    in it decoded by the client's codec (data and metadata)."""
    codec = client.data_converter.payload_codec
    assert codec is not None, "the client must carry Steward's payload codec"
    payloads = _payloads(message)
    decoded = await codec.decode(payloads) if payloads else []
    parts = [message.SerializeToString()]
    for payload in decoded:
        parts.append(payload.data)
        parts.extend(payload.metadata.values())
    return b"\n".join(parts)


_FAILURE_EVENTS = frozenset(
    {
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
    }
)


@dataclass(frozen=True)
class Found:
    process: str
    workflow_id: str
    where: str  # an event type, "pending activity ...", a table, "logs"
    label: str
    value: str

    def __str__(self) -> str:
        return (
            f"[{self.process}] {self.label} = {self.value!r} found in {self.where} "
            f"of workflow {self.workflow_id}"
        )


async def _events(client: Client, workflow_id: str) -> list[HistoryEvent]:
    return [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]


async def history_leaks(
    client: Client, process: str, workflow_id: str, values: Mapping[str, str]
) -> list[Found]:
    """Every value found in any event of the workflow's history, decoded."""
    found: list[Found] = []
    events = await _events(client, workflow_id)
    # Proof the payloads were decoded: the case's key is in the decoded input.
    key = workflow_id.rsplit(":", 1)[-1]
    started = events[0].workflow_execution_started_event_attributes
    assert key.encode() in await _decoded(client, started.input), (
        f"{workflow_id}: its key {key!r} is not in its decoded input: not decoded?"
    )
    for event in events:
        where = f"event {event.event_id} {EventType.Name(event.event_type)}"
        for label in find_values(await _decoded(client, event), values):
            found.append(Found(process, workflow_id, where, label, values[label]))
    return found


async def failures(client: Client, workflow_id: str) -> list[tuple[str, bytes]]:
    """The workflow's failures, decoded, each with where it was: its failed
    activities, workflow tasks, children and itself, and the last failure of
    every activity still retrying."""
    found: list[tuple[str, bytes]] = []
    for event in await _events(client, workflow_id):
        if event.event_type in _FAILURE_EVENTS:
            where = f"event {event.event_id} {EventType.Name(event.event_type)}"
            found.append((where, await _decoded(client, event)))
    described = await client.get_workflow_handle(workflow_id).describe()
    for pending in described.raw_description.pending_activities:
        if pending.HasField("last_failure"):
            where = f"pending activity {pending.activity_type.name}'s last failure"
            found.append((where, await _decoded(client, pending.last_failure)))
    return found


async def failure_leaks(
    client: Client, process: str, workflow_id: str, values: Mapping[str, str]
) -> list[Found]:
    """Values in any of the workflow's failures (`failures`)."""
    return [
        Found(process, workflow_id, where, label, values[label])
        for where, text in await failures(client, workflow_id)
        for label in find_values(text, values)
    ]


def process_of(workflow_id: str) -> str:
    """`fulfilment:FR-1` → fulfilment; `order-review:X` → order_review."""
    return workflow_id.split(":", 1)[0].replace("-", "_")


# ------------------------------------------------------------------ PostgreSQL


def _like(form: bytes) -> str:
    text = form.decode()
    for special in ("\\", "%", "_"):
        text = text.replace(special, "\\" + special)
    return f"%{text}%"


async def table_leaks(db: asyncpg.Pool, process: str, values: Mapping[str, str]) -> list[Found]:
    """Values in clear in any table but the personal-data store's (each row
    as text, searched by PostgreSQL; only the rows that match come back)."""
    tables = await db.fetch(
        "SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public'"
    )
    patterns = sorted({_like(form) for value in values.values() for form in _forms(value)})
    found: list[Found] = []
    for table in tables:
        if table["name"] in PERSONAL_DATA_TABLES:
            continue
        rows = await db.fetch(
            f"SELECT t::text AS row FROM {table['name']} t WHERE t::text LIKE ANY($1::text[])",
            patterns,
        )
        for row in rows:
            for label in find_values(row["row"], values):
                found.append(Found(process, "-", f"table {table['name']}", label, values[label]))
    return found


# ------------------------------------------------------------------ logs


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """The production log pipeline (structlog and stdlib, JSON lines) at DEBUG
    into a buffer; the previous set-up is put back afterwards."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    libs = {
        name: (list(lg.handlers), lg.propagate, lg.level)
        for name in ("temporalio", "uvicorn", "uvicorn.error", "uvicorn.access")
        for lg in [logging.getLogger(name)]
    }
    saved_structlog = structlog.get_config()
    buffer = io.StringIO()
    configure_logging("DEBUG", "json", stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        for name, (handlers, propagate, level) in libs.items():
            lg = logging.getLogger(name)
            lg.handlers[:] = handlers
            lg.propagate = propagate
            lg.setLevel(level)
        structlog.configure(**saved_structlog)


def log_leaks(process: str, logs: str, values: Mapping[str, str]) -> list[Found]:
    found: list[Found] = []
    for line in logs.splitlines():
        for label in find_values(line, values):
            found.append(Found(process, "-", f"log line {line[:300]!r}", label, values[label]))
    return found


# ------------------------------------------------------------------ the stack


@dataclass
class Stack:
    """A worker, the API in process and what a scenario started."""

    client: Client
    db: asyncpg.Pool
    settings: Settings
    api: httpx.AsyncClient
    workflow_ids: set[str] = field(default_factory=set)

    async def post(self, url: str, body: Any, headers: Mapping[str, str], *ok: int) -> Any:
        answer = await self.api.post(url, json=body, headers=dict(headers))
        assert answer.status_code in (ok or (200, 201, 202)), f"{url}: {answer.text}"
        return answer.json() if answer.content else None

    async def get(self, url: str, headers: Mapping[str, str] = AUDITOR) -> Any:
        answer = await self.api.get(url, headers=dict(headers))
        return answer.json() if answer.status_code == 200 else None

    async def wait(
        self, url: str, done: Callable[[Any], bool], what: str, timeout: float = 30
    ) -> Any:
        return await eventually(
            lambda: self.get(url), lambda s: s is not None and done(s), what=what, timeout=timeout
        )

    async def on_task_queue(self) -> set[str]:
        """The workflows this scenario's worker ran (children and started ones too)."""
        query = f'TaskQueue = "{self.settings.task_queue}"'
        return {wf.id async for wf in self.client.list_workflows(query)}


@asynccontextmanager
async def stack(
    client: Client, db: asyncpg.Pool, settings: Settings, process: str
) -> AsyncIterator[Stack]:
    settings = settings.model_copy(
        update={
            "task_queue": f"pii-{process}-{uuid.uuid4().hex[:8]}",
            "webhook_secret": WEBHOOK_SECRET,
            "slack_signing_secret": SLACK_SECRET,
            "stripe_webhook_secrets": STRIPE_SECRET,
        }
    )
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db, settings),
    ):
        app = create_app(settings, client=client, pool=db, api_keys=ApiKeyStore.from_mapping(KEYS))
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://steward.test", timeout=60
        ) as http:
            yield Stack(client, db, settings, http)


@dataclass(frozen=True)
class Trail:
    process: str
    values: dict[str, str]
    logs: str
    workflow_ids: frozenset[str]  # every workflow the scenario's worker ran
    named: frozenset[str]  # those the scenario itself started or waited for


Scenario = Callable[[Stack], Awaitable[dict[str, Any]]]


async def run(
    process: str, scenario: Scenario, client: Client, db: asyncpg.Pool, settings: Settings
) -> Trail:
    with captured_logs() as logs:
        async with stack(client, db, settings, process) as s:
            values = await scenario(s)
            started = s.workflow_ids | await s.on_task_queue()
    return Trail(process, values, logs.getvalue(), frozenset(started), frozenset(s.workflow_ids))


# ------------------------------------------------------------------ scenarios


async def released_order(s: Stack, person: Persona, prefix: str, **overrides: Any) -> str:
    """An order placed by `person`, reviewed (auto-accepted) and released: its
    fulfilment started, as the storefront's call to the API does it."""
    order_id = f"{prefix}-{uuid.uuid4().hex[:10].upper()}"
    await s.post("/v1/order-reviews", person.order_json(order_id, **overrides), SYSTEM, 202)
    s.workflow_ids.add(f"order-review:{order_id}")
    await s.wait(
        f"/v1/order-reviews/{order_id}", lambda r: r["status"] == "released", "the release"
    )
    await s.wait(f"/v1/fulfilments/{order_id}", lambda f: f["status"] == "released", "fulfilment")
    s.workflow_ids.add(f"fulfilment:{order_id}")
    return order_id


async def order_review(s: Stack) -> dict[str, str]:
    """A risky order waits for a coordinator, who asks the customer; the
    customer answers in their own words; the coordinator approves."""
    customer = Persona.new("customer")
    order_id = f"PII-R-{uuid.uuid4().hex[:10].upper()}"
    risky = {"payment": {"avs_result": "mismatch", "cvv_result": "mismatch"}}
    await s.post("/v1/order-reviews", customer.order_json(order_id, **risky), SYSTEM, 202)
    s.workflow_ids.add(f"order-review:{order_id}")
    url = f"/v1/order-reviews/{order_id}"
    await s.wait(url, lambda r: r["status"] == "awaiting_review", "the review to wait")
    decide = {"reason_code": "identity_check_needed", "note": "asked for ID"}
    await s.post(f"{url}/decision", {"decision": "ask_customer", **decide}, COORDINATOR)
    await s.wait(url, lambda r: r["status"] == "awaiting_customer", "the question")
    answer = {"event_id": "answer-1", "confirmed": True, "message": customer.words}
    await s.post(f"{url}/customer-answer", answer, SYSTEM, 202)
    await s.wait(url, lambda r: r["status"] == "awaiting_review", "the answer")
    approve = {"decision": "approve", "reason_code": "verified_customer", "note": "ID seen"}
    await s.post(f"{url}/decision", approve, COORDINATOR)
    await s.wait(url, lambda r: r["status"] == "released", "the release")
    return customer.values()


def bouncing(person: Persona) -> Persona:
    """The same person with an email address the simulated notifier bounces."""
    return replace(person, email=person.email.replace("example.com", BOUNCING_DOMAIN))


async def bounced(s: Stack, case_id: str) -> None:
    """Wait for the case's bounced message to the customer to be on record."""
    await eventually(
        lambda: s.db.fetchval(
            "SELECT count(*) FROM audit_log WHERE case_id = $1 AND action = $2",
            case_id,
            "customer_notification_failed",
        ),
        lambda n: n > 0,
        what=f"the bounced message of {case_id} on record",
    )


def warehouse_event(order_id: str, kind: str, minutes: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"wh-{order_id}-{kind}",
        "order_id": order_id,
        "kind": kind,
        "occurred_at": (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat(),
        "site": "PAR-1",
        **extra,
    }


async def fulfilment(s: Stack) -> dict[str, str]:
    """A released order: a hold for its address, the customer's new address,
    a timed delivery, the hold released, an address the country refuses; the
    warehouse packs it and hands it to the carrier, booked to the new address.
    Another released order the warehouse cancels: the message to its customer
    bounces (a failed activity)."""
    customer = Persona.new("customer")
    moved = Persona.new("new_address")
    order_id = await released_order(s, customer, "PII-F")
    url = f"/v1/fulfilments/{order_id}"
    held = await s.post(
        f"{url}/holds", {"reason": "incorrect_address", "note": "flat number missing"}, COORDINATOR
    )
    handle = held["holds"][0]["handle"]
    changed = await s.post(f"{url}/address", {"address": moved.address()}, COORDINATOR)
    assert changed["address_changes"][-1]["outcome"] == "applied", changed
    start = datetime.now(UTC) + timedelta(days=2)
    timed = {
        "kind": "timed",
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=2)).isoformat(),
        "note": "client at home in the morning",
    }
    await s.post(f"{url}/special-delivery", timed, COORDINATOR)
    await s.post(f"{url}/holds/{handle}/release", {"note": "address confirmed"}, COORDINATOR)
    # Refused by the country's format (answered to the caller, who sent it;
    # kept out of the logs, the history and the tables).
    bad = {**moved.address(), "postal_code": "ABC-DEF-GHI"}
    refused = await s.api.post(f"{url}/address", json={"address": bad}, headers=COORDINATOR)
    assert refused.status_code == 422, refused.text
    tracking = f"1ZF{uuid.uuid4().hex[:10].upper()}"
    events = [
        warehouse_event(order_id, "picking_started", 10),
        warehouse_event(order_id, "packing_started", 20),
        warehouse_event(order_id, "packed", 30),
        warehouse_event(order_id, "handed_to_carrier", 40, carrier="ups", tracking_number=tracking),
    ]
    await s.post("/v1/webhooks/warehouse/events", {"events": events}, WEBHOOK, 202)
    # The carrier got the real new address, read by its subject id.
    booked = await eventually(
        lambda: get_shipment(s.db, f"{order_id}-1"),
        lambda row: row is not None,
        what="the shipment booked at handover",
    )
    assert booked is not None and booked.record.destination is not None
    assert booked.record.destination.line1 == moved.street

    unreachable = bouncing(Persona.new("cancelled_customer"))
    cancelled = await released_order(s, unreachable, "PII-FC")
    event = warehouse_event(cancelled, "cancelled", 5, note="damaged in the warehouse")
    await s.post("/v1/webhooks/warehouse/events", {"events": [event]}, WEBHOOK, 202)
    await bounced(s, cancelled)
    return customer.values() | moved.values() | unreachable.values()


def shipment_json(order: dict[str, Any]) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:10].upper()
    return {
        "shipment_id": f"SH-{suffix}",
        "carrier": "ups",
        "tracking_number": f"1Z{suffix}",
        "service_level": "express",
        "expected_delivery_at": datetime.now(UTC).isoformat(),
        "order": order,
    }


def carrier_event(shipment: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "event_id": f"ups-{uuid.uuid4().hex[:12]}",
        "carrier": shipment["carrier"],
        "tracking_number": shipment["tracking_number"],
        "shipment_id": shipment["shipment_id"],
        "status": status,
        "exception_code": "recipient_not_home" if status == "delivery_failed" else None,
        "location": "Paris, FR",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


async def shipped(
    s: Stack, person: Persona, prefix: str, *, release: bool = True
) -> dict[str, Any]:
    """An order's parcel, registered with the carrier integration; the order
    reviewed and released first unless `release` is False (never packed)."""
    if release:
        order_id = await released_order(s, person, prefix)
    else:
        order_id = f"{prefix}-{uuid.uuid4().hex[:10].upper()}"
    shipment = shipment_json(person.order_json(order_id))
    await s.post("/v1/shipments", shipment, SYSTEM, 201)
    return shipment


async def failed_delivery(s: Stack) -> dict[str, Any]:
    """A parcel the carrier could not deliver; the message to the customer
    bounces (a failed activity); the customer replies with a new address and
    a message; the coordinator reships there."""
    customer = bouncing(Persona.new("customer"))
    moved = Persona.new("new_address")
    shipment = await shipped(s, customer, "PII-D")
    sid = shipment["shipment_id"]
    await s.post("/v1/webhooks/carrier", carrier_event(shipment, "delivery_failed"), SYSTEM, 202)
    s.workflow_ids.add(f"failed-delivery:{sid}")
    url = f"/v1/failed-deliveries/{sid}"
    await s.wait(url, lambda d: d["status"] == "awaiting_customer", "the customer asked")
    reply = {
        "event_id": "reply-1",
        "option": "new_address",
        "address": moved.address(),
        "message": customer.words,
    }
    await s.post(f"{url}/customer-reply", reply, SYSTEM, 202)
    await s.wait(url, lambda d: d["status"] == "awaiting_decision", "the reply")
    decision = {"decision": "reship", "address": moved.address(), "note": "new address given"}
    await s.post(f"{url}/decision", decision, COORDINATOR)
    await s.wait(url, lambda d: d["status"] == "reshipped", "the reship")
    await bounced(s, sid)
    return customer.values() | moved.values()


async def carrier_claim(s: Stack) -> dict[str, Any]:
    """A parcel the carrier reports lost: a claim is filed with its documents
    and the customer is offered a remedy (a failed delivery)."""
    customer = Persona.new("customer")
    # Never packed (not released by Steward): no CCTV to wait for, filed at once.
    shipment = await shipped(s, customer, "PII-C", release=False)
    await s.post("/v1/webhooks/carrier", carrier_event(shipment, "lost"), SYSTEM, 202)
    claim = f"carrier-claim:ups:{shipment['tracking_number']}"
    remedy = f"failed-delivery:{shipment['shipment_id']}"
    s.workflow_ids |= {claim, remedy}
    await s.wait(
        f"/v1/carrier-claims/ups/{shipment['tracking_number']}",
        lambda c: c["status"] == "filed",
        "the claim filed",
    )
    await s.wait(
        f"/v1/failed-deliveries/{shipment['shipment_id']}",
        lambda d: d["status"] == "awaiting_customer",
        "the remedy offered",
    )
    for workflow_id in (claim, remedy):
        await s.client.get_workflow_handle(workflow_id).terminate("pii probe over")
    return customer.values()


def return_json(rma_id: str, order_id: str, person: Persona, **extra: Any) -> dict[str, Any]:
    return {
        "rma_id": rma_id,
        "order": {
            "order_id": order_id,
            "market": "FR",
            "currency": "EUR",
            "delivered_at": (datetime.now(UTC) - timedelta(days=4)).isoformat(),
            "lines": [
                {
                    "sku": "HB-TOTE-MM-NOIR",
                    "name": "Tote MM, black grained calfskin",
                    "unit_price_minor": 245_000,
                    "quantity": 1,
                }
            ],
            "authorisation_ref": f"auth-{order_id}",
        },
        "lines": [{"sku": "HB-TOTE-MM-NOIR", "quantity": 1}],
        "reason": "too_small",
        "contact": {"email": person.email, "locale": "fr"},
        **extra,
    }


async def returns(s: Stack) -> dict[str, Any]:
    """Two returns of a released order: one the customer cancels in their own
    words; an exchange, whose parcel reaches the warehouse and passes QC, and
    whose replacement order (the customer's again) is reviewed."""
    customer = Persona.new("customer")
    order_id = await released_order(s, customer, "PII-RT")
    cancelled = f"RMA-{uuid.uuid4().hex[:10].upper()}"
    await s.post(
        "/v1/returns", return_json(cancelled, order_id, customer, resolution="refund"), OPS, 202
    )
    s.workflow_ids.add(f"return:{cancelled}")
    url = f"/v1/returns/{cancelled}"
    await s.wait(url, lambda r: r["status"] == "label_issued", "the label")
    cancel = {"event_id": "cancel-1", "reason": customer.words}
    await s.post(f"{url}/cancel", cancel, SYSTEM, 202)
    await s.wait(url, lambda r: r["status"] == "cancelled", "the cancellation")

    exchanged = f"RMA-{uuid.uuid4().hex[:10].upper()}"
    replacement = f"PII-EX-{uuid.uuid4().hex[:10].upper()}"
    body = return_json(
        exchanged,
        order_id,
        customer,
        resolution="exchange",
        replacement=customer.order_json(replacement),
    )
    await s.post("/v1/returns", body, OPS, 202)
    s.workflow_ids.add(f"return:{exchanged}")
    url = f"/v1/returns/{exchanged}"
    label = await s.wait(url, lambda r: r["status"] == "label_issued", "the label")
    for number, kind in enumerate(("in_transit", "delivered_to_warehouse")):
        scan = {
            "event_id": f"scan-{number}",
            "kind": kind,
            "tracking_number": label["tracking_number"],
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        await s.post(f"{url}/carrier-events", scan, WEBHOOK, 202)
    qc = {"event_id": "qc-1", "grade": "first_choice", "notes": "as new", "photos": []}
    await s.post(f"{url}/qc-results", qc, WEBHOOK, 202)
    await s.wait(url, lambda r: r["status"] == "exchanged", "the exchange")
    s.workflow_ids.add(f"order-review:{replacement}")
    await s.wait(
        f"/v1/order-reviews/{replacement}",
        lambda r: r["status"] in ("released", "awaiting_review"),
        "the replacement's review",
    )
    return customer.values()


def answered(status: str) -> Callable[[Any], bool]:
    return lambda r: r["status"] == status or r.get("answered_at") is not None


async def privacy_request(s: Stack) -> dict[str, Any]:
    """A customer with a released order asks for their data (access), then to
    be forgotten (erasure)."""
    customer = Persona.new("customer")
    await released_order(s, customer, "PII-P")
    for kind, done in (("access", "exported"), ("erasure", "erased")):
        request_id = f"PR-{uuid.uuid4().hex[:10].upper()}"
        filed = {
            "request_id": request_id,
            "kind": kind,
            "email": customer.email,
            "jurisdiction": "EU",
        }
        await s.post("/v1/privacy-requests", filed, COORDINATOR, 202)
        s.workflow_ids.add(f"privacy-request:{request_id}")
        url = f"/v1/privacy-requests/{request_id}"
        await s.wait(url, lambda r: r["status"] == "awaiting_verification", "verification")
        verified = {"decision": "verified", "reason": "passport seen"}
        await s.post(f"{url}/verification", verified, MANAGER)
        await s.wait(url, answered(done), f"the {kind} request answered")
        if kind == "access":
            export = await s.api.get(f"{url}/export", headers=MANAGER)
            assert export.status_code == 200 and customer.email in export.text, export.text
    return customer.values()


def slack_command(text: str, channel: str) -> tuple[str, dict[str, str]]:
    """A slash command's body as Slack sends it, and its signed headers."""
    body = urlencode(
        {
            "team_id": "T0001",
            "channel_id": channel,
            "user_id": "U2147483697",
            "user_name": "alice",
            "command": "/steward",
            "text": text,
            "response_url": "https://hooks.slack.com/commands/1234/5678",
            "trigger_id": f"13345224609.738474920.{uuid.uuid4().hex}",
        }
    )
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return body, {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def ops_request(s: Stack) -> dict[str, Any]:
    """The ops desk: an address change for a released order, with the
    customer's call written down, applied and resolved; a QC check whose reason
    quotes the customer; a request opened from Slack, whose thread Steward
    posts to, resolved."""
    customer = Persona.new("customer")
    moved = Persona.new("new_address")
    caller = Persona.new("caller")  # who the coordinator wrote about
    order_id = await released_order(s, customer, "PII-O")
    note = f"{caller.name} called from {caller.phone} ({caller.email}): {caller.words}"
    drafts: list[dict[str, Any]] = [
        {"details": {"type": "address_change", "order_id": order_id, "address": moved.address()}},
        {"details": {"type": "qc_check", "order_id": order_id, "reason": customer.words}},
    ]
    opened = []
    for draft in drafts:
        answer = await s.post("/v1/ops-requests", {**draft, "description": note}, COORDINATOR)
        opened.append(answer["request_id"])
        s.workflow_ids.add(answer["workflow_id"])
    channel = f"C{uuid.uuid4().hex[:8].upper()}"
    body, headers = slack_command(f'other note="{customer.words}" priority=high', channel)
    slack = await s.api.post("/v1/slack/commands", content=body, headers=headers)
    assert slack.status_code == 200, slack.text
    opened.append(slack.json()["text"].split()[1].rstrip(";"))
    for request_id in opened:
        url = f"/v1/ops-requests/{request_id}"
        await s.wait(url, lambda r: r["status"] == "open", "the ticket open")
        await s.post(f"{url}/claim", None, COORDINATOR)
        done = {"outcome": "done", "root_cause": "customer_request", "note": "done as asked"}
        await s.post(f"{url}/resolve", done, COORDINATOR)
        await s.wait(url, lambda r: r["status"] == "resolved", "the ticket resolved")
    # The desk's address reached fulfilment, which applied it.
    await s.wait(
        f"/v1/fulfilments/{order_id}",
        lambda f: any(c["outcome"] == "applied" for c in f["address_changes"]),
        "the address change applied",
    )
    # Steward posted the request's updates to its Slack thread.
    await eventually(
        lambda: s.db.fetchval("SELECT count(*) FROM sim_chat_messages WHERE channel = $1", channel),
        lambda n: n > 0,
        what="the request's thread",
    )
    return customer.values() | moved.values() | caller.values()


CAMPAIGN_SKUS = {"HB-TOTE-MM-NOIR": 122_500, "SLG-WALLET-NOIR": 30_000}


async def campaign(s: Stack) -> dict[str, Any]:
    """An employee sale: a roster with employees' names and work emails,
    prepared and approved; a collaborator's gift request in their own words,
    shipped; an employee orders (shipped to their home)."""
    buyer, colleague = Persona.new("employee"), Persona.new("colleague")
    await campaign_store.seed_sim_stock(s.db, dict.fromkeys(CAMPAIGN_SKUS, 1000))
    await campaign_store.seed_sim_catalogue(
        s.db,
        [
            CatalogueEntry(sku=sku, description=sku.title(), visuals=4, category=category)
            for sku, category in zip(
                CAMPAIGN_SKUS, ("handbags", "small_leather_goods"), strict=True
            )
        ],
    )
    paris = ZoneInfo("Europe/Paris")
    now = datetime.now(UTC)
    entity = f"Maison {uuid.uuid4().hex[:6]}"
    campaign_id = f"ES-{uuid.uuid4().hex[:10].upper()}"
    params = CampaignParameters(
        campaign_id=campaign_id,
        name="Winter sale",
        timezone="Europe/Paris",
        opens_local=(now + timedelta(hours=1))
        .astimezone(paris)
        .replace(tzinfo=None, microsecond=0),
        closes_local=(now + timedelta(hours=3))
        .astimezone(paris)
        .replace(tzinfo=None, microsecond=0),
        legal_entities=[entity],
        countries=["FR"],
        currency="EUR",
        site="PAR-1",
        quotas={"G1": Quota(max_units=4, max_amount_minor=10_000_000)},
        prices=[
            PriceLine(
                sku=sku,
                name=sku.title(),
                category=ItemCategory.HANDBAGS
                if sku.startswith("HB")
                else (ItemCategory.SMALL_LEATHER_GOODS),
                list_price_minor=price * 2,
                sale_price_minor=price,
                allocated_units=10,
            )
            for sku, price in CAMPAIGN_SKUS.items()
        ],
    )
    url = f"/v1/campaigns/{campaign_id}"
    await s.post("/v1/campaigns", params.model_dump(mode="json"), COORDINATOR, 201)
    s.workflow_ids.add(f"campaign:{campaign_id}")
    roster = "employee_id,name,work_email,legal_entity,country,grade,start_date,leave_date\n"
    for number, person in enumerate((buyer, colleague), start=1):
        roster += f"E{number:04d},{person.name},{person.email},{entity},FR,G1,2020-01-06,\n"
    imported = await s.api.post(
        f"{url}/roster",
        content=roster.encode(),
        headers={**COORDINATOR, "content-type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    await s.post(f"{url}/submit", None, COORDINATOR)
    await s.wait(url, lambda c: c["status"] == "awaiting_approval", "validated")
    await s.post(f"{url}/approval", {"approve": True}, MANAGER)
    gift = {
        "request_id": f"GR-{uuid.uuid4().hex[:8]}",
        "employee_id": "E0002",
        "kind": "gift",
        "description": colleague.words,
    }
    await s.post(f"{url}/requests", gift, COORDINATOR, 201)
    await s.post(f"{url}/requests/{gift['request_id']}/resolution", {"outcome": "shipped"}, MANAGER)
    # The sale opens in an hour; its window starts now in the table the order
    # path reads (the process's opening timer is not what this test is about).
    await eventually(
        lambda: s.db.fetchval("SELECT state FROM campaigns WHERE campaign_id = $1", campaign_id),
        lambda state: state == "scheduled",
        what="the campaign scheduled",
    )
    await s.db.execute(
        "UPDATE campaigns SET opens_at = now() - interval '1 second' WHERE campaign_id = $1",
        campaign_id,
    )
    order_id = f"{campaign_id}-1"
    order = buyer.order_json(order_id)
    body = {
        "order_id": order_id,
        "employee_id": "E0001",
        "lines": [{"sku": "SLG-WALLET-NOIR", "quantity": 1}],
        "shipping_address": order["shipping_address"],
        "payment": {
            **order["payment"],
            "authorisation_ref": f"auth-{order_id}",
            "amount_minor": CAMPAIGN_SKUS["SLG-WALLET-NOIR"],
        },
        "device": order["device"],
    }
    await s.post(f"{url}/orders", body, SYSTEM, 201)
    s.workflow_ids.add(f"order-review:{order_id}")
    await s.wait(
        f"/v1/order-reviews/{order_id}", lambda r: r["status"] == "released", "the release"
    )
    return buyer.values() | colleague.values()


STRIPE_SECRET = "whsec_pii_probe_5e1d"


async def chargeback(s: Stack) -> dict[str, Any]:
    """A delivered order disputed as not received: the case gathers its
    evidence (the order, the review, the carrier's scans) and a manager
    contests it."""
    customer = Persona.new("customer")
    shipment = await shipped(s, customer, "PII-CB")
    order_id = shipment["order"]["order_id"]
    for status in ("in_transit", "delivered"):
        await s.post("/v1/webhooks/carrier", carrier_event(shipment, status), SYSTEM, 202)
    dispute_id = f"dp_{uuid.uuid4().hex[:14]}"
    now = datetime.now(UTC)
    event = {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(now.timestamp()),
        "livemode": False,
        "type": "charge.dispute.created",
        "data": {
            "object": {
                "id": dispute_id,
                "object": "dispute",
                "amount": 245000,
                "currency": "eur",
                "charge": f"ch_{order_id}",
                "reason": "product_not_received",
                "status": "needs_response",
                "evidence_details": {"due_by": int((now + timedelta(days=7)).timestamp())},
                "metadata": {"order_id": order_id},
                "created": int(now.timestamp()),
            }
        },
    }
    raw = json.dumps(event).encode()
    signed = {
        "Stripe-Signature": stripe_signature_header(STRIPE_SECRET, int(time.time()), raw),
        "Content-Type": "application/json",
    }
    answer = await s.api.post("/v1/webhooks/stripe", content=raw, headers=signed)
    assert answer.status_code == 200, answer.text
    s.workflow_ids |= set(answer.json()["workflow_ids"])
    url = f"/v1/chargebacks/stripe/{dispute_id}"
    await s.wait(url, lambda c: c["status"] == "awaiting_coordinator", "the coordinator")
    contest = {"note": "delivered, signed for", "override_missing_evidence": True}
    contested = await s.api.post(
        f"{url}/contest", json=contest, headers={**MANAGER, "Idempotency-Key": "contest-1"}
    )
    assert contested.status_code == 200, contested.text
    return customer.values()


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


async def console_form(s: Stack, workflow_id: str, action: str, fields: dict[str, str]) -> None:
    """A form of the case's page, submitted as the browser does (the signed-in
    session's cookie, the page's CSRF token and nonce)."""
    url = f"/console/cases/{workflow_id}"
    page = await s.api.get(url)
    assert page.status_code == 200, page.text
    data = {"csrf": _csrf(page), "nonce": uuid.uuid4().hex[:12], "action": action, **fields}
    sent = await s.api.post(url, data=data)
    assert sent.status_code == 303, sent.text


async def console(s: Stack) -> dict[str, Any]:
    """The coordinators' console (an edge of its own, issue 20): signed in with
    a coordinator's key, a fulfilment's new address typed into its case
    page's form."""
    customer, moved = Persona.new("customer"), Persona.new("new_address")
    login = await s.api.get("/console/login")
    signed = await s.api.post("/console/login", data={"csrf": _csrf(login), "api_key": "pii-coord"})
    assert signed.status_code == 303, signed.text
    order_id = await released_order(s, customer, "PII-CO")
    address = {k: str(v) for k, v in moved.address().items()}
    await console_form(s, f"fulfilment:{order_id}", "fulfilment-change-address", address)
    await s.wait(
        f"/v1/fulfilments/{order_id}",
        lambda f: any(c["outcome"] == "applied" for c in f["address_changes"]),
        "the address change applied",
    )
    return customer.values() | moved.values()


SCENARIOS: dict[str, Scenario] = {
    "order_review": order_review,
    "fulfilment": fulfilment,
    "failed_delivery": failed_delivery,
    "carrier_claim": carrier_claim,
    "returns": returns,
    "privacy_request": privacy_request,
    "ops_request": ops_request,
    "campaign": campaign,
    "chargeback": chargeback,
    "console": console,
}


# The session's trails: the client, pool and settings are the session's too.
_TRAILS: dict[str, Trail] = {}


async def trail_of(process: str, client: Client, db: asyncpg.Pool, settings: Settings) -> Trail:
    """The process's scenario's trail; it runs once per session, whichever test asks first."""
    if process not in _TRAILS:
        _TRAILS[process] = await run(process, SCENARIOS[process], client, db, settings)
    return _TRAILS[process]
