"""Returns: eligibility (per-market policy, quantities already returned, open
disputes), the return label through the carrier port, and the item's
disposition and replacement stock through the warehouse port."""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import RateLimitedError, RefusedError, ReturnCarrier, ReturnsWarehouse
from domain.deliveries import ShipmentRecord, pseudonymise_shipment
from domain.ids import carrier_claim_id
from domain.orders import Order
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
    RecordDispositionInput,
    RecordDispositionResult,
    ReturnParcelClaimInput,
    ReturnParcelClaimResult,
    assess_eligibility,
    is_full_return,
    refund_amount_minor,
    return_parcel_shipment_id,
    returned_value_minor,
)
from store import campaign as campaign_store
from store import deliveries as delivery_store
from store import disputes
from store import returns as returns_store

RETURN_PORT_REFUSED = "ReturnPortRefused"
RETURN_PORT_RATE_LIMITED = "ReturnPortRateLimited"


def label_idempotency_key(workflow_id: str) -> str:
    # One label per return, whatever the run or the attempt.
    return f"{workflow_id}/label"


def disposition_idempotency_key(workflow_id: str, disposition: str) -> str:
    return f"{workflow_id}/disposition/{disposition}"


def _port_error(exc: RefusedError | RateLimitedError) -> ApplicationError:
    if isinstance(exc, RateLimitedError):
        return ApplicationError(
            str(exc), type=RETURN_PORT_RATE_LIMITED, next_retry_delay=exc.retry_after
        )
    return ApplicationError(str(exc), exc.code, type=RETURN_PORT_REFUSED, non_retryable=True)


