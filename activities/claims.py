"""Carrier claims: investigation, evidence, filing, follow-up and the claims
ledger. Keys derive from the workflow id, so a retry files nothing twice and
the outcome is written once."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import Carrier, ClaimRefusedError, RateLimitedError
from domain.claims import (
    CHASE_CARRIER_CLAIM,
    FILE_CARRIER_CLAIM,
    GATHER_CLAIM_DOCUMENTS,
    OPEN_CARRIER_INVESTIGATION,
    RECORD_CLAIM_OUTCOME,
    ChaseClaimInput,
    ClaimDocument,
    ClaimType,
    FileClaimInput,
    FileClaimResult,
    GatherDocumentsInput,
    GatherDocumentsResult,
    OpenInvestigationInput,
    OpenInvestigationResult,
    RecordReimbursementInput,
)
from store import deliveries as delivery_store

CLAIM_REFUSED = "ClaimRefused"
CARRIER_RATE_LIMITED = "CarrierRateLimited"


def _rate_limited(exc: RateLimitedError) -> ApplicationError:
    return ApplicationError(str(exc), type=CARRIER_RATE_LIMITED, next_retry_delay=exc.retry_after)


class ClaimActivities:
    def __init__(self, pool: asyncpg.Pool, carrier: Carrier) -> None:
        self.pool = pool
        self.carrier = carrier

    @activity.defn(name=OPEN_CARRIER_INVESTIGATION)
    async def open_carrier_investigation(
        self, input: OpenInvestigationInput
    ) -> OpenInvestigationResult:
        try:
            reference = await self.carrier.open_investigation(
                idempotency_key=f"{input.workflow_id}/investigation",
                carrier=input.carrier,
                tracking_number=input.tracking_number,
                claim_type=input.claim_type.value,
            )
        except RateLimitedError as exc:
            raise _rate_limited(exc) from exc
        activity_logger().info("investigation_opened", investigation_ref=reference)
        return OpenInvestigationResult(investigation_ref=reference)

    @activity.defn(name=GATHER_CLAIM_DOCUMENTS)
    async def gather_claim_documents(self, input: GatherDocumentsInput) -> GatherDocumentsResult:
        """Proof of value, the scan history and (damage) the QC photos, from
        Steward's own records."""
        shipment = await delivery_store.get_shipment(self.pool, input.shipment_id)
        documents = [ClaimDocument(kind="invoice", reference=f"invoice/{input.order_id}")]
        if shipment is not None:
            scans = await delivery_store.count_events(
                self.pool, shipment.record.carrier, shipment.record.tracking_number
            )
            documents.append(
                ClaimDocument(
                    kind="tracking_history",
                    reference=f"scans/{shipment.record.tracking_number}?events={scans}",
                )
            )
        if input.claim_type is ClaimType.DAMAGED:
            documents.append(
                ClaimDocument(kind="photo", reference=f"qc-photos/{input.shipment_id}")
            )
        return GatherDocumentsResult(documents=documents)

    @activity.defn(name=FILE_CARRIER_CLAIM)
    async def file_carrier_claim(self, input: FileClaimInput) -> FileClaimResult:
        try:
            reference = await self.carrier.file_claim(
                idempotency_key=f"{input.workflow_id}/file",
                carrier=input.carrier,
                tracking_number=input.tracking_number,
                claim_type=input.claim_type.value,
                amount_minor=input.amount_minor,
                currency=input.currency,
                documents=[d.kind for d in input.documents],
            )
        except ClaimRefusedError as exc:
            raise ApplicationError(
                str(exc), exc.code, type=CLAIM_REFUSED, non_retryable=True
            ) from exc
        except RateLimitedError as exc:
            raise _rate_limited(exc) from exc
        activity_logger().info("claim_filed", claim_reference=reference)
        return FileClaimResult(claim_reference=reference, filed_at=datetime.now(UTC))

    @activity.defn(name=CHASE_CARRIER_CLAIM)
    async def chase_carrier_claim(self, input: ChaseClaimInput) -> None:
        try:
            await self.carrier.chase_claim(
                idempotency_key=f"{input.workflow_id}/chase/{input.follow_up}",
                carrier=input.carrier,
                claim_reference=input.claim_reference,
            )
        except RateLimitedError as exc:
            raise _rate_limited(exc) from exc

    @activity.defn(name=RECORD_CLAIM_OUTCOME)
    async def record_claim_outcome(self, input: RecordReimbursementInput) -> None:
        inserted = await delivery_store.record_claim_outcome(
            self.pool,
            idempotency_key=input.idempotency_key,
            workflow_id=input.workflow_id,
            carrier=input.carrier,
            tracking_number=input.tracking_number,
            order_id=input.order_id,
            claim_reference=input.claim_reference,
            outcome=input.outcome,
            amount_minor=input.amount_minor,
            currency=input.currency,
        )
        activity_logger(order_id=input.order_id).info(
            "claim_outcome_recorded", outcome=input.outcome, inserted=inserted
        )
