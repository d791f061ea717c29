"""Operations requests: the logistics desk's tickets. Pure.

`ops-request:{request_id}`: open -> assigned [-> escalated -> assigned]
[-> awaiting_finance] -> resolved. What arrives by chat (Slack), the API or
the CLI from customer service and e-commerce: an address change, a special
delivery, a QC check, CCTV retrieval, an order status question, an inventory
discrepancy, a carrier claim, or something else. Each type has its required
fields (validated at intake, nothing opens without them), a priority, an SLA
in business hours (the site's or market's calendar, domain/business_hours.py),
an assignee, and a resolution with an outcome code and a root-cause code.

The desk calls the processes that own the work: fulfilment's address change,
special delivery, holds and outbound QC; the carrier-claim process; the
warehouse's CCTV port; the order status view. The ticket records what was
done and which cases it touched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, Field, model_validator

from domain.business_hours import SITES, BusinessCalendar
from domain.claims import ClaimType
from domain.common import (
    SUBJECT_ID_PATTERN,
    BusinessKey,
    CurrencyCode,
    FreeText,
    MinorUnits,
    NonEmptyStr,
    Role,
    StewardModel,
    Text,
)
from domain.evidence import CCTV_CLIP_READY_SIGNAL
from domain.fulfilment import SpecialDeliveryInput, SpecialDeliveryKind
from domain.money_thresholds import ops_write_off_approval_above
from domain.orders import Address

OPS_REQUEST: Final = "ops-request"


def ops_request_id(request_id: str) -> str:
    return f"{OPS_REQUEST}:{request_id}"


class OpsRequestType(StrEnum):
    ADDRESS_CHANGE = "address_change"
    SPECIAL_DELIVERY = "special_delivery"
    QC_CHECK = "qc_check"
    CCTV_RETRIEVAL = "cctv_retrieval"
    ORDER_STATUS = "order_status"
    INVENTORY_DISCREPANCY = "inventory_discrepancy"
    CARRIER_CLAIM = "carrier_claim"
    OTHER = "other"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Higher first in the work queue."""
        return {"urgent": 300, "high": 200, "normal": 100, "low": 0}[self.value]


class OpsRequestStatus(StrEnum):
    OPEN = "open"  # in the queue, nobody owns it
    ASSIGNED = "assigned"
    ESCALATED = "escalated"  # with the senior QA coordinator
    AWAITING_FINANCE = "awaiting_finance"  # a write-off above the threshold
    RESOLVED = "resolved"


CLOSED_OPS_STATUSES: Final = frozenset({OpsRequestStatus.RESOLVED})


class Channel(StrEnum):
    SLACK = "slack"
    API = "api"
    CLI = "cli"
    WMS = "wms"  # a warehouse count event


# The SLA of each type at normal priority, in business hours of the calendar.
SLA_BUSINESS_HOURS: Final[dict[OpsRequestType, float]] = {
    OpsRequestType.ADDRESS_CHANGE: 2,  # before the parcel is packed
    OpsRequestType.SPECIAL_DELIVERY: 4,
    OpsRequestType.QC_CHECK: 4,
    OpsRequestType.CCTV_RETRIEVAL: 8,
    OpsRequestType.ORDER_STATUS: 1,
    OpsRequestType.INVENTORY_DISCREPANCY: 16,
    OpsRequestType.CARRIER_CLAIM: 8,
    OpsRequestType.OTHER: 8,
}
PRIORITY_FACTOR: Final[dict[Priority, float]] = {
    Priority.URGENT: 0.25,
    Priority.HIGH: 0.5,
    Priority.NORMAL: 1.0,
    Priority.LOW: 2.0,
}
# The senior QA coordinator answers an escalation within this, with a reminder at half.
ESCALATION_SLA: Final = timedelta(hours=2)
# A reminder on the ticket's owner this long before the SLA falls due.
SLA_REMINDER_BEFORE: Final = timedelta(minutes=30)
# Remind the desk this long before the footage retention deadline when no clip came yet.
CCTV_RETENTION_REMINDER: Final = timedelta(hours=24)
# An inventory write-off above the `ops_write_off_approval_minor` threshold of
# its currency (domain/money_thresholds.py) needs finance's approval
# (`write_off_needs_approval`). Requests started before issue 15's patch
# (`ops-write-off-per-currency`) keep this flat value, in any currency.
WRITE_OFF_APPROVAL_MINOR: Final = 100_000
RECOUNT_SLA: Final = timedelta(hours=4)
FINANCE_SLA: Final = timedelta(hours=8)


