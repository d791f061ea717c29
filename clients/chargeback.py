"""Typed helpers to feed and drive chargeback workflows from outside Temporal.

The webhook endpoints, the dispute endpoints, the CLI and the simulator all go
through these functions. Workflows are addressed by their registered names
(domain.chargeback.ChargebackContract), so the API process never loads
workflow code.

The intake resolves a provider event's order from the payment references
Steward holds (store.payment_refs: the authorisation recorded with the order,
the ledger's provider references); the provider's own order hint (Stripe
`metadata.order_id`, Adyen `merchantReference`) is only the fallback. A
dispute it cannot resolve reaches its case without an order, and the case
asks a coordinator to link it (`link_order`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from clients.calls import signal_if_running
from clients.errors import (
    QUERY_TIMEOUT,
    UPDATE_TIMEOUT,
    CaseNotFound,
    CaseRefused,
    CaseUnavailable,
)
from domain.chargeback import (
    ChargebackContract,
    ChargebackInput,
    ChargebackState,
    DisputeEvent,
    DisputeEventKind,
    DisputePolicy,
    DisputeProvider,
    IgnoredEvent,
    LinkOrderInput,
    RespondInput,
    chargeback_workflow_id,
)
from domain.common import format_amount
from domain.evidence import CCTV_CLIP_READY_SIGNAL, CctvClipReady
from domain.ids import CHARGEBACK, order_review_id
from domain.review import EarlyFraudWarning, OrderReviewContract
from store import disputes as dispute_store
from store import payment_refs, webhook_events
from workflows import visibility

log = structlog.get_logger(__name__)


class DisputeNotFound(CaseNotFound):
    def __init__(self, provider: str, dispute_id: str) -> None:
        super().__init__(f"no dispute {provider} {dispute_id}")


class DisputeUnavailable(CaseUnavailable):
    """The case exists but could not answer (no worker polling...)."""


class ResponseRefused(CaseRefused):
    """The `respond` validator (or the server) refused the answer."""


class LinkRefused(CaseRefused):
    """The `link_order` validator (or the server) refused the link."""


class UnknownOrder(LinkRefused):
    """The order named for a link is one Steward has never seen."""


@dataclass(frozen=True)
class Delivery:
    workflow_id: str
    # False: this provider event was already delivered; nothing was signalled.
    delivered: bool
    # The event as handed over, with the order the intake resolved.
    event: DisputeEvent | None = None


def dispute_summary(event: DisputeEvent) -> str:
    """One line for the Temporal UI list; business facts only."""
    money = format_amount(event.amount_minor, event.currency) if event.amount_minor else "no amount"
    return f"Dispute {event.provider} · {event.reason} · {money}"


async def resolve_order(db: dispute_store.Executor, event: DisputeEvent) -> DisputeEvent:
    """The event with the order Steward holds for one of its payment
    references; the provider's order hint only when none resolves."""
    found = await payment_refs.resolve(db, event.payment_refs)
    if found is None:
        return await _with_order_facts(db, event)
    if event.order_id and event.order_id != found.order_id:
        log.warning(
            "dispute_order_hint_differs",
            provider=event.provider.value,
            dispute_id=event.dispute_id,
            payment_ref=found.reference,
            order_id=found.order_id,
            hint=event.order_id,
        )
    return await _with_order_facts(
        db,
        event.model_copy(update={"order_id": found.order_id, "order_source": "payment_reference"}),
    )


async def _with_order_facts(db: dispute_store.Executor, event: DisputeEvent) -> DisputeEvent:
    """The event with its order's market and amount, when Steward reviewed the order."""
    if not event.order_id:
        return event
    facts = await payment_refs.disputed_order(db, event.order_id)
    return event if facts is None else event.model_copy(update={"order_facts": facts})


