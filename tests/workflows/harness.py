"""The fake world every workflow test runs in, and the harness that runs it.

One recording fake per port, grouped as activities/ groups the real ones;
each fake registers its activities under the real names, records every call
and has a few knobs (refuse this, fail that many times). `FakeWorld` holds one
of each. Tests configure it with the `world` marker, whose keywords are the
knobs of the ports (each knob name belongs to exactly one port):

    pytestmark = [pytest.mark.workflows([ReturnWorkflow]), pytest.mark.world(...)]

    @pytest.mark.world(frozen_refunds=2)
    async def test_x(harness: Harness, world: FakeWorld) -> None:
        handle = await harness.start(ReturnWorkflow.run, request, id=...)
        await wait_for_status(handle, ReturnStatus.LABEL_ISSUED)
        assert world.payments.refunds == []

The time-skipping server is shared by every test of the session (see
tests/workflows/conftest.py). Its clock only moves forward, so tests build
their inputs from `harness.now()`, a clock that starts at the server's time
when the test began, never from the wall clock; fakes that need "now" read
the server's time from the activity (`_server_now`). At the end of a test the
harness terminates whatever it started that is still running, children
included: a leftover run on a task queue nobody polls would otherwise hold the
server's clock still for every later test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from domain.audit import (
    RECORD_TRANSITION,
    STEP_WRITE_REFUSED,
    AuditEntry,
    CaseStatusInput,
    RecordTransitionInput,
)
from domain.campaign import RETURN_CAMPAIGN_QUOTA, CampaignReturnInput, CampaignReturnResult
from domain.carrier_sweep import SWEEP_SILENT_SHIPMENTS, CarrierSweepInput, CarrierSweepResult
from domain.chargeback import (
    ASSEMBLE_DISPUTE_EVIDENCE,
    HOLD_ORDER_RELEASE,
    RECORD_DISPUTE,
    SUBMIT_DISPUTE_RESPONSE,
    AssembleEvidenceInput,
    AssembleEvidenceResult,
    DisputeRecordInput,
    EvidenceItem,
    EvidenceKind,
    EvidencePack,
    HoldReleaseInput,
    HoldReleaseResult,
    ResponseAction,
    SubmitResponseInput,
    SubmitResponseResult,
)
from domain.claims import (
    CHASE_CARRIER_CLAIM,
    FILE_CARRIER_CLAIM,
    GATHER_CLAIM_DOCUMENTS,
    OPEN_CARRIER_INVESTIGATION,
    RECORD_CLAIM_OUTCOME,
    ChaseClaimInput,
    ClaimDocument,
    FileClaimInput,
    FileClaimResult,
    GatherDocumentsInput,
    GatherDocumentsResult,
    OpenInvestigationInput,
    OpenInvestigationResult,
    RecordReimbursementInput,
)
from domain.common import Role
from domain.deliveries import (
    BOOK_RESHIPMENT,
    INSPECT_RETURNED_PARCEL,
    NOTIFY_DELIVERY_CUSTOMER,
    RESHIP_BOOKING_REFUSED,
    RESTOCK_RETURNED_PARCEL,
    SCORE_DELIVERY_ADDRESS,
    BookReshipmentInput,
    BookReshipmentResult,
    DeliveryTemplate,
    InspectionGrade,
    InspectParcelInput,
    InspectParcelResult,
    NotifyDeliveryCustomerInput,
    RestockParcelInput,
    RestockParcelResult,
    ScoreDeliveryAddressInput,
    ShipmentRecord,
)
from domain.evidence import (
    CCTV_FOOTAGE_EXPIRED,
    REQUEST_CCTV_CLIP,
    CctvClipRequest,
    CctvClipRequestResult,
    CctvRequestStatus,
)
from domain.notifications import NOTIFY_CUSTOMER, NotifyCustomerInput, NotifyCustomerResult
from domain.payments import (
    AWAIT_CAPTURE_OUTCOME,
    CAPTURE_PAYMENT,
    REFUND_FROZEN_BY_DISPUTE,
    REFUND_PAYMENT,
    VOID_AUTHORISATION,
    PaymentOperationInput,
    PaymentOperationKind,
    PaymentOperationResult,
    PaymentOperationStatus,
)
from domain.returns import (
    CHECK_RETURN_ELIGIBILITY,
    CHECK_STOCK,
    ISSUE_RETURN_LABEL,
    PREPARE_RETURN_PARCEL_CLAIM,
    RECORD_DISPOSITION,
    CheckEligibilityInput,
    CheckStockInput,
    CheckStockResult,
    EligibilityResult,
    IssueLabelInput,
    IssueLabelResult,
    OrderLine,
    RecordDispositionInput,
    RecordDispositionResult,
    Refusal,
    ReturnParcelClaimInput,
    ReturnParcelClaimResult,
)
from domain.risk import SCORE_ORDER, RiskAssessment, RiskBand, Routing, ScoreOrderInput
from domain.warehouse import RELEASE_ORDER, ReleaseOrderInput, ReleaseOrderResult
from tests.factories import make_order
from tests.workflows.fulfilment_fakes import FakeFulfilment

T = TypeVar("T")

LOW_RISK = RiskAssessment(
    score=10, band=RiskBand.LOW, routing=Routing.AUTO_ACCEPT, reason_codes=[], rule_set_version="t"
)
# Every evidence kind a provider may want, but a coordinator's note (which
# only a person adds).
ALL_EVIDENCE = [k for k in EvidenceKind if k is not EvidenceKind.COORDINATOR_NOTE]
RETURN_TRACKING = "1ZTEST0001"


def _server_now() -> datetime:
    """The test server's clock, as the activity was scheduled (not the wall clock)."""
    return activity.info().current_attempt_scheduled_time


