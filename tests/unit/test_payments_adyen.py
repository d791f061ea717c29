"""The Adyen payment adapter's requests at the HTTP level: Adyen's official
library sends them (requests, intercepted by `responses`) and reads the
answers, shaped as Adyen's Checkout API reference documents them. What
happens after `received` (the notification completing the activity) is in
tests/integration/test_adyen_modifications.py."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
import responses

from activities.payments_adyen import AdyenPaymentProvider, adyen_checkout
from activities.ports import (
    PaymentRefusedError,
    PortTimeoutError,
    PortUnavailableError,
    RateLimitedError,
)
from domain.payments import PaymentOperationKind

TEST_API = "https://checkout-test.adyen.com/v71"
PAYMENT = "QFQTPCQ8HXSKGK82"
MERCHANT = "StewardECOM"
KEY = "order-review:ORD-1001/capture"


@pytest.fixture
def adyen_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def provider(**checkout: Any) -> AdyenPaymentProvider:
    return AdyenPaymentProvider(
        None,  # type: ignore[arg-type]  # `send` never touches the store
        adyen_checkout(api_key="AQE1-test-key", environment="test", **checkout),
        merchant_account=MERCHANT,
        outcome_timeout=timedelta(hours=24),
    )


def received(psp: str, reference: str, amount: dict[str, Any] | None = None) -> dict[str, Any]:
    """Adyen's answer to a modification request (HTTP 201, status received)."""
    body = {
        "merchantAccount": MERCHANT,
        "paymentPspReference": PAYMENT,
        "pspReference": psp,
        "reference": reference,
        "status": "received",
    }
    if amount is not None:
        body["amount"] = amount
    return body


def only_request(mock: responses.RequestsMock) -> Any:
    assert len(mock.calls) == 1
    return mock.calls[0].request


async def test_capture_posts_the_amount_with_stewards_idempotency_key(
    adyen_api: responses.RequestsMock,
) -> None:
    amount = {"value": 245000, "currency": "EUR"}
    adyen_api.post(
        f"{TEST_API}/payments/{PAYMENT}/captures",
        status=201,
        json=received("JDD6LKT8MBLZNN84", KEY, amount),
    )

    psp = await provider().send(PaymentOperationKind.CAPTURE, KEY, PAYMENT, 245_000, "EUR")

    assert psp == "JDD6LKT8MBLZNN84"
    request = only_request(adyen_api)
    assert request.method == "POST"
    assert request.headers["Idempotency-Key"] == KEY
    assert request.headers["x-api-key"] == "AQE1-test-key"
    assert json.loads(request.body) == {
        "merchantAccount": MERCHANT,
        "reference": KEY,
        "amount": amount,
    }


async def test_cancel_posts_no_amount(adyen_api: responses.RequestsMock) -> None:
    adyen_api.post(
        f"{TEST_API}/payments/{PAYMENT}/cancels",
        status=201,
        json=received("ZVMGFS4VMHLV5Z32", "order-review:ORD-1001/void"),
    )

    psp = await provider().send(
        PaymentOperationKind.VOID, "order-review:ORD-1001/void", PAYMENT, 245_000, "EUR"
    )

    assert psp == "ZVMGFS4VMHLV5Z32"
    request = only_request(adyen_api)
    assert request.headers["Idempotency-Key"] == "order-review:ORD-1001/void"
    assert json.loads(request.body) == {
        "merchantAccount": MERCHANT,
        "reference": "order-review:ORD-1001/void",
    }


async def test_refund_in_adyens_minor_units_and_a_long_key_hashed(
    adyen_api: responses.RequestsMock,
) -> None:
    # CLP has no minor unit in ISO 4217 (Steward) but two in Adyen's API; and
    # Adyen keeps idempotency keys of at most 64 characters.
    key = "failed-delivery:SHIP-0123456789-0123456789-0123456789-01234/refund-1"
    assert len(key) > 64
    adyen_api.post(
        f"{TEST_API}/payments/{PAYMENT}/refunds",
        status=201,
        json=received("L6SSHHZC2ZNG5S82", key, {"value": 12_000_000, "currency": "CLP"}),
    )

    psp = await provider().send(PaymentOperationKind.REFUND, key, PAYMENT, 120_000, "CLP")

    assert psp == "L6SSHHZC2ZNG5S82"
    request = only_request(adyen_api)
    assert request.headers["Idempotency-Key"] == hashlib.sha256(key.encode()).hexdigest()
    assert json.loads(request.body)["amount"] == {"value": 12_000_000, "currency": "CLP"}
    assert json.loads(request.body)["reference"] == key  # within the 80 a reference may have


