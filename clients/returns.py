"""Typed helpers to start and drive returns from outside Temporal.

The API, the CLI and the simulator go through these functions. As in
clients/order_review.py, the workflow is addressed by its registered names
(domain.returns.ReturnContract),
so the API process never loads workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from clients.errors import (
    QUERY_TIMEOUT,
    UPDATE_TIMEOUT,
    CaseClosed,
    CaseNotFound,
    CaseRefused,
    CaseUnavailable,
)
from domain.common import format_amount
from domain.ids import RETURN, return_id
from domain.returns import (
    CLOSED_RETURN_STATUSES,
    CancelReturnRequest,
    CarrierEvent,
    CustomerChoiceInput,
    FinanceApprovalInput,
    QcDecisionInput,
    QcResult,
    ReturnContract,
    ReturnInput,
    ReturnState,
    returned_value_minor,
)
from store import order_subjects
from store import returns as returns_store
from workflows import visibility


class ReturnNotFound(CaseNotFound):
    def __init__(self, rma_id: str) -> None:
        super().__init__(f"no return {rma_id}")
        self.rma_id = rma_id


class ReturnClosed(CaseClosed):
    """The return has finished; it accepts no more messages or decisions."""

    def __init__(self, rma_id: str, status: str) -> None:
        super().__init__(f"return {rma_id} is closed ({status})")
        self.rma_id = rma_id
        self.status = status


class ReturnUnavailable(CaseUnavailable):
    """The return exists but could not answer (no worker polling...)."""


class ReturnDecisionRefused(CaseRefused):
    """The workflow's validator refused the decision; the message names the field."""


@dataclass(frozen=True)
class StartReturnResult:
    workflow_id: str
    rma_id: str
    started: bool  # False when this RMA already had a return (duplicate webhook, retry)


def return_summary(request: ReturnInput) -> str:
    """One line for the Temporal UI list; business facts only, never PII."""
    value = format_amount(returned_value_minor(request), request.order.currency)
    return f"Return {request.order.market} · {value} · {request.reason} → {request.resolution}"


def _handle(client: Client, rma_id: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(return_id(rma_id))


async def start_return(
    client: Client,
    request: ReturnInput,
    task_queue: str,
    *,
    db: returns_store.Executor | None = None,
) -> StartReturnResult:
    """Start the return, or find the one already started for this RMA (never two).

    `db` (issue 21): the customer's email and an exchange's replacement order
    go to the personal-data store first (store/returns.py
    keep_personal_values) and the return starts with placeholders and the
    subject ids, so Temporal holds none of them. Without `db` the input
    carries them as received (encrypted by the codec)."""
    workflow_id = return_id(request.rma_id)
    if db is not None:
        request = await returns_store.keep_personal_values(db, request)
    try:
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            ReturnContract.WORKFLOW_TYPE,
            request,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(visibility.PROCESS, RETURN),
                    SearchAttributePair(visibility.MARKET, request.order.market),
                ]
            ),
            static_summary=return_summary(request),
        )
    except WorkflowAlreadyStartedError:
        return StartReturnResult(workflow_id=workflow_id, rma_id=request.rma_id, started=False)
    response = getattr(handle, "_start_workflow_response", None)
    started = getattr(response, "started", None)
    return StartReturnResult(
        workflow_id=workflow_id,
        rma_id=request.rma_id,
        started=True if started is None else bool(started),
    )


