"""Orders for each review path, built on tests/factories.py.

Every order gets its own customer, email, card, device and address: the
factory's default order reuses one customer, and a few hundred orders from the
same identities in 24 hours would fire the velocity rules and send the
"auto-accept" orders to review.

The tweaks that pick a path come from domain/risk_rules.py (FR thresholds:
review at 35, decline at 85):

- auto-accept: the factory's clean order (score 0);
- review: AVS and CVV mismatch (15 + 35 = 50, medium band);
- auto-decline: AVS and CVV mismatch and failed 3-D Secure (15 + 35 + 40 = 90).

`expected_routing` re-checks each order against the rules as they are now,
so a rule change that moves a bench order to another path fails loudly at the
start instead of skewing the figures.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from domain.orders import Order
from domain.risk import CustomerSignals, Routing
from domain.risk_rules import assess
from tests.factories import make_order


class Path(StrEnum):
    AUTO_ACCEPT = "auto_accept"
    REVIEW = "review"
    AUTO_DECLINE = "auto_decline"


_PAYMENT_TWEAKS: dict[Path, dict[str, Any]] = {
    Path.AUTO_ACCEPT: {},
    Path.REVIEW: {"avs_result": "mismatch", "cvv_result": "mismatch"},
    Path.AUTO_DECLINE: {
        "avs_result": "mismatch",
        "cvv_result": "mismatch",
        "three_ds": "failed",
    },
}

ROUTING: dict[Path, Routing] = {
    Path.AUTO_ACCEPT: Routing.AUTO_ACCEPT,
    Path.REVIEW: Routing.REVIEW,
    Path.AUTO_DECLINE: Routing.AUTO_DECLINE,
}


def bench_order(path: Path, order_id: str) -> Order:
    """A valid FR order routed to `path`, with identities nobody else uses."""
    customer_id = f"C-{order_id}"
    # The address rules look at line1 + postal code + country only.
    line1 = f"18 Rue de Grenelle, porte {order_id}"
    return make_order(
        order_id,
        customer={"customer_id": customer_id, "email": f"{order_id.lower()}@bench.example.fr"},
        billing_address={"line1": line1},
        shipping_address={"line1": line1},
        payment=dict(_PAYMENT_TWEAKS[path]),
    )


def expected_routing(order: Order) -> Routing:
    """The routing the rule set gives `order` for a customer the store has never seen."""
    return assess(order, CustomerSignals(), order.placed_at).routing


def check_paths() -> None:
    """Fail early if the current rules no longer route the bench orders as intended."""
    for path in Path:
        order = bench_order(path, f"BCHK-{path.value.replace('_', '-')}")
        routing = expected_routing(order)
        if routing is not ROUTING[path]:
            raise RuntimeError(
                f"bench order for path {path} is routed {routing} by the current rules "
                f"(domain/risk_rules.py changed?); update bench/orders.py"
            )
