"""Carrier claims for lost and damaged parcels. Pure.

`carrier-claim:{carrier}:{tracking_number}`: opened -> investigating ->
gathering_evidence -> filed -> (approved | rejected | no_response), or
withdrawn when the parcel turns up before filing.

Filing windows are per carrier and claim type, configured here and copied
into the workflow input when the claim opens, so a change applies to new
claims only. The values are the house's contractual windows (shorter than the
carriers' published maxima on purpose), not a statement of any carrier's terms.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import Field, model_validator

from domain.common import BusinessKey, CurrencyCode, MinorUnits, NonEmptyStr, StewardModel
from domain.deliveries import ShipmentRecord
from domain.evidence import CCTV_CLIP_READY_SIGNAL


class ClaimType(StrEnum):
    LOST = "lost"
    DAMAGED = "damaged"


class ClaimClock(StrEnum):
    """The date a carrier's filing window counts from."""

    # When Steward learned of the loss or damage (the only clock before issue 15).
    REPORTED = "reported"
    # When the parcel was handed to the carrier: how carriers count a lost
    # parcel's window.
    SHIPPED = "shipped"


class ClaimPolicy(StewardModel):
    filing_window: timedelta = timedelta(days=60)
    # Claims opened before issue 15 carry no clock and count from the report.
    window_from: ClaimClock = ClaimClock.REPORTED
    # File this long before the window closes at the latest, whatever evidence is missing.
    safety_margin: timedelta = timedelta(days=2)
    # How long to wait for the CCTV clip before filing without it.
    evidence_wait: timedelta = timedelta(hours=48)
    follow_up_every: timedelta = timedelta(days=7)
    response_deadline: timedelta = timedelta(days=45)

    @model_validator(mode="after")
    def _margin_inside_window(self) -> ClaimPolicy:
        if self.safety_margin >= self.filing_window:
            raise ValueError("safety_margin must be shorter than filing_window")
        return self


CARRIER_CLAIM_WINDOWS: dict[tuple[str, ClaimType], timedelta] = {
    ("ups", ClaimType.LOST): timedelta(days=60),
    ("ups", ClaimType.DAMAGED): timedelta(days=60),
    ("fedex", ClaimType.LOST): timedelta(days=60),
    ("fedex", ClaimType.DAMAGED): timedelta(days=21),
    ("dhl", ClaimType.LOST): timedelta(days=30),
    ("dhl", ClaimType.DAMAGED): timedelta(days=30),
    ("colissimo", ClaimType.LOST): timedelta(days=30),
    ("colissimo", ClaimType.DAMAGED): timedelta(days=21),
}
DEFAULT_CLAIM_WINDOW = timedelta(days=30)
# What each claim type's window counts from: a lost parcel from the day it was
# shipped (every carrier above), a damaged one from the day the damage was
# reported, which is the delivery (or refused delivery) that showed it.
CLAIM_CLOCKS: dict[ClaimType, ClaimClock] = {
    ClaimType.LOST: ClaimClock.SHIPPED,
    ClaimType.DAMAGED: ClaimClock.REPORTED,
}


def claim_policy_for(carrier: str, claim_type: ClaimType) -> ClaimPolicy:
    window = CARRIER_CLAIM_WINDOWS.get((carrier.lower(), claim_type), DEFAULT_CLAIM_WINDOW)
    return ClaimPolicy(filing_window=window, window_from=CLAIM_CLOCKS[claim_type])


def window_start(
    reported_at: datetime, policy: ClaimPolicy, shipped_at: datetime | None = None
) -> datetime:
    """The date the carrier's window counts from; the report when the ship
    date is unknown (it can only be later, so the deadline errs late only
    for lack of data)."""
    if policy.window_from is ClaimClock.SHIPPED and shipped_at is not None:
        return min(shipped_at, reported_at)
    return reported_at


def filing_deadline(
    reported_at: datetime, policy: ClaimPolicy, shipped_at: datetime | None = None
) -> datetime:
    return window_start(reported_at, policy, shipped_at) + policy.filing_window


def file_by(
    reported_at: datetime, policy: ClaimPolicy, shipped_at: datetime | None = None
) -> datetime:
    """When the claim is filed at the latest: the deadline minus the safety margin."""
    return filing_deadline(reported_at, policy, shipped_at) - policy.safety_margin


class ClaimStatus(StrEnum):
    OPENED = "opened"
    GATHERING_EVIDENCE = "gathering_evidence"
    FILED = "filed"
    APPROVED = "approved"
    REJECTED = "rejected"
    NO_RESPONSE = "no_response"
    WITHDRAWN = "withdrawn"  # the parcel turned up before filing
    # Discovered after the carrier's window closed: recorded with the dates,
    # never filed late.
    OUT_OF_WINDOW = "out_of_window"


