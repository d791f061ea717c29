"""The ops desk's register (migration 0016): one row per ops request, written
by the workflow after each step, read by the work queue (priority, then
business-time due), the list filters, the CSV export and absence cover; the
requester's personal values in the personal-data store (issue 21: the
description, a QC check's reason, a new address); and the simulated chat
platform's messages and modals."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool

from domain.common import StewardModel
from domain.ops_request import RecordOpsRequestInput
from domain.orders import Address
from store import personal_data
from store.fulfilment import address_fields
from store.order_subjects import order_subject_id

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


class OpsRequestRow(StewardModel):
    request_id: str
    workflow_id: str
    type: str
    priority: str
    priority_rank: int
    status: str
    requester: str
    channel: str
    market: str
    site_id: str | None
    order_id: str | None
    assignee: str | None
    awaited_role: str | None
    opened_at: datetime
    due_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    business_seconds_to_resolve: int | None
    sla_met: bool | None
    escalated: bool
    escalations: int
    outcome: str | None
    root_cause: str | None
    linked_cases: list[str]
    updated_at: datetime


_COLUMNS = (
    "request_id, workflow_id, type, priority, priority_rank, status, requester, channel, "
    "market, site_id, order_id, assignee, awaited_role, opened_at, due_at, first_response_at, "
    "resolved_at, business_seconds_to_resolve, sla_met, escalated, escalations, outcome, "
    "root_cause, linked_cases, updated_at"
)


async def record(db: Executor, row: RecordOpsRequestInput, workflow_id: str) -> bool:
    """Upsert the request's row; an older step (a retry) never overwrites a newer one.
    The ticket's task in the work queue follows its assignee and priority."""
    state = row.state
    resolution = state.resolution
    values = (
        state.request_id,
        workflow_id,
        state.type.value,
        state.priority.value,
        state.priority.rank,
        state.status.value,
        state.requester,
        state.channel.value,
        state.market,
        state.site_id,
        state.order_id,
        state.assignee,
        state.awaited_role.value if state.awaited_role else None,
        state.opened_at,
        state.due_at,
        state.first_response_at,
        state.resolved_at,
        state.business_seconds_to_resolve,
        state.sla_met,
        state.escalated,
        len(state.escalations),
        resolution.outcome.value if resolution and state.resolved_at else None,
        resolution.root_cause.value if resolution and state.resolved_at else None,
        list(state.linked_cases),
        row.updated_at,
    )
    marks = [f"${n}" for n in range(1, len(values) + 1)]
    updates = ", ".join(
        f"{c} = EXCLUDED.{c}" for c in _COLUMNS.split(", ") if c not in ("request_id",)
    )

    async def write(conn: Any) -> bool:
        status = await conn.execute(
            f"""
            INSERT INTO ops_requests AS r ({_COLUMNS}) VALUES ({", ".join(marks)})
            ON CONFLICT (request_id) DO UPDATE SET {updates}
            WHERE r.updated_at <= EXCLUDED.updated_at
            """,
            *values,
        )
        written = bool(status != "INSERT 0 0")
        if written and row.task_id:
            await conn.execute(
                """
                UPDATE human_tasks SET assignee = $2, priority = $3
                WHERE task_id = $1 AND closed_at IS NULL
                """,
                row.task_id,
                state.assignee,
                state.priority.rank,
            )
        return written

    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            return await write(conn)
    async with db.transaction():
        return await write(db)


def _row(record: asyncpg.Record) -> OpsRequestRow:
    values = dict(record)
    linked = values["linked_cases"]
    values["linked_cases"] = json.loads(linked) if isinstance(linked, str) else linked
    return OpsRequestRow.model_validate(values)


async def get(db: Executor, request_id: str) -> OpsRequestRow | None:
    record = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM ops_requests WHERE request_id = $1", request_id
    )
    return _row(record) if record else None