def sla_for(request_type: OpsRequestType, priority: Priority) -> timedelta:
    hours = SLA_BUSINESS_HOURS[request_type] * PRIORITY_FACTOR[priority]
    return timedelta(hours=hours)


# ---------------------------------------------------------------- details


class _Details(StewardModel):
    def order(self) -> str | None:
        return getattr(self, "order_id", None)

    def site(self) -> str | None:
        return getattr(self, "site_id", None)


class AddressChangeDetails(_Details):
    """The new address: the requester sends `address`; the edge
    (clients/ops_request.py) keeps it in the personal-data store (kind
    "address") and the workflow gets `address: null` and `address_subject_id`
    (issue 21). Exactly one of the two; runs opened before carry the address."""

    type: Literal["address_change"] = "address_change"
    order_id: BusinessKey
    # Required (null allowed) so a request without it names `details.address`.
    address: Address | None
    address_subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)

    @model_validator(mode="after")
    def _one_address(self) -> AddressChangeDetails:
        if self.address is None and self.address_subject_id is None:
            raise ValueError("address: the new address is required")
        if self.address is not None and self.address_subject_id is not None:
            raise ValueError("address_subject_id: set by Steward; send only the address")
        return self


class SpecialDeliveryDetails(_Details):
    """The arrangement fulfilment makes (domain/fulfilment.py's SpecialDeliveryInput)."""

    type: Literal["special_delivery"] = "special_delivery"
    order_id: BusinessKey
    kind: SpecialDeliveryKind
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    carrier: Annotated[Text, Field(max_length=64)] | None = None
    service: Annotated[Text, Field(max_length=64)] | None = None
    store_id: BusinessKey | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> SpecialDeliveryDetails:
        self.arrangement()  # fulfilment's own rule: the same refusal at intake
        return self

    def arrangement(self) -> SpecialDeliveryInput:
        return SpecialDeliveryInput(
            kind=self.kind,
            window_start=self.window_start,
            window_end=self.window_end,
            carrier=self.carrier,
            service=self.service,
            store_id=self.store_id,
        )


class QcCheckDetails(_Details):
    """What to check is the requester's free text: the edge keeps it in the
    personal-data store (the request's message subject, field "reason") and
    the workflow gets `reason: null` and `reason_subject_id` (issue 21).
    Exactly one of the two; runs opened before carry the text."""

    type: Literal["qc_check"] = "qc_check"
    order_id: BusinessKey
    # Required (null allowed) so a request without it names `details.reason`.
    reason: Annotated[FreeText, Field(min_length=1, max_length=500)] | None
    reason_subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)

    @model_validator(mode="after")
    def _one_reason(self) -> QcCheckDetails:
        if self.reason is None and self.reason_subject_id is None:
            raise ValueError("reason: what to check is required")
        if self.reason is not None and self.reason_subject_id is not None:
            raise ValueError("reason_subject_id: set by Steward; send only the reason")
        return self


class OrderStatusDetails(_Details):
    type: Literal["order_status"] = "order_status"
    order_id: BusinessKey


