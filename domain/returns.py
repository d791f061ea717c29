"""Returns, exchanges and refunds: what a return is and the rules that judge it.

Pure: the workflow, the activities and the tests call these functions; nothing
here does I/O. Per-market policy is resolved when the return starts and kept
in the workflow input, so a running return never changes its rules on replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import EmailStr, Field, ValidationInfo, field_validator, model_validator

from domain.business_hours import BusinessCalendar, coordinator_calendar
from domain.common import (
    DECISION_IN_PROGRESS,
    DECISION_REJECTED,
    MAX_MINOR_UNITS,
    SUBJECT_ID_PATTERN,
    BusinessKey,
    CountryCode,
    CurrencyCode,
    MinorUnits,
    NonEmptyStr,
    Role,
    StewardModel,
    format_amount,
)
from domain.deliveries import ShipmentRecord
from domain.money_thresholds import home_currency, money_thresholds
from domain.order_privacy import PLACEHOLDER_EMAIL, is_pseudonymised, pseudonymise_order
from domain.orders import MAX_ITEMS, Name, Order, Reference

# ----------------------------------------------------------------- vocabulary


class ParentReason(StrEnum):
    """Top of the reason taxonomy: what the return-reasons report groups by."""

    FIT = "fit"
    QUALITY = "quality"
    NOT_AS_DESCRIBED = "not_as_described"
    CHANGED_MIND = "changed_mind"
    DELIVERY = "delivery"


class ReturnReason(StrEnum):
    TOO_SMALL = "too_small"
    TOO_LARGE = "too_large"
    DEFECTIVE = "defective"
    DAMAGED_IN_TRANSIT = "damaged_in_transit"
    COLOUR_DIFFERS = "colour_differs"
    MATERIAL_DIFFERS = "material_differs"
    NO_LONGER_WANTED = "no_longer_wanted"
    GIFT_DECLINED = "gift_declined"
    ARRIVED_LATE = "arrived_late"
    WRONG_ITEM = "wrong_item"


REASON_PARENTS: Mapping[ReturnReason, ParentReason] = {
    ReturnReason.TOO_SMALL: ParentReason.FIT,
    ReturnReason.TOO_LARGE: ParentReason.FIT,
    ReturnReason.DEFECTIVE: ParentReason.QUALITY,
    ReturnReason.DAMAGED_IN_TRANSIT: ParentReason.DELIVERY,
    ReturnReason.COLOUR_DIFFERS: ParentReason.NOT_AS_DESCRIBED,
    ReturnReason.MATERIAL_DIFFERS: ParentReason.NOT_AS_DESCRIBED,
    ReturnReason.NO_LONGER_WANTED: ParentReason.CHANGED_MIND,
    ReturnReason.GIFT_DECLINED: ParentReason.CHANGED_MIND,
    ReturnReason.ARRIVED_LATE: ParentReason.DELIVERY,
    ReturnReason.WRONG_ITEM: ParentReason.DELIVERY,
}


def parent_reason(reason: ReturnReason) -> ParentReason:
    return REASON_PARENTS[reason]


class Resolution(StrEnum):
    REFUND = "refund"
    EXCHANGE = "exchange"
    STORE_CREDIT = "store_credit"


class QcGrade(StrEnum):
    FIRST_CHOICE = "first_choice"
    SECOND_CHOICE = "second_choice"
    KO = "ko"
    UNCERTAIN = "uncertain"


class QcOutcome(StrEnum):
    """What a coordinator does with an item that is not first choice."""

    RETURN_TO_CUSTOMER = "return_to_customer"
    PARTIAL_REFUND = "partial_refund"
    REPAIR = "repair"


class Disposition(StrEnum):
    """What the warehouse does with the item (recorded through the warehouse port)."""

    RESTOCK = "restock"
    QUARANTINE = "quarantine"
    RETURN_TO_CUSTOMER = "return_to_customer"
    REPAIR = "repair"


class CarrierEventKind(StrEnum):
    IN_TRANSIT = "in_transit"
    DELIVERED_TO_WAREHOUSE = "delivered_to_warehouse"


class CustomerChoice(StrEnum):
    """Exchange out of stock: take the money back, or wait for the replacement."""

    REFUND = "refund"
    WAIT = "wait"


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    REJECTED = "rejected"
    LABEL_ISSUED = "label_issued"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    MANUAL_QC = "manual_qc"
    AWAITING_FINANCE = "awaiting_finance"
    REFUNDING = "refunding"
    REFUND_FROZEN = "refund_frozen"
    AWAITING_CUSTOMER = "awaiting_customer"
    # Terminal states.
    REFUNDED = "refunded"
    EXCHANGED = "exchanged"
    STORE_CREDITED = "store_credited"
    RETURNED_TO_CUSTOMER = "returned_to_customer"
    SENT_TO_REPAIR = "sent_to_repair"
    QUARANTINED = "quarantined"
    REFUND_DECLINED = "refund_declined"
    REFUND_FAILED = "refund_failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    LOST_IN_TRANSIT = "lost_in_transit"


CLOSED_RETURN_STATUSES = frozenset(
    {
        ReturnStatus.REJECTED,
        ReturnStatus.REFUNDED,
        ReturnStatus.EXCHANGED,
        ReturnStatus.STORE_CREDITED,
        ReturnStatus.RETURNED_TO_CUSTOMER,
        ReturnStatus.SENT_TO_REPAIR,
        ReturnStatus.QUARANTINED,
        ReturnStatus.REFUND_DECLINED,
        ReturnStatus.REFUND_FAILED,
        ReturnStatus.CANCELLED,
        ReturnStatus.EXPIRED,
        ReturnStatus.LOST_IN_TRANSIT,
    }
)
# Returns whose items no longer count as "already returned" for a new request.
RELEASED_RETURN_STATUSES = frozenset(
    {ReturnStatus.REJECTED, ReturnStatus.CANCELLED, ReturnStatus.EXPIRED}
)
# The customer may cancel until the parcel is handed to the carrier.
CANCELLABLE_STATUSES = frozenset({ReturnStatus.REQUESTED, ReturnStatus.LABEL_ISSUED})


# ------------------------------------------------------------------- policy


class ReturnPolicy(StewardModel):
    """Per-market return rules and timing. Amounts are in the order's currency:
    `return_policy_for` takes them from domain/money_thresholds.py."""

    return_window: timedelta = timedelta(days=30)
    label_validity: timedelta = timedelta(days=28)
    label_reminder_before: timedelta = timedelta(days=7)
    # From the first carrier scan to the warehouse; past it the parcel is presumed lost.
    inbound_deadline: timedelta = timedelta(days=21)
    # The 3PL's QC normally reports within a day of receipt.
    qc_result_timeout: timedelta = timedelta(days=3)
    manual_qc_sla: timedelta = timedelta(hours=48)
    manual_qc_deadline: timedelta = timedelta(days=7)
    # The manual QC's SLA in business hours of the market's desk, for the
    # markets that count coordinator tasks in business hours
    # (BUSINESS_HOURS_MARKETS, domain/business_hours.py; issue 17): two desk
    # days. Runs started before it keep the wall-clock `manual_qc_sla`.
    manual_qc_business_sla: timedelta = Field(default=timedelta(hours=18), gt=timedelta(0))
    # The market desk's calendar, a snapshot taken when the return starts
    # (`return_policy_for(..., starting=...)`); None: wall-clock SLAs.
    calendar: BusinessCalendar | None = None
    finance_threshold_minor: MinorUnits = 500_000
    qc_high_value_minor: MinorUnits = 1_000_000
    finance_sla: timedelta = timedelta(hours=24)
    finance_deadline: timedelta = timedelta(days=7)
    # EU law: the original standard delivery is refunded on a full withdrawal.
    refund_shipping_on_full_return: bool = True
    refund_duties_on_full_return: bool = False
    refund_recheck_every: timedelta = timedelta(hours=24)
    refund_freeze_escalate_after: timedelta = timedelta(days=14)
    refund_freeze_deadline: timedelta = timedelta(days=90)
    customer_choice_timeout: timedelta = timedelta(days=7)
    exchange_wait_deadline: timedelta = timedelta(days=14)

    @model_validator(mode="after")
    def _coherent(self) -> ReturnPolicy:
        if self.label_reminder_before >= self.label_validity:
            raise ValueError("label_reminder_before must be shorter than label_validity")
        if self.manual_qc_sla >= self.manual_qc_deadline:
            raise ValueError("manual_qc_sla must be shorter than manual_qc_deadline")
        if self.finance_sla >= self.finance_deadline:
            raise ValueError("finance_sla must be shorter than finance_deadline")
        if self.refund_freeze_escalate_after >= self.refund_freeze_deadline:
            raise ValueError(
                "refund_freeze_escalate_after must be shorter than refund_freeze_deadline"
            )
        return self


MARKET_RETURN_POLICIES: Mapping[str, ReturnPolicy] = {
    # US: no statutory shipping refund; duties were paid by us (DDP) and are refunded.
    "US": ReturnPolicy(refund_shipping_on_full_return=False, refund_duties_on_full_return=True),
    "JP": ReturnPolicy(return_window=timedelta(days=14), refund_shipping_on_full_return=False),
    "CN": ReturnPolicy(
        return_window=timedelta(days=14),
        refund_shipping_on_full_return=False,
        refund_duties_on_full_return=True,
    ),
}


# The version of the return and refund rules below; a change to what a
# customer is promised gets a new one, so a dispute quotes the version cited.
REFUND_POLICY_VERSION = "2026-01"


def refund_policy_snapshot(market: str, currency: str | None = None) -> tuple[str, str]:
    """The refund policy of `market` in words, from the policy objects (what a
    dispute quotes), and its reference (`refund-policy/{market}/v{version}`)."""
    policy = return_policy_for(market, currency)
    money = currency or home_currency(market)
    extras = [
        "standard shipping refunded on a full return"
        if policy.refund_shipping_on_full_return
        else "shipping not refunded",
        "duties refunded on a full return"
        if policy.refund_duties_on_full_return
        else "duties not refunded",
    ]
    summary = (
        f"refund-policy {market} v{REFUND_POLICY_VERSION}: returns within "
        f"{policy.return_window.days} days of delivery, unworn, tags and security seal "
        f"attached; refund to the original payment once quality control confirms the item "
        f"(manual QC above {format_amount(policy.qc_high_value_minor, money)}, a second "
        f"approval above {format_amount(policy.finance_threshold_minor, money)}); "
        + "; ".join(extras)
    )
    return summary, f"refund-policy/{market}/v{REFUND_POLICY_VERSION}"


def return_policy_for(
    market: str, currency: str | None = None, *, starting: date | None = None
) -> ReturnPolicy:
    """The market's rules with the finance and manual-QC thresholds of the
    order's currency (default: the market's home currency). A currency with no
    thresholds sends every refund to finance and every return to manual QC.
    With `starting` (a new return: the day it starts), the market desk's
    business-hours calendar from that day where the market counts its
    coordinator SLAs in business hours."""
    policy = MARKET_RETURN_POLICIES.get(market, ReturnPolicy())
    amounts = money_thresholds(currency or home_currency(market))
    return policy.model_copy(
        update={
            "finance_threshold_minor": amounts.return_finance_minor if amounts else 0,
            "qc_high_value_minor": amounts.return_qc_high_value_minor if amounts else 0,
            "calendar": coordinator_calendar(market, starting=starting) if starting else None,
        }
    )


# ------------------------------------------------------------------- inputs


class ReturnLine(StewardModel):
    sku: Reference
    quantity: int = Field(ge=1, le=100)


class OrderLine(StewardModel):
    """An order line as order management knows it after delivery."""

    sku: Reference
    name: Name
    unit_price_minor: MinorUnits
    quantity: int = Field(ge=1, le=100)
    serial_number: str | None = None
    final_sale: bool = False
    personalised: bool = False


class ReturnOrder(StewardModel):
    """The delivered order being returned: only what the return needs."""

    order_id: BusinessKey
    market: CountryCode
    currency: CurrencyCode
    delivered_at: datetime
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_ITEMS)
    shipping_minor: MinorUnits = 0
    # Validated even when absent: its validator checks the order's total.
    duties_minor: MinorUnits = Field(default=0, validate_default=True)
    payment_provider: NonEmptyStr = "simulated"
    authorisation_ref: NonEmptyStr

    def line(self, sku: str) -> OrderLine | None:
        return next((line for line in self.lines if line.sku == sku), None)

    @field_validator("duties_minor")
    @classmethod
    def _total_fits(cls, duties_minor: int, info: ValidationInfo) -> int:
        """Lines, shipping and duties (what a full return may refund) within the bound."""
        lines = info.data.get("lines") or []
        total = (
            sum(line.unit_price_minor * line.quantity for line in lines)
            + int(info.data.get("shipping_minor") or 0)
            + duties_minor
        )
        if total > MAX_MINOR_UNITS:
            raise ValueError(
                f"the order total {total} (lines, shipping and duties) exceeds the maximum "
                f"{MAX_MINOR_UNITS} minor units"
            )
        return duties_minor


class CustomerContact(StewardModel):
    email: EmailStr
    locale: str = Field(default="en", max_length=10)


# The field of a return's contact subject that holds the customer's email.
CONTACT_EMAIL_FIELD: Final = "email"


class ReturnInput(StewardModel):
    rma_id: BusinessKey
    order: ReturnOrder
    lines: list[ReturnLine] = Field(min_length=1, max_length=MAX_ITEMS)
    reason: ReturnReason
    resolution: Resolution
    contact: CustomerContact
    # The customer service agent or system that opened the return; the person
    # who must not approve its refund.
    requested_by: NonEmptyStr
    requester_role: Role = Role.SYSTEM
    # Exchange only: the replacement order, reviewed as a new order.
    replacement: Order | None = None
    policy: ReturnPolicy = Field(default_factory=ReturnPolicy)
    # Issue 21 (set by the edge, clients/returns.py start_return db=): the
    # customer's email is kept in the personal-data store under this subject
    # (kind "contact", field "email"; store/returns.py put_contact) and
    # `contact.email` is the placeholder PLACEHOLDER_EMAIL. None: `contact.email`
    # is the address (runs started before).
    contact_subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)
    # Issue 21: the replacement order's personal values are kept under this
    # subject (kind "order", store/order_subjects.py put_order) and
    # `replacement` is pseudonymised; its review starts with this subject id.
    replacement_subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)

    @model_validator(mode="after")
    def _consistent(self) -> ReturnInput:
        check_return_request(self.order, self.lines, self.resolution, self.replacement)
        placeholder = str(self.contact.email) == PLACEHOLDER_EMAIL
        if self.contact_subject_id is not None and not placeholder:
            raise ValueError(
                "contact: with a contact_subject_id the email is kept in the personal-data "
                f"store; contact.email must be {PLACEHOLDER_EMAIL}"
            )
        if self.contact_subject_id is None and placeholder:
            raise ValueError("contact_subject_id: the contact's email is a placeholder")
        if self.replacement_subject_id is not None and (
            self.replacement is None or not is_pseudonymised(self.replacement)
        ):
            raise ValueError(
                "replacement: with a replacement_subject_id the replacement order must be "
                "pseudonymised"
            )
        return self


def return_without_personal_values(
    request: ReturnInput, *, contact_subject_id: str, replacement_subject_id: str | None
) -> ReturnInput:
    """`request` as Temporal may hold it (issue 21): the contact's email and the
    replacement order's personal values replaced by placeholders, the subject
    ids they are kept under beside them. Pure: the edge stores the values first."""
    return ReturnInput.model_validate(
        {
            **request.model_dump(),
            "contact": {"email": PLACEHOLDER_EMAIL, "locale": request.contact.locale},
            "replacement": (
                pseudonymise_order(request.replacement).model_dump()
                if request.replacement is not None
                else None
            ),
            "contact_subject_id": contact_subject_id,
            "replacement_subject_id": replacement_subject_id,
        }
    )


def check_return_request(
    order: ReturnOrder,
    lines: list[ReturnLine],
    resolution: Resolution,
    replacement: Order | None,
) -> None:
    """Cross-field rules of a return request; the message starts with the field."""
    skus = [line.sku for line in lines]
    if len(set(skus)) != len(skus):
        raise ValueError("lines: each sku may appear once")
    for line in lines:
        if order.line(line.sku) is None:
            raise ValueError(f"lines: sku {line.sku} is not in order {order.order_id}")
    if resolution is Resolution.EXCHANGE and replacement is None:
        raise ValueError("replacement: an exchange needs the replacement order")
    if resolution is not Resolution.EXCHANGE and replacement is not None:
        raise ValueError("replacement: only an exchange carries a replacement order")
    if replacement is not None and replacement.currency != order.currency:
        raise ValueError("replacement: the replacement order must be in the order's currency")


# ------------------------------------------------------------------ messages


class CarrierEvent(StewardModel):
    """A carrier scan (signal), de-duplicated by `event_id`."""

    event_id: NonEmptyStr
    kind: CarrierEventKind
    tracking_number: NonEmptyStr
    occurred_at: datetime
    location: str = ""


class QcResult(StewardModel):
    """The 3PL's quality-control report (signal)."""

    event_id: NonEmptyStr
    grade: QcGrade
    notes: str = Field(default="", max_length=2000)
    photos: list[str] = Field(default_factory=list, max_length=20)
    serial_number_seen: str | None = None
    authenticity_confirmed: bool = True


