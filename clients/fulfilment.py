"""Typed helpers to start and drive fulfilments from outside Temporal: the
API, the CLI (through the API), the ops desk (issue 17) and the release
activity call these.

The workflow is addressed by its registered names
(domain.fulfilment.FulfilmentContract), as in clients/order_review.py, so the
API process never loads workflow code. Who acts comes from the caller's
principal (its API key), never from the request body: every change function
takes `principal` (anything with `actor` and `role`) and stamps it on the
update.
"""

from __future__ import annotations

from typing import Any, TypeVar

import asyncpg
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from clients.calls import failure_message, query_case, signal_if_running
from clients.errors import UPDATE_TIMEOUT, CaseClosed, CaseNotFound, CaseRefused
from domain.common import StewardModel, format_amount
from domain.fulfilment import (
    FULFILMENT,
    Acting,
    ChangeAddressInput,
    FraudWarning,
    FulfilmentContract,
    FulfilmentInput,
    FulfilmentState,
    FulfilmentStatus,
    FulfilmentView,
    PlaceHoldInput,
    QcDecisionInput,
    ReallocateInput,
    ReleaseHoldInput,
    SpecialDeliveryInput,
    WarehouseEvent,
    address_error,
)
from domain.orders import Address
from store import fulfilment as fulfilment_store
from store import personal_data
from workflows import visibility