def _knobs(port: object) -> list[str]:
    return [f.name for f in dataclasses.fields(port) if f.init]  # type: ignore[arg-type]


# ------------------------------------------------------------------ ports


@dataclass
class FakeAudit:
    """The store's step writes: audit rows, the case row and task changes.

    `refuse_action`: a step carrying an audit entry of this action is refused
    as the real activity refuses values PostgreSQL cannot hold (non-retryable
    STEP_WRITE_REFUSED); `refused` counts the refusals."""

    refuse_action: str | None = None
    transitions: list[RecordTransitionInput] = field(default_factory=list, init=False)
    refused: int = field(default=0, init=False)

    @activity.defn(name=RECORD_TRANSITION)
    async def record_transition(self, input: RecordTransitionInput) -> None:
        if self.refuse_action is not None and any(
            e.action == self.refuse_action for e in input.entries
        ):
            self.refused += 1
            raise ApplicationError(
                "the store refused the step's writes: CharacterNotInRepertoireError "
                "(SQLSTATE 22021)",
                type=STEP_WRITE_REFUSED,
                non_retryable=True,
            )
        self.transitions.append(input)

    def entries(
        self, action: str | None = None, workflow_id: str | None = None
    ) -> list[AuditEntry]:
        return [
            e
            for t in self.transitions
            for e in t.entries
            if (action is None or e.action == action)
            and (workflow_id is None or e.workflow_id == workflow_id)
        ]

    def actions(self, workflow_id: str | None = None) -> list[str]:
        return [e.action for e in self.entries(workflow_id=workflow_id)]

    def entry(self, action: str) -> AuditEntry:
        """The first entry of `action`."""
        return next(e for e in self.entries() if e.action == action)

    def cases(self) -> list[CaseStatusInput]:
        return [t.case for t in self.transitions if t.case is not None]

    def opened_tasks(self) -> list[str]:
        return [o.task_id for t in self.transitions for o in t.open_tasks]

    def opened_task_kinds(self) -> list[tuple[str, Role]]:
        return [(o.kind, o.awaited_role) for t in self.transitions for o in t.open_tasks]

    def closed_tasks(self) -> list[str]:
        return [c.task_id for t in self.transitions for c in t.close_tasks]

    def closed_outcomes(self) -> list[str]:
        return [c.outcome for t in self.transitions for c in t.close_tasks]

    def escalations(self) -> list[Role | None]:
        return [u.awaited_role for t in self.transitions for u in t.update_tasks if u.escalated]

    def task_updates(self) -> list[Any]:
        return [u for t in self.transitions for u in t.update_tasks]

    def outcomes(self) -> list[tuple[str, str, str]]:
        """(order id, outcome, key) of every outcome the steps wrote back."""
        return [(o.order_id, o.outcome.value, o.key) for t in self.transitions for o in t.outcomes]