async def deliver_event(
    client: Client,
    pool: asyncpg.Pool,
    event: DisputeEvent,
    *,
    task_queue: str,
    policy: DisputePolicy,
) -> Delivery:
    """Hand a verified provider event to its case, starting the case if needed.

    Signal-with-start: the first event of a dispute starts the workflow, later
    ones are signals; the workflow de-duplicates on `event_id`. The event's row
    is claimed in a transaction that commits only once Temporal took the event:
    a concurrent copy of the same event waits on that row and then counts as
    a repeat (`delivered` False), so the providers' concurrent redeliveries
    report one delivery; a failure here rolls the claim back, and the
    provider's retry delivers the event again instead of being dropped.
    """
    workflow_id = chargeback_workflow_id(event.provider, event.dispute_id)
    async with pool.acquire() as conn, conn.transaction():
        first = await dispute_store.record_event(
            conn,
            event_key=event.event_id,
            provider=event.provider.value,
            dispute_id=event.dispute_id,
            event_type=event.provider_event,
            occurred_at=event.occurred_at,
        )
        if not first:
            return Delivery(workflow_id=workflow_id, delivered=False)
        event = await resolve_order(conn, event)
        await client.start_workflow(
            ChargebackContract.WORKFLOW_TYPE,
            ChargebackInput(event=event, policy=policy),
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=ChargebackContract.SIGNAL_DISPUTE_EVENT,
            start_signal_args=[event],
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(visibility.PROCESS, CHARGEBACK),
                    *(
                        [SearchAttributePair(visibility.MARKET, event.order_facts.market)]
                        if event.order_facts is not None
                        else []
                    ),
                ]
            ),
            static_summary=dispute_summary(event),
        )
        if event.kind is DisputeEventKind.EARLY_FRAUD_WARNING and event.order_id:
            # A review still open goes to a person (its own de-duplication by
            # event id absorbs a redelivery); a closed one is not signalled.
            await signal_if_running(
                client,
                order_review_id(event.order_id),
                OrderReviewContract.SIGNAL_EARLY_FRAUD_WARNING,
                EarlyFraudWarning(
                    event_id=event.event_id,
                    provider=event.provider.value,
                    dispute_id=event.dispute_id,
                    reason_code=event.provider_reason_code,
                    occurred_at=event.occurred_at,
                ),
            )
    return Delivery(workflow_id=workflow_id, delivered=True, event=event)


async def record_ignored(pool: asyncpg.Pool, ignored: IgnoredEvent) -> bool:
    """Keep an authentic event Steward acknowledges and does not act on, with
    its type and the reason; False for a repeat (counted on the first row)."""
    return await webhook_events.record_ignored(
        pool,
        provider=ignored.provider.value,
        event_key=ignored.event_key,
        event_type=ignored.event_type,
        object_ref=ignored.object_ref,
        reason=ignored.reason,
        occurred_at=ignored.occurred_at,
    )


def _handle(client: Client, provider: str, dispute_id: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(chargeback_workflow_id(provider, dispute_id))


async def get_status(client: Client, provider: str, dispute_id: str) -> ChargebackState:
    try:
        return await _handle(client, provider, dispute_id).query(
            ChargebackContract.QUERY_STATUS, result_type=ChargebackState, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise DisputeNotFound(provider, dispute_id) from err
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise DisputeUnavailable(
                f"dispute {provider} {dispute_id} did not answer (is a worker running?)"
            ) from err
        raise
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
        raise DisputeUnavailable(
            f"dispute {provider} {dispute_id} could not answer: {err}"
        ) from err


async def respond(
    client: Client,
    provider: str,
    dispute_id: str,
    answer: RespondInput,
    *,
    update_id: str | None = None,
) -> ChargebackState:
    """Contest or accept (the `respond` update); `update_id` makes a retry apply once."""
    try:
        return await _handle(client, provider, dispute_id).execute_update(
            ChargebackContract.UPDATE_RESPOND,
            answer,
            id=update_id,
            result_type=ChargebackState,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise ResponseRefused(
            cause.message if isinstance(cause, ApplicationError) else str(cause)
        ) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ResponseRefused(
                f"dispute {provider} {dispute_id} is not open for a response (closed or unknown)"
            ) from err
        raise


async def link_order(
    client: Client,
    pool: asyncpg.Pool,
    provider: str,
    dispute_id: str,
    link: LinkOrderInput,
    *,
    update_id: str | None = None,
) -> ChargebackState:
    """Link a dispute Steward could not resolve to its order (the `link_order`
    update); the order must be one Steward knows. `update_id` makes a retry
    apply once."""
    if not await payment_refs.order_known(pool, link.order_id):
        raise UnknownOrder(
            f"order_id: Steward knows no order {link.order_id} (never reviewed, no payment "
            "reference or ledger movement)"
        )
    link = link.model_copy(
        update={"order_facts": await payment_refs.disputed_order(pool, link.order_id)}
    )
    try:
        return await _handle(client, provider, dispute_id).execute_update(
            ChargebackContract.UPDATE_LINK_ORDER,
            link,
            id=update_id,
            result_type=ChargebackState,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise LinkRefused(
            cause.message if isinstance(cause, ApplicationError) else str(cause)
        ) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise LinkRefused(
                f"dispute {provider} {dispute_id} is not running (closed or unknown)"
            ) from err
        raise


async def deliver_cctv_clip(client: Client, reply_to_workflow_id: str, clip: CctvClipReady) -> None:
    """The warehouse's answer, as the `cctv_clip_ready` signal to the requester."""
    await client.get_workflow_handle(reply_to_workflow_id).signal(CCTV_CLIP_READY_SIGNAL, clip)


__all__ = [
    "DisputeNotFound",
    "DisputeProvider",
    "DisputeUnavailable",
    "LinkRefused",
    "ResponseRefused",
    "UnknownOrder",
    "deliver_cctv_clip",
    "deliver_event",
    "get_status",
    "link_order",
    "record_ignored",
    "resolve_order",
    "respond",
]
