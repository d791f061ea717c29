"""The chargeback vocabulary every other module speaks: providers, stages,
statuses, normalised reasons, provider event kinds and the two answers.

Stripe and Adyen words are mapped onto these in `providers`; the lifecycle,
the deadline engine and the evidence rules only ever see these.
"""

from __future__ import annotations

from enum import StrEnum


class DisputeProvider(StrEnum):
    STRIPE = "stripe"
    ADYEN = "adyen"


class DisputeStage(StrEnum):
    PRE_DISPUTE = "pre_dispute"  # inquiry, request for information, fraud notification
    DISPUTE = "dispute"  # chargeback
    PRE_ARBITRATION = "pre_arbitration"  # second chargeback / pre-arbitration


class DisputeStatus(StrEnum):
    OPEN = "open"
    GATHERING_EVIDENCE = "gathering_evidence"
    AWAITING_COORDINATOR = "awaiting_coordinator"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"
    EXPIRED = "expired"


# The provider decided or we gave up: nothing more to do unless Adyen reopens.
CLOSED_DISPUTE_STATUSES = frozenset(
    {DisputeStatus.WON, DisputeStatus.LOST, DisputeStatus.EXPIRED, DisputeStatus.ACCEPTED}
)
# A coordinator may answer in these.
RESPONDABLE_STATUSES = frozenset(
    {DisputeStatus.OPEN, DisputeStatus.GATHERING_EVIDENCE, DisputeStatus.AWAITING_COORDINATOR}
)


class DisputeReason(StrEnum):
    """Normalised reason family; evidence requirements follow it."""

    FRAUD = "fraud"
    NOT_RECEIVED = "not_received"
    NOT_AS_DESCRIBED = "not_as_described"
    CREDIT_NOT_PROCESSED = "credit_not_processed"
    DUPLICATE = "duplicate"
    SUBSCRIPTION_CANCELLED = "subscription_cancelled"
    GENERAL = "general"


class DisputeEventKind(StrEnum):
    INQUIRY = "inquiry"  # pre-dispute needing an answer (Stripe warning, Adyen RFI)
    FRAUD_NOTIFICATION = "fraud_notification"  # Adyen NOF: no response possible
    OPENED = "opened"  # a chargeback with a response deadline
    UPDATED = "updated"
    FUNDS_WITHDRAWN = "funds_withdrawn"
    FUNDS_REINSTATED = "funds_reinstated"
    INFORMATION_SUPPLIED = "information_supplied"
    ISSUER_COMMENTS = "issuer_comments"
    DEFENSE_PERIOD_ENDED = "defense_period_ended"
    SECOND_CHARGEBACK = "second_chargeback"  # reopens at pre-arbitration
    WON = "won"
    LOST = "lost"
    EARLY_FRAUD_WARNING = "early_fraud_warning"


OUTCOME_KINDS = frozenset({DisputeEventKind.WON, DisputeEventKind.LOST})
REOPEN_KINDS = frozenset({DisputeEventKind.SECOND_CHARGEBACK})


class ResponseAction(StrEnum):
    CONTEST = "contest"
    ACCEPT = "accept"