async def search(
    db: Executor,
    *,
    type: str | None = None,
    status: str | None = None,
    assignee: str | None = None,
    priority: str | None = None,
    site_id: str | None = None,
    order_id: str | None = None,
    open_only: bool = False,
    opened_from: datetime | None = None,
    opened_to: datetime | None = None,
    queue_order: bool = False,
    limit: int = 100,
) -> list[OpsRequestRow]:
    """Requests matching every filter given. `queue_order`: the work queue's
    order (priority, then business-time due); else most recently opened first."""
    where: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("type", type),
        ("status", status),
        ("assignee", assignee),
        ("priority", priority),
        ("site_id", site_id),
        ("order_id", order_id),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if open_only:
        where.append("status <> 'resolved'")
    if opened_from is not None:
        args.append(opened_from)
        where.append(f"opened_at >= ${len(args)}")
    if opened_to is not None:
        args.append(opened_to)
        where.append(f"opened_at < ${len(args)}")
    args.append(limit)
    order = (
        "priority_rank DESC, due_at NULLS LAST, opened_at"
        if queue_order
        else "opened_at DESC, request_id"
    )
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    records = await db.fetch(
        f"SELECT {_COLUMNS} FROM ops_requests {clause} ORDER BY {order} LIMIT ${len(args)}",
        *args,
    )
    return [_row(r) for r in records]


CSV_COLUMNS = (
    "request_id",
    "type",
    "priority",
    "status",
    "opened_at",
    "first_response_at",
    "resolved_at",
    "business_hours_to_resolve",
    "sla_met",
    "escalated",
    "escalations",
    "outcome",
    "root_cause",
    "assignee",
    "site_id",
    "order_id",
    "linked_cases",
)


def as_csv(rows: Sequence[OpsRequestRow]) -> str:
    """The continuous-improvement export: one line per request."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        hours = (
            f"{row.business_seconds_to_resolve / 3600:.2f}"
            if row.business_seconds_to_resolve is not None
            else ""
        )
        writer.writerow(
            [
                row.request_id,
                row.type,
                row.priority,
                row.status,
                row.opened_at.isoformat(),
                row.first_response_at.isoformat() if row.first_response_at else "",
                row.resolved_at.isoformat() if row.resolved_at else "",
                hours,
                "" if row.sla_met is None else str(row.sla_met).lower(),
                str(row.escalated or row.escalations > 0).lower(),
                row.escalations,
                row.outcome or "",
                row.root_cause or "",
                row.assignee or "",
                row.site_id or "",
                row.order_id or "",
                " ".join(row.linked_cases),
            ]
        )
    return out.getvalue()


async def open_tasks_of(db: Executor, assignee: str) -> list[str]:
    """Open tasks of other processes assigned to `assignee` (absence cover)."""
    records = await db.fetch(
        """
        SELECT task_id FROM human_tasks
        WHERE assignee = $1 AND closed_at IS NULL AND process <> 'ops-request'
        ORDER BY due_at
        """,
        assignee,
    )
    return [r["task_id"] for r in records]


# ------------------------------------------- the requester's personal values
#
# What a requester types (the description, a QC check's reason) and a new
# address are personal values (issue 21): the edge keeps them here and the
# workflow carries only the subject ids. Both subjects are owned by the
# order's subject when the request names an order, so a privacy request that
# finds the customer finds, exports and erases them too; refs name the ops
# request and the order. Deterministic ids, and the first write wins: a
# retried intake (the same Idempotency-Key or Slack trigger) finds its
# subjects kept and changes nothing, whatever the retry's body says.

REQUEST_TEXT_FIELDS = ("description", "reason")


def text_subject_id(workflow_id: str) -> str:
    """The request's message subject (its description and QC reason)."""
    return personal_data.subject_id_for("message", workflow_id)


def address_subject_id(workflow_id: str) -> str:
    return personal_data.subject_id_for("address", workflow_id)


def _ownership(request_id: str, order_id: str | None) -> dict[str, Any]:
    refs = [("ops_request", request_id)]
    if order_id is None:
        return {"refs": refs}
    return {"refs": [*refs, ("order", order_id)], "owner_id": order_subject_id(order_id)}


