"""The reports' SQL (issue 19) and the report run rows.

Each fetcher reads, for one period and the optional market and channel, the
rows its pure report in domain/reports/ computes from: one row per case,
the audit trail of the case folded in by one grouped pass (not one query per
case), so a period of 100k cases stays a few seconds (bench/reports.py).
Reports read PostgreSQL only, never Temporal history.

The channel is the order's (the order review's `review_started` entry); a
case of another process follows its order (audit_log.order_id).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

import asyncpg

from domain.reports.deliveries import ClaimRow, DeliveriesData, FailedDeliveryRow
from domain.reports.disputes import DisputeRow, DisputesData
from domain.reports.employee_sales import CHANNEL as EMPLOYEE_SALE_CHANNEL
from domain.reports.employee_sales import CampaignRow, EmployeeSalesData, SkuRow
from domain.reports.fraud import Decision, FraudData, FraudLoss, ReviewRow
from domain.reports.fulfilment import FulfilmentData, FulfilmentRow, HoldRow
from domain.reports.model import ReportParams
from domain.reports.ops_desk import OpsDeskData, OpsRequestRow
from domain.reports.returns import UNKNOWN, ReturnRow, ReturnsData, SoldUnits
from domain.reports.runs import ReportFile, ReportRunRow, RunStatus
from domain.reports.service_levels import ServiceLevelData, TaskRow
from store.db import dumps

# An order's channel, for a case whose order id is the SQL expression {order}.
_CHANNEL_OF = """($4::text IS NULL OR EXISTS (
    SELECT 1 FROM audit_log ch
    WHERE ch.workflow_id = 'order-review:' || {order}
      AND ch.action = 'review_started' AND ch.reason = 'channel ' || $4))"""


@lru_cache(maxsize=4096)
def _codes(reason: str | None) -> tuple[str, ...]:
    """The scoring entry's reason: the reason codes, comma separated (the same
    few combinations come back on most of 100k orders: cached)."""
    if not reason or reason == "no risk signal":
        return ()
    return tuple(code.strip() for code in reason.split(",") if code.strip())


def _args(params: ReportParams) -> tuple[Any, ...]:
    return (params.period_from, params.period_to, params.market, params.channel)


# ------------------------------------------------------------------ fraud

_REVIEWS = """
WITH r AS (
    SELECT workflow_id, case_id, market, status, created_at
    FROM cases
    WHERE process = 'order-review' AND created_at >= $1 AND created_at < $2
      AND ($3::text IS NULL OR market = $3)
), a AS (
    -- Only the entries the report reads: most of a review's rows are other steps.
    SELECT workflow_id, id, action, reason, actor, role, after, occurred_at
    FROM audit_log
    WHERE process = 'order-review' AND occurred_at >= $1
      AND (action IN ('review_started', 'scored', 'decision_approve', 'decision_decline',
                      'decision_ask_customer', 'cancel_requested')
           OR (action = 'status_changed' AND after ->> 'status' = 'cancelled'))
), tasks AS (
    SELECT workflow_id, min(opened_at) AS opened_at
    FROM human_tasks WHERE process = 'order-review' AND opened_at >= $1
    GROUP BY workflow_id
), warned AS (
    SELECT DISTINCT d.order_id
    FROM disputes d JOIN audit_log h ON h.workflow_id = d.workflow_id
    WHERE h.action = 'order_release_held' AND d.order_id IS NOT NULL
)
SELECT r.workflow_id, r.case_id, r.market, r.status, r.created_at,
       max(a.reason) FILTER (WHERE a.action = 'review_started') AS started,
       (array_agg(a.after ->> 'routing' ORDER BY a.id DESC)
            FILTER (WHERE a.action = 'scored'))[1] AS routing,
       (array_agg(a.reason ORDER BY a.id DESC) FILTER (WHERE a.action = 'scored'))[1] AS codes,
       jsonb_agg(jsonb_build_object('decision', a.after ->> 'decision',
                                    'reason_code', a.after ->> 'reason_code',
                                    'actor', a.actor, 'role', a.role, 'at', a.occurred_at)
                 ORDER BY a.occurred_at, a.id)
           FILTER (WHERE a.action LIKE 'decision\\_%') AS decisions,
       coalesce(bool_or(a.action = 'cancel_requested'), false) AS cancel_requested,
       (array_agg(a.reason ORDER BY a.id DESC) FILTER (WHERE a.action = 'status_changed'))[1]
           AS cancel_reason,
       min(t.opened_at) AS review_opened_at,
       bool_or(w.order_id IS NOT NULL) AS efw