@dataclass
class FakePayments:
    """The payment provider: capture, void and refund, each keyed by idempotency key."""

    refuse_capture: bool = False
    # The provider answers 503 this many times before capturing.
    capture_outages: int = 0
    # The provider answers 429 with Retry-After once before capturing.
    capture_rate_limited: bool = False
    # The provider answers 503 this many times before voiding.
    void_outages: int = 0
    # How many refund calls the dispute freeze refuses.
    frozen_refunds: int = 0
    # The provider refuses every refund for good (a closed card, say).
    refuse_refund: bool = False
    # The provider captured after all, once the review had given up on it.
    late_capture: bool = False

    capture_attempts: int = field(default=0, init=False)
    void_attempts: int = field(default=0, init=False)
    # Successful captures and voids, in order.
    operations: list[PaymentOperationInput] = field(default_factory=list, init=False)
    refund_attempts: list[PaymentOperationInput] = field(default_factory=list, init=False)
    # The given-up captures whose final outcome was asked for.
    capture_outcome_checks: list[PaymentOperationInput] = field(default_factory=list, init=False)
    # Every refund call that succeeded (a repeat would show twice here)...
    refunds: list[PaymentOperationInput] = field(default_factory=list, init=False)
    # ...and the provider's ledger, keyed like the real one (a repeat is the same refund).
    refund_ledger: dict[str, PaymentOperationInput] = field(default_factory=dict, init=False)
    # What the store held when the first void attempt reached the provider.
    closed_tasks_at_first_void: list[str] | None = field(default=None, init=False)
    case_status_at_first_void: str | None = field(default=None, init=False)
    store: FakeAudit = field(default_factory=FakeAudit, init=False, repr=False)

    @activity.defn(name=CAPTURE_PAYMENT)
    async def capture_payment(self, input: PaymentOperationInput) -> PaymentOperationResult:
        self.capture_attempts += 1
        if self.refuse_capture:
            raise ApplicationError(
                "authorisation expired", type="PaymentRefused", non_retryable=True
            )
        if self.capture_rate_limited and self.capture_attempts == 1:
            raise ApplicationError(
                "HTTP 429",
                type="PaymentProviderRateLimited",
                next_retry_delay=timedelta(seconds=30),
            )
        if self.capture_attempts <= self.capture_outages:
            raise ApplicationError("HTTP 503 from the provider", type="PortUnavailable")
        self.operations.append(input)
        return self._result(PaymentOperationKind.CAPTURE, input)

    @activity.defn(name=AWAIT_CAPTURE_OUTCOME)
    async def await_capture_outcome(self, input: PaymentOperationInput) -> PaymentOperationResult:
        self.capture_outcome_checks.append(input)
        result = self._result(PaymentOperationKind.CAPTURE, input)
        if self.late_capture:
            self.operations.append(input)
            return result
        return result.model_copy(
            update={"status": PaymentOperationStatus.REFUSED, "provider_reference": ""}
        )

    @activity.defn(name=VOID_AUTHORISATION)
    async def void_authorisation(self, input: PaymentOperationInput) -> PaymentOperationResult:
        self.void_attempts += 1
        if self.void_attempts == 1:
            self.closed_tasks_at_first_void = self.store.closed_tasks()
            cases = self.store.cases()
            self.case_status_at_first_void = cases[-1].status if cases else None
        if self.void_attempts <= self.void_outages:
            raise ApplicationError("HTTP 503 from the provider", type="PortUnavailable")
        self.operations.append(input)
        return self._result(PaymentOperationKind.VOID, input)

    @activity.defn(name=REFUND_PAYMENT)
    async def refund_payment(self, input: PaymentOperationInput) -> PaymentOperationResult:
        self.refund_attempts.append(input)
        if self.refuse_refund:
            raise ApplicationError("card account closed", type="PaymentRefused", non_retryable=True)
        if self.frozen_refunds > 0:
            self.frozen_refunds -= 1
            raise ApplicationError(
                f"order {input.order_id} has an open dispute",
                type=REFUND_FROZEN_BY_DISPUTE,
                non_retryable=True,
            )
        self.refunds.append(input)
        self.refund_ledger.setdefault(input.idempotency_key, input)
        return self._result(PaymentOperationKind.REFUND, input)

    def kinds(self) -> list[str]:
        """The operation ids of the captures and voids, in order."""
        return [p.operation_id for p in self.operations]

    @staticmethod
    def _result(kind: PaymentOperationKind, op: PaymentOperationInput) -> PaymentOperationResult:
        return PaymentOperationResult(
            kind=kind,
            idempotency_key=op.idempotency_key,
            provider_reference=f"psp_{kind}_{op.order_id}",
            status=PaymentOperationStatus.SUCCEEDED,
            amount_minor=op.amount_minor,
            currency=op.currency,
        )


@dataclass
class FakeScoring:
    """The risk rules: every order gets `risk`."""

    risk: RiskAssessment = field(default_factory=lambda: LOW_RISK)

    scored: list[ScoreOrderInput] = field(default_factory=list, init=False)
    # A failed delivery's new address on a pseudonymised shipment (issue 21).
    rescored: list[ScoreDeliveryAddressInput] = field(default_factory=list, init=False)

    @activity.defn(name=SCORE_ORDER)
    async def score_order(self, input: ScoreOrderInput) -> RiskAssessment:
        self.scored.append(input)
        return self.risk

    @activity.defn(name=SCORE_DELIVERY_ADDRESS)
    async def score_delivery_address(self, input: ScoreDeliveryAddressInput) -> RiskAssessment:
        self.rescored.append(input)
        return self.risk


