"""Money movements Steward asks the payment provider for.

Every operation carries an idempotency key derived from the workflow id and a
deterministic operation id (never the run id), so a retried activity, a
restarted worker or a reset workflow can never move money twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

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

    @property
    def refundable_minor(self) -> int:
        return self.captured_minor - self.refunded_minor


# Activity names, shared by workflows (which call them by name and never
# import activities/) and the activity implementations.
CAPTURE_PAYMENT = "capture_payment"
VOID_AUTHORISATION = "void_authorisation"
REFUND_PAYMENT = "refund_payment"

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

# The business refusals a payment call ends with (retrying cannot change them).
PAYMENT_BUSINESS_REFUSALS: Final = (
    PAYMENT_REFUSED,
    REFUND_EXCEEDS_CAPTURE,
    REFUND_FROZEN_BY_DISPUTE,
    IDEMPOTENCY_KEY_REUSED,
    LEDGER_CONFLICT,
)