FROM r
LEFT JOIN a ON a.workflow_id = r.workflow_id
LEFT JOIN tasks t ON t.workflow_id = r.workflow_id
LEFT JOIN warned w ON w.order_id = r.case_id
GROUP BY r.workflow_id, r.case_id, r.market, r.status, r.created_at
"""

_FRAUD_LOSSES = """
SELECT d.dispute_id, d.order_id, d.amount_minor, d.currency,
       (SELECT s.reason FROM audit_log s
        WHERE s.workflow_id = 'order-review:' || d.order_id AND s.action = 'scored'
        ORDER BY s.id DESC LIMIT 1) AS codes
FROM disputes d
LEFT JOIN cases o ON o.workflow_id = 'order-review:' || d.order_id
WHERE d.reason = 'fraud' AND d.status = 'lost' AND d.closed_at >= $1 AND d.closed_at < $2
  AND ($3::text IS NULL OR o.market = $3)
  AND {channel}
ORDER BY d.closed_at, d.dispute_id
""".format(channel=_CHANNEL_OF.format(order="d.order_id"))


async def fetch_fraud(pool: asyncpg.Pool, params: ReportParams) -> FraudData:
    reviews: list[ReviewRow] = []
    for row in await pool.fetch(_REVIEWS, params.period_from, params.period_to, params.market):
        started = row["started"] or ""
        channel = started.removeprefix("channel ") if started.startswith("channel ") else ""
        if params.channel is not None and channel != params.channel:
            continue
        reviews.append(
            ReviewRow(
                order_id=row["case_id"],
                market=row["market"] or "",
                channel=channel,
                created_at=row["created_at"],
                status=row["status"],
                routing=row["routing"],
                reason_codes=_codes(row["codes"]),
                decisions=tuple(
                    Decision(
                        decision=d["decision"],
                        reason_code=d["reason_code"] or "",
                        actor=d["actor"],
                        role=d["role"],
                        at=datetime.fromisoformat(d["at"]),
                    )
                    for d in row["decisions"] or []
                ),
                review_opened_at=row["review_opened_at"],
                cancel_requested=bool(row["cancel_requested"]),
                cancel_reason=row["cancel_reason"] or "",
                early_fraud_warning=bool(row["efw"]),
            )
        )
    losses = [
        FraudLoss(
            dispute_id=row["dispute_id"],
            order_id=row["order_id"],
            amount_minor=row["amount_minor"],
            currency=row["currency"].strip(),
            reason_codes=_codes(row["codes"]),
        )
        for row in await pool.fetch(_FRAUD_LOSSES, *_args(params))
    ]
    return FraudData(reviews=reviews, losses=losses)


# --------------------------------------------------------------- disputes

_DISPUTES = """
SELECT d.provider, d.dispute_id, d.reason, d.status, d.amount_minor, d.currency, d.opened_at,
       d.due_by,
       min(a.occurred_at) FILTER (WHERE a.action LIKE 'dispute\\_%\\_submitted') AS answered_at,
       (array_agg(a.reason ORDER BY a.id DESC)
            FILTER (WHERE a.action = 'evidence_assembled'))[1] AS evidence,
       coalesce(bool_or((a.after ->> 'by_default')::boolean)
            FILTER (WHERE a.action LIKE 'decision\\_%'), false) AS by_default
FROM disputes d
LEFT JOIN cases o ON o.workflow_id = 'order-review:' || d.order_id
LEFT JOIN audit_log a
  ON a.workflow_id = d.workflow_id AND a.process = 'chargeback' AND a.occurred_at >= $1
WHERE d.opened_at >= $1 AND d.opened_at < $2
  AND ($3::text IS NULL OR o.market = $3)
  AND {channel}
