"""Typed helpers for the ops desk: open a request (from the API, Slack or the
CLI through the API), read it, decide on it, and cover an absent coordinator.

Intake checks what the models cannot: the order is known to Steward (its
order status view), a CCTV window is in the past and within the site's
footage retention, a carrier claim's parcel is a shipment Steward follows.
A refusal names each field and starts nothing. The requester's description
and a QC check's reason (free text from a person) and a new address go to
the personal-data store (store/ops_requests.py put_request_texts,
put_request_address) and the workflow carries only their subject ids; a
caller may not set those ids (issue 21).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from clients.calls import failure_message, query_case
from clients.errors import UPDATE_TIMEOUT, CaseNotFound, CaseRefused
from domain.audit import AuditEntry
from domain.business_hours import (
    MARKET_CALENDARS,
    SITES,
    BusinessCalendar,
    calendar_for_market,
    calendar_for_site,
)
from domain.common import Role, StewardModel
from domain.ops_request import (
    OPS_REQUEST,
    AddressChangeDetails,
    AssignInput,
    CarrierClaimDetails,
    CctvRetrievalDetails,
    Channel,
    ChatThread,
    InventoryDiscrepancyDetails,
    OpsRequestContract,
    OpsRequestDraft,
    OpsRequestInput,
    OpsRequestState,
    OpsRequestStatus,
    OpsRequestType,
    OpsRequestView,
    QcCheckDetails,
    check_cctv_window,
    ops_request_id,
)
from store import audit as audit_store
from store import deliveries as delivery_store
from store import ops_requests as ops_store
from store import tasks as task_store
from store.order_status import order_status
from workflows import visibility

# The house's default desk when neither a site nor an order names a market.
DEFAULT_MARKET = "GB"


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str


class IntakeRefused(Exception):
    """The request cannot open; one problem per field, nothing was started."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))
        self.problems = problems


class Opened(StewardModel):
    request_id: str
    workflow_id: str
    created: bool  # False: the same request was already open (a retried message)
    due_at: datetime | None = None


def new_request_id() -> str:
    return f"OPS-{uuid.uuid4().hex[:10].upper()}"


def derived_request_id(source: str, key: str) -> str:
    """The same id for a retried message (an Idempotency-Key, Slack's trigger id)."""
    digest = hashlib.sha256(f"{source}\x00{key}".encode()).hexdigest()[:12].upper()
    return f"OPS-{digest}"


async def check_intake(pool: asyncpg.Pool, draft: OpsRequestDraft, now: datetime) -> str:
    """Refuse what cannot be acted on; the market whose desk takes it."""
    details = draft.details
    problems: list[FieldProblem] = []
    market: str | None = None
    site = details.site()
    if site is not None:
        market = SITES[site].market
    order_id = details.order()
    if order_id is not None:
        view = await order_status(pool, order_id)
        if not view.known:
            problems.append(FieldProblem("details.order_id", f"order {order_id} is unknown"))
        else:
            row = await pool.fetchrow(
                "SELECT market FROM cases WHERE process = 'order-review' AND case_id = $1",
                order_id,
            )
            market = market or (row["market"] if row and row["market"] else None)
    if isinstance(details, InventoryDiscrepancyDetails):
        for index, affected in enumerate(details.affected_order_ids):
            if not (await order_status(pool, affected)).known:
                problems.append(
                    FieldProblem(
                        f"details.affected_order_ids[{index}]", f"order {affected} is unknown"
                    )
                )
    if isinstance(details, CctvRetrievalDetails):
        try:
            check_cctv_window(details, now)
        except ValueError as refused:
            field = str(refused).split(" ", 1)[0]
            problems.append(FieldProblem(f"details.{field}", str(refused)))
    if isinstance(details, CarrierClaimDetails):
        shipment = await delivery_store.find_by_tracking(
            pool, details.carrier.lower(), details.tracking_number
        )
        if shipment is None:
            problems.append(
                FieldProblem(
                    "details.tracking_number",
                    f"no shipment {details.carrier} {details.tracking_number} is known",
                )
            )
        else:
            market = shipment.record.order.market
    if problems:
        raise IntakeRefused(problems)
    return market or DEFAULT_MARKET


