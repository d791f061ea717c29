"""Releasing a captured order to the warehouse (3PL/WMS)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import RateLimitedError, ReleaseRejectedError, Warehouse
from domain.warehouse import RELEASE_ORDER, ReleaseOrderInput, ReleaseOrderResult

RELEASE_REJECTED = "ReleaseRejected"
WAREHOUSE_RATE_LIMITED = "WarehouseRateLimited"


def release_idempotency_key(workflow_id: str) -> str:
    # One release per process instance, whatever the run or the attempt.
    return f"{workflow_id}/release"


# Called once the warehouse took the order (release input, release id,
# warehouse): activities/fulfilment.py FulfilmentStart starts its fulfilment.
AfterRelease = Callable[[ReleaseOrderInput, str, str], Awaitable[bool]]


class WarehouseActivities:
    def __init__(self, warehouse: Warehouse, after_release: AfterRelease | None = None) -> None:
        self.warehouse = warehouse
        self.after_release = after_release

    @activity.defn(name=RELEASE_ORDER)
    async def release_order_to_warehouse(self, input: ReleaseOrderInput) -> ReleaseOrderResult:
        log = activity_logger(order_id=input.order_id, market=input.market)
        try:
            release = await self.warehouse.release_order(
                idempotency_key=release_idempotency_key(input.workflow_id),
                order_id=input.order_id,
                market=input.market,
                destination_country=input.destination_country,
                items=input.items,
            )
        except ReleaseRejectedError as exc:
            log.warning("warehouse_release_rejected", code=exc.code)
            raise ApplicationError(
                str(exc), exc.code, type=RELEASE_REJECTED, non_retryable=True
            ) from exc
        except RateLimitedError as exc:
            raise ApplicationError(
                str(exc), type=WAREHOUSE_RATE_LIMITED, next_retry_delay=exc.retry_after
            ) from exc
        log.info("order_released", release_id=release.release_id, warehouse=release.warehouse)
        if self.after_release is not None:
            # Idempotent: a retried release finds the fulfilment started.
            await self.after_release(input, release.release_id, release.warehouse)
        return ReleaseOrderResult(release_id=release.release_id, warehouse=release.warehouse)
