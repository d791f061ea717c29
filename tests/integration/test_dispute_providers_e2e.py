"""A dispute answered end to end through the real adapters, per provider.

Each provider is a local HTTP server started by the test (127.0.0.1, no
network) that speaks the provider's documented API shape: Stripe's
form-encoded `/v1/files` (multipart) and `/v1/disputes/{id}` with its
Idempotency-Key replay and its single submission, Adyen's JSON Disputes API
v30 (`retrieveApplicableDefenseReasons`, `supplyDefenseDocument`,
`defendDispute`, `acceptDispute`) answering `disputeServiceResult`. The
signed webhook opens the case through the HTTP API, a worker runs the real
activities with STEWARD_DISPUTE_RESPONDERS=stripe,adyen pointed at the fake
servers, the coordinator answers through the API, and the provider's closing
event closes the case.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from domain.common import Role
from domain.webhook_signatures import adyen_signature, stripe_signature_header
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store import disputes as dispute_store
from tests.integration.polling import eventually
from workers import activities
from workers.settings import Settings

STRIPE_SECRET = "whsec_e2e_5b1d"
ADYEN_HMAC = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
ADYEN_PATH = "/ca/services/DisputeService/v30"
MANAGER = {"Authorization": "Bearer e2e-manager"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeProvider:
    """A provider's API on a loopback port; `handle` answers (status, body)."""

    handle: Callable[[Seen], tuple[int, dict[str, Any]]]
    requests: list[Seen] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeProvider:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    "POST",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                fake.requests.append(seen)
                status, answer = fake.handle(seen)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class FakeStripe:
    """Stripe's dispute and file endpoints: a key replays its first answer;
    evidence is accepted with one submission only; close means lost."""

    def __init__(self) -> None:
        self.disputes: dict[str, dict[str, Any]] = {}
        self.replays: dict[str, tuple[int, dict[str, Any]]] = {}

    def __call__(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        key = seen.headers.get("idempotency-key")
        if key and key in self.replays:
            return self.replays[key]
        answer = self._answer(seen)
        if key:
            self.replays[key] = answer
        return answer

    def _answer(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        if seen.path == "/v1/files":
            if b'name="purpose"\r\n\r\ndispute_evidence' not in seen.body:
                return 400, _stripe_error("purpose: must be dispute_evidence")
            return 200, {
                "id": f"file_{uuid.uuid4().hex[:14]}",
                "object": "file",
                "purpose": "dispute_evidence",
                "size": len(seen.body),
                "type": "pdf",
            }
        match = re.fullmatch(r"/v1/disputes/(dp_\w+)(/close)?", seen.path)
        if match is None:
            return 404, _stripe_error(f"Unrecognized request URL (POST: {seen.path})")
        dispute = self.disputes.setdefault(
            match.group(1),
            {
                "id": match.group(1),
                "object": "dispute",
                "status": "needs_response",
                "evidence": {},
                "evidence_details": {"submission_count": 0, "has_evidence": False},
                "metadata": {},
            },
        )
        if dispute["status"] not in ("needs_response", "warning_needs_response"):
            return 400, _stripe_error("This dispute is already closed or submitted.")
        if match.group(2):
            dispute["status"] = "lost"
            return 200, dispute
        form = {k: v[0] for k, v in parse_qs(seen.body.decode()).items()}
        dispute["evidence"] = {
            k[len("evidence[") : -1]: v for k, v in form.items() if k.startswith("evidence[")
        }
        if form.get("submit") == "true":
            dispute["status"] = "under_review"
            dispute["evidence_details"]["submission_count"] += 1
        return 200, dispute


def _stripe_error(message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "message": message}}


class FakeAdyen:
    """Adyen's Disputes API v30: the documented defence reasons, documents
    supplied per type, one defence or acceptance per dispute."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.documents: dict[str, set[str]] = {}

    def __call__(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        if seen.headers.get("x-api-key") != "AQE_e2e":
            return 401, {"status": 401, "errorCode": "000", "message": "Unauthorized"}
        request = json.loads(seen.body)
        psp = request.get("disputePspReference")
        if request.get("merchantAccountCode") != "MaisonEU" or not psp:
            return 422, {"status": 422, "errorCode": "702", "message": "Missing field"}
        operation = seen.path.rsplit("/", 1)[-1]
        done = self.state.get(psp)
        if operation == "retrieveApplicableDefenseReasons":
            return 200, {
                "defenseReasons": [
                    {
                        "defenseReasonCode": "SupplyDefenseMaterial",
                        "satisfied": "DefenseMaterial" in self.documents.get(psp, set()),
                        "defenseDocumentTypes": [
                            {
                                "defenseDocumentTypeCode": "DefenseMaterial",
                                "requirementLevel": "Required",
                                "available": False,
                            }
                        ],
                    }
                ],
                "disputeServiceResult": {"success": True},
            }
        if done is not None:
            return 200, _adyen_failure(f"Dispute already {done}")
        if operation == "supplyDefenseDocument":
            for document in request["defenseDocuments"]:
                assert document["contentType"] == "application/pdf"
                self.documents.setdefault(psp, set()).add(document["defenseDocumentTypeCode"])
            return 200, {"disputeServiceResult": {"success": True}}
        if operation == "defendDispute":
            if "DefenseMaterial" not in self.documents.get(psp, set()):
                return 200, _adyen_failure("Defense material missing")
            self.state[psp] = "defended"
            return 200, {"disputeServiceResult": {"success": True}}
        if operation == "acceptDispute":
            self.state[psp] = "accepted"
            return 200, {"disputeServiceResult": {"success": True}}
        return 404, {"status": 404, "errorCode": "000", "message": "Not found"}


def _adyen_failure(message: str) -> dict[str, Any]:
    return {"disputeServiceResult": {"success": False, "errorMessage": message}}


@pytest.fixture
def stripe_server() -> Iterator[tuple[FakeProvider, FakeStripe]]:
    behaviour = FakeStripe()
    fake = FakeProvider(behaviour).start()
    yield fake, behaviour
    fake.stop()


@pytest.fixture
def adyen_server() -> Iterator[tuple[FakeProvider, FakeAdyen]]:
    behaviour = FakeAdyen()
    fake = FakeProvider(behaviour).start()
    yield fake, behaviour
    fake.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    client: Client,
    db_pool: asyncpg.Pool,
    integration_settings: Settings,
    stripe_server: tuple[FakeProvider, FakeStripe],
    adyen_server: tuple[FakeProvider, FakeAdyen],
) -> AsyncIterator[httpx.AsyncClient]:
    settings = integration_settings.model_copy(
        update={
            "task_queue": f"dispute-e2e-{uuid.uuid4()}",
            "dispute_responders": "stripe,adyen",
            "stripe_api_key": "sk_test_e2e",
            "stripe_api_base": stripe_server[0].url,
            "adyen_api_key": "AQE_e2e",
            "adyen_merchant_account": "MaisonEU",
            "adyen_disputes_url": adyen_server[0].url + ADYEN_PATH,
            "stripe_webhook_secrets": STRIPE_SECRET,
            "adyen_hmac_keys": ADYEN_HMAC,
        }
    )
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ):
        app = create_app(
            settings,
            client=client,
            pool=db_pool,
            api_keys=ApiKeyStore.from_mapping({"e2e-manager": ("morgan", Role.MANAGER)}),
        )
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://steward.test") as http:
            yield http


def stripe_event(dispute_id: str, order_id: str, event_type: str, status: str) -> bytes:
    now = datetime.now(UTC)
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(now.timestamp()),
            "livemode": False,
            "type": event_type,
            "data": {
                "object": {
                    "id": dispute_id,
                    "object": "dispute",
                    "amount": 245000,
                    "currency": "eur",
                    "charge": f"ch_{uuid.uuid4().hex[:12]}",
                    "payment_intent": f"pi_{uuid.uuid4().hex[:12]}",
                    "reason": "product_not_received",
                    "status": status,
                    "evidence_details": {"due_by": int((now + timedelta(days=7)).timestamp())},
                    "metadata": {"order_id": order_id},
                    "created": int(now.timestamp()),
                }
            },
        }
    ).encode()


async def post_stripe(api: httpx.AsyncClient, body: bytes) -> None:
    header = stripe_signature_header(STRIPE_SECRET, int(time.time()), body)
    answer = await api.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text


async def status_of(pool: asyncpg.Pool, provider: str, dispute_id: str, wanted: str) -> Any:
    return await eventually(
        lambda: dispute_store.get(pool, provider, dispute_id),
        lambda row: row is not None and row.status == wanted,
        what=f"{provider} dispute {dispute_id} {wanted}",
    )


async def test_stripe_dispute_contested_through_stripes_api_then_won(
    api: httpx.AsyncClient,
    db_pool: asyncpg.Pool,
    stripe_server: tuple[FakeProvider, FakeStripe],
) -> None:
    fake, stripe = stripe_server
    dispute_id = f"dp_{uuid.uuid4().hex[:14]}"
    order_id = f"E2E-{uuid.uuid4().hex[:8]}"
    await post_stripe(
        api, stripe_event(dispute_id, order_id, "charge.dispute.created", "needs_response")
    )
    await status_of(db_pool, "stripe", dispute_id, "awaiting_coordinator")

    contest = await api.post(
        f"/v1/disputes/stripe/{dispute_id}/contest",
        json={"note": "Delivered and signed for", "override_missing_evidence": True},
        headers=MANAGER,
    )
    assert contest.status_code == 200, contest.text
    assert contest.json()["status"] == "submitted"

    paths = [r.path for r in fake.requests]
    assert paths == ["/v1/files", f"/v1/disputes/{dispute_id}"]
    upload, submit = fake.requests
    key = f"chargeback:stripe:{dispute_id}/respond-1"
    assert upload.headers["idempotency-key"] == f"{key}/file"
    assert upload.headers["authorization"] == "Bearer sk_test_e2e"
    assert b"%PDF-1.4" in upload.body
    assert submit.headers["idempotency-key"] == f"{key}/submit"
    dispute = stripe.disputes[dispute_id]
    assert dispute["status"] == "under_review"
    assert dispute["evidence_details"]["submission_count"] == 1
    assert dispute["evidence"]["uncategorized_file"].startswith("file_")
    assert "Delivered and signed for" in dispute["evidence"]["uncategorized_text"]

    await post_stripe(api, stripe_event(dispute_id, order_id, "charge.dispute.closed", "won"))
    await status_of(db_pool, "stripe", dispute_id, "won")
    assert len(fake.requests) == 2  # nothing sent twice


def adyen_item(psp: str, event_code: str, merchant_reference: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "eventCode": event_code,
        "success": "true",
        "pspReference": psp,
        "originalReference": f"99{uuid.uuid4().int % 10**14:014d}",
        "merchantAccountCode": "MaisonEU",
        "merchantReference": merchant_reference,
        "amount": {"value": 189000, "currency": "EUR"},
        "eventDate": datetime.now(UTC).isoformat(),
        "additionalData": {
            "chargebackReasonCode": "13.1",
            "chargebackSchemeCode": "visa",
            "defensePeriodEndsAt": (datetime.now(UTC) + timedelta(days=20)).isoformat(),
        },
    }
    item["additionalData"]["hmacSignature"] = adyen_signature(ADYEN_HMAC, item)
    return item


async def post_adyen(api: httpx.AsyncClient, item: dict[str, Any]) -> None:
    body = {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
    answer = await api.post("/v1/webhooks/adyen", json=body)
    assert answer.status_code == 200 and answer.text == "[accepted]", answer.text


async def test_adyen_dispute_defended_through_the_disputes_api_then_reversed(
    api: httpx.AsyncClient,
    db_pool: asyncpg.Pool,
    adyen_server: tuple[FakeProvider, FakeAdyen],
) -> None:
    fake, adyen = adyen_server
    psp = f"99{uuid.uuid4().int % 10**14:014d}"
    order_id = f"E2E-{psp[-8:]}"
    await post_adyen(api, adyen_item(psp, "NOTIFICATION_OF_CHARGEBACK", order_id))
    await status_of(db_pool, "adyen", psp, "awaiting_coordinator")

    contest = await api.post(
        f"/v1/disputes/adyen/{psp}/contest",
        json={"note": "Delivered and signed for", "override_missing_evidence": True},
        headers=MANAGER,
    )
    assert contest.status_code == 200, contest.text
    assert contest.json()["status"] == "submitted"
    operations = [r.path.removeprefix(ADYEN_PATH + "/") for r in fake.requests]
    assert operations == [
        "retrieveApplicableDefenseReasons",
        "supplyDefenseDocument",
        "defendDispute",
    ]
    assert adyen.state[psp] == "defended"
    assert all(
        r.headers["idempotency-key"].startswith(f"chargeback:adyen:{psp}/respond-1/")
        for r in fake.requests
    )

    await post_adyen(api, adyen_item(psp, "CHARGEBACK_REVERSED", order_id))
    await status_of(db_pool, "adyen", psp, "won")
    assert len(fake.requests) == 3


async def test_adyen_dispute_accepted_through_the_disputes_api(
    api: httpx.AsyncClient,
    db_pool: asyncpg.Pool,
    adyen_server: tuple[FakeProvider, FakeAdyen],
) -> None:
    fake, adyen = adyen_server
    psp = f"99{uuid.uuid4().int % 10**14:014d}"
    await post_adyen(api, adyen_item(psp, "NOTIFICATION_OF_CHARGEBACK", f"E2E-{psp[-8:]}"))
    await status_of(db_pool, "adyen", psp, "awaiting_coordinator")
    accept = await api.post(f"/v1/disputes/adyen/{psp}/accept", headers=MANAGER)
    assert accept.status_code == 200, accept.text
    assert accept.json()["status"] == "accepted"
    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests] == ["acceptDispute"]
    assert adyen.state[psp] == "accepted"
