"""Chargebacks and disputes: one normalised lifecycle for Stripe and Adyen.

Pure: the webhook endpoints normalise provider payloads with these functions,
the workflow applies events and validates responses with them, and unit tests
call them without a server.

Lifecycle a person sees:
stage   pre_dispute -> dispute -> pre_arbitration
status  open -> gathering_evidence -> awaiting_coordinator -> submitted | accepted
        -> under_review -> won | lost | expired
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from domain.common import NonEmptyStr, Role, StewardModel
from domain.ids import chargeback_id


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


class DisputeEvent(StewardModel):
    """One provider event, normalised; the `dispute_event` signal and the
    workflow's start argument. `event_id` is the dedupe key."""

    event_id: NonEmptyStr
    provider: DisputeProvider
    dispute_id: NonEmptyStr
    kind: DisputeEventKind
    provider_event: NonEmptyStr  # "charge.dispute.created", "CHARGEBACK"...
    occurred_at: datetime
    order_id: str | None = None
    payment_ref: str = ""
    reason: DisputeReason = DisputeReason.GENERAL
    provider_reason_code: str = ""
    scheme: str = ""
    due_by: datetime | None = None
    amount_minor: int = Field(default=0, ge=0)
    currency: str = Field(default="XXX", pattern=r"^[A-Z]{3}$")
    provider_status: str = ""
    # Whether the provider allows a response at all (Adyen `defendable`).
    defendable: bool = True


def chargeback_workflow_id(provider: DisputeProvider | str, dispute_id: str) -> str:
    return chargeback_id(str(provider), dispute_id)


# -- policy -------------------------------------------------------------------


class DisputeDefault(StrEnum):
    """What the deadline engine does at the buffer when nobody answered."""

    SMART = "smart"  # accept under the threshold; contest if complete; else accept and report
    ACCEPT = "accept"
    CONTEST_IF_COMPLETE = "contest_if_complete"


class DisputePolicy(StewardModel):
    """Deadline engine settings, resolved when the case starts and kept in the
    workflow input so a running case never changes its rules under replay."""

    # Stop waiting for people this long before the provider's deadline, so the
    # submission still reaches the provider when it is slow or failing.
    safety_buffer: timedelta = timedelta(hours=12)
    reminder_offsets: list[timedelta] = Field(
        default_factory=lambda: [timedelta(hours=72), timedelta(hours=24)]
    )
    default_action: DisputeDefault = DisputeDefault.SMART
    # Under this amount (minor units, any currency) contesting costs more than it wins.
    accept_below_minor: int = Field(default=5_000, ge=0)
    cctv_answer_timeout: timedelta = timedelta(hours=48)
    # After a final outcome Adyen may still reopen (second chargeback).
    reopen_window: timedelta = timedelta(days=45)
    # No provider news for this long while under review: stop waiting, case stays listed.
    provider_silence_timeout: timedelta = timedelta(days=120)

    @model_validator(mode="after")
    def _offsets_positive(self) -> DisputePolicy:
        if any(o <= timedelta(0) for o in self.reminder_offsets):
            raise ValueError("reminder_offsets must be positive durations before the deadline")
        if self.safety_buffer < timedelta(0):
            raise ValueError("safety_buffer must not be negative")
        return self


def respond_by(due_by: datetime, policy: DisputePolicy) -> datetime:
    """When the default acts: the provider's deadline minus the safety buffer."""
    return due_by - policy.safety_buffer


def reminder_times(due_by: datetime, policy: DisputePolicy, now: datetime) -> list[datetime]:
    """Reminder instants still ahead of now and before the buffer, earliest first."""
    limit = respond_by(due_by, policy)
    times = sorted({due_by - offset for offset in policy.reminder_offsets})
    return [t for t in times if now < t < limit]


# -- evidence -----------------------------------------------------------------


class EvidenceKind(StrEnum):
    ORDER_AND_REVIEW = "order_and_review"
    AUTHORISATION_RESULTS = "authorisation_results"
    PROOF_OF_DELIVERY = "proof_of_delivery"
    CARRIER_SCANS = "carrier_scans"
    CCTV_CLIP = "cctv_clip"
    CUSTOMER_COMMUNICATION = "customer_communication"
    REFUND_POLICY = "refund_policy"
    PRIOR_ORDERS = "prior_orders"
    COORDINATOR_NOTE = "coordinator_note"