@dataclass
class FakeNotifications:
    """Customer messages about orders and returns."""

    sent: list[NotifyCustomerInput] = field(default_factory=list, init=False)

    @activity.defn(name=NOTIFY_CUSTOMER)
    async def notify_customer(self, input: NotifyCustomerInput) -> NotifyCustomerResult:
        self.sent.append(input)
        return NotifyCustomerResult(message_id=input.message_id, delivered=True)

    def templates(self) -> list[str]:
        return [n.template.value for n in self.sent]


@dataclass
class FakeWarehouse:
    """Releasing an accepted order to the warehouse."""

    releases: list[ReleaseOrderInput] = field(default_factory=list, init=False)

    @activity.defn(name=RELEASE_ORDER)
    async def release_order(self, input: ReleaseOrderInput) -> ReleaseOrderResult:
        self.releases.append(input)
        return ReleaseOrderResult(release_id=f"REL-{input.order_id}", warehouse="PAR-1")


@dataclass
class FakeReturns:
    """Return eligibility, the carrier's label, the returns warehouse and stock."""

    refusals: list[Refusal] = field(default_factory=list)
    open_dispute: bool = False
    # How many stock checks answer "missing".
    out_of_stock_checks: int = 0
    # Whether the store knows the order a lost return parcel claims for.
    order_known: bool = True
    # The employee sale the returned order was bought in (issue 18), and how
    # many attempts of giving its quota back apply the releases, then fail
    # (an answer lost after the store committed).
    campaign_id: str | None = None
    campaign_release_failures: int = 0

    labels: list[IssueLabelInput] = field(default_factory=list, init=False)
    # Every attempt of the campaign quota's return, and the release ids the
    # "store" applied (each once, as store/campaign.py: release_quota).
    campaign_returns: list[CampaignReturnInput] = field(default_factory=list, init=False)
    campaign_released: list[str] = field(default_factory=list, init=False)
    dispositions: list[RecordDispositionInput] = field(default_factory=list, init=False)
    stock_checks: list[CheckStockInput] = field(default_factory=list, init=False)
    claim_preparations: list[ReturnParcelClaimInput] = field(default_factory=list, init=False)

    @activity.defn(name=CHECK_RETURN_ELIGIBILITY)
    async def check_return_eligibility(self, input: CheckEligibilityInput) -> EligibilityResult:
        value = sum(
            line.quantity * (input.request.order.line(line.sku) or _unknown_sku()).unit_price_minor
            for line in input.request.lines
        )
        return EligibilityResult(
            eligible=not self.refusals,
            refusals=self.refusals,
            open_dispute=self.open_dispute,
            full_return=True,
            value_minor=value,
            refund_minor=value + input.request.order.shipping_minor,
            campaign_id=self.campaign_id,
        )

    @activity.defn(name=RETURN_CAMPAIGN_QUOTA)
    async def return_campaign_quota(self, input: CampaignReturnInput) -> CampaignReturnResult:
        self.campaign_returns.append(input)
        result = CampaignReturnResult(quota_back=True)
        for release in input.releases:
            first = release.release_id not in self.campaign_released
            if first:
                self.campaign_released.append(release.release_id)
            (result.applied if first else result.already).append(release.sku)
        if self.campaign_release_failures > 0:
            self.campaign_release_failures -= 1
            raise RuntimeError("the store's answer was lost")
        return result

    @activity.defn(name=ISSUE_RETURN_LABEL)
    async def issue_return_label(self, input: IssueLabelInput) -> IssueLabelResult:
        self.labels.append(input)
        return IssueLabelResult(
            carrier="sim-dhl",
            tracking_number=RETURN_TRACKING,
            label_url="https://labels.example/x.pdf",
            expires_at=input.expires_at,
        )

    @activity.defn(name=RECORD_DISPOSITION)
    async def record_disposition(self, input: RecordDispositionInput) -> RecordDispositionResult:
        self.dispositions.append(input)
        return RecordDispositionResult(reference=f"DSP-{input.disposition}", warehouse="PAR")

    @activity.defn(name=CHECK_STOCK)
    async def check_stock(self, input: CheckStockInput) -> CheckStockResult:
        self.stock_checks.append(input)
        if self.out_of_stock_checks > 0:
            self.out_of_stock_checks -= 1
            return CheckStockResult(in_stock=False, missing_skus=[line.sku for line in input.lines])
        return CheckStockResult(in_stock=True)

    @activity.defn(name=PREPARE_RETURN_PARCEL_CLAIM)
    async def prepare_claim(self, input: ReturnParcelClaimInput) -> ReturnParcelClaimResult:
        self.claim_preparations.append(input)
        if not self.order_known:
            return ReturnParcelClaimResult(reason=f"order_id: no shipment of {input.order_id}")
        return ReturnParcelClaimResult(
            shipment=ShipmentRecord(
                shipment_id=f"{input.rma_id}-RETURN",
                carrier=input.carrier,
                tracking_number=input.tracking_number,
                expected_delivery_at=input.expected_delivery_at,
                order=make_order(order_id=input.order_id, now=_server_now()),
            )
        )