class QcDecisionInput(StewardModel):
    """A coordinator's manual QC decision (the `qc_decision` update)."""

    grade: QcGrade
    reason: str = Field(default="", max_length=2000)
    # Required when the grade is not first choice.
    outcome: QcOutcome | None = None
    partial_refund_minor: MinorUnits | None = None
    actor: NonEmptyStr
    role: Role


class FinanceApprovalInput(StewardModel):
    """Finance's second approval of a refund above the threshold (four eyes)."""

    approved: bool
    note: str = Field(default="", max_length=2000)
    actor: NonEmptyStr
    role: Role


class CancelReturnRequest(StewardModel):
    event_id: NonEmptyStr
    # The customer's reason, in their words. Issue 21: kept in the
    # personal-data store under `reason_subject_id` (kind "message",
    # clients/returns.py cancel db=) and None here; runs before: the text.
    reason: NonEmptyStr | None = None
    requested_by: NonEmptyStr = "customer"
    reason_subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)

    @model_validator(mode="after")
    def _one_reason(self) -> CancelReturnRequest:
        if (self.reason is None) == (self.reason_subject_id is None):
            raise ValueError("reason: give the customer's reason or its reason_subject_id")
        return self

    @property
    def reason_for_the_case(self) -> str:
        """What the audit log and the status history say: the words, or
        where they are kept."""
        if self.reason is not None:
            return self.reason
        return "the customer's reason, kept in the personal-data store"