REQUIRED_EVIDENCE: dict[DisputeReason, tuple[EvidenceKind, ...]] = {
    DisputeReason.FRAUD: (
        EvidenceKind.ORDER_AND_REVIEW,
        EvidenceKind.AUTHORISATION_RESULTS,
        EvidenceKind.PROOF_OF_DELIVERY,
        EvidenceKind.PRIOR_ORDERS,
    ),
    DisputeReason.NOT_RECEIVED: (
        EvidenceKind.ORDER_AND_REVIEW,
        EvidenceKind.PROOF_OF_DELIVERY,
        EvidenceKind.CARRIER_SCANS,
    ),
    DisputeReason.NOT_AS_DESCRIBED: (
        EvidenceKind.ORDER_AND_REVIEW,
        EvidenceKind.CCTV_CLIP,
        EvidenceKind.REFUND_POLICY,
        EvidenceKind.CUSTOMER_COMMUNICATION,
    ),
    DisputeReason.CREDIT_NOT_PROCESSED: (
        EvidenceKind.ORDER_AND_REVIEW,
        EvidenceKind.REFUND_POLICY,
        EvidenceKind.CUSTOMER_COMMUNICATION,
    ),
    DisputeReason.DUPLICATE: (
        EvidenceKind.ORDER_AND_REVIEW,
        EvidenceKind.AUTHORISATION_RESULTS,
    ),
    DisputeReason.SUBSCRIPTION_CANCELLED: (
        EvidenceKind.REFUND_POLICY,
        EvidenceKind.CUSTOMER_COMMUNICATION,
    ),
    DisputeReason.GENERAL: (EvidenceKind.ORDER_AND_REVIEW, EvidenceKind.CUSTOMER_COMMUNICATION),
}

# Reasons where the packing-station clip proves what left the warehouse.
CCTV_REASONS = frozenset({DisputeReason.NOT_AS_DESCRIBED, DisputeReason.NOT_RECEIVED})


class EvidenceItem(StewardModel):
    kind: EvidenceKind
    available: bool
    summary: str  # business facts only: no names, emails or addresses
    reference: str | None = None


class EvidencePack(StewardModel):
    items: list[EvidenceItem] = Field(default_factory=list)

    def get(self, kind: EvidenceKind) -> EvidenceItem | None:
        return next((i for i in self.items if i.kind is kind), None)

    def put(self, item: EvidenceItem) -> None:
        self.items = [i for i in self.items if i.kind is not item.kind] + [item]


def missing_evidence(reason: DisputeReason, pack: EvidencePack) -> list[EvidenceKind]:
    """The completeness check: what the reason code needs and the pack lacks."""
    missing: list[EvidenceKind] = []
    for kind in REQUIRED_EVIDENCE[reason]:
        item = pack.get(kind)
        if item is None or not item.available:
            missing.append(kind)
    return missing


ASSEMBLE_DISPUTE_EVIDENCE = "assemble_dispute_evidence"
SUBMIT_DISPUTE_RESPONSE = "submit_dispute_response"
HOLD_ORDER_RELEASE = "hold_order_release"
RECORD_DISPUTE = "record_dispute"


class AssembleEvidenceInput(StewardModel):
    workflow_id: NonEmptyStr
    provider: DisputeProvider
    dispute_id: NonEmptyStr
    order_id: str | None
    reason: DisputeReason


class AssembleEvidenceResult(StewardModel):
    pack: EvidencePack
    # When the order was packed (for the CCTV request); None: never released.
    packed_at: datetime | None = None
    station: str | None = None


class ResponseAction(StrEnum):
    CONTEST = "contest"
    ACCEPT = "accept"


class SubmitResponseInput(StewardModel):
    workflow_id: NonEmptyStr
    operation_id: NonEmptyStr  # "respond-1": one per deadline round and attempt
    provider: DisputeProvider
    dispute_id: NonEmptyStr
    action: ResponseAction
    note: str = ""
    evidence: list[EvidenceItem] = Field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        return f"{self.workflow_id}/{self.operation_id}"