def _unknown_sku() -> OrderLine:
    raise AssertionError("unknown sku")


@dataclass
class FakeDeliveries:
    """The delivery desk: customer options, reshipments and returned parcels.

    `refuse_reship_bookings`: the carrier refuses that many reship labels for
    good, as the real activity reports it (non-retryable RESHIP_BOOKING_REFUSED)."""

    refuse_reship_bookings: int = 0
    notifications: list[NotifyDeliveryCustomerInput] = field(default_factory=list, init=False)
    bookings: list[BookReshipmentInput] = field(default_factory=list, init=False)
    inspections: list[InspectParcelInput] = field(default_factory=list, init=False)
    restocks: list[RestockParcelInput] = field(default_factory=list, init=False)

    @activity.defn(name=NOTIFY_DELIVERY_CUSTOMER)
    async def notify(self, input: NotifyDeliveryCustomerInput) -> NotifyCustomerResult:
        self.notifications.append(input)
        return NotifyCustomerResult(message_id=input.message_id, delivered=True)

    @activity.defn(name=BOOK_RESHIPMENT)
    async def book(self, input: BookReshipmentInput) -> BookReshipmentResult:
        self.bookings.append(input)
        if len(self.bookings) <= self.refuse_reship_bookings:
            raise ApplicationError(
                f"{input.carrier} refused the {input.service_level} label: no rate",
                "no_rate",
                type=RESHIP_BOOKING_REFUSED,
                non_retryable=True,
            )
        return BookReshipmentResult(
            shipment_id=f"{input.original_shipment_id}-R2",
            carrier=input.carrier,
            tracking_number=f"RESHIP-{input.original_shipment_id}",
            expected_delivery_at=_server_now() + timedelta(days=2),
        )

    @activity.defn(name=INSPECT_RETURNED_PARCEL)
    async def inspect(self, input: InspectParcelInput) -> InspectParcelResult:
        self.inspections.append(input)
        grade = (
            InspectionGrade.DAMAGED if "DMG" in input.shipment_id else InspectionGrade.RESELLABLE
        )
        return InspectParcelResult(grade=grade, notes="checked")

    @activity.defn(name=RESTOCK_RETURNED_PARCEL)
    async def restock(self, input: RestockParcelInput) -> RestockParcelResult:
        self.restocks.append(input)
        return RestockParcelResult(location="PAR/RET/1")

    def templates(self) -> list[DeliveryTemplate]:
        return [n.template for n in self.notifications]


@dataclass
class FakeClaims:
    """The carrier's claims desk."""

    # Seconds (real time) the carrier takes to accept a filing.
    file_delay: float = 0.0

    filing: bool = field(default=False, init=False)
    filed: list[FileClaimInput] = field(default_factory=list, init=False)
    chases: list[ChaseClaimInput] = field(default_factory=list, init=False)
    # Keyed like the store: a repeat is the same outcome.
    outcomes: dict[str, RecordReimbursementInput] = field(default_factory=dict, init=False)

    @activity.defn(name=OPEN_CARRIER_INVESTIGATION)
    async def open_investigation(self, input: OpenInvestigationInput) -> OpenInvestigationResult:
        return OpenInvestigationResult(investigation_ref=f"INV-{input.tracking_number}")

    @activity.defn(name=GATHER_CLAIM_DOCUMENTS)
    async def gather(self, input: GatherDocumentsInput) -> GatherDocumentsResult:
        return GatherDocumentsResult(
            documents=[ClaimDocument(kind="invoice", reference=f"invoice/{input.order_id}")]
        )

    @activity.defn(name=FILE_CARRIER_CLAIM)
    async def file_claim(self, input: FileClaimInput) -> FileClaimResult:
        self.filing = True
        if self.file_delay:
            await asyncio.sleep(self.file_delay)
        self.filed.append(input)
        return FileClaimResult(
            claim_reference=f"CLM-{input.tracking_number}", filed_at=_server_now()
        )

    @activity.defn(name=CHASE_CARRIER_CLAIM)
    async def chase(self, input: ChaseClaimInput) -> None:
        self.chases.append(input)

    @activity.defn(name=RECORD_CLAIM_OUTCOME)
    async def record_outcome(self, input: RecordReimbursementInput) -> None:
        self.outcomes.setdefault(input.idempotency_key, input)