class CctvRetrievalDetails(_Details):
    type: Literal["cctv_retrieval"] = "cctv_retrieval"
    site_id: BusinessKey
    camera_zone: Annotated[Text, Field(min_length=1, max_length=40)]
    window_start: AwareDatetime
    window_end: AwareDatetime
    order_id: BusinessKey | None = None
    # The cases the clip is for (a chargeback, a carrier claim, a return): it
    # is attached to each when ready.
    linked_workflow_ids: list[Annotated[Text, Field(min_length=3, max_length=200)]] = Field(
        default_factory=list, max_length=10
    )

    @model_validator(mode="after")
    def _window(self) -> CctvRetrievalDetails:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        if self.window_end - self.window_start > MAX_CCTV_WINDOW:
            raise ValueError(f"window_end: a window is at most {MAX_CCTV_WINDOW} long")
        site = SITES.get(self.site_id)
        if site is None:
            raise ValueError(
                f"site_id {self.site_id!r} is unknown (known: {', '.join(sorted(SITES))})"
            )
        if self.camera_zone not in site.camera_zones:
            raise ValueError(
                f"camera_zone {self.camera_zone!r} is not a zone of {self.site_id} "
                f"(zones: {', '.join(sorted(site.camera_zones))})"
            )
        return self


MAX_CCTV_WINDOW: Final = timedelta(hours=4)


class InventoryDiscrepancyDetails(_Details):
    type: Literal["inventory_discrepancy"] = "inventory_discrepancy"
    site_id: BusinessKey
    sku: BusinessKey
    wms_quantity: int = Field(ge=0, le=1_000_000)
    erp_quantity: int = Field(ge=0, le=1_000_000)
    unit_cost_minor: MinorUnits
    currency: CurrencyCode
    affected_order_ids: list[BusinessKey] = Field(default_factory=list, max_length=50)
    # Ask the warehouse for the footage of this zone (the location's camera).
    cctv_zone: Annotated[Text, Field(max_length=40)] | None = None
    # The warehouse's count event, when the WMS opened it.
    count_event_id: Annotated[Text, Field(max_length=100)] | None = None

    @model_validator(mode="after")
    def _site(self) -> InventoryDiscrepancyDetails:
        site = SITES.get(self.site_id)
        if site is None:
            raise ValueError(
                f"site_id {self.site_id!r} is unknown (known: {', '.join(sorted(SITES))})"
            )
        if self.cctv_zone is not None and self.cctv_zone not in site.camera_zones:
            raise ValueError(f"cctv_zone {self.cctv_zone!r} is not a zone of {self.site_id}")
        if self.wms_quantity == self.erp_quantity:
            raise ValueError("erp_quantity equals wms_quantity: there is no discrepancy")
        return self

    @property
    def missing_units(self) -> int:
        return abs(self.erp_quantity - self.wms_quantity)


class CarrierClaimDetails(_Details):
    type: Literal["carrier_claim"] = "carrier_claim"
    carrier: BusinessKey
    tracking_number: BusinessKey
    claim_type: ClaimType


class OtherDetails(_Details):
    type: Literal["other"] = "other"
    order_id: BusinessKey | None = None


OpsDetails = Annotated[
    AddressChangeDetails
    | SpecialDeliveryDetails
    | QcCheckDetails
    | OrderStatusDetails
    | CctvRetrievalDetails
    | InventoryDiscrepancyDetails
    | CarrierClaimDetails
    | OtherDetails,
    Field(discriminator="type"),
]

# The fields each type needs, for the chat's help text and modal.
REQUIRED_FIELDS: Final[dict[OpsRequestType, tuple[str, ...]]] = {
    OpsRequestType.ADDRESS_CHANGE: ("order_id", "address"),
    OpsRequestType.SPECIAL_DELIVERY: ("order_id", "kind"),
    OpsRequestType.QC_CHECK: ("order_id", "reason"),
    OpsRequestType.ORDER_STATUS: ("order_id",),
    OpsRequestType.CCTV_RETRIEVAL: ("site_id", "camera_zone", "window_start", "window_end"),
    OpsRequestType.INVENTORY_DISCREPANCY: (
        "site_id",
        "sku",
        "wms_quantity",
        "erp_quantity",
        "unit_cost_minor",
        "currency",
    ),
    OpsRequestType.CARRIER_CLAIM: ("carrier", "tracking_number", "claim_type"),
    OpsRequestType.OTHER: (),
}