class CustomerChoiceInput(StewardModel):
    event_id: NonEmptyStr
    choice: CustomerChoice


# ------------------------------------------------------------------ state


class QcDecisionRecord(StewardModel):
    grade: QcGrade
    reason: str
    outcome: QcOutcome | None
    partial_refund_minor: int | None
    actor: str
    role: Role
    decided_at: datetime


class FinanceApprovalRecord(StewardModel):
    approved: bool
    note: str
    actor: str
    decided_at: datetime


class ReturnStatusChange(StewardModel):
    at: datetime
    status: ReturnStatus
    actor: str
    reason: str


class ReturnState(StewardModel):
    """What a person needs to see about a return (the `status` query). No PII."""

    rma_id: str
    order_id: str
    market: str
    currency: str
    status: ReturnStatus
    reason: ReturnReason
    parent_reason: ParentReason
    resolution: Resolution
    lines: list[ReturnLine]
    value_minor: int
    refusals: list[str] = Field(default_factory=list)
    open_dispute: bool = False
    tracking_number: str | None = None
    # The return label's carrier, and the claim opened when its parcel is lost.
    carrier: str | None = None
    claim_workflow_id: str | None = None
    label_expires_at: datetime | None = None
    qc: QcResult | None = None
    manual_qc: QcDecisionRecord | None = None
    refund_minor: int | None = None
    refund_requested_by: str | None = None
    finance_approval: FinanceApprovalRecord | None = None
    refund_reference: str | None = None
    disposition: Disposition | None = None
    replacement_order_id: str | None = None
    price_difference_minor: int | None = None
    # The customer's reason for cancelling, as they gave it. Issue 21: the
    # workflow keeps only `cancel_reason_subject_id` and the API's GET reads
    # the words back (clients/returns.py with_cancel_reason; erased: [erased]).
    cancel_reason: str | None = None
    cancel_reason_subject_id: str | None = None
    awaited_role: Role | None = None
    due_at: datetime | None = None
    escalated: bool = False
    reminders_sent: int = 0
    history: list[ReturnStatusChange] = Field(default_factory=list)


