"""Failed deliveries: the shipment, the customer's answer, the coordinator's
decision, the policy and the rules that recommend and validate. Pure.

`failed-delivery:{shipment_id}`: opened -> awaiting_customer ->
awaiting_decision -> (reshipped -> delivered | second failure ->
awaiting_return) | awaiting_return -> inspecting -> refunded, with
refund_frozen while a dispute freezes the order's refunds.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import Field, model_validator

from domain.business_hours import BusinessCalendar, coordinator_calendar
from domain.carrier_events import CarrierEvent, TrackingStatus
from domain.common import (
    DECISION_REJECTED,
    SUBJECT_ID_PATTERN,
    BusinessKey,
    CountryCode,
    NonEmptyStr,
    Role,
    StewardModel,
)
from domain.money_thresholds import delivery_rescore_from
from domain.order_privacy import PLACEHOLDER, pseudonymise_order
from domain.orders import Address, Order
from domain.risk import RiskAssessment, RiskBand, Routing


class AddressRef(StewardModel):
    """A postal address kept in the personal-data store (issue 21): what a
    failed delivery holds instead of a customer's new address or a reship
    destination. The keyed fingerprint tells one address from another without
    the address (store/deliveries.py `put_delivery_address`)."""

    subject_id: str = Field(pattern=SUBJECT_ID_PATTERN)
    fingerprint: str = Field(pattern=r"^fp_[0-9a-f]{32}$")
    country: CountryCode


# Where a parcel goes: an address in clear (runs started before issue 21) or
# kept by subject id.
Destination = Address | AddressRef


def destination_country(destination: Destination) -> str:
    return destination.country


class ServiceLevel(StrEnum):
    STANDARD = "standard"
    EXPRESS = "express"
    SIGNATURE_REQUIRED = "signature_required"


class ShipmentRecord(StewardModel):
    """A parcel Steward follows: registered by the warehouse when it ships
    (`POST /v1/shipments`) or by a reship. Holds the order so a failed
    delivery can contact the customer, rescore an address and refund."""

    shipment_id: BusinessKey
    carrier: BusinessKey
    tracking_number: BusinessKey
    service_level: ServiceLevel = ServiceLevel.STANDARD
    expected_delivery_at: datetime
    order: Order
    # 1 for the first shipment, 2 for a reship: a second failure never reships.
    attempt: int = Field(default=1, ge=1, le=5)
    destination: Address | None = None  # None: the order's shipping address
    # When the warehouse handed the parcel to the carrier (a carrier claim's
    # window counts from it); None: the time the shipment was registered.
    shipped_at: datetime | None = None
    # Issue 21: set, the record is pseudonymised (`pseudonymise_shipment`):
    # the order's and the destination's personal values are placeholders and
    # live in this personal-data subject (the shipment's own, kind "shipment",
    # store/deliveries.py); activities read them back by the shipment id.
    # None: the values are in the record (runs started before).
    subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)
    # With `subject_id`: the keyed fingerprint of the address the parcel was
    # sent to (a new address is compared with it, not with the address).
    address_fingerprint: str | None = Field(default=None, pattern=r"^fp_[0-9a-f]{32}$")

    @property
    def address(self) -> Address:
        return self.destination or self.order.shipping_address


def pseudonymise_shipment(
    record: ShipmentRecord, subject_id: str, address_fingerprint: str
) -> ShipmentRecord:
    """`record` without its personal values, for Temporal: the order
    pseudonymised (domain/order_privacy.py), a destination reduced to its
    country, the subject that keeps them and the keyed fingerprint of the
    address it was sent to."""
    destination = record.destination
    if destination is not None:
        destination = pseudonymous_address(destination.country)
    return record.model_copy(
        update={
            "order": pseudonymise_order(record.order),
            "destination": destination,
            "subject_id": subject_id,
            "address_fingerprint": address_fingerprint,
        }
    )


def pseudonymous_address(country: str) -> Address:
    """An address that only says its country (the rest is in a subject)."""
    return Address(line1=PLACEHOLDER, city=PLACEHOLDER, postal_code=PLACEHOLDER, country=country)


def is_pseudonymous_address(address: Address) -> bool:
    return address.line1 == PLACEHOLDER and address.city == PLACEHOLDER


class CustomerOption(StrEnum):
    RESCHEDULE = "reschedule"
    NEW_ADDRESS = "new_address"
    PICKUP_POINT = "pickup_point"
    CANCEL_REFUND = "cancel_refund"


ALL_OPTIONS: tuple[CustomerOption, ...] = tuple(CustomerOption)


class CustomerReply(StewardModel):
    """The customer's answer (signal `customer_replied`)."""

    event_id: NonEmptyStr = Field(max_length=200)
    option: CustomerOption
    address: Address | None = None
    # Issue 21: the new address kept in the personal-data store (set by the
    # API, clients/failed_delivery.py relay_customer_reply; `address` None).
    address_ref: AddressRef | None = None
    pickup_point_id: str | None = Field(default=None, max_length=64)
    preferred_date: date | None = None
    message: str = Field(default="", max_length=2000)
    channel: str = Field(default="email", max_length=40)
    # Issue 21: the customer's words are kept in the personal-data store
    # under this subject (kind "message", clients/failed_delivery.py
    # relay_customer_reply) and `message` is empty. None: `message` is the text.
    message_subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)

    @model_validator(mode="after")
    def _option_details(self) -> CustomerReply:
        if self.address is not None and self.address_ref is not None:
            raise ValueError("address_ref: set by Steward in place of address, never both")
        if self.option is CustomerOption.NEW_ADDRESS and self.new_address is None:
            raise ValueError("address is required when option is new_address")
        if self.option is CustomerOption.PICKUP_POINT and not self.pickup_point_id:
            raise ValueError("pickup_point_id is required when option is pickup_point")
        return self

    @property
    def new_address(self) -> Destination | None:
        return self.address if self.address is not None else self.address_ref


