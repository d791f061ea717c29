"""Privacy requests (GDPR arts. 15 and 17, UK GDPR, PIPL, PIPA): erasure and
access, `privacy-request:{request_id}` (issue 21, docs/privacy_request.md).

received -> awaiting_verification -> (rejected | checking_holds ->
(exported | erased | on_hold -> checking_holds ...)). A coordinator verifies
the requester; legal holds (an open dispute, return, carrier claim or failed
delivery, a campaign not reconciled, the statutory retention of invoices)
make the erasure wait, or partial, with the reason and the date it can
proceed, on a durable timer. The requester is answered within the SLA (30
days), with reminders to the coordinators before it.

Nothing personal crosses the workflow boundary: the request carries the
fingerprint of the requester's email and subject ids (store/personal_data.py),
never the email itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final

from pydantic import AwareDatetime, Field, StringConstraints, field_validator

from domain.common import (
    SUBJECT_ID_PATTERN,
    BusinessKey,
    FreeText,
    NonEmptyStr,
    Role,
    StewardModel,
)

PRIVACY_REQUEST: Final = "privacy-request"


def privacy_request_workflow_id(request_id: str) -> str:
    return f"{PRIVACY_REQUEST}:{request_id}"


class PrivacyRequestContract:
    """The names Temporal knows a privacy request by."""

    WORKFLOW_TYPE: Final = "PrivacyRequestWorkflow"
    QUERY_STATUS: Final = "status"
    UPDATE_VERIFY: Final = "verify"


# Activities (activities/privacy.py).
CHECK_LEGAL_HOLDS: Final = "check_legal_holds"
ERASE_PERSONAL_DATA: Final = "erase_personal_data"
PREPARE_PRIVACY_EXPORT: Final = "prepare_privacy_export"
CONFIRM_PRIVACY_REQUEST: Final = "confirm_privacy_request"

# Who may file, verify and read privacy requests and their exports.
PRIVACY_ROLES: Final = frozenset({Role.COORDINATOR, Role.MANAGER})

SubjectId = Annotated[str, StringConstraints(pattern=SUBJECT_ID_PATTERN)]
Fingerprint = Annotated[str, StringConstraints(pattern=r"^fp_[0-9a-f]{32}$")]


class PrivacyRequestKind(StrEnum):
    ERASURE = "erasure"  # art. 17: forget me
    ACCESS = "access"  # art. 15: what do you hold on me


class Jurisdiction(StrEnum):
    EU = "EU"  # GDPR
    UK = "UK"  # UK GDPR
    US = "US"  # CCPA/CPRA and state laws
    CN = "CN"  # PIPL
    KR = "KR"  # PIPA


class PrivacyRequestStatus(StrEnum):
    RECEIVED = "received"
    AWAITING_VERIFICATION = "awaiting_verification"
    REJECTED = "rejected"  # the requester could not be verified
    CHECKING_HOLDS = "checking_holds"
    ON_HOLD = "on_hold"  # part of the data waits for a legal hold to lift
    EXPORTED = "exported"  # access: the export is ready
    ERASED = "erased"  # erasure: everything erased


CLOSED_PRIVACY_STATUSES: Final = frozenset(
    {PrivacyRequestStatus.REJECTED, PrivacyRequestStatus.EXPORTED, PrivacyRequestStatus.ERASED}
)


class HoldKind(StrEnum):
    DISPUTE = "dispute"  # an open chargeback: the order's evidence must stay
    RETURN = "return"  # an open return: the refund and its label need the address
    CARRIER_CLAIM = "carrier_claim"
    FAILED_DELIVERY = "failed_delivery"
    CAMPAIGN = "campaign"  # an employee sale not reconciled yet
    INVOICE_RETENTION = "invoice_retention"  # statutory: billing identity kept, rest erased


# Holds that stop the erasure of a subject until they lift; the invoice
# retention only makes it partial (billing identity kept until the date).
BLOCKING_HOLDS: Final = frozenset(set(HoldKind) - {HoldKind.INVOICE_RETENTION})

# Statutory retention of invoices and accounting records, per jurisdiction
# (defaults: FR/DE commercial codes 10 years, UK Companies Act 6, US IRS 7,
# CN accounting archives 30, KR Commercial Act 10). Legal advice sets these.
INVOICE_RETENTION: Final = {
    Jurisdiction.EU: timedelta(days=3653),
    Jurisdiction.UK: timedelta(days=2192),
    Jurisdiction.US: timedelta(days=2557),
    Jurisdiction.CN: timedelta(days=10958),
    Jurisdiction.KR: timedelta(days=3653),
}

# The subject fields (dotted paths of store/deliveries.py) an invoice needs:
# kept through a partial erasure until the retention ends.
_INVOICE_PATHS = (
    "customer.full_name",
    "billing_address.line1",
    "billing_address.line2",
    "billing_address.city",
    "billing_address.postal_code",
    "billing_address.region",
)
# A shipment's subject names them under `order.`; an order's own subject (the
# review's intake, fulfilment: store/order_subjects.py) without the prefix.
INVOICE_FIELDS: Final = frozenset({*_INVOICE_PATHS, *(f"order.{p}" for p in _INVOICE_PATHS)})


class PrivacyPolicy(StewardModel):
    sla: timedelta = timedelta(days=30)
    # Reminders to the coordinators this long before the SLA while unverified.
    reminders_before: list[timedelta] = Field(
        default_factory=lambda: [timedelta(days=10), timedelta(days=3)], max_length=5
    )
    escalate_before: timedelta = timedelta(days=2)
    # A hold that lifts when its case closes (no known date) is checked this often.
    hold_recheck: timedelta = timedelta(days=7)
    # None: the jurisdiction's INVOICE_RETENTION.
    invoice_retention: timedelta | None = None

    @field_validator("sla", "escalate_before", "hold_recheck")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be positive")
        return value


class PrivacyRequestInput(StewardModel):
    request_id: BusinessKey
    kind: PrivacyRequestKind
    jurisdiction: Jurisdiction
    # The keyed fingerprint of the requester's email (personal_data.fingerprint).
    match_fingerprint: Fingerprint
    # The subjects found at intake (more may be found when the holds are checked).
    subject_ids: list[SubjectId] = Field(default_factory=list, max_length=5000)
    # The requester's contact, kept only to answer them.
    contact_subject_id: SubjectId
    received_at: AwareDatetime
    requested_by: NonEmptyStr
    policy: PrivacyPolicy = Field(default_factory=PrivacyPolicy)


class VerifyDecision(StrEnum):
    VERIFIED = "verified"
    REJECTED = "rejected"


class VerifyInput(StewardModel):
    decision: VerifyDecision
    reason: Annotated[FreeText, StringConstraints(min_length=1, max_length=500)]
    actor: NonEmptyStr
    role: Role


def check_verifier(decision: VerifyInput) -> None:
    """ValueError naming the field when the decision may not be taken."""
    if decision.role not in PRIVACY_ROLES:
        raise ValueError(
            f"role: {decision.role} may not verify a privacy request "
            f"(allowed: {', '.join(sorted(PRIVACY_ROLES))})"
        )


class LegalHold(StewardModel):
    kind: HoldKind
    reference: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    subject_ids: list[SubjectId] = Field(max_length=5000)
    # When the hold lifts; None: when its case closes (checked every hold_recheck).
    until: AwareDatetime | None = None
    reason: Annotated[str, StringConstraints(max_length=300)] = ""


class CheckHoldsInput(StewardModel):
    request_id: BusinessKey
    match_fingerprint: Fingerprint
    subject_ids: list[SubjectId] = Field(max_length=5000)
    jurisdiction: Jurisdiction
    invoice_retention: timedelta


class CheckHoldsResult(StewardModel):
    # Every subject of the requester still holding data (erased ones left out).
    subject_ids: list[SubjectId] = Field(max_length=5000)
    holds: list[LegalHold] = Field(default_factory=list, max_length=5000)


class EraseInput(StewardModel):
    request_id: BusinessKey
    workflow_id: NonEmptyStr
    erase: list[SubjectId] = Field(default_factory=list, max_length=5000)
    # Partial: keep only the INVOICE_FIELDS of these (pseudonymised otherwise).
    retain_invoice_fields: list[SubjectId] = Field(default_factory=list, max_length=5000)


class EraseResult(StewardModel):
    erased: int = 0
    already_erased: int = 0
    retained: int = 0
    # Identity hashes erased outside the store (store/identity_erasure.py):
    # orders_seen rows, risk-list entries, simulated notifications.
    identity_hashes: int = 0


class ExportInput(StewardModel):
    request_id: BusinessKey
    subject_ids: list[SubjectId] = Field(max_length=5000)


class ExportResult(StewardModel):
    subjects: int
    fields: int
    references: int


class ConfirmTemplate(StrEnum):
    REJECTED = "privacy_request_rejected"
    EXPORT_READY = "privacy_export_ready"
    ERASURE_PARTIAL = "privacy_erasure_partial"
    ERASURE_DONE = "privacy_erasure_done"


class ConfirmInput(StewardModel):
    request_id: BusinessKey
    contact_subject_id: SubjectId
    template: ConfirmTemplate
    # The contact is erased once the message is sent (the one answer).
    erase_contact: bool = True


class ConfirmResult(StewardModel):
    message_id: str
    delivered: bool


class ErasurePlan(StewardModel):
    erase_now: list[str]
    retain_invoice_fields: list[str]
    blocked: list[str]
    # When to look again (None: nothing left to wait for).
    proceed_at: datetime | None
    reasons: list[str]


def plan_erasure(
    subject_ids: list[str], holds: list[LegalHold], now: datetime, recheck: timedelta
) -> ErasurePlan:
    """Which subjects go now, which keep their invoice fields, which wait,
    and when to look again. Pure: the workflow calls it on each check."""
    blocking: dict[str, list[LegalHold]] = {}
    retention: dict[str, list[LegalHold]] = {}
    for hold in holds:
        target = blocking if hold.kind in BLOCKING_HOLDS else retention
        for sid in hold.subject_ids:
            target.setdefault(sid, []).append(hold)
    erase_now, retain, blocked = [], [], []
    wake: list[datetime] = []
    for sid in sorted(set(subject_ids)):
        if sid in blocking:
            blocked.append(sid)
            wake.extend(h.until if h.until else now + recheck for h in blocking[sid])
        elif sid in retention:
            live = [h for h in retention[sid] if h.until is None or h.until > now]
            if live:
                retain.append(sid)
                wake.extend(h.until if h.until else now + recheck for h in live)
            else:
                erase_now.append(sid)
        else:
            erase_now.append(sid)
    reasons = sorted(
        {
            f"{h.kind} {h.reference}"
            + (f" until {h.until:%Y-%m-%d}" if h.until else " until it closes")
            for h in holds
        }
    )
    return ErasurePlan(
        erase_now=erase_now,
        retain_invoice_fields=retain,
        blocked=blocked,
        proceed_at=min(wake) if wake else None,
        reasons=reasons,
    )


class PrivacyRequestState(StewardModel):
    request_id: str
    kind: PrivacyRequestKind
    jurisdiction: Jurisdiction
    status: PrivacyRequestStatus
    received_at: datetime
    sla_due_at: datetime
    due_at: datetime | None = None
    awaited_role: Role | None = None
    escalated: bool = False
    reminders_sent: int = 0
    verified_by: str | None = None
    verification: VerifyDecision | None = None
    subjects: int = 0
    erased: int = 0
    retained: int = 0
    holds: list[LegalHold] = Field(default_factory=list)
    proceeds_at: datetime | None = None
    hold_reasons: list[str] = Field(default_factory=list)
    answered_at: datetime | None = None
    export: ExportResult | None = None
    # Access: the subjects the export covers (ids only), read by the API.
    export_subject_ids: list[str] = Field(default_factory=list)


class PrivacyRequestResult(StewardModel):
    status: PrivacyRequestStatus
    subjects: int
    erased: int
    retained: int