class SubmitResponseResult(StewardModel):
    idempotency_key: str
    provider_reference: str
    # The provider-side steps performed: ["stage_evidence", "submit"], ["accept"]...
    steps: list[str]


class HoldReleaseInput(StewardModel):
    workflow_id: NonEmptyStr
    order_id: NonEmptyStr
    reason: NonEmptyStr


class HoldReleaseResult(StewardModel):
    order_id: str
    held: bool  # False: the order had already shipped, nothing to hold
    released_to_warehouse: bool


class DisputeRecordInput(StewardModel):
    """The disputes-table row as the workflow knows it now (upserted)."""

    provider: DisputeProvider
    dispute_id: str
    workflow_id: str
    order_id: str | None
    stage: DisputeStage
    status: DisputeStatus
    reason: DisputeReason
    provider_reason_code: str
    due_by: datetime | None
    amount_minor: int
    currency: str
    payment_ref: str
    updated_at: datetime
    closed: bool


# -- the coordinator's answer -------------------------------------------------


class RespondInput(StewardModel):
    """The `respond` update: contest (with a note and extra evidence) or accept."""

    action: ResponseAction
    note: str = Field(default="", max_length=4000)
    extra_evidence: list[EvidenceItem] = Field(default_factory=list, max_length=20)
    # A manager may contest although required evidence is missing.
    override_missing_evidence: bool = False
    actor: NonEmptyStr
    role: Role


class ResponseRejected(ValueError):
    """A response the validator refuses; the message names the field and why."""


RESPONDER_ROLES = frozenset({Role.COORDINATOR, Role.MANAGER})


class DisputeDecision(StewardModel):
    action: ResponseAction
    note: str
    actor: str
    role: Role
    decided_at: datetime
    by_default: bool = False
    overridden_missing: list[EvidenceKind] = Field(default_factory=list)


class DisputeStatusChange(StewardModel):
    at: datetime
    stage: DisputeStage
    status: DisputeStatus
    actor: str
    reason: str


class ChargebackState(StewardModel):
    """Everything a person needs to see about a dispute (the `status` query)."""

    provider: DisputeProvider
    dispute_id: str
    order_id: str | None
    stage: DisputeStage
    status: DisputeStatus
    reason: DisputeReason
    provider_reason_code: str = ""
    scheme: str = ""
    amount_minor: int
    currency: str
    payment_ref: str = ""
    due_by: datetime | None = None
    respond_by: datetime | None = None
    awaited_role: Role | None = None
    reminders_sent: int = 0
    escalated: bool = False
    evidence: EvidencePack = Field(default_factory=EvidencePack)
    missing_evidence: list[EvidenceKind] = Field(default_factory=list)
    cctv_status: str = "not_requested"
    decisions: list[DisputeDecision] = Field(default_factory=list)
    submissions: list[SubmitResponseResult] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)  # applied event ids, in order
    last_event_at: datetime | None = None
    early_fraud_warning: bool = False
    release_held: bool = False
    defendable: bool = True
    history: list[DisputeStatusChange] = Field(default_factory=list)

    def status_closed(self) -> bool:
        return self.status in CLOSED_DISPUTE_STATUSES


class ChargebackInput(StewardModel):
    event: DisputeEvent
    policy: DisputePolicy = Field(default_factory=DisputePolicy)


class ChargebackResult(StewardModel):
    provider: DisputeProvider
    dispute_id: str
    stage: DisputeStage
    status: DisputeStatus
    decided_by: str | None


