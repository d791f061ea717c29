"""Typed helpers to start and drive order reviews from outside Temporal.

The API, the CLI and the simulator all go through these functions, so the
workflow contract (names, id scheme, id policies, search attributes) lives in
one place on the client side.

The workflow is addressed by its registered names, declared once in
domain.review.OrderReviewContract, rather than by importing the workflow
class: clients then never load workflow code (and its sandbox restrictions)
into the API process, and a client can run against a worker deployed from
another version of the code.
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
from domain.ids import ORDER_REVIEW, order_review_id
from domain.orders import Order
from domain.review import (
    CancelRequest,
    CustomerAnswer,
    DecideInput,
    OrderReviewContract,
    OrderReviewState,
    ReviewStatus,
    review_input,
)
from store import order_subjects
from workflows import visibility


class ReviewNotFound(CaseNotFound):
    """No review exists for this order id."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"no order review for order {order_id}")
        self.order_id = order_id


class ReviewClosed(CaseClosed):
    """The review has finished; it accepts no more signals or decisions."""

    def __init__(self, order_id: str, status: str) -> None:
        super().__init__(f"review of order {order_id} is closed ({status})")
        self.order_id = order_id
        self.status = status


class ReviewUnavailable(CaseUnavailable):
    """The review exists but could not answer (no worker polling, workflow task failing)."""


class DecisionRefused(CaseRefused):
    """The workflow's `decide` validator (or the server) refused the decision."""


@dataclass(frozen=True)
class StartReviewResult:
    workflow_id: str
    order_id: str
    # False when a review for this order already existed (running or closed):
    # upstream retries and duplicate webhooks start nothing new.
    started: bool


def review_summary(order: Order) -> str:
    """One line for the Temporal UI list; business facts only, never PII."""
    return f"Order review {order.market} · {format_amount(order.total_minor, order.currency)}"


def review_details(order: Order) -> str:
    """Markdown shown on the workflow page in the Temporal UI.

    Deliberately without the customer's name, email, addresses or device: the
    summary and details are stored unencrypted by the server.
    """
    categories = sorted({item.category.value for item in order.items})
    units = sum(item.quantity for item in order.items)
    return "\n".join(
        [
            f"**Order** `{order.order_id}` · market {order.market} · channel {order.channel.value}",
            f"**Amount** {format_amount(order.total_minor, order.currency)} "
            f"({units} unit{'s' if units != 1 else ''}: {', '.join(categories)})",
            f"**Payment** {order.payment.provider} · 3-DS {order.payment.three_ds.value} · "
            f"authorisation expires {order.payment.authorisation_expires_at.isoformat()}",
        ]
    )