class DeliveryDecision(StrEnum):
    RESHIP = "reship"
    RETURN_TO_STOCK = "return_to_stock"  # wait for the parcel, QC, restock, refund


class DefaultDeliveryAction(StrEnum):
    """What acts when no coordinator decided by the SLA deadline."""

    FOLLOW_RECOMMENDATION = "follow_recommendation"
    RETURN_TO_STOCK = "return_to_stock"


class FailedDeliveryPolicy(StewardModel):
    """Resolved when the process starts and kept in its input, so a running
    case never changes rules under replay."""

    customer_answer_timeout: timedelta = timedelta(hours=72)
    customer_reminder_after: timedelta = timedelta(hours=36)
    decision_sla: timedelta = timedelta(hours=24)
    # The same SLA in business hours of the market's desk, for the markets
    # that count coordinator tasks in business hours (BUSINESS_HOURS_MARKETS,
    # domain/business_hours.py; issue 17): one desk day. Runs started before
    # it keep the wall-clock `decision_sla`.
    decision_business_sla: timedelta = Field(default=timedelta(hours=9), gt=timedelta(0))
    # The market desk's calendar, a snapshot taken when the case starts
    # (`failed_delivery_policy(market, starting=...)`); None: wall-clock SLAs.
    calendar: BusinessCalendar | None = None
    default_action: DefaultDeliveryAction = DefaultDeliveryAction.FOLLOW_RECOMMENDATION
    # A new address on a parcel worth at least this goes back through risk
    # review: per currency (domain/money_thresholds.py, set for every new case
    # by `failed_delivery_policy`); a currency missing from a non-empty table
    # is always rescored. Cases started before the table (an empty one) keep
    # the flat `high_value_minor`, so their replay holds.
    high_value_minor: int = Field(default=300_000, ge=0)
    rescore_from_by_currency: dict[str, int] = Field(default_factory=dict)
    # The carrier's return trip: past this, the parcel is presumed lost and claimed.
    return_timeout: timedelta = timedelta(days=21)
    reship_tracking_timeout: timedelta = timedelta(days=14)
    # While a dispute freezes refunds: re-check this often, give up after the deadline.
    refund_freeze_recheck: timedelta = timedelta(days=1)
    refund_freeze_deadline: timedelta = timedelta(days=30)

    @model_validator(mode="after")
    def _reminder_before_deadline(self) -> FailedDeliveryPolicy:
        if self.customer_reminder_after >= self.customer_answer_timeout:
            raise ValueError("customer_reminder_after must be shorter than customer_answer_timeout")
        return self

    def rescore_from(self, currency: str) -> int:
        if not self.rescore_from_by_currency:
            return self.high_value_minor
        return self.rescore_from_by_currency.get(currency, 0)


