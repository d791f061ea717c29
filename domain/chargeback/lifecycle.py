"""The case lifecycle: the normalised provider event, the workflow's input,
state and result, the activity payloads, the coordinator's answer and its
validation, and how each provider event moves the case.

stage   pre_dispute -> dispute -> pre_arbitration
status  open -> gathering_evidence -> awaiting_coordinator -> submitted | accepted
        -> under_review -> won | lost | expired
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from domain.chargeback.codes import (
    CLOSED_DISPUTE_STATUSES,
    OUTCOME_KINDS,
    RESPONDABLE_STATUSES,
    DisputeEventKind,
    DisputeProvider,
    DisputeReason,
    DisputeStage,
    DisputeStatus,
    ResponseAction,
)
from domain.chargeback.deadlines import DisputePolicy
from domain.chargeback.evidence import (
    EvidenceItem,
    EvidenceKind,
    EvidencePack,
    missing_evidence,
)
from domain.common import BusinessKey, NonEmptyStr, Role, StewardModel
from domain.ids import chargeback_id


class DisputedOrder(StewardModel):
    """What Steward's store knows of the disputed order, attached by Steward
    (the intake, the link), never by a provider: the market the case is
    listed under (`StewardMarket`) and the order's amount, shown where the
    provider gives none (an early fraud warning)."""

    market: str
    amount_minor: int = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


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
    # Every payment reference the provider names, preferred first (Stripe's
    # PaymentIntent and charge ids, Adyen's originalReference and pspReference):
    # the intake resolves the order from these (clients/chargeback.py).
    payment_refs: list[str] = Field(default_factory=list)
    # How order_id was found: "payment_reference" (a reference Steward holds),
    # "metadata" (Stripe metadata.order_id), "merchant_reference" (Adyen); "" none.
    order_source: str = ""
    # The resolved order as the store knows it (clients/chargeback.py); None:
    # no order, or an event recorded before Steward attached it.
    order_facts: DisputedOrder | None = None
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


SUBMIT_DISPUTE_RESPONSE = "submit_dispute_response"
HOLD_ORDER_RELEASE = "hold_order_release"
RECORD_DISPUTE = "record_dispute"


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


class LinkOrderInput(StewardModel):
    """The `link_order` update: the order a dispute Steward could not resolve
    from its payment references belongs to. The API and the CLI check that
    Steward knows the order before sending it (the workflow cannot look)."""

    order_id: BusinessKey
    note: str = Field(default="", max_length=1000)
    actor: NonEmptyStr
    role: Role
    # Attached by the API and the CLI from the store, with the check above.
    order_facts: DisputedOrder | None = None


class LinkRejected(ValueError):
    """A link the validator refuses; the message names the field and why."""


def validate_link(state: ChargebackState, link: LinkOrderInput) -> None:
    """Raise LinkRejected when `link` may not be applied to `state`."""
    if link.role not in RESPONDER_ROLES:
        names = ", ".join(sorted(r.value for r in RESPONDER_ROLES))
        raise LinkRejected(f"role: {link.role} may not link a dispute to an order (needs {names})")
    if state.order_id is not None:
        raise LinkRejected(
            f"order_id: dispute {state.dispute_id} is already linked to order {state.order_id}"
        )


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
    # Every payment reference the provider named (see DisputeEvent.payment_refs).
    payment_refs: list[str] = Field(default_factory=list)
    # The order's market and amount once the order is known (DisputedOrder).
    order_facts: DisputedOrder | None = None
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
    state.payment_refs.extend(r for r in event.payment_refs if r not in state.payment_refs)
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
            event.provider_status in ("under_review", "warning_under_review", "appeal_under_review")
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


# -- the case's phase -------------------------------------------------------------


class ChargebackPhase(StrEnum):
    """What the case does next: the one value the workflow's main loop reads
    to pick its stage (it is not part of the state a query returns)."""

    CLOSED = "closed"  # an outcome is in; Adyen may still reopen within the window
    EARLY_FRAUD_WARNING_DUE = "early_fraud_warning_due"  # hold the order, ship or cancel
    RESPONSE_DUE = "response_due"  # a round with a provider deadline: evidence, answer
    NO_RESPONSE_POSSIBLE = "no_response_possible"  # a round the provider takes no answer to
    WAITING_FOR_PROVIDER = "waiting_for_provider"  # the round is answered: the outcome is theirs


def chargeback_phase(state: ChargebackState, *, round_open: bool) -> ChargebackPhase:
    """The case's phase. `round_open`: an event made a response due (a new
    round: inquiry, chargeback, second chargeback, warning) and the workflow
    has not taken that round up yet."""
    if state.status_closed():
        return ChargebackPhase.CLOSED
    if not round_open:
        return ChargebackPhase.WAITING_FOR_PROVIDER
    if state.early_fraud_warning:
        return ChargebackPhase.EARLY_FRAUD_WARNING_DUE
    if state.defendable and state.due_by:
        return ChargebackPhase.RESPONSE_DUE
    # A fraud notification, or a round without a deadline: nothing to answer.
    return ChargebackPhase.NO_RESPONSE_POSSIBLE
