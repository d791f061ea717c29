"""Rows for the reports, written straight into PostgreSQL: the integration
tests' seeded data sets (tests/integration/test_reports.py) and the 100k-case
benchmark (bench/reports.py). Written with COPY, the way a large history is
loaded fast; the rows have the shape the workflows' steps write."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from store.db import dumps

_AUDIT = (
    "entry_id",
    "workflow_id",
    "process",
    "case_id",
    "actor",
    "role",
    "action",
    "reason",
    "before",
    "after",
    "occurred_at",
    "order_id",
)
_CASES = (
    "workflow_id",
    "process",
    "case_id",
    "status",
    "market",
    "amount_minor",
    "currency",
    "created_at",
    "updated_at",
)
_TASKS = (
    "task_id",
    "process",
    "case_id",
    "workflow_id",
    "kind",
    "title",
    "awaited_role",
    "due_at",
    "escalated",
    "opened_at",
    "closed_at",
    "closed_by",
    "outcome",
)
_DISPUTES = (
    "provider",
    "dispute_id",
    "workflow_id",
    "order_id",
    "stage",
    "status",
    "reason",
    "due_by",
    "amount_minor",
    "currency",
    "opened_at",
    "updated_at",
    "closed_at",
)
_CLAIM_LEDGER = (
    "idempotency_key",
    "workflow_id",
    "carrier",
    "tracking_number",
    "order_id",
    "claim_reference",
    "outcome",
    "amount_minor",
    "currency",
)


@dataclass
class Seeder:
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    tasks: list[tuple[Any, ...]] = field(default_factory=list)
    disputes: list[tuple[Any, ...]] = field(default_factory=list)
    claims: list[tuple[Any, ...]] = field(default_factory=list)
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    wms: list[tuple[Any, ...]] = field(default_factory=list)
    _sequence: dict[str, int] = field(default_factory=dict)

    def case(
        self,
        process: str,
        case_id: str,
        status: str,
        created_at: datetime,
        *,
        market: str | None = "FR",
        workflow_id: str | None = None,
        amount_minor: int = 100_000,
    ) -> str:
        workflow_id = workflow_id or f"{process}:{case_id}"
        self.cases.append(
            (
                workflow_id,
                process,
                case_id,
                status,
                market,
                amount_minor,
                "EUR",
                created_at,
                created_at,
            )
        )
        return workflow_id

    def step(
        self,
        workflow_id: str,
        action: str,
        at: datetime,
        *,
        reason: str = "",
        after: dict[str, Any] | None = None,
        actor: str = "steward",
        role: str = "system",
        order_id: str | None = None,
    ) -> None:
        process, _, case_id = workflow_id.partition(":")
        n = self._sequence.get(workflow_id, 0) + 1
        self._sequence[workflow_id] = n
        self.audit.append(
            (
                f"{workflow_id}/{n:04d}",
                workflow_id,
                process,
                case_id,
                actor,
                role,
                action,
                reason,
                {},
                after or {},
                at,
                order_id,
            )
        )

    def task(
        self,
        workflow_id: str,
        kind: str,
        role: str,
        opened_at: datetime,
        due_at: datetime,
        *,
        closed_at: datetime | None = None,
        closed_by: str | None = None,
        escalated: bool = False,
    ) -> None:
        process, _, case_id = workflow_id.partition(":")
        self.tasks.append(
            (
                f"{workflow_id}/{kind}/{len(self.tasks)}",
                process,
                case_id,
                workflow_id,
                kind,
                kind,
                role,
                due_at,
                escalated,
                opened_at,
                closed_at,
                closed_by if closed_at else None,
                "done" if closed_at else None,
            )
        )

    def dispute(
        self,
        dispute_id: str,
        order_id: str | None,
        reason: str,
        status: str,
        opened_at: datetime,
        *,
        provider: str = "stripe",
        amount_minor: int = 10_000,
        due_by: datetime | None = None,
        closed_at: datetime | None = None,
    ) -> str:
        workflow_id = f"chargeback:{provider}:{dispute_id}"
        self.disputes.append(
            (
                provider,
                dispute_id,
                workflow_id,
                order_id,
                "dispute",
                status,
                reason,
                due_by,
                amount_minor,
                "EUR",
                opened_at,
                closed_at or opened_at,
                closed_at,
            )
        )
        return workflow_id

    def claim_outcome(
        self, workflow_id: str, order_id: str, outcome: str, amount_minor: int
    ) -> None:
        _, carrier, tracking = workflow_id.split(":")
        self.claims.append(
            (
                f"{workflow_id}/outcome",
                workflow_id,
                carrier,
                tracking,
                order_id,
                f"CLM-{tracking}",
                outcome,
                amount_minor,
                "EUR",
            )
        )

    def released_order(self, order_id: str, items: list[tuple[str, str, int]]) -> None:
        """The order as fulfilment keeps it at release: (sku, category, quantity) lines."""
        document = {
            "order_id": order_id,
            "items": [
                {"sku": sku, "category": category, "quantity": quantity}
                for sku, category, quantity in items
            ],
        }
        self.orders.append((order_id, document, f"order:{order_id}"))

    def warehouse_event(self, order_id: str, kind: str, at: datetime) -> None:
        """One WMS event as the warehouse webhook records it (once per event id)."""
        self.wms.append((f"wms-{order_id}-{kind}-{len(self.wms)}", order_id, kind, at, True))

    async def write(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            # COPY speaks PostgreSQL's binary format, where the store's jsonb
            # codec (text) has no encoder: binary jsonb is a version byte and
            # the text. Put back as store/db.py sets it once done.
            await conn.set_type_codec(
                "jsonb",
                schema="pg_catalog",
                encoder=lambda value: b"\x01" + dumps(value).encode(),
                decoder=lambda data: json.loads(data[1:]),
                format="binary",
            )
            for table, columns, rows in (
                ("cases", _CASES, self.cases),
                ("audit_log", _AUDIT, self.audit),
                ("human_tasks", _TASKS, self.tasks),
                ("disputes", _DISPUTES, self.disputes),
                ("carrier_claim_ledger", _CLAIM_LEDGER, self.claims),
                ("fulfilment_orders", ("order_id", "document", "subject_id"), self.orders),
                (
                    "warehouse_events",
                    ("event_id", "order_id", "kind", "occurred_at", "routed"),
                    self.wms,
                ),
            ):
                if rows:
                    await conn.copy_records_to_table(table, records=rows, columns=columns)
            await conn.set_type_codec(
                "jsonb", schema="pg_catalog", encoder=dumps, decoder=json.loads, format="text"
            )
        for rows in (
            self.cases,
            self.audit,
            self.tasks,
            self.disputes,
            self.claims,
            self.orders,
            self.wms,
        ):
            rows.clear()


# ------------------------------------------------------------- synthetic

MARKETS = ("FR", "GB", "IT", "US", "DE")
ROUTINGS = (("auto_accept", 0.8), ("review", 0.15), ("auto_decline", 0.05))
COORDINATORS = ("alice", "bob", "chloe", "dmitri")
RETURN_REASONS = ("too_small", "too_large", "defective", "no_longer_wanted", "colour_differs")
CATEGORIES = ("handbags", "shoes", "ready_to_wear", "small_leather_goods", "watches")
WMS_STEPS = ("allocated", "picking_started", "packing_started", "packed", "handed_to_carrier")
# One released order in this many is followed through the warehouse (fulfilment case).
FULFILMENT_EVERY = 5


def synthetic(seeder: Seeder, cases: int, start: datetime, span: timedelta, seed: int = 7) -> None:
    """`cases` cases over `span` from `start`: mostly order reviews, with
    returns, disputes, failed deliveries and claims in realistic proportions,
    each with the audit rows and tasks its workflow writes."""
    rng = random.Random(seed)
    seconds = int(span.total_seconds())
    for n in range(cases):
        at = start + timedelta(seconds=rng.randrange(seconds))
        market = rng.choice(MARKETS)
        kind = rng.random()
        if kind < 0.7:
            _review(seeder, rng, f"B{n}", market, at)
        elif kind < 0.85:
            _return(seeder, rng, f"RMA{n}", market, at)
        elif kind < 0.92:
            order = f"B{rng.randrange(max(n, 1))}"
            status = rng.choice(("won", "lost", "accepted", "expired", "under_review"))
            wf = seeder.dispute(
                f"dp_{n}",
                order,
                rng.choice(("fraud", "not_received", "general")),
                status,
                at,
                due_by=at + timedelta(days=10),
                closed_at=at + timedelta(days=20) if status != "under_review" else None,
            )
            seeder.step(
                wf,
                "evidence_assembled",
                at + timedelta(hours=1),
                reason=rng.choice(("complete", "missing: cctv")),
                order_id=order,
            )
            seeder.step(
                wf,
                "dispute_contest_submitted",
                at + timedelta(days=rng.randrange(1, 10)),
                order_id=order,
            )
        elif kind < 0.97:
            wf = seeder.case(
                "failed-delivery",
                f"SHP{n}",
                rng.choice(("delivered", "reshipped", "refunded", "closed", "awaiting_customer")),
                at,
                market=market,
            )
            seeder.step(wf, "failed_delivery_opened", at, order_id=f"B{n}")
            if rng.random() < 0.1:
                seeder.step(wf, "second_failure", at + timedelta(days=3), order_id=f"B{n}")
            seeder.task(
                wf,
                "delivery_decision",
                "coordinator",
                at,
                at + timedelta(hours=24),
                closed_at=at + timedelta(hours=rng.randrange(1, 48)),
                closed_by=rng.choice(COORDINATORS),
            )
        else:
            status = rng.choice(("approved", "rejected", "no_response", "filed"))
            wf = seeder.case(
                "carrier-claim",
                f"ups:1Z{n}",
                status,
                at,
                market=market,
                workflow_id=f"carrier-claim:ups:1Z{n}",
            )
            seeder.step(
                wf,
                "claim_filed",
                at + timedelta(days=2),
                order_id=f"B{n}",
                after={"filing_deadline": (at + timedelta(days=30)).isoformat()},
            )
            if status in ("approved", "rejected", "no_response"):
                seeder.claim_outcome(wf, f"B{n}", status, 50_000 if status == "approved" else 0)


def _review(seeder: Seeder, rng: random.Random, order: str, market: str, at: datetime) -> None:
    pick = rng.random()
    routing = "auto_accept" if pick < 0.8 else "review" if pick < 0.95 else "auto_decline"
    status = {"auto_accept": "released", "auto_decline": "cancelled"}.get(routing, "released")
    wf = seeder.case("order-review", order, status, at, market=market)
    seeder.step(wf, "review_started", at, reason=f"channel {rng.choice(('web', 'app', 'store'))}")
    seeder.step(
        wf,
        "scored",
        at,
        reason=rng.choice(("no risk signal", "velocity_email", "high_value, velocity_card")),
        after={"routing": routing},
    )
    if routing == "review":
        opened = at + timedelta(seconds=1)
        decided = opened + timedelta(minutes=rng.randrange(5, 600))
        decision = rng.choice(("approve", "approve", "decline"))
        who = rng.choice(COORDINATORS)
        seeder.task(
            wf,
            "order_review",
            "coordinator",
            opened,
            opened + timedelta(hours=4),
            closed_at=decided,
            closed_by=who,
            escalated=rng.random() < 0.1,
        )
        seeder.step(
            wf,
            f"decision_{decision}",
            decided,
            actor=who,
            role="coordinator",
            after={
                "decision": decision,
                "reason_code": "suspected_fraud" if decision == "decline" else "verified_customer",
            },
        )
        if decision == "decline":
            seeder.cases[-1] = (*seeder.cases[-1][:3], "cancelled", *seeder.cases[-1][4:])
            seeder.step(
                wf, "status_changed", decided, reason="declined", after={"status": "cancelled"}
            )

    if seeder.cases[-1][3] == "released":  # not declined by a coordinator
        # Its lines as fulfilment keeps them (the returns report's categories);
        # a SKU's category follows its number, as a catalogue would.
        skus = {rng.randrange(50) for _ in range(rng.randint(1, 2))}
        seeder.released_order(
            order, [(f"SKU-{k}", CATEGORIES[k % len(CATEGORIES)], 1) for k in skus]
        )
        if rng.randrange(FULFILMENT_EVERY) == 0:
            _fulfilment(seeder, rng, order, market, at)


def _return(seeder: Seeder, rng: random.Random, rma: str, market: str, at: datetime) -> None:
    refunded = rng.random() < 0.7
    wf = seeder.case("return", rma, "refunded" if refunded else "in_transit", at, market=market)
    reason = rng.choice(RETURN_REASONS)
    order = f"B{rng.randrange(100_000)}"
    seeder.step(
        wf,
        "return_requested",
        at,
        reason=f"{reason} (fit), wants refund",
        after={"order_id": order, "lines": {f"SKU-{rng.randrange(50)}": 1}},
        order_id=order,
    )
    if refunded:
        seeder.step(
            wf,
            "qc_result_received",
            at + timedelta(days=3),
            after={"grade": rng.choice(("first_choice", "second_choice", "ko"))},
            order_id=order,
        )
        seeder.step(
            wf, "refund_issued", at + timedelta(days=4, hours=rng.randrange(24)), order_id=order
        )


def _fulfilment(seeder: Seeder, rng: random.Random, order: str, market: str, at: datetime) -> None:
    wf = seeder.case("fulfilment", order, "handed_to_carrier", at, market=market)
    if rng.random() < 0.1:
        seeder.step(wf, "hold_placed", at, after={"handle": f"h-{order}", "reason": "outbound_qc"})
        seeder.step(wf, "qc_pass", at + timedelta(hours=2))
        seeder.step(
            wf,
            "hold_released",
            at + timedelta(hours=2),
            after={"handle": f"h-{order}", "reason": "outbound_qc"},
        )
    when = at
    for kind in WMS_STEPS:
        when += timedelta(minutes=rng.randrange(10, 600))
        seeder.warehouse_event(order, kind, when)