@dataclass
class FakeEvidence:
    """The CCTV archive at the packing stations."""

    # Past the 30-day retention: every request is refused.
    footage_expired: bool = False

    cctv_requests: list[CctvClipRequest] = field(default_factory=list, init=False)

    @activity.defn(name=REQUEST_CCTV_CLIP)
    async def request_cctv(self, input: CctvClipRequest) -> CctvClipRequestResult:
        self.cctv_requests.append(input)
        if self.footage_expired:
            raise ApplicationError(
                "footage deleted (30-day retention)", type=CCTV_FOOTAGE_EXPIRED, non_retryable=True
            )
        footage_at = input.footage_at or _server_now()
        return CctvClipRequestResult(
            request_id=input.request_id,
            status=CctvRequestStatus.REQUESTED,
            station="PAR/pack-3",
            footage_at=footage_at,
            retained_until=footage_at + timedelta(days=30),
        )


@dataclass
class FakeDisputes:
    """The evidence store, the dispute providers and the order-release hold."""

    # The evidence kinds the store has; all of them unless given.
    available: list[EvidenceKind] = field(default_factory=lambda: list(ALL_EVIDENCE))
    # When the order was packed, before the evidence was assembled; None: unknown.
    packed_ago: timedelta | None = None
    # How many submissions the provider refuses.
    refuse_submissions: int = 0

    submissions: list[SubmitResponseInput] = field(default_factory=list, init=False)
    holds: list[HoldReleaseInput] = field(default_factory=list, init=False)
    records: list[DisputeRecordInput] = field(default_factory=list, init=False)
    packed_at: datetime | None = field(default=None, init=False)

    @activity.defn(name=ASSEMBLE_DISPUTE_EVIDENCE)
    async def assemble(self, input: AssembleEvidenceInput) -> AssembleEvidenceResult:
        pack = EvidencePack(
            items=[
                EvidenceItem(kind=k, available=k in self.available, summary=f"{k} (fake)")
                for k in ALL_EVIDENCE
                if k is not EvidenceKind.CCTV_CLIP or k in self.available
            ]
        )
        if self.packed_ago is not None and self.packed_at is None:
            self.packed_at = _server_now() - self.packed_ago
        return AssembleEvidenceResult(pack=pack, packed_at=self.packed_at)

    @activity.defn(name=SUBMIT_DISPUTE_RESPONSE)
    async def submit(self, input: SubmitResponseInput) -> SubmitResponseResult:
        self.submissions.append(input)
        if self.refuse_submissions:
            self.refuse_submissions -= 1
            raise ApplicationError(
                "evidence file too large for the provider",
                type="DisputeResponseRefused",
                non_retryable=True,
            )
        steps = ["accept"] if input.action is ResponseAction.ACCEPT else ["stage", "submit"]
        return SubmitResponseResult(
            idempotency_key=input.idempotency_key,
            provider_reference=f"ref-{len(self.submissions)}",
            steps=steps,
        )

    @activity.defn(name=HOLD_ORDER_RELEASE)
    async def hold(self, input: HoldReleaseInput) -> HoldReleaseResult:
        self.holds.append(input)
        return HoldReleaseResult(order_id=input.order_id, held=True, released_to_warehouse=False)

    @activity.defn(name=RECORD_DISPUTE)
    async def record_dispute(self, input: DisputeRecordInput) -> None:
        self.records.append(input)


@dataclass
class FakeSweep:
    """The silence sweep over the shipments table."""

    # How many sweeps fail (PostgreSQL restarting) before one succeeds.
    sweep_failures: int = 0

    sweeps: list[CarrierSweepInput] = field(default_factory=list, init=False)

    @activity.defn(name=SWEEP_SILENT_SHIPMENTS)
    async def sweep(self, input: CarrierSweepInput) -> CarrierSweepResult:
        self.sweeps.append(input)
        if self.sweep_failures > 0:
            self.sweep_failures -= 1
            raise RuntimeError("PostgreSQL restarting")
        assert input.as_of is not None
        return CarrierSweepResult(
            as_of=input.as_of,
            silence=input.silence,
            claims_opened=["carrier-claim:ups:1ZSILENT"],
            shipments_swept=1,
        )


