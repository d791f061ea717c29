"""The refund rule (domain/payments.py): what is left to refund, the dispute
freeze, and the refusals the refund activity raises from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from domain.payments import (
    PAYMENT_BUSINESS_REFUSALS,
    PAYMENT_REFUSED,
    REFUND_EXCEEDS_CAPTURE,
    REFUND_FROZEN_BY_DISPUTE,
    LedgerTotals,
    RefundRefusal,
    refund_freeze,
    refund_refusal,
    refundable_minor,
)

ORDER = "ORD-1001"


def totals(captured: int, refunded: int = 0, currency: str | None = "EUR") -> LedgerTotals:
    return LedgerTotals(
        order_id=ORDER, currency=currency, captured_minor=captured, refunded_minor=refunded
    )


def refusal(
    amount: int, captured: int, refunded: int = 0, lost: int = 0, currency: str = "EUR"
) -> RefundRefusal | None:
    return refund_refusal(
        order_id=ORDER,
        amount_minor=amount,
        currency=currency,
        totals=totals(captured, refunded),
        chargeback_lost_minor=lost,
    )


@dataclass
class Dispute:
    """What the freeze reads of a dispute-register row (store.disputes.DisputeRow)."""

    due_by: datetime | None
    provider: str = "stripe"
    dispute_id: str = "dp_1"
    workflow_id: str = "chargeback:stripe:dp_1"
    status: str = "gathering_evidence"


def dispute(due_by: datetime | None) -> Dispute:
    return Dispute(due_by=due_by)


@pytest.mark.parametrize(
    ("captured", "refunded", "lost", "left"),
    [
        (245_000, 0, 0, 245_000),
        (245_000, 45_000, 0, 200_000),
        (245_000, 45_000, 100_000, 100_000),
        (245_000, 0, 245_000, 0),
        (0, 0, 0, 0),
        # Overdrawn books stay negative, so no refund fits.
        (10_000, 5_000, 10_000, -5_000),
    ],
)
def test_refundable_is_captured_less_refunded_less_chargeback_losses(
    captured: int, refunded: int, lost: int, left: int
) -> None:
    assert refundable_minor(captured, refunded, lost) == left


def test_ledger_totals_refundable_ignores_chargebacks() -> None:
    assert totals(245_000, 45_000).refundable_minor == 200_000


def test_the_exact_amount_left_may_be_refunded() -> None:
    assert refusal(200_000, captured=245_000, refunded=45_000) is None
    assert refusal(145_000, captured=245_000, refunded=45_000, lost=55_000) is None


def test_one_minor_unit_over_is_refused_with_the_figures() -> None:
    refused = refusal(200_001, captured=245_000, refunded=45_000)
    assert refused is not None
    assert refused.type == REFUND_EXCEEDS_CAPTURE
    assert refused.details == {
        "captured_minor": 245_000,
        "refunded_minor": 45_000,
        "charged_back_minor": 0,
        "requested_minor": 200_001,
    }
    assert "200001 EUR" in refused.message and ORDER in refused.message


def test_chargeback_losses_shrink_what_may_be_refunded() -> None:
    assert refusal(245_000, captured=245_000) is None
    refused = refusal(245_000, captured=245_000, lost=100_000)
    assert refused is not None and refused.type == REFUND_EXCEEDS_CAPTURE
    assert "lost to chargebacks 100000" in refused.message
    assert refusal(145_000, captured=245_000, lost=100_000) is None
    # Everything lost to the scheme: not even one minor unit goes back.
    lost_all = refusal(1, captured=245_000, lost=245_000)
    assert lost_all is not None and lost_all.type == REFUND_EXCEEDS_CAPTURE


def test_nothing_captured_leaves_nothing_to_refund() -> None:
    refused = refund_refusal(
        order_id=ORDER,
        amount_minor=1,
        currency="EUR",
        totals=totals(0, currency=None),
        chargeback_lost_minor=0,
    )
    assert refused is not None and refused.type == REFUND_EXCEEDS_CAPTURE


def test_a_refund_in_another_currency_is_refused_before_the_amount() -> None:
    refused = refusal(1, captured=245_000, currency="USD")
    assert refused == RefundRefusal(
        type=PAYMENT_REFUSED,
        message=f"refund in USD for order {ORDER} captured in EUR",
        details="currency_mismatch",
    )


def test_no_open_dispute_no_freeze() -> None:
    assert refund_freeze(ORDER, None) is None


def test_an_open_dispute_freezes_the_refund() -> None:
    frozen = refund_freeze(ORDER, dispute(datetime(2026, 3, 20, 23, 59, tzinfo=UTC)))
    assert frozen is not None
    assert frozen.type == REFUND_FROZEN_BY_DISPUTE
    assert frozen.details == {
        "provider": "stripe",
        "dispute_id": "dp_1",
        "workflow_id": "chargeback:stripe:dp_1",
        "status": "gathering_evidence",
    }
    assert frozen.message == (
        f"refund of order {ORDER} is frozen: stripe dispute dp_1 is open "
        "(gathering_evidence, provider deadline 2026-03-20 23:59 UTC); the card scheme "
        "may return the money, so a refund now could pay the customer twice"
    )


def test_a_freeze_without_a_provider_deadline_says_no_deadline() -> None:
    frozen = refund_freeze(ORDER, dispute(None))
    assert frozen is not None and "(gathering_evidence);" in frozen.message


def test_the_error_type_values_never_change() -> None:
    # Recorded histories and running workflows carry these strings.
    assert (PAYMENT_REFUSED, REFUND_EXCEEDS_CAPTURE, REFUND_FROZEN_BY_DISPUTE) == (
        "PaymentRefused",
        "RefundExceedsCapture",
        "RefundFrozenByDispute",
    )
    assert PAYMENT_BUSINESS_REFUSALS == (
        "PaymentRefused",
        "RefundExceedsCapture",
        "RefundFrozenByDispute",
        "IdempotencyKeyReused",
        "LedgerConflict",
    )
