"""The order status answer: one view a customer-service agent can read out.

Built from PostgreSQL only (the case table, the audit log, shipments and
their scans, disputes, the claims ledger), never from Temporal history: it
answers for orders whose workflows are long gone, and costs no worker. The
fulfilment's state with its times comes from its `status_changed` audit
rows, its holds from `hold_placed` / `hold_released` rows (see
workflows/fulfilment.py, which writes them with the hold's handle and reason
and never an address).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool

from domain.audit import AuditRow, CaseRow
from domain.common import StewardModel
from domain.fulfilment import FULFILMENT, fulfilment_id
from store import audit as audit_store
from store import deliveries as delivery_store

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

HOLD_PLACED = "hold_placed"
HOLD_RELEASED = "hold_released"


class StateTime(StewardModel):
    status: str
    at: datetime
    actor: str
    reason: str = ""


class ActiveHold(StewardModel):
    handle: str
    reason: str
    placed_by: str
    note: str = ""
    placed_at: datetime


class ShipmentView(StewardModel):
    shipment_id: str
    carrier: str
    tracking_number: str
    status: str
    last_scan_at: datetime | None


class RelatedCase(StewardModel):
    """Another process on the order: its review, a return, a failed delivery,
    a claim, a dispute, as the case table shows it now."""

    process: str
    case_id: str
    workflow_id: str
    status: str
    awaited_role: str | None = None
    due_at: datetime | None = None
    updated_at: datetime


class OrderStatusView(StewardModel):
    order_id: str
    # None: the order never reached the warehouse (or is unknown).
    fulfilment_status: str | None = None
    fulfilment_since: datetime | None = None
    states: list[StateTime] = []
    active_holds: list[ActiveHold] = []
    shipments: list[ShipmentView] = []
    cases: list[RelatedCase] = []
    summary: str = ""

    @property
    def known(self) -> bool:
        return bool(self.fulfilment_status or self.cases or self.shipments)


def _active_holds(rows: list[AuditRow]) -> list[ActiveHold]:
    holds: dict[str, ActiveHold] = {}
    for row in rows:
        handle = str(row.after.get("handle", ""))
        if not handle:
            continue
        if row.action == HOLD_PLACED:
            holds[handle] = ActiveHold(
                handle=handle,
                reason=str(row.after.get("reason", "other")),
                placed_by=row.actor,
                note=row.reason,
                placed_at=row.occurred_at,
            )
        elif row.action == HOLD_RELEASED:
            holds.pop(handle, None)
    return list(holds.values())


def _states(rows: list[AuditRow]) -> list[StateTime]:
    states: list[StateTime] = []
    for row in rows:
        if row.action == "fulfilment_started":
            # The release is the first warehouse state, and its time.
            states.append(
                StateTime(status="released", at=row.occurred_at, actor=row.actor, reason=row.reason)
            )
            continue
        if row.action != "status_changed":
            continue
        status = row.after.get("status")
        if isinstance(status, str):
            states.append(
                StateTime(status=status, at=row.occurred_at, actor=row.actor, reason=row.reason)
            )
    return states


def _summary(view: OrderStatusView) -> str:
    if not view.known:
        return f"Steward knows nothing of order {view.order_id}."
    parts: list[str] = []
    if view.fulfilment_status and view.fulfilment_since:
        parts.append(
            f"Warehouse: {view.fulfilment_status.replace('_', ' ')} since "
            f"{view.fulfilment_since:%Y-%m-%d %H:%M} UTC."
        )
    else:
        review = next((c for c in view.cases if c.process == "order-review"), None)
        if review is not None:
            parts.append(
                f"Order review: {review.status.replace('_', ' ')}; not in the warehouse yet."
            )
    if view.active_holds:
        reasons = ", ".join(h.reason.replace("_", " ") for h in view.active_holds)
        parts.append(f"On hold ({reasons}).")
    for shipment in view.shipments:
        scan = (
            f", last scan {shipment.last_scan_at:%Y-%m-%d %H:%M} UTC"
            if shipment.last_scan_at
            else ""
        )
        parts.append(
            f"Parcel {shipment.carrier} {shipment.tracking_number}: {shipment.status}{scan}."
        )
    for case in view.cases:
        if case.process in ("order-review", FULFILMENT):
            continue
        parts.append(
            f"{case.process.replace('-', ' ').capitalize()} {case.case_id}: {case.status}."
        )
    return " ".join(parts)


async def order_status(db: Executor, order_id: str) -> OrderStatusView:
    """Everything on record about `order_id`, newest state first where it matters."""
    rows = await audit_store.list_by_case(db, order_id, limit=5000)
    fulfilment_rows = [r for r in rows if r.workflow_id == fulfilment_id(order_id)]
    workflow_ids = sorted({r.workflow_id for r in rows} | {fulfilment_id(order_id)})
    case_records = await db.fetch(
        """
        SELECT workflow_id, process, case_id, status, awaited_role, due_at, updated_at
        FROM cases WHERE workflow_id = ANY($1::text[]) OR case_id = $2
        ORDER BY created_at, workflow_id
        """,
        workflow_ids,
        order_id,
    )
    cases = [RelatedCase.model_validate(dict(r)) for r in case_records]
    states = _states(fulfilment_rows)
    fulfilment_case = next((c for c in cases if c.process == FULFILMENT), None)
    shipments = [
        ShipmentView(
            shipment_id=s.record.shipment_id,
            carrier=s.record.carrier,
            tracking_number=s.record.tracking_number,
            status=s.status,
            last_scan_at=s.last_event_at,
        )
        for s in await delivery_store.list_for_order(db, order_id)
    ]
    view = OrderStatusView(
        order_id=order_id,
        fulfilment_status=(
            fulfilment_case.status if fulfilment_case else (states[-1].status if states else None)
        ),
        fulfilment_since=states[-1].at if states else None,
        states=states,
        active_holds=_active_holds(fulfilment_rows),
        shipments=shipments,
        cases=cases,
    )
    view.summary = _summary(view)
    return view


def as_json(view: OrderStatusView) -> dict[str, Any]:
    return view.model_dump(mode="json")


__all__ = ["CaseRow", "OrderStatusView", "order_status"]