def validate_response(state: ChargebackState, answer: RespondInput, now: datetime) -> None:
    """Raise ResponseRejected when `answer` may not be applied to `state` at `now`."""
    if state.status not in RESPONDABLE_STATUSES:
        raise ResponseRejected(
            f"status: dispute {state.dispute_id} is {state.status}, not awaiting a response"
        )
    if state.due_by is None:
        raise ResponseRejected(
            f"dispute {state.dispute_id} allows no response (no provider deadline)"
        )
    if state.respond_by is not None and now >= state.respond_by:
        raise ResponseRejected(
            f"deadline: the response window closed at {state.respond_by.isoformat()} "
            f"(provider deadline {state.due_by.isoformat()} minus the safety buffer)"
        )
    allowed = frozenset({Role.MANAGER}) if state.escalated else RESPONDER_ROLES
    if answer.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise ResponseRejected(f"role: {answer.role} may not answer this dispute (needs {names})")
    if answer.action is ResponseAction.CONTEST and state.early_fraud_warning:
        # Contesting a warning means "ship it": no provider evidence is involved.
        if not answer.note.strip():
            raise ResponseRejected("note: releasing a held order needs a note for the audit")
    elif answer.action is ResponseAction.CONTEST:
        if not answer.note.strip():
            raise ResponseRejected("note: a contest needs a note for the provider and the audit")
        pack = state.evidence.model_copy(deep=True)
        for item in answer.extra_evidence:
            pack.put(item)
        missing = missing_evidence(state.reason, pack)
        if missing and not answer.override_missing_evidence:
            raise ResponseRejected(
                "evidence: required evidence missing for reason "
                f"{state.reason}: {', '.join(missing)} "
                "(a manager may contest anyway with override_missing_evidence)"
            )
        if missing and answer.role is not Role.MANAGER:
            raise ResponseRejected(
                "override_missing_evidence: only a manager may contest with evidence missing"
            )


# -- provider payloads ------------------------------------------------------------