class ReturnResult(StewardModel):
    rma_id: str
    status: ReturnStatus
    refunded_minor: int
    currency: str
    disposition: Disposition | None
    replacement_order_id: str | None


# ------------------------------------------------------------------ rules


class Refusal(StewardModel):
    code: NonEmptyStr
    # Shown to the customer as it is: plain words, no internal codes.
    message: NonEmptyStr


def assess_eligibility(
    request: ReturnInput,
    *,
    now: datetime,
    already_returned: Mapping[str, int],
) -> list[Refusal]:
    """Why the return cannot be accepted; an empty list means eligible."""
    order, policy = request.order, request.policy
    refusals: list[Refusal] = []
    window_ends = order.delivered_at + policy.return_window
    if now > window_ends:
        refusals.append(
            Refusal(
                code="window_closed",
                message=(
                    f"The {policy.return_window.days}-day return period for this order ended on "
                    f"{window_ends:%d %B %Y}."
                ),
            )
        )
    for wanted in request.lines:
        line = order.line(wanted.sku)
        if line is None:  # the input validator already refuses this
            continue
        if line.final_sale:
            refusals.append(
                Refusal(
                    code="final_sale",
                    message=f"{line.name} was bought as a final sale and cannot be returned.",
                )
            )
        if line.personalised:
            refusals.append(
                Refusal(
                    code="personalised",
                    message=f"{line.name} was personalised for you and cannot be returned.",
                )
            )
        left = line.quantity - already_returned.get(wanted.sku, 0)
        if wanted.quantity > left:
            refusals.append(
                Refusal(
                    code="quantity_exceeded",
                    message=(
                        f"You can return {max(left, 0)} more of {line.name}; "
                        f"this request asks for {wanted.quantity}."
                    ),
                )
            )
    return refusals


