"""The return-to-stock stages of a failed delivery: the parcel back at the
warehouse, inbound QC, restock or quarantine, the carrier claim, and the
refund that waits out a dispute's freeze; with the helpers the whole
workflow shares (customer messages, tasks, the amount).

FailedDeliveryWorkflow (workflows/failed_delivery.py) inherits these stages;
they live in their own module only so that each file reads as one part of
the process. They use the workflow's attributes declared below and nothing
else, and like every workflow module they are replayed: changing what they
do is a `workflow.patched` matter.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.carrier_events import CLAIM_STATUSES, CarrierEvent, TrackingStatus
    from domain.claims import CarrierClaimContract, CarrierClaimInput, ClaimType, claim_policy_for
    from domain.common import Role, format_amount
    from domain.deliveries import (
        INSPECT_RETURNED_PARCEL,
        NOTIFY_DELIVERY_CUSTOMER,
        RESTOCK_RETURNED_PARCEL,
        CustomerMessage,
        DeliveryTemplate,
        FailedDeliveryPolicy,
        FailedDeliveryState,
        FailedDeliveryStatus,
        InspectionGrade,
        InspectParcelInput,
        InspectParcelResult,
        NotifyDeliveryCustomerInput,
        ParcelReceived,
        RestockParcelInput,
        RestockParcelResult,
        ShipmentRecord,
    )
    from domain.ids import carrier_claim_id
    from domain.outcomes import OrderOutcome
    from domain.payments import (
        PAYMENT_REFUSED,
        REFUND_EXCEEDS_CAPTURE,
        REFUND_FROZEN_BY_DISPUTE,
        PaymentOperationInput,
    )
    from workflows.case import (
        CaseBook,
        call_outside,
        outside_retry,
        refund_until_unfrozen,
        start_or_link,
    )
    from workflows.steps import STEWARD, failure_reason, wait_until

OUTSIDE_RETRY = outside_retry(
    PAYMENT_REFUSED,
    REFUND_EXCEEDS_CAPTURE,
    REFUND_FROZEN_BY_DISPUTE,
    "NotificationRejected",
)
# The refund's operation id: one refund per failed delivery, whatever the path.
REFUND_OPERATION = "refund-failed-delivery"
# How long finance has to look at a refund the provider refused.
REFUND_FAILED_TASK_SLA = timedelta(days=2)


class FailedDeliveryReturn:
    """Return to stock, claims and the refund, for FailedDeliveryWorkflow."""

    # The workflow's own attributes (set in FailedDeliveryWorkflow.__init__).
    _shipment: ShipmentRecord
    _policy: FailedDeliveryPolicy
    _state: FailedDeliveryState
    _case: CaseBook
    _latest: dict[str, CarrierEvent]
    _parcel_received: ParcelReceived | None
    _message_sequence: int

    # ------------------------------------------------------ return to stock

    async def _return_and_refund(
        self, *, parcel_expected: bool, tracking: str | None = None
    ) -> None:
        tracking = tracking or self._shipment.tracking_number
        shipment_id = (
            self._state.reship_shipment_id
            if tracking != self._shipment.tracking_number
            else self._shipment.shipment_id
        )
        assert shipment_id is not None
        if parcel_expected:
            until = workflow.now() + self._policy.return_timeout
            self._state.due_at = until
            self._state.awaited_role = None
            self._case.transition(
                FailedDeliveryStatus.AWAITING_RETURN, STEWARD, "waiting for the parcel"
            )
            await self._case.flush()
            await wait_until(
                lambda: self._parcel_received is not None or self._lost(tracking),
                until=until,
                timer="parcel-return-deadline",
            )
            if self._parcel_received is not None:
                await self._inspect_and_restock(shipment_id)
            else:
                latest = self._latest.get(tracking)
                damaged = latest is not None and latest.status is TrackingStatus.DAMAGED
                self._case.audit(
                    "parcel_not_returned",
                    reason=f"carrier reported {latest.status}"
                    if self._lost(tracking) and latest
                    else f"not back at the warehouse by {until.isoformat()}",
                )
                await self._open_claim(
                    shipment_id, tracking, ClaimType.DAMAGED if damaged else ClaimType.LOST
                )
        await self._refund()

    async def _inspect_and_restock(self, shipment_id: str) -> None:
        self._case.transition(FailedDeliveryStatus.INSPECTING, STEWARD, "inbound QC")
        await self._case.flush()
        inspection = await call_outside(
            INSPECT_RETURNED_PARCEL,
            InspectParcelInput(
                workflow_id=workflow.info().workflow_id,
                shipment_id=shipment_id,
                order_id=self._state.order_id,
            ),
            result_type=InspectParcelResult,
            retry=OUTSIDE_RETRY,
            summary="inbound QC",
        )
        self._state.inspection_grade = inspection.grade
        self._case.audit(
            "parcel_inspected",
            actor="warehouse",
            reason=inspection.notes or inspection.grade,
            after={"grade": inspection.grade},
        )
        if inspection.grade is InspectionGrade.RESELLABLE:
            restock = await call_outside(
                RESTOCK_RETURNED_PARCEL,
                RestockParcelInput(
                    workflow_id=workflow.info().workflow_id,
                    shipment_id=shipment_id,
                    order_id=self._state.order_id,
                    skus=[item.sku for item in self._shipment.order.items],
                ),
                result_type=RestockParcelResult,
                retry=OUTSIDE_RETRY,
                summary="restock",
            )
            self._case.audit("restocked", actor="warehouse", reason=restock.location)
        else:
            # Damaged on the way back: quarantined, and the carrier pays for it.
            self._case.audit("parcel_quarantined", actor="warehouse", reason=inspection.notes)
            tracking = (
                self._state.reship_tracking_number
                if shipment_id == self._state.reship_shipment_id
                and self._state.reship_tracking_number
                else self._shipment.tracking_number
            )
            await self._open_claim(shipment_id, tracking, ClaimType.DAMAGED)

    # --------------------------------------------------------------- claims

    async def _open_claim(self, shipment_id: str, tracking: str, claim_type: ClaimType) -> None:
        claim_id = carrier_claim_id(self._shipment.carrier, tracking)
        if claim_id in self._state.claim_workflow_ids:
            return
        shipment = self._shipment.model_copy(
            update={"shipment_id": shipment_id, "tracking_number": tracking}
        )
        # The claim outlives this case: it waits weeks for the carrier. When
        # the webhook opened it first, the case links to it.
        opened = await start_or_link(
            CarrierClaimContract.WORKFLOW_TYPE,
            CarrierClaimInput(
                carrier=self._shipment.carrier,
                tracking_number=tracking,
                claim_type=claim_type,
                reported_at=workflow.now(),
                reason=f"opened by the failed delivery of {self._shipment.shipment_id}",
                shipment=shipment,
                policy=claim_policy_for(self._shipment.carrier, claim_type),
                remedy_workflow_id=workflow.info().workflow_id,
            ),
            id=claim_id,
            summary=f"Carrier claim {self._shipment.carrier} {tracking} ({claim_type})",
        )
        self._state.claim_workflow_ids.append(claim_id)
        self._case.audit(
            "carrier_claim_opened" if opened else "carrier_claim_linked",
            reason=f"{claim_type} parcel {tracking}",
            after={"claim_workflow_id": claim_id},
        )
        await self._case.flush()

    # --------------------------------------------------------------- refund

    async def _refund(self) -> None:
        payment = self._shipment.order.payment
        operation = PaymentOperationInput(
            workflow_id=workflow.info().workflow_id,
            operation_id=REFUND_OPERATION,
            order_id=self._state.order_id,
            provider=payment.provider,
            authorisation_ref=payment.authorisation_ref,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            reason="failed delivery: returned to stock",
        )
        self._state.awaited_role = None
        self._state.due_at = None
        self._case.transition(FailedDeliveryStatus.REFUNDING, STEWARD, "refunding the order")
        await self._case.flush()
        give_up_at = workflow.now() + self._policy.refund_freeze_deadline
        refund = await refund_until_unfrozen(
            operation,
            retry=OUTSIDE_RETRY,
            summary="refund the order",
            recheck_every=self._policy.refund_freeze_recheck,
            give_up_at=give_up_at,
            on_frozen=lambda failure, _since: self._refund_frozen(failure, give_up_at),
            on_gave_up=self._refund_left_to_dispute,
            on_failed=self._refund_failed,
        )
        if refund is None:
            return
        if self._state.status is FailedDeliveryStatus.REFUND_FROZEN:
            # The freeze lifted: finance's refund_frozen task is done.
            self._close_task(STEWARD, "refunded")
        self._state.refund_reference = refund.provider_reference
        self._case.audit(
            "refunded",
            reason=refund.idempotency_key,
            after={
                "amount_minor": refund.amount_minor,
                "currency": refund.currency,
                "provider_reference": refund.provider_reference,
            },
        )
        self._case.transition(FailedDeliveryStatus.REFUNDED, STEWARD, f"refunded {self._money()}")
        self._case.record_outcome(OrderOutcome.REFUNDED, self._state.order_id)
        await self._case.flush()
        await self._notify(DeliveryTemplate.REFUNDED)

    async def _refund_frozen(self, failure: ActivityError, give_up_at: datetime) -> None:
        # A dispute freezes the order's refunds: finance sees why it waits,
        # and Steward re-checks until the deadline.
        self._open_task("refund_frozen", give_up_at, Role.FINANCE)
        self._case.audit(
            "refund_frozen",
            reason=failure_reason(failure),
            after={
                "recheck_every": str(self._policy.refund_freeze_recheck),
                "give_up_at": give_up_at,
            },
        )
        self._case.transition(
            FailedDeliveryStatus.REFUND_FROZEN, STEWARD, "open dispute on the order"
        )
        await self._case.flush()

    async def _refund_left_to_dispute(self) -> None:
        self._case.audit(
            "refund_left_to_dispute",
            reason="refunds still frozen at the deadline; the dispute settles the money",
        )
        self._close_task(STEWARD, "left to the dispute")
        self._case.transition(FailedDeliveryStatus.CLOSED, STEWARD, "refund left to the dispute")
        await self._case.flush()

    async def _refund_failed(self, failure: ActivityError) -> None:
        reason = failure_reason(failure)
        self._case.audit("refund_failed", reason=reason)
        self._open_task("refund_failed", workflow.now() + REFUND_FAILED_TASK_SLA, Role.FINANCE)
        self._case.transition(FailedDeliveryStatus.CLOSED, STEWARD, f"refund failed: {reason}")
        await self._case.flush()

    # ------------------------------------------------------------- shared

    def _lost(self, tracking: str) -> bool:
        latest = self._latest.get(tracking)
        return latest is not None and latest.status in CLAIM_STATUSES

    async def _notify(
        self, template: DeliveryTemplate, *, deadline: datetime | None = None
    ) -> None:
        self._message_sequence += 1
        workflow_id = workflow.info().workflow_id

        def sent(message_id: str) -> None:
            self._state.messages.append(
                CustomerMessage(message_id=message_id, template=template, sent_at=workflow.now())
            )

        # A bounced address must not stop the case: it goes on the record
        # and the deadline still applies.
        await self._case.notify(
            NOTIFY_DELIVERY_CUSTOMER,
            NotifyDeliveryCustomerInput(
                workflow_id=workflow_id,
                message_id=f"{workflow_id}/{template}/{self._message_sequence}",
                order_id=self._state.order_id,
                # A pseudonymised shipment's email is a placeholder: the
                # activity reads the recipient by the shipment's subject id.
                email=str(self._shipment.order.customer.email),
                subject_id=self._shipment.subject_id,
                template=template,
                options=self._state.options_offered if deadline else [],
                deadline=deadline,
            ),
            template=template,
            retry=OUTSIDE_RETRY,
            after={"deadline": deadline},
            tolerate_failure=True,
            on_sent=lambda result: sent(result.message_id),
        )

    def _open_task(self, kind: str, due: datetime, role: Role) -> None:
        self._case.open_human_task(
            f"failed_delivery_{kind}",
            f"Failed delivery {self._state.shipment_id} · order {self._state.order_id} · "
            f"{self._money()} · {kind.replace('_', ' ')}",
            role,
            due,
            # One task of each kind per case: its id is `{workflow id}/{kind}/1`.
            task_key=kind,
            sequence=1,
        )

    def _close_task(self, actor: str, outcome: str) -> None:
        self._case.close_human_task(actor, outcome)

    def _money(self) -> str:
        return format_amount(self._state.amount_minor, self._state.currency)