async def _closed_status(client: Client, rma_id: str) -> str | None:
    handle = _handle(client, rma_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ReturnNotFound(rma_id) from err
        raise
    if description.status in (None, WorkflowExecutionStatus.RUNNING):
        return None
    try:
        state = await handle.query(
            ReturnContract.QUERY_STATUS, result_type=ReturnState, rpc_timeout=QUERY_TIMEOUT
        )
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
        return description.status.name.lower()
    return state.status.value


async def get_status(client: Client, rma_id: str) -> ReturnState:
    try:
        return await _handle(client, rma_id).query(
            ReturnContract.QUERY_STATUS, result_type=ReturnState, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ReturnNotFound(rma_id) from err
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise ReturnUnavailable(
                f"return {rma_id} did not answer within {QUERY_TIMEOUT.total_seconds():.0f}s "
                "(is a worker running?)"
            ) from err
        raise
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
        raise ReturnUnavailable(f"return {rma_id} could not answer: {err}") from err


async def _update(
    client: Client, rma_id: str, name: str, payload: object, update_id: str | None
) -> ReturnState:
    try:
        return await _handle(client, rma_id).execute_update(
            name, payload, id=update_id, result_type=ReturnState, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise ReturnDecisionRefused(message) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            status = await _closed_status(client, rma_id)
            raise ReturnDecisionRefused(
                f"status: return {rma_id} is closed ({status or 'completed'})"
            ) from err
        raise


async def decide_qc(
    client: Client, rma_id: str, decision: QcDecisionInput, *, update_id: str | None = None
) -> ReturnState:
    """A coordinator's manual QC decision (the `qc_decision` update)."""
    return await _update(client, rma_id, ReturnContract.UPDATE_QC_DECISION, decision, update_id)


async def approve_refund(
    client: Client, rma_id: str, approval: FinanceApprovalInput, *, update_id: str | None = None
) -> ReturnState:
    """Finance's second approval (the `finance_approval` update)."""
    return await _update(
        client, rma_id, ReturnContract.UPDATE_FINANCE_APPROVAL, approval, update_id
    )


async def _signal(client: Client, rma_id: str, name: str, payload: object) -> None:
    try:
        await _handle(client, rma_id).signal(name, payload)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            status = await _closed_status(client, rma_id)
            raise ReturnClosed(rma_id, status or "completed") from err
        raise


async def carrier_event(client: Client, rma_id: str, event: CarrierEvent) -> None:
    await _signal(client, rma_id, ReturnContract.SIGNAL_CARRIER_EVENT, event)


async def qc_result(client: Client, rma_id: str, result: QcResult) -> None:
    await _signal(client, rma_id, ReturnContract.SIGNAL_QC_RESULT, result)


async def cancel(
    client: Client,
    rma_id: str,
    request: CancelReturnRequest,
    *,
    db: returns_store.Executor | None = None,
) -> None:
    """The customer cancels (the `cancel` signal). `db` (issue 21): the
    customer's reason goes to the personal-data store (store/returns.py
    put_cancel_reason, one subject per cancel event) and the signal carries
    its subject id instead of the words."""
    if db is not None and request.reason is not None:
        state = await get_status(client, rma_id)  # the order it belongs to; 404 first
        if state.status in CLOSED_RETURN_STATUSES:
            # Refused like a signal to a closed return, and nothing kept.
            raise ReturnClosed(rma_id, state.status.value)
        subject_id = await returns_store.put_cancel_reason(
            db,
            rma_id=rma_id,
            order_id=state.order_id,
            event_id=request.event_id,
            text=request.reason,
        )
        request = CancelReturnRequest.model_validate(
            {**request.model_dump(), "reason": None, "reason_subject_id": subject_id}
        )
    await _signal(client, rma_id, ReturnContract.SIGNAL_CANCEL, request)


async def with_cancel_reason(db: returns_store.Executor, state: ReturnState) -> ReturnState:
    """`state` with the customer's reason for cancelling read back from the
    personal-data store when it is kept there (one query; erased: [erased])."""
    sid = state.cancel_reason_subject_id
    if sid is None:
        return state
    texts = await order_subjects.read_messages(db, [sid])
    if sid not in texts:
        return state
    return state.model_copy(update={"cancel_reason": texts[sid]})


async def customer_choice(client: Client, rma_id: str, choice: CustomerChoiceInput) -> None:
    await _signal(client, rma_id, ReturnContract.SIGNAL_CUSTOMER_CHOICE, choice)
