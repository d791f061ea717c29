"""The carrier silence sweep: parcels with no scan some days after their
expected delivery are presumed lost and claimed. Pure.

The sweep runs every hour from a Temporal Schedule (`carrier-silence-sweep`,
overlap skip), on demand from `steward claims sweep`, and through
`POST /v1/carrier/sweep`; each run is idempotent (one synthetic event id per
shipment), so an overlap or a manual run never opens a claim twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field

from domain.common import StewardModel

# No scan for this long after the expected delivery: the parcel is presumed lost.
DEFAULT_SILENCE = timedelta(days=5)
SWEEP_EVERY = timedelta(hours=1)

CARRIER_SWEEP_SCHEDULE_ID = "carrier-silence-sweep"
CARRIER_SWEEP_WORKFLOW = "CarrierSilenceSweepWorkflow"
SWEEP_SILENT_SHIPMENTS = "sweep_silent_shipments"


class CarrierSweepInput(StewardModel):
    silence: timedelta = Field(default=DEFAULT_SILENCE, ge=timedelta(days=1), le=timedelta(days=60))
    # The sweep's clock; None: the activity's own (a manual run).
    as_of: datetime | None = None


class CarrierSweepResult(StewardModel):
    as_of: datetime
    silence: timedelta
    # Workflow ids of the claims this run opened (a repeat opens none).
    claims_opened: list[str] = Field(default_factory=list)
    shipments_swept: int = 0