def failed_delivery_policy(
    market: str | None = None, *, starting: date | None = None
) -> FailedDeliveryPolicy:
    """The policy every new failed delivery starts with (it travels in its
    input). With `market` and `starting` (the day the case starts), the market
    desk's business-hours calendar where the market counts its coordinator
    SLAs in business hours; workflows call it without (wall-clock)."""
    calendar = coordinator_calendar(market, starting=starting) if starting else None
    return FailedDeliveryPolicy(rescore_from_by_currency=delivery_rescore_from(), calendar=calendar)


class FailedDeliveryStatus(StrEnum):
    OPENED = "opened"
    AWAITING_CUSTOMER = "awaiting_customer"
    AWAITING_DECISION = "awaiting_decision"
    RISK_REVIEW = "risk_review"
    RESHIPPED = "reshipped"
    AWAITING_RETURN = "awaiting_return"
    INSPECTING = "inspecting"
    REFUNDING = "refunding"
    REFUND_FROZEN = "refund_frozen"
    DELIVERED = "delivered"
    REFUNDED = "refunded"
    CLOSED = "closed"  # nothing more Steward can do (refund left to a dispute...)


CLOSED_DELIVERY_STATUSES = frozenset(
    {FailedDeliveryStatus.DELIVERED, FailedDeliveryStatus.REFUNDED, FailedDeliveryStatus.CLOSED}
)
DECIDER_ROLES = frozenset({Role.COORDINATOR, Role.MANAGER})


class Recommendation(StewardModel):
    decision: DeliveryDecision
    reasons: list[str]
    # Set when a reship to the customer's new address is not allowed (risk).
    reship_blocked: bool = False


class FailedDeliveryInput(StewardModel):
    shipment: ShipmentRecord
    trigger: CarrierEvent
    policy: FailedDeliveryPolicy = Field(default_factory=FailedDeliveryPolicy)
    # Set when a carrier claim opened this case for a lost or damaged parcel.
    claim_workflow_id: str | None = None


class DeliveryDecideInput(StewardModel):
    """A coordinator's decision, sent as the `decide` update."""

    decision: DeliveryDecision
    address: Address | None = None  # reship: None keeps the current destination
    # Issue 21: the address kept in the personal-data store (set by the API).
    address_ref: AddressRef | None = None
    pickup_point_id: str | None = Field(default=None, max_length=64)
    service_level: ServiceLevel = ServiceLevel.STANDARD
    note: str = Field(default="", max_length=2000)
    actor: NonEmptyStr
    role: Role

    @model_validator(mode="after")
    def _one_address(self) -> DeliveryDecideInput:
        if self.address is not None and self.address_ref is not None:
            raise ValueError("address_ref: set by Steward in place of address, never both")
        return self

    @property
    def new_address(self) -> Destination | None:
        return self.address if self.address is not None else self.address_ref


class DeliveryDecisionRecord(StewardModel):
    decision: DeliveryDecision
    address: Address | None = None
    address_ref: AddressRef | None = None  # issue 21: the address by subject id
    pickup_point_id: str | None = None
    service_level: ServiceLevel = ServiceLevel.STANDARD
    note: str = ""
    actor: str
    role: Role
    decided_at: datetime
    by_default: bool = False

    @property
    def new_address(self) -> Destination | None:
        return self.address if self.address is not None else self.address_ref


class CustomerMessage(StewardModel):
    message_id: str
    template: str
    sent_at: datetime


class DeliveryStatusChange(StewardModel):
    at: datetime
    status: FailedDeliveryStatus
    actor: str
    reason: str


