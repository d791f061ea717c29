"""Money movements Steward asks the payment provider for.

Every operation carries an idempotency key derived from the workflow id and a
deterministic operation id (never the run id), so a retried activity, a
restarted worker or a reset workflow can never move money twice.

The refund rule is here too (pure; the refund activity gathers the facts
under its order lock and asks `refund_freeze` and `refund_refusal`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol

from domain.common import CurrencyCode, MinorUnits, NonEmptyStr, StewardModel


class PaymentOperationKind(StrEnum):
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class PaymentOperationStatus(StrEnum):
    SUCCEEDED = "succeeded"
    REFUSED = "refused"


def idempotency_key(workflow_id: str, operation_id: str) -> str:
    return f"{workflow_id}/{operation_id}"


class PaymentOperationInput(StewardModel):
    workflow_id: NonEmptyStr
    operation_id: NonEmptyStr  # e.g. "capture", "void", "refund-1"
    order_id: NonEmptyStr
    provider: NonEmptyStr
    authorisation_ref: NonEmptyStr
    amount_minor: MinorUnits
    currency: CurrencyCode
    reason: str = ""

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.workflow_id, self.operation_id)


class PaymentOperationResult(StewardModel):
    kind: PaymentOperationKind
    idempotency_key: str
    provider_reference: str
    status: PaymentOperationStatus
    amount_minor: int
    currency: str


class LedgerEntry(StewardModel):
    """One row of the payment ledger: a money movement the provider confirmed."""

    idempotency_key: str
    workflow_id: str
    order_id: str
    kind: PaymentOperationKind
    amount_minor: int
    currency: str
    provider: str
    provider_reference: str
    recorded_at: datetime


class LedgerTotals(StewardModel):
    """What the ledger says happened to an order's money."""

    order_id: str
    currency: str | None  # None: nothing recorded yet
    captured_minor: int = 0
    refunded_minor: int = 0
    voided: bool = False
    # Refunds sent and not final yet (a Stripe refund answered `pending`, an
    # Adyen refund before its notification): not in `refunded_minor` until
    # the provider confirms them.
    refund_pending_minor: int = 0

    @property
    def refundable_minor(self) -> int:
        """Captured less refunded, before chargeback losses (the ledger does
        not know them; see the module-level `refundable_minor`)."""
        return refundable_minor(self.captured_minor, self.refunded_minor, 0)


# Activity names, shared by workflows (which call them by name and never
# import activities/) and the activity implementations.
CAPTURE_PAYMENT = "capture_payment"
VOID_AUTHORISATION = "void_authorisation"
REFUND_PAYMENT = "refund_payment"
# After a capture was given up: did it happen after all? Sends nothing; waits
# for the final notification of a modification still pending at the provider.
AWAIT_CAPTURE_OUTCOME = "await_capture_outcome"

# ApplicationError types the payment activities raise, defined once: the
# activities raise them, workflows branch on them and list them as
# non-retryable. The values are part of recorded histories; never change them.
# The provider refused (declined, expired authorisation, currency mismatch).
PAYMENT_REFUSED: Final = "PaymentRefused"
# The refund is more than captured - refunded - lost to chargebacks.
REFUND_EXCEEDS_CAPTURE: Final = "RefundExceedsCapture"
# An open chargeback on the order: refunding now could pay the customer twice
# (once by us, once by the card scheme). Returns and failed deliveries wait.
REFUND_FROZEN_BY_DISPUTE: Final = "RefundFrozenByDispute"
# The same idempotency key arrived for a different movement: a caller's bug.
IDEMPOTENCY_KEY_REUSED: Final = "IdempotencyKeyReused"
# Money moved but the ledger holds another version of the row: a person looks.
LEDGER_CONFLICT: Final = "LedgerConflict"
# The order names a payment provider this worker has no adapter for.
UNKNOWN_PAYMENT_PROVIDER: Final = "UnknownPaymentProvider"
# Retryable: the provider asked us to slow down (next_retry_delay is set).
PROVIDER_RATE_LIMITED: Final = "PaymentProviderRateLimited"
# Listed as non-retryable by the order review; no activity raises it today.
INVALID_ORDER: Final = "InvalidOrder"
# The PaymentRefused code of an operation whose outcome never came (Adyen): it
# may still happen, unlike the provider's own refusals.
OUTCOME_NOT_RECEIVED: Final = "adyen_outcome_not_received"

