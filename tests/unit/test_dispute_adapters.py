"""The Stripe and Adyen dispute adapters at the HTTP level.

The official SDKs' requests are intercepted (respx for Stripe's httpx client,
responses for Adyen's requests) and answered with the bodies the providers
document: each test asserts method, path, idempotency header and body, and
what the port says back (the answer, a refusal with the provider's code, a
rate limit with its Retry-After, a transient failure).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import requests
import responses
import respx
import stripe

from activities.dispute_documents import DOCUMENT_TOO_LARGE
from activities.disputes import DisputeResponseRefusedError
from activities.disputes_adyen import AdyenDisputeResponder, disputes_api
from activities.disputes_stripe import StripeDisputeResponder, stripe_client
from activities.ports import PortTimeoutError, PortUnavailableError, RateLimitedError
from domain.chargeback import ResponseAction

KEY = "chargeback:stripe:dp_1Q/respond-1"
EVIDENCE: list[dict[str, Any]] = [
    {
        "kind": "order_and_review",
        "available": True,
        "summary": "order FR-100001 placed 2026-11-02 in FR, EUR 2,450.00; review: approve",
        "reference": "order-review:FR-100001",
    },
    {
        "kind": "proof_of_delivery",
        "available": True,
        "summary": "delivered by ups 1Z999AA10123456784 at 2026-11-05 10:12 UTC",
        "reference": "ups:1Z999AA10123456784",
    },
    {
        "kind": "refund_policy",
        "available": True,
        "summary": "refund-policy v2026-01: returns within 30 days (unworn, tags attached)",
        "reference": "refund-policy/v2026-01",
    },
    {
        "kind": "coordinator_note",
        "available": True,
        "summary": "Signed for at the door (see the carrier scan).",
        "reference": None,
    },
]
# Far over every provider's limit once rendered, under any length check of ours.
HUGE = [dict(EVIDENCE[0], summary=("x" * 90 + "\n") * 60_000)]


# ------------------------------------------------------------------ Stripe

STRIPE = "https://api.stripe.test"


def stripe_dispute(status: str = "under_review") -> dict[str, Any]:
    """A Dispute object as Stripe's API reference shows it (ids, not objects)."""
    return {
        "id": "dp_1Q",
        "object": "dispute",
        "amount": 245000,
        "balance_transactions": [],
        "charge": "ch_3Q",
        "created": 1_795_000_000,
        "currency": "eur",
        "evidence": {"uncategorized_file": "file_1E", "product_description": "order"},
        "evidence_details": {
            "due_by": 1_796_000_000,
            "has_evidence": True,
            "past_due": False,
            "submission_count": 1,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": "pi_3Q",
        "reason": "product_not_received",
        "status": status,
    }


STRIPE_FILE = {
    "id": "file_1E",
    "object": "file",
    "created": 1_795_000_100,
    "expires_at": None,
    "filename": "steward-evidence-dp_1Q.pdf",
    "links": {"object": "list", "data": [], "has_more": False, "url": "/v1/file_links"},
    "purpose": "dispute_evidence",
    "size": 2048,
    "title": None,
    "type": "pdf",
    "url": "https://files.stripe.com/v1/files/file_1E/contents",
}


def stripe_error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return {"error": error}


@pytest.fixture
def stripe_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=STRIPE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def stripe_responder() -> StripeDisputeResponder:
    return StripeDisputeResponder(stripe_client("sk_test_steward", STRIPE))


async def test_stripe_contest_uploads_the_statement_then_submits_the_evidence(
    stripe_api: respx.MockRouter, stripe_responder: StripeDisputeResponder
) -> None:
    upload = stripe_api.post("/v1/files").respond(200, json=STRIPE_FILE)
    submit = stripe_api.post("/v1/disputes/dp_1Q").respond(200, json=stripe_dispute())

    answer = await stripe_responder.respond(
        idempotency_key=KEY,
        dispute_id="dp_1Q",
        action=ResponseAction.CONTEST,
        note="Signed for at the door (see the carrier scan).",
        documents=EVIDENCE,
    )

    assert answer.reference == "dp_1Q"
    assert answer.steps == ["upload_evidence", "submit"]
    sent = upload.calls.last.request
    assert sent.headers["Idempotency-Key"] == f"{KEY}/file"
    assert sent.headers["Authorization"] == "Bearer sk_test_steward"
    assert sent.headers["Stripe-Version"] == stripe.api_version
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    body = sent.content
    assert b'name="purpose"\r\n\r\ndispute_evidence' in body
    assert b'filename="steward-evidence-dp_1Q.pdf"' in body
    assert b"%PDF-1.4" in body and b"Proof of delivery" in body

    request = submit.calls.last.request
    assert request.headers["Idempotency-Key"] == f"{KEY}/submit"
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert form["submit"] == "true"
    assert form["evidence[uncategorized_file]"] == "file_1E"
    assert form["evidence[shipping_carrier]"] == "ups"
    assert form["evidence[shipping_tracking_number]"] == "1Z999AA10123456784"
    assert form["evidence[product_description]"].startswith("order FR-100001 placed")
    assert form["evidence[refund_policy_disclosure]"].startswith("refund-policy v2026-01")
    assert "Coordinator's note: Signed for at the door" in form["evidence[uncategorized_text]"]


async def test_stripe_accept_closes_the_dispute(
    stripe_api: respx.MockRouter, stripe_responder: StripeDisputeResponder
) -> None:
    close = stripe_api.post("/v1/disputes/dp_1Q/close").respond(200, json=stripe_dispute("lost"))
    answer = await stripe_responder.respond(
        idempotency_key=KEY,
        dispute_id="dp_1Q",
        action=ResponseAction.ACCEPT,
        note="",
        documents=[],
    )
    assert (answer.reference, answer.steps) == ("dp_1Q", ["accept"])
    assert close.calls.last.request.headers["Idempotency-Key"] == f"{KEY}/close"
    assert close.calls.last.request.content == b""


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (
            400,
            stripe_error("invalid_request_error", "This dispute is already closed"),
            "invalid_request_error",
        ),
        (
            404,
            stripe_error("invalid_request_error", "No such dispute: 'dp_1Q'", "resource_missing"),
            "resource_missing",
        ),
    ],
)
async def test_stripe_refusals_carry_stripes_code(
    stripe_api: respx.MockRouter,
    stripe_responder: StripeDisputeResponder,
    status: int,
    body: dict[str, Any],
    code: str,
) -> None:
    stripe_api.post("/v1/disputes/dp_1Q/close").respond(status, json=body)
    with pytest.raises(DisputeResponseRefusedError) as refused:
        await stripe_responder.respond(
            idempotency_key=KEY,
            dispute_id="dp_1Q",
            action=ResponseAction.ACCEPT,
            note="",
            documents=[],
        )
    assert refused.value.code == code
    assert body["error"]["message"] in str(refused.value)