CLOSED_CLAIM_STATUSES = frozenset(
    {
        ClaimStatus.APPROVED,
        ClaimStatus.REJECTED,
        ClaimStatus.NO_RESPONSE,
        ClaimStatus.WITHDRAWN,
        ClaimStatus.OUT_OF_WINDOW,
    }
)


class CarrierClaimInput(StewardModel):
    carrier: BusinessKey
    tracking_number: BusinessKey
    claim_type: ClaimType
    reported_at: datetime
    reason: str = Field(default="", max_length=500)
    shipment: ShipmentRecord
    policy: ClaimPolicy = Field(default_factory=ClaimPolicy)
    # The failed delivery that handles the customer; None: the claim starts one.
    remedy_workflow_id: str | None = None
    # When the parcel left with the carrier (the shipment's ship date, else
    # its registration); None for claims opened before issue 15.
    shipped_at: datetime | None = None


class ClaimOutcome(StewardModel):
    """The carrier's answer to a filed claim (signal `claim_outcome`)."""

    event_id: NonEmptyStr = Field(max_length=200)
    approved: bool
    reimbursed_minor: MinorUnits = 0
    currency: CurrencyCode
    carrier_reference: str = Field(default="", max_length=100)
    note: str = Field(default="", max_length=2000)


class ClaimDocument(StewardModel):
    kind: str  # invoice, photo, cctv_clip, tracking_history
    reference: str


class CarrierClaimState(StewardModel):
    carrier: str
    tracking_number: str
    shipment_id: str
    order_id: str
    claim_type: ClaimType
    status: ClaimStatus
    declared_value_minor: int
    currency: str
    filing_deadline: datetime
    file_by: datetime
    shipped_at: datetime | None = None
    window_from: ClaimClock = ClaimClock.REPORTED
    investigation_ref: str | None = None
    documents: list[ClaimDocument] = Field(default_factory=list)
    cctv_requested: bool = False
    cctv_note: str = ""
    claim_reference: str | None = None
    filed_at: datetime | None = None
    follow_ups: int = 0
    outcome: ClaimOutcome | None = None
    remedy_workflow_id: str | None = None
    due_at: datetime | None = None
    # When the carrier delivered the parcel after all (carrier time).
    found_at: datetime | None = None


class CarrierClaimResult(StewardModel):
    status: ClaimStatus
    claim_reference: str | None
    reimbursed_minor: int
    currency: str


# ------------------------------------------------------------- activities


class OpenInvestigationInput(StewardModel):
    workflow_id: NonEmptyStr
    carrier: NonEmptyStr
    tracking_number: NonEmptyStr
    claim_type: ClaimType


class OpenInvestigationResult(StewardModel):
    investigation_ref: str


class GatherDocumentsInput(StewardModel):
    workflow_id: NonEmptyStr
    order_id: NonEmptyStr
    shipment_id: NonEmptyStr
    claim_type: ClaimType


class GatherDocumentsResult(StewardModel):
    documents: list[ClaimDocument]


class FileClaimInput(StewardModel):
    workflow_id: NonEmptyStr
    carrier: NonEmptyStr
    tracking_number: NonEmptyStr
    claim_type: ClaimType
    investigation_ref: str | None
    amount_minor: MinorUnits
    currency: CurrencyCode
    documents: list[ClaimDocument]


class FileClaimResult(StewardModel):
    claim_reference: str
    filed_at: datetime


class ChaseClaimInput(StewardModel):
    workflow_id: NonEmptyStr
    carrier: NonEmptyStr
    claim_reference: NonEmptyStr
    follow_up: int


class RecordReimbursementInput(StewardModel):
    workflow_id: NonEmptyStr
    carrier: NonEmptyStr
    tracking_number: NonEmptyStr
    order_id: NonEmptyStr
    claim_reference: str
    outcome: str  # approved, rejected, no_response
    amount_minor: MinorUnits
    currency: CurrencyCode

    @property
    def idempotency_key(self) -> str:
        # One outcome per claim, whatever the retries.
        return f"{self.workflow_id}/outcome"


OPEN_CARRIER_INVESTIGATION = "open_carrier_investigation"
GATHER_CLAIM_DOCUMENTS = "gather_claim_documents"
FILE_CARRIER_CLAIM = "file_carrier_claim"
CHASE_CARRIER_CLAIM = "chase_carrier_claim"
RECORD_CLAIM_OUTCOME = "record_claim_outcome"


class CarrierClaimContract:
    """The names Temporal knows a carrier claim by (see OrderReviewContract)."""

    WORKFLOW_TYPE: Final = "CarrierClaimWorkflow"
    QUERY_STATUS: Final = "status"
    SIGNAL_CARRIER_EVENT: Final = "carrier_event"
    SIGNAL_CLAIM_OUTCOME: Final = "claim_outcome"
    SIGNAL_CCTV_CLIP_READY: Final = CCTV_CLIP_READY_SIGNAL