class ReturnActivities:
    def __init__(
        self, pool: asyncpg.Pool, carrier: ReturnCarrier, warehouse: ReturnsWarehouse
    ) -> None:
        self.pool = pool
        self.carrier = carrier
        self.warehouse = warehouse

    @activity.defn(name=CHECK_RETURN_ELIGIBILITY)
    async def check_return_eligibility(self, input: CheckEligibilityInput) -> EligibilityResult:
        request = input.request
        order_id = request.order.order_id
        log = activity_logger(order_id=order_id, rma_id=request.rma_id)
        async with self.pool.acquire() as conn, conn.transaction():
            # Check and reservation under one order-scoped lock: two returns
            # filed at once cannot both take the last unit back.
            await returns_store.lock_order(conn, order_id)
            already = await returns_store.already_returned(
                conn, order_id, exclude_rma=request.rma_id
            )
            refusals = assess_eligibility(request, now=input.requested_at, already_returned=already)
            dispute = await disputes.open_dispute_for_order(conn, order_id)
            campaign = await campaign_store.campaign_of_order(conn, order_id)
            if not refusals:
                await returns_store.reserve_lines(
                    conn,
                    rma_id=request.rma_id,
                    workflow_id=input.workflow_id,
                    order_id=order_id,
                    lines=request.lines,
                )
        full = is_full_return(request, already)
        log.info(
            "return_eligibility_checked",
            eligible=not refusals,
            refusals=[r.code for r in refusals],
            open_dispute=dispute is not None,
        )
        return EligibilityResult(
            eligible=not refusals,
            refusals=refusals,
            open_dispute=dispute is not None,
            already_returned=already,
            full_return=full,
            value_minor=returned_value_minor(request),
            refund_minor=refund_amount_minor(request, full_return=full),
            campaign_id=campaign,
        )

    @activity.defn(name=ISSUE_RETURN_LABEL)
    async def issue_return_label(self, input: IssueLabelInput) -> IssueLabelResult:
        try:
            label = await self.carrier.create_return_label(
                idempotency_key=label_idempotency_key(input.workflow_id),
                rma_id=input.rma_id,
                market=input.market,
                parcel_units=sum(line.quantity for line in input.lines),
                expires_at=input.expires_at,
            )
        except (RefusedError, RateLimitedError) as exc:
            raise _port_error(exc) from exc
        activity_logger(order_id=input.order_id, rma_id=input.rma_id).info(
            "return_label_issued", carrier=label.carrier, tracking_number=label.tracking_number
        )
        return IssueLabelResult(
            carrier=label.carrier,
            tracking_number=label.tracking_number,
            label_url=label.label_url,
            expires_at=label.expires_at,
        )

    @activity.defn(name=RECORD_DISPOSITION)
    async def record_return_disposition(
        self, input: RecordDispositionInput
    ) -> RecordDispositionResult:
        try:
            record = await self.warehouse.record_disposition(
                idempotency_key=disposition_idempotency_key(
                    input.workflow_id, input.disposition.value
                ),
                rma_id=input.rma_id,
                order_id=input.order_id,
                market=input.market,
                disposition=input.disposition.value,
                items=[(line.sku, line.quantity) for line in input.lines],
            )
        except (RefusedError, RateLimitedError) as exc:
            raise _port_error(exc) from exc
        activity_logger(order_id=input.order_id, rma_id=input.rma_id).info(
            "return_disposition_recorded",
            disposition=input.disposition.value,
            reference=record.reference,
        )
        return RecordDispositionResult(reference=record.reference, warehouse=record.warehouse)

    @activity.defn(name=CHECK_STOCK)
    async def check_replacement_stock(self, input: CheckStockInput) -> CheckStockResult:
        try:
            missing = await self.warehouse.missing_stock(
                market=input.market, items=[(line.sku, line.quantity) for line in input.lines]
            )
        except (RefusedError, RateLimitedError) as exc:
            raise _port_error(exc) from exc
        return CheckStockResult(in_stock=not missing, missing_skus=missing)

    @activity.defn(name=PREPARE_RETURN_PARCEL_CLAIM)
    async def prepare_return_parcel_claim(
        self, input: ReturnParcelClaimInput
    ) -> ReturnParcelClaimResult:
        """The lost return parcel as a shipment a carrier claim can follow.

        The claim needs the order (invoice, declared value); a return only
        carries a summary of it, so the order comes from the outbound
        shipment Steward registered. The parcel is registered too, followed by
        the claim, so a late scan reaches the claim instead of opening a case.
        """
        log = activity_logger(order_id=input.order_id, rma_id=input.rma_id)
        outbound = await delivery_store.list_for_order(self.pool, input.order_id)
        if not outbound:
            log.warning("return_parcel_claim_without_order")
            return ReturnParcelClaimResult(
                reason=f"order_id: no shipment of order {input.order_id} is registered, "
                "so its invoice is unknown; claim with the carrier by hand"
            )
        order = outbound[0].record.order
        wanted = {line.sku: line.quantity for line in input.lines}
        items = [
            item.model_copy(update={"quantity": wanted[item.sku]})
            for item in order.items
            if item.sku in wanted
        ]
        value = sum(item.unit_price_minor * item.quantity for item in items)
        # Only the returned items travel in this parcel: that is what is declared.
        returned = Order.model_validate(
            {
                **order.model_dump(),
                "items": [item.model_dump() for item in items] or order.model_dump()["items"],
                "shipping_minor": 0 if items else order.shipping_minor,
                "payment": {
                    **order.payment.model_dump(),
                    "amount_minor": value if items else order.payment.amount_minor,
                },
            }
        )
        record = ShipmentRecord(
            shipment_id=return_parcel_shipment_id(input.rma_id),
            carrier=input.carrier,
            tracking_number=input.tracking_number,
            expected_delivery_at=input.expected_delivery_at,
            order=returned,
        )
        try:
            await delivery_store.register_shipment(
                self.pool,
                record,
                tracked_by=carrier_claim_id(input.carrier, input.tracking_number),
            )
        except delivery_store.ShipmentConflictError as conflict:
            # Already followed under another id: the claim still opens, its
            # scans keep going where they went.
            log.warning("return_parcel_already_registered", reason=str(conflict))
        log.info("return_parcel_registered_for_claim", shipment_id=record.shipment_id)
        # Issue 21: the claim (a Temporal input) gets the parcel pseudonymised,
        # as the carrier webhooks start a claim: the store keeps its values
        # with the shipment registered above (its own subject, read back by
        # the shipment id); the claim needs the order's id, items, amounts
        # and market only.
        return ReturnParcelClaimResult(
            shipment=pseudonymise_shipment(
                record,
                delivery_store.shipment_subject_id(record.shipment_id),
                delivery_store.address_fingerprint(record.address),
            )
        )
