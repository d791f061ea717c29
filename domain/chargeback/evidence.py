"""Evidence rules: what each reason family needs before a contest, and the
pack the evidence activity assembles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from domain.chargeback.codes import DisputeProvider, DisputeReason
from domain.common import NonEmptyStr, StewardModel


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
