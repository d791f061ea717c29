"""The Stripe payment adapter at the HTTP level: Stripe's official library
sends the requests (httpx, intercepted by respx) and reads the answers, shaped
as Stripe's API reference documents them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
import stripe

from activities.disputes_stripe import stripe_client
from activities.payments_stripe import StripePaymentProvider
from activities.ports import (
    PaymentRefusedError,
    PortTimeoutError,
    PortUnavailableError,
    RateLimitedError,
)

API = "https://api.stripe.com"
KEY = "order-review:ORD-1001/capture"


@pytest.fixture
def stripe_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        yield mock


@pytest.fixture
def provider() -> StripePaymentProvider:
    return StripePaymentProvider(stripe_client("sk_test_4eC39HqLyjWDarjtT1zdp7dc"))


def payment_intent(**fields: Any) -> dict[str, Any]:
    """A PaymentIntent as the API reference shows it (ids, not expanded objects)."""
    return {
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "payment_intent",
        "amount": 245000,
        "amount_capturable": 0,
        "amount_received": 245000,
        "capture_method": "manual",
        "currency": "eur",
        "latest_charge": "ch_3MtwBwLkdIwHu7ix2Kcb2z1C",
        "livemode": False,
        "metadata": {},
        "status": "succeeded",
        **fields,
    }


def stripe_error(
    status: int, headers: dict[str, str] | None = None, **error: Any
) -> httpx.Response:
    return httpx.Response(status, json={"error": error}, headers=headers or {})


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


def sent(route: respx.Route) -> httpx.Request:
    assert route.call_count == 1
    return route.calls.last.request


async def test_capture_sends_the_amount_with_stewards_idempotency_key(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    route = stripe_api.post("/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/capture").respond(
        200, json=payment_intent()
    )

    reference = await provider.capture(
        idempotency_key=KEY,
        authorisation_ref="pi_3MtwBwLkdIwHu7ix28a3tqPa",
        amount_minor=245_000,
        currency="EUR",
    )

    assert reference == "ch_3MtwBwLkdIwHu7ix2Kcb2z1C"  # the charge a dispute names
    request = sent(route)
    assert request.method == "POST"
    assert request.headers["Idempotency-Key"] == KEY
    assert request.headers["Authorization"] == "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc"
    assert request.headers["Stripe-Version"] == stripe.api_version
    assert form(request) == {"amount_to_capture": ["245000"]}


async def test_amounts_go_in_stripes_minor_units(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    # JPY has no minor unit anywhere; ISK has none in ISO 4217 (Steward) but
    # two in Stripe's API (100 is one króna).
    jpy = stripe_api.post("/v1/payment_intents/pi_jpy/capture").respond(
        200, json=payment_intent(id="pi_jpy")
    )
    isk = stripe_api.post("/v1/payment_intents/pi_isk/capture").respond(
        200, json=payment_intent(id="pi_isk")
    )
    await provider.capture(
        idempotency_key="a/capture", authorisation_ref="pi_jpy", amount_minor=38500, currency="JPY"
    )
    await provider.capture(
        idempotency_key="b/capture", authorisation_ref="pi_isk", amount_minor=279, currency="ISK"
    )
    assert form(sent(jpy)) == {"amount_to_capture": ["38500"]}
    assert form(sent(isk)) == {"amount_to_capture": ["27900"]}


async def test_a_three_decimal_amount_stripe_cannot_take_is_refused_before_sending(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    with pytest.raises(PaymentRefusedError) as refused:
        await provider.refund(
            idempotency_key="c/refund-1",
            authorisation_ref="pi_kwd",
            amount_minor=5124,
            currency="KWD",
        )
    assert refused.value.code == "amount_not_representable"
    assert not stripe_api.calls


async def test_void_cancels_the_payment_intent(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    route = stripe_api.post("/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/cancel").respond(
        200, json=payment_intent(status="canceled", amount_received=0, latest_charge=None)
    )

    reference = await provider.void(
        idempotency_key="order-review:ORD-1001/void",
        authorisation_ref="pi_3MtwBwLkdIwHu7ix28a3tqPa",
        amount_minor=245_000,
        currency="EUR",
    )

    assert reference == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    request = sent(route)
    assert request.headers["Idempotency-Key"] == "order-review:ORD-1001/void"
    assert form(request) == {}


async def test_refund_names_the_payment_intent_and_the_amount(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    route = stripe_api.post("/v1/refunds").respond(
        200,
        json={
            "id": "re_3MtwBwLkdIwHu7ix2LlEvq2U",
            "object": "refund",
            "amount": 120000,
            "charge": "ch_3MtwBwLkdIwHu7ix2Kcb2z1C",
            "currency": "eur",
            "metadata": {"steward_idempotency_key": "return:RMA-7/refund"},
            "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "reason": None,
            "status": "pending",
        },
    )

    reference = await provider.refund(
        idempotency_key="return:RMA-7/refund",
        authorisation_ref="pi_3MtwBwLkdIwHu7ix28a3tqPa",
        amount_minor=120_000,
        currency="EUR",
    )

    assert reference == "re_3MtwBwLkdIwHu7ix2LlEvq2U"
    request = sent(route)
    assert request.headers["Idempotency-Key"] == "return:RMA-7/refund"
    assert form(request) == {
        "payment_intent": ["pi_3MtwBwLkdIwHu7ix28a3tqPa"],
        "amount": ["120000"],
        "metadata[steward_idempotency_key]": ["return:RMA-7/refund"],
    }


async def test_a_failed_refund_is_a_refusal_with_stripes_reason(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    stripe_api.post("/v1/refunds").respond(
        200,
        json={
            "id": "re_failed",
            "object": "refund",
            "amount": 1000,
            "currency": "eur",
            "status": "failed",
            "failure_reason": "expired_or_canceled_card",
        },
    )
    with pytest.raises(PaymentRefusedError) as refused:
        await provider.refund(
            idempotency_key="r/refund", authorisation_ref="pi_1", amount_minor=1000, currency="EUR"
        )
    assert refused.value.code == "expired_or_canceled_card"


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        # A card decline (HTTP 402) carries Stripe's decline_code.
        (
            402,
            {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
            },
            "insufficient_funds",
        ),
        (
            400,
            {
                "type": "invalid_request_error",
                "code": "payment_intent_unexpected_state",
                "message": "This PaymentIntent could not be captured because it has a status of "
                "succeeded. Only a PaymentIntent with one of the following statuses may be "
                "captured: requires_capture.",
            },
            "payment_intent_unexpected_state",
        ),
        (
            400,
            {
                "type": "invalid_request_error",
                "code": "charge_expired_for_capture",
                "message": "This charge cannot be captured because it has expired.",
            },
            "charge_expired_for_capture",
        ),
        (
            404,
            {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "param": "intent",
                "message": "No such payment_intent: 'pi_missing'",
            },
            "resource_missing",
        ),
        (
            400,
            {
                "type": "idempotency_error",
                "message": "Keys for idempotent requests can only be used with the same "
                "parameters they were first used with.",
            },
            "idempotency_error",
        ),
    ],
)
async def test_refusals_carry_stripes_code(
    stripe_api: respx.MockRouter,
    provider: StripePaymentProvider,
    status: int,
    error: dict[str, Any],
    code: str,
) -> None:
    stripe_api.post("/v1/payment_intents/pi_1/capture").mock(
        return_value=stripe_error(status, **error)
    )
    with pytest.raises(PaymentRefusedError) as refused:
        await provider.capture(
            idempotency_key=KEY, authorisation_ref="pi_1", amount_minor=100, currency="EUR"
        )
    assert refused.value.code == code
    assert error["message"] in str(refused.value)


async def test_429_waits_for_retry_after(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    stripe_api.post("/v1/payment_intents/pi_1/capture").mock(
        return_value=stripe_error(
            429,
            {"Retry-After": "7"},
            type="invalid_request_error",
            code="rate_limit",
            message="Too many requests hit the API too quickly.",
        )
    )
    with pytest.raises(RateLimitedError) as limited:
        await provider.capture(
            idempotency_key=KEY, authorisation_ref="pi_1", amount_minor=100, currency="EUR"
        )
    assert limited.value.retry_after == timedelta(seconds=7)


async def test_500_is_transient(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    stripe_api.post("/v1/refunds").mock(
        return_value=stripe_error(500, type="api_error", message="An unknown error occurred")
    )
    with pytest.raises(PortUnavailableError) as unavailable:
        await provider.refund(
            idempotency_key="r/refund", authorisation_ref="pi_1", amount_minor=100, currency="EUR"
        )
    assert unavailable.value.status == 500


async def test_a_bad_key_is_transient_not_a_refusal(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    # A key to fix: the payment itself was not refused, the retries wait for the fix.
    stripe_api.post("/v1/payment_intents/pi_1/cancel").mock(
        return_value=stripe_error(
            401, type="invalid_request_error", message="Invalid API Key provided: sk_test_****"
        )
    )
    with pytest.raises(PortUnavailableError) as unavailable:
        await provider.void(
            idempotency_key="v/void", authorisation_ref="pi_1", amount_minor=100, currency="EUR"
        )
    assert unavailable.value.status == 401


async def test_a_timeout_is_transient_and_may_have_moved_money(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    stripe_api.post("/v1/payment_intents/pi_1/capture").mock(
        side_effect=httpx.ReadTimeout("timed out")
    )
    with pytest.raises(PortTimeoutError):
        await provider.capture(
            idempotency_key=KEY, authorisation_ref="pi_1", amount_minor=100, currency="EUR"
        )


async def test_a_refused_connection_is_transient(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    stripe_api.post("/v1/refunds").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(PortUnavailableError):
        await provider.refund(
            idempotency_key="r/refund", authorisation_ref="pi_1", amount_minor=100, currency="EUR"
        )
