"""Typed helpers to start and drive employee special sales (campaigns) from
outside Temporal, and to take an employee order's quota and start its order
review (channel `employee_sale`).

The workflow is addressed by its registered names (domain/campaign.py:
CampaignContract), as in clients/order_review.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from clients import order_review
from clients.calls import failure_message, query_case
from clients.errors import UPDATE_TIMEOUT, CaseNotFound, CaseRefused
from domain.campaign import (
    ApprovalInput,
    CampaignContract,
    CampaignInput,
    CampaignOrderRequest,
    CampaignParameters,
    CampaignSchedule,
    CampaignState,
    CampaignStatus,
    CampaignView,
    CancelInput,
    FileRequestInput,
    QuotaDecision,
    RequestState,
    ResolveRequestInput,
    SubmitInput,
    WindowChange,
)
from domain.ids import CAMPAIGN, campaign_workflow_id
from domain.orders import Channel, Customer, Order, OrderItem
from store import campaign as campaign_store
from workflows import visibility


async def start_campaign(
    client: Client,
    pool: asyncpg.Pool,
    params: CampaignParameters,
    schedule: CampaignSchedule,
    prepared_by: str,
    task_queue: str,
) -> bool:
    """Record the campaign (draft) and start its process; False when this
    very campaign already existed (a retried request starts nothing new)."""
    created = await campaign_store.create_campaign(pool, params, schedule, prepared_by)
    try:
        await client.start_workflow(
            CampaignContract.WORKFLOW_TYPE,
            CampaignInput(
                campaign_id=params.campaign_id,
                name=params.name,
                timezone=params.timezone,
                schedule=schedule,
                prepared_by=prepared_by,
                legal_entities=list(params.legal_entities),
                currency=params.currency,
            ),
            id=campaign_workflow_id(params.campaign_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=visibility.start_attributes(CAMPAIGN, CampaignStatus.DRAFT),
            static_summary=f"Employee sale {params.campaign_id}",
        )
    except WorkflowAlreadyStartedError:
        return False
    return created


async def get_campaign(client: Client, campaign_id: str) -> CampaignState:
    state: CampaignState = await query_case(
        client.get_workflow_handle(campaign_workflow_id(campaign_id)),
        CampaignContract.QUERY_STATUS,
        CampaignState,
        f"campaign {campaign_id}",
    )
    return state


async def with_request_texts(db: campaign_store.Executor, state: CampaignState) -> CampaignView:
    """`state` with each request's employee and words read back from the
    personal-data store (issue 21: the workflow holds the request ids only),
    in one query; an erased text reads [erased]."""
    texts = await campaign_store.request_texts(db, state.campaign_id, list(state.requests))
    document = state.model_dump()
    for request_id, request in document["requests"].items():
        if request_id in texts:
            request["employee_id"], request["description"] = texts[request_id]
    return CampaignView.model_validate(document)


async def _update(
    client: Client,
    campaign_id: str,
    name: str,
    arg: Any,
    result_type: type,
    update_id: str | None = None,
) -> Any:
    handle = client.get_workflow_handle(campaign_workflow_id(campaign_id))
    try:
        return await handle.execute_update(
            name, arg, id=update_id, result_type=result_type, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as err:
        raise CaseRefused(failure_message(err.cause)) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(f"no running campaign {campaign_id} (closed or unknown)") from err
        raise


async def submit(
    client: Client, campaign_id: str, submit: SubmitInput, *, update_id: str | None = None
) -> CampaignState:
    state: CampaignState = await _update(
        client, campaign_id, CampaignContract.UPDATE_SUBMIT, submit, CampaignState, update_id
    )
    return state


async def approve(
    client: Client, campaign_id: str, decision: ApprovalInput, *, update_id: str | None = None
) -> CampaignState:
    state: CampaignState = await _update(
        client, campaign_id, CampaignContract.UPDATE_APPROVE, decision, CampaignState, update_id
    )
    return state


async def change_window(
    client: Client, campaign_id: str, change: WindowChange, *, update_id: str | None = None
) -> CampaignState:
    state: CampaignState = await _update(
        client, campaign_id, CampaignContract.UPDATE_CHANGE_WINDOW, change, CampaignState, update_id
    )
    return state


async def cancel(
    client: Client, campaign_id: str, cancel: CancelInput, *, update_id: str | None = None
) -> CampaignState:
    state: CampaignState = await _update(
        client, campaign_id, CampaignContract.UPDATE_CANCEL, cancel, CampaignState, update_id
    )
    return state


async def file_request(client: Client, campaign_id: str, request: FileRequestInput) -> RequestState:
    # The request id is the update id: a retried call files nothing twice.
    state: RequestState = await _update(
        client,
        campaign_id,
        CampaignContract.UPDATE_FILE_REQUEST,
        request,
        RequestState,
        f"file/{request.request_id}",
    )
    return state


async def resolve_request(
    client: Client, campaign_id: str, resolve: ResolveRequestInput
) -> RequestState:
    state: RequestState = await _update(
        client,
        campaign_id,
        CampaignContract.UPDATE_RESOLVE_REQUEST,
        resolve,
        RequestState,
        f"resolve/{resolve.request_id}",
    )
    return state


async def reconcile_again(client: Client, campaign_id: str, actor: str) -> CampaignState:
    state: CampaignState = await _update(
        client, campaign_id, CampaignContract.UPDATE_RECONCILE_AGAIN, actor, CampaignState
    )
    return state


# -------------------------------------------------------------------- orders


async def place_order(
    client: Client,
    pool: asyncpg.Pool,
    campaign_id: str,
    request: CampaignOrderRequest,
    task_queue: str,
) -> QuotaDecision:
    """Take the order's quota and stock in PostgreSQL (atomic, idempotent by
    order id) and, once accepted, start its normal order review (channel
    employee_sale). A retry of an accepted order starts the review again if
    the first attempt could not (the review's own id policy makes it once)."""
    # The employee first: an unknown or erased one is refused before any quota moves.
    who = await campaign_store.employee_identity(pool, campaign_id, request.employee_id)
    decision = await campaign_store.take_quota(pool, campaign_id, request)
    if decision.accepted:
        order = await employee_order(pool, campaign_id, request, who)
        # The employee's name, email and address go to the personal-data
        # store; the review runs on a subject id (issue 21).
        await order_review.start_review(client, order, task_queue, db=pool)
    return decision


async def employee_order(
    pool: asyncpg.Pool,
    campaign_id: str,
    request: CampaignOrderRequest,
    who: dict[str, Any] | None = None,
) -> Order:
    """The order the review sees: the campaign's prices and the employee's
    name and work email from the roster's personal data."""
    if who is None:
        who = await campaign_store.employee_identity(pool, campaign_id, request.employee_id)
    currency, lines = await campaign_store.sale_lines(
        pool, campaign_id, [line.sku for line in request.lines]
    )
    return Order(
        order_id=request.order_id,
        market=who["country"],
        channel=Channel.EMPLOYEE_SALE,
        currency=currency,
        placed_at=datetime.now(UTC),
        customer=Customer(
            customer_id=request.employee_id,
            email=who["email"],
            full_name=who["name"],
            account_created_at=datetime.combine(who["since"], time(), tzinfo=UTC),
        ),
        billing_address=request.billing_address or request.shipping_address,
        shipping_address=request.shipping_address,
        items=[
            OrderItem(
                sku=line.sku,
                name=lines[line.sku]["name"],
                category=lines[line.sku]["category"],
                unit_price_minor=lines[line.sku]["sale_price_minor"],
                quantity=line.quantity,
            )
            for line in request.lines
        ],
        payment=request.payment,
        device=request.device,
    )
