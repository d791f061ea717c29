"""What a privacy request reads (issue 21, docs/privacy_request.md): the legal
holds on a requester's subjects and the access export of everything Steward
holds on them. The personal values themselves come from store/personal_data.py.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from store import personal_data
from store.personal_data import Executor

# Processes whose open case on an order holds its personal data, and their
# closed statuses (from domain/: returns, claims, failed deliveries).
_CASE_HOLD_KINDS = {
    "return": "return",
    "carrier-claim": "carrier_claim",
    "failed-delivery": "failed_delivery",
}


@dataclass(frozen=True)
class HoldRow:
    kind: str
    reference: str
    order_id: str | None
    campaign_id: str | None = None
    until: datetime | None = None
    reason: str = ""


async def order_holds(
    db: Executor,
    order_ids: Sequence[str],
    *,
    closed_statuses: Mapping[str, Iterable[str]],
    invoice_retention: timedelta,
) -> list[HoldRow]:
    """The legal holds on these orders: open disputes, open returns, claims
    and failed deliveries (the case table, through the orders' audit rows),
    employee-sale orders of a campaign not reconciled, and the statutory
    retention of the invoice of every captured payment."""
    if not order_ids:
        return []
    ids = sorted(set(order_ids))
    holds: list[HoldRow] = []
    for row in await db.fetch(
        """
        SELECT provider, dispute_id, order_id FROM disputes
        WHERE order_id = ANY($1::text[]) AND closed_at IS NULL
        ORDER BY order_id, dispute_id
        """,
        ids,
    ):
        holds.append(
            HoldRow(
                "dispute",
                f"{row['provider']}:{row['dispute_id']}",
                row["order_id"],
                reason="open chargeback",
            )
        )
    for row in await db.fetch(
        """
        SELECT DISTINCT a.order_id, c.workflow_id, c.process, c.status
        FROM audit_log a JOIN cases c ON c.workflow_id = a.workflow_id
        WHERE a.order_id = ANY($1::text[]) AND c.process = ANY($2::text[])
        ORDER BY a.order_id, c.workflow_id
        """,
        ids,
        sorted(_CASE_HOLD_KINDS),
    ):
        if row["status"] in set(closed_statuses.get(row["process"], ())):
            continue
        holds.append(
            HoldRow(
                _CASE_HOLD_KINDS[row["process"]],
                row["workflow_id"],
                row["order_id"],
                reason=f"open {row['process']} ({row['status']})",
            )
        )
    holds.extend(await _campaign_holds(db, ids))
    for row in await db.fetch(
        """
        SELECT order_id, min(recorded_at) AS invoiced_at FROM payment_ledger
        WHERE order_id = ANY($1::text[]) AND kind = 'capture'
        GROUP BY order_id ORDER BY order_id
        """,
        ids,
    ):
        holds.append(
            HoldRow(
                "invoice_retention",
                f"invoice:{row['order_id']}",
                row["order_id"],
                until=row["invoiced_at"] + invoice_retention,
                reason="statutory retention of the invoice",
            )
        )
    return holds


async def _campaign_holds(db: Executor, order_ids: list[str]) -> list[HoldRow]:
    """Employee-sale orders of a campaign not reconciled yet (issue 18's
    tables: campaign_orders, campaigns, campaign_figures, one row per
    reconciled campaign). Until those tables exist this finds nothing: the
    hook stays, the check starts working with migration 0014."""
    present = await db.fetchval(
        """
        SELECT to_regclass('public.campaign_orders') IS NOT NULL
           AND to_regclass('public.campaigns') IS NOT NULL
           AND to_regclass('public.campaign_figures') IS NOT NULL
        """
    )
    if not present:
        return []
    try:
        rows = await db.fetch(
            """
            SELECT o.order_id, o.campaign_id FROM campaign_orders o
            JOIN campaigns c ON c.campaign_id = o.campaign_id
            WHERE o.order_id = ANY($1::text[]) AND c.state <> 'cancelled'
              AND NOT EXISTS (SELECT 1 FROM campaign_figures f
                              WHERE f.campaign_id = o.campaign_id)
            ORDER BY o.order_id
            """,
            order_ids,
        )
    except asyncpg.UndefinedColumnError:  # a campaign schema other than assumed
        return []
    return [
        HoldRow(
            "campaign",
            f"campaign:{r['campaign_id']}",
            r["order_id"],
            campaign_id=r["campaign_id"],
            reason="employee sale not reconciled",
        )
        for r in rows
    ]


async def campaign_holds(db: Executor, campaign_ids: Sequence[str]) -> list[HoldRow]:
    """The campaigns among these not reconciled yet (an employee of the
    roster keeps their data until the campaign's reconciliation: issue 18's
    campaign_figures holds one row per reconciled campaign); nothing until
    those tables exist."""
    if not campaign_ids:
        return []
    present = await db.fetchval(
        "SELECT to_regclass('public.campaigns') IS NOT NULL "
        "AND to_regclass('public.campaign_figures') IS NOT NULL"
    )
    if not present:
        return []
    try:
        rows = await db.fetch(
            """
            SELECT c.campaign_id FROM campaigns c
            WHERE c.campaign_id = ANY($1::text[]) AND c.state <> 'cancelled'
              AND NOT EXISTS (SELECT 1 FROM campaign_figures f
                              WHERE f.campaign_id = c.campaign_id)
            ORDER BY c.campaign_id
            """,
            sorted(set(campaign_ids)),
        )
    except asyncpg.UndefinedColumnError:  # a campaign schema other than assumed
        return []
    return [
        HoldRow(
            "campaign",
            f"campaign:{r['campaign_id']}",
            None,
            campaign_id=r["campaign_id"],
            reason="campaign not reconciled",
        )
        for r in rows
    ]


# ------------------------------------------------------------------ export


@dataclass
class SubjectExport:
    subject_id: str
    kind: str
    created_at: datetime
    erased_at: datetime | None
    fields: dict[str, str]
    references: list[tuple[str, str]]


@dataclass
class AccessExport:
    request_id: str
    generated_at: datetime
    subjects: list[SubjectExport] = field(default_factory=list)

    @property
    def field_count(self) -> int:
        return sum(len(s.fields) for s in self.subjects)

    @property
    def reference_count(self) -> int:
        return sum(len(s.references) for s in self.subjects)

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "generated_at": self.generated_at.isoformat(),
            "controller": "Steward back office",
            "subjects": [
                {
                    "subject_id": s.subject_id,
                    "kind": s.kind,
                    "created_at": s.created_at.isoformat(),
                    "erased_at": s.erased_at.isoformat() if s.erased_at else None,
                    "fields": s.fields,
                    "references": [{"kind": k, "id": v} for k, v in s.references],
                }
                for s in self.subjects
            ],
        }

    def to_html(self) -> str:
        esc = html.escape
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>Personal data held by Steward: request {esc(self.request_id)}</title>",
            "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}"
            "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;"
            "padding:.3em;text-align:left}</style></head><body>",
            f"<h1>Personal data held by Steward</h1><p>Request {esc(self.request_id)}, "
            f"generated {self.generated_at:%Y-%m-%d %H:%M} UTC. "
            f"{len(self.subjects)} record(s).</p>",
        ]
        for s in self.subjects:
            parts.append(f"<h2>{esc(s.kind)} <small>{esc(s.subject_id)}</small></h2>")
            if s.erased_at:
                parts.append(f"<p>Erased on {s.erased_at:%Y-%m-%d}.</p>")
            parts.append("<table><tr><th>field</th><th>value</th></tr>")
            parts.extend(
                f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in sorted(s.fields.items())
            )
            parts.append("</table>")
            if s.references:
                refs = ", ".join(f"{esc(k)} {esc(v)}" for k, v in s.references)
                parts.append(f"<p>Appears in: {refs}</p>")
        parts.append("</body></html>")
        return "".join(parts)

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, indent=2)


async def build_export(
    db: Executor, request_id: str, subject_ids: Sequence[str], now: datetime
) -> AccessExport:
    """Everything held on these subjects (decrypted), with their references."""
    ids = sorted(set(subject_ids))
    export = AccessExport(request_id=request_id, generated_at=now)
    if not ids:
        return export
    views = await personal_data.read_subjects(db, ids)
    refs = await personal_data.refs_of(db, ids)
    created = {
        r["subject_id"]: r["created_at"]
        for r in await db.fetch(
            "SELECT subject_id, created_at FROM personal_subjects "
            "WHERE subject_id = ANY($1::text[])",
            ids,
        )
    }
    for sid in ids:
        view = views[sid]
        export.subjects.append(
            SubjectExport(
                subject_id=sid,
                kind=view.kind,
                created_at=created[sid],
                erased_at=view.erased_at,
                fields=dict(view.fields),
                references=refs.get(sid, []),
            )
        )
    return export
