"""Releasing an order to the warehouse (3PL/WMS) once payment is captured."""

from __future__ import annotations

from domain.common import CountryCode, NonEmptyStr, StewardModel


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


class ReleaseOrderResult(StewardModel):
    release_id: str
    warehouse: str


RELEASE_ORDER = "release_order_to_warehouse"