class WebhookPayloadError(ValueError):
    """A malformed provider body; `field` says where."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnsupportedEvent(ValueError):
    """A well-formed event Steward does not handle."""


STRIPE_REASONS: dict[str, DisputeReason] = {
    "fraudulent": DisputeReason.FRAUD,
    "unrecognized": DisputeReason.FRAUD,
    "product_not_received": DisputeReason.NOT_RECEIVED,
    "product_unacceptable": DisputeReason.NOT_AS_DESCRIBED,
    "credit_not_processed": DisputeReason.CREDIT_NOT_PROCESSED,
    "duplicate": DisputeReason.DUPLICATE,
    "subscription_canceled": DisputeReason.SUBSCRIPTION_CANCELLED,
}

STRIPE_DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)
STRIPE_EFW_EVENT = "radar.early_fraud_warning.created"
STRIPE_EVENTS = STRIPE_DISPUTE_EVENTS | {STRIPE_EFW_EVENT}


def _require(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WebhookPayloadError(f"{where}{key}", f"expected {kind.__name__}")
    return value


def _epoch(value: Any, field: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WebhookPayloadError(field, "expected a unix timestamp")
    return datetime.fromtimestamp(value, tz=UTC)


def _order_from_metadata(obj: Mapping[str, Any]) -> str | None:
    for holder in (obj, obj.get("payment_intent"), obj.get("charge")):
        if isinstance(holder, Mapping):
            metadata = holder.get("metadata")
            if isinstance(metadata, Mapping) and isinstance(metadata.get("order_id"), str):
                return str(metadata["order_id"]) or None
    return None


def _ref(value: Any) -> str:
    # Stripe sends ids, or objects when the webhook endpoint expands them.
    if isinstance(value, Mapping):
        return str(value.get("id", ""))
    return value if isinstance(value, str) else ""


def stripe_event_to_dispute_event(event: Mapping[str, Any]) -> DisputeEvent:
    """Normalise a Stripe Event object (already signature-checked)."""
    if event.get("object") != "event":
        raise WebhookPayloadError("object", "expected 'event'")
    event_id = _require(event, "id", str, "")
    event_type = _require(event, "type", str, "")
    if event_type not in STRIPE_EVENTS:
        raise UnsupportedEvent(f"type: Steward does not handle Stripe event {event_type!r}")
    occurred_at = _epoch(event.get("created"), "created")
    data = event.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
        raise WebhookPayloadError("data.object", "expected an object")
    obj: Mapping[str, Any] = data["object"]
    object_id = _require(obj, "id", str, "data.object.")
    order_id = _order_from_metadata(obj)
    if event_type == STRIPE_EFW_EVENT:
        return DisputeEvent(
            event_id=event_id,
            provider=DisputeProvider.STRIPE,
            dispute_id=object_id,
            kind=DisputeEventKind.EARLY_FRAUD_WARNING,
            provider_event=event_type,
            occurred_at=occurred_at,
            order_id=order_id,
            payment_ref=_ref(obj.get("charge")),
            reason=DisputeReason.FRAUD,
            provider_reason_code=str(obj.get("fraud_type") or ""),
            provider_status="actionable" if obj.get("actionable") else "not_actionable",
            defendable=False,
        )
    if obj.get("object") != "dispute":
        raise WebhookPayloadError("data.object.object", "expected 'dispute'")
    amount = _require(obj, "amount", int, "data.object.")
    if amount < 0:
        raise WebhookPayloadError("data.object.amount", "must not be negative")
    currency = str(_require(obj, "currency", str, "data.object.")).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise WebhookPayloadError("data.object.currency", "expected an ISO 4217 code")
    status = str(_require(obj, "status", str, "data.object."))
    raw_reason = str(obj.get("reason") or "general")
    details = obj.get("evidence_details")
    due_by: datetime | None = None
    if isinstance(details, Mapping) and details.get("due_by") is not None:
        due_by = _epoch(details.get("due_by"), "data.object.evidence_details.due_by")
    kind = _stripe_kind(event_type, status)
    return DisputeEvent(
        event_id=event_id,
        provider=DisputeProvider.STRIPE,
        dispute_id=object_id,
        kind=kind,
        provider_event=event_type,
        occurred_at=occurred_at,
        order_id=order_id,
        payment_ref=_ref(obj.get("charge")) or _ref(obj.get("payment_intent")),
        reason=STRIPE_REASONS.get(raw_reason, DisputeReason.GENERAL),
        provider_reason_code=raw_reason,
        due_by=due_by,
        amount_minor=amount,
        currency=currency,
        provider_status=status,
        # Only these statuses still accept evidence; the others are informational.
        defendable=status in ("needs_response", "warning_needs_response"),
    )


def _stripe_kind(event_type: str, status: str) -> DisputeEventKind:
    if event_type == "charge.dispute.created":
        return (
            DisputeEventKind.INQUIRY if status.startswith("warning_") else DisputeEventKind.OPENED
        )
    if event_type == "charge.dispute.closed":
        # An inquiry closed without becoming a chargeback keeps the money: a win.
        return (
            DisputeEventKind.WON if status in ("won", "warning_closed") else DisputeEventKind.LOST
        )
    if event_type == "charge.dispute.funds_withdrawn":
        return DisputeEventKind.FUNDS_WITHDRAWN
    if event_type == "charge.dispute.funds_reinstated":
        return DisputeEventKind.FUNDS_REINSTATED
    return DisputeEventKind.UPDATED


ADYEN_EVENTS: dict[str, DisputeEventKind] = {
    "REQUEST_FOR_INFORMATION": DisputeEventKind.INQUIRY,
    "NOTIFICATION_OF_FRAUD": DisputeEventKind.FRAUD_NOTIFICATION,
    "NOTIFICATION_OF_CHARGEBACK": DisputeEventKind.OPENED,
    "CHARGEBACK": DisputeEventKind.OPENED,
    "CHARGEBACK_REVERSED": DisputeEventKind.WON,
    "SECOND_CHARGEBACK": DisputeEventKind.SECOND_CHARGEBACK,
    "PREARBITRATION_WON": DisputeEventKind.WON,
    "PREARBITRATION_LOST": DisputeEventKind.LOST,
    "INFORMATION_SUPPLIED": DisputeEventKind.INFORMATION_SUPPLIED,
    "DISPUTE_DEFENSE_PERIOD_ENDED": DisputeEventKind.DEFENSE_PERIOD_ENDED,
    # The issuer accepted our defence or did not answer in time: we keep the money.
    "ISSUER_RESPONSE_TIMEFRAME_EXPIRED": DisputeEventKind.WON,
    "ISSUER_COMMENTS": DisputeEventKind.ISSUER_COMMENTS,
}

# Visa / Mastercard / Amex reason codes by family (the common ones).
ADYEN_REASON_CODES: dict[str, DisputeReason] = {
    "10.1": DisputeReason.FRAUD,
    "10.2": DisputeReason.FRAUD,
    "10.3": DisputeReason.FRAUD,
    "10.4": DisputeReason.FRAUD,
    "10.5": DisputeReason.FRAUD,
    "4837": DisputeReason.FRAUD,
    "4840": DisputeReason.FRAUD,
    "4863": DisputeReason.FRAUD,
    "4870": DisputeReason.FRAUD,
    "4871": DisputeReason.FRAUD,
    "F29": DisputeReason.FRAUD,
    "13.1": DisputeReason.NOT_RECEIVED,
    "4855": DisputeReason.NOT_RECEIVED,
    "C08": DisputeReason.NOT_RECEIVED,
    "13.3": DisputeReason.NOT_AS_DESCRIBED,
    "13.4": DisputeReason.NOT_AS_DESCRIBED,
    "4853": DisputeReason.NOT_AS_DESCRIBED,
    "C31": DisputeReason.NOT_AS_DESCRIBED,
    "13.6": DisputeReason.CREDIT_NOT_PROCESSED,
    "4860": DisputeReason.CREDIT_NOT_PROCESSED,
    "C02": DisputeReason.CREDIT_NOT_PROCESSED,
    "12.6.1": DisputeReason.DUPLICATE,
    "12.6.2": DisputeReason.DUPLICATE,
    "4834": DisputeReason.DUPLICATE,
    "P08": DisputeReason.DUPLICATE,
    "13.2": DisputeReason.SUBSCRIPTION_CANCELLED,
    "4841": DisputeReason.SUBSCRIPTION_CANCELLED,
}


def adyen_event_id(item: Mapping[str, Any]) -> str:
    """Adyen's dedupe key: the same pspReference, eventCode and success is one event."""
    return f"{item.get('pspReference')}:{item.get('eventCode')}:{item.get('success')}"