# ------------------------------------------------------------------ world


class FakeWorld:
    """Every port Steward's workflows call, faked in memory, recording each call.

    Keyword arguments are the ports' knobs, e.g. `FakeWorld(frozen_refunds=2,
    risk=HIGH_RISK)`; an unknown knob is an error, not a silent no-op.
    """

    audit: FakeAudit
    payments: FakePayments
    scoring: FakeScoring
    notifications: FakeNotifications
    warehouse: FakeWarehouse
    returns: FakeReturns
    deliveries: FakeDeliveries
    claims: FakeClaims
    evidence: FakeEvidence
    disputes: FakeDisputes
    sweep: FakeSweep
    fulfilment: FakeFulfilment

    def __init__(self, **knobs: Any) -> None:
        # One attribute per port, as annotated above (strings: postponed annotations).
        ports: dict[str, type] = {
            name: globals()[kind] for name, kind in FakeWorld.__annotations__.items()
        }
        owner = {knob: name for name, cls in ports.items() for knob in _knobs(cls)}
        unknown = sorted(set(knobs) - set(owner))
        if unknown:
            raise TypeError(f"no port has the knob(s) {unknown}; knobs: {sorted(owner)}")
        for name, cls in ports.items():
            mine = {knob: value for knob, value in knobs.items() if owner[knob] == name}
            setattr(self, name, cls(**mine))
        self.payments.store = self.audit

    def ports(self) -> list[object]:
        return [getattr(self, name) for name in FakeWorld.__annotations__]

    def activities(self) -> list[Callable[..., Any]]:
        """Every fake activity, for the worker (unused ones cost nothing)."""
        return [
            member
            for port in self.ports()
            for name in dir(type(port))
            if hasattr(member := getattr(port, name), "__temporal_activity_definition")
        ]


# ---------------------------------------------------------------- harness


class Harness:
    """One test's view of the shared server: a worker on its own task queue,
    the server's time when the test began, and every workflow it started."""

    def __init__(self, env: WorkflowEnvironment, world: FakeWorld, server_time: datetime) -> None:
        self.env = env
        self.world = world
        self.task_queue = f"wf-test-{uuid.uuid4()}"
        self._began_at = server_time
        self._began = time.monotonic()
        self._started: list[str] = []

    def now(self) -> datetime:
        """The test's wall clock: the server's time when the test began, plus
        the real time since.

        What `datetime.now(UTC)` was when each test had a server of its own:
        it moves on in real time (two events built one after the other are in
        order) but not when the test skips the server's time.
        """
        return self._began_at + timedelta(seconds=time.monotonic() - self._began)

    @property
    def client(self) -> Client:
        return self.env.client

    async def start(
        self, run: Callable[..., Awaitable[T]], arg: Any, *, id: str, **kwargs: Any
    ) -> WorkflowHandle[Any, T]:
        """Start a workflow on this test's worker; it is terminated after the test."""
        handle = await self.client.start_workflow(
            run, arg, id=id, task_queue=self.task_queue, **kwargs
        )
        self._started.append(handle.id)
        return handle

    async def execute(
        self, run: Callable[..., Awaitable[T]], arg: Any, *, id: str, **kwargs: Any
    ) -> T:
        handle = await self.start(run, arg, id=id, **kwargs)
        return await handle.result()

    async def sleep(self, duration: timedelta) -> None:
        """Skip `duration` of the server's time (timers fire, workflows act)."""
        await self.env.sleep(duration)

    async def terminate_leftovers(self) -> bool:
        """Terminate every run this test started, and their children, still running.

        Children go first, while their parents still run. True when a child
        closed (or was terminated) after its parent had closed: the test
        server then never skips time again (its bookkeeping for the closed
        parent keeps the clock locked), so the server must be replaced.
        """
        runs: dict[str, _Run] = {}
        pending = list(self._started)
        while pending:
            workflow_id = pending.pop(0)
            if workflow_id not in runs:
                run = await _Run.read(self.client.get_workflow_handle(workflow_id))
                if run is not None:
                    runs[workflow_id] = run
                    pending.extend(run.children)
        stalls_clock = any(
            run.closed and child in runs and child not in run.closed_children
            for run in runs.values()
            for child in run.started_children
        )
        for workflow_id in reversed(runs):
            if not runs[workflow_id].closed:
                try:
                    await self.client.get_workflow_handle(workflow_id).terminate("test finished")
                except RPCError as err:
                    if err.status is not RPCStatusCode.NOT_FOUND:  # closed meanwhile
                        raise
        return stalls_clock