class FailedDeliveryState(StewardModel):
    shipment_id: str
    order_id: str
    carrier: str
    tracking_number: str
    status: FailedDeliveryStatus
    attempt: int
    amount_minor: int
    currency: str
    trigger_status: TrackingStatus
    options_offered: list[CustomerOption] = Field(default_factory=list)
    customer_deadline: datetime | None = None
    customer_reply: CustomerReply | None = None
    messages: list[CustomerMessage] = Field(default_factory=list)
    risk: RiskAssessment | None = None
    recommendation: Recommendation | None = None
    decision: DeliveryDecisionRecord | None = None
    awaited_role: Role | None = None
    due_at: datetime | None = None
    reship_shipment_id: str | None = None
    reship_tracking_number: str | None = None
    second_failure: bool = False
    parcel_received_at: datetime | None = None
    inspection_grade: str | None = None
    refund_reference: str | None = None
    claim_workflow_ids: list[str] = Field(default_factory=list)
    history: list[DeliveryStatusChange] = Field(default_factory=list)


class FailedDeliveryResult(StewardModel):
    shipment_id: str
    order_id: str
    status: FailedDeliveryStatus
    decision: DeliveryDecision | None
    refunded_minor: int
    currency: str


class ParcelReceived(StewardModel):
    """The warehouse saw the returned parcel come in (signal `parcel_received`)."""

    event_id: NonEmptyStr = Field(max_length=200)
    received_at: datetime
    note: str = Field(default="", max_length=500)


# ------------------------------------------------------------------- rules


class DeliveryDecisionRejected(ValueError):
    """The decision cannot apply; the message names the field and the reason."""


def needs_risk_review(
    shipment: ShipmentRecord, new_address: Destination | None, policy: FailedDeliveryPolicy
) -> bool:
    """A new destination for a parcel worth at least the threshold is rescored."""
    if new_address is None:
        return False
    if same_destination(new_address, current_destination(shipment)):
        return False
    payment = shipment.order.payment
    return payment.amount_minor >= policy.rescore_from(payment.currency)


def risk_blocks_reship(risk: RiskAssessment | None) -> bool:
    return risk is not None and (risk.band is RiskBand.HIGH or risk.routing is Routing.AUTO_DECLINE)


def recommend(
    *,
    reply: CustomerReply | None,
    attempt: int,
    amount_minor: int,
    policy: FailedDeliveryPolicy,
    risk: RiskAssessment | None,
    trigger: TrackingStatus,
    currency: str | None = None,
) -> Recommendation:
    """The policy's advice to the coordinator, with its reasons.

    Reship when the customer asked for it and nothing forbids it; otherwise
    return to stock and refund: a silent customer, a second failure, a lost
    parcel's value and a risky new address all argue for the money back.
    """
    reasons: list[str] = []
    if attempt >= 2:
        reasons.append(f"attempt {attempt} failed: a second failure never reships")
        return Recommendation(decision=DeliveryDecision.RETURN_TO_STOCK, reasons=reasons)
    if reply is None:
        reasons.append("the customer did not answer by the deadline")
        return Recommendation(decision=DeliveryDecision.RETURN_TO_STOCK, reasons=reasons)
    if reply.option is CustomerOption.CANCEL_REFUND:
        reasons.append("the customer asked to cancel and be refunded")
        return Recommendation(decision=DeliveryDecision.RETURN_TO_STOCK, reasons=reasons)
    if reply.option is CustomerOption.NEW_ADDRESS and risk_blocks_reship(risk):
        assert risk is not None
        reasons.append(
            f"the new address scored {risk.score} ({risk.band}, {risk.routing}): "
            "no reship of a high-value parcel there"
        )
        return Recommendation(
            decision=DeliveryDecision.RETURN_TO_STOCK, reasons=reasons, reship_blocked=True
        )
    reasons.append(f"the customer chose {reply.option}")
    if trigger in (TrackingStatus.LOST, TrackingStatus.DAMAGED):
        reasons.append(f"the parcel is {trigger}; a claim is filed with the carrier meanwhile")
    high_value = policy.high_value_minor if currency is None else policy.rescore_from(currency)
    if amount_minor >= high_value:
        reasons.append("high-value parcel: ship with signature required")
    if risk is not None:
        reasons.append(f"new address scored {risk.score} ({risk.band})")
    return Recommendation(decision=DeliveryDecision.RESHIP, reasons=reasons)