def returned_value_minor(request: ReturnInput) -> int:
    """The price paid for the returned items."""
    total = 0
    for wanted in request.lines:
        line = request.order.line(wanted.sku)
        assert line is not None
        total += line.unit_price_minor * wanted.quantity
    return total


def is_full_return(request: ReturnInput, already_returned: Mapping[str, int]) -> bool:
    """True when this return, with earlier ones, brings every unit back."""
    wanted = {line.sku: line.quantity for line in request.lines}
    return all(
        wanted.get(line.sku, 0) + already_returned.get(line.sku, 0) >= line.quantity
        for line in request.order.lines
    )


def refund_amount_minor(request: ReturnInput, *, full_return: bool) -> int:
    """Items, plus shipping and duties when the market refunds them on a full return."""
    amount = returned_value_minor(request)
    if full_return and request.policy.refund_shipping_on_full_return:
        amount += request.order.shipping_minor
    if full_return and request.policy.refund_duties_on_full_return:
        amount += request.order.duties_minor
    return amount


def manual_qc_reasons(request: ReturnInput, qc: QcResult) -> list[str]:
    """Why a person must look at the item; empty when the 3PL's grade stands."""
    reasons: list[str] = []
    if qc.grade is not QcGrade.FIRST_CHOICE:
        reasons.append(f"3PL graded {qc.grade}")
    if not qc.authenticity_confirmed:
        reasons.append("authenticity not confirmed")
    expected = {
        line.serial_number
        for wanted in request.lines
        if (line := request.order.line(wanted.sku)) is not None and line.serial_number
    }
    if expected and qc.serial_number_seen not in expected:
        reasons.append("serial number mismatch")
    if returned_value_minor(request) > request.policy.qc_high_value_minor:
        reasons.append("high value")
    return reasons


