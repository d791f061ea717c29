"""Fulfilment: `fulfilment:{order_id}`, from release to the carrier.

released -> allocated -> picking -> packing -> packed -> handed_to_carrier ->
delivered, or cancelled. Fed by warehouse (WMS) events: a signal carrying the
event id (de-duplicated) and the warehouse time (events are applied in
warehouse-time order; one for a state already passed is recorded as stale and
ignored).

Owns every change before the parcel leaves, each an update whose validator
refuses with the field and the reason (nothing enters history) and whose
handler applies it under one lock, so two changes and a warehouse event never
interleave:
- holds (several at once, each with a handle and a reason), told to the
  warehouse, which does not pick an order with an active hold;
- address changes: until packing starts the warehouse gets the new address
  (rescored first when the order is above the market's value threshold or
  the country changes); from packing until handover the carrier is asked to
  intercept; after handover the update is refused;
- special delivery arrangements, applied to the shipment booked at handover;
- outbound QC: a triggered verdict (decided at release by the versioned rule
  set) places an `outbound_qc` hold and a task for warehouse QA with SLA,
  reminder and escalation; pass releases the hold, fail allocates a
  replacement unit or escalates to the senior QA coordinator (manager), who
  cancels with a refund or waits;
- an early fraud warning: a `high_risk_of_fraud` hold; contest releases it,
  accept cancels the order, refunds the captured amount once (fixed
  idempotency key) and tells the customer.

No address in the state: the personal-data store keeps it, the state keeps
its subject id and a keyed fingerprint. The edges send an address change as
`address_subject_id` (issue 21), so no address reaches the history either;
the old shape (`address` in the update) issues the same commands.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (see workflows/order_review.py)

    from domain.common import Role, format_amount
    from domain.fulfilment import (
        ALLOCATE_REPLACEMENT_UNIT,
        APPLY_ADDRESS_CHANGE,
        BOOK_FULFILMENT_SHIPMENT,
        CANCEL_WAREHOUSE_ORDER,
        CLOSED_FULFILMENT_STATUSES,
        EVENT_STATUS,
        FULFILMENT,
        FULFILMENT_CHANGE_REJECTED,
        LEFT_WAREHOUSE,
        NOTIFY_FULFILMENT_CUSTOMER,
        PACKING_OR_LATER,
        PACKING_STARTED,
        REQUEST_CARRIER_INTERCEPT,
        SET_WAREHOUSE_HOLD,
        AddressChange,
        ApplyAddressInput,
        ApplyAddressResult,
        BookShipmentInput,
        BookShipmentResult,
        CancelWarehouseInput,
        ChangeAddressInput,
        ChangeAddressOutcome,
        FraudWarning,
        FraudWarningAction,
        FulfilmentContract,
        FulfilmentInput,
        FulfilmentRejected,
        FulfilmentResult,
        FulfilmentState,
        FulfilmentStatus,
        FulfilmentStatusChange,
        FulfilmentTemplate,
        Hold,
        HoldReason,
        InterceptInput,
        InterceptOutcome,
        InterceptResult,
        NotifyFulfilmentInput,
        PlaceHoldInput,
        QcCheck,
        QcDecisionInput,
        QcOutcome,
        ReallocateInput,
        Reallocation,
        ReleaseHoldInput,
        ReplacementInput,
        ReplacementResult,
        SpecialDelivery,
        SpecialDeliveryInput,
        WarehouseEvent,
        WarehouseEventKind,
        WarehouseHoldInput,
        start_facts,
        validate_change_address,
        validate_place_hold,
        validate_qc_decision,
        validate_reallocate,
        validate_release_hold,
        validate_special_delivery,
        wms_rank,
    )
    from domain.payments import (
        PAYMENT_BUSINESS_REFUSALS,
        REFUND_PAYMENT,
        PaymentOperationInput,
        PaymentOperationResult,
    )
    from domain.risk_rules import thresholds_for
    from workflows import visibility
    from workflows.case import CaseBook, CaseFacts, call_outside, outside_retry
    from workflows.steps import STEWARD, failure_reason, failure_type

OUTSIDE_RETRY = outside_retry(PACKING_STARTED, "AddressInvalid", *PAYMENT_BUSINESS_REFUSALS)
# Warehouse QA's outbound check: reminded after 2 h, escalated to the senior
# QA coordinator (manager) at 4 h; an escalated task is due in a day.
QC_SLA = timedelta(hours=4)
QC_REMINDER_AFTER = timedelta(hours=2)
ESCALATED_SLA = timedelta(hours=24)
# One refund per fulfilment, whatever cancels it (fraud warning, QC): the
# idempotency key is `fulfilment:{order_id}/cancel-refund`.
CANCEL_REFUND_OPERATION = "cancel-refund"
FRAUD_HOLD_PREFIX = "fraud-"
QC_HOLD = "outbound-qc"


def _rejected(refused: ValueError) -> ApplicationError:
    return ApplicationError(str(refused), type=FULFILMENT_CHANGE_REJECTED)


class _FulfilmentBook(CaseBook):
    """The case book, plus the active holds as a search attribute
    (`StewardHolds`), published with every other attribute of the step."""

    def refresh(self) -> None:
        super().refresh()
        reasons = sorted({h.reason.value for h in self.state.holds if h.released_at is None})
        self.search_attribute_updates = [
            *self.search_attribute_updates,
            visibility.HOLDS.value_set(reasons) if reasons else visibility.HOLDS.value_unset(),
        ]


@workflow.defn(name=FulfilmentContract.WORKFLOW_TYPE)
class FulfilmentWorkflow:
    @workflow.init
    def __init__(self, input: FulfilmentInput) -> None:
        self._input = input
        self._state = FulfilmentState(
            order_id=input.order_id,
            market=input.market,
            site=input.site,
            status=FulfilmentStatus.RELEASED,
            amount_minor=input.amount_minor,
            currency=input.currency,
            address_fingerprint=input.address_fingerprint,
            address_ref=input.address_ref,
            destination_country=input.destination_country,
        )
        self._case = _FulfilmentBook(
            FULFILMENT,
            lambda: self._state.order_id,
            state=self._state,
            facts=self._facts,
            history=self._history,
            closed=CLOSED_FULFILMENT_STATUSES,
            order_id=lambda: self._state.order_id,
        )
        # One change at a time: updates and warehouse events are applied in turn.
        self._lock = asyncio.Lock()
        self._events: list[WarehouseEvent] = []
        self._warnings: list[FraudWarning] = []
        self._hold_sequence = 0
        self._change_sequence = 0
        self._qc_round = 0
        self._qc_due: datetime | None = None
        self._qc_reminded = False
        self._refunded_minor = 0
        self._messages = 0
        # Warehouse time of the event being applied, for the status history.
        self._event_time: datetime | None = None

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, input: FulfilmentInput) -> FulfilmentResult:
        if input.revision < 3:
            self._start_rows(input)
        # From revision 3 the starter wrote them: with no hold to place, this
        # first workflow task issues no command at all.
        async with self._lock:
            if input.fraud_warning_ref:
                # The warning came before the release: held from the first moment.
                await self._place_hold(
                    HoldReason.HIGH_RISK_OF_FRAUD,
                    STEWARD,
                    Role.SYSTEM,
                    f"early fraud warning ({input.fraud_warning_ref}) before release",
                    handle=self._fraud_handle(input.fraud_warning_ref),
                    flush=False,
                )
            if input.qc is not None and input.qc.needed:
                await self._start_qc(input)
            await self._case.flush()

        while self._state.status not in CLOSED_FULFILMENT_STATUSES:
            await self._wait_for_work()
            async with self._lock:
                await self._on_deadlines()
                await self._apply_events()
                await self._apply_warnings()
        await self._case.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return FulfilmentResult(
            order_id=self._state.order_id,
            status=self._state.status,
            refunded_minor=self._refunded_minor,
            currency=self._state.currency,
        )

    def _start_rows(self, input: FulfilmentInput) -> None:
        """Revisions 1 and 2: the start's audit row and case row (and, at
        revision 1, its search attributes) from the first step."""
        self._case.audit(
            "fulfilment_started",
            reason=f"released to {input.site} ({input.release_id})",
            after=start_facts(input),
        )
        self._case.refresh()
        if input.revision >= 2:
            # The starter set process, market and status: publishing them again
            # would be one more event on every order (revision 2).
            self._case.search_attribute_updates = []

    async def _wait_for_work(self) -> None:
        def ready() -> bool:
            return bool(self._events or self._warnings) or (
                self._state.status in CLOSED_FULFILMENT_STATUSES
            )

        deadline = self._next_deadline()
        if deadline is None:
            await workflow.wait_condition(ready)
            return
        remaining = deadline - workflow.now()
        if remaining <= timedelta(0):
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(ready, timeout=remaining, timeout_summary="qc-sla")

    # ------------------------------------------------------------- handlers

    @workflow.query(name=FulfilmentContract.QUERY_STATUS)
    def status(self) -> FulfilmentState:
        return self._state

    @workflow.signal(name=FulfilmentContract.SIGNAL_WAREHOUSE_EVENT)
    def warehouse_event(self, event: WarehouseEvent) -> None:
        if event.order_id != self._state.order_id:
            return
        if not self._case.first_time(event.event_id):
            return
        self._events.append(event)

    @workflow.signal(name=FulfilmentContract.SIGNAL_FRAUD_WARNING)
    def fraud_warning(self, warning: FraudWarning) -> None:
        if not self._case.first_time(warning.event_id):
            return
        self._warnings.append(warning)

    def _check(self, rule: Any) -> None:
        if self._state.status in CLOSED_FULFILMENT_STATUSES:
            raise ApplicationError(
                f"order_id: fulfilment of {self._state.order_id} is {self._state.status}",
                type=FULFILMENT_CHANGE_REJECTED,
            )
        try:
            rule()
        except FulfilmentRejected as refused:
            raise _rejected(refused) from None

    @workflow.update(name=FulfilmentContract.UPDATE_PLACE_HOLD)
    async def place_hold(self, change: PlaceHoldInput) -> FulfilmentState:
        async with self._lock:
            self._check(lambda: validate_place_hold(self._state, change))
            assert change.actor is not None and change.role is not None
            existing = next((h for h in self._state.holds if h.handle == change.handle), None)
            if existing is None or not existing.active:
                await self._place_hold(
                    change.reason, change.actor, change.role, change.note, handle=change.handle
                )
            return self._state

    @place_hold.validator
    def _validate_place_hold(self, change: PlaceHoldInput) -> None:
        self._check(lambda: validate_place_hold(self._state, change))

    @workflow.update(name=FulfilmentContract.UPDATE_RELEASE_HOLD)
    async def release_hold(self, change: ReleaseHoldInput) -> FulfilmentState:
        async with self._lock:
            self._check(lambda: validate_release_hold(self._state, change))
            assert change.actor is not None and change.role is not None
            hold = next(h for h in self._state.holds if h.handle == change.handle)
            if hold.active:
                if hold.reason is HoldReason.OUTBOUND_QC:
                    # A manager lifts the QC hold by hand: the QA task ends with it.
                    self._case.close_human_task(change.actor, "released by hand")
                    self._qc_due = None
                await self._release_hold(hold, change.actor, change.role, change.note)
            return self._state

    @release_hold.validator
    def _validate_release_hold(self, change: ReleaseHoldInput) -> None:
        self._check(lambda: validate_release_hold(self._state, change))

    @workflow.update(name=FulfilmentContract.UPDATE_CHANGE_ADDRESS)
    async def change_address(self, change: ChangeAddressInput) -> FulfilmentState:
        async with self._lock:
            self._check(lambda: validate_change_address(self._state, change))
            await self._change_address(change)
            return self._state

    @change_address.validator
    def _validate_change_address(self, change: ChangeAddressInput) -> None:
        self._check(lambda: validate_change_address(self._state, change))

    @workflow.update(name=FulfilmentContract.UPDATE_SPECIAL_DELIVERY)
    async def special_delivery(self, change: SpecialDeliveryInput) -> FulfilmentState:
        async with self._lock:
            self._check(lambda: validate_special_delivery(self._state, change, workflow.now()))
            assert change.actor is not None and change.role is not None
            before = self._state.special_delivery
            self._state.special_delivery = SpecialDelivery(
                kind=change.kind,
                window_start=change.window_start,
                window_end=change.window_end,
                carrier=change.carrier,
                service=change.service,
                store_id=change.store_id,
                set_by=change.actor,
                set_at=workflow.now(),
            )
            self._case.audit(
                "special_delivery_arranged",
                actor=change.actor,
                role=change.role,
                reason=change.note or change.kind,
                before={"special_delivery": _arrangement(before)},
                after={"special_delivery": _arrangement(self._state.special_delivery)},
            )
            self._case.refresh()
            await self._case.flush()
            return self._state

    @special_delivery.validator
    def _validate_special_delivery(self, change: SpecialDeliveryInput) -> None:
        self._check(lambda: validate_special_delivery(self._state, change, workflow.now()))

    @workflow.update(name=FulfilmentContract.UPDATE_QC_DECISION)
    async def qc_decision(self, change: QcDecisionInput) -> FulfilmentState:
        async with self._lock:
            self._check(lambda: validate_qc_decision(self._state, change))
            await self._apply_qc_decision(change)
            return self._state

    @qc_decision.validator
    def _validate_qc_decision(self, change: QcDecisionInput) -> None:
        self._check(lambda: validate_qc_decision(self._state, change))

    @workflow.update(name=FulfilmentContract.UPDATE_REALLOCATE)
    async def reallocate(self, change: ReallocateInput) -> FulfilmentState:
        """Issue 17: a mis-pick. Another unit for the order (a new update:
        runs that never receive it issue the same commands as before)."""
        async with self._lock:
            self._check(lambda: validate_reallocate(self._state, change))
            if not any(r.reference == change.reference for r in self._state.reallocations):
                await self._reallocate(change)
            return self._state

    @reallocate.validator
    def _validate_reallocate(self, change: ReallocateInput) -> None:
        self._check(lambda: validate_reallocate(self._state, change))

    async def _reallocate(self, change: ReallocateInput) -> None:
        """Ask the warehouse for another unit; none in stock: an inventory
        hold keeps the order until one comes (as an out-of-stock event does)."""
        state = self._state
        assert change.actor is not None and change.role is not None
        earlier = len(state.reallocations) + (state.qc.replacement_units if state.qc else 0)
        unit = await call_outside(
            ALLOCATE_REPLACEMENT_UNIT,
            ReplacementInput(
                workflow_id=workflow.info().workflow_id,
                order_id=state.order_id,
                attempt=earlier + 1,
                skus=[i.sku for i in self._input.items],
            ),
            result_type=ReplacementResult,
            retry=OUTSIDE_RETRY,
        )
        state.reallocations.append(
            Reallocation(
                reference=change.reference,
                allocated=unit.allocated,
                detail=unit.detail,
                requested_by=change.actor,
                requested_at=workflow.now(),
            )
        )
        self._case.audit(
            "reallocated" if unit.allocated else "reallocation_unavailable",
            actor=change.actor,
            role=change.role,
            reason=change.note or unit.detail or "mis-pick",
            after={"reference": change.reference, "detail": unit.detail},
        )
        if not unit.allocated and not any(
            h.active and h.reason is HoldReason.INVENTORY for h in state.holds
        ):
            await self._place_hold(
                HoldReason.INVENTORY,
                change.actor,
                change.role,
                "mis-pick: no unit to re-allocate",
                flush=False,
            )
        self._case.refresh()
        await self._case.flush()

    # ---------------------------------------------------------------- holds

    async def _place_hold(
        self,
        reason: HoldReason,
        actor: str,
        role: Role,
        note: str,
        *,
        handle: str | None = None,
        flush: bool = True,
    ) -> Hold:
        if handle is None:
            self._hold_sequence += 1
            handle = f"{reason.replace('_', '-')}-{self._hold_sequence}"
        hold = Hold(
            handle=handle,
            reason=reason,
            placed_by=actor,
            role=role,
            note=note,
            placed_at=workflow.now(),
        )
        self._state.holds = [h for h in self._state.holds if h.handle != handle] + [hold]
        await self._tell_warehouse(hold, active=True)
        self._case.audit(
            "hold_placed",
            actor=actor,
            role=role,
            reason=note or reason,
            after={"handle": handle, "reason": reason, "status": self._state.status},
        )
        self._case.refresh()
        if flush:
            await self._case.flush()
        return hold

    async def _release_hold(
        self, hold: Hold, actor: str, role: Role, note: str, *, flush: bool = True
    ) -> None:
        hold.released_at = workflow.now()
        hold.released_by = actor
        hold.release_note = note
        await self._tell_warehouse(hold, active=False)
        self._case.audit(
            "hold_released",
            actor=actor,
            role=role,
            reason=note or f"{hold.reason} hold released",
            before={"handle": hold.handle, "reason": hold.reason, "placed_by": hold.placed_by},
            after={"handle": hold.handle, "reason": hold.reason},
        )
        self._case.refresh()
        if flush:
            await self._case.flush()

    async def _tell_warehouse(self, hold: Hold, *, active: bool) -> None:
        await call_outside(
            SET_WAREHOUSE_HOLD,
            WarehouseHoldInput(
                workflow_id=workflow.info().workflow_id,
                order_id=self._state.order_id,
                handle=hold.handle,
                reason=hold.reason,
                active=active,
            ),
            result_type=type(None),
            retry=OUTSIDE_RETRY,
        )

    # -------------------------------------------------------------- events

    async def _apply_events(self) -> None:
        if not self._events:
            return
        # Warehouse time decides the order, not arrival.
        events = sorted(self._events, key=lambda e: (e.occurred_at, e.event_id))
        self._events.clear()
        for event in events:
            await self._apply_event(event)
        self._case.refresh()
        await self._case.flush()

    async def _apply_event(self, event: WarehouseEvent) -> None:
        state = self._state
        record = {
            "event_id": event.event_id,
            "kind": event.kind,
            "occurred_at": event.occurred_at,
            "site": event.site,
        }
        if event.kind is WarehouseEventKind.PICK_REFUSED:
            self._case.audit(
                "pick_refused", actor="warehouse", reason=event.note or "active hold", after=record
            )
            return
        if event.kind is WarehouseEventKind.OUT_OF_STOCK:
            self._case.audit(
                "out_of_stock", actor="warehouse", reason=event.note or "no unit", after=record
            )
            if not any(h.active and h.reason is HoldReason.INVENTORY for h in state.holds):
                await self._place_hold(
                    HoldReason.INVENTORY,
                    "warehouse",
                    Role.SYSTEM,
                    event.note or "no unit to allocate",
                    flush=False,
                )
            return
        target = EVENT_STATUS[event.kind]
        if state.status in CLOSED_FULFILMENT_STATUSES or wms_rank(target) <= wms_rank(state.status):
            self._case.audit(
                "warehouse_event_stale",
                actor="warehouse",
                reason=f"{event.kind} at {event.occurred_at.isoformat()} after {state.status}",
                after=record,
            )
            return
        if target is FulfilmentStatus.CANCELLED:
            await self._cancel(
                f"cancelled by the warehouse: {event.note or 'no reason'}", "warehouse"
            )
            return
        active = state.active_holds
        if active and target is FulfilmentStatus.PICKING:
            # The warehouse was told; it picked anyway. Record it loudly.
            self._case.audit(
                "picked_despite_hold",
                actor="warehouse",
                reason=", ".join(h.handle for h in active),
                after=record,
            )
        if event.carrier:
            state.carrier = event.carrier
        if event.tracking_number:
            state.tracking_number = event.tracking_number
        state.last_event_at = event.occurred_at
        self._event_time = event.occurred_at
        self._case.transition(target, "warehouse", f"{event.kind} at {event.site or state.site}")
        if target is FulfilmentStatus.HANDED_TO_CARRIER:
            await self._book_shipment()

    def _history(self, status: FulfilmentStatus, actor: str, reason: str) -> None:
        self._state.history.append(
            FulfilmentStatusChange(
                at=workflow.now(),
                status=status,
                actor=actor,
                reason=reason,
                occurred_at=self._event_time,
            )
        )
        self._event_time = None

    async def _book_shipment(self) -> None:
        state = self._state
        if not (state.carrier and state.tracking_number):
            self._case.audit("shipment_not_booked", reason="handover without carrier or tracking")
            return
        try:
            booked = await call_outside(
                BOOK_FULFILMENT_SHIPMENT,
                BookShipmentInput(
                    workflow_id=workflow.info().workflow_id,
                    order_id=state.order_id,
                    carrier=state.carrier,
                    tracking_number=state.tracking_number,
                    address_ref=state.address_ref,
                    special_delivery=state.special_delivery,
                ),
                result_type=BookShipmentResult,
                retry=OUTSIDE_RETRY,
            )
        except ActivityError as failure:
            # The parcel left all the same: the carrier's scans still arrive.
            self._case.audit("shipment_not_booked", reason=failure_reason(failure))
            return
        self._case.audit(
            "shipment_booked",
            actor=state.carrier,
            reason=f"{state.carrier} {state.tracking_number}",
            after={
                "shipment_id": booked.shipment_id,
                "special_delivery": _arrangement(state.special_delivery),
            },
        )

    # -------------------------------------------------------- fraud warning

    async def _apply_warnings(self) -> None:
        while self._warnings:
            warning = self._warnings.pop(0)
            if self._state.status in CLOSED_FULFILMENT_STATUSES:
                self._case.audit(
                    "fraud_warning_ignored",
                    actor=warning.actor,
                    reason=f"{warning.action}: fulfilment is {self._state.status}",
                    after={"dispute_workflow_id": warning.dispute_workflow_id},
                )
                continue
            handle = self._fraud_handle(warning.dispute_workflow_id)
            hold = next((h for h in self._state.holds if h.handle == handle and h.active), None)
            if warning.action is FraudWarningAction.HOLD:
                if hold is None and self._state.status not in LEFT_WAREHOUSE:
                    await self._place_hold(
                        HoldReason.HIGH_RISK_OF_FRAUD,
                        warning.actor,
                        Role.SYSTEM,
                        warning.note or f"early fraud warning ({warning.dispute_workflow_id})",
                        handle=handle,
                        flush=False,
                    )
            elif warning.action is FraudWarningAction.CONTEST:
                if hold is not None:
                    await self._release_hold(
                        hold,
                        warning.actor,
                        Role.SYSTEM,
                        warning.note or "early fraud warning contested",
                        flush=False,
                    )
            else:
                await self._cancel(
                    warning.note or "early fraud warning accepted", warning.actor, refund=True
                )
            await self._case.flush()

    def _fraud_handle(self, dispute_workflow_id: str) -> str:
        key = "".join(c if c.isalnum() else "-" for c in dispute_workflow_id.lower())
        return f"{FRAUD_HOLD_PREFIX}{key}"[:64]

    # ------------------------------------------------------------ cancelling

    async def _cancel(self, reason: str, actor: str, *, refund: bool = False) -> None:
        """Cancel at the warehouse, refund the captured amount once, tell the customer."""
        state = self._state
        if state.status in CLOSED_FULFILMENT_STATUSES:
            return
        if state.status in LEFT_WAREHOUSE:
            self._case.audit(
                "cancel_refused", actor=actor, reason=f"{reason}: the parcel is {state.status}"
            )
            await self._case.flush()
            return
        await call_outside(
            CANCEL_WAREHOUSE_ORDER,
            CancelWarehouseInput(
                workflow_id=workflow.info().workflow_id, order_id=state.order_id, reason=reason
            ),
            result_type=type(None),
            retry=OUTSIDE_RETRY,
        )
        state.cancel_reason = reason
        if refund and state.refund_reference is None:
            payment = self._input.payment
            try:
                refunded = await call_outside(
                    REFUND_PAYMENT,
                    PaymentOperationInput(
                        workflow_id=workflow.info().workflow_id,
                        operation_id=CANCEL_REFUND_OPERATION,
                        order_id=state.order_id,
                        provider=payment.provider,
                        authorisation_ref=payment.authorisation_ref,
                        amount_minor=payment.captured_minor,
                        currency=payment.currency,
                        reason=reason,
                    ),
                    result_type=PaymentOperationResult,
                    retry=OUTSIDE_RETRY,
                    summary="refund the cancelled order",
                )
            except ActivityError as failure:
                self._case.audit(
                    "refund_failed",
                    reason=failure_reason(failure),
                    after={"type": failure_type(failure)},
                )
                self._case.open_human_task(
                    "fulfilment_refund_failed",
                    f"Refund of cancelled order {state.order_id} failed: "
                    f"{format_amount(payment.captured_minor, payment.currency)}",
                    Role.FINANCE,
                    workflow.now() + ESCALATED_SLA,
                )
            else:
                state.refund_reference = refunded.provider_reference
                self._refunded_minor = refunded.amount_minor
                self._case.audit(
                    "payment_refunded",
                    reason=refunded.idempotency_key,
                    after={
                        "amount_minor": refunded.amount_minor,
                        "currency": refunded.currency,
                        "provider_reference": refunded.provider_reference,
                    },
                )
        for hold in state.active_holds:
            hold.released_at = workflow.now()
            hold.released_by = STEWARD
            hold.release_note = "order cancelled"
            self._case.audit(
                "hold_released",
                reason="order cancelled",
                after={"handle": hold.handle, "reason": hold.reason},
            )
        self._case.close_human_task(actor, "order cancelled")
        self._qc_due = None
        self._case.transition(FulfilmentStatus.CANCELLED, actor, reason)
        await self._case.flush()
        await self._notify(FulfilmentTemplate.ORDER_CANCELLED)

    async def _notify(self, template: FulfilmentTemplate) -> None:
        self._messages += 1
        await self._case.notify(
            NOTIFY_FULFILMENT_CUSTOMER,
            NotifyFulfilmentInput(
                workflow_id=workflow.info().workflow_id,
                message_id=f"{workflow.info().workflow_id}/{template}/{self._messages}",
                order_id=self._state.order_id,
                template=template,
            ),
            template=template,
            retry=OUTSIDE_RETRY,
            tolerate_failure=True,
        )

    # -------------------------------------------------------- address change

    async def _change_address(self, change: ChangeAddressInput) -> None:
        state = self._state
        assert change.actor is not None and change.role is not None
        self._change_sequence += 1
        number = self._change_sequence
        thresholds = thresholds_for(state.market)
        high_value = state.amount_minor >= thresholds.amounts_for(state.currency).high_value_minor
        before_status = state.status
        packing = state.status in PACKING_OR_LATER
        if change.address is not None:
            # The old shape (the address itself): the workflow sees the country.
            rescore = high_value or change.address.country != state.destination_country
            apply = ApplyAddressInput(
                workflow_id=workflow.info().workflow_id,
                order_id=state.order_id,
                change_no=number,
                address=change.address,
                rescore=rescore,
                send_to_warehouse=not packing,
            )
        else:
            # Issue 21: only the subject id; the activity reads the address and
            # rescores a new country itself (same commands as the old shape).
            rescore = high_value
            apply = ApplyAddressInput(
                workflow_id=workflow.info().workflow_id,
                order_id=state.order_id,
                change_no=number,
                address_subject_id=change.address_subject_id,
                rescore=high_value,
                destination_country=state.destination_country,
                send_to_warehouse=not packing,
            )
        try:
            applied = await call_outside(
                APPLY_ADDRESS_CHANGE,
                apply,
                result_type=ApplyAddressResult,
                retry=OUTSIDE_RETRY,
            )
        except ActivityError as failure:
            if failure_type(failure) != PACKING_STARTED:
                reason = failure_reason(failure)
                raise ApplicationError(
                    reason if reason.startswith("address_subject_id:") else f"address: {reason}",
                    type=FULFILMENT_CHANGE_REJECTED,
                ) from None
            # The packing event raced the change: the label is printed, intercept.
            packing = True
            applied = await call_outside(
                APPLY_ADDRESS_CHANGE,
                apply.model_copy(update={"send_to_warehouse": False}),
                result_type=ApplyAddressResult,
                retry=OUTSIDE_RETRY,
            )
            self._case.audit(
                "address_change_raced_packing",
                actor="warehouse",
                reason="packing started before the warehouse took the new address",
            )
        if applied.rescored is not None:
            rescore = applied.rescored
        fee = 0
        if packing:
            intercept = await call_outside(
                REQUEST_CARRIER_INTERCEPT,
                InterceptInput(
                    workflow_id=workflow.info().workflow_id,
                    order_id=state.order_id,
                    change_no=number,
                    address_ref=applied.address_ref,
                    carrier=state.carrier,
                    tracking_number=state.tracking_number,
                ),
                result_type=InterceptResult,
                retry=OUTSIDE_RETRY,
            )
            fee = intercept.fee_minor
            outcome = (
                ChangeAddressOutcome.INTERCEPT_REDIRECTED
                if intercept.outcome is InterceptOutcome.REDIRECTED
                else ChangeAddressOutcome.INTERCEPT_REFUSED
            )
            self._case.audit(
                "intercept_requested",
                actor=change.actor,
                role=change.role,
                reason=intercept.reason or intercept.outcome,
                after={
                    "outcome": intercept.outcome,
                    "fee_minor": intercept.fee_minor,
                    "reference": intercept.reference,
                },
            )
        else:
            outcome = ChangeAddressOutcome.APPLIED
        high_risk = applied.risk_band == "high"
        if high_risk and outcome is not ChangeAddressOutcome.INTERCEPT_REFUSED:
            outcome = ChangeAddressOutcome.HELD_FOR_REVIEW
        record = AddressChange(
            at=workflow.now(),
            actor=change.actor,
            outcome=outcome,
            before=state.address_fingerprint,
            after=applied.fingerprint,
            country_before=state.destination_country,
            country_after=applied.country,
            note=change.note,
            fee_minor=fee,
        )
        state.address_changes.append(record)
        if outcome is not ChangeAddressOutcome.INTERCEPT_REFUSED:
            state.address_fingerprint = applied.fingerprint
            state.address_ref = applied.address_ref
            state.destination_country = applied.country
        self._case.audit(
            "address_changed"
            if outcome is not ChangeAddressOutcome.INTERCEPT_REFUSED
            else "address_change_refused",
            actor=change.actor,
            role=change.role,
            reason=change.note or outcome,
            # Fingerprints and countries only: never the address itself.
            before={
                "address_fingerprint": record.before,
                "country": record.country_before,
                "status": before_status,
            },
            after={
                "address_fingerprint": record.after,
                "country": record.country_after,
                "outcome": outcome,
                "rescored": rescore,
                "risk_score": applied.risk_score,
                "risk_band": applied.risk_band,
            },
        )
        if high_risk and outcome is ChangeAddressOutcome.HELD_FOR_REVIEW:
            await self._place_hold(
                HoldReason.ADDRESS_CHANGE,
                STEWARD,
                Role.SYSTEM,
                f"new address scored {applied.risk_score} ({', '.join(applied.risk_reasons)})",
                flush=False,
            )
        self._case.refresh()
        await self._case.flush()

    # ---------------------------------------------------------- outbound QC

    async def _start_qc(self, input: FulfilmentInput) -> None:
        verdict = input.qc
        assert verdict is not None
        self._state.qc = QcCheck(rule_set_version=verdict.rule_set_version, reasons=verdict.reasons)
        await self._place_hold(
            HoldReason.OUTBOUND_QC,
            STEWARD,
            Role.SYSTEM,
            f"outbound QC: {', '.join(verdict.reasons)} ({verdict.rule_set_version})",
            handle=QC_HOLD,
            flush=False,
        )
        self._open_qc_task()

    def _open_qc_task(self) -> None:
        self._qc_round += 1
        due = workflow.now() + QC_SLA
        self._qc_due = due
        self._qc_reminded = False
        qc = self._state.qc
        assert qc is not None
        self._case.open_human_task(
            "outbound_qc",
            f"Outbound QC of order {self._state.order_id} at {self._state.site} · "
            f"{format_amount(self._state.amount_minor, self._state.currency)} · "
            f"{', '.join(qc.reasons)} (checklist, serial, photos)",
            Role.OPS,
            due,
            priority=min(self._state.amount_minor // 100, 1_000_000),
        )

    def _next_deadline(self) -> datetime | None:
        if self._qc_due is None:
            return None
        if not self._qc_reminded and not self._state.escalated:
            return self._qc_due - (QC_SLA - QC_REMINDER_AFTER)
        return self._qc_due

    async def _on_deadlines(self) -> None:
        deadline = self._next_deadline()
        if deadline is None or workflow.now() < deadline:
            return
        state = self._state
        if not self._qc_reminded and not state.escalated:
            self._qc_reminded = True
            self._case.remind("qc_reminder_sent", reason="outbound QC waiting for 2 h")
        elif not state.escalated:
            due = workflow.now() + ESCALATED_SLA
            self._qc_due = due
            self._case.escalate(
                Role.MANAGER,
                reason="outbound QC not done within its SLA: senior QA coordinator",
                due=due,
            )
        else:
            # The senior QA coordinator's SLA passed too: keep holding, remind again.
            self._qc_due = workflow.now() + ESCALATED_SLA
            self._case.remind("qc_escalation_reminder", reason="escalated QC still open")
        self._case.refresh()
        await self._case.flush()

    async def _apply_qc_decision(self, change: QcDecisionInput) -> None:
        state = self._state
        qc = state.qc
        assert qc is not None and change.actor is not None and change.role is not None
        qc.outcome = change.outcome
        qc.decided_by = change.actor
        qc.serial_number = change.serial_number
        qc.photo_refs = list(change.photo_refs)
        qc.checklist = list(change.checklist)
        self._case.audit(
            f"qc_{change.outcome}",
            actor=change.actor,
            role=change.role,
            reason=change.note or change.outcome,
            after={
                "checklist": list(change.checklist),
                "serial_number": change.serial_number,
                "photo_refs": list(change.photo_refs),
                "round": self._qc_round,
            },
        )
        hold = next(h for h in state.holds if h.active and h.reason is HoldReason.OUTBOUND_QC)
        if change.outcome is QcOutcome.PASS:
            self._case.close_human_task(change.actor, "passed", clears_escalation=True)
            self._qc_due = None
            await self._release_hold(hold, change.actor, change.role, "outbound QC passed")
            return
        if change.outcome is QcOutcome.CANCEL_REFUND:
            self._case.close_human_task(change.actor, "cancel with refund")
            await self._cancel(
                f"outbound QC failed, no replacement: {change.note or 'cancelled'}",
                change.actor,
                refund=True,
            )
            return
        if change.outcome is QcOutcome.WAIT:
            self._qc_due = workflow.now() + ESCALATED_SLA
            if not any(h.active and h.reason is HoldReason.INVENTORY for h in state.holds):
                await self._place_hold(
                    HoldReason.INVENTORY,
                    change.actor,
                    change.role,
                    change.note or "waiting for a replacement unit",
                    flush=False,
                )
            self._case.refresh()
            await self._case.flush()
            return
        # Fail: a replacement unit, QC again; none in stock: the senior QA coordinator.
        replacement = await call_outside(
            ALLOCATE_REPLACEMENT_UNIT,
            ReplacementInput(
                workflow_id=workflow.info().workflow_id,
                order_id=state.order_id,
                attempt=qc.replacement_units + 1,
                skus=[i.sku for i in self._input.items],
            ),
            result_type=ReplacementResult,
            retry=OUTSIDE_RETRY,
        )
        self._case.close_human_task(change.actor, "failed")
        if replacement.allocated:
            qc.replacement_units += 1
            qc.outcome = None
            self._case.audit(
                "replacement_allocated", reason=replacement.detail or "replacement unit"
            )
            self._open_qc_task()
        else:
            self._case.audit("replacement_unavailable", reason=replacement.detail or "out of stock")
            self._qc_round += 1
            due = workflow.now() + ESCALATED_SLA
            self._qc_due = due
            state.escalated = True
            self._case.open_human_task(
                "outbound_qc_escalated",
                f"QC failed, no replacement for order {state.order_id}: cancel with a "
                "refund or wait",
                Role.MANAGER,
                due,
                priority=min(state.amount_minor // 100, 1_000_000),
            )
        self._case.refresh()
        await self._case.flush()

    # -------------------------------------------------------------- display

    def _facts(self) -> CaseFacts:
        state = self._state
        return CaseFacts(
            status=state.status,
            details=_details(state),
            amount_minor=state.amount_minor,
            currency=state.currency,
            market=state.market,
            risk_band=self._input.risk_band,
            awaited_role=state.awaited_role,
            due_at=state.due_at,
        )


def _arrangement(arrangement: SpecialDelivery | None) -> dict[str, Any] | None:
    if arrangement is None:
        return None
    return arrangement.model_dump(exclude={"set_at"}, exclude_none=True)


def _details(state: FulfilmentState) -> str:
    lines = [
        f"**{state.status.replace('_', ' ').capitalize()}** · order {state.order_id} · "
        f"{state.site} · {format_amount(state.amount_minor, state.currency)}"
    ]
    active = state.active_holds
    if active:
        lines.append("Holds: " + ", ".join(f"{h.reason} ({h.handle})" for h in active))
    if state.special_delivery:
        lines.append(f"Delivery: {state.special_delivery.kind}")
    if state.tracking_number:
        lines.append(f"Parcel {state.carrier} {state.tracking_number}")
    return "\n\n".join(lines)
