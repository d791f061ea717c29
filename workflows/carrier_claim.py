"""Carrier claim: `carrier-claim:{carrier}:{tracking_number}`.

opened -> gathering_evidence -> filed -> approved | rejected | no_response,
or withdrawn when the parcel is delivered before the claim is filed.

The claim is filed as soon as the evidence is in (invoice, photos, tracking
history, the packing-station CCTV clip), and at the latest at `file_by` (the
carrier's filing deadline minus a safety margin) with whatever arrived: a
late claim is worth nothing. The customer never waits for the carrier: a
failed-delivery case (started here when none is linked) reships or refunds
by the coordinator's decision meanwhile.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (see workflows/order_review.py)

    from domain.carrier_events import CarrierEvent, EventSource, TrackingStatus
    from domain.claims import (
        CHASE_CARRIER_CLAIM,
        CLOSED_CLAIM_STATUSES,
        FILE_CARRIER_CLAIM,
        GATHER_CLAIM_DOCUMENTS,
        OPEN_CARRIER_INVESTIGATION,
        RECORD_CLAIM_OUTCOME,
        CarrierClaimContract,
        CarrierClaimInput,
        CarrierClaimResult,
        CarrierClaimState,
        ChaseClaimInput,
        ClaimClock,
        ClaimDocument,
        ClaimOutcome,
        ClaimStatus,
        FileClaimInput,
        FileClaimResult,
        GatherDocumentsInput,
        GatherDocumentsResult,
        OpenInvestigationInput,
        OpenInvestigationResult,
        RecordReimbursementInput,
        file_by,
        filing_deadline,
    )
    from domain.common import format_amount
    from domain.deliveries import (
        FailedDeliveryContract,
        FailedDeliveryInput,
        failed_delivery_policy,
    )
    from domain.evidence import (
        REQUEST_CCTV_CLIP,
        CctvClipReady,
        CctvClipRequest,
        CctvClipRequestResult,
        cctv_request_id,
    )
    from domain.ids import CARRIER_CLAIM, failed_delivery_id
    from workflows.case import CaseBook, CaseFacts, call_outside, outside_retry, start_or_link
    from workflows.steps import STEWARD, failure_reason, wait_until

# A parcel found after filing is recorded at once (runs before it waited for the outcome).
PATCH_FOUND_AFTER_FILING = "claim-found-after-filing"
# A claim opened after the carrier's window closed is recorded out_of_window
# with its dates and never filed (issue 15; only a claim past its deadline
# reaches the patch, so the histories recorded before it replay unchanged).
PATCH_OUT_OF_WINDOW = "claim-out-of-window"
# An outcome that arrives while the filing's result is still being taken counts
# (runs before it dropped the outcome as "not filed yet").
PATCH_OUTCOME_WHILE_FILING = "claim-outcome-while-filing"
OUTSIDE_RETRY = outside_retry("ClaimRefused", "CctvFootageExpired", "CctvRequestRefused")
CCTV_REQUEST_GIVE_UP = timedelta(minutes=10)


@workflow.defn(name=CarrierClaimContract.WORKFLOW_TYPE)
class CarrierClaimWorkflow:
    @workflow.init
    def __init__(self, input: CarrierClaimInput) -> None:
        self._input = input
        order = input.shipment.order
        self._state = CarrierClaimState(
            carrier=input.carrier,
            tracking_number=input.tracking_number,
            shipment_id=input.shipment.shipment_id,
            order_id=order.order_id,
            claim_type=input.claim_type,
            status=ClaimStatus.OPENED,
            declared_value_minor=order.payment.amount_minor,
            currency=order.payment.currency,
            filing_deadline=filing_deadline(input.reported_at, input.policy, input.shipped_at),
            file_by=file_by(input.reported_at, input.policy, input.shipped_at),
            shipped_at=input.shipped_at,
            window_from=input.policy.window_from,
            remedy_workflow_id=input.remedy_workflow_id,
        )
        # A claim never awaits a person (no tasks) and keeps no status history.
        self._case = CaseBook(
            CARRIER_CLAIM,
            lambda: f"{self._state.carrier}:{self._state.tracking_number}",
            state=self._state,
            facts=self._facts,
            closed=CLOSED_CLAIM_STATUSES,
            clear_on_close=("due_at",),
            order_id=lambda: self._state.order_id,
        )
        self._clip: CctvClipReady | None = None
        self._delivered = False
        self._outcome: ClaimOutcome | None = None
        # The claim went to the carrier (its result may not be taken yet).
        self._filing_sent = False
        # A parcel found after filing: the follow-up loop records it at once.
        self._found_unrecorded = False

    @workflow.run
    async def run(self, input: CarrierClaimInput) -> CarrierClaimResult:
        self._case.audit(
            "claim_opened",
            reason=input.reason or f"{input.claim_type} parcel",
            after={
                "claim_type": input.claim_type,
                "filing_deadline": self._state.filing_deadline,
                "file_by": self._state.file_by,
                "shipment_id": self._state.shipment_id,
            },
        )
        self._case.transition(ClaimStatus.OPENED, STEWARD, f"{input.claim_type} parcel reported")
        await self._case.flush()
        if input.remedy_workflow_id is None:
            await self._start_remedy(input)
        if workflow.now() >= self._state.filing_deadline and workflow.patched(PATCH_OUT_OF_WINDOW):
            return await self._out_of_window(input)

        investigation = await call_outside(
            OPEN_CARRIER_INVESTIGATION,
            OpenInvestigationInput(
                workflow_id=workflow.info().workflow_id,
                carrier=input.carrier,
                tracking_number=input.tracking_number,
                claim_type=input.claim_type,
            ),
            result_type=OpenInvestigationResult,
            retry=OUTSIDE_RETRY,
            summary="open the carrier investigation",
        )
        self._state.investigation_ref = investigation.investigation_ref
        self._case.audit(
            "investigation_opened", actor=input.carrier, reason=investigation.investigation_ref
        )
        self._state.due_at = self._state.file_by
        self._case.transition(
            ClaimStatus.GATHERING_EVIDENCE, STEWARD, "collecting proof of value, photos and CCTV"
        )
        await self._case.flush()

        await self._gather_evidence()
        if self._delivered:
            self._case.transition(
                ClaimStatus.WITHDRAWN, STEWARD, "the parcel was delivered before filing"
            )
        else:
            await self._file()
            await self._follow_up()
        await self._case.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        outcome = self._outcome
        return CarrierClaimResult(
            status=self._state.status,
            claim_reference=self._state.claim_reference,
            reimbursed_minor=outcome.reimbursed_minor if outcome and outcome.approved else 0,
            currency=self._state.currency,
        )

    async def _out_of_window(self, input: CarrierClaimInput) -> CarrierClaimResult:
        """Too late for the carrier: no investigation, no filing; the dates go
        on record for the claims report (the customer's remedy still runs)."""
        state = self._state
        started = input.reported_at
        if state.window_from is ClaimClock.SHIPPED and state.shipped_at is not None:
            started = min(state.shipped_at, input.reported_at)
        self._case.audit(
            "claim_out_of_window",
            reason=f"{input.carrier}'s {input.policy.filing_window.days}-day window counted "
            f"from the {state.window_from} date closed on {state.filing_deadline:%Y-%m-%d}; "
            f"the claim was opened on {workflow.now():%Y-%m-%d}",
            after={
                "window_from": state.window_from,
                "window_start": started,
                "reported_at": input.reported_at,
                "filing_deadline": state.filing_deadline,
                "discovered_at": workflow.now(),
            },
        )
        state.due_at = None
        self._case.transition(ClaimStatus.OUT_OF_WINDOW, STEWARD, "the carrier's window closed")
        await self._case.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CarrierClaimResult(
            status=state.status, claim_reference=None, reimbursed_minor=0, currency=state.currency
        )

    # ------------------------------------------------------------- handlers

    @workflow.query(name=CarrierClaimContract.QUERY_STATUS)
    def status(self) -> CarrierClaimState:
        return self._state

    @workflow.signal(name=CarrierClaimContract.SIGNAL_CARRIER_EVENT)
    async def carrier_event(self, event: CarrierEvent) -> None:
        if not self._case.first_time(event.event_id):
            return
        delivered = (
            event.status is TrackingStatus.DELIVERED
            and event.tracking_number == self._state.tracking_number
        )
        found = delivered and not self._delivered
        if delivered:
            self._delivered = True
        self._case.audit(
            "carrier_event",
            actor=event.carrier,
            reason=f"{event.tracking_number}: {event.status}",
            after={"event_id": event.event_id, "occurred_at": event.occurred_at},
        )
        if found:
            self._state.found_at = event.occurred_at
            filed = self._state.claim_reference is not None
            self._case.audit(
                "parcel_found_after_filing" if filed else "parcel_found",
                actor=event.carrier,
                reason=(
                    f"delivered after claim {self._state.claim_reference} was filed: "
                    "any reimbursement is owed back to the carrier"
                    if filed
                    else "delivered before filing: the claim is withdrawn"
                ),
                after={"event_id": event.event_id, "occurred_at": event.occurred_at},
            )
            self._found_unrecorded = filed
        remedy = self._state.remedy_workflow_id
        if delivered and remedy and self._input.remedy_workflow_id is None:
            # This claim follows the parcel for the remedy it started: a
            # parcel found after all must close that case too if it waits.
            try:
                await workflow.get_external_workflow_handle(remedy).signal(
                    FailedDeliveryContract.SIGNAL_CARRIER_EVENT, event
                )
            except Exception as failure:  # the remedy has finished: nothing waits
                self._case.audit("remedy_not_signalled", reason=str(failure))

    @workflow.signal(name=CarrierClaimContract.SIGNAL_CCTV_CLIP_READY)
    def cctv_clip_ready(self, clip: CctvClipReady) -> None:
        if not self._case.first_time(clip.event_id):
            return
        if self._clip is None:
            self._clip = clip
        self._case.audit(
            "cctv_clip_ready" if clip.available else "cctv_clip_unavailable",
            actor="warehouse",
            reason=clip.clip_ref or clip.reason or "",
            after={"event_id": clip.event_id, "request_id": clip.request_id},
        )

    @workflow.signal(name=CarrierClaimContract.SIGNAL_CLAIM_OUTCOME)
    def claim_outcome(self, outcome: ClaimOutcome) -> None:
        if not self._case.first_time(outcome.event_id):
            return
        # One outcome counts; a repeat with another event id is only recorded.
        # The carrier may answer while the filing's own result is still being
        # taken (a worker restarted in between: the signal and the result then
        # arrive in one workflow task, the signal first); the claim was sent,
        # so the answer counts (runs before the patch dropped it).
        filed = self._state.status is ClaimStatus.FILED or (
            self._filing_sent
            and self._state.status not in CLOSED_CLAIM_STATUSES
            and workflow.patched(PATCH_OUTCOME_WHILE_FILING)
        )
        if self._outcome is None and filed:
            self._outcome = outcome
            action = "claim_outcome_received"
        else:
            action = "claim_outcome_ignored"
        self._case.audit(
            action,
            actor=self._state.carrier,
            reason=outcome.note or ("approved" if outcome.approved else "rejected"),
            after={
                "event_id": outcome.event_id,
                "approved": outcome.approved,
                "reimbursed_minor": outcome.reimbursed_minor,
                "currency": outcome.currency,
            },
        )

    # -------------------------------------------------------------- stages

    async def _start_remedy(self, input: CarrierClaimInput) -> None:
        remedy_id = failed_delivery_id(input.shipment.shipment_id)
        trigger = CarrierEvent(
            event_id=f"{workflow.info().workflow_id}/opened",
            carrier=input.carrier,
            tracking_number=input.tracking_number,
            shipment_id=input.shipment.shipment_id,
            status=TrackingStatus.LOST if input.claim_type == "lost" else TrackingStatus.DAMAGED,
            occurred_at=input.reported_at,
            source=EventSource.STEWARD,
        )
        # The remedy lives on after the claim closes; if a carrier event
        # already opened it, that case is the one.
        started = await start_or_link(
            FailedDeliveryContract.WORKFLOW_TYPE,
            FailedDeliveryInput(
                shipment=input.shipment,
                trigger=trigger,
                # Per-currency thresholds travel in the child's input.
                policy=failed_delivery_policy(),
                claim_workflow_id=workflow.info().workflow_id,
            ),
            id=remedy_id,
            summary=f"Failed delivery {input.shipment.shipment_id} (claim)",
        )
        action = "remedy_started" if started else "remedy_linked"
        self._state.remedy_workflow_id = remedy_id
        self._case.audit(
            action,
            reason="reship or refund by the coordinator's decision",
            after={"remedy_workflow_id": remedy_id},
        )
        await self._case.flush()

    async def _gather_evidence(self) -> None:
        input = self._input
        gathered = await call_outside(
            GATHER_CLAIM_DOCUMENTS,
            GatherDocumentsInput(
                workflow_id=workflow.info().workflow_id,
                order_id=self._state.order_id,
                shipment_id=self._state.shipment_id,
                claim_type=input.claim_type,
            ),
            result_type=GatherDocumentsResult,
            retry=OUTSIDE_RETRY,
            summary="collect invoice, photos and tracking history",
        )
        self._state.documents.extend(gathered.documents)
        self._case.audit("documents_gathered", reason=", ".join(d.kind for d in gathered.documents))

        try:
            await call_outside(
                REQUEST_CCTV_CLIP,
                CctvClipRequest(
                    request_id=cctv_request_id(workflow.info().workflow_id),
                    reply_to_workflow_id=workflow.info().workflow_id,
                    order_id=self._state.order_id,
                    purpose="carrier claim",
                ),
                result_type=CctvClipRequestResult,
                # The clip strengthens the claim but never holds up filing.
                schedule_to_close=CCTV_REQUEST_GIVE_UP,
                retry=OUTSIDE_RETRY,
                summary="request the packing CCTV clip",
            )
            self._state.cctv_requested = True
            self._case.audit("cctv_clip_requested")
        except ActivityError as failure:
            # Footage past retention: file without it, and say so.
            self._state.cctv_note = failure_reason(failure)
            self._case.audit("cctv_clip_unavailable", reason=self._state.cctv_note)
        await self._case.flush()

        if self._state.cctv_requested:
            until = min(workflow.now() + input.policy.evidence_wait, self._state.file_by)
            got = await wait_until(
                lambda: self._clip is not None or self._delivered,
                until=until,
                timer="cctv-clip-wait",
            )
            clip = self._clip
            if clip is not None and clip.available and clip.clip_ref:
                self._state.documents.append(
                    ClaimDocument(kind="cctv_clip", reference=clip.clip_ref)
                )
            elif not got:
                self._state.cctv_note = f"no clip by {until.isoformat()}"
                self._case.audit("cctv_clip_timeout", reason="filing without the CCTV clip")

    async def _file(self) -> None:
        input = self._input
        self._filing_sent = True
        filed = await call_outside(
            FILE_CARRIER_CLAIM,
            FileClaimInput(
                workflow_id=workflow.info().workflow_id,
                carrier=input.carrier,
                tracking_number=input.tracking_number,
                claim_type=input.claim_type,
                investigation_ref=self._state.investigation_ref,
                amount_minor=self._state.declared_value_minor,
                currency=self._state.currency,
                documents=self._state.documents,
            ),
            result_type=FileClaimResult,
            retry=OUTSIDE_RETRY,
            summary="file the claim",
        )
        self._state.claim_reference = filed.claim_reference
        self._state.filed_at = workflow.now()
        margin = self._state.filing_deadline - workflow.now()
        self._case.audit(
            "claim_filed",
            reason=f"{filed.claim_reference}, {self._money()}",
            after={
                "documents": [d.kind for d in self._state.documents],
                "filing_deadline": self._state.filing_deadline,
                "hours_before_deadline": round(margin.total_seconds() / 3600, 1),
            },
        )
        self._state.due_at = workflow.now() + input.policy.response_deadline
        self._case.transition(ClaimStatus.FILED, STEWARD, f"filed {filed.claim_reference}")
        await self._case.flush()

    async def _follow_up(self) -> None:
        policy = self._input.policy
        due = self._state.due_at
        assert due is not None and self._state.claim_reference is not None
        wake_on_found = workflow.patched(PATCH_FOUND_AFTER_FILING)
        next_chase = min(workflow.now() + policy.follow_up_every, due)
        while True:
            if await wait_until(
                lambda: self._outcome is not None or (wake_on_found and self._found_unrecorded),
                until=next_chase,
                timer="claim-follow-up",
            ):
                if self._outcome is not None:
                    break
                # The parcel turned up: on record now; the carrier still answers.
                self._found_unrecorded = False
                self._case.refresh()
                await self._case.flush()
                continue
            if workflow.now() >= due:
                break
            self._state.follow_ups += 1
            await call_outside(
                CHASE_CARRIER_CLAIM,
                ChaseClaimInput(
                    workflow_id=workflow.info().workflow_id,
                    carrier=self._state.carrier,
                    claim_reference=self._state.claim_reference,
                    follow_up=self._state.follow_ups,
                ),
                result_type=type(None),
                retry=OUTSIDE_RETRY,
                summary="chase the carrier",
            )
            self._case.audit(
                "claim_follow_up",
                reason=f"reminder {self._state.follow_ups} to {self._state.carrier}",
            )
            await self._case.flush()
            next_chase = min(workflow.now() + policy.follow_up_every, due)
        outcome = self._outcome
        if outcome is None:
            result, amount, status = "no_response", 0, ClaimStatus.NO_RESPONSE
        elif outcome.approved:
            result, amount, status = "approved", outcome.reimbursed_minor, ClaimStatus.APPROVED
        else:
            result, amount, status = "rejected", 0, ClaimStatus.REJECTED
        self._state.outcome = outcome
        await call_outside(
            RECORD_CLAIM_OUTCOME,
            RecordReimbursementInput(
                workflow_id=workflow.info().workflow_id,
                carrier=self._state.carrier,
                tracking_number=self._state.tracking_number,
                order_id=self._state.order_id,
                claim_reference=self._state.claim_reference,
                outcome=result,
                amount_minor=amount,
                currency=self._state.currency,
            ),
            result_type=type(None),
            retry=OUTSIDE_RETRY,
            summary="record the outcome in the claims ledger",
        )
        self._case.audit(
            "claim_outcome_recorded",
            reason=f"{result}: {format_amount(amount, self._state.currency)}",
            after={"outcome": result, "reimbursed_minor": amount},
        )
        # Closing clears the due date (the case book's clear_on_close).
        self._case.transition(status, STEWARD, f"claim {result}")

    # -------------------------------------------------------------- helpers

    def _facts(self) -> CaseFacts:
        state = self._state
        return CaseFacts(
            status=state.status,
            details=_details(state),
            amount_minor=state.declared_value_minor,
            currency=state.currency,
            market=self._input.shipment.order.market,
            due_at=state.due_at,
            # A claim waits on the carrier, never on a person.
            tracks_awaited_role=False,
        )

    def _money(self) -> str:
        return format_amount(self._state.declared_value_minor, self._state.currency)


def _details(state: CarrierClaimState) -> str:
    lines = [
        f"**{state.status.replace('_', ' ').capitalize()}** · "
        f"{state.carrier} {state.tracking_number}",
        f"{state.claim_type} · order {state.order_id} · "
        f"{format_amount(state.declared_value_minor, state.currency)}",
        f"Filing deadline {state.filing_deadline:%Y-%m-%d %H:%M} UTC",
    ]
    if state.claim_reference:
        lines.append(f"Claim {state.claim_reference}")
    if state.found_at:
        lines.append(f"Parcel delivered after all on {state.found_at:%Y-%m-%d %H:%M} UTC")
    return "\n\n".join(lines)
