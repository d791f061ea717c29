"""An order without its personal values, for Temporal (issue 21).

The edge that receives an order (the API, the CLI, the simulator, the bench)
keeps the order's personal values in the personal-data store
(store/order_subjects.py: one subject of kind ``order`` per order, fields
named by their path below) and starts the review with the order *pseudonymised*:
every value at ORDER_PERSONAL_PATHS replaced by a fixed placeholder, valid for
the model, so the workflow keeps working on the order's business facts
(ids, market, items, amounts, payment references, countries, dates) while
Temporal holds the subject id and nothing personal. Activities that need the
values (scoring, the customer notification, the release that starts the
fulfilment) read them back by subject id.

Pure: no store, no keys; the workflow sandbox imports it.
"""

from __future__ import annotations

from typing import Any

from domain.orders import Order

_ADDRESS_PARTS = ("line1", "line2", "city", "postal_code", "region")
# The personal values of an Order, by path in its JSON form. The same list as
# store/fulfilment.py ORDER_PERSONAL_PATHS: the review's subject and the
# fulfilment's kept order are one subject (kind "order", one per order id).
ORDER_PERSONAL_PATHS: tuple[str, ...] = (
    "customer.email",
    "customer.full_name",
    "customer.phone",
    *(f"billing_address.{p}" for p in _ADDRESS_PARTS),
    *(f"shipping_address.{p}" for p in _ADDRESS_PARTS),
    "device.ip_address",
)
# What a pseudonymised order shows instead: required fields get a placeholder
# (never a plausible value: "[personal]" is not a street, the email's domain
# is Steward's own), optional ones None.
PLACEHOLDER = "[personal]"
PLACEHOLDER_EMAIL = "personal-data@steward.personal"
PSEUDONYM_VALUES: dict[str, str | None] = {
    "customer.email": PLACEHOLDER_EMAIL,
    "customer.full_name": PLACEHOLDER,
    "customer.phone": None,
    "device.ip_address": PLACEHOLDER,
    **{
        f"{parent}.{part}": (PLACEHOLDER if part in ("line1", "city", "postal_code") else None)
        for parent in ("billing_address", "shipping_address")
        for part in _ADDRESS_PARTS
    },
}


def _set(document: dict[str, Any], path: str, value: object) -> None:
    *parents, leaf = path.split(".")
    node: Any = document
    for part in parents:
        node = node[part]
    node[leaf] = value


def pseudonymise_order(order: Order) -> Order:
    """The order with every personal value replaced by its placeholder."""
    document = order.model_dump(mode="json")
    for path, value in PSEUDONYM_VALUES.items():
        _set(document, path, value)
    return Order.model_validate(document)


def is_pseudonymised(order: Order) -> bool:
    """True when no personal value is left in the order (every path holds its
    placeholder)."""
    document = order.model_dump(mode="json")
    for path, value in PSEUDONYM_VALUES.items():
        node: Any = document
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node != value:
            return False
    return True