def cctv_retention_deadline(details: CctvRetrievalDetails) -> datetime:
    """When the site deletes the window's first footage."""
    return details.window_start + SITES[details.site_id].cctv_retention


def check_cctv_window(details: CctvRetrievalDetails, now: datetime) -> None:
    """Refuse a window in the future or past the site's retention, with the dates."""
    if details.window_end > now:
        raise ValueError(
            f"window_end {details.window_end.isoformat()} is in the future "
            f"(now {now.isoformat(timespec='seconds')}): footage does not exist yet"
        )
    deadline = cctv_retention_deadline(details)
    if deadline <= now:
        retention = SITES[details.site_id].cctv_retention
        raise ValueError(
            f"window_start {details.window_start:%Y-%m-%d %H:%M} UTC is past {details.site_id}'s "
            f"{retention.days}-day footage retention: it was deleted on {deadline:%Y-%m-%d %H:%M} "
            "UTC"
        )


# ------------------------------------------------------------------ intake


class ChatThread(StewardModel):
    """Where the requester asked, so every update answers in that thread."""

    channel: Annotated[Text, Field(min_length=1, max_length=80)]
    # The message the thread hangs on; None: the first update starts it.
    thread_ts: Annotated[Text, Field(max_length=40)] | None = None
    user: Annotated[Text, Field(max_length=80)] | None = None


class OpsRequestDraft(StewardModel):
    """What a requester sends: the type's fields, a priority and a note."""

    details: OpsDetails
    priority: Priority = Priority.NORMAL
    # Free text from people: may hold personal data; never in audit rows.
    description: Annotated[FreeText, Field(max_length=2000)] = ""

    @property
    def type(self) -> OpsRequestType:
        return OpsRequestType(self.details.type)


class OpsRequestInput(StewardModel):
    request_id: BusinessKey
    # The draft without its personal values: the description, a QC check's
    # reason and a new address are kept in the personal-data store
    # (store/ops_requests.py put_request_texts / put_request_address) and
    # the draft carries their subject ids (issue 21).
    draft: OpsRequestDraft
    description_ref: str | None = None
    requester: NonEmptyStr
    channel: Channel
    chat: ChatThread | None = None
    opened_at: datetime
    market: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    # The calendar the SLA counts in (a snapshot: see domain/business_hours.py).
    calendar: BusinessCalendar
    # The escalation channel the senior QA coordinator reads.
    escalation_channel: Annotated[Text, Field(max_length=80)] = "ops-escalations"


# ------------------------------------------------------------ decisions


class Actor(StewardModel):
    actor: NonEmptyStr
    role: Role


class ClaimInput(Actor):
    """The coordinator takes the request."""


class AssignInput(Actor):
    """Reassign to a colleague, or back to the queue (`to` None)."""

    to: Annotated[Text, Field(min_length=1, max_length=80)] | None = None
    reason: Annotated[FreeText, Field(max_length=500)] = ""
    # Moved because its owner is absent (POST /v1/ops-requests/absences).
    absence_cover: bool = False


class ReprioritiseInput(Actor):
    priority: Priority
    reason: Annotated[FreeText, Field(min_length=1, max_length=500)]


class EscalateInput(Actor):
    """A structured update to the senior QA coordinator."""

    summary: Annotated[FreeText, Field(min_length=1, max_length=500)]
    tried: Annotated[FreeText, Field(min_length=1, max_length=1000)]
    blocker: Annotated[FreeText, Field(min_length=1, max_length=500)]
    needed_from: Annotated[Text, Field(min_length=1, max_length=80)]
    needed_what: Annotated[FreeText, Field(min_length=1, max_length=500)]
    next_check_at: AwareDatetime


class EscalationAnswerInput(Actor):
    """The senior QA coordinator's answer: the ticket returns to its owner."""

    note: Annotated[FreeText, Field(min_length=1, max_length=1000)]


class OutcomeCode(StrEnum):
    DONE = "done"
    ANSWERED = "answered"
    NOT_POSSIBLE = "not_possible"  # too late (packed), refused by the carrier...
    DUPLICATE = "duplicate"
    WITHDRAWN = "withdrawn"