async def test_stripe_429_is_a_rate_limit_with_its_retry_after(
    stripe_api: respx.MockRouter, stripe_responder: StripeDisputeResponder
) -> None:
    stripe_api.post("/v1/disputes/dp_1Q/close").respond(
        429,
        json=stripe_error("invalid_request_error", "Too many requests", "rate_limit"),
        headers={"Retry-After": "7"},
    )
    with pytest.raises(RateLimitedError) as limited:
        await stripe_responder.respond(
            idempotency_key=KEY,
            dispute_id="dp_1Q",
            action=ResponseAction.ACCEPT,
            note="",
            documents=[],
        )
    assert limited.value.retry_after == timedelta(seconds=7)


async def test_stripe_500_401_409_and_timeouts_are_transient(
    stripe_api: respx.MockRouter, stripe_responder: StripeDisputeResponder
) -> None:
    route = stripe_api.post("/v1/disputes/dp_1Q/close")
    calls = {
        "idempotency_key": KEY,
        "dispute_id": "dp_1Q",
        "action": ResponseAction.ACCEPT,
        "note": "",
        "documents": [],
    }
    route.respond(500, json=stripe_error("api_error", "An unknown error occurred"))
    with pytest.raises(PortUnavailableError) as failed:
        await stripe_responder.respond(**calls)
    assert failed.value.status == 500
    route.respond(401, json=stripe_error("invalid_request_error", "Invalid API Key provided"))
    with pytest.raises(PortUnavailableError, match="STEWARD_STRIPE_API_KEY") as denied:
        await stripe_responder.respond(**calls)
    assert denied.value.status == 401
    route.respond(
        409,
        json=stripe_error(
            "idempotency_error",
            "There is currently another in-progress request using this Stripe token",
        ),
    )
    with pytest.raises(PortUnavailableError) as busy:
        await stripe_responder.respond(**calls)
    assert busy.value.status == 409
    route.side_effect = httpx.ReadTimeout("read timed out")
    with pytest.raises(PortTimeoutError):
        await stripe_responder.respond(**calls)
    route.side_effect = httpx.ConnectError("connection refused")
    with pytest.raises(PortUnavailableError):
        await stripe_responder.respond(**calls)