def disposition_for(grade: QcGrade, outcome: QcOutcome | None) -> Disposition:
    if grade is QcGrade.FIRST_CHOICE:
        return Disposition.RESTOCK
    if outcome is QcOutcome.RETURN_TO_CUSTOMER:
        return Disposition.RETURN_TO_CUSTOMER
    if outcome is QcOutcome.REPAIR:
        return Disposition.REPAIR
    return Disposition.QUARANTINE


class ReturnDecisionRejected(ValueError):
    """A decision the validator refuses; the message names the field and the reason."""


QC_DECIDER_ROLES = frozenset({Role.COORDINATOR, Role.MANAGER})
# Once escalated, the senior QA coordinator (manager role) decides.
QC_ESCALATED_ROLES = frozenset({Role.MANAGER})


def validate_qc_decision(
    state: ReturnState, decision: QcDecisionInput, *, max_refund_minor: int
) -> None:
    if state.status is not ReturnStatus.MANUAL_QC:
        raise ReturnDecisionRejected(
            f"status: return {state.rma_id} is not awaiting a QC decision ({state.status})"
        )
    allowed = QC_ESCALATED_ROLES if state.escalated else QC_DECIDER_ROLES
    if decision.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise ReturnDecisionRejected(
            f"role: {decision.role} may not decide this QC (needs {names})"
        )
    if not decision.reason.strip():
        raise ReturnDecisionRejected("reason: a manual QC decision needs a reason")
    if decision.grade is QcGrade.FIRST_CHOICE:
        if decision.outcome is not None or decision.partial_refund_minor is not None:
            raise ReturnDecisionRejected(
                "outcome: a first-choice item follows the customer's resolution; "
                "send no outcome or partial refund"
            )
        return
    if decision.outcome is None:
        raise ReturnDecisionRejected(
            "outcome: an item that is not first choice needs an outcome "
            "(return_to_customer, partial_refund or repair)"
        )
    if decision.outcome is QcOutcome.PARTIAL_REFUND:
        amount = decision.partial_refund_minor
        if amount is None or amount <= 0:
            raise ReturnDecisionRejected(
                "partial_refund_minor: a partial refund needs a positive amount"
            )
        if amount > max_refund_minor:
            raise ReturnDecisionRejected(
                f"partial_refund_minor: {amount} exceeds the returned value {max_refund_minor}"
            )
    elif decision.partial_refund_minor is not None:
        raise ReturnDecisionRejected(
            f"partial_refund_minor: only a partial_refund outcome carries an amount, "
            f"not {decision.outcome}"
        )