def refuse_subject_ids(draft: OpsRequestDraft) -> None:
    """The personal-data subject ids of a draft are Steward's to set (the
    edge stores the values): a caller who sends one is refused, naming it."""
    details = draft.details
    problems = [
        FieldProblem(f"details.{name}", "set by Steward, not by the caller; send the value")
        for name in ("address_subject_id", "reason_subject_id")
        if getattr(details, name, None) is not None
    ]
    if problems:
        raise IntakeRefused(problems)


async def keep_personal_values(
    pool: asyncpg.Pool, draft: OpsRequestDraft, *, request_id: str, workflow_id: str
) -> tuple[OpsRequestDraft, str | None]:
    """Keep the draft's personal values in the personal-data store (issue 21):
    the description and a QC check's reason (one message subject), a new
    address (an address subject). The draft the workflow gets carries their
    subject ids instead, and the description's subject id (None: none)."""
    details = draft.details
    texts: dict[str, str] = {}
    if draft.description.strip():
        texts["description"] = draft.description
    if isinstance(details, QcCheckDetails) and details.reason is not None:
        texts["reason"] = details.reason
    text_ref: str | None = None
    if texts:
        text_ref = await ops_store.put_request_texts(
            pool,
            request_id=request_id,
            workflow_id=workflow_id,
            order_id=details.order(),
            texts=texts,
        )
    update: dict[str, Any] = {}
    if isinstance(details, QcCheckDetails) and "reason" in texts:
        update = {"reason": None, "reason_subject_id": text_ref}
    if isinstance(details, AddressChangeDetails) and details.address is not None:
        address_ref = await ops_store.put_request_address(
            pool,
            request_id=request_id,
            workflow_id=workflow_id,
            order_id=details.order_id,
            address=details.address,
        )
        update = {"address": None, "address_subject_id": address_ref}
    private = draft.model_copy(
        update={"description": "", "details": details.model_copy(update=update)}
    )
    return private, text_ref if "description" in texts else None


def calendar_of(draft: OpsRequestDraft, market: str, now: datetime) -> BusinessCalendar:
    """The site's calendar when the request is about a site, else the market's."""
    site = draft.details.site()
    if site is not None:
        return calendar_for_site(site, starting=now.date())
    return calendar_for_market(
        market if market in MARKET_CALENDARS else DEFAULT_MARKET, starting=now.date()
    )


async def open_request(
    client: Client,
    pool: asyncpg.Pool,
    draft: OpsRequestDraft,
    *,
    requester: str,
    channel: Channel,
    task_queue: str,
    now: datetime,
    request_id: str | None = None,
    chat: ChatThread | None = None,
    escalation_channel: str = "ops-escalations",
) -> Opened:
    """Check and open the request; `created` False when it was already open."""
    refuse_subject_ids(draft)
    market = await check_intake(pool, draft, now)
    request_id = request_id or new_request_id()
    workflow_id = ops_request_id(request_id)
    private_draft, description_ref = await keep_personal_values(
        pool, draft, request_id=request_id, workflow_id=workflow_id
    )
    input = OpsRequestInput(
        request_id=request_id,
        draft=private_draft,
        description_ref=description_ref,
        requester=requester,
        channel=channel,
        chat=chat,
        opened_at=now,
        market=market,
        calendar=calendar_of(draft, market, now),
        escalation_channel=escalation_channel,
    )
    try:
        await client.start_workflow(
            OpsRequestContract.WORKFLOW_TYPE,
            input,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=visibility.start_attributes(
                OPS_REQUEST, OpsRequestStatus.OPEN, market=market
            ),
            static_summary=f"Ops request {draft.type} ({draft.priority})",
        )
    except WorkflowAlreadyStartedError:
        return Opened(request_id=request_id, workflow_id=workflow_id, created=False)
    return Opened(request_id=request_id, workflow_id=workflow_id, created=True)


async def get_request(client: Client, request_id: str) -> OpsRequestState:
    state: OpsRequestState = await query_case(
        client.get_workflow_handle(ops_request_id(request_id)),
        OpsRequestContract.QUERY_STATUS,
        OpsRequestState,
        f"ops request {request_id}",
    )
    return state


