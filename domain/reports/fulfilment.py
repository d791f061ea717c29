"""Fulfilment (issue 16's warehouse process): holds by reason and how long
they held, outbound QC outcomes, address changes by outcome, the time
orders spent in each warehouse (WMS) state, refused picks. Pure.

Time in a state is warehouse time: from the WMS event that entered the
state to the event that left it (the events' own `occurred_at`, not when
Steward received them), so a late webhook does not stretch a state."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from domain.reports.model import ReportChart, ReportContent, ReportParams, ReportTable
from domain.reports.stats import count_by, hours_between, percentile, rate, rounded

NAME = "fulfilment"

# The warehouse states in their order, by the WMS event that enters each.
WMS_STATES: tuple[tuple[str, str], ...] = (
    ("allocated", "allocated"),
    ("picking_started", "picking"),
    ("packing_started", "packing"),
    ("packed", "packed"),
    ("handed_to_carrier", "handed_to_carrier"),
    ("delivered", "delivered"),
)
_STATE_OF = dict(WMS_STATES)
_RANK = {state: n for n, (_kind, state) in enumerate(WMS_STATES)}


@dataclass(frozen=True)
class HoldRow:
    reason: str
    placed_at: datetime
    released_at: datetime | None = None


@dataclass(frozen=True)
class FulfilmentRow:
    """One fulfilment started (its order released) in the period."""

    order_id: str
    market: str
    status: str
    started_at: datetime
    holds: tuple[HoldRow, ...] = ()
    qc_outcomes: tuple[str, ...] = ()  # outbound QC decisions: pass, fail, cancel_refund...
    address_changes: tuple[str, ...] = ()  # outcomes: applied, intercepted, refused...
    pick_refusals: int = 0
    # (WMS event kind, warehouse time) in the order they happened.
    wms_events: tuple[tuple[str, datetime], ...] = ()


@dataclass(frozen=True)
class FulfilmentData:
    fulfilments: list[FulfilmentRow] = field(default_factory=list)
    # When the report is read: a hold still active is measured up to here.
    as_of: datetime | None = None


def state_durations(row: FulfilmentRow) -> dict[str, float]:
    """Hours in each state the order entered and then left (warehouse time)."""
    entered: list[tuple[str, datetime]] = []
    for kind, at in sorted(row.wms_events, key=lambda e: e[1]):
        state = _STATE_OF.get(kind)
        if state is None:
            continue
        if entered and _RANK[state] <= _RANK[entered[-1][0]]:
            continue  # a stale or repeated event does not move the order back
        entered.append((state, at))
    return {
        state: hours_between(at, entered[n + 1][1]) for n, (state, at) in enumerate(entered[:-1])
    }


def compute(data: FulfilmentData, params: ReportParams) -> ReportContent:
    rows = data.fulfilments
    as_of = data.as_of or params.period_to

    statuses = count_by(r.status for r in rows)
    status_table = ReportTable(
        name="by_status",
        title="Fulfilments started in the period, by status now",
        columns=["status", "fulfilments", "share"],
        rows=[[s, n, rate(n, len(rows))] for s, n in sorted(statuses.items())],
    )

    held: dict[str, list[HoldRow]] = defaultdict(list)
    orders_held: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        for hold in row.holds:
            held[hold.reason].append(hold)
            orders_held[hold.reason].add(row.order_id)

    def hold_hours(hold: HoldRow) -> float:
        return hours_between(hold.placed_at, hold.released_at or max(as_of, hold.placed_at))

    holds = ReportTable(
        name="holds_by_reason",
        title="Holds placed, released and still active, by reason; hours held "
        "(an active hold up to the end of the period)",
        columns=["reason", "holds", "orders", "released", "active", "held_p50_h", "held_p95_h"],
        rows=[
            [
                reason,
                len(group),
                len(orders_held[reason]),
                sum(1 for h in group if h.released_at is not None),
                sum(1 for h in group if h.released_at is None),
                rounded(percentile([hold_hours(h) for h in group], 50)),
                rounded(percentile([hold_hours(h) for h in group], 95)),
            ]
            for reason, group in sorted(held.items())
        ],
    )

    qc = count_by(o for r in rows for o in r.qc_outcomes)
    decided = sum(qc.values())
    qc_table = ReportTable(
        name="outbound_qc",
        title="Outbound QC decisions",
        columns=["outcome", "decisions", "share"],
        rows=[[o, n, rate(n, decided)] for o, n in sorted(qc.items())],
    )

    changes = count_by(o for r in rows for o in r.address_changes)
    address_table = ReportTable(
        name="address_changes",
        title="Address changes asked before the parcel left, by outcome",
        columns=["outcome", "changes", "share"],
        rows=[[o, n, rate(n, sum(changes.values()))] for o, n in sorted(changes.items())],
    )

    durations: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for state, hours in state_durations(row).items():
            durations[state].append(hours)
    states = [s for _k, s in WMS_STATES if s in durations]
    time_table = ReportTable(
        name="time_in_state",
        title="Hours in each warehouse state (warehouse time, orders that left the state)",
        columns=["state", "orders", "p50_h", "p95_h", "max_h"],
        rows=[
            [
                s,
                len(durations[s]),
                rounded(percentile(durations[s], 50)),
                rounded(percentile(durations[s], 95)),
                rounded(max(durations[s])),
            ]
            for s in states
        ],
    )

    charts = [
        ReportChart(
            name="time_in_state",
            title="Median hours in each warehouse state",
            categories=states,
            series={"p50 hours": [float(percentile(durations[s], 50) or 0.0) for s in states]},
            y_label="hours",
        ),
        ReportChart(
            name="holds_by_reason",
            title="Holds placed, by reason",
            categories=sorted(held),
            series={"holds": [float(len(held[r])) for r in sorted(held)]},
            y_label="holds",
        ),
    ]
    handed = sum(1 for r in rows if any(k == "handed_to_carrier" for k, _ in r.wms_events))
    return ReportContent(
        headline={
            "fulfilments": len(rows),
            "handed_to_carrier": handed,
            "orders_held": sum(1 for r in rows if r.holds),
            "holds_active": sum(1 for r in rows for h in r.holds if h.released_at is None),
            "qc_decisions": decided,
            "qc_pass_rate": rate(qc.get("pass", 0), decided),
            "address_changes": sum(changes.values()),
            "pick_refusals": sum(r.pick_refusals for r in rows),
        },
        tables=[status_table, holds, qc_table, address_table, time_table],
        charts=charts,
        notes=[
            "Time in a warehouse state is measured in warehouse time, between the WMS "
            "events that entered and left it; a state the order is still in is not counted."
        ],
    )