# The business refusals a payment call ends with (retrying cannot change them).
PAYMENT_BUSINESS_REFUSALS: Final = (
    PAYMENT_REFUSED,
    REFUND_EXCEEDS_CAPTURE,
    REFUND_FROZEN_BY_DISPUTE,
    IDEMPOTENCY_KEY_REUSED,
    LEDGER_CONFLICT,
)


# -- the refund rule -------------------------------------------------------------


def refundable_minor(captured_minor: int, refunded_minor: int, chargeback_lost_minor: int) -> int:
    """What may still go back to the customer: what we captured, less what we
    refunded and what the card scheme already took back (chargebacks lost or
    accepted). Negative when the books are overdrawn; then nothing may go."""
    return captured_minor - refunded_minor - chargeback_lost_minor


class OpenDispute(Protocol):
    """The facts about an order's open dispute the freeze reports (a row of
    the dispute register fits)."""

    provider: str
    dispute_id: str
    workflow_id: str
    status: str
    due_by: datetime | None


@dataclass(frozen=True)
class RefundRefusal:
    """Why a refund may not go to the provider: what the activity raises as a
    non-retryable ApplicationError (type, message, details)."""

    type: str
    message: str
    details: Mapping[str, object] | str


def refund_freeze(order_id: str, open_dispute: OpenDispute | None) -> RefundRefusal | None:
    """Refunds are frozen while a dispute is open on the order: the card scheme
    may return the money, so a refund now could pay the customer twice. None:
    no dispute is open."""
    if open_dispute is None:
        return None
    due = (
        f", provider deadline {open_dispute.due_by:%Y-%m-%d %H:%M} UTC"
        if open_dispute.due_by
        else ""
    )
    return RefundRefusal(
        type=REFUND_FROZEN_BY_DISPUTE,
        message=(
            f"refund of order {order_id} is frozen: {open_dispute.provider} dispute "
            f"{open_dispute.dispute_id} is open ({open_dispute.status}{due}); the card scheme "
            "may return the money, so a refund now could pay the customer twice"
        ),
        details={
            "provider": open_dispute.provider,
            "dispute_id": open_dispute.dispute_id,
            "workflow_id": open_dispute.workflow_id,
            "status": open_dispute.status,
        },
    )


def refund_refusal(
    *,
    order_id: str,
    amount_minor: int,
    currency: str,
    totals: LedgerTotals,
    chargeback_lost_minor: int,
) -> RefundRefusal | None:
    """Whether a refund of `amount_minor` `currency` fits the order's money
    (checked after `refund_freeze`). None: it does. Refused: a currency other
    than the captured one, or more than `refundable_minor` (exactly all of it
    is allowed)."""
    if totals.currency is not None and totals.currency != currency:
        return RefundRefusal(
            type=PAYMENT_REFUSED,
            message=(f"refund in {currency} for order {order_id} captured in {totals.currency}"),
            details="currency_mismatch",
        )
    left = refundable_minor(totals.captured_minor, totals.refunded_minor, chargeback_lost_minor)
    if amount_minor > left:
        return RefundRefusal(
            type=REFUND_EXCEEDS_CAPTURE,
            message=(
                f"refund of {amount_minor} {currency} exceeds what is left "
                f"to refund on order {order_id}: captured {totals.captured_minor}, "
                f"refunded {totals.refunded_minor}, lost to chargebacks {chargeback_lost_minor}"
            ),
            details={
                "captured_minor": totals.captured_minor,
                "refunded_minor": totals.refunded_minor,
                "charged_back_minor": chargeback_lost_minor,
                "requested_minor": amount_minor,
            },
        )
    return None
