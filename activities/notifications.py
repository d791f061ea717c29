"""Customer messages through the notifier port."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import NotificationRejectedError, Notifier, RateLimitedError
from domain.notifications import NOTIFY_CUSTOMER, NotifyCustomerInput, NotifyCustomerResult

NOTIFICATION_REJECTED = "NotificationRejected"
NOTIFIER_RATE_LIMITED = "NotifierRateLimited"


class NotificationActivities:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    @activity.defn(name=NOTIFY_CUSTOMER)
    async def notify_customer(self, input: NotifyCustomerInput) -> NotifyCustomerResult:
        # The template and order id identify the message; the address is
        # personal data and never reaches a log line.
        log = activity_logger(
            order_id=input.order_id,
            message_id=input.message_id,
            template=input.template.value,
            locale=input.locale,
        )
        try:
            delivered = await self.notifier.send(
                message_id=input.message_id,
                order_id=input.order_id,
                recipient_email=str(input.email),
                template=input.template.value,
                locale=input.locale,
            )
        except NotificationRejectedError as exc:
            log.warning("customer_notification_rejected", code=exc.code)
            raise ApplicationError(
                f"message {input.message_id} for order {input.order_id} was rejected: {exc.code}",
                exc.code,
                type=NOTIFICATION_REJECTED,
                non_retryable=True,
            ) from exc
        except RateLimitedError as exc:
            raise ApplicationError(
                str(exc), type=NOTIFIER_RATE_LIMITED, next_retry_delay=exc.retry_after
            ) from exc
        log.info("customer_notified", delivered=delivered)
        return NotifyCustomerResult(message_id=input.message_id, delivered=delivered)