class FulfilmentNotFound(CaseNotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order_id: no fulfilment for order {order_id}")
        self.order_id = order_id


class FulfilmentClosed(CaseClosed):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order_id: the fulfilment of order {order_id} is closed")
        self.order_id = order_id


class FulfilmentRefused(CaseRefused):
    """The workflow's validator (or the edge check) refused the change."""


def _handle(client: Client, order_id: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(FulfilmentContract.workflow_id(order_id))


async def start_fulfilment(client: Client, input: FulfilmentInput, task_queue: str) -> bool:
    """Start the order's fulfilment; False when it already exists (a retried
    release starts nothing new: one fulfilment per order, ever)."""
    try:
        await client.start_workflow(
            FulfilmentContract.WORKFLOW_TYPE,
            input,
            id=FulfilmentContract.workflow_id(input.order_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=visibility.start_attributes(
                FULFILMENT, FulfilmentStatus.RELEASED, market=input.market
            ),
            static_summary=(
                f"Fulfilment {input.market} · {input.site} · "
                f"{format_amount(input.amount_minor, input.currency)}"
            ),
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def get_fulfilment(client: Client, order_id: str) -> FulfilmentState:
    try:
        state: FulfilmentState = await query_case(
            _handle(client, order_id),
            FulfilmentContract.QUERY_STATUS,
            FulfilmentState,
            f"fulfilment for order {order_id}",
        )
    except CaseNotFound as err:
        raise FulfilmentNotFound(order_id) from err
    return state


C = TypeVar("C", bound=StewardModel)


def _stamped(change: C, principal: Acting) -> C:
    # The actor and role are the caller's key's, whatever the body said.
    return change.model_copy(update={"actor": principal.actor, "role": principal.role})


async def _update(
    client: Client, order_id: str, name: str, change: StewardModel, update_id: str | None
) -> FulfilmentState:
    handle = _handle(client, order_id)
    try:
        state: FulfilmentState = await handle.execute_update(
            name, change, id=update_id, result_type=FulfilmentState, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as err:
        raise FulfilmentRefused(failure_message(err.cause)) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            await _raise_missing(handle, order_id)
        raise
    return state


async def _raise_missing(handle: WorkflowHandle[Any, Any], order_id: str) -> None:
    """The update found no running workflow: closed, or never started."""
    try:
        await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise FulfilmentNotFound(order_id) from None
        raise
    raise FulfilmentClosed(order_id)


async def place_hold(
    client: Client,
    order_id: str,
    input: PlaceHoldInput,
    principal: Acting,
    *,
    update_id: str | None = None,
) -> FulfilmentState:
    return await _update(
        client,
        order_id,
        FulfilmentContract.UPDATE_PLACE_HOLD,
        _stamped(input, principal),
        update_id,
    )


async def release_hold(
    client: Client,
    order_id: str,
    input: ReleaseHoldInput,
    principal: Acting,
    *,
    update_id: str | None = None,
) -> FulfilmentState:
    return await _update(
        client,
        order_id,
        FulfilmentContract.UPDATE_RELEASE_HOLD,
        _stamped(input, principal),
        update_id,
    )


async def reallocate(
    client: Client,
    order_id: str,
    input: ReallocateInput,
    principal: Acting,
    *,
    update_id: str | None = None,
) -> FulfilmentState:
    """Allocate another unit to the order (a mis-pick); the answer's last
    `reallocations` entry says whether the warehouse had one (none: the order
    is on an inventory hold)."""
    return await _update(
        client,
        order_id,
        FulfilmentContract.UPDATE_REALLOCATE,
        _stamped(input, principal),
        update_id,
    )


async def keep_edge_address(
    db: asyncpg.Pool, order_id: str, input: ChangeAddressInput
) -> ChangeAddressInput:
    """`input` with its address kept in the personal-data store and replaced
    by the subject's id. The subject id comes from the order and the address's
    keyed fingerprint: a retried call rewrites the same subject. An order
    Steward never released is a FulfilmentNotFound (nothing kept)."""
    assert input.address is not None
    if not await fulfilment_store.order_kept(db, order_id):
        raise FulfilmentNotFound(order_id)
    try:
        subject_id = await fulfilment_store.put_edge_address(
            db,
            order_id=order_id,
            key=fulfilment_store.keyed_fingerprint(input.address),
            address=input.address,
        )
    except personal_data.SubjectErased:
        raise FulfilmentRefused(
            f"address: this address was erased from order {order_id} by a privacy request"
        ) from None
    return input.model_copy(update={"address": None, "address_subject_id": subject_id})


async def with_address(db: asyncpg.Pool, state: FulfilmentState) -> FulfilmentView:
    """The state with its current shipping address read back (one query) for
    display; an erased one shows the personal-data placeholder."""
    view = FulfilmentView.model_validate(state.model_dump())
    if not personal_data.is_subject_id(state.address_ref):
        return view
    try:
        view.shipping_address = await fulfilment_store.get_address(
            db, state.address_ref, order_id=state.order_id
        )
    except personal_data.SubjectErased:
        erased = personal_data.ERASED_PLACEHOLDER
        view.shipping_address = Address(
            line1=erased, city=erased, postal_code=erased, country=state.destination_country
        )
        view.shipping_address_erased = True
    except (personal_data.UnknownSubject, fulfilment_store.NotAnAddress):
        pass
    else:
        view.shipping_address_erased = view.shipping_address.line1 == (
            personal_data.ERASED_PLACEHOLDER
        )
    return view


async def change_address(
    client: Client,
    order_id: str,
    input: ChangeAddressInput,
    principal: Acting,
    *,
    update_id: str | None = None,
    db: asyncpg.Pool | None = None,
) -> FulfilmentState:
    """Change the shipping address. An address the country's format refuses
    is refused here (nothing sent); the answer's last `address_changes`
    entry says what happened (applied, intercept redirected or refused, held
    for review).

    `db` (the edges: the API, the console through it): an `address` given is
    kept in the personal-data store (store/fulfilment.put_edge_address, one
    subject per order and address, refs ("order", order_id)) and the update
    carries only its `address_subject_id` (issue 21). Without `db` the
    address travels in the (encrypted) update, the shape of running cases."""
    if input.address is not None:
        if (error := address_error(input.address)) is not None:
            raise FulfilmentRefused(error)
        if db is not None:
            input = await keep_edge_address(db, order_id, input)
    return await _update(
        client,
        order_id,
        FulfilmentContract.UPDATE_CHANGE_ADDRESS,
        _stamped(input, principal),
        update_id,
    )


async def special_delivery(
    client: Client,
    order_id: str,
    input: SpecialDeliveryInput,
    principal: Acting,
    *,
    update_id: str | None = None,
) -> FulfilmentState:
    return await _update(
        client,
        order_id,
        FulfilmentContract.UPDATE_SPECIAL_DELIVERY,
        _stamped(input, principal),
        update_id,
    )


async def qc_decision(
    client: Client,
    order_id: str,
    input: QcDecisionInput,
    principal: Acting,
    *,
    update_id: str | None = None,
) -> FulfilmentState:
    return await _update(
        client,
        order_id,
        FulfilmentContract.UPDATE_QC_DECISION,
        _stamped(input, principal),
        update_id,
    )


async def relay_warehouse_event(client: Client, event: WarehouseEvent) -> bool:
    """Signal the order's fulfilment; False when none is running (recorded only)."""
    return await signal_if_running(
        client,
        FulfilmentContract.workflow_id(event.order_id),
        FulfilmentContract.SIGNAL_WAREHOUSE_EVENT,
        event,
    )


async def relay_fraud_warning(client: Client, order_id: str, warning: FraudWarning) -> bool:
    """Tell the order's fulfilment about an early fraud warning or its outcome;
    False when none is running (not released yet, or closed)."""
    return await signal_if_running(
        client,
        FulfilmentContract.workflow_id(order_id),
        FulfilmentContract.SIGNAL_FRAUD_WARNING,
        warning,
    )


async def deliver_warehouse_event(
    client: Client, pool: asyncpg.Pool, event: WarehouseEvent
) -> tuple[bool, bool]:
    """The warehouse event intake (webhook, simulator): record it once per
    event id and hand a first delivery to the order's fulfilment.
    (new, routed): a repeat is counted and routed nowhere; an event for an
    order with no running fulfilment is recorded only."""
    new = await fulfilment_store.record_warehouse_event(pool, event)
    if not new:
        return False, False
    routed = await relay_warehouse_event(client, event)
    if routed:
        await fulfilment_store.mark_event_routed(pool, event.event_id)
    return True, routed
