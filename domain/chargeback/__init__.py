"""Chargebacks and disputes: one normalised lifecycle for Stripe and Adyen.

Pure (no I/O; only the stdlib, pydantic and domain/): the webhook endpoints
normalise provider payloads with these functions, the workflow applies events
and validates responses with them, and unit tests call them without a server.

    codes       the vocabulary: provider, stage, status, reason, event kind, answer
    lifecycle   the provider event, case state, input and result, activity
                payloads, the coordinator's answer, how events move the case
                and the case's phase (what the workflow does next)
    deadlines   the deadline engine: policy, respond-by, reminders, the default
    evidence    what each reason needs, the evidence pack, the completeness check
    contract    the names Temporal knows the chargeback workflow by
    providers   Stripe and Adyen webhook payloads -> DisputeEvent, or IgnoredEvent

Every public name is re-exported here: `from domain.chargeback import X`.
Workflow payload models keep the class and field names they had in
domain/disputes.py; the data converter writes no module names, so recorded
histories replay unchanged.
"""

from domain.chargeback.codes import (
    CLOSED_DISPUTE_STATUSES,
    OUTCOME_KINDS,
    REOPEN_KINDS,
    RESPONDABLE_STATUSES,
    DisputeEventKind,
    DisputeProvider,
    DisputeReason,
    DisputeStage,
    DisputeStatus,
    ResponseAction,
)
from domain.chargeback.contract import LINK_REJECTED, RESPONSE_REJECTED, ChargebackContract
from domain.chargeback.deadlines import (
    DisputeDefault,
    DisputePolicy,
    default_response,
    reminder_times,
    respond_by,
)
from domain.chargeback.evidence import (
    ASSEMBLE_DISPUTE_EVIDENCE,
    CCTV_REASONS,
    REQUIRED_EVIDENCE,
    AssembleEvidenceInput,
    AssembleEvidenceResult,
    EvidenceItem,
    EvidenceKind,
    EvidencePack,
    missing_evidence,
)
from domain.chargeback.lifecycle import (
    HOLD_ORDER_RELEASE,
    RECORD_DISPUTE,
    RESPONDER_ROLES,
    STAGE_ORDER,
    SUBMIT_DISPUTE_RESPONSE,
    ChargebackInput,
    ChargebackPhase,
    ChargebackResult,
    ChargebackState,
    DisputeDecision,
    DisputedOrder,
    DisputeEvent,
    DisputeRecordInput,
    DisputeStatusChange,
    EventEffect,
    HoldReleaseInput,
    HoldReleaseResult,
    LinkOrderInput,
    LinkRejected,
    RespondInput,
    ResponseRejected,
    SubmitResponseInput,
    SubmitResponseResult,
    apply_event,
    chargeback_phase,
    chargeback_workflow_id,
    validate_link,
    validate_response,
)
from domain.chargeback.providers import (
    ADYEN_EVENTS,
    ADYEN_IGNORED_EVENTS,
    ADYEN_REASON_CODES,
    STRIPE_DISPUTE_EVENTS,
    STRIPE_EFW_EVENT,
    STRIPE_EVENTS,
    STRIPE_IGNORED_EVENTS,
    STRIPE_REASONS,
    STRIPE_STATUSES,
    IgnoredEvent,
    UnsupportedEvent,
    WebhookPayloadError,
    adyen_event_id,
    adyen_item_to_dispute_event,
    read_adyen_item,
    read_stripe_event,
    stripe_event_to_dispute_event,
)

__all__ = [
    "ADYEN_EVENTS",
    "ADYEN_IGNORED_EVENTS",
    "ADYEN_REASON_CODES",
    "ASSEMBLE_DISPUTE_EVIDENCE",
    "CCTV_REASONS",
    "CLOSED_DISPUTE_STATUSES",
    "HOLD_ORDER_RELEASE",
    "LINK_REJECTED",
    "OUTCOME_KINDS",
    "RECORD_DISPUTE",
    "REOPEN_KINDS",
    "REQUIRED_EVIDENCE",
    "RESPONDABLE_STATUSES",
    "RESPONDER_ROLES",
    "RESPONSE_REJECTED",
    "STAGE_ORDER",
    "STRIPE_DISPUTE_EVENTS",
    "STRIPE_EFW_EVENT",
    "STRIPE_EVENTS",
    "STRIPE_IGNORED_EVENTS",
    "STRIPE_REASONS",
    "STRIPE_STATUSES",
    "SUBMIT_DISPUTE_RESPONSE",
    "AssembleEvidenceInput",
    "AssembleEvidenceResult",
    "ChargebackContract",
    "ChargebackInput",
    "ChargebackPhase",
    "ChargebackResult",
    "ChargebackState",
    "DisputeDecision",
    "DisputeDefault",
    "DisputeEvent",
    "DisputeEventKind",
    "DisputePolicy",
    "DisputeProvider",
    "DisputeReason",
    "DisputeRecordInput",
    "DisputeStage",
    "DisputeStatus",
    "DisputeStatusChange",
    "DisputedOrder",
    "EventEffect",
    "EvidenceItem",
    "EvidenceKind",
    "EvidencePack",
    "HoldReleaseInput",
    "HoldReleaseResult",
    "IgnoredEvent",
    "LinkOrderInput",
    "LinkRejected",
    "RespondInput",
    "ResponseAction",
    "ResponseRejected",
    "SubmitResponseInput",
    "SubmitResponseResult",
    "UnsupportedEvent",
    "WebhookPayloadError",
    "adyen_event_id",
    "adyen_item_to_dispute_event",
    "apply_event",
    "chargeback_phase",
    "chargeback_workflow_id",
    "default_response",
    "missing_evidence",
    "read_adyen_item",
    "read_stripe_event",
    "reminder_times",
    "respond_by",
    "stripe_event_to_dispute_event",
    "validate_link",
    "validate_response",
]