async def _kept(db: Executor, subject_id: str) -> bool:
    try:
        await personal_data.subject_info(db, subject_id)
    except personal_data.UnknownSubject:
        return False
    return True


async def put_request_texts(
    db: Executor,
    *,
    request_id: str,
    workflow_id: str,
    order_id: str | None,
    texts: dict[str, str],
) -> str:
    """Keep the requester's texts (fields of REQUEST_TEXT_FIELDS) as one
    kind-"message" subject, unless the request's subject is already kept; its id."""
    subject_id = text_subject_id(workflow_id)
    if await _kept(db, subject_id):
        return subject_id
    return await personal_data.put_subject(
        db,
        kind="message",
        fields={k: v for k, v in texts.items() if k in REQUEST_TEXT_FIELDS and v},
        subject_id=subject_id,
        **_ownership(request_id, order_id),
    )


async def put_request_address(
    db: Executor, *, request_id: str, workflow_id: str, order_id: str, address: Address
) -> str:
    """Keep a requested new address as a kind-"address" subject, in the shape
    fulfilment reads (store/fulfilment.get_address), unless the request's
    subject is already kept; its id."""
    subject_id = address_subject_id(workflow_id)
    if await _kept(db, subject_id):
        return subject_id
    return await personal_data.put_subject(
        db,
        kind="address",
        fields=address_fields(address),
        subject_id=subject_id,
        **_ownership(request_id, order_id),
    )


async def read_request_texts(db: Executor, workflow_id: str) -> dict[str, str]:
    """The requester's texts of a request, for display: {} when it has none;
    an erased subject's fields read personal_data.ERASED_PLACEHOLDER."""
    sid = text_subject_id(workflow_id)
    try:
        view = (await personal_data.read_subjects(db, [sid]))[sid]
    except personal_data.UnknownSubject:
        return {}
    if view.erased:
        return dict.fromkeys(REQUEST_TEXT_FIELDS, personal_data.ERASED_PLACEHOLDER)
    return {k: v for k, v in view.fields.items() if k in REQUEST_TEXT_FIELDS}


# ------------------------------------------------------------ simulated chat


async def sim_post(
    db: Executor, *, message_id: str, channel: str, thread_ts: str | None, text: str, ts: str
) -> str:
    """Post once per message id; the ts of the first post."""
    record = await db.fetchrow(
        """
        INSERT INTO sim_chat_messages (message_id, channel, thread_ts, ts, text)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (message_id) DO UPDATE SET message_id = EXCLUDED.message_id
        RETURNING ts
        """,
        message_id,
        channel,
        thread_ts,
        ts,
        text,
    )
    assert record is not None
    return str(record["ts"])


class ChatMessage(StewardModel):
    message_id: str
    channel: str
    thread_ts: str | None
    ts: str
    text: str
    posted_at: datetime


async def sim_messages(
    db: Executor, *, channel: str | None = None, thread_ts: str | None = None
) -> list[ChatMessage]:
    """Messages of a channel (and thread: the root and its replies), oldest first."""
    records = await db.fetch(
        """
        SELECT message_id, channel, thread_ts, ts, text, posted_at FROM sim_chat_messages
        WHERE ($1::text IS NULL OR channel = $1)
          AND ($2::text IS NULL OR thread_ts = $2 OR ts = $2)
        ORDER BY posted_at, ts
        """,
        channel,
        thread_ts,
    )
    return [ChatMessage.model_validate(dict(r)) for r in records]


async def sim_open_view(db: Executor, *, trigger_id: str, view: dict[str, Any]) -> None:
    await db.execute(
        """
        INSERT INTO sim_chat_views (trigger_id, view) VALUES ($1, $2)
        ON CONFLICT (trigger_id) DO NOTHING
        """,
        trigger_id,
        view,
    )


async def sim_views(db: Executor) -> list[dict[str, Any]]:
    records = await db.fetch("SELECT view FROM sim_chat_views ORDER BY opened_at")
    return [json.loads(r["view"]) if isinstance(r["view"], str) else r["view"] for r in records]
