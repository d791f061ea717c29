"""Releasing an order to the warehouse (3PL/WMS) once payment is captured."""

from __future__ import annotations

from domain.common import CountryCode, NonEmptyStr, StewardModel
from domain.orders import Order


class ReleaseItem(StewardModel):
    sku: str
    quantity: int
    serial_number: str | None = None


class ReleaseOrderInput(StewardModel):
    workflow_id: NonEmptyStr
    order_id: NonEmptyStr
    market: CountryCode
    destination_country: CountryCode
    items: list[ReleaseItem]
    # The released order, from which the release activity starts its
    # fulfilment (issue 16). Absent in releases scheduled before: none starts.
    order: Order | None = None
    # Issue 21: `order` is pseudonymised; the release reads its personal
    # values from this subject before it starts the fulfilment. None: in it.
    subject_id: str | None = None


class ReleaseOrderResult(StewardModel):
    release_id: str
    warehouse: str


RELEASE_ORDER = "release_order_to_warehouse"