GROUP BY d.provider, d.dispute_id
""".format(channel=_CHANNEL_OF.format(order="d.order_id"))


async def fetch_disputes(
    pool: asyncpg.Pool, params: ReportParams, *, safety_buffer_hours: float = 12.0
) -> DisputesData:
    rows = [
        DisputeRow(
            provider=row["provider"],
            dispute_id=row["dispute_id"],
            reason=row["reason"],
            status=row["status"],
            amount_minor=row["amount_minor"],
            currency=row["currency"].strip(),
            opened_at=row["opened_at"],
            due_by=row["due_by"],
            answered_at=row["answered_at"],
            evidence_complete=None if row["evidence"] is None else row["evidence"] == "complete",
            by_default=bool(row["by_default"]),
        )
        for row in await pool.fetch(_DISPUTES, *_args(params))
    ]
    return DisputesData(disputes=rows, safety_buffer_hours=safety_buffer_hours)


# ---------------------------------------------------------- service levels

_TASK_COLUMNS = """t.process, t.kind, t.awaited_role, t.opened_at, t.due_at, t.closed_at,
       t.closed_by, t.escalated"""

_TASK_FILTER = """($3::text IS NULL OR c.market = $3)
  AND {channel}""".format(
    channel=_CHANNEL_OF.format(
        order="coalesce((SELECT max(o.order_id) FROM audit_log o "
        "WHERE o.workflow_id = t.workflow_id AND o.order_id IS NOT NULL), "
        "CASE WHEN t.process = 'order-review' THEN t.case_id END)"
    )
)

_TASKS = f"""
SELECT {_TASK_COLUMNS},
       (SELECT min(a.occurred_at) FROM audit_log a
        WHERE a.workflow_id = t.workflow_id AND a.occurred_at >= t.opened_at
          AND a.role <> 'system') AS first_action_at
FROM human_tasks t LEFT JOIN cases c ON c.workflow_id = t.workflow_id
WHERE t.opened_at >= $1 AND t.opened_at < $2 AND {_TASK_FILTER}
"""

# Open at the end of the period (or now, for a period that has not ended).
# $1 and $2 are unused but typed, so both queries take the same arguments.
_BACKLOG = f"""
SELECT {_TASK_COLUMNS}, NULL::timestamptz AS first_action_at
FROM human_tasks t LEFT JOIN cases c ON c.workflow_id = t.workflow_id
WHERE t.opened_at < $5 AND (t.closed_at IS NULL OR t.closed_at > $5)
  AND $1::timestamptz IS NOT NULL AND $2::timestamptz IS NOT NULL AND {_TASK_FILTER}
