"""The ops desk's activities: the chat port, the order status view, the
fulfilment actions a ticket runs (through clients/fulfilment.py, never
re-implemented here), the shipment a carrier claim is about, and the
register row.

Fulfilment's refusals (its validator, a closed or unknown fulfilment, an
address its country refuses) are non-retryable FULFILMENT_REFUSED errors
naming the reason, which the ticket records and answers in the thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.chat import ChatPort, ChatRefusedError
from activities.context import activity_logger
from clients import fulfilment
from clients.errors import CaseClosed, CaseNotFound, CaseRefused
from domain.common import Role
from domain.deliveries import ShipmentRecord, pseudonymise_shipment
from domain.fulfilment import (
    ChangeAddressInput,
    ChangeAddressOutcome,
    HoldReason,
    PlaceHoldInput,
    ReallocateInput,
    ReleaseHoldInput,
)
from domain.ops_request import (
    ANSWER_ORDER_STATUS,
    FIND_SHIPMENT,
    FULFILMENT_ACTION,
    FULFILMENT_REFUSED,
    POST_CHAT_MESSAGE,
    RECORD_OPS_REQUEST,
    SHIPMENT_UNKNOWN,
    FindShipmentInput,
    FulfilmentActionInput,
    FulfilmentActionKind,
    FulfilmentActionResult,
    OrderStatusAnswer,
    OrderStatusInput,
    PostChatInput,
    PostChatResult,
    RecordOpsRequestInput,
    ops_request_id,
)
from store import deliveries as delivery_store
from store import ops_requests as ops_store
from store.order_status import order_status

CHAT_REFUSED = "ChatRefused"


@dataclass(frozen=True)
class _Acting:
    """Who the fulfilment change is made for: the ticket's resolver."""

    actor: str
    role: Role


class OpsDeskActivities:
    def __init__(self, pool: asyncpg.Pool, chat: ChatPort) -> None:
        self.pool = pool
        self.chat = chat

    @activity.defn(name=POST_CHAT_MESSAGE)
    async def post_chat_message(self, input: PostChatInput) -> PostChatResult:
        try:
            ts = await self.chat.post(
                message_id=input.message_id,
                channel=input.channel,
                thread_ts=input.thread_ts,
                text=input.text,
            )
        except ChatRefusedError as exc:
            raise ApplicationError(
                str(exc), exc.code, type=CHAT_REFUSED, non_retryable=True
            ) from exc
        return PostChatResult(channel=input.channel, ts=ts)

    @activity.defn(name=ANSWER_ORDER_STATUS)
    async def answer_order_status(self, input: OrderStatusInput) -> OrderStatusAnswer:
        view = await order_status(self.pool, input.order_id)
        return OrderStatusAnswer(order_id=input.order_id, found=view.known, summary=view.summary)

    @activity.defn(name=FIND_SHIPMENT)
    async def find_shipment_for_claim(self, input: FindShipmentInput) -> ShipmentRecord:
        row = await delivery_store.find_by_tracking(
            self.pool, input.carrier.lower(), input.tracking_number
        )
        if row is None:
            raise ApplicationError(
                f"tracking_number: no shipment {input.carrier} {input.tracking_number} is known",
                type=SHIPMENT_UNKNOWN,
                non_retryable=True,
            )
        if row.subject_id is None:  # values still waiting for migration 0012's seal
            return row.record
        # Issue 21: the ticket and the claim it opens get the record
        # pseudonymised and the shipment's subject id, as a carrier event's
        # claim does (clients/carrier_claim.start_claim); the claim's
        # activities read the values back by it.
        return pseudonymise_shipment(
            row.record, row.subject_id, delivery_store.address_fingerprint(row.record.address)
        )

    @activity.defn(name=RECORD_OPS_REQUEST)
    async def record_ops_request(self, input: RecordOpsRequestInput) -> None:
        await ops_store.record(self.pool, input, ops_request_id(input.state.request_id))

    @activity.defn(name=FULFILMENT_ACTION)
    async def ops_fulfilment_action(self, input: FulfilmentActionInput) -> FulfilmentActionResult:
        log = activity_logger(order_id=input.order_id, action=input.kind.value)
        client = activity.client()
        acting = _Acting(input.actor, input.role)
        # The update id makes a retried call apply once (Temporal dedupes it).
        update_id = input.action_id
        try:
            result = await self._act(client, input, acting, update_id)
        except (CaseNotFound, CaseClosed, CaseRefused) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            log.info("ops_fulfilment_refused", reason=reason)
            raise ApplicationError(reason, type=FULFILMENT_REFUSED, non_retryable=True) from exc
        log.info("ops_fulfilment_done", reference=result.reference)
        return result

    async def _act(
        self, client: Client, input: FulfilmentActionInput, acting: _Acting, update_id: str
    ) -> FulfilmentActionResult:
        order_id = input.order_id
        if input.kind is FulfilmentActionKind.CHANGE_ADDRESS:
            state = await fulfilment.change_address(
                client,
                order_id,
                # The address itself (runs opened before issue 21), or the
                # subject the edge kept it in: fulfilment's apply activity
                # reads it (an erased or unknown one refuses the change).
                ChangeAddressInput(
                    address=input.address,
                    address_subject_id=input.address_subject_id,
                    note=input.note,
                ),
                acting,
                update_id=update_id,
            )
            change = state.address_changes[-1] if state.address_changes else None
            if change is None or change.outcome is ChangeAddressOutcome.INTERCEPT_REFUSED:
                raise CaseRefused(
                    f"order {order_id}: the carrier cannot intercept the parcel; the address stays"
                )
            return FulfilmentActionResult(
                done=True, reference=change.outcome.value, note=change.note
            )
        if input.kind is FulfilmentActionKind.SPECIAL_DELIVERY:
            assert input.special is not None
            state = await fulfilment.special_delivery(
                client, order_id, input.special, acting, update_id=update_id
            )
            kind = state.special_delivery.kind.value if state.special_delivery else "arranged"
            return FulfilmentActionResult(done=True, reference=kind)
        if input.kind in (FulfilmentActionKind.PLACE_HOLD, FulfilmentActionKind.QC_CHECK):
            handle = input.hold_id
            await fulfilment.place_hold(
                client,
                order_id,
                PlaceHoldInput(
                    reason=HoldReason(input.hold_reason or "other"),
                    note=input.note,
                    handle=handle,
                ),
                acting,
                update_id=update_id,
            )
            return FulfilmentActionResult(done=True, reference=handle or "")
        if input.kind is FulfilmentActionKind.REALLOCATE:
            assert input.hold_id
            state = await fulfilment.reallocate(
                client,
                order_id,
                ReallocateInput(reference=input.hold_id, note=input.note),
                acting,
                update_id=update_id,
            )
            unit = next(r for r in state.reallocations if r.reference == input.hold_id)
            # No unit in stock: fulfilment keeps the order on an inventory hold.
            return FulfilmentActionResult(
                done=unit.allocated,
                reference="reallocated" if unit.allocated else "no_unit",
                note=unit.detail,
            )
        assert input.kind is FulfilmentActionKind.RELEASE_HOLD and input.hold_id
        await fulfilment.release_hold(
            client,
            order_id,
            ReleaseHoldInput(handle=input.hold_id, note=input.note),
            acting,
            update_id=update_id,
        )
        return FulfilmentActionResult(done=True, reference=input.hold_id)
