"""Returns: eligibility (per-market policy, quantities already returned, open
disputes), the return label through the carrier port, and the item's
disposition and replacement stock through the warehouse port."""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import RateLimitedError, RefusedError, ReturnCarrier, ReturnsWarehouse
from domain.returns import (
    CHECK_RETURN_ELIGIBILITY,
    CHECK_STOCK,
    ISSUE_RETURN_LABEL,
    RECORD_DISPOSITION,
    CheckEligibilityInput,
    CheckStockInput,
    CheckStockResult,
    EligibilityResult,
    IssueLabelInput,
    IssueLabelResult,
    RecordDispositionInput,
    RecordDispositionResult,
    assess_eligibility,
    is_full_return,
    refund_amount_minor,
    returned_value_minor,
)
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