async def test_the_live_endpoint_carries_the_accounts_prefix(
    adyen_api: responses.RequestsMock,
) -> None:
    live = "https://1797a841fbb37ca7-StewardCompany-checkout-live.adyenpayments.com/checkout/v71"
    adyen_api.post(
        f"{live}/payments/{PAYMENT}/captures", status=201, json=received("LIVEPSP00001", KEY)
    )
    live_provider = AdyenPaymentProvider(
        None,  # type: ignore[arg-type]
        adyen_checkout(
            api_key="AQE1-live-key",
            environment="live",
            live_endpoint_prefix="1797a841fbb37ca7-StewardCompany",
        ),
        merchant_account=MERCHANT,
        outcome_timeout=timedelta(hours=24),
    )
    assert (
        await live_provider.send(PaymentOperationKind.CAPTURE, KEY, PAYMENT, 100, "EUR")
        == "LIVEPSP00001"
    )


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (
            422,
            {
                "status": 422,
                "errorCode": "167",
                "message": "Original pspReference required for this operation",
                "errorType": "validation",
            },
            "167",
        ),
        (
            422,
            {
                "status": 422,
                "errorCode": "137",
                "message": "Invalid amount specified",
                "errorType": "validation",
            },
            "137",
        ),
        (
            404,
            {
                "status": 404,
                "errorCode": "000",
                "message": "Payment not found",
                "errorType": "validation",
            },
            "000",
        ),
    ],
)
async def test_refusals_carry_adyens_error_code(
    adyen_api: responses.RequestsMock, status: int, body: dict[str, Any], code: str
) -> None:
    adyen_api.post(f"{TEST_API}/payments/{PAYMENT}/captures", status=status, json=body)
    with pytest.raises(PaymentRefusedError) as refused:
        await provider().send(PaymentOperationKind.CAPTURE, KEY, PAYMENT, 100, "EUR")
    assert refused.value.code == code
    assert body["message"] in str(refused.value)


async def test_429_waits_for_retry_after(adyen_api: responses.RequestsMock) -> None:
    adyen_api.post(
        f"{TEST_API}/payments/{PAYMENT}/refunds",
        status=429,
        headers={"Retry-After": "12"},
        json={"status": 429, "errorCode": "000", "message": "Too Many Requests"},
    )
    with pytest.raises(RateLimitedError) as limited:
        await provider().send(PaymentOperationKind.REFUND, KEY, PAYMENT, 100, "EUR")
    assert limited.value.retry_after == timedelta(seconds=12)


@pytest.mark.parametrize("status", [500, 503, 401])
async def test_server_and_credential_errors_are_transient(
    adyen_api: responses.RequestsMock, status: int
) -> None:
    adyen_api.post(
        f"{TEST_API}/payments/{PAYMENT}/captures",
        status=status,
        json={"status": status, "errorCode": "000", "message": "error", "errorType": "internal"},
    )
    with pytest.raises(PortUnavailableError) as unavailable:
        await provider().send(PaymentOperationKind.CAPTURE, KEY, PAYMENT, 100, "EUR")
    assert unavailable.value.status == status


async def test_the_same_key_still_in_progress_is_transient_not_a_refusal(
    adyen_api: responses.RequestsMock,
) -> None:
    # A second attempt reaching Adyen while the first is still processed:
    # retrying with the same key gets the first one's answer; refusing would
    # give up on a modification that may well succeed.
    adyen_api.post(
        f"{TEST_API}/payments/{PAYMENT}/refunds",
        status=422,
        headers={"Transient-Error": "true"},
        json={
            "status": 422,
            "errorCode": "704",
            "message": "request already processed or in progress",
            "errorType": "validation",
        },
    )
    with pytest.raises(PortUnavailableError) as unavailable:
        await provider().send(PaymentOperationKind.REFUND, KEY, PAYMENT, 100, "EUR")
    assert unavailable.value.status == 422


async def test_a_timeout_is_transient(adyen_api: responses.RequestsMock) -> None:
    adyen_api.post(
        f"{TEST_API}/payments/{PAYMENT}/captures", body=requests.exceptions.ReadTimeout("slow")
    )
    with pytest.raises(PortTimeoutError):
        await provider().send(PaymentOperationKind.CAPTURE, KEY, PAYMENT, 100, "EUR")


async def test_a_refused_connection_is_transient(adyen_api: responses.RequestsMock) -> None:
    adyen_api.post(
        f"{TEST_API}/payments/{PAYMENT}/cancels",
        body=requests.exceptions.ConnectionError("refused"),
    )
    with pytest.raises(PortUnavailableError):
        await provider().send(PaymentOperationKind.VOID, KEY, PAYMENT, 100, "EUR")


async def test_an_amount_adyen_cannot_carry_is_refused_before_sending(
    adyen_api: responses.RequestsMock,
) -> None:
    # CVE has no minor unit at Adyen; 12.34 CVE cannot be sent.
    with pytest.raises(PaymentRefusedError) as refused:
        await provider().send(PaymentOperationKind.CAPTURE, KEY, PAYMENT, 1234, "CVE")
    assert refused.value.code == "amount_not_representable"
    assert not adyen_api.calls