class RootCause(StrEnum):
    CUSTOMER_REQUEST = "customer_request"
    ADDRESS_ERROR = "address_error"
    CARRIER_ISSUE = "carrier_issue"
    WAREHOUSE_ERROR = "warehouse_error"
    STOCK_RECORD_ERROR = "stock_record_error"
    PRODUCT_DEFECT = "product_defect"
    SYSTEM_ERROR = "system_error"
    FRAUD_SUSPECTED = "fraud_suspected"
    UNKNOWN = "unknown"


class InventoryResolution(StrEnum):
    FOUND = "found"  # the units were in another location
    MIS_PICK = "mis_pick"  # picked for the wrong order: re-pick
    ADJUSTED = "adjusted"  # stock adjusted down: a write-off


class ResolveInput(Actor):
    outcome: OutcomeCode
    root_cause: RootCause
    note: Annotated[FreeText, Field(max_length=1000)] = ""
    inventory: InventoryResolution | None = None


class FinanceApprovalInput(Actor):
    approved: bool
    note: Annotated[FreeText, Field(max_length=1000)] = ""


class RecountInput(Actor):
    counted_quantity: int = Field(ge=0, le=1_000_000)


RESOLVER_ROLES: Final = frozenset({Role.COORDINATOR, Role.MANAGER})
DESK_ROLES: Final = frozenset({Role.COORDINATOR, Role.MANAGER, Role.OPS})


# ------------------------------------------------------------------ state


class OpsAction(StewardModel):
    """Something the desk did, and the case it touched."""

    kind: str  # address_changed, hold_placed, claim_started, cctv_requested...
    at: datetime
    reference: str = ""
    linked_case: str | None = None
    ok: bool = True
    note: str = ""


class Escalation(StewardModel):
    summary: str
    tried: str
    blocker: str
    needed_from: str
    needed_what: str
    next_check_at: datetime
    escalated_by: str
    escalated_at: datetime
    due_at: datetime
    reminded: bool = False
    # The next check came while still unanswered: re-notified (issue 17).
    checked: bool = False
    answered_by: str | None = None
    answered_at: datetime | None = None
    answer: str | None = None


class Resolution(StewardModel):
    outcome: OutcomeCode
    root_cause: RootCause
    note: str = ""
    resolved_by: str
    resolved_at: datetime
    inventory: InventoryResolution | None = None


class OpsRequestState(StewardModel):
    request_id: str
    type: OpsRequestType
    priority: Priority
    status: OpsRequestStatus
    requester: str
    channel: Channel
    market: str
    site_id: str | None = None
    order_id: str | None = None
    opened_at: datetime
    sla: timedelta
    due_at: datetime | None = None
    first_response_at: datetime | None = None
    assignee: str | None = None
    awaited_role: Role | None = None
    escalated: bool = False
    escalations: list[Escalation] = Field(default_factory=list)
    reminders_sent: int = 0
    actions: list[OpsAction] = Field(default_factory=list)
    linked_cases: list[str] = Field(default_factory=list)
    answer: str | None = None  # an order status answer
    chat_thread_ts: str | None = None
    cctv_deadline: datetime | None = None
    cctv_clip_ref: str | None = None
    recounted_quantity: int | None = None
    write_off_minor: int | None = None
    finance_approved_by: str | None = None
    resolution: Resolution | None = None
    resolved_at: datetime | None = None
    business_seconds_to_resolve: int | None = None
    sla_met: bool | None = None

    @property
    def open_escalation(self) -> Escalation | None:
        if self.escalations and self.escalations[-1].answered_at is None:
            return self.escalations[-1]
        return None


class OpsRequestView(OpsRequestState):
    """A request as GET /v1/ops-requests/{id} shows it: the workflow's state
    and the requester's texts read back from the personal-data store (issue
    21; never in the workflow): None when there is none, an erased one reads
    "[erased]"."""

    description: str | None = None
    qc_reason: str | None = None