async def test_stripe_refuses_a_document_over_5_mb_before_sending_anything(
    stripe_api: respx.MockRouter, stripe_responder: StripeDisputeResponder
) -> None:
    upload = stripe_api.post("/v1/files").respond(200, json=STRIPE_FILE)
    with pytest.raises(DisputeResponseRefusedError, match="over Stripe's limit of 5 MB") as refused:
        await stripe_responder.respond(
            idempotency_key=KEY,
            dispute_id="dp_1Q",
            action=ResponseAction.CONTEST,
            note="",
            documents=HUGE,
        )
    assert refused.value.code == DOCUMENT_TOO_LARGE
    assert not upload.called


# ------------------------------------------------------------------- Adyen

ADYEN = "https://ca-test.adyen.com/ca/services/DisputeService/v30"
OK = {"disputeServiceResult": {"success": True}}
# Adyen's documented example answer of retrieveApplicableDefenseReasons.
DEFENSE_REASONS = {
    "defenseReasons": [
        {
            "defenseDocumentTypes": [
                {
                    "available": False,
                    "defenseDocumentTypeCode": "TIDorInvoice",
                    "requirementLevel": "Optional",
                },
                {
                    "available": False,
                    "defenseDocumentTypeCode": "GoodsNotReturned",
                    "requirementLevel": "Required",
                },
            ],
            "defenseReasonCode": "GoodsNotReturned",
            "satisfied": False,
        },
        {
            "defenseDocumentTypes": [
                {
                    "available": False,
                    "defenseDocumentTypeCode": "GoodsWereAsDescribed",
                    "requirementLevel": "Required",
                },
                {
                    "available": False,
                    "defenseDocumentTypeCode": "TIDorInvoice",
                    "requirementLevel": "Required",
                },
            ],
            "defenseReasonCode": "GoodsWereAsDescribed",
            "satisfied": False,
        },
        {
            "defenseDocumentTypes": [
                {
                    "available": False,
                    "defenseDocumentTypeCode": "TIDorInvoice",
                    "requirementLevel": "Optional",
                },
                {
                    "available": False,
                    "defenseDocumentTypeCode": "DefenseMaterial",
                    "requirementLevel": "Required",
                },
            ],
            "defenseReasonCode": "SupplyDefenseMaterial",
            "satisfied": False,
        },
    ],
    "disputeServiceResult": {"success": True},
}
ADYEN_KEY = "chargeback:adyen:DZ4DPSHB4WD2WN82/respond-1"


@pytest.fixture
def adyen_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def adyen_responder() -> AdyenDisputeResponder:
    return AdyenDisputeResponder(disputes_api("AQE_test_key"), "MaisonEU")


def sent_json(mock: responses.RequestsMock, index: int) -> dict[str, Any]:
    body = mock.calls[index].request.body
    assert body is not None
    return json.loads(body)


