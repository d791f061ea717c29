"""Packing-station CCTV clips, requested from the warehouse.

The warehouse answers asynchronously: the request is recorded now, and the
clip arrives later through POST /v1/webhooks/warehouse/cctv, which signals
`cctv_clip_ready` to the workflow named in the request (see domain/evidence.py
for the whole contract). Footage older than the retention period is refused
immediately: waiting for an answer that cannot come would only burn the
caller's deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import RefusedError
from domain.evidence import (
    CCTV_FOOTAGE_EXPIRED,
    DEFAULT_CCTV_RETENTION,
    REQUEST_CCTV_CLIP,
    CctvClipRequest,
    CctvClipRequestResult,
    CctvRequestStatus,
)
from store import disputes as dispute_store

CCTV_REQUEST_REFUSED = "CctvRequestRefused"


class CctvFootageExpiredError(RefusedError):
    """The recording was deleted under the retention policy."""


class CctvArchive(Protocol):
    """The warehouse's CCTV archive. Idempotent by request id."""

    retention: timedelta

    async def request_clip(
        self,
        *,
        request_id: str,
        order_id: str,
        footage_at: datetime | None,
        station: str | None,
        reply_to: str,
    ) -> CctvClipRequestResult: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class SimulatedCctvArchive:
    """Records requests in sim_cctv_requests; answers come later through the
    warehouse webhook (the simulator, or a test, posts them)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        retention: timedelta = DEFAULT_CCTV_RETENTION,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.pool = pool
        self.retention = retention
        self.clock = clock

    async def request_clip(
        self,
        *,
        request_id: str,
        order_id: str,
        footage_at: datetime | None,
        station: str | None,
        reply_to: str,
    ) -> CctvClipRequestResult:
        existing = await dispute_store.sim_get_cctv_request(self.pool, request_id)
        if existing is None:
            if footage_at is None:
                release = await dispute_store.sim_release_of_order(self.pool, order_id)
                if release is None:
                    raise RefusedError(
                        f"order {order_id} was never released to the warehouse: "
                        "no packing footage exists",
                        "not_packed",
                    )
                footage_at = release[1]
                station = station or f"{release[0]}/pack-1"
            retained_until = footage_at + self.retention
            if self.clock() >= retained_until:
                raise CctvFootageExpiredError(
                    f"footage of order {order_id} packed {footage_at:%Y-%m-%d %H:%M} UTC was "
                    f"deleted on {retained_until:%Y-%m-%d} ({self.retention.days}-day retention)",
                    "retention_expired",
                )
            existing = await dispute_store.sim_insert_cctv_request(
                self.pool,
                request_id=request_id,
                order_id=order_id,
                station=station or "pack-1",
                footage_at=footage_at,
                reply_to=reply_to,
            )
        return CctvClipRequestResult(
            request_id=existing.request_id,
            status=CctvRequestStatus(existing.status),
            station=existing.station,
            footage_at=existing.footage_at,
            retained_until=existing.footage_at + self.retention,
        )


class EvidenceActivities:
    def __init__(self, archive: CctvArchive) -> None:
        self.archive = archive

    @activity.defn(name=REQUEST_CCTV_CLIP)
    async def request_cctv_clip(self, input: CctvClipRequest) -> CctvClipRequestResult:
        log = activity_logger(order_id=input.order_id, request_id=input.request_id)
        try:
            result = await self.archive.request_clip(
                request_id=input.request_id,
                order_id=input.order_id,
                footage_at=input.footage_at,
                station=input.station,
                reply_to=input.reply_to_workflow_id,
            )
        except CctvFootageExpiredError as exc:
            log.info("cctv_footage_expired", code=exc.code)
            raise ApplicationError(
                str(exc), exc.code, type=CCTV_FOOTAGE_EXPIRED, non_retryable=True
            ) from exc
        except RefusedError as exc:
            log.info("cctv_request_refused", code=exc.code)
            raise ApplicationError(
                str(exc), exc.code, type=CCTV_REQUEST_REFUSED, non_retryable=True
            ) from exc
        log.info("cctv_clip_requested", status=result.status.value, station=result.station)
        return result