def validate_delivery_decision(state: FailedDeliveryState, decision: DeliveryDecideInput) -> None:
    """Raise DeliveryDecisionRejected naming the field and the reason."""
    if decision.role not in DECIDER_ROLES:
        raise DeliveryDecisionRejected(
            f"role: {decision.role} may not decide a failed delivery (coordinator or manager)"
        )
    # A coordinator may decide before the customer answers (a phone call...).
    if state.status not in (
        FailedDeliveryStatus.AWAITING_CUSTOMER,
        FailedDeliveryStatus.RISK_REVIEW,
        FailedDeliveryStatus.AWAITING_DECISION,
    ):
        raise DeliveryDecisionRejected(
            f"status: the failed delivery of {state.shipment_id} is {state.status}; "
            "no decision is awaited"
        )
    if decision.decision is DeliveryDecision.RESHIP:
        if state.attempt >= 2 or state.second_failure:
            raise DeliveryDecisionRejected(
                "decision: this parcel already failed twice; a second failure never reships"
            )
        rec = state.recommendation
        reply = state.customer_reply
        if (
            rec is not None
            and rec.reship_blocked
            and reply is not None
            and (replied := reply.new_address) is not None
            and (decided := decision.new_address) is not None
            and same_destination(decided, replied)
        ):
            raise DeliveryDecisionRejected(
                "address: risk review refused this address for a high-value parcel"
            )
    elif decision.new_address is not None or decision.pickup_point_id is not None:
        raise DeliveryDecisionRejected("address: only a reship takes an address or a pickup point")
    if decision.decision is DeliveryDecision.RETURN_TO_STOCK and not decision.note.strip():
        raise DeliveryDecisionRejected("note: say why the parcel goes back to stock")


def current_destination(shipment: ShipmentRecord) -> Destination:
    """Where the parcel went: its address, or for a pseudonymised record the
    reference to it (its subject and fingerprint)."""
    if shipment.subject_id is not None and shipment.address_fingerprint is not None:
        return AddressRef(
            subject_id=shipment.subject_id,
            fingerprint=shipment.address_fingerprint,
            country=shipment.address.country,
        )
    return shipment.address


def same_destination(a: Destination, b: Destination) -> bool:
    """Two addresses in clear compare by their normalised lines, two kept
    ones by their keyed fingerprints; one of each never match (the workflow
    cannot fingerprint: it has no key), so a new address is rescored."""
    if isinstance(a, AddressRef) or isinstance(b, AddressRef):
        return (
            isinstance(a, AddressRef)
            and isinstance(b, AddressRef)
            and a.fingerprint == b.fingerprint
        )
    return _same_address(a, b)


def _same_address(a: Address, b: Address) -> bool:
    def key(x: Address) -> tuple[str, ...]:
        return (
            x.line1.strip().lower(),
            (x.line2 or "").strip().lower(),
            x.city.strip().lower(),
            x.postal_code.replace(" ", "").lower(),
            x.country,
        )

    return key(a) == key(b)


# -------------------------------------------------------------- activities


class DeliveryTemplate(StrEnum):
    DELIVERY_OPTIONS = "delivery_failed_options"
    DELIVERY_REMINDER = "delivery_failed_reminder"
    RESHIPPED = "delivery_reshipped"
    REFUNDED = "delivery_refunded"


class NotifyDeliveryCustomerInput(StewardModel):
    workflow_id: NonEmptyStr
    message_id: NonEmptyStr  # deterministic: a retried send goes out once
    order_id: NonEmptyStr
    email: str
    # Issue 21: set, `email` is a placeholder and the activity reads the
    # recipient from this subject (the shipment's, field EMAIL_FIELD).
    subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)
    template: DeliveryTemplate
    options: list[CustomerOption] = Field(default_factory=list)
    deadline: datetime | None = None
    locale: str = "en"


