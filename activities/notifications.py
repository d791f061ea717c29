"""Customer messages through the notifier port."""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import NotificationRejectedError, Notifier, RateLimitedError
from domain.notifications import NOTIFY_CUSTOMER, NotifyCustomerInput, NotifyCustomerResult
from store import personal_data

NOTIFICATION_REJECTED = "NotificationRejected"
NOTIFIER_RATE_LIMITED = "NotifierRateLimited"


class NotificationActivities:
    def __init__(self, notifier: Notifier, pool: asyncpg.Pool | None = None) -> None:
        self.notifier = notifier
        # Reads the recipient of a message whose input names a personal-data
        # subject instead of carrying the address (issue 21).
        self.pool = pool

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
        recipient = str(input.email)
        if input.subject_id is not None:
            if self.pool is None:
                raise RuntimeError("notify_customer: a subject id needs the database pool")
            view = (await personal_data.read_subjects(self.pool, [input.subject_id]))[
                input.subject_id
            ]
            address = view.fields.get(input.email_field)
            if view.erased or not address:
                # Erased (a privacy request) while the case ran: nobody to tell.
                log.info("customer_notification_skipped", why="recipient erased")
                return NotifyCustomerResult(message_id=input.message_id, delivered=False)
            recipient = address
        try:
            delivered = await self.notifier.send(
                message_id=input.message_id,
                order_id=input.order_id,
                recipient_email=recipient,
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