"""


def _task(row: asyncpg.Record, *, open_at: datetime | None = None) -> TaskRow:
    closed = row["closed_at"]
    if open_at is not None and closed is not None and closed > open_at:
        closed = None  # still open at that moment
    return TaskRow(
        process=row["process"],
        kind=row["kind"],
        awaited_role=row["awaited_role"],
        opened_at=row["opened_at"],
        due_at=row["due_at"],
        closed_at=closed,
        closed_by=row["closed_by"] if closed is not None else None,
        escalated=row["escalated"],
        first_action_at=row["first_action_at"],
    )


async def fetch_service_levels(
    pool: asyncpg.Pool, params: ReportParams, *, now: datetime
) -> ServiceLevelData:
    as_of = min(now, params.period_to)
    tasks = [_task(r) for r in await pool.fetch(_TASKS, *_args(params))]
    backlog = [_task(r, open_at=as_of) for r in await pool.fetch(_BACKLOG, *_args(params), as_of)]
    return ServiceLevelData(tasks=tasks, backlog=backlog, as_of=as_of)


# ---------------------------------------------------------------- returns

_RETURNS = """
WITH r AS (
    SELECT workflow_id, case_id, market, status, created_at
    FROM cases
    WHERE process = 'return' AND created_at >= $1 AND created_at < $2
      AND ($3::text IS NULL OR market = $3)
), folded AS (
    SELECT r.workflow_id, r.case_id, r.market, r.status, r.created_at,
           (array_agg(a.reason ORDER BY a.id) FILTER (WHERE a.action = 'return_requested'))[1]
               AS requested,
           (array_agg(a.after ORDER BY a.id) FILTER (WHERE a.action = 'return_requested'))[1]
               AS request,
           (array_agg(a.after ->> 'grade' ORDER BY a.id)
                FILTER (WHERE a.action = 'qc_result_received'))[1] AS grade,
           min(a.occurred_at) FILTER (WHERE a.action = 'refund_issued') AS refunded_at,
           coalesce(bool_or(a.action = 'refund_frozen'), false) AS frozen
    FROM r LEFT JOIN audit_log a
      ON a.workflow_id = r.workflow_id AND a.process = 'return' AND a.occurred_at >= $1
    GROUP BY r.workflow_id, r.case_id, r.market, r.status, r.created_at
)
SELECT folded.*,
       -- sku -> category of the order as Steward released it (fulfilment's copy).
       (SELECT jsonb_object_agg(i ->> 'sku', i ->> 'category')
        FROM fulfilment_orders f, jsonb_array_elements(f.document -> 'items') i
        WHERE f.order_id = folded.request ->> 'order_id') AS categories
FROM folded
WHERE {channel}
""".format(channel=_CHANNEL_OF.format(order="(request ->> 'order_id')"))

# The units the orders released in the period carried, by market, category and SKU.
_SOLD = """
SELECT c.market, i ->> 'category' AS category, i ->> 'sku' AS sku,
       sum((i ->> 'quantity')::int) AS units
FROM cases c
JOIN fulfilment_orders f ON f.order_id = c.case_id
CROSS JOIN LATERAL jsonb_array_elements(f.document -> 'items') i
WHERE c.process = 'order-review' AND c.status = 'released'
  AND c.created_at >= $1 AND c.created_at < $2 AND ($3::text IS NULL OR c.market = $3)
  AND {channel}
GROUP BY 1, 2, 3
""".format(channel=_CHANNEL_OF.format(order="c.case_id"))

_RELEASED = """
SELECT c.market, count(*) AS orders
FROM cases c
WHERE c.process = 'order-review' AND c.status = 'released'
  AND c.created_at >= $1 AND c.created_at < $2 AND ($3::text IS NULL OR c.market = $3)
  AND {channel}
GROUP BY c.market
""".format(channel=_CHANNEL_OF.format(order="c.case_id"))


def _return_reason(requested: str) -> tuple[str, str]:
    """`too_small (fit), wants refund` -> (too_small, refund)."""
    reason = requested.split(" (", 1)[0].strip()
    _, _, wants = requested.rpartition(", wants ")
    return reason, wants.strip()


async def fetch_returns(pool: asyncpg.Pool, params: ReportParams) -> ReturnsData:
    rows: list[ReturnRow] = []
    for row in await pool.fetch(_RETURNS, *_args(params)):
        reason, wants = _return_reason(row["requested"] or "")
        request = row["request"] or {}
        rows.append(
            ReturnRow(
                rma_id=row["case_id"],
                order_id=str(request.get("order_id", "")),
                market=row["market"] or "",
                reason=reason or "unknown",
                resolution=wants or "unknown",
                status=row["status"],
                requested_at=row["created_at"],
                lines={str(k): int(v) for k, v in (request.get("lines") or {}).items()},
                qc_grade=row["grade"],
                refunded_at=row["refunded_at"],
                refund_frozen=row["frozen"],
                categories={
                    str(k): str(v) for k, v in (row["categories"] or {}).items() if v is not None
                },
            )
        )
    released = {
        (r["market"] or ""): r["orders"] for r in await pool.fetch(_RELEASED, *_args(params))
    }
    sold = [
        SoldUnits(
            market=r["market"] or "",
            category=r["category"] or UNKNOWN,
            sku=r["sku"],
            units=r["units"],
        )
        for r in await pool.fetch(_SOLD, *_args(params))
    ]
    return ReturnsData(returns=rows, orders_released=released, sold=sold)


# ------------------------------------------------------------- deliveries

_FAILED_DELIVERIES = """
SELECT c.case_id, c.market, c.status, c.created_at,
       coalesce(bool_or(a.action = 'second_failure'), false) AS second_failure,
       max(a.order_id) AS order_id
FROM cases c
LEFT JOIN audit_log a
  ON a.workflow_id = c.workflow_id AND a.process = 'failed-delivery' AND a.occurred_at >= $1
WHERE c.process = 'failed-delivery' AND c.created_at >= $1 AND c.created_at < $2
  AND ($3::text IS NULL OR c.market = $3)
GROUP BY c.workflow_id
"""

_CLAIMS = """
SELECT c.workflow_id, c.market, c.status, c.created_at,
       min(a.occurred_at) FILTER (WHERE a.action = 'claim_filed') AS filed_at,
       (array_agg(a.after ->> 'filing_deadline' ORDER BY a.id)
            FILTER (WHERE a.action = 'claim_filed'))[1] AS filing_deadline,
       max(a.order_id) AS order_id,
       (SELECT l.amount_minor FROM carrier_claim_ledger l
        WHERE l.workflow_id = c.workflow_id AND l.outcome = 'approved' LIMIT 1) AS reimbursed,
       (SELECT l.currency FROM carrier_claim_ledger l
        WHERE l.workflow_id = c.workflow_id LIMIT 1) AS currency
FROM cases c
LEFT JOIN audit_log a
  ON a.workflow_id = c.workflow_id AND a.process = 'carrier-claim' AND a.occurred_at >= $1
WHERE c.process = 'carrier-claim' AND c.created_at >= $1 AND c.created_at < $2
  AND ($3::text IS NULL OR c.market = $3)
GROUP BY c.workflow_id
"""


async def _order_channels(pool: asyncpg.Pool, order_ids: set[str]) -> dict[str, str]:
    if not order_ids:
        return {}
    rows = await pool.fetch(
        """SELECT case_id, reason FROM audit_log
           WHERE action = 'review_started' AND workflow_id = ANY($1::text[])""",
        [f"order-review:{o}" for o in order_ids],
    )
    return {r["case_id"]: r["reason"].removeprefix("channel ") for r in rows}


async def fetch_deliveries(pool: asyncpg.Pool, params: ReportParams) -> DeliveriesData:
    args = (params.period_from, params.period_to, params.market)
    delivery_rows = await pool.fetch(_FAILED_DELIVERIES, *args)
    claim_rows = await pool.fetch(_CLAIMS, *args)
    channels: dict[str, str] = {}
    if params.channel is not None:
        orders = {r["order_id"] for r in [*delivery_rows, *claim_rows] if r["order_id"]}
        channels = await _order_channels(pool, orders)

    def wanted(order_id: str | None) -> bool:
        return params.channel is None or channels.get(order_id or "") == params.channel

    deliveries = [
        FailedDeliveryRow(
            shipment_id=r["case_id"],
            market=r["market"],
            status=r["status"],
            opened_at=r["created_at"],
            second_failure=r["second_failure"],
        )
        for r in delivery_rows
        if wanted(r["order_id"])
    ]
    claims = [
        ClaimRow(
            claim_id=r["workflow_id"],
            carrier=r["workflow_id"].split(":")[1],
            status=r["status"],
            opened_at=r["created_at"],
            filed_at=r["filed_at"],
            filing_deadline=datetime.fromisoformat(r["filing_deadline"])
            if r["filing_deadline"]
            else None,
            reimbursed_minor=r["reimbursed"] or 0,
            currency=(r["currency"] or "").strip(),
        )
        for r in claim_rows
        if wanted(r["order_id"])
    ]
    return DeliveriesData(failed_deliveries=deliveries, claims=claims)


# --------------------------------------------------------------- ops desk

_OPS_REQUESTS = """
SELECT request_id, type, priority, status, market, site_id, opened_at, first_response_at,
       resolved_at, business_seconds_to_resolve, sla_met, escalations, root_cause
FROM ops_requests r
WHERE opened_at >= $1 AND opened_at < $2 AND ($3::text IS NULL OR market = $3)
  AND {channel}
""".format(channel=_CHANNEL_OF.format(order="r.order_id"))


async def fetch_ops_desk(pool: asyncpg.Pool, params: ReportParams) -> OpsDeskData:
    # The channel filter keeps the requests about an order of that channel.
    return OpsDeskData(
        requests=[
            OpsRequestRow(
                request_id=r["request_id"],
                type=r["type"],
                priority=r["priority"],
                status=r["status"],
                market=r["market"],
                site_id=r["site_id"],
                opened_at=r["opened_at"],
                first_response_at=r["first_response_at"],
                resolved_at=r["resolved_at"],
                business_seconds_to_resolve=r["business_seconds_to_resolve"],
                sla_met=r["sla_met"],
                escalations=r["escalations"],
                root_cause=r["root_cause"],
            )
            for r in await pool.fetch(_OPS_REQUESTS, *_args(params))
        ]
    )


# ------------------------------------------------------------- fulfilment

_FULFILMENT_STEPS = (
    "hold_placed",
    "hold_released",
    "address_changed",
    "address_change_refused",
    "pick_refused",
    "qc_pass",
    "qc_fail",
    "qc_cancel_refund",
    "qc_wait",
)

_FULFILMENTS = """
WITH f AS (
    SELECT c.workflow_id, c.case_id, c.market, c.status, c.created_at
    FROM cases c
    WHERE c.process = 'fulfilment' AND c.created_at >= $1 AND c.created_at < $2
      AND ($3::text IS NULL OR c.market = $3)
      AND {channel}
), steps AS (
    -- One grouped pass over the entries the report reads (not one query per case).
    SELECT a.workflow_id,
           jsonb_agg(jsonb_build_object('action', a.action, 'at', a.occurred_at,
                                        'after', a.after) ORDER BY a.id) AS steps
    FROM audit_log a
    WHERE a.process = 'fulfilment' AND a.occurred_at >= $1 AND a.action = ANY($5::text[])
      AND a.workflow_id IN (SELECT workflow_id FROM f)
    GROUP BY a.workflow_id
), wms AS (
    -- The warehouse's own times, once per event id.
    SELECT w.order_id,
           jsonb_agg(jsonb_build_array(w.kind, w.occurred_at) ORDER BY w.occurred_at) AS wms
    FROM warehouse_events w
    WHERE w.order_id IN (SELECT case_id FROM f)
    GROUP BY w.order_id
)
SELECT f.*, steps.steps, wms.wms
FROM f
LEFT JOIN steps ON steps.workflow_id = f.workflow_id
LEFT JOIN wms ON wms.order_id = f.case_id
""".format(channel=_CHANNEL_OF.format(order="c.case_id"))


def _fulfilment(row: asyncpg.Record) -> FulfilmentRow:
    placed: dict[str, tuple[str, datetime]] = {}
    holds: list[HoldRow] = []
    qc: list[str] = []
    changes: list[str] = []
    refusals = 0
    for step in row["steps"] or []:
        action, after = step["action"], step["after"] or {}
        at = datetime.fromisoformat(step["at"])
        if action == "hold_placed":
            placed[str(after.get("handle"))] = (str(after.get("reason") or "unknown"), at)
        elif action == "hold_released":
            reason, since = placed.pop(
                str(after.get("handle")), (str(after.get("reason") or "unknown"), at)
            )
            holds.append(HoldRow(reason=reason, placed_at=since, released_at=at))
        elif action.startswith("qc_"):
            qc.append(action.removeprefix("qc_"))
        elif action == "pick_refused":
            refusals += 1
        else:
            changes.append(str(after.get("outcome") or action))
    holds.extend(HoldRow(reason=r, placed_at=at) for r, at in placed.values())
    return FulfilmentRow(
        order_id=row["case_id"],
        market=row["market"] or "",
        status=row["status"],
        started_at=row["created_at"],
        holds=tuple(holds),
        qc_outcomes=tuple(qc),
        address_changes=tuple(changes),
        pick_refusals=refusals,
        wms_events=tuple((str(k), datetime.fromisoformat(at)) for k, at in row["wms"] or []),
    )


async def fetch_fulfilment(
    pool: asyncpg.Pool, params: ReportParams, *, now: datetime
) -> FulfilmentData:
    rows = await pool.fetch(_FULFILMENTS, *_args(params), list(_FULFILMENT_STEPS))
    return FulfilmentData(
        fulfilments=[_fulfilment(r) for r in rows], as_of=min(now, params.period_to)
    )


# --------------------------------------------------------- employee sales

# Campaigns whose sale window meets the period, with their roster and the
# orders employees (of the market, with a market filter) placed in it.
_CAMPAIGNS = """
SELECT c.campaign_id, c.name, c.state, c.currency,
       (SELECT count(*) FROM campaign_roster r
        WHERE r.campaign_id = c.campaign_id AND r.eligible
          AND ($3::text IS NULL OR r.country = $3))::int AS eligible,
       count(DISTINCT o.employee_id)::int AS buyers,
       count(o.order_id)::int AS orders,
       coalesce(sum(o.amount_minor), 0)::bigint AS revenue_minor
FROM campaigns c
LEFT JOIN (campaign_orders o
           JOIN campaign_roster ro ON ro.campaign_id = o.campaign_id
                                  AND ro.employee_id = o.employee_id
                                  AND ($3::text IS NULL OR ro.country = $3))
  ON o.campaign_id = c.campaign_id AND o.accepted_at >= $1 AND o.accepted_at < $2
WHERE c.opens_at < $2 AND c.closes_at > $1
GROUP BY c.campaign_id, c.name, c.state, c.currency
"""

_CAMPAIGN_SKUS = """
WITH o AS (
    SELECT o.order_id, o.campaign_id
    FROM campaign_orders o
    JOIN campaign_roster r ON r.campaign_id = o.campaign_id AND r.employee_id = o.employee_id
    WHERE o.campaign_id = ANY($4::text[]) AND o.accepted_at >= $1 AND o.accepted_at < $2
      AND ($3::text IS NULL OR r.country = $3)
), sold AS (
    SELECT o.campaign_id, l.sku, sum(l.quantity)::int AS sold
    FROM o JOIN campaign_order_lines l ON l.order_id = o.order_id
    GROUP BY 1, 2
), given_back AS (
    SELECT o.campaign_id, q.sku,
           coalesce(sum(q.quantity) FILTER (WHERE q.reason = 'cancelled'), 0)::int AS cancelled,
           coalesce(sum(q.quantity) FILTER (WHERE q.reason = 'returned'), 0)::int AS returned
    FROM o JOIN campaign_quota_releases q ON q.order_id = o.order_id
    GROUP BY 1, 2
)
SELECT s.campaign_id, s.sku, s.category, s.allocated,
       coalesce(sold.sold, 0) AS sold,
       coalesce(g.cancelled, 0) AS cancelled, coalesce(g.returned, 0) AS returned
FROM campaign_stock s
LEFT JOIN sold ON sold.campaign_id = s.campaign_id AND sold.sku = s.sku
LEFT JOIN given_back g ON g.campaign_id = s.campaign_id AND g.sku = s.sku
WHERE s.campaign_id = ANY($4::text[])
"""


async def fetch_employee_sales(pool: asyncpg.Pool, params: ReportParams) -> EmployeeSalesData:
    if params.channel is not None and params.channel != EMPLOYEE_SALE_CHANNEL:
        return EmployeeSalesData()  # every employee order is in the employee_sale channel
    args = (params.period_from, params.period_to, params.market)
    campaigns = [
        CampaignRow(
            campaign_id=r["campaign_id"],
            name=r["name"],
            state=r["state"],
            currency=r["currency"].strip(),
            eligible=r["eligible"],
            buyers=r["buyers"],
            orders=r["orders"],
            revenue_minor=int(r["revenue_minor"]),
        )
        for r in await pool.fetch(_CAMPAIGNS, *args)
    ]
    ids = [c.campaign_id for c in campaigns]
    skus = [
        SkuRow(
            campaign_id=r["campaign_id"],
            sku=r["sku"],
            category=r["category"],
            allocated=r["allocated"],
            sold=r["sold"],
            cancelled=r["cancelled"],
            returned=r["returned"],
        )
        for r in (await pool.fetch(_CAMPAIGN_SKUS, *args, ids) if ids else [])
    ]
    return EmployeeSalesData(campaigns=campaigns, skus=skus)


# --------------------------------------------------------------- registry

Fetcher = Callable[[asyncpg.Pool, ReportParams, "FetchContext"], Awaitable[Any]]


class FetchContext:
    """What a fetcher may need beyond the period: the clock, settings values."""

    def __init__(self, *, now: datetime, dispute_safety_buffer_hours: float = 12.0) -> None:
        self.now = now
        self.dispute_safety_buffer_hours = dispute_safety_buffer_hours


async def _fraud(pool: asyncpg.Pool, p: ReportParams, _: FetchContext) -> Any:
    return await fetch_fraud(pool, p)


async def _disputes(pool: asyncpg.Pool, p: ReportParams, ctx: FetchContext) -> Any:
    return await fetch_disputes(pool, p, safety_buffer_hours=ctx.dispute_safety_buffer_hours)


async def _service_levels(pool: asyncpg.Pool, p: ReportParams, ctx: FetchContext) -> Any:
    return await fetch_service_levels(pool, p, now=ctx.now)


async def _returns(pool: asyncpg.Pool, p: ReportParams, _: FetchContext) -> Any:
    return await fetch_returns(pool, p)


async def _deliveries(pool: asyncpg.Pool, p: ReportParams, _: FetchContext) -> Any:
    return await fetch_deliveries(pool, p)


async def _ops_desk(pool: asyncpg.Pool, p: ReportParams, _: FetchContext) -> Any:
    return await fetch_ops_desk(pool, p)


async def _employee_sales(pool: asyncpg.Pool, p: ReportParams, _: FetchContext) -> Any:
    return await fetch_employee_sales(pool, p)


async def _fulfilment_report(pool: asyncpg.Pool, p: ReportParams, ctx: FetchContext) -> Any:
    return await fetch_fulfilment(pool, p, now=ctx.now)


# One fetcher per report of domain.reports.CATALOGUE, by the same name.
FETCHERS: dict[str, Fetcher] = {
    "fraud": _fraud,
    "disputes": _disputes,
    "service_levels": _service_levels,
    "returns": _returns,
    "deliveries": _deliveries,
    "ops_desk": _ops_desk,
    "fulfilment": _fulfilment_report,
    "employee_sales": _employee_sales,
}


# ------------------------------------------------------------- report runs

_RUN_COLUMNS = """run_id, workflow_id, report, cadence, period_from, period_to, market, channel,
    status, attempts, requested_by, started_at, finished_at, error, files, headline"""


async def start_run(
    pool: asyncpg.Pool,
    *,
    run_id: str,
    workflow_id: str,
    report: str,
    cadence: str,
    params: ReportParams,
    requested_by: str,
) -> int:
    """Record an attempt of the run (a retry counts one more); its attempt number."""
    attempts: int = await pool.fetchval(
        """
        INSERT INTO report_runs AS r (run_id, workflow_id, report, cadence, period_from,
                                      period_to, market, channel, status, requested_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', $9)
        ON CONFLICT (run_id) DO UPDATE SET attempts = r.attempts + 1, status = 'running'
        RETURNING attempts
        """,
        run_id,
        workflow_id,
        report,
        cadence,
        params.period_from,
        params.period_to,
        params.market,
        params.channel,
        requested_by,
    )
    return attempts


async def finish_run(
    pool: asyncpg.Pool,
    run_id: str,
    *,
    files: list[ReportFile],
    headline: dict[str, Any],
) -> None:
    await pool.execute(
        """UPDATE report_runs SET status = 'succeeded', finished_at = now(), error = NULL,
                  files = $2::jsonb, headline = $3::jsonb
           WHERE run_id = $1""",
        run_id,
        json.loads(dumps([f.model_dump() for f in files])),
        json.loads(dumps(headline)),
    )


async def mark_distributed(pool: asyncpg.Pool, run_id: str) -> bool:
    """True the first time: a retried attempt never sends the page twice."""
    status: str = await pool.execute(
        """UPDATE report_runs SET distributed_at = now()
           WHERE run_id = $1 AND distributed_at IS NULL""",
        run_id,
    )
    return status.endswith(" 1")


async def record_attempt_error(pool: asyncpg.Pool, run_id: str, error: str) -> None:
    await pool.execute(
        "UPDATE report_runs SET error = $2 WHERE run_id = $1 AND status = 'running'",
        run_id,
        error[:2000],
    )


async def fail_run(pool: asyncpg.Pool, run_id: str, error: str) -> bool:
    """The run gave up; False when no row exists (it failed before its first attempt)."""
    status: str = await pool.execute(
        """UPDATE report_runs SET status = 'failed', finished_at = now(), error = $2
           WHERE run_id = $1 AND status <> 'succeeded'""",
        run_id,
        error[:2000],
    )
    return status.endswith(" 1")


def _run(row: asyncpg.Record) -> ReportRunRow:
    return ReportRunRow(
        run_id=row["run_id"],
        workflow_id=row["workflow_id"],
        report=row["report"],
        cadence=row["cadence"],
        period_from=row["period_from"],
        period_to=row["period_to"],
        market=row["market"],
        channel=row["channel"],
        status=RunStatus(row["status"]),
        attempts=row["attempts"],
        requested_by=row["requested_by"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        files=[ReportFile.model_validate(f) for f in row["files"]],
        headline=row["headline"],
    )


async def list_runs(
    pool: asyncpg.Pool,
    *,
    report: str | None = None,
    status: str | None = None,
    workflow_id: str | None = None,
    limit: int = 50,
) -> list[ReportRunRow]:
    rows = await pool.fetch(
        f"""SELECT {_RUN_COLUMNS} FROM report_runs
            WHERE ($1::text IS NULL OR report = $1) AND ($2::text IS NULL OR status = $2)
              AND ($3::text IS NULL OR workflow_id = $3)
            ORDER BY started_at DESC, run_id LIMIT $4""",
        report,
        status,
        workflow_id,
        limit,
    )
    return [_run(r) for r in rows]


async def get_run(pool: asyncpg.Pool, run_id: str) -> ReportRunRow | None:
    row = await pool.fetchrow(f"SELECT {_RUN_COLUMNS} FROM report_runs WHERE run_id = $1", run_id)
    return None if row is None else _run(row)
