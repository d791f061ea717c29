"""The order as upstream order management sends it for review."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import EmailStr, Field, model_validator

from domain.common import (
    BusinessKey,
    CountryCode,
    CurrencyCode,
    MinorUnits,
    NonEmptyStr,
    StewardModel,
)


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    CLIENT_ADVISOR = "client_advisor"  # boutique staff ordering for a client by phone


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
    line1: NonEmptyStr
    line2: str | None = None
    city: NonEmptyStr
    postal_code: NonEmptyStr
    region: str | None = None
    country: CountryCode


class Customer(StewardModel):
    customer_id: BusinessKey
    email: EmailStr
    full_name: NonEmptyStr
    phone: str | None = None
    account_created_at: datetime


class OrderItem(StewardModel):
    sku: NonEmptyStr
    name: NonEmptyStr
    category: ItemCategory
    unit_price_minor: MinorUnits
    quantity: int = Field(ge=1, le=100)
    serial_number: str | None = None


class Payment(StewardModel):
    provider: NonEmptyStr = "simulated"
    authorisation_ref: NonEmptyStr
    amount_minor: MinorUnits
    currency: CurrencyCode
    card_fingerprint: NonEmptyStr
    card_country: CountryCode
    avs_result: AvsResult
    cvv_result: CvvResult
    three_ds: ThreeDSOutcome
    authorised_at: datetime
    authorisation_expires_at: datetime

    @model_validator(mode="after")
    def _expiry_after_authorisation(self) -> Payment:
        if self.authorisation_expires_at <= self.authorised_at:
            raise ValueError("authorisation_expires_at must be after authorised_at")
        return self


class Device(StewardModel):
    device_id: NonEmptyStr
    ip_address: NonEmptyStr
    ip_country: CountryCode | None = None


class Order(StewardModel):
    order_id: BusinessKey
    market: CountryCode
    channel: Channel
    currency: CurrencyCode
    placed_at: datetime
    customer: Customer
    billing_address: Address
    shipping_address: Address
    items: list[OrderItem] = Field(min_length=1)
    shipping_minor: MinorUnits = 0
    payment: Payment
    device: Device

    @property
    def total_minor(self) -> int:
        return sum(i.unit_price_minor * i.quantity for i in self.items) + self.shipping_minor

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
