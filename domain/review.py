"""Order review: states, decisions and the rules that validate them.

Pure: the workflow calls these functions, tests call them without a server.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import Field, model_validator

from domain.business_hours import (
    BUSINESS_HOURS_MARKETS,
    MARKET_CALENDARS,
    BusinessCalendar,
    calendar_for_market,
)
from domain.common import (
    DECISION_IN_PROGRESS,
    DECISION_REJECTED,
    SUBJECT_ID_PATTERN,
    NonEmptyStr,
    Role,
    StewardModel,
)
from domain.order_privacy import is_pseudonymised
from domain.orders import Order
from domain.risk import RiskAssessment


class ReviewStatus(StrEnum):
    RECEIVED = "received"
    SCORED = "scored"
    AUTO_ACCEPTED = "auto_accepted"
    AUTO_DECLINED = "auto_declined"
    AWAITING_REVIEW = "awaiting_review"
    AWAITING_CUSTOMER = "awaiting_customer"
    CAPTURING = "capturing"
    # Declined or cancelled: the authorisation is being voided (revision 3).
    CANCELLING = "cancelling"
    RELEASED = "released"
    CANCELLED = "cancelled"


CLOSED_STATUSES = frozenset({ReviewStatus.RELEASED, ReviewStatus.CANCELLED})
# Once capture starts, the money decision is taken; decisions and cancels are refused.
DECIDABLE_STATUSES = frozenset({ReviewStatus.AWAITING_REVIEW, ReviewStatus.AWAITING_CUSTOMER})


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"
    ASK_CUSTOMER = "ask_customer"


class DecisionReason(StrEnum):
    """Why a coordinator decided; reported on in the fraud and cancellation report."""

    VERIFIED_CUSTOMER = "verified_customer"
    CUSTOMER_CONFIRMED = "customer_confirmed"
    LOW_RISK_ON_REVIEW = "low_risk_on_review"
    SUSPECTED_FRAUD = "suspected_fraud"
    STOLEN_CARD = "stolen_card"
    RESELLER = "reseller"
    CUSTOMER_UNREACHABLE = "customer_unreachable"
    IDENTITY_CHECK_NEEDED = "identity_check_needed"
    ADDRESS_CHECK_NEEDED = "address_check_needed"
    POLICY_DEFAULT = "policy_default"  # the configured default acted at the deadline
    AUTOMATIC = "automatic"  # the rule set decided without a person


class DefaultAction(StrEnum):
    """What happens at the hard deadline when nobody decided."""

    DECLINE = "decline"  # void the authorisation and cancel: no capture without a decision
    APPROVE = "approve"


class ReviewPolicy(StewardModel):
    """Per-market review timing, resolved from configuration when the review
    starts and kept in the workflow input so a running review never changes
    its rules under replay."""

    review_sla: timedelta = timedelta(hours=4)
    reminder_after: timedelta = timedelta(hours=2)
    # Stop waiting this long before the authorisation expires, so void or
    # capture still has time to reach the provider.
    auth_expiry_margin: timedelta = timedelta(hours=6)
    customer_answer_timeout: timedelta = timedelta(hours=48)
    default_action: DefaultAction = DefaultAction.DECLINE
    # Revision 4: the reminder, the escalation and the task's due time count
    # in business hours of the market's desk (domain/business_hours.py), a
    # snapshot taken when the review starts; None: wall-clock, as before.
    calendar: BusinessCalendar | None = None

    @model_validator(mode="after")
    def _reminder_before_sla(self) -> ReviewPolicy:
        if self.reminder_after >= self.review_sla:
            raise ValueError("reminder_after must be shorter than review_sla")
        return self


# Markets with a follow-the-sun team get shorter SLAs; the rest use the default.
MARKET_REVIEW_POLICIES: dict[str, ReviewPolicy] = {
    "FR": ReviewPolicy(review_sla=timedelta(hours=2), reminder_after=timedelta(hours=1)),
    "GB": ReviewPolicy(review_sla=timedelta(hours=2), reminder_after=timedelta(hours=1)),
    "US": ReviewPolicy(review_sla=timedelta(hours=3), reminder_after=timedelta(hours=90 / 60)),
    "CN": ReviewPolicy(review_sla=timedelta(hours=4), reminder_after=timedelta(hours=2)),
}


def review_policy_for(market: str) -> ReviewPolicy:
    return MARKET_REVIEW_POLICIES.get(market, ReviewPolicy())


# The workflow's behaviour revision, chosen by whoever starts the review and
# carried in its input, so a run keeps the behaviour it started with and every
# recorded history replays:
#   1. the received step is written (audit rows, case row, search attributes)
#      before scoring, in a step of its own;
#   2. the starter sets the received status as a start search attribute, and
#      the received step's rows go out with the scoring step's: one local
#      activity and one search-attribute upsert fewer on every review. The
#      capturing status reaches the search attributes only when the first
#      capture attempt fails (a `capture_retrying` audit row says why), not
#      on every order: one more upsert fewer;
#   3. a decline, a default decline, an upstream cancel or an auto-decline
#      first moves the review to `cancelling` and writes that step (the
#      decision's audit rows, its closed task, the case row, the search
#      attributes) before the void: a void that stalls on the provider no
#      longer leaves a decided task in the work queue, and `decide` answers
#      with `cancelling` instead of the status the decision ended.
#   4. the SLA ladder (reminder, escalation, the review task's due time)
#      counts in business hours of the policy's calendar, set for the markets
#      of BUSINESS_HOURS_MARKETS (issue 17); the hard deadline before the
#      authorisation expires stays wall-clock. Runs of revisions 1-3 keep
#      wall-clock SLAs whatever their policy says.
# Revisions 2 and 3 change no decision and no money movement, only how and
# when the same records reach the store and visibility.
CURRENT_REVIEW_REVISION = 4


class OrderReviewInput(StewardModel):
    order: Order
    policy: ReviewPolicy = Field(default_factory=ReviewPolicy)
    # Absent in runs started before revisions existed: those are revision 1.
    revision: int = Field(default=1, ge=1, le=CURRENT_REVIEW_REVISION)
    # Issue 21: the personal-data subject holding the order's personal values
    # (store/order_subjects.py); `order` is then pseudonymised
    # (domain/order_privacy.py) and the activities that need the values read
    # them by this id. None (runs started before, a review a workflow starts):
    # the order carries its values, as before.
    subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)

    @model_validator(mode="after")
    def _subject_means_pseudonymised(self) -> OrderReviewInput:
        if self.subject_id is not None and not is_pseudonymised(self.order):
            raise ValueError("order: an order with a subject_id must be pseudonymised")
        return self


def review_input(
    order: Order, *, business_calendar: bool = True, subject_id: str | None = None
) -> OrderReviewInput:
    """What a new review of `order` starts with: its market's policy (with its
    desk's business-hours calendar where the market counts SLAs in business
    hours), the current revision.

    Workflows pass `business_calendar=False`: a calendar comes from the
    holidays library, which a workflow must not call (it imports and reads
    the process locale; the sandbox refuses it), so a review started by a
    workflow counts its SLAs in wall-clock time, as markets without a
    calendar do.

    `subject_id`: the order's personal values are in the personal-data store
    under it and `order` is pseudonymised (store/order_subjects.py put_order)."""
    policy = review_policy_for(order.market)
    if (
        business_calendar
        and order.market in BUSINESS_HOURS_MARKETS
        and order.market in MARKET_CALENDARS
    ):
        calendar = calendar_for_market(order.market, starting=order.placed_at.date())
        policy = policy.model_copy(update={"calendar": calendar})
    return OrderReviewInput(
        order=order, policy=policy, revision=CURRENT_REVIEW_REVISION, subject_id=subject_id
    )


class DecideInput(StewardModel):
    """A coordinator's decision, sent as the `decide` update."""

    decision: ReviewDecision
    reason_code: DecisionReason
    note: str = Field(default="", max_length=2000)
    actor: NonEmptyStr
    role: Role


