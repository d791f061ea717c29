"""Typed helpers to feed and drive chargeback workflows from outside Temporal.

The webhook endpoints, the dispute endpoints, the CLI and the simulator all go
through these functions. Workflows are addressed by their registered names
(domain.chargeback.ChargebackContract), so the API process never loads
workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
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
    DisputePolicy,
    DisputeProvider,
    RespondInput,
    chargeback_workflow_id,
)
from domain.common import format_amount
from domain.evidence import CCTV_CLIP_READY_SIGNAL, CctvClipReady
from domain.ids import CHARGEBACK
from store import disputes as dispute_store
from workflows import visibility


class DisputeNotFound(CaseNotFound):
    def __init__(self, provider: str, dispute_id: str) -> None:
        super().__init__(f"no dispute {provider} {dispute_id}")


class DisputeUnavailable(CaseUnavailable):
    """The case exists but could not answer (no worker polling...)."""


class ResponseRefused(CaseRefused):
    """The `respond` validator (or the server) refused the answer."""


@dataclass(frozen=True)
class Delivery:
    workflow_id: str
    # False: this provider event was already delivered; nothing was signalled.
    delivered: bool


def dispute_summary(event: DisputeEvent) -> str:
    """One line for the Temporal UI list; business facts only."""
    money = format_amount(event.amount_minor, event.currency) if event.amount_minor else "no amount"
    return f"Dispute {event.provider} · {event.reason} · {money}"


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
    ones are signals; the workflow de-duplicates on `event_id`. The event is
    recorded as delivered only once Temporal took it, so a provider retry after
    a failure here delivers it again instead of being dropped as a duplicate.
    """
    workflow_id = chargeback_workflow_id(event.provider, event.dispute_id)
    if await dispute_store.event_delivered(pool, event.event_id):
        await dispute_store.record_event(
            pool,
            event_key=event.event_id,
            provider=event.provider.value,
            dispute_id=event.dispute_id,
            event_type=event.provider_event,
            occurred_at=event.occurred_at,
        )
        return Delivery(workflow_id=workflow_id, delivered=False)
    await client.start_workflow(
        ChargebackContract.WORKFLOW_TYPE,
        ChargebackInput(event=event, policy=policy),
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal=ChargebackContract.SIGNAL_DISPUTE_EVENT,
        start_signal_args=[event],
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(visibility.PROCESS, CHARGEBACK)]
        ),
        static_summary=dispute_summary(event),
    )
    await dispute_store.record_event(
        pool,
        event_key=event.event_id,
        provider=event.provider.value,
        dispute_id=event.dispute_id,
        event_type=event.provider_event,
        occurred_at=event.occurred_at,
    )
    return Delivery(workflow_id=workflow_id, delivered=True)


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


async def deliver_cctv_clip(client: Client, reply_to_workflow_id: str, clip: CctvClipReady) -> None:
    """The warehouse's answer, as the `cctv_clip_ready` signal to the requester."""
    await client.get_workflow_handle(reply_to_workflow_id).signal(CCTV_CLIP_READY_SIGNAL, clip)


__all__ = [
    "DisputeNotFound",
    "DisputeProvider",
    "DisputeUnavailable",
    "ResponseRefused",
    "deliver_cctv_clip",
    "deliver_event",
    "get_status",
    "respond",
]
