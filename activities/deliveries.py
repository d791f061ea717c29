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
from activities.scoring import ScoringActivities
from domain.deliveries import (
    BOOK_RESHIPMENT,
    INSPECT_RETURNED_PARCEL,
    NOTIFY_DELIVERY_CUSTOMER,
    RESHIP_BOOKING_REFUSED,
    RESTOCK_RETURNED_PARCEL,
    SCORE_DELIVERY_ADDRESS,
    SHIPMENT_EMAIL_FIELD,
    BookReshipmentInput,
    BookReshipmentResult,
    InspectionGrade,
    InspectParcelInput,
    InspectParcelResult,
    NotifyDeliveryCustomerInput,
    RestockParcelInput,
    RestockParcelResult,
    ScoreDeliveryAddressInput,
    ShipmentRecord,
    is_pseudonymous_address,
)
from domain.notifications import NotifyCustomerResult
from domain.orders import Address
from domain.risk import RiskAssessment, ScoreOrderInput
from store import deliveries as delivery_store
from store import personal_data

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
        # The rules a new address is rescored with (no authorisation mirror:
        # the order's authorisation was registered when it was first scored).
        self.scoring = ScoringActivities(pool)

    @activity.defn(name=NOTIFY_DELIVERY_CUSTOMER)
    async def notify_delivery_customer(
        self, input: NotifyDeliveryCustomerInput
    ) -> NotifyCustomerResult:
        log = activity_logger(
            order_id=input.order_id, message_id=input.message_id, template=input.template.value
        )
        recipient = input.email
        if input.subject_id is not None:
            # Issue 21: the workflow holds the shipment pseudonymised; the
            # recipient comes from the shipment's subject (one query).
            view = (await personal_data.read_subjects(self.pool, [input.subject_id]))[
                input.subject_id
            ]
            email = view.fields.get(SHIPMENT_EMAIL_FIELD)
            if view.erased or not email:
                # Erased by a privacy request while the case ran: nobody to tell.
                log.info("delivery_notification_skipped", why="recipient erased")
                return NotifyCustomerResult(message_id=input.message_id, delivered=False)
            recipient = email
        try:
            delivered = await self.notifier.send(
                message_id=input.message_id,
                order_id=input.order_id,
                recipient_email=recipient,
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

    async def _stored_shipment(self, shipment: ShipmentRecord) -> ShipmentRecord:
        """The shipment with its personal values: `shipment` itself when it
        carries them, else read back from the store by its id (issue 21: the
        record and its subject, one query; erased values as placeholders)."""
        if shipment.subject_id is None:
            return shipment
        return (await self._registered(shipment.shipment_id)).record

    async def _registered(self, shipment_id: str) -> delivery_store.ShipmentRow:
        """The registered shipment (one query); an unknown id is for good."""
        row = await delivery_store.get_shipment(self.pool, shipment_id)
        if row is None:
            raise ApplicationError(
                f"shipment_id: no shipment {shipment_id} is registered",
                type="UnknownShipment",
                non_retryable=True,
            )
        return row

    @activity.defn(name=BOOK_RESHIPMENT)
    async def book_reshipment(self, input: BookReshipmentInput) -> BookReshipmentResult:
        attempt = input.shipment.attempt + 1
        shipment_id = reship_shipment_id(input.original_shipment_id, attempt)
        original = await self._stored_shipment(input.shipment)
        destination = input.destination
        ref = input.destination_ref
        if ref is not None and ref.subject_id != input.shipment.subject_id:
            # Issue 21: a new address, kept in the personal-data store.
            destination = await self._kept_address(ref.subject_id, input)
        elif input.shipment.subject_id is not None and (
            ref is not None or is_pseudonymous_address(destination)
        ):
            # The current destination, kept in the shipment's subject.
            destination = original.address
        try:
            booked = await self.carrier.book_shipment(
                idempotency_key=input.idempotency_key,
                carrier=input.carrier,
                order_id=input.order_id,
                destination_country=destination.country,
                service_level=input.service_level.value,
                pickup_point_id=input.pickup_point_id,
                destination=destination,
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
            order=original.order,
            attempt=attempt,
            destination=destination,
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

    async def _kept_address(self, subject_id: str, input: BookReshipmentInput) -> Address:
        try:
            return await delivery_store.get_delivery_address(self.pool, subject_id)
        except personal_data.SubjectErased as exc:
            # Erased by a privacy request: no label can go there; the
            # workflow asks a coordinator (another address or return to stock).
            raise ApplicationError(
                f"{input.carrier} refused the {input.service_level} label: "
                "the destination was erased",
                "destination_erased",
                type=RESHIP_BOOKING_REFUSED,
                non_retryable=True,
            ) from exc

    @activity.defn(name=SCORE_DELIVERY_ADDRESS)
    async def score_delivery_address(self, input: ScoreDeliveryAddressInput) -> RiskAssessment:
        """The order of a pseudonymised shipment scored as if placed to
        `input.address`: its personal values from the store (one query), the
        rules and signals of the `score_order` activity."""
        row = await self._registered(input.shipment_id)
        address = input.address
        if input.address_ref is not None:
            address = await delivery_store.get_delivery_address(
                self.pool, input.address_ref.subject_id
            )
        order = row.record.order.model_copy(update={"shipping_address": address})
        return await self.scoring.score_order(ScoreOrderInput(order=order))

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