def validate_finance_approval(state: ReturnState, approval: FinanceApprovalInput) -> None:
    if state.status is not ReturnStatus.AWAITING_FINANCE:
        raise ReturnDecisionRejected(
            f"status: return {state.rma_id} is not awaiting a finance approval ({state.status})"
        )
    if approval.role is not Role.FINANCE:
        raise ReturnDecisionRejected(
            f"role: {approval.role} may not approve refunds (needs finance)"
        )
    if state.refund_requested_by and approval.actor == state.refund_requested_by:
        raise ReturnDecisionRejected(
            f"actor: {approval.actor} requested this refund and may not approve it (four eyes)"
        )
    if not approval.approved and not approval.note.strip():
        raise ReturnDecisionRejected("note: a refused refund needs a note for the audit trail")


# ------------------------------------------------------- activity contracts


class CheckEligibilityInput(StewardModel):
    workflow_id: NonEmptyStr
    request: ReturnInput
    # Workflow time, so the window is judged as of the request, not the retry.
    requested_at: datetime


class EligibilityResult(StewardModel):
    eligible: bool
    refusals: list[Refusal] = Field(default_factory=list)
    # Informational: the return proceeds but its refund waits for the dispute.
    open_dispute: bool = False
    already_returned: dict[str, int] = Field(default_factory=dict)
    full_return: bool = False
    value_minor: int = 0
    refund_minor: int = 0
    # The employee sale (domain/campaign.py) the order was bought in, if any:
    # its return gives the campaign's quota back. None in runs before it.
    campaign_id: str | None = None


