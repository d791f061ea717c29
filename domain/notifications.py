"""Messages to customers through the notification port."""

from __future__ import annotations

from enum import StrEnum

from pydantic import EmailStr

from domain.common import NonEmptyStr, StewardModel


class CustomerTemplate(StrEnum):
    ORDER_CONFIRMED = "order_confirmed"
    ORDER_CANCELLED = "order_cancelled"
    VERIFICATION_REQUEST = "verification_request"
    # Returns (workflows/returns.py).
    RETURN_REJECTED = "return_rejected"
    RETURN_LABEL = "return_label"
    RETURN_LABEL_REMINDER = "return_label_reminder"
    RETURN_REFUNDED = "return_refunded"
    EXCHANGE_OUT_OF_STOCK = "exchange_out_of_stock"


class NotifyCustomerInput(StewardModel):
    workflow_id: NonEmptyStr
    # Deterministic per message so a retried send is delivered once.
    message_id: NonEmptyStr
    order_id: NonEmptyStr
    email: EmailStr
    template: CustomerTemplate
    locale: str = "en"
    # Issue 21: the recipient's address is read from this personal-data
    # subject, field `email_field`, when the message is sent; `email` is then
    # a placeholder (domain/order_privacy.py). None: `email` is the address.
    subject_id: str | None = None
    email_field: str = "customer.email"


class NotifyCustomerResult(StewardModel):
    message_id: str
    delivered: bool


NOTIFY_CUSTOMER = "notify_customer"