async def test_adyen_contest_retrieves_reasons_supplies_documents_and_defends(
    adyen_api: responses.RequestsMock, adyen_responder: AdyenDisputeResponder
) -> None:
    adyen_api.post(f"{ADYEN}/retrieveApplicableDefenseReasons", json=DEFENSE_REASONS)
    adyen_api.post(f"{ADYEN}/supplyDefenseDocument", json=OK)
    adyen_api.post(f"{ADYEN}/defendDispute", json=OK)

    answer = await adyen_responder.respond(
        idempotency_key=ADYEN_KEY,
        dispute_id="DZ4DPSHB4WD2WN82",
        action=ResponseAction.CONTEST,
        note="",
        documents=EVIDENCE,
    )

    assert answer.steps == ["retrieve_reasons", "supply_documents", "defend"]
    assert answer.reference == "DZ4DPSHB4WD2WN82/GoodsWereAsDescribed"
    paths = [c.request.url.rsplit("/", 1)[-1] for c in adyen_api.calls]
    assert paths == ["retrieveApplicableDefenseReasons", "supplyDefenseDocument", "defendDispute"]
    for call, step in zip(adyen_api.calls, ("reasons", "documents", "defend"), strict=True):
        assert call.request.headers["Idempotency-Key"] == f"{ADYEN_KEY}/{step}"
        assert call.request.headers["x-api-key"] == "AQE_test_key"
    base = {"disputePspReference": "DZ4DPSHB4WD2WN82", "merchantAccountCode": "MaisonEU"}
    assert sent_json(adyen_api, 0) == base
    supplied = sent_json(adyen_api, 1)
    assert {k: supplied[k] for k in base} == base
    documents = {d["defenseDocumentTypeCode"]: d for d in supplied["defenseDocuments"]}
    assert set(documents) == {"GoodsWereAsDescribed", "TIDorInvoice"}
    for document in documents.values():
        assert document["contentType"] == "application/pdf"
        assert base64.b64decode(document["content"]).startswith(b"%PDF-1.4")
    # The invoice document is about the order, not the delivery.
    invoice = base64.b64decode(documents["TIDorInvoice"]["content"])
    assert b"Order and review" in invoice and b"Proof of delivery" not in invoice
    assert sent_json(adyen_api, 2) == {**base, "defenseReasonCode": "GoodsWereAsDescribed"}


async def test_adyen_accept(
    adyen_api: responses.RequestsMock, adyen_responder: AdyenDisputeResponder
) -> None:
    adyen_api.post(f"{ADYEN}/acceptDispute", json=OK)
    answer = await adyen_responder.respond(
        idempotency_key=ADYEN_KEY,
        dispute_id="DZ4DPSHB4WD2WN82",
        action=ResponseAction.ACCEPT,
        note="",
        documents=[],
    )
    assert answer.steps == ["accept"]
    assert sent_json(adyen_api, 0) == {
        "disputePspReference": "DZ4DPSHB4WD2WN82",
        "merchantAccountCode": "MaisonEU",
    }
    assert adyen_api.calls[0].request.headers["Idempotency-Key"] == f"{ADYEN_KEY}/accept"


async def test_adyen_success_false_is_a_refusal_with_adyens_message(
    adyen_api: responses.RequestsMock, adyen_responder: AdyenDisputeResponder
) -> None:
    adyen_api.post(
        f"{ADYEN}/acceptDispute",
        json={"disputeServiceResult": {"success": False, "errorMessage": "Dispute not found"}},
    )
    with pytest.raises(DisputeResponseRefusedError, match="Dispute not found") as refused:
        await adyen_responder.respond(
            idempotency_key=ADYEN_KEY,
            dispute_id="DZ4DPSHB4WD2WN82",
            action=ResponseAction.ACCEPT,
            note="",
            documents=[],
        )
    assert refused.value.code == "dispute_not_found"


