"""Fulfilment's side effects (issue 16): the warehouse's holds and address,
address changes (stored in the personal-data store, rescored with the risk
rules), the carrier intercept, the shipment booked at handover, cancelling,
replacement units and customer messages; the start of a fulfilment at release
(`FulfilmentStart`, called by the release activity); and the simulated
warehouse (a WMS timeline per site that refuses to pick a held order) and the
simulated carrier intercept.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import (
    CarrierIntercepts,
    FulfilmentWarehouse,
    NotificationRejectedError,
    Notifier,
    PackingStartedError,
    RateLimitedError,
)
from clients import fulfilment as fulfilment_client
from clients.calls import signal_if_running
from domain.deliveries import ServiceLevel, ShipmentRecord
from domain.fulfilment import (
    ADDRESS_INVALID,
    ADDRESS_UNAVAILABLE,
    ALLOCATE_REPLACEMENT_UNIT,
    APPLY_ADDRESS_CHANGE,
    BOOK_FULFILMENT_SHIPMENT,
    CANCEL_WAREHOUSE_ORDER,
    CURRENT_FULFILMENT_REVISION,
    NOTIFY_FULFILMENT_CUSTOMER,
    PACKING_STARTED,
    RELAY_FRAUD_WARNING,
    REQUEST_CARRIER_INTERCEPT,
    SET_WAREHOUSE_HOLD,
    ApplyAddressInput,
    ApplyAddressResult,
    BookShipmentInput,
    BookShipmentResult,
    CancelWarehouseInput,
    CustomerProfile,
    FraudWarningAction,
    FulfilmentInput,
    FulfilmentItem,
    FulfilmentPayment,
    InterceptInput,
    InterceptOutcome,
    InterceptResult,
    NotifyFulfilmentInput,
    RelayFraudWarningInput,
    RelayFraudWarningResult,
    ReplacementInput,
    ReplacementResult,
    SpecialDeliveryKind,
    WarehouseEvent,
    WarehouseEventKind,
    WarehouseHoldInput,
    address_error,
)
from domain.fulfilment_rules import (
    QcRuleInput,
    Site,
    evaluate_qc,
    materials_named,
    next_collection,
    site,
    site_for,
)
from domain.ids import order_review_id
from domain.notifications import NotifyCustomerResult
from domain.orders import Address, Order
from domain.review import CancelRequest, OrderReviewContract
from domain.risk_rules import assess
from domain.warehouse import ReleaseOrderInput
from store import disputes as dispute_store
from store import fulfilment as store
from store import order_subjects, personal_data, signals
from store.deliveries import ShipmentConflictError, register_shipment

NOTIFICATION_REJECTED = "NotificationRejected"
# An accepted early fraud warning found the order still in review: its cancel
# was asked for, and the relay is retried until the review has closed.
ORDER_REVIEW_STILL_OPEN = "OrderReviewStillOpen"


async def relay_to_order(client: Client, input: RelayFraudWarningInput) -> bool:
    """Tell the order's fulfilment about an early fraud warning or its outcome;
    True when the fulfilment had it.

    No fulfilment running and the warning accepted (or defaulted): the order
    is still in review (or was never released). The review is asked to cancel
    (its `cancel` signal: it voids the authorisation and tells the customer,
    once, de-duplicated by event id), and this raises a retryable
    ORDER_REVIEW_STILL_OPEN until the review has closed: cancelled, or
    released because the money moved first, in which case the next attempt
    finds the fulfilment (started by the release) and it cancels and refunds
    once. A review that closed before (declined, never released) has nothing
    left to cancel."""
    warning = input.warning
    if await fulfilment_client.relay_fraud_warning(client, input.order_id, warning):
        return True
    if warning.action is not FraudWarningAction.ACCEPT:
        # A hold waits for the release (which finds the warning); a contest
        # has nothing to release yet.
        return False
    cancel = CancelRequest(
        event_id=f"{warning.event_id}/cancel-order-review",
        reason=f"early fraud warning accepted before release ({warning.dispute_workflow_id})",
        requested_by=warning.actor,
    )
    if await signal_if_running(
        client, order_review_id(input.order_id), OrderReviewContract.SIGNAL_CANCEL, cancel
    ):
        raise ApplicationError(
            f"order review of {input.order_id} still open: its cancel was asked for",
            type=ORDER_REVIEW_STILL_OPEN,
        )
    return False


class FulfilmentActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        warehouse: FulfilmentWarehouse,
        intercepts: CarrierIntercepts,
        notifier: Notifier,
        client: Callable[[], Client] | None = None,
    ) -> None:
        self.pool = pool
        self.warehouse = warehouse
        self.intercepts = intercepts
        self.notifier = notifier
        # The worker's client (activity.client() by default), for relaying.
        self._client = client or activity.client

    @activity.defn(name=SET_WAREHOUSE_HOLD)
    async def set_warehouse_hold(self, input: WarehouseHoldInput) -> None:
        await self.warehouse.set_hold(
            order_id=input.order_id, handle=input.handle, reason=input.reason, active=input.active
        )
        activity_logger(order_id=input.order_id).info(
            "warehouse_hold_set", handle=input.handle, reason=input.reason, active=input.active
        )

    @activity.defn(name=APPLY_ADDRESS_CHANGE)
    async def apply_address_change(self, input: ApplyAddressInput) -> ApplyAddressResult:
        log = activity_logger(order_id=input.order_id, change_no=input.change_no)
        rescore = input.rescore
        if input.address_subject_id is not None:
            # Issue 21: the edge kept the address; read it by its subject (one query).
            address = await self._edge_address(input.address_subject_id)
            if (error := address_error(address, private=True)) is not None:
                raise ApplicationError(error, type=ADDRESS_INVALID, non_retryable=True)
            address_ref = input.address_subject_id
            fingerprint = store.keyed_fingerprint(address)
            rescore = rescore or address.country != input.destination_country
        else:
            assert input.address is not None
            address = input.address
            if (error := address_error(address, private=True)) is not None:
                raise ApplicationError(error, type=ADDRESS_INVALID, non_retryable=True)
            address_ref, fingerprint = await store.put_address(
                self.pool, input.order_id, input.change_no, address
            )
        result = ApplyAddressResult(
            address_ref=address_ref,
            fingerprint=fingerprint,
            country=address.country,
            rescored=rescore if input.address_subject_id is not None else None,
        )
        if rescore:
            order = await store.load_order(self.pool, input.order_id)
            if order is not None:
                moved = order.model_copy(update={"shipping_address": address})
                found = await signals.load_signals(self.pool, moved)
                risk = assess(moved, found, now=order.placed_at)
                result.risk_score = risk.score
                result.risk_band = risk.band.value
                result.risk_reasons = [c.value for c in risk.reason_codes]
        if input.send_to_warehouse:
            try:
                await self.warehouse.set_address(order_id=input.order_id, address_ref=address_ref)
            except PackingStartedError as exc:
                raise ApplicationError(str(exc), type=PACKING_STARTED, non_retryable=True) from exc
            result.warehouse_updated = True
        log.info("address_change_applied", rescored=rescore, risk_band=result.risk_band)
        return result

    async def _edge_address(self, subject_id: str) -> Address:
        """The address an edge kept; an unknown, erased or non-address subject
        refuses the change (non-retryable: the case goes on)."""
        try:
            return await store.get_address(self.pool, subject_id)
        except personal_data.UnknownSubject:
            reason = f"address_subject_id: unknown subject {subject_id}"
        except personal_data.SubjectErased:
            reason = f"address_subject_id: the address {subject_id} was erased"
        except store.NotAnAddress as wrong:
            reason = str(wrong)
        except ValidationError:
            reason = f"address_subject_id: subject {subject_id} does not hold an address"
        raise ApplicationError(reason, type=ADDRESS_UNAVAILABLE, non_retryable=True)

    @activity.defn(name=REQUEST_CARRIER_INTERCEPT)
    async def request_carrier_intercept(self, input: InterceptInput) -> InterceptResult:
        new = await store.get_address(self.pool, input.address_ref, order_id=input.order_id)
        order = await store.load_order(self.pool, input.order_id)
        old_country = order.shipping_address.country if order is not None else new.country
        outcome, fee, reference, reason = await self.intercepts.intercept(
            idempotency_key=f"{input.workflow_id}/intercept-{input.change_no}",
            order_id=input.order_id,
            new_country=new.country,
            old_country=old_country,
        )
        return InterceptResult(
            outcome=InterceptOutcome(outcome),
            fee_minor=fee,
            currency=order.currency if order is not None else None,
            reference=reference,
            reason=reason,
        )

    @activity.defn(name=BOOK_FULFILMENT_SHIPMENT)
    async def book_fulfilment_shipment(self, input: BookShipmentInput) -> BookShipmentResult:
        order = await store.load_order(self.pool, input.order_id)
        if order is None:
            raise ApplicationError(
                f"order {input.order_id} was not kept at release",
                type="OrderUnknown",
                non_retryable=True,
            )
        address = await store.get_address(self.pool, input.address_ref, order_id=input.order_id)
        arrangement = input.special_delivery
        level = ServiceLevel.STANDARD
        expected = activity.info().current_attempt_scheduled_time + timedelta(days=2)
        if arrangement is not None:
            if arrangement.kind is SpecialDeliveryKind.SIGNATURE:
                level = ServiceLevel.SIGNATURE_REQUIRED
            elif arrangement.kind in (SpecialDeliveryKind.NAMED_CARRIER, SpecialDeliveryKind.TIMED):
                level = ServiceLevel.EXPRESS
            if arrangement.window_end is not None:
                expected = arrangement.window_end
        shipment_id = f"{input.order_id}-1"
        record = ShipmentRecord(
            shipment_id=shipment_id,
            carrier=input.carrier.lower(),
            tracking_number=input.tracking_number,
            service_level=level,
            expected_delivery_at=expected,
            order=order,
            destination=address if address != order.shipping_address else None,
        )
        try:
            registered = await register_shipment(self.pool, record)
        except ShipmentConflictError:
            # The warehouse registered the parcel itself (POST /v1/shipments).
            registered = False
        return BookShipmentResult(shipment_id=shipment_id, registered=registered)

    @activity.defn(name=CANCEL_WAREHOUSE_ORDER)
    async def cancel_warehouse_order(self, input: CancelWarehouseInput) -> None:
        await self.warehouse.cancel(order_id=input.order_id, reason=input.reason)

    @activity.defn(name=ALLOCATE_REPLACEMENT_UNIT)
    async def allocate_replacement_unit(self, input: ReplacementInput) -> ReplacementResult:
        allocated = await self.warehouse.allocate_replacement(
            order_id=input.order_id, attempt=input.attempt, skus=input.skus
        )
        return ReplacementResult(
            allocated=allocated,
            detail=f"replacement {input.attempt} allocated" if allocated else "no unit in stock",
        )

    @activity.defn(name=NOTIFY_FULFILMENT_CUSTOMER)
    async def notify_fulfilment_customer(
        self, input: NotifyFulfilmentInput
    ) -> NotifyCustomerResult:
        order = await store.load_order(self.pool, input.order_id)
        if order is None:
            raise ApplicationError(
                f"no customer kept for order {input.order_id}",
                type=NOTIFICATION_REJECTED,
                non_retryable=True,
            )
        try:
            delivered = await self.notifier.send(
                message_id=input.message_id,
                order_id=input.order_id,
                recipient_email=str(order.customer.email),
                template=input.template.value,
                locale="en",
            )
        except NotificationRejectedError as exc:
            raise ApplicationError(
                f"message {input.message_id} was rejected: {exc.code}",
                type=NOTIFICATION_REJECTED,
                non_retryable=True,
            ) from exc
        except RateLimitedError as exc:
            raise ApplicationError(str(exc), next_retry_delay=exc.retry_after) from exc
        return NotifyCustomerResult(message_id=input.message_id, delivered=delivered)

    @activity.defn(name=RELAY_FRAUD_WARNING)
    async def relay_fraud_warning(self, input: RelayFraudWarningInput) -> RelayFraudWarningResult:
        delivered = await relay_to_order(self._client(), input)
        if input.warning.action is FraudWarningAction.CONTEST:
            # The warehouse-side hold of the warning (store/disputes.py) goes too:
            # an order released later starts without a fraud hold.
            await dispute_store.sim_release_hold(
                self.pool, order_id=input.order_id, released_by=input.warning.actor
            )
        activity_logger(order_id=input.order_id).info(
            "fraud_warning_relayed", action=input.warning.action, delivered=delivered
        )
        return RelayFraudWarningResult(delivered=delivered)


# ------------------------------------------------------------- the start


def fulfilment_input(
    order: Order,
    *,
    release_id: str,
    site_code: str,
    released_at: datetime,
    address_ref: str,
    address_fingerprint: str,
    first_order: bool,
    prior_dispute_or_claim: bool,
    fraud_warning_ref: str | None,
    risk_band: str | None = None,
    vip: bool = False,
) -> FulfilmentInput:
    """The fulfilment of a released order: no personal value in it, the QC
    verdict of the current rule set."""
    verdict = evaluate_qc(
        QcRuleInput(
            market=order.market,
            currency=order.currency,
            amount_minor=order.total_minor,
            destination_country=order.shipping_address.country,
            categories=[i.category for i in order.items],
            # The exotic materials the items' names name (qc-2026.12.2).
            materials=sorted({m for i in order.items for m in materials_named(i.name)}),
            first_order=first_order,
            vip=vip,
            prior_dispute_or_claim=prior_dispute_or_claim,
        )
    )
    return FulfilmentInput(
        order_id=order.order_id,
        market=order.market,
        destination_country=order.shipping_address.country,
        site=site_code,
        release_id=release_id,
        released_at=released_at,
        items=[
            FulfilmentItem(
                sku=i.sku,
                category=i.category,
                unit_price_minor=i.unit_price_minor,
                quantity=i.quantity,
                material=",".join(materials_named(i.name)),
                serial_number=i.serial_number,
            )
            for i in order.items
        ],
        amount_minor=order.total_minor,
        currency=order.currency,
        customer=CustomerProfile(
            customer_id=order.customer.customer_id,
            first_order=first_order,
            vip=vip,
            prior_dispute_or_claim=prior_dispute_or_claim,
        ),
        payment=FulfilmentPayment(
            provider=order.payment.provider,
            authorisation_ref=order.payment.authorisation_ref,
            captured_minor=order.payment.amount_minor,
            currency=order.payment.currency,
        ),
        address_ref=address_ref,
        address_fingerprint=address_fingerprint,
        risk_band=risk_band,
        qc=verdict,
        fraud_warning_ref=fraud_warning_ref,
        revision=CURRENT_FULFILMENT_REVISION,
    )


class FulfilmentStart:
    """Called by the release activity once the warehouse took the order: keep
    the order (personal values in the personal-data store), register it with
    the simulated WMS, and start `fulfilment:{order_id}` (at most once:
    REJECT_DUPLICATE, so a retried release starts nothing new). Runs inside
    the review's release activity: the review's history gains no event."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        task_queue: str,
        *,
        wms: SimulatedWms | None = None,
        client: Callable[[], Client] | None = None,
    ) -> None:
        self.pool = pool
        self.task_queue = task_queue
        self.wms = wms
        self._client = client or activity.client

    async def __call__(self, release: ReleaseOrderInput, release_id: str, warehouse: str) -> bool:
        order = release.order
        if order is None:
            return False
        if release.subject_id is not None:
            # Issue 21: the review holds the order pseudonymised.
            order = await order_subjects.load_order(self.pool, order, release.subject_id)
        released_at = activity.info().current_attempt_scheduled_time
        # The customer's profile for the QC rules and a fraud warning holding
        # the order: one round trip.
        facts = await store.release_facts(self.pool, order.customer.customer_id, order.order_id)
        site_code = site_for(order.market).code
        # The address the order is released with (change 0) is the one in the
        # order's own subject: no second copy of it.
        own_subject = store.order_subject_id(order.order_id)
        subject_kept = release.subject_id is not None and release.subject_id == own_subject
        input = fulfilment_input(
            order,
            release_id=release_id,
            site_code=site_code,
            released_at=released_at,
            address_ref=own_subject,
            address_fingerprint=store.keyed_fingerprint(order.shipping_address),
            first_order=facts.completed_orders == 0,
            prior_dispute_or_claim=facts.chargebacks > 0 or facts.prior_claim,
            fraud_warning_ref=facts.fraud_warning_ref,
            vip=facts.vip,
        )
        # The order (its personal values already in its subject when the
        # review's intake kept them there, issue 21), the start's audit row and
        # case row (revision 3: the workflow's first task then issues no
        # command): one transaction, before the start.
        await store.record_release(
            self.pool,
            order,
            input,
            released_at,
            subject_id=release.subject_id if subject_kept else None,
        )
        if self.wms is not None:
            await self.wms.register(
                order_id=order.order_id, site=site_code, released_at=released_at
            )
        started = await fulfilment_client.start_fulfilment(self._client(), input, self.task_queue)
        activity_logger(order_id=order.order_id).info(
            "fulfilment_started" if started else "fulfilment_already_started", site=site_code
        )
        return started