class CustomerAnswer(StewardModel):
    """The customer's reply to an ask_customer request (signal)."""

    event_id: NonEmptyStr
    confirmed: bool
    message: str = Field(default="", max_length=2000)
    channel: str = "email"
    # Issue 21: the customer's words are kept in the personal-data store
    # under this subject (kind "message", clients/order_review.py
    # answer_customer) and `message` is empty. None: `message` is the text.
    message_subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)


class CancelRequest(StewardModel):
    """Upstream order management cancels the order (signal)."""

    event_id: NonEmptyStr
    reason: NonEmptyStr
    requested_by: NonEmptyStr = "order-management"


class EarlyFraudWarning(StewardModel):
    """A payment provider's early fraud warning on the order (signal, sent by
    the chargeback intake, clients/chargeback.py): while the review is still
    open it goes to a person, with the warning as a reason. Holding a released
    order is fulfilment's business, not the review's."""

    event_id: NonEmptyStr
    provider: NonEmptyStr
    dispute_id: NonEmptyStr
    reason_code: str = ""
    occurred_at: datetime


class DecisionRecord(StewardModel):
    decision: ReviewDecision
    reason_code: DecisionReason
    note: str
    actor: str
    role: Role
    decided_at: datetime


class StatusChange(StewardModel):
    at: datetime
    status: ReviewStatus
    actor: str
    reason: str