async def with_request_texts(pool: asyncpg.Pool, state: OpsRequestState) -> OpsRequestView:
    """`state` with the requester's description (and a QC check's reason) read
    back from the personal-data store for display (one query; the API's GET
    and the console's case page): None when there is none, "[erased]" once
    erased."""
    texts = await ops_store.read_request_texts(pool, ops_request_id(state.request_id))
    return OpsRequestView.model_validate(
        {
            **state.model_dump(),
            "description": texts.get("description"),
            "qc_reason": texts.get("reason") if state.type is OpsRequestType.QC_CHECK else None,
        }
    )


async def decide(
    client: Client,
    request_id: str,
    update: str,
    decision: StewardModel,
    *,
    update_id: str | None = None,
) -> OpsRequestState:
    """Send one decision (claim, assign, resolve... by its contract name)."""
    handle = client.get_workflow_handle(ops_request_id(request_id))
    try:
        state: OpsRequestState = await handle.execute_update(
            update,
            decision,
            id=update_id,
            result_type=OpsRequestState,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as err:
        raise CaseRefused(failure_message(err.cause)) from err
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # No running workflow: resolved (409), or never opened (404).
        try:
            await handle.describe()
        except RPCError as missing:
            if missing.status == RPCStatusCode.NOT_FOUND:
                raise CaseNotFound(f"no ops request {request_id}") from err
            raise
        raise CaseRefused(
            f"status: ops request {request_id} is resolved; it takes no more decisions"
        ) from err
    return state


class CoverResult(StewardModel):
    coordinator: str
    cover: str | None
    requests_moved: list[str]
    requests_refused: dict[str, str]
    tasks_moved: list[str]


async def cover_absence(
    client: Client,
    pool: asyncpg.Pool,
    *,
    coordinator: str,
    cover: str | None,
    actor: str,
    role: Role,
    reason: str,
    now: datetime,
) -> CoverResult:
    """Move every open request and task of an absent coordinator to `cover`
    (or back to the queue); each move is on the audit trail."""
    moved: list[str] = []
    refused: dict[str, str] = {}
    why = reason or f"{coordinator} is absent"
    for row in await ops_store.search(pool, assignee=coordinator, open_only=True, limit=500):
        try:
            await decide(
                client,
                row.request_id,
                OpsRequestContract.UPDATE_ASSIGN,
                AssignInput(actor=actor, role=role, to=cover, reason=why, absence_cover=True),
                update_id=f"cover/{coordinator}/{row.request_id}/{now.isoformat()}",
            )
            moved.append(row.request_id)
        except (CaseRefused, CaseNotFound) as err:
            refused[row.request_id] = str(getattr(err, "message", err))
    tasks: list[str] = []
    for task_id in await ops_store.open_tasks_of(pool, coordinator):
        task = await task_store.get(pool, task_id)
        if task is None or not await task_store.assign(pool, task_id, cover):
            continue
        tasks.append(task_id)
        await audit_store.insert_entry(
            pool,
            AuditEntry(
                entry_id=f"{task.workflow_id}/cover/{task_id}/{now.isoformat()}",
                workflow_id=task.workflow_id,
                process=task.process,
                case_id=task.case_id,
                actor=actor,
                role=role,
                action="task_reassigned",
                # The typed reason may be a health matter: never in the audit log.
                reason="absence cover",
                before={"assignee": coordinator},
                after={"assignee": cover, "task_id": task_id},
                occurred_at=now,
            ),
        )
    return CoverResult(
        coordinator=coordinator,
        cover=cover,
        requests_moved=moved,
        requests_refused=refused,
        tasks_moved=tasks,
    )


_DETAIL_TYPES = frozenset(t.value for t in OpsRequestType)


def draft_problems(errors: list[Any]) -> list[FieldProblem]:
    """A pydantic ValidationError's errors as field problems (Slack's answer)."""
    problems = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ())]
        # The details union names its member ("details.address_change.order_id"): drop it.
        if len(loc) >= 2 and loc[0] == "details" and loc[1] in _DETAIL_TYPES:
            loc = [loc[0], *loc[2:]]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(FieldProblem(".".join(loc) or "body", message))
    return problems