async def test_adyen_http_errors_map_onto_the_port(
    adyen_api: responses.RequestsMock, adyen_responder: AdyenDisputeResponder
) -> None:
    url = f"{ADYEN}/acceptDispute"
    call = {
        "idempotency_key": ADYEN_KEY,
        "dispute_id": "DZ4DPSHB4WD2WN82",
        "action": ResponseAction.ACCEPT,
        "note": "",
        "documents": [],
    }
    service_error = {
        "status": 422,
        "errorCode": "702",
        "message": "Required field 'merchantAccountCode' is not provided.",
        "errorType": "validation",
    }
    adyen_api.post(url, json=service_error, status=422)
    with pytest.raises(DisputeResponseRefusedError) as refused:
        await adyen_responder.respond(**call)
    assert refused.value.code == "702"

    adyen_api.replace(
        responses.POST,
        url,
        json={"status": 429, "errorCode": "429", "message": "Too many requests"},
        status=429,
        headers={"Retry-After": "12"},
    )
    with pytest.raises(RateLimitedError) as limited:
        await adyen_responder.respond(**call)
    assert limited.value.retry_after == timedelta(seconds=12)

    adyen_api.replace(
        responses.POST,
        url,
        json={
            "status": 500,
            "errorCode": "905",
            "message": "Internal error",
            "errorType": "internal",
        },
        status=500,
    )
    with pytest.raises(PortUnavailableError) as failed:
        await adyen_responder.respond(**call)
    assert failed.value.status == 500

    adyen_api.replace(
        responses.POST,
        url,
        json={"status": 401, "errorCode": "000", "message": "HTTP Status Response - Unauthorized"},
        status=401,
    )
    with pytest.raises(PortUnavailableError, match="STEWARD_ADYEN_API_KEY"):
        await adyen_responder.respond(**call)

    adyen_api.replace(responses.POST, url, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(PortTimeoutError):
        await adyen_responder.respond(**call)

    adyen_api.replace(responses.POST, url, body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(PortUnavailableError):
        await adyen_responder.respond(**call)


async def test_adyen_refuses_a_document_over_2_mb_after_reading_the_reasons_only(
    adyen_api: responses.RequestsMock, adyen_responder: AdyenDisputeResponder
) -> None:
    adyen_api.post(f"{ADYEN}/retrieveApplicableDefenseReasons", json=DEFENSE_REASONS)
    supply = adyen_api.post(f"{ADYEN}/supplyDefenseDocument", json=OK)
    with pytest.raises(DisputeResponseRefusedError, match="over Adyen's limit of 2 MB") as refused:
        await adyen_responder.respond(
            idempotency_key=ADYEN_KEY,
            dispute_id="DZ4DPSHB4WD2WN82",
            action=ResponseAction.CONTEST,
            note="",
            documents=HUGE,
        )
    assert refused.value.code == DOCUMENT_TOO_LARGE
    assert supply.call_count == 0


async def test_adyen_with_no_defence_reason_refuses_without_defending(
    adyen_api: responses.RequestsMock, adyen_responder: AdyenDisputeResponder
) -> None:
    adyen_api.post(
        f"{ADYEN}/retrieveApplicableDefenseReasons",
        json={"defenseReasons": [], "disputeServiceResult": {"success": True}},
    )
    defend = adyen_api.post(f"{ADYEN}/defendDispute", json=OK)
    with pytest.raises(DisputeResponseRefusedError) as refused:
        await adyen_responder.respond(
            idempotency_key=ADYEN_KEY,
            dispute_id="DZ4DPSHB4WD2WN82",
            action=ResponseAction.CONTEST,
            note="",
            documents=EVIDENCE,
        )
    assert refused.value.code == "no_defense_reason"
    assert defend.call_count == 0


def test_the_evidence_statement_is_a_well_formed_pdf() -> None:
    from activities.dispute_documents import evidence_lines, render_pdf

    lines = evidence_lines("dp_1Q", EVIDENCE[:3] * 20, "a (bracketed) note \\ done")
    pdf = render_pdf(lines)
    assert pdf.startswith(b"%PDF-1.4") and pdf.endswith(b"%%EOF\n")
    # The cross-reference table points at each object, as readers require.
    xref_at = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[xref_at:].startswith(b"xref\n")
    entries = pdf[xref_at:].split(b"\n")[3:]
    offsets = [int(e[:10]) for e in entries if e.endswith(b" n ")]
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(f"{number} 0 obj".encode())
    pages = -(-len(lines) // 60)
    assert pages > 1 and f"/Count {pages} ".encode() in pdf
    assert b"a \\(bracketed\\) note \\\\ done" in pdf