class OpsRequestResult(StewardModel):
    request_id: str
    status: OpsRequestStatus
    outcome: OutcomeCode | None
    sla_met: bool | None


# ------------------------------------------------------------ rules


def check_claim(state: OpsRequestState, claim: ClaimInput) -> None:
    _open(state)
    if claim.role not in DESK_ROLES:
        raise ValueError(f"role: {claim.role} may not claim ops requests")
    if state.assignee == claim.actor:
        raise ValueError(f"assignee: {claim.actor} already owns {state.request_id}")


def check_assign(state: OpsRequestState, assign: AssignInput) -> None:
    _open(state)
    if assign.role not in DESK_ROLES:
        raise ValueError(f"role: {assign.role} may not assign ops requests")
    if assign.to == state.assignee:
        raise ValueError(f"to: {state.request_id} is already with {assign.to or 'the queue'}")


def check_reprioritise(state: OpsRequestState, change: ReprioritiseInput) -> None:
    _open(state)
    if change.role not in DESK_ROLES:
        raise ValueError(f"role: {change.role} may not reprioritise ops requests")
    if change.priority == state.priority:
        raise ValueError(f"priority: {state.request_id} is already {change.priority}")


def check_escalate(state: OpsRequestState, escalation: EscalateInput, now: datetime) -> None:
    _open(state)
    if escalation.role not in RESOLVER_ROLES:
        raise ValueError(f"role: {escalation.role} may not escalate")
    if state.open_escalation is not None:
        raise ValueError("escalation: the request is already escalated")
    if escalation.next_check_at <= now:
        raise ValueError("next_check_at must be in the future")


def check_escalation_answer(state: OpsRequestState, answer: EscalationAnswerInput) -> None:
    _open(state)
    if answer.role is not Role.MANAGER:
        raise ValueError(
            f"role: only the senior QA coordinator (manager) answers, not {answer.role}"
        )
    if state.open_escalation is None:
        raise ValueError("escalation: the request is not escalated")


def check_resolve(state: OpsRequestState, resolve: ResolveInput) -> None:
    _open(state)
    if resolve.role not in RESOLVER_ROLES:
        raise ValueError(f"role: {resolve.role} may not resolve ops requests")
    if state.status is OpsRequestStatus.AWAITING_FINANCE:
        raise ValueError("status: the write-off awaits finance's approval")
    if state.open_escalation is not None and resolve.role is not Role.MANAGER:
        raise ValueError("status: escalated; the senior QA coordinator answers first")
    is_inventory = state.type is OpsRequestType.INVENTORY_DISCREPANCY
    if is_inventory and resolve.outcome is OutcomeCode.DONE and resolve.inventory is None:
        raise ValueError("inventory: found, mis_pick or adjusted is required")
    if not is_inventory and resolve.inventory is not None:
        raise ValueError("inventory: only an inventory discrepancy has an inventory resolution")


def check_finance(state: OpsRequestState, approval: FinanceApprovalInput) -> None:
    if state.status is not OpsRequestStatus.AWAITING_FINANCE:
        raise ValueError("status: no write-off awaits approval")
    if approval.role is not Role.FINANCE:
        raise ValueError(f"role: only finance approves a write-off, not {approval.role}")
    resolver = state.resolution.resolved_by if state.resolution else None
    if approval.actor == resolver:
        raise ValueError(f"actor: {approval.actor} proposed the write-off; another person approves")


def check_recount(state: OpsRequestState, recount: RecountInput) -> None:
    _open(state)
    if state.type is not OpsRequestType.INVENTORY_DISCREPANCY:
        raise ValueError("type: only an inventory discrepancy is recounted")
    if recount.role not in DESK_ROLES:
        raise ValueError(f"role: {recount.role} may not record a recount")


def _open(state: OpsRequestState) -> None:
    if state.status in CLOSED_OPS_STATUSES:
        raise ValueError(f"status: {state.request_id} is already resolved")


def write_off_minor(details: InventoryDiscrepancyDetails) -> int:
    return details.missing_units * details.unit_cost_minor