def _iso(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise WebhookPayloadError(field, "expected an ISO 8601 date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise WebhookPayloadError(field, f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise WebhookPayloadError(field, "needs a time zone offset")
    return parsed.astimezone(UTC)


def adyen_item_to_dispute_event(item: Mapping[str, Any], where: str) -> DisputeEvent:
    """Normalise one NotificationRequestItem (already HMAC-checked); `where`
    prefixes field names in errors (`notificationItems[0].NotificationRequestItem.`)."""
    code = item.get("eventCode")
    if not isinstance(code, str) or not code:
        raise WebhookPayloadError(f"{where}eventCode", "expected a string")
    kind = ADYEN_EVENTS.get(code)
    if kind is None:
        raise UnsupportedEvent(f"{where}eventCode: Steward does not handle Adyen event {code!r}")
    psp = item.get("pspReference")
    if not isinstance(psp, str) or not psp:
        raise WebhookPayloadError(f"{where}pspReference", "expected a string")
    amount = item.get("amount")
    if not isinstance(amount, Mapping):
        raise WebhookPayloadError(f"{where}amount", "expected an object with value and currency")
    value = amount.get("value")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WebhookPayloadError(f"{where}amount.value", "expected minor units (integer >= 0)")
    currency = amount.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise WebhookPayloadError(f"{where}amount.currency", "expected an ISO 4217 code")
    success = item.get("success")
    if success not in ("true", "false"):
        raise WebhookPayloadError(f"{where}success", "expected 'true' or 'false'")
    occurred_at = _iso(item.get("eventDate"), f"{where}eventDate")
    additional = item.get("additionalData") or {}
    if not isinstance(additional, Mapping):
        raise WebhookPayloadError(f"{where}additionalData", "expected an object")
    due_by = None
    if additional.get("defensePeriodEndsAt"):
        due_by = _iso(
            additional.get("defensePeriodEndsAt"), f"{where}additionalData.defensePeriodEndsAt"
        )
    reason_code = str(
        additional.get("chargebackReasonCode")
        or additional.get("rfiReasonCode")
        or additional.get("nofReasonCode")
        or ""
    )
    scheme = str(
        additional.get("chargebackSchemeCode")
        or additional.get("rfiSchemeCode")
        or additional.get("nofSchemeCode")
        or ""
    )
    defendable_raw = str(additional.get("defendable", "true")).lower()
    merchant_reference = item.get("merchantReference")
    return DisputeEvent(
        event_id=adyen_event_id(item),
        provider=DisputeProvider.ADYEN,
        dispute_id=psp,
        kind=kind if success == "true" else DisputeEventKind.UPDATED,
        provider_event=code,
        occurred_at=occurred_at,
        order_id=merchant_reference
        if isinstance(merchant_reference, str) and merchant_reference
        else None,
        payment_ref=str(item.get("originalReference") or ""),
        reason=ADYEN_REASON_CODES.get(
            reason_code,
            DisputeReason.FRAUD
            if kind is DisputeEventKind.FRAUD_NOTIFICATION
            else DisputeReason.GENERAL,
        ),
        provider_reason_code=reason_code,
        scheme=scheme,
        due_by=due_by,
        amount_minor=value,
        currency=currency,
        provider_status=str(additional.get("disputeStatus") or ""),
        defendable=defendable_raw != "false" and kind is not DisputeEventKind.FRAUD_NOTIFICATION,
    )


# -- applying events ------------------------------------------------------------


class EventEffect(StrEnum):
    APPLIED = "applied"
    INFORMATIONAL = "informational"  # recorded; nothing in the lifecycle moves
    STALE = "stale"  # older than what the case already knows: recorded only
    DEADLINE_CHANGED = "deadline_changed"
    NEW_ROUND = "new_round"  # a (new) response is due: inquiry, chargeback, reopen
    CLOSED = "closed"


STAGE_ORDER = {
    DisputeStage.PRE_DISPUTE: 0,
    DisputeStage.DISPUTE: 1,
    DisputeStage.PRE_ARBITRATION: 2,
}


def apply_event(state: ChargebackState, event: DisputeEvent) -> EventEffect:
    """Apply one provider event to the case and say what it changed.

    Events may arrive out of order: one older than the newest applied event
    only fills facts the case lacks (order, deadline, amount) and never moves
    the lifecycle back. Outcomes close; a second chargeback reopens.
    """
    if state.order_id is None and event.order_id:
        state.order_id = event.order_id
    if not state.payment_ref and event.payment_ref:
        state.payment_ref = event.payment_ref
    if state.amount_minor == 0 and event.amount_minor:
        state.amount_minor, state.currency = event.amount_minor, event.currency
    if not state.provider_reason_code and event.provider_reason_code:
        state.provider_reason_code = event.provider_reason_code
        state.reason = event.reason
    if not state.scheme and event.scheme:
        state.scheme = event.scheme
    state.events.append(event.event_id)
    stale = state.last_event_at is not None and event.occurred_at < state.last_event_at
    if stale:
        if state.due_by is None and event.due_by is not None and not state.status_closed():
            state.due_by = event.due_by
            return EventEffect.DEADLINE_CHANGED
        return EventEffect.STALE
    state.last_event_at = event.occurred_at
    kind = event.kind
    if kind is DisputeEventKind.EARLY_FRAUD_WARNING:
        state.early_fraud_warning = True
        return EventEffect.NEW_ROUND if event.order_id else EventEffect.INFORMATIONAL
    if kind in OUTCOME_KINDS:
        if state.status_closed() and state.status is not DisputeStatus.ACCEPTED:
            return EventEffect.STALE if state.status.value == kind.value else _close(state, kind)
        return _close(state, kind)
    if kind is DisputeEventKind.SECOND_CHARGEBACK:
        return _new_round(state, DisputeStage.PRE_ARBITRATION, event)
    if kind is DisputeEventKind.INQUIRY:
        if STAGE_ORDER[state.stage] > STAGE_ORDER[DisputeStage.PRE_DISPUTE] and state.events[:-1]:
            return EventEffect.STALE
        return _new_round(state, DisputeStage.PRE_DISPUTE, event)
    if kind is DisputeEventKind.FRAUD_NOTIFICATION:
        if STAGE_ORDER[state.stage] > STAGE_ORDER[DisputeStage.PRE_DISPUTE]:
            return EventEffect.INFORMATIONAL
        # A round with no response allowed: the workflow says so and waits.
        return _new_round(state, DisputeStage.PRE_DISPUTE, event)
    if kind is DisputeEventKind.OPENED:
        if state.stage is DisputeStage.DISPUTE and len(state.events) > 1:
            # A repeat of the opening in another form (Adyen NOTIFICATION_OF_CHARGEBACK
            # then CHARGEBACK): only a moved deadline matters.
            return _deadline(state, event)
        if state.stage is DisputeStage.PRE_ARBITRATION:
            return EventEffect.STALE
        return _new_round(state, DisputeStage.DISPUTE, event)
    if kind is DisputeEventKind.UPDATED:
        if event.provider_status in ("won", "lost"):
            return _close(state, DisputeEventKind(event.provider_status))
        if event.provider_status == "needs_response" and state.stage is DisputeStage.PRE_DISPUTE:
            return _new_round(state, DisputeStage.DISPUTE, event)
        if (
            event.provider_status in ("under_review", "warning_under_review")
            and state.status is DisputeStatus.SUBMITTED
        ):
            state.status = DisputeStatus.UNDER_REVIEW
            return EventEffect.APPLIED
        return _deadline(state, event)
    if kind is DisputeEventKind.INFORMATION_SUPPLIED:
        if state.status is DisputeStatus.SUBMITTED:
            state.status = DisputeStatus.UNDER_REVIEW
            return EventEffect.APPLIED
        return EventEffect.INFORMATIONAL
    if kind is DisputeEventKind.DEFENSE_PERIOD_ENDED:
        if state.status in RESPONDABLE_STATUSES:
            state.status = DisputeStatus.EXPIRED
            state.awaited_role = None
            return EventEffect.CLOSED
        return EventEffect.INFORMATIONAL
    return EventEffect.INFORMATIONAL


def _close(state: ChargebackState, kind: DisputeEventKind) -> EventEffect:
    state.status = DisputeStatus.WON if kind is DisputeEventKind.WON else DisputeStatus.LOST
    state.awaited_role = None
    return EventEffect.CLOSED


def _deadline(state: ChargebackState, event: DisputeEvent) -> EventEffect:
    if event.due_by is not None and event.due_by != state.due_by and not state.status_closed():
        state.due_by = event.due_by
        return EventEffect.DEADLINE_CHANGED
    return EventEffect.INFORMATIONAL


def _new_round(state: ChargebackState, stage: DisputeStage, event: DisputeEvent) -> EventEffect:
    state.stage = stage
    state.status = DisputeStatus.OPEN
    state.due_by = event.due_by
    state.respond_by = None
    state.defendable = event.defendable and event.due_by is not None
    state.escalated = False
    state.reminders_sent = 0
    if event.amount_minor:
        state.amount_minor, state.currency = event.amount_minor, event.currency
    if event.provider_reason_code:
        state.provider_reason_code, state.reason = event.provider_reason_code, event.reason
    return EventEffect.NEW_ROUND


def default_response(state: ChargebackState, policy: DisputePolicy) -> tuple[ResponseAction, str]:
    """What the deadline engine does at the buffer, and why (for the audit)."""
    missing = missing_evidence(state.reason, state.evidence)
    amount = f"{state.amount_minor} {state.currency}"
    if policy.default_action is DisputeDefault.ACCEPT:
        return ResponseAction.ACCEPT, "policy default: accept"
    if (
        policy.default_action is DisputeDefault.SMART
        and state.amount_minor < policy.accept_below_minor
    ):
        return ResponseAction.ACCEPT, (
            f"policy default: {amount} is under the {policy.accept_below_minor} threshold"
        )
    if not missing:
        return ResponseAction.CONTEST, "policy default: evidence complete, contested"
    return ResponseAction.ACCEPT, (
        f"policy default: evidence incomplete ({', '.join(missing)}), accepted and reported"
    )
