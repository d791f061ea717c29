"""Realistic test data shared by every test suite.

`make_order()` is a clean, low-risk order: a French customer of three years
buying one 2,450.00 EUR handbag on the web, 3-D Secure authenticated, AVS and
CVV matching, shipped to the billing address. Tests change only what they are
about:

    make_order("FR-2001", payment={"avs_result": "mismatch"})
    make_order(shipping_address={"country": "DE"})
    make_order(items=[...], customer={"account_created_at": ...})

Dict overrides are merged into the default nested value; anything else
replaces it. Derived fields follow unless overridden themselves: the payment
amount is the items total plus shipping, its currency the order's, the
authorisation happens at `placed_at` and expires 7 days later, and the account
is three years older than the order. The order is placed five minutes before
`now` (a keyword; the wall clock by default).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from domain.orders import Order

AUTHORISATION_VALIDITY = timedelta(days=7)


def _now(now: datetime | None = None) -> datetime:
    # Near "now" rather than a fixed date: integration and workflow tests run
    # against real or skipped clocks, and a review of an order placed years
    # ago would hit its authorisation deadline immediately. Workflow tests
    # pass the test server's clock, which runs ahead of the wall clock.
    return ((now or datetime.now(UTC)) - timedelta(minutes=5)).replace(microsecond=0)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(override, BaseModel):
        return override.model_dump()
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    if isinstance(override, list):
        return [_merge(None, v) for v in override]
    return override


def _item_total(items: list[dict[str, Any]]) -> int:
    return sum(int(i["unit_price_minor"]) * int(i.get("quantity", 1)) for i in items)


def order_data(
    order_id: str = "FR-100001", *, now: datetime | None = None, **overrides: Any
) -> dict[str, Any]:
    """The raw dict behind `make_order`, for tests that post JSON or want it invalid.

    `now` is the clock the order is placed by (the wall clock by default).
    """
    placed_at: datetime = overrides.pop("placed_at", None) or _now(now)
    customer_overrides = overrides.get("customer")
    customer_id = (
        customer_overrides.get("customer_id", "C-778120")
        if isinstance(customer_overrides, dict)
        else "C-778120"
    )
    address = {
        "line1": "18 Rue de Grenelle",
        "line2": "3e étage",
        "city": "Paris",
        "postal_code": "75007",
        "region": "Île-de-France",
        "country": "FR",
    }
    data: dict[str, Any] = {
        "order_id": order_id,
        "market": "FR",
        "channel": "web",
        "currency": "EUR",
        "placed_at": placed_at,
        "customer": {
            "customer_id": customer_id,
            "email": "camille.durand@example.fr",
            "full_name": "Camille Durand",
            "phone": "+33 6 12 34 56 78",
            "account_created_at": placed_at - timedelta(days=3 * 365),
        },
        "billing_address": dict(address),
        "shipping_address": dict(address),
        "items": [
            {
                "sku": "HB-TOTE-MM-NOIR",
                "name": "Tote MM, black grained calfskin",
                "category": "handbags",
                "unit_price_minor": 245_000,
                "quantity": 1,
                "serial_number": None,
            }
        ],
        "shipping_minor": 0,
        "payment": {
            "provider": "simulated",
            "authorisation_ref": f"auth-{order_id}",
            "card_fingerprint": f"fp-{customer_id}-visa-4242",
            "card_country": "FR",
            "avs_result": "match",
            "cvv_result": "match",
            "three_ds": "authenticated",
        },
        "device": {
            "device_id": f"dev-{customer_id}-iphone",
            "ip_address": "203.0.113.24",
            "ip_country": "FR",
        },
    }
    for key, value in overrides.items():
        data[key] = _merge(data.get(key), value)

    payment = data["payment"]
    explicit_payment = overrides.get("payment")
    explicit = explicit_payment if isinstance(explicit_payment, dict) else {}
    if "amount_minor" not in explicit:
        payment["amount_minor"] = _item_total(data["items"]) + int(data["shipping_minor"])
    if "currency" not in explicit:
        payment["currency"] = data["currency"]
    if "authorised_at" not in explicit:
        payment["authorised_at"] = data["placed_at"]
    if "authorisation_expires_at" not in explicit:
        payment["authorisation_expires_at"] = payment["authorised_at"] + AUTHORISATION_VALIDITY
    return data


def make_order(
    order_id: str = "FR-100001", *, now: datetime | None = None, **overrides: Any
) -> Order:
    """A valid, realistic, low-risk FR order in EUR; see the module docstring."""
    return Order.model_validate(order_data(order_id, now=now, **overrides))
