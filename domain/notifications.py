"""Messages to customers through the notification port."""

from __future__ import annotations

from enum import StrEnum

from pydantic import EmailStr

from domain.common import NonEmptyStr, StewardModel


class CustomerTemplate(StrEnum):
    ORDER_CONFIRMED = "order_confirmed"
    ORDER_CANCELLED = "order_cancelled"
    VERIFICATION_REQUEST = "verification_request"


class NotifyCustomerInput(StewardModel):
    workflow_id: NonEmptyStr
    # Deterministic per message so a retried send is delivered once.
    message_id: NonEmptyStr
    order_id: NonEmptyStr
    email: EmailStr
    template: CustomerTemplate
    locale: str = "en"


class NotifyCustomerResult(StewardModel):
    message_id: str
    delivered: bool


NOTIFY_CUSTOMER = "notify_customer"