def write_off_needs_approval(amount_minor: int, currency: str) -> bool:
    """Finance approves a write-off above its currency's threshold (every
    write-off in a currency without thresholds)."""
    return amount_minor > ops_write_off_approval_above(currency)


# ------------------------------------------------------------- activities


class PostChatInput(StewardModel):
    message_id: NonEmptyStr  # the workflow id and a sequence: one post per message
    channel: NonEmptyStr
    thread_ts: str | None = None
    text: Annotated[FreeText, Field(min_length=1, max_length=4000)]


class PostChatResult(StewardModel):
    channel: str
    ts: str


class OrderStatusInput(StewardModel):
    order_id: NonEmptyStr


class OrderStatusAnswer(StewardModel):
    order_id: str
    found: bool
    summary: str  # one line a requester reads: "packed, handed to UPS 1Z... on ..."


class FulfilmentActionKind(StrEnum):
    CHANGE_ADDRESS = "change_address"
    SPECIAL_DELIVERY = "special_delivery"
    QC_CHECK = "qc_check"
    PLACE_HOLD = "place_hold"
    RELEASE_HOLD = "release_hold"
    REALLOCATE = "reallocate"  # a mis-pick: another unit for the order


class FulfilmentActionInput(StewardModel):
    """One call to the fulfilment case of `order_id`."""

    action_id: NonEmptyStr  # idempotency: the ticket's workflow id and the action
    kind: FulfilmentActionKind
    order_id: BusinessKey
    actor: NonEmptyStr
    role: Role
    # A change of address: the address itself (runs opened before issue 21)
    # or the personal-data subject the edge keeps it in.
    address: Address | None = None
    address_subject_id: str | None = Field(default=None, pattern=SUBJECT_ID_PATTERN)
    special: SpecialDeliveryInput | None = None
    # A hold's reason (fulfilment's HoldReason) and its handle, chosen by the desk.
    hold_reason: str | None = None
    hold_id: str | None = None
    note: str = Field(default="", max_length=2000)


class FulfilmentActionResult(StewardModel):
    done: bool
    reference: str = ""  # the hold id, the intercept's reference...
    note: str = ""


class FindShipmentInput(StewardModel):
    carrier: NonEmptyStr
    tracking_number: NonEmptyStr


class RecordOpsRequestInput(StewardModel):
    """The ops desk's register row (lists, filters, CSV export)."""

    state: OpsRequestState
    # The ticket's own task in the work queue: its assignee and priority follow.
    task_id: str | None = None
    updated_at: datetime


POST_CHAT_MESSAGE: Final = "post_chat_message"
ANSWER_ORDER_STATUS: Final = "answer_order_status"
FULFILMENT_ACTION: Final = "ops_fulfilment_action"
FIND_SHIPMENT: Final = "find_shipment_for_claim"
RECORD_OPS_REQUEST: Final = "record_ops_request"

# ApplicationError types the desk's activities raise.
ORDER_UNKNOWN: Final = "OrderUnknown"
FULFILMENT_REFUSED: Final = "FulfilmentRefused"
SHIPMENT_UNKNOWN: Final = "ShipmentUnknown"


class OpsRequestContract:
    """The names Temporal knows an ops request by (see OrderReviewContract)."""

    WORKFLOW_TYPE: Final = "OpsRequestWorkflow"
    QUERY_STATUS: Final = "status"
    UPDATE_CLAIM: Final = "claim"
    UPDATE_ASSIGN: Final = "assign"
    UPDATE_REPRIORITISE: Final = "reprioritise"
    UPDATE_ESCALATE: Final = "escalate"
    UPDATE_ANSWER_ESCALATION: Final = "answer_escalation"
    UPDATE_RESOLVE: Final = "resolve"
    UPDATE_FINANCE: Final = "approve_write_off"
    UPDATE_RECOUNT: Final = "recount"
    SIGNAL_CCTV_CLIP_READY: Final = CCTV_CLIP_READY_SIGNAL
