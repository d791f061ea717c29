"""What became of an order, written back by the step that decided it.

Each process that learns an order's fate (the review declines it, the carrier
delivers it, the return refunds it, the dispute is won or lost...) adds an
`OutcomeWrite` to the local write of that step (`RecordTransitionInput.outcomes`,
written with the step's audit rows in one transaction). The store keeps one row
per `key` and moves the order's outcome on `orders_seen` and the customer's
counters on `customer_history` only when that row is new, so a retried local
write, a replayed step or a redelivered event never counts twice.

`OUTCOME_EFFECTS` is the one table of which outcome moves which counter, and
which process writes it; docs/risk.md shows the same table (a unit test keeps
them in step). The risk rules read the counters (prior chargebacks, serial
returner, trusted history), the dispute evidence reads the outcomes (prior
undisputed delivered orders).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import Field, model_validator

from domain.common import CurrencyCode, NonEmptyStr, StewardModel


class OrderOutcome(StrEnum):
    CANCELLED = "cancelled"
    CANCELLED_FRAUD = "cancelled_fraud"
    DELIVERY_FAILED = "delivery_failed"
    DELIVERED = "delivered"
    RETURNED = "returned"
    REFUNDED = "refunded"
    CHARGED_BACK_WON = "charged_back_won"
    CHARGED_BACK_LOST = "charged_back_lost"


class Counter(StrEnum):
    """The columns of `customer_history` the outcomes move."""

    COMPLETED_ORDERS = "completed_orders"
    RETURNS = "returns"
    CHARGEBACKS = "chargebacks"
    CHARGEBACKS_WON = "chargebacks_won"
    CHARGEBACKS_LOST = "chargebacks_lost"
    FRAUD_DECLINES = "fraud_declines"
    FAILED_DELIVERIES = "failed_deliveries"


@dataclass(frozen=True)
class OutcomeEffect:
    # Later stages of an order's life outrank earlier ones: the outcome on
    # `orders_seen` only moves to an equal or higher rank, so a late delivery
    # scan never hides a return or a lost chargeback.
    rank: int
    counters: tuple[Counter, ...]
    # The returned value (per currency) grows by the outcome's amount.
    adds_returned_value: bool
    writers: tuple[str, ...]
    note: str = ""


OUTCOME_EFFECTS: Mapping[OrderOutcome, OutcomeEffect] = {
    OrderOutcome.CANCELLED: OutcomeEffect(
        3, (), False, ("order_review",), "upstream cancel or failed capture"
    ),
    OrderOutcome.CANCELLED_FRAUD: OutcomeEffect(
        3,
        (Counter.FRAUD_DECLINES,),
        False,
        ("order_review",),
        "declined by a coordinator or the rules (a default decline is `cancelled`)",
    ),
    OrderOutcome.DELIVERY_FAILED: OutcomeEffect(
        1, (Counter.FAILED_DELIVERIES,), False, ("failed_delivery",), "once per failed shipment"
    ),
    OrderOutcome.DELIVERED: OutcomeEffect(
        2,
        (Counter.COMPLETED_ORDERS,),
        False,
        ("carrier_events",),
        "once per order, however many parcels",
    ),
    OrderOutcome.RETURNED: OutcomeEffect(
        3, (Counter.RETURNS,), True, ("returns",), "once per return refunded"
    ),
    OrderOutcome.REFUNDED: OutcomeEffect(
        3, (), False, ("failed_delivery",), "parcel back to stock and refunded"
    ),
    OrderOutcome.CHARGED_BACK_WON: OutcomeEffect(
        4,
        (Counter.CHARGEBACKS, Counter.CHARGEBACKS_WON),
        False,
        ("chargeback",),
        "the provider's final word (an early fraud warning counts nothing)",
    ),
    OrderOutcome.CHARGED_BACK_LOST: OutcomeEffect(
        4,
        (Counter.CHARGEBACKS, Counter.CHARGEBACKS_LOST),
        False,
        ("chargeback",),
        "the provider's final word (an early fraud warning counts nothing)",
    ),
}


class OutcomeWrite(StewardModel):
    """One outcome of one order, counted once per `key`.

    `key` names the deciding case and the outcome (`outcome_key`), so the same
    case deciding again (a retried write, a replay) is the same write."""

    key: NonEmptyStr
    order_id: NonEmptyStr
    outcome: OrderOutcome
    process: NonEmptyStr
    occurred_at: datetime
    # The value concerned (a return's refunded value); 0 when none.
    amount_minor: int = Field(default=0, ge=0)
    currency: CurrencyCode | None = None

    @model_validator(mode="after")
    def _value_has_currency(self) -> OutcomeWrite:
        if self.amount_minor and self.currency is None:
            raise ValueError("currency: an outcome with an amount needs its currency")
        return self


def outcome_key(case_key: str, outcome: OrderOutcome) -> str:
    """The write's key: the deciding case (its workflow id, or an event key for
    a write outside a workflow) plus the outcome."""
    return f"{case_key}#{outcome.value}"