@dataclass
class _Run:
    """What a workflow's history says about its end and its children."""

    closed: bool = False
    children: list[str] = field(default_factory=list)  # every child it tried to start
    started_children: set[str] = field(default_factory=set)
    closed_children: set[str] = field(default_factory=set)

    @classmethod
    async def read(cls, handle: WorkflowHandle[Any, Any]) -> _Run | None:
        run = cls()
        try:
            async for event in handle.fetch_history_events():
                if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                    attrs = event.start_child_workflow_execution_initiated_event_attributes
                    run.children.append(attrs.workflow_id)
                elif event.HasField("child_workflow_execution_started_event_attributes"):
                    started = event.child_workflow_execution_started_event_attributes
                    run.started_children.add(started.workflow_execution.workflow_id)
                elif event.event_type in _CHILD_CLOSING_EVENTS:
                    closed = getattr(event, _CHILD_CLOSING_EVENTS[event.event_type])
                    run.closed_children.add(closed.workflow_execution.workflow_id)
                run.closed = run.closed or event.event_type in _CLOSING_EVENTS
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:  # a child that never started
                return None
            raise
        return run


_CLOSING_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}
_CHILD_CLOSING_EVENTS = {
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: (
        "child_workflow_execution_completed_event_attributes"
    ),
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: (
        "child_workflow_execution_failed_event_attributes"
    ),
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: (
        "child_workflow_execution_canceled_event_attributes"
    ),
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: (
        "child_workflow_execution_timed_out_event_attributes"
    ),
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED: (
        "child_workflow_execution_terminated_event_attributes"
    ),
}


class TestServer:
    """The session's time-skipping server, replaced when it stops skipping time.

    One server for every test saves starting one per test (~0.15 s each).
    Its clock stops for good in a few situations, all of them the test
    server's, none the workflows': a run waiting on a task queue nobody polls
    (the harness terminates what a test leaves running), a child closing
    after its parent closed, and now and then a run terminated right after
    its worker stopped. After each test the harness therefore checks that a
    day still passes at once, and replaces the server when it does not.
    """

    __test__ = False  # not a test class, whatever its name

    def __init__(self, start: Callable[[], Awaitable[WorkflowEnvironment]]) -> None:
        self._start = start
        self._env: WorkflowEnvironment | None = None
        self.replacements = 0

    @property
    def env(self) -> WorkflowEnvironment:
        assert self._env is not None, "the test server is not running"
        return self._env

    async def start(self) -> None:
        self._env = await self._start()

    async def stop(self) -> None:
        if self._env is not None:
            await self._env.shutdown()
            self._env = None

    async def replace(self) -> None:
        await self.stop()
        await self.start()
        self.replacements += 1

    async def skips_time(self, within: timedelta = timedelta(seconds=0.5)) -> bool:
        """Whether a day passes at once on the idle server (about 2 ms when it does).

        A false "no" (a very slow machine) only costs a replacement.
        """
        try:
            await asyncio.wait_for(self.env.sleep(timedelta(days=1)), within.total_seconds())
        except TimeoutError:
            return False
        return True


# ---------------------------------------------------------------- waiting


async def eventually(
    check: Callable[[], Awaitable[T | None]] | Callable[[], T | None],
    *,
    timeout: timedelta = timedelta(seconds=10),
    what: str = "condition",
) -> T:
    """Poll `check` until it returns something truthy, and return that.

    Queries and activity records move in real time (the server's clock does
    not skip while a test polls), so the polling is short and in real time.
    """
    deadline = time.monotonic() + timeout.total_seconds()
    delay = 0.001
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)


async def wait_for_status(
    handle: WorkflowHandle[Any, Any],
    status: str,
    *,
    timeout: timedelta = timedelta(seconds=10),
    query: str = "status",
) -> None:
    """Wait until the workflow's status query answers `status`.

    Every Steward workflow answers a `status` query with a state whose
    `status` field is its current status (see the process contracts in
    domain/). A workflow that does not exist yet (a child about to start) is
    simply not there yet.
    """
    last: list[Any] = [None]

    async def reached() -> bool:
        try:
            state = await handle.query(query)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return False
            raise
        last[0] = state.get("status") if isinstance(state, dict) else state.status
        return bool(last[0] == status)

    try:
        await eventually(reached, timeout=timeout, what=f"{handle.id} reaching {status}")
    except AssertionError as err:
        raise AssertionError(f"{handle.id} never reached {status}; now {last[0]}") from err