class BookReshipmentInput(StewardModel):
    workflow_id: NonEmptyStr
    original_shipment_id: NonEmptyStr
    order_id: NonEmptyStr
    carrier: NonEmptyStr
    # With `destination_ref` (issue 21): only the country (pseudonymous_address);
    # the activity reads the address by the reference's subject id.
    destination: Address
    destination_ref: AddressRef | None = None
    pickup_point_id: str | None = None
    service_level: ServiceLevel
    # The whole record, so the activity registers the new shipment for tracking.
    shipment: ShipmentRecord
    # The customer's preferred date: the carrier delivers no earlier.
    earliest_delivery: date | None = None
    # 2, 3...: another booking after the carrier refused the previous one
    # (another service); each attempt has its own idempotency key.
    booking_attempt: int = Field(default=1, ge=1)

    @property
    def idempotency_key(self) -> str:
        # The first attempt keeps the key reships were always booked under.
        suffix = "" if self.booking_attempt == 1 else f"-{self.booking_attempt}"
        return f"{self.workflow_id}/reship{suffix}"


# The carrier refused the label for good (no rate for the service, an address
# it cannot serve...): the workflow asks a coordinator for another service or
# a return to stock instead of retrying for ever.
RESHIP_BOOKING_REFUSED: Final = "ReshipBookingRefused"


class BookReshipmentResult(StewardModel):
    shipment_id: str
    carrier: str
    tracking_number: str
    expected_delivery_at: datetime


class InspectParcelInput(StewardModel):
    workflow_id: NonEmptyStr
    shipment_id: NonEmptyStr
    order_id: NonEmptyStr


class InspectionGrade(StrEnum):
    RESELLABLE = "resellable"
    DAMAGED = "damaged"


class InspectParcelResult(StewardModel):
    grade: InspectionGrade
    notes: str = ""


class RestockParcelInput(StewardModel):
    workflow_id: NonEmptyStr
    shipment_id: NonEmptyStr
    order_id: NonEmptyStr
    skus: list[str]


class RestockParcelResult(StewardModel):
    location: str


NOTIFY_DELIVERY_CUSTOMER = "notify_delivery_customer"
BOOK_RESHIPMENT = "book_reshipment"
INSPECT_RETURNED_PARCEL = "inspect_returned_parcel"
RESTOCK_RETURNED_PARCEL = "restock_returned_parcel"
SCORE_DELIVERY_ADDRESS = "score_delivery_address"
# The field of a shipment's subject that holds the customer's email.
SHIPMENT_EMAIL_FIELD: Final = "order.customer.email"


class ScoreDeliveryAddressInput(StewardModel):
    """Rescore a shipment's order as if placed to a new address (issue 21):
    the activity reads the order's personal values with the shipment (the
    store, one query) and a kept address by its subject, puts the address in
    as the shipping address and applies the scoring rules (the `score_order`
    activity's)."""

    workflow_id: NonEmptyStr
    shipment_id: NonEmptyStr
    # The shipment's subject when the case holds it pseudonymised; None: a
    # case started before (the activity reads the shipment by id either way).
    subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)
    # The new address: in clear (a reply relayed without the store) or kept
    # by subject id; exactly one.
    address: Address | None = None
    address_ref: AddressRef | None = None

    @model_validator(mode="after")
    def _one_address(self) -> ScoreDeliveryAddressInput:
        if (self.address is None) == (self.address_ref is None):
            raise ValueError("address: give the address or its reference, exactly one")
        return self


class FailedDeliveryContract:
    """The names Temporal knows a failed delivery by (see OrderReviewContract)."""

    WORKFLOW_TYPE: Final = "FailedDeliveryWorkflow"
    QUERY_STATUS: Final = "status"
    UPDATE_DECIDE: Final = "decide"
    SIGNAL_CARRIER_EVENT: Final = "carrier_event"
    SIGNAL_CUSTOMER_REPLIED: Final = "customer_replied"
    SIGNAL_PARCEL_RECEIVED: Final = "parcel_received"
    ERRORS: Final = (DECISION_REJECTED,)