class OrderReviewState(StewardModel):
    """Everything a person needs to see about a review (the `status` query)."""

    order_id: str
    market: str
    status: ReviewStatus
    amount_minor: int
    currency: str
    risk: RiskAssessment | None = None
    awaited_role: Role | None = None
    due_at: datetime | None = None
    hard_deadline: datetime | None = None
    reminders_sent: int = 0
    escalated: bool = False
    decisions: list[DecisionRecord] = Field(default_factory=list)
    customer_answers: list[CustomerAnswer] = Field(default_factory=list)
    cancel_request: CancelRequest | None = None
    early_fraud_warnings: list[EarlyFraudWarning] = Field(default_factory=list)
    capture_reference: str | None = None
    void_reference: str | None = None
    warehouse_release_id: str | None = None
    history: list[StatusChange] = Field(default_factory=list)


class OrderReviewResult(StewardModel):
    order_id: str
    status: ReviewStatus
    risk: RiskAssessment | None
    decided_by: str
    reason_code: DecisionReason | None
    captured_minor: int
    currency: str


class DecisionRejected(ValueError):
    """A decision the validator refuses; the message says why."""


DECIDER_ROLES = frozenset({Role.COORDINATOR, Role.MANAGER})
# Once escalated, only a manager may decide.
ESCALATED_DECIDER_ROLES = frozenset({Role.MANAGER})


def validate_decision(state: OrderReviewState, decision: DecideInput) -> None:
    """Raise DecisionRejected when `decision` may not be applied to `state`."""
    if state.status in CLOSED_STATUSES:
        raise DecisionRejected(f"review of order {state.order_id} is closed ({state.status})")
    if state.status not in DECIDABLE_STATUSES:
        raise DecisionRejected(
            f"review of order {state.order_id} is not awaiting a decision ({state.status})"
        )
    allowed = ESCALATED_DECIDER_ROLES if state.escalated else DECIDER_ROLES
    if decision.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise DecisionRejected(f"role: {decision.role} may not decide this review (needs {names})")
    if decision.reason_code in (DecisionReason.POLICY_DEFAULT, DecisionReason.AUTOMATIC):
        raise DecisionRejected(f"reason_code: {decision.reason_code} is reserved for Steward")
    if decision.decision is ReviewDecision.DECLINE and not decision.note.strip():
        raise DecisionRejected("note: a decline needs a note for the audit trail")
    if (
        decision.decision is ReviewDecision.ASK_CUSTOMER
        and state.status is ReviewStatus.AWAITING_CUSTOMER
    ):
        raise DecisionRejected("decision: the customer has already been asked")


def hard_deadline(order: Order, policy: ReviewPolicy) -> datetime:
    """The last moment a decision is useful: before the authorisation expires."""
    return order.payment.authorisation_expires_at - policy.auth_expiry_margin


class OrderReviewContract:
    """The names Temporal knows the order review by: the workflow's
    decorators and every client (clients/) use these, so renaming one side
    alone fails type checking, and tests/unit/test_contracts.py compares them
    with the registered workflow."""

    WORKFLOW_TYPE: Final = "OrderReviewWorkflow"
    QUERY_STATUS: Final = "status"
    UPDATE_DECIDE: Final = "decide"
    SIGNAL_CANCEL: Final = "cancel"
    SIGNAL_CUSTOMER_ANSWERED: Final = "customer_answered"
    SIGNAL_EARLY_FRAUD_WARNING: Final = "early_fraud_warning"
    ERRORS: Final = (DECISION_REJECTED, DECISION_IN_PROGRESS)