def _handle(client: Client, order_id: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(order_review_id(order_id))


def _is_not_found(err: RPCError) -> bool:
    return err.status == RPCStatusCode.NOT_FOUND


async def _closed_status(client: Client, order_id: str) -> str | None:
    """The status of a closed review (e.g. "released"), None if it is still running.

    Raises ReviewNotFound when no execution exists at all.
    """
    handle = _handle(client, order_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        if _is_not_found(err):
            raise ReviewNotFound(order_id) from err
        raise
    if description.status in (None, WorkflowExecutionStatus.RUNNING):
        return None
    try:
        # The review's own status says more to a person than "completed".
        state = await handle.query(
            OrderReviewContract.QUERY_STATUS,
            result_type=OrderReviewState,
            rpc_timeout=QUERY_TIMEOUT,
        )
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
        return description.status.name.lower()
    return state.status.value


async def start_review(
    client: Client, order: Order, task_queue: str, *, db: order_subjects.Executor | None = None
) -> StartReviewResult:
    """Start the review of `order`, or find the one already started for it.

    USE_EXISTING makes a duplicate start while the review runs return the
    running one; REJECT_DUPLICATE makes a duplicate after it closed fail with
    WorkflowAlreadyStartedError instead of reviewing (and capturing) twice.

    `db` (issue 21): the order's personal values go to the personal-data
    store first (store/order_subjects.py) and the review starts with the order
    pseudonymised and the subject id, so Temporal holds none of them. A
    duplicate start rewrites the same subject with the same values. Without
    `db` the input carries the order as received (encrypted by the codec).
    """
    workflow_id = order_review_id(order.order_id)
    # The starter chooses the revision (see domain/review.py) and, for
    # revision 2, the received status the workflow no longer upserts itself.
    if db is not None:
        subject_id, pseudonymised = await order_subjects.put_order(db, order)
        started_with = review_input(pseudonymised, subject_id=subject_id)
    else:
        started_with = review_input(order)
    try:
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            OrderReviewContract.WORKFLOW_TYPE,
            started_with,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=visibility.start_attributes(
                ORDER_REVIEW, ReviewStatus.RECEIVED, market=order.market
            ),
            static_summary=review_summary(order),
            static_details=review_details(order),
        )
    except WorkflowAlreadyStartedError:
        return StartReviewResult(workflow_id=workflow_id, order_id=order.order_id, started=False)
    return StartReviewResult(
        workflow_id=workflow_id, order_id=order.order_id, started=_was_started(handle)
    )


def _was_started(handle: WorkflowHandle[Any, Any]) -> bool:
    # The server says in StartWorkflowExecutionResponse.started whether this
    # call created the run or USE_EXISTING returned a running one. The SDK
    # keeps the response on the handle but has no public accessor for it yet.
    response = getattr(handle, "_start_workflow_response", None)
    started = getattr(response, "started", None)
    return True if started is None else bool(started)


async def get_status(client: Client, order_id: str) -> OrderReviewState:
    """The review's current state (the `status` query); works on closed reviews too."""
    try:
        return await _handle(client, order_id).query(
            OrderReviewContract.QUERY_STATUS,
            result_type=OrderReviewState,
            rpc_timeout=QUERY_TIMEOUT,
        )
    except RPCError as err:
        if _is_not_found(err):
            raise ReviewNotFound(order_id) from err
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise ReviewUnavailable(
                f"review of order {order_id} did not answer within "
                f"{QUERY_TIMEOUT.total_seconds():.0f}s (is a worker running?)"
            ) from err
        raise
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
        raise ReviewUnavailable(f"review of order {order_id} could not answer: {err}") from err


def _failure_message(err: BaseException) -> str:
    # The validator's refusal (one of OrderReviewContract.ERRORS) reaches us as
    # an ApplicationError whose message is its text ("role: ops may not decide ...").
    if isinstance(err, ApplicationError):
        return err.message
    return str(err) or type(err).__name__


async def decide(
    client: Client, order_id: str, decision: DecideInput, *, update_id: str | None = None
) -> OrderReviewState:
    """Send a coordinator's decision (the `decide` update) and return the new state.

    `update_id` makes a retried call idempotent: Temporal applies an update id
    once per run, so a client that timed out can safely send it again.
    """
    handle = _handle(client, order_id)
    try:
        return await handle.execute_update(
            OrderReviewContract.UPDATE_DECIDE,
            decision,
            id=update_id,
            result_type=OrderReviewState,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as err:
        raise DecisionRefused(_failure_message(err.cause)) from err
    except RPCError as err:
        if _is_not_found(err):
            # Either no such review, or it has completed: the server refuses
            # updates on closed executions before the validator can run.
            status = await _closed_status(client, order_id)
            raise DecisionRefused(
                f"review of order {order_id} is closed ({status or 'completed'})"
            ) from err
        raise


async def _signal(client: Client, order_id: str, name: str, payload: object) -> None:
    try:
        await _handle(client, order_id).signal(name, payload)
    except RPCError as err:
        if _is_not_found(err):
            status = await _closed_status(client, order_id)
            raise ReviewClosed(order_id, status or "completed") from err
        raise


async def cancel(client: Client, order_id: str, request: CancelRequest) -> None:
    """Upstream cancellation (the `cancel` signal); de-duplicated by `event_id` in the workflow."""
    await _signal(client, order_id, OrderReviewContract.SIGNAL_CANCEL, request)


async def answer_customer(
    client: Client,
    order_id: str,
    answer: CustomerAnswer,
    *,
    db: order_subjects.Executor | None = None,
) -> None:
    """The customer's reply to a verification request (the `customer_answered` signal).

    `db` (issue 21): the customer's words go to the personal-data store (kind
    `message`, owned by the order's subject, one subject per answer event, so
    a repeated answer rewrites the same one) and the signal carries the
    subject id instead."""
    if db is not None and answer.message:
        # No message kept for a review that does not exist or has closed.
        status = await _closed_status(client, order_id)
        if status is not None:
            raise ReviewClosed(order_id, status)
        subject_id = await order_subjects.put_message(db, order_id, answer.event_id, answer.message)
        answer = answer.model_copy(update={"message": "", "message_subject_id": subject_id})
    await _signal(client, order_id, OrderReviewContract.SIGNAL_CUSTOMER_ANSWERED, answer)


async def with_messages(db: order_subjects.Executor, state: OrderReviewState) -> OrderReviewState:
    """`state` with the customer's words put back into its answers kept in the
    personal-data store (one query; an erased one reads [erased])."""
    ids = [a.message_subject_id for a in state.customer_answers if a.message_subject_id]
    if not ids:
        return state
    texts = await order_subjects.read_messages(db, ids)
    answers = [
        a.model_copy(update={"message": texts[a.message_subject_id]})
        if a.message_subject_id in texts
        else a
        for a in state.customer_answers
    ]
    return state.model_copy(update={"customer_answers": answers})


async def review_exists(client: Client, order_id: str) -> bool:
    try:
        await _handle(client, order_id).describe()
    except RPCError as err:
        if _is_not_found(err):
            return False
        raise
    return True


__all__ = [
    "DecisionRefused",
    "ReviewClosed",
    "ReviewNotFound",
    "ReviewUnavailable",
    "StartReviewResult",
    "answer_customer",
    "cancel",
    "decide",
    "format_amount",
    "get_status",
    "review_details",
    "review_exists",
    "review_summary",
    "start_review",
]