class IssueLabelInput(StewardModel):
    workflow_id: NonEmptyStr
    rma_id: NonEmptyStr
    order_id: NonEmptyStr
    market: CountryCode
    lines: list[ReturnLine]
    expires_at: datetime


class IssueLabelResult(StewardModel):
    carrier: str
    tracking_number: str
    label_url: str
    expires_at: datetime


class RecordDispositionInput(StewardModel):
    workflow_id: NonEmptyStr
    rma_id: NonEmptyStr
    order_id: NonEmptyStr
    market: CountryCode
    lines: list[ReturnLine]
    disposition: Disposition
    reason: str = ""


class RecordDispositionResult(StewardModel):
    reference: str
    warehouse: str


class CheckStockInput(StewardModel):
    market: CountryCode
    lines: list[ReturnLine]


class CheckStockResult(StewardModel):
    in_stock: bool
    missing_skus: list[str] = Field(default_factory=list)


CHECK_RETURN_ELIGIBILITY = "check_return_eligibility"
ISSUE_RETURN_LABEL = "issue_return_label"
RECORD_DISPOSITION = "record_return_disposition"
CHECK_STOCK = "check_replacement_stock"
PREPARE_RETURN_PARCEL_CLAIM = "prepare_return_parcel_claim"


# ------------------------------------------------------- lost return parcel


class ReturnParcelClaimInput(StewardModel):
    """What a carrier claim for a lost return parcel needs from the store."""

    workflow_id: NonEmptyStr
    rma_id: NonEmptyStr
    order_id: NonEmptyStr
    carrier: NonEmptyStr
    tracking_number: NonEmptyStr
    lines: list[ReturnLine]
    expected_delivery_at: datetime


class ReturnParcelClaimResult(StewardModel):
    # The return parcel as a shipment Steward follows (the order restricted to
    # the returned items, so the claim declares their value); None when the
    # order is unknown to the store, with the reason.
    shipment: ShipmentRecord | None = None
    reason: str = ""


def return_parcel_shipment_id(rma_id: str) -> str:
    return f"{rma_id}-RETURN"


class ReturnContract:
    """The names Temporal knows a return by (see OrderReviewContract)."""

    WORKFLOW_TYPE: Final = "ReturnWorkflow"
    QUERY_STATUS: Final = "status"
    UPDATE_QC_DECISION: Final = "qc_decision"
    UPDATE_FINANCE_APPROVAL: Final = "finance_approval"
    SIGNAL_CARRIER_EVENT: Final = "carrier_event"
    SIGNAL_QC_RESULT: Final = "qc_result"
    SIGNAL_CANCEL: Final = "cancel"
    SIGNAL_CUSTOMER_CHOICE: Final = "customer_choice"
    ERRORS: Final = (DECISION_REJECTED, DECISION_IN_PROGRESS)