# --------------------------------------------------- the simulated warehouse


class SimulatedWms:
    """A WMS per site: released orders move through allocated, picking,
    packing, packed and handed_to_carrier on the site's timeline (pick and
    pack durations, the daily carrier collection cut-off), `tick` returning
    the events that fell due. Picking never starts while a hold is active:
    a `pick_refused` event instead, and another try in 15 minutes."""

    name = "simulated-wms"
    RETRY_PICK = timedelta(minutes=15)

    def __init__(self, pool: asyncpg.Pool, *, replacement_stock: int = 1) -> None:
        self.pool = pool
        self.replacement_stock = replacement_stock

    async def register(self, *, order_id: str, site: str, released_at: datetime) -> None:
        await store.sim_register(
            self.pool,
            order_id=order_id,
            site=site,
            released_at=released_at,
            next_at=released_at + _site(site).allocate_after,
        )

    async def set_hold(self, *, order_id: str, handle: str, reason: str, active: bool) -> None:
        await store.sim_set_hold(
            self.pool, order_id=order_id, handle=handle, reason=reason, active=active
        )

    async def set_address(self, *, order_id: str, address_ref: str) -> None:
        current = await store.sim_get(self.pool, order_id)
        if current is not None and current.status in (
            "packing",
            "packed",
            "handed_to_carrier",
            "delivered",
        ):
            raise PackingStartedError(f"order {order_id} is {current.status}")
        await store.sim_set_address(self.pool, order_id, address_ref)

    async def cancel(self, *, order_id: str, reason: str) -> None:
        await store.sim_cancel(self.pool, order_id)

    async def allocate_replacement(self, *, order_id: str, attempt: int, skus: list[str]) -> bool:
        return attempt <= self.replacement_stock

    async def start_picking(self, order_id: str) -> bool:
        """The warehouse's own check before picking: False (refused) while held."""
        return not await store.sim_active_holds(self.pool, order_id)

    async def tick(self, now: datetime, limit: int = 200) -> list[WarehouseEvent]:
        """Advance every order whose next step fell due; the events, in warehouse time."""
        events: list[WarehouseEvent] = []
        for order in await store.sim_due(self.pool, now, limit):
            event = await self._step(order, now)
            if event is not None:
                events.append(event)
        return events

    async def _step(self, order: store.SimWmsOrder, now: datetime) -> WarehouseEvent | None:
        at = order.next_at
        plan = _site(order.site)

        def event(kind: WarehouseEventKind, suffix: str = "", **kw: str) -> WarehouseEvent:
            return WarehouseEvent(
                event_id=f"wms-{order.order_id}-{kind}{suffix}",
                order_id=order.order_id,
                kind=kind,
                occurred_at=at,
                site=order.site,
                **kw,
            )

        if order.status == "released":
            moved = await store.sim_advance(
                self.pool,
                order.order_id,
                from_status="released",
                to_status="allocated",
                next_at=at + timedelta(minutes=1),
            )
            return event(WarehouseEventKind.ALLOCATED) if moved else None
        if order.status == "allocated":
            if not await self.start_picking(order.order_id):
                await store.sim_postpone(self.pool, order.order_id, now + self.RETRY_PICK)
                return event(
                    WarehouseEventKind.PICK_REFUSED,
                    f"-{int(at.timestamp())}",
                    note="active hold: not picked",
                )
            moved = await store.sim_advance(
                self.pool,
                order.order_id,
                from_status="allocated",
                to_status="picking",
                next_at=at + plan.pick_duration,
            )
            return event(WarehouseEventKind.PICKING_STARTED) if moved else None
        if order.status == "picking":
            moved = await store.sim_advance(
                self.pool,
                order.order_id,
                from_status="picking",
                to_status="packing",
                next_at=at + plan.pack_duration,
            )
            return event(WarehouseEventKind.PACKING_STARTED) if moved else None
        if order.status == "packing":
            moved = await store.sim_advance(
                self.pool,
                order.order_id,
                from_status="packing",
                to_status="packed",
                next_at=next_collection(plan, at),
            )
            return event(WarehouseEventKind.PACKED) if moved else None
        if order.status == "packed":
            service = plan.services[0]
            tracking = f"{service.carrier[:3].upper()}{secrets.token_hex(5).upper()}"
            moved = await store.sim_advance(
                self.pool,
                order.order_id,
                from_status="packed",
                to_status="handed_to_carrier",
                next_at=at,
                carrier=service.carrier,
                tracking_number=tracking,
            )
            if not moved:
                return None
            return event(
                WarehouseEventKind.HANDED_TO_CARRIER,
                carrier=service.carrier,
                tracking_number=tracking,
            )
        return None


def _site(code: str) -> Site:
    return site(code)


class SimulatedCarrierIntercepts:
    """A carrier redirects a parcel within the country for a fee; across a
    border it refuses. Once per idempotency key."""

    name = "simulated-intercepts"
    FEE_MINOR = 1500

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def intercept(
        self, *, idempotency_key: str, order_id: str, new_country: str, old_country: str
    ) -> tuple[str, int, str, str]:
        redirected = new_country == old_country
        outcome, fee, reference = await store.sim_record_intercept(
            self.pool,
            idempotency_key=idempotency_key,
            order_id=order_id,
            outcome="redirected" if redirected else "refused",
            fee_minor=self.FEE_MINOR if redirected else 0,
            reference=f"INT-{secrets.token_hex(4).upper()}",
        )
        reason = "" if outcome == "redirected" else "the carrier cannot redirect across a border"
        return outcome, fee, reference, reason
