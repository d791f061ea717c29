"""Returns, exchanges and refunds: `return:{rma_id}`.

requested -> (rejected | label_issued) -> in_transit -> received -> QC
[-> manual_qc] -> refund | exchange | store credit | return to customer | repair,
with the item restocked or quarantined through the warehouse port.

Money moves only when QC (the 3PL, or a coordinator after a manual check)
confirms the outcome; above the market's threshold finance approves first, and
never the person who asked for the refund. The refund goes through the payment
port once (deterministic operation id), and while the order has an open
dispute the provider refuses it: the workflow then re-checks on a durable
timer, escalates, and gives up at a deadline instead of waiting forever.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (see workflows/order_review.py)

    from domain.business_hours import sla_due
    from domain.campaign import (
        RETURN_CAMPAIGN_QUOTA,
        CampaignReturnInput,
        CampaignReturnResult,
        QuotaRelease,
        ReleaseReason,
        return_release_id,
    )
    from domain.claims import CarrierClaimContract, CarrierClaimInput, ClaimType, claim_policy_for
    from domain.common import Role
    from domain.ids import RETURN, carrier_claim_id
    from domain.notifications import CustomerTemplate
    from domain.returns import (
        CANCELLABLE_STATUSES,
        CHECK_RETURN_ELIGIBILITY,
        CLOSED_RETURN_STATUSES,
        ISSUE_RETURN_LABEL,
        PREPARE_RETURN_PARCEL_CLAIM,
        RECORD_DISPOSITION,
        CancelReturnRequest,
        CarrierEvent,
        CarrierEventKind,
        CheckEligibilityInput,
        CustomerChoice,
        CustomerChoiceInput,
        Disposition,
        EligibilityResult,
        FinanceApprovalInput,
        FinanceApprovalRecord,
        IssueLabelInput,
        IssueLabelResult,
        QcDecisionInput,
        QcDecisionRecord,
        QcGrade,
        QcOutcome,
        QcResult,
        RecordDispositionInput,
        RecordDispositionResult,
        Resolution,
        ReturnContract,
        ReturnInput,
        ReturnParcelClaimInput,
        ReturnParcelClaimResult,
        ReturnResult,
        ReturnState,
        ReturnStatus,
        ReturnStatusChange,
        disposition_for,
        manual_qc_reasons,
        parent_reason,
        returned_value_minor,
        validate_finance_approval,
        validate_qc_decision,
    )
    from workflows.case import (
        CaseBook,
        CaseFacts,
        PendingDecision,
        call_outside,
        start_or_link,
    )
    from workflows.steps import STEWARD, wait_until

from workflows.returns_resolution import OUTSIDE_RETRY, ReturnResolution

# Lost parcels open the carrier claim themselves (runs started before left a task).
PATCH_LOST_PARCEL_CLAIM = "return-lost-parcel-claim"
# The manual QC's SLA counts in business hours of the market's desk where the
# market says so (issue 17; runs before it keep wall-clock SLAs).
PATCH_BUSINESS_HOURS_QC = "return-qc-business-hours-sla"

# A return of an employee-sale order gives the campaign's quota back once the
# value is given back (refund or store credit); runs before it did not.
PATCH_CAMPAIGN_QUOTA_BACK = "return-campaign-quota-back"

# How long a coordinator has to act on a parcel presumed lost.
LOST_PARCEL_TASK_SLA = timedelta(days=2)


@workflow.defn(name=ReturnContract.WORKFLOW_TYPE)
class ReturnWorkflow(ReturnResolution):
    @workflow.init
    def __init__(self, input: ReturnInput) -> None:
        self._input = input
        self._policy = input.policy
        self._state = ReturnState(
            rma_id=input.rma_id,
            order_id=input.order.order_id,
            market=input.order.market,
            currency=input.order.currency,
            status=ReturnStatus.REQUESTED,
            reason=input.reason,
            parent_reason=parent_reason(input.reason),
            resolution=input.resolution,
            lines=input.lines,
            value_minor=returned_value_minor(input),
        )
        self._full_refund_minor = self._state.value_minor
        # Entries carry the order id so the order's audit trail
        # (`steward audit ORDER_ID`) shows its returns.
        self._case = CaseBook(
            RETURN,
            lambda: self._input.rma_id,
            state=self._state,
            facts=self._facts,
            history=self._history,
            closed=CLOSED_RETURN_STATUSES,
            order_id=lambda: self._input.order.order_id,
        )
        self._shipped = False
        self._delivered = False
        self._cancel: CancelReturnRequest | None = None
        self._qc_decision: PendingDecision[QcDecisionRecord] = PendingDecision()
        self._finance: PendingDecision[FinanceApprovalRecord] = PendingDecision(
            busy="decision: another approval is being applied"
        )
        self._choice: CustomerChoice | None = None
        self._refund_operations = 0
        # The employee sale the order was bought in (the eligibility check says).
        self._campaign_id: str | None = None

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, input: ReturnInput) -> ReturnResult:
        self._case.audit(
            "return_requested",
            actor=input.requested_by,
            role=input.requester_role,
            reason=f"{input.reason} ({self._state.parent_reason}), wants {input.resolution}",
            after={
                "order_id": input.order.order_id,
                "lines": {line.sku: line.quantity for line in input.lines},
                "value_minor": self._state.value_minor,
            },
        )
        self._case.transition(ReturnStatus.REQUESTED, input.requested_by, "return requested")
        await self._case.flush()

        if await self._check_eligibility() and await self._ship_back():
            await self._inspect_and_resolve()

        await self._case.flush()
        # Let an update that raced the end finish and answer its caller.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ReturnResult(
            rma_id=input.rma_id,
            status=self._state.status,
            refunded_minor=self._state.refund_minor if self._state.refund_reference else 0,
            currency=input.order.currency,
            disposition=self._state.disposition,
            replacement_order_id=self._state.replacement_order_id,
        )

    # ------------------------------------------------------------- handlers

    @workflow.query(name=ReturnContract.QUERY_STATUS)
    def status(self) -> ReturnState:
        return self._state

    @workflow.signal(name=ReturnContract.SIGNAL_CARRIER_EVENT)
    def carrier_event(self, event: CarrierEvent) -> None:
        if not self._case.first_time(event.event_id):
            return
        after = {"event_id": event.event_id, "kind": event.kind, "location": event.location}
        if self._state.tracking_number and event.tracking_number != self._state.tracking_number:
            self._case.audit("carrier_event_ignored", reason="tracking number differs", after=after)
            return
        if self._state.status in CLOSED_RETURN_STATUSES:
            self._case.audit(
                "carrier_event_ignored", reason=f"return {self._state.status}", after=after
            )
            return
        self._shipped = True
        if event.kind is CarrierEventKind.DELIVERED_TO_WAREHOUSE:
            self._delivered = True
        self._case.audit(
            f"carrier_{event.kind}", actor="carrier", reason=event.location, after=after
        )

    @workflow.signal(name=ReturnContract.SIGNAL_QC_RESULT)
    def qc_result(self, result: QcResult) -> None:
        if not self._case.first_time(result.event_id):
            return
        after = {"event_id": result.event_id, "grade": result.grade}
        if self._state.qc is not None:
            # The first report is the one QC decisions were based on.
            self._case.audit(
                "qc_result_ignored", reason="a QC result is already recorded", after=after
            )
            return
        self._state.qc = result
        self._case.audit(
            "qc_result_received",
            actor="3pl",
            reason=result.notes,
            after={
                **after,
                "photos": len(result.photos),
                "authenticity_confirmed": result.authenticity_confirmed,
            },
        )

    @workflow.signal(name=ReturnContract.SIGNAL_CANCEL)
    def cancel(self, request: CancelReturnRequest) -> None:
        if not self._case.first_time(request.event_id):
            return
        after = {"event_id": request.event_id, "status_at_request": self._state.status}
        if self._state.status not in CANCELLABLE_STATUSES or self._shipped:
            self._case.audit(
                "cancel_refused",
                actor=request.requested_by,
                reason="the parcel has already shipped" if self._shipped else self._state.status,
                after=after,
            )
            return
        if self._cancel is None:
            self._cancel = request
            self._state.cancel_reason = request.reason
            self._state.cancel_reason_subject_id = request.reason_subject_id
        self._case.audit(
            "cancel_requested",
            actor=request.requested_by,
            reason=request.reason_for_the_case,
            after=after,
        )

    @workflow.signal(name=ReturnContract.SIGNAL_CUSTOMER_CHOICE)
    def customer_choice(self, choice: CustomerChoiceInput) -> None:
        if not self._case.first_time(choice.event_id):
            return
        after = {"event_id": choice.event_id, "choice": choice.choice}
        if self._state.status is not ReturnStatus.AWAITING_CUSTOMER or self._choice is not None:
            self._case.audit("customer_choice_ignored", actor="customer", after=after)
            return
        self._choice = choice.choice
        self._case.audit("customer_chose", actor="customer", reason=choice.choice, after=after)

    @workflow.update(name=ReturnContract.UPDATE_QC_DECISION)
    async def qc_decision(self, decision: QcDecisionInput) -> ReturnState:
        # Answer once the main loop has taken it, with the state it led to.
        await self._qc_decision.hand_over(
            QcDecisionRecord(
                grade=decision.grade,
                reason=decision.reason,
                outcome=decision.outcome,
                partial_refund_minor=decision.partial_refund_minor,
                actor=decision.actor,
                role=decision.role,
                decided_at=workflow.now(),
            )
        )
        return self._state

    @qc_decision.validator
    def _validate_qc_decision(self, decision: QcDecisionInput) -> None:
        self._qc_decision.validate(
            lambda: validate_qc_decision(
                self._state, decision, max_refund_minor=self._full_refund_minor
            )
        )

    @workflow.update(name=ReturnContract.UPDATE_FINANCE_APPROVAL)
    async def finance_approval(self, approval: FinanceApprovalInput) -> ReturnState:
        await self._finance.hand_over(
            FinanceApprovalRecord(
                approved=approval.approved,
                note=approval.note,
                actor=approval.actor,
                decided_at=workflow.now(),
            )
        )
        return self._state

    @finance_approval.validator
    def _validate_finance_approval(self, approval: FinanceApprovalInput) -> None:
        self._finance.validate(lambda: validate_finance_approval(self._state, approval))

    # ----------------------------------------------------------- the steps

    async def _check_eligibility(self) -> bool:
        result = await call_outside(
            CHECK_RETURN_ELIGIBILITY,
            CheckEligibilityInput(
                workflow_id=workflow.info().workflow_id,
                request=self._input,
                requested_at=workflow.now(),
            ),
            result_type=EligibilityResult,
            retry=OUTSIDE_RETRY,
            summary="check return eligibility",
        )
        self._state.open_dispute = result.open_dispute
        self._full_refund_minor = result.refund_minor
        self._campaign_id = result.campaign_id
        self._case.audit(
            "eligibility_checked",
            reason="; ".join(r.code for r in result.refusals) or "eligible",
            after={
                "eligible": result.eligible,
                "open_dispute": result.open_dispute,
                "full_return": result.full_return,
                "refund_minor": result.refund_minor,
            },
        )
        if not result.eligible:
            self._state.refusals = [r.message for r in result.refusals]
            self._case.transition(ReturnStatus.REJECTED, STEWARD, self._state.refusals[0])
            await self._case.flush()
            await self._notify(CustomerTemplate.RETURN_REJECTED)
            return False
        if self._cancel is not None:
            self._case.transition(
                ReturnStatus.CANCELLED,
                self._cancel.requested_by,
                self._cancel.reason_for_the_case,
            )
            return False
        label = await call_outside(
            ISSUE_RETURN_LABEL,
            IssueLabelInput(
                workflow_id=workflow.info().workflow_id,
                rma_id=self._input.rma_id,
                order_id=self._input.order.order_id,
                market=self._input.order.market,
                lines=self._input.lines,
                expires_at=workflow.now() + self._policy.label_validity,
            ),
            result_type=IssueLabelResult,
            retry=OUTSIDE_RETRY,
            summary="issue return label",
        )
        self._state.tracking_number = label.tracking_number
        self._state.carrier = label.carrier
        self._state.label_expires_at = label.expires_at
        self._state.due_at = label.expires_at
        self._case.audit(
            "label_issued",
            reason=label.carrier,
            after={"tracking_number": label.tracking_number, "expires_at": label.expires_at},
        )
        self._case.transition(ReturnStatus.LABEL_ISSUED, STEWARD, f"label from {label.carrier}")
        await self._case.flush()
        await self._notify(CustomerTemplate.RETURN_LABEL)
        return True

    async def _ship_back(self) -> bool:
        """Wait for the parcel: reminder before the label expires, expiry closes
        the case, a cancel before shipping ends it; then wait for delivery."""
        expires = self._state.label_expires_at
        assert expires is not None
        shipped_or_cancelled: Callable[[], bool] = lambda: self._shipped or self._cancel is not None  # noqa: E731
        reminder_at = expires - self._policy.label_reminder_before
        if not await wait_until(shipped_or_cancelled, until=reminder_at, timer="label-reminder"):
            self._state.reminders_sent += 1
            self._case.audit("label_reminder", reason=f"label expires {expires:%Y-%m-%d}")
            await self._case.flush()
            await self._notify(CustomerTemplate.RETURN_LABEL_REMINDER)
            if not await wait_until(shipped_or_cancelled, until=expires, timer="label-expiry"):
                self._state.due_at = None
                self._case.audit("label_expired", reason=f"unused by {expires:%Y-%m-%d %H:%M} UTC")
                self._case.transition(ReturnStatus.EXPIRED, STEWARD, "return label expired unused")
                return False
        if self._cancel is not None and not self._shipped:
            self._state.due_at = None
            self._case.transition(
                ReturnStatus.CANCELLED,
                self._cancel.requested_by,
                self._cancel.reason_for_the_case,
            )
            return False
        if not self._delivered:
            due = workflow.now() + self._policy.inbound_deadline
            self._state.due_at = due
            self._case.transition(
                ReturnStatus.IN_TRANSIT, "carrier", "parcel scanned by the carrier"
            )
            await self._case.flush()
            if not await wait_until(lambda: self._delivered, until=due, timer="inbound-deadline"):
                self._case.open_human_task(
                    "lost_parcel",
                    f"Return {self._input.rma_id}: parcel {self._state.tracking_number} "
                    "presumed lost, check with the carrier",
                    Role.COORDINATOR,
                    workflow.now() + LOST_PARCEL_TASK_SLA,
                )
                self._case.transition(
                    ReturnStatus.LOST_IN_TRANSIT,
                    STEWARD,
                    f"not delivered to the warehouse within {self._policy.inbound_deadline.days} "
                    "days",
                )
                if workflow.patched(PATCH_LOST_PARCEL_CLAIM):
                    await self._case.flush()
                    await self._claim_lost_parcel()
                # Runs before this patch left the task open for a manual claim.
                self._case.open_task_id = None
                return False
        self._state.due_at = workflow.now() + self._policy.qc_result_timeout
        self._case.transition(ReturnStatus.RECEIVED, "carrier", "delivered to the warehouse")
        await self._case.flush()
        return True

    async def _claim_lost_parcel(self) -> None:
        """Start the carrier claim for the lost parcel and close the
        coordinator's task with that outcome; without the order's invoice the
        task stays open for a claim by hand."""
        carrier = self._state.carrier
        tracking = self._state.tracking_number
        assert carrier is not None and tracking is not None
        workflow_id = workflow.info().workflow_id
        prepared = await call_outside(
            PREPARE_RETURN_PARCEL_CLAIM,
            ReturnParcelClaimInput(
                workflow_id=workflow_id,
                rma_id=self._input.rma_id,
                order_id=self._input.order.order_id,
                carrier=carrier,
                tracking_number=tracking,
                lines=self._input.lines,
                expected_delivery_at=workflow.now(),
            ),
            result_type=ReturnParcelClaimResult,
            retry=OUTSIDE_RETRY,
            summary="prepare the lost-parcel claim",
        )
        if prepared.shipment is None:
            self._case.audit("carrier_claim_not_opened", reason=prepared.reason)
            return
        claim_id = carrier_claim_id(carrier, tracking)
        # The claim waits weeks for the carrier; the return is closed by then.
        started = await start_or_link(
            CarrierClaimContract.WORKFLOW_TYPE,
            CarrierClaimInput(
                carrier=carrier,
                tracking_number=tracking,
                claim_type=ClaimType.LOST,
                reported_at=workflow.now(),
                reason=f"return {self._input.rma_id} never reached the warehouse",
                shipment=prepared.shipment,
                policy=claim_policy_for(carrier, ClaimType.LOST),
                # This return is the customer's case: the claim starts no
                # failed delivery of its own.
                remedy_workflow_id=workflow_id,
            ),
            id=claim_id,
            summary=f"Carrier claim {carrier} {tracking} (lost return)",
        )
        opened = "carrier_claim_opened" if started else "carrier_claim_linked"
        self._state.claim_workflow_id = claim_id
        self._case.audit(
            opened,
            reason=f"lost return parcel {carrier} {tracking}",
            after={
                "claim_workflow_id": claim_id,
                "declared_minor": prepared.shipment.order.payment.amount_minor,
            },
        )
        self._close_task(STEWARD, f"{opened}: {claim_id}")
        self._case.refresh()

    async def _inspect_and_resolve(self) -> None:
        due = self._state.due_at
        assert due is not None
        if await wait_until(lambda: self._state.qc is not None, until=due, timer="qc-result"):
            assert self._state.qc is not None
            reasons = manual_qc_reasons(self._input, self._state.qc)
        else:
            self._case.audit(
                "qc_result_missing", reason=f"no 3PL QC result by {due:%Y-%m-%d %H:%M}"
            )
            reasons = ["no QC result from the 3PL"]
        grade: QcGrade = QcGrade.FIRST_CHOICE
        outcome: QcOutcome | None = None
        partial: int | None = None
        requester = self._input.requested_by
        if reasons:
            decision = await self._manual_qc(reasons)
            if decision is None:
                # Nobody confirmed the item: it stays in quarantine and no money moves.
                await self._dispose(Disposition.QUARANTINE, "no QC decision before the deadline")
                self._case.transition(
                    ReturnStatus.QUARANTINED, STEWARD, "manual QC deadline passed"
                )
                return
            grade, outcome, partial = (
                decision.grade,
                decision.outcome,
                decision.partial_refund_minor,
            )
            requester = decision.actor
        else:
            self._case.audit("qc_passed", reason="3PL graded first choice; no check needed")

        disposition = disposition_for(grade, outcome)
        await self._dispose(disposition, f"QC {grade}")
        if grade is QcGrade.FIRST_CHOICE:
            if self._input.resolution is Resolution.REFUND:
                await self._refund(self._full_refund_minor, requester, ReturnStatus.REFUNDED)
            elif self._input.resolution is Resolution.STORE_CREDIT:
                self._state.refund_minor = self._full_refund_minor
                self._case.audit(
                    "store_credit_granted",
                    reason=self._money(self._full_refund_minor),
                    after={"amount_minor": self._full_refund_minor},
                )
                self._case.transition(ReturnStatus.STORE_CREDITED, STEWARD, "store credit granted")
            else:
                await self._exchange(requester)
        elif outcome is QcOutcome.PARTIAL_REFUND:
            assert partial is not None
            await self._refund(partial, requester, ReturnStatus.REFUNDED)
        elif outcome is QcOutcome.REPAIR:
            self._case.transition(ReturnStatus.SENT_TO_REPAIR, requester, "sent to the workshop")
        else:
            self._case.transition(
                ReturnStatus.RETURNED_TO_CUSTOMER, requester, "sent back as it is"
            )
        if (
            self._campaign_id is not None
            and self._state.status in (ReturnStatus.REFUNDED, ReturnStatus.STORE_CREDITED)
            and workflow.patched(PATCH_CAMPAIGN_QUOTA_BACK)
        ):
            await self._give_campaign_quota_back(self._campaign_id)

    async def _give_campaign_quota_back(self, campaign_id: str) -> None:
        """The returned items go back to the employee sale: its quota (when the
        campaign's rule says so) and its returns figures. One release per SKU
        with an id derived from the RMA, so a retried step gives back once."""
        rma_id = self._input.rma_id
        result = await call_outside(
            RETURN_CAMPAIGN_QUOTA,
            CampaignReturnInput(
                workflow_id=workflow.info().workflow_id,
                rma_id=rma_id,
                campaign_id=campaign_id,
                order_id=self._input.order.order_id,
                releases=[
                    QuotaRelease(
                        release_id=return_release_id(rma_id, line.sku),
                        sku=line.sku,
                        quantity=line.quantity,
                        reason=ReleaseReason.RETURNED,
                    )
                    for line in self._input.lines
                ],
            ),
            result_type=CampaignReturnResult,
            retry=OUTSIDE_RETRY,
            summary="give the employee sale's quota back",
        )
        self._case.audit(
            "campaign_quota_returned",
            reason=campaign_id
            + ("" if result.quota_back else ": counted as returned, the quota stays taken"),
            after={
                "campaign_id": campaign_id,
                "applied": result.applied,
                "already": result.already,
                "refused": result.refused,
                "quota_back": result.quota_back,
            },
        )

    # --------------------------------------------------------- manual QC

    async def _manual_qc(self, reasons: list[str]) -> QcDecisionRecord | None:
        """A coordinator grades the item; at the SLA the senior QA coordinator
        (manager) takes over; at the deadline None (the default: quarantine)."""
        opened = workflow.now()
        sla = opened + self._policy.manual_qc_sla
        deadline = opened + self._policy.manual_qc_deadline
        calendar = self._policy.calendar
        if calendar is not None and workflow.patched(PATCH_BUSINESS_HOURS_QC):
            sla = sla_due(
                calendar,
                opened,
                business=self._policy.manual_qc_business_sla,
                wall_clock=self._policy.manual_qc_sla,
            )
            # The senior QA coordinator still gets a day after a late SLA.
            deadline = max(deadline, sla + timedelta(days=1))
        self._state.escalated = False
        self._case.open_human_task(
            "return_qc",
            f"QC return {self._input.rma_id} · {self._money(self._state.value_minor)} · "
            + ", ".join(reasons),
            Role.COORDINATOR,
            sla,
            priority=min(self._state.value_minor // 10_000, 1_000),
        )
        self._case.transition(ReturnStatus.MANUAL_QC, STEWARD, "; ".join(reasons))
        await self._case.flush()
        decided: Callable[[], bool] = lambda: self._qc_decision.pending  # noqa: E731
        if await wait_until(decided, until=sla, timer="manual-qc-sla"):
            return self._take_qc_decision()
        self._case.escalate(
            Role.MANAGER,
            due=deadline,
            reason=f"manual QC SLA of {self._policy.manual_qc_sla} missed",
            counts_as_reminder=True,
        )
        await self._case.flush()
        if await wait_until(decided, until=deadline, timer="manual-qc-deadline"):
            return self._take_qc_decision()
        self._case.audit(
            "qc_default_applied",
            reason=f"no QC decision within {self._policy.manual_qc_deadline}: quarantined, "
            "no refund",
        )
        self._close_task(STEWARD, "expired")
        return None

    def _take_qc_decision(self) -> QcDecisionRecord:
        record = self._qc_decision.take()
        assert record is not None
        self._state.manual_qc = record
        self._case.audit(
            "qc_decided",
            actor=record.actor,
            role=record.role,
            reason=record.reason,
            after={
                "grade": record.grade,
                "outcome": record.outcome,
                "partial_refund_minor": record.partial_refund_minor,
            },
        )
        self._close_task(record.actor, record.grade)
        return record

    # ------------------------------------------------------------ outside

    async def _dispose(self, disposition: Disposition, reason: str) -> None:
        result = await call_outside(
            RECORD_DISPOSITION,
            RecordDispositionInput(
                workflow_id=workflow.info().workflow_id,
                rma_id=self._input.rma_id,
                order_id=self._input.order.order_id,
                market=self._input.order.market,
                lines=self._input.lines,
                disposition=disposition,
                reason=reason,
            ),
            result_type=RecordDispositionResult,
            retry=OUTSIDE_RETRY,
            summary=f"warehouse: {disposition}",
        )
        self._state.disposition = disposition
        self._case.audit(
            f"item_{disposition}",
            reason=reason,
            after={"reference": result.reference, "warehouse": result.warehouse},
        )

    def _history(self, status: ReturnStatus, actor: str, reason: str) -> None:
        self._state.history.append(
            ReturnStatusChange(at=workflow.now(), status=status, actor=actor, reason=reason)
        )

    def _facts(self) -> CaseFacts:
        state = self._state
        return CaseFacts(
            status=state.status,
            details=_details(state, self._money(state.value_minor)),
            amount_minor=state.value_minor,
            currency=state.currency,
            market=state.market,
            awaited_role=state.awaited_role,
            due_at=state.due_at,
        )


def _details(state: ReturnState, money: str) -> str:
    lines = [f"**{state.status.replace('_', ' ').capitalize()}** · return {state.rma_id}"]
    lines.append(
        f"order {state.order_id} · {state.market} · {money} · {state.reason} "
        f"({state.parent_reason}) · wants {state.resolution}"
    )
    if state.qc:
        lines.append(f"3PL QC: {state.qc.grade}")
    if state.manual_qc:
        lines.append(f"Manual QC: {state.manual_qc.grade} by {state.manual_qc.actor}")
    if state.open_dispute:
        lines.append("Open dispute on the order: refunds are frozen")
    if state.claim_workflow_id:
        lines.append(f"Carrier claim {state.claim_workflow_id}")
    if state.awaited_role and state.due_at:
        lines.append(
            f"Waiting for **{state.awaited_role}** · due {state.due_at:%Y-%m-%d %H:%M} UTC"
        )
    elif state.due_at:
        lines.append(f"Next deadline {state.due_at:%Y-%m-%d %H:%M} UTC")
    return "\n\n".join(lines)
