"""The order as upstream order management sends it for review."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    AwareDatetime,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain.common import (
    MAX_MINOR_UNITS,
    SINGLE_LINE,
    BusinessKey,
    CountryCode,
    CurrencyCode,
    MinorUnits,
    StewardModel,
)

# Bounds of an order's text and size: an order is a workflow input, and
# Temporal refuses a payload over 2 MB; these keep the largest valid order
# (MAX_ITEMS items with every field at its longest) under 200 KB.
MAX_ITEMS = 100
# References (SKUs, ids, refs) are one line; names and address lines are
# free text (an upstream system may break a street address over lines): no
# control character but tab, line feed and carriage return (StewardModel).
ShortText = Annotated[str, StringConstraints(max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=500)]
Reference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SINGLE_LINE
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    CLIENT_ADVISOR = "client_advisor"  # boutique staff ordering for a client by phone
    EMPLOYEE_SALE = "employee_sale"  # an employee's order in a special sale (domain/campaign.py)


class ItemCategory(StrEnum):
    HANDBAGS = "handbags"
    WATCHES = "watches"
    JEWELLERY = "jewellery"
    READY_TO_WEAR = "ready_to_wear"
    SHOES = "shoes"
    SMALL_LEATHER_GOODS = "small_leather_goods"
    ACCESSORIES = "accessories"
    FRAGRANCE = "fragrance"


# Categories a fraudster resells fastest; they weigh more in scoring.
HIGH_RESALE_CATEGORIES = frozenset(
    {ItemCategory.HANDBAGS, ItemCategory.WATCHES, ItemCategory.JEWELLERY}
)


class AvsResult(StrEnum):
    MATCH = "match"
    PARTIAL = "partial"
    MISMATCH = "mismatch"
    UNAVAILABLE = "unavailable"


class CvvResult(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    UNAVAILABLE = "unavailable"


class ThreeDSOutcome(StrEnum):
    AUTHENTICATED = "authenticated"
    ATTEMPTED = "attempted"
    FAILED = "failed"
    NOT_PERFORMED = "not_performed"


class Address(StewardModel):
    line1: Name
    line2: LongText | None = None
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    postal_code: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20), SINGLE_LINE
    ]
    region: ShortText | None = None
    country: CountryCode


class Customer(StewardModel):
    customer_id: BusinessKey
    email: Annotated[EmailStr, Field(max_length=320)]
    full_name: Name
    phone: Annotated[str, StringConstraints(max_length=40), SINGLE_LINE] | None = None
    account_created_at: AwareDatetime


class OrderItem(StewardModel):
    sku: Reference
    name: Name
    category: ItemCategory
    unit_price_minor: MinorUnits
    quantity: int = Field(ge=1, le=100)
    serial_number: ShortText | None = None


class Payment(StewardModel):
    provider: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), SINGLE_LINE
    ] = "simulated"
    authorisation_ref: Reference
    amount_minor: MinorUnits
    currency: CurrencyCode
    card_fingerprint: Reference
    card_country: CountryCode
    avs_result: AvsResult
    cvv_result: CvvResult
    three_ds: ThreeDSOutcome
    authorised_at: AwareDatetime
    authorisation_expires_at: AwareDatetime

    @model_validator(mode="after")
    def _expiry_after_authorisation(self) -> Payment:
        if self.authorisation_expires_at <= self.authorised_at:
            raise ValueError("authorisation_expires_at must be after authorised_at")
        return self


class Device(StewardModel):
    device_id: Reference
    ip_address: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), SINGLE_LINE
    ]
    ip_country: CountryCode | None = None


class Order(StewardModel):
    order_id: BusinessKey
    market: CountryCode
    channel: Channel
    currency: CurrencyCode
    placed_at: AwareDatetime
    customer: Customer
    billing_address: Address
    shipping_address: Address
    items: list[OrderItem] = Field(min_length=1, max_length=MAX_ITEMS)
    shipping_minor: MinorUnits = 0
    payment: Payment
    device: Device

    @property
    def total_minor(self) -> int:
        return sum(i.unit_price_minor * i.quantity for i in self.items) + self.shipping_minor

    @field_validator("items")
    @classmethod
    def _items_total_fits(cls, items: list[OrderItem]) -> list[OrderItem]:
        total = sum(i.unit_price_minor * i.quantity for i in items)
        if total > MAX_MINOR_UNITS:
            raise ValueError(
                f"the items total {total} (unit_price_minor x quantity) exceeds the maximum "
                f"{MAX_MINOR_UNITS} minor units"
            )
        return items

    @field_validator("shipping_minor")
    @classmethod
    def _order_total_fits(cls, shipping_minor: int, info: ValidationInfo) -> int:
        items = info.data.get("items") or []
        total = sum(i.unit_price_minor * i.quantity for i in items) + shipping_minor
        if total > MAX_MINOR_UNITS:
            raise ValueError(
                f"the order total {total} (items plus shipping) exceeds the maximum "
                f"{MAX_MINOR_UNITS} minor units"
            )
        return shipping_minor

    @model_validator(mode="after")
    def _payment_matches_order(self) -> Order:
        if self.payment.currency != self.currency:
            raise ValueError(
                f"payment.currency {self.payment.currency} differs from order currency "
                f"{self.currency}"
            )
        if self.payment.amount_minor != self.total_minor:
            raise ValueError(
                f"payment.amount_minor {self.payment.amount_minor} differs from the order "
                f"total {self.total_minor} (items plus shipping)"
            )
        return self
