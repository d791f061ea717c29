"""Evidence Steward gathers from its own systems, starting with the
packing-station CCTV clip.

The CCTV contract is shared by every process that needs footage (chargebacks,
carrier claims, operations requests):

1. The workflow calls the activity REQUEST_CCTV_CLIP with a CctvClipRequest
   naming itself in `reply_to_workflow_id`. The activity asks the warehouse
   and returns at once (CctvClipRequestResult, status "requested").
2. If the footage is older than the warehouse keeps it (retention, default 30
   days, configurable), the activity fails immediately with the non-retryable
   ApplicationError type CCTV_FOOTAGE_EXPIRED and a message giving both dates.
3. Later the warehouse answers (POST /v1/webhooks/warehouse/cctv), and Steward
   signals CCTV_CLIP_READY_SIGNAL ("cctv_clip_ready") with a CctvClipReady to
   the workflow named in the request. The signal carries an event id: treat a
   repeat as a duplicate. `available=False` means the warehouse looked and
   has no usable footage (camera down...), with `reason`.

The workflow must wait for the signal with its own deadline; the warehouse
may never answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field

from domain.common import NonEmptyStr, StewardModel

REQUEST_CCTV_CLIP = "request_cctv_clip"
CCTV_CLIP_READY_SIGNAL = "cctv_clip_ready"
# ApplicationError type of a request for footage the warehouse no longer keeps.
CCTV_FOOTAGE_EXPIRED = "CctvFootageExpired"

DEFAULT_CCTV_RETENTION = timedelta(days=30)
# How long a workflow should wait for the warehouse's answer before going on
# without the clip (a default; processes may choose their own).
DEFAULT_CCTV_ANSWER_TIMEOUT = timedelta(hours=48)


def cctv_request_id(workflow_id: str, sequence: int = 1) -> str:
    """Deterministic, so a retried activity asks the warehouse once."""
    return f"{workflow_id}/cctv/{sequence}"


class CctvClipRequest(StewardModel):
    request_id: NonEmptyStr  # use cctv_request_id(); it is the idempotency key
    reply_to_workflow_id: NonEmptyStr
    order_id: NonEmptyStr
    # When the parcel was packed; None: the warehouse looks it up from its release.
    footage_at: datetime | None = None
    station: str | None = None  # packing station, when known
    purpose: str = Field(default="", max_length=200)  # "chargeback", "carrier claim"...


class CctvRequestStatus(StrEnum):
    REQUESTED = "requested"
    DELIVERED = "delivered"  # a repeat of a request already answered
    UNAVAILABLE = "unavailable"


class CctvClipRequestResult(StewardModel):
    request_id: str
    status: CctvRequestStatus
    station: str
    footage_at: datetime
    # Footage retention: the warehouse deletes the recording after this.
    retained_until: datetime


class CctvClipReady(StewardModel):
    """The warehouse's answer, delivered as the `cctv_clip_ready` signal."""

    event_id: NonEmptyStr
    request_id: NonEmptyStr
    order_id: NonEmptyStr
    available: bool = True
    clip_ref: str | None = None  # the warehouse's reference / URL of the clip
    station: str | None = None
    reason: str = ""  # why no clip, when available is False
