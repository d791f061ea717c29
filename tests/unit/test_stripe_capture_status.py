"""Reading a PaymentIntent after a capture was given up (activities/
payments_stripe.py `captured`): the charge and the amount Stripe received,
in Steward's units, or nothing when the money was not taken. Stripe's
library sends the request (respx intercepts it); bodies as Stripe documents
them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import respx

from activities.disputes_stripe import stripe_client
from activities.payments_stripe import StripePaymentProvider
from activities.ports import PaymentRefusedError, PortUnavailableError
from domain.payments import PaymentOperationInput
from tests.unit.test_payments_stripe import API, payment_intent, stripe_error

INTENT = "pi_3MtwBwLkdIwHu7ix28a3tqPa"


@pytest.fixture
def stripe_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        yield mock


@pytest.fixture
def provider() -> StripePaymentProvider:
    return StripePaymentProvider(stripe_client("sk_test_4eC39HqLyjWDarjtT1zdp7dc"))


def capture(currency: str = "EUR", amount_minor: int = 245_000) -> PaymentOperationInput:
    return PaymentOperationInput(
        workflow_id="order-review:ORD-1001",
        operation_id="capture",
        order_id="ORD-1001",
        provider="stripe",
        authorisation_ref=INTENT,
        amount_minor=amount_minor,
        currency=currency,
    )


def read(stripe_api: respx.MockRouter, http_status: int = 200, **fields: Any) -> respx.Route:
    body = payment_intent(**fields) if http_status == 200 else None
    route = stripe_api.get(f"/v1/payment_intents/{INTENT}")
    return (
        route.respond(http_status, json=body)
        if body
        else route.mock(return_value=stripe_error(http_status, type="api_error", message="boom"))
    )


async def test_a_succeeded_intent_is_the_charge_and_the_amount_received(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    route = read(stripe_api)
    assert await provider.captured(operation=capture()) == ("ch_3MtwBwLkdIwHu7ix2Kcb2z1C", 245_000)
    request = route.calls.last.request
    assert request.method == "GET" and "idempotency-key" not in request.headers


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "requires_capture", "amount_received": 0, "amount_capturable": 245000},
        {"status": "canceled", "amount_received": 0},
        {"status": "processing", "amount_received": 0},
    ],
)
async def test_an_intent_not_captured_took_nothing(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider, fields: dict[str, Any]
) -> None:
    read(stripe_api, **fields)
    assert await provider.captured(operation=capture()) is None


async def test_a_zero_decimal_amount_comes_back_in_steward_units(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    read(stripe_api, currency="jpy", amount=38000, amount_received=38000)
    assert await provider.captured(operation=capture("JPY", 38000)) == (
        "ch_3MtwBwLkdIwHu7ix2Kcb2z1C",
        38000,
    )


async def test_another_currency_is_refused_and_stripe_down_is_retried(
    stripe_api: respx.MockRouter, provider: StripePaymentProvider
) -> None:
    read(stripe_api, currency="usd")
    with pytest.raises(PaymentRefusedError, match="captured in USD, not EUR"):
        await provider.captured(operation=capture())
    stripe_api.routes.clear()
    read(stripe_api, http_status=500)
    with pytest.raises(PortUnavailableError):
        await provider.captured(operation=capture())
