"""Typed helpers to start and drive failed deliveries from outside Temporal:
start one for a shipment (from the carrier event ingest path,
clients/carrier_events.py), read its state, send a coordinator's decision,
relay the customer's reply and the warehouse's receipt of the parcel.

The workflow is addressed by its registered names
(domain.deliveries.FailedDeliveryContract), as in
clients/order_review.py, so the API process never loads workflow code.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from clients.calls import failure_message, query_case, signal_running
from clients.errors import UPDATE_TIMEOUT, CaseNotFound, CaseRefused
from domain.carrier_events import CarrierEvent
from domain.common import format_amount
from domain.deliveries import (
    AddressRef,
    CustomerReply,
    DeliveryDecideInput,
    FailedDeliveryContract,
    FailedDeliveryInput,
    FailedDeliveryState,
    ParcelReceived,
    ShipmentRecord,
    failed_delivery_policy,
    pseudonymise_shipment,
)
from domain.ids import FAILED_DELIVERY, failed_delivery_id
from domain.orders import Address
from store import deliveries, order_subjects, personal_data
from workflows import visibility


async def start_failed_delivery(
    client: Client,
    shipment: ShipmentRecord,
    event: CarrierEvent,
    task_queue: str,
    *,
    subject_id: str | None = None,
) -> str | None:
    """Open the shipment's failed delivery with `event`; None when it already had one.

    `subject_id` (issue 21): the personal-data subject that keeps the
    shipment's personal values (store/deliveries.py, kind `shipment`); the
    workflow then gets the record pseudonymised and reads the values back by
    it. None: the record goes as it is (a shipment not kept in the store)."""
    if subject_id is not None:
        shipment = pseudonymise_shipment(
            shipment, subject_id, deliveries.address_fingerprint(shipment.address)
        )
    workflow_id = failed_delivery_id(shipment.shipment_id)
    try:
        # Signal-with-start: the first failure starts the case, a racing second
        # event signals it; the workflow de-duplicates by event id.
        await client.start_workflow(
            FailedDeliveryContract.WORKFLOW_TYPE,
            FailedDeliveryInput(
                shipment=shipment,
                trigger=event,
                policy=failed_delivery_policy(
                    shipment.order.market, starting=datetime.now(UTC).date()
                ),
            ),
            id=workflow_id,
            task_queue=task_queue,
            start_signal=FailedDeliveryContract.SIGNAL_CARRIER_EVENT,
            start_signal_args=[event],
            # One failed-delivery case per shipment, ever: a closed one is not redone.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(visibility.PROCESS, FAILED_DELIVERY),
                    SearchAttributePair(visibility.MARKET, shipment.order.market),
                ]
            ),
            static_summary=(
                f"Failed delivery {shipment.carrier} · "
                f"{format_amount(shipment.order.payment.amount_minor, shipment.order.currency)}"
            ),
        )
    except WorkflowAlreadyStartedError:
        return None
    return workflow_id


async def get_delivery(client: Client, shipment_id: str) -> FailedDeliveryState:
    handle = client.get_workflow_handle(failed_delivery_id(shipment_id))
    state: FailedDeliveryState = await query_case(
        handle,
        FailedDeliveryContract.QUERY_STATUS,
        FailedDeliveryState,
        f"failed delivery for shipment {shipment_id}",
    )
    return state


async def decide_delivery(
    client: Client,
    shipment_id: str,
    decision: DeliveryDecideInput,
    *,
    update_id: str | None = None,
    db: order_subjects.Executor | None = None,
) -> FailedDeliveryState:
    """Send a coordinator's decision. `db` (issue 21): a reship address goes
    to the personal-data store (`put_delivery_address`) and the update
    carries its reference instead."""
    if db is not None and decision.address is not None:
        ref = await _keep_address(db, shipment_id, decision.address)
        if ref is not None:
            decision = decision.model_copy(update={"address": None, "address_ref": ref})
    handle = client.get_workflow_handle(failed_delivery_id(shipment_id))
    try:
        state: FailedDeliveryState = await handle.execute_update(
            FailedDeliveryContract.UPDATE_DECIDE,
            decision,
            id=update_id,
            result_type=FailedDeliveryState,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as err:
        raise CaseRefused(failure_message(err.cause)) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(
                f"no running failed delivery for shipment {shipment_id} (closed or unknown)"
            ) from err
        raise
    return state


async def relay_customer_reply(
    client: Client,
    shipment_id: str,
    reply: CustomerReply,
    *,
    db: order_subjects.Executor | None = None,
) -> None:
    """The customer's answer to the delivery options (the `customer_replied`
    signal). `db` (issue 21): the customer's words go to the personal-data
    store (kind `message`, owned by the shipment's subject, one per reply
    event) and the signal carries the subject id instead; a shipment Steward
    does not know keeps nothing (the signal then finds no case)."""
    if db is not None and reply.message:
        shipment = await deliveries.get_shipment(db, shipment_id)
        if shipment is not None:
            subject_id = await order_subjects.put_shipment_message(
                db, shipment_id, shipment.record.order.order_id, reply.event_id, reply.message
            )
            reply = reply.model_copy(update={"message": "", "message_subject_id": subject_id})
    if db is not None and reply.address is not None:
        # The customer's new address: kept in the store, the signal carries
        # its reference (subject id, keyed fingerprint, country).
        ref = await _keep_address(db, shipment_id, reply.address)
        if ref is not None:
            reply = reply.model_copy(update={"address": None, "address_ref": ref})
    await signal_running(
        client,
        failed_delivery_id(shipment_id),
        FailedDeliveryContract.SIGNAL_CUSTOMER_REPLIED,
        reply,
        f"failed delivery for shipment {shipment_id}",
    )


async def _keep_address(
    db: order_subjects.Executor, shipment_id: str, address: Address
) -> AddressRef | None:
    """Keep `address` for the shipment's case; None for a shipment Steward
    does not keep (the address then travels as it is: a case opened for a
    parcel outside the store). CaseRefused (nothing sent) for an address a
    privacy request erased: it is never put back, in the store or the case."""
    shipment = await deliveries.get_shipment(db, shipment_id)
    if shipment is None or shipment.subject_id is None:
        return None
    try:
        return await deliveries.put_delivery_address(
            db, shipment_id, shipment.record.order.order_id, address
        )
    except personal_data.SubjectErased as erased:
        raise CaseRefused(
            "address: this address was erased by a privacy request; "
            "Steward may not keep it again for this parcel"
        ) from erased


async def with_reply_message(
    db: order_subjects.Executor, state: FailedDeliveryState
) -> FailedDeliveryState:
    """`state` with the personal values kept in the personal-data store put
    back for display: the customer's words and new address, the decision's
    reship address (erased: [erased]). One query for the words, one for the
    addresses."""
    reply = state.customer_reply
    decision = state.decision
    if reply is not None and reply.message_subject_id is not None:
        texts = await order_subjects.read_messages(db, [reply.message_subject_id])
        if reply.message_subject_id in texts:
            reply = reply.model_copy(update={"message": texts[reply.message_subject_id]})
    refs = [
        ref
        for ref in (
            reply.address_ref if reply else None,
            decision.address_ref if decision else None,
        )
        if ref is not None
    ]
    if refs:
        addresses = await deliveries.read_delivery_addresses(db, refs)
        if reply is not None and reply.address_ref is not None:
            reply = reply.model_copy(
                update={"address": addresses.get(reply.address_ref.subject_id)}
            )
        if decision is not None and decision.address_ref is not None:
            decision = decision.model_copy(
                update={"address": addresses.get(decision.address_ref.subject_id)}
            )
    if reply is state.customer_reply and decision is state.decision:
        return state
    return state.model_copy(update={"customer_reply": reply, "decision": decision})


async def relay_parcel_received(client: Client, shipment_id: str, receipt: ParcelReceived) -> None:
    await signal_running(
        client,
        failed_delivery_id(shipment_id),
        FailedDeliveryContract.SIGNAL_PARCEL_RECEIVED,
        receipt,
        f"failed delivery for shipment {shipment_id}",
    )
