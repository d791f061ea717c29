"""Failed deliveries: customer messages, the second shipment, inbound QC and
restock of a parcel the carrier brought back.

Every call carries a key derived from the workflow id (never the run id), so a
retried activity books one label, sends one message and restocks once.
"""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import (
    Carrier,
    NotificationRejectedError,
    Notifier,
    ParcelReturnsDesk,
    RateLimitedError,
    RefusedError,
)
from domain.deliveries import (
    BOOK_RESHIPMENT,
    INSPECT_RETURNED_PARCEL,
    NOTIFY_DELIVERY_CUSTOMER,
    RESHIP_BOOKING_REFUSED,
    RESTOCK_RETURNED_PARCEL,
    BookReshipmentInput,
    BookReshipmentResult,
    InspectionGrade,
    InspectParcelInput,
    InspectParcelResult,
    NotifyDeliveryCustomerInput,
    RestockParcelInput,
    RestockParcelResult,
    ShipmentRecord,
)
from domain.notifications import NotifyCustomerResult
from store import deliveries as delivery_store

NOTIFICATION_REJECTED = "NotificationRejected"
CARRIER_RATE_LIMITED = "CarrierRateLimited"


def reship_shipment_id(original_shipment_id: str, attempt: int) -> str:
    # Deterministic: a retried booking registers the same second shipment.
    return f"{original_shipment_id}-R{attempt}"


class DeliveryActivities:
    def __init__(
        self, pool: asyncpg.Pool, carrier: Carrier, desk: ParcelReturnsDesk, notifier: Notifier
    ) -> None:
        self.pool = pool
        self.carrier = carrier
        self.desk = desk
        self.notifier = notifier

    @activity.defn(name=NOTIFY_DELIVERY_CUSTOMER)
    async def notify_delivery_customer(
        self, input: NotifyDeliveryCustomerInput
    ) -> NotifyCustomerResult:
        log = activity_logger(
            order_id=input.order_id, message_id=input.message_id, template=input.template.value
        )
        try:
            delivered = await self.notifier.send(
                message_id=input.message_id,
                order_id=input.order_id,
                recipient_email=input.email,
                template=input.template.value,
                locale=input.locale,
            )
        except NotificationRejectedError as exc:
            log.warning("delivery_notification_rejected", code=exc.code)
            raise ApplicationError(
                f"message {input.message_id} was rejected: {exc.code}",
                exc.code,
                type=NOTIFICATION_REJECTED,
                non_retryable=True,
            ) from exc
        except RateLimitedError as exc:
            raise ApplicationError(str(exc), next_retry_delay=exc.retry_after) from exc
        log.info("delivery_customer_notified", delivered=delivered)
        return NotifyCustomerResult(message_id=input.message_id, delivered=delivered)

    @activity.defn(name=BOOK_RESHIPMENT)
    async def book_reshipment(self, input: BookReshipmentInput) -> BookReshipmentResult:
        attempt = input.shipment.attempt + 1
        shipment_id = reship_shipment_id(input.original_shipment_id, attempt)
        try:
            booked = await self.carrier.book_shipment(
                idempotency_key=input.idempotency_key,
                carrier=input.carrier,
                order_id=input.order_id,
                destination_country=input.destination.country,
                service_level=input.service_level.value,
                pickup_point_id=input.pickup_point_id,
                destination=input.destination,
                earliest_delivery=input.earliest_delivery,
            )
        except RateLimitedError as exc:
            raise ApplicationError(
                str(exc), type=CARRIER_RATE_LIMITED, next_retry_delay=exc.retry_after
            ) from exc
        except RefusedError as exc:
            # Retrying buys nothing: the workflow asks a coordinator instead.
            activity_logger(order_id=input.order_id).warning(
                "reshipment_refused", code=exc.code, service_level=input.service_level.value
            )
            raise ApplicationError(
                f"{input.carrier} refused the {input.service_level} label: {exc}",
                exc.code,
                type=RESHIP_BOOKING_REFUSED,
                non_retryable=True,
            ) from exc
        record = ShipmentRecord(
            shipment_id=shipment_id,
            carrier=input.carrier,
            tracking_number=booked.tracking_number,
            service_level=input.service_level,
            expected_delivery_at=booked.expected_delivery_at,
            order=input.shipment.order,
            attempt=attempt,
            destination=input.destination,
        )
        # Followed by the failed delivery that booked it: its scans go there.
        await delivery_store.register_shipment(self.pool, record, tracked_by=input.workflow_id)
        activity_logger(order_id=input.order_id).info(
            "reshipment_booked", shipment_id=shipment_id, tracking_number=booked.tracking_number
        )
        return BookReshipmentResult(
            shipment_id=shipment_id,
            carrier=input.carrier,
            tracking_number=booked.tracking_number,
            expected_delivery_at=booked.expected_delivery_at,
        )

    @activity.defn(name=INSPECT_RETURNED_PARCEL)
    async def inspect_returned_parcel(self, input: InspectParcelInput) -> InspectParcelResult:
        grade, notes = await self.desk.inspect(
            idempotency_key=f"{input.workflow_id}/inspect/{input.shipment_id}",
            shipment_id=input.shipment_id,
            order_id=input.order_id,
        )
        activity_logger(order_id=input.order_id).info("parcel_inspected", grade=grade)
        return InspectParcelResult(grade=InspectionGrade(grade), notes=notes)

    @activity.defn(name=RESTOCK_RETURNED_PARCEL)
    async def restock_returned_parcel(self, input: RestockParcelInput) -> RestockParcelResult:
        location = await self.desk.restock(
            idempotency_key=f"{input.workflow_id}/restock/{input.shipment_id}",
            shipment_id=input.shipment_id,
            skus=input.skus,
        )
        activity_logger(order_id=input.order_id).info("parcel_restocked", location=location)
        return RestockParcelResult(location=location)
