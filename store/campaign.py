"""Employee special sales in the store: the campaign row (the quota gate), the
HR roster, the quotas and stock taken atomically by employee orders, the
gift and after-sales requests, reconciliation's facts and the historical
figures.

Quotas hold under the opening rush because each order is one transaction:
the employee's roster row is locked (FOR UPDATE), the order id is checked
under that lock (the same id twice takes the quota once), each SKU's stock
is taken by a conditional UPDATE (remaining >= n) in SKU order (no
deadlock), and anything refused rolls the whole order back.

The roster's personal fields (name, work email) and the requests' texts are
personal-data subjects (store/personal_data.py): these tables hold only their
ids and a keyed fingerprint of the email.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool

from domain.campaign import (
    CampaignOrderRequest,
    CampaignParameters,
    CampaignSchedule,
    CatalogueEntry,
    Discrepancy,
    QuotaDecision,
    QuotaRelease,
    Refusal,
    RosterParse,
    RosterRow,
    RosterSummary,
    cancel_release_id,
    roster_hash,
)
from domain.common import format_amount
from domain.ids import campaign_workflow_id
from store import personal_data

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


class CampaignNotFound(LookupError):
    pass


class CampaignConflict(RuntimeError):
    """A campaign id reused with other parameters, a roster import after the draft..."""


class OrderInvalid(ValueError):
    """The order names an unknown employee or SKU, or its payment does not match
    its price: a 422 naming the field; nothing was taken."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class CampaignRecord:
    campaign_id: str
    workflow_id: str
    state: str
    parameters: CampaignParameters
    opens_at: datetime
    closes_at: datetime
    prepared_by: str
    roster_hash: str | None
    roster_rows: int
    roster_report: Any


# ------------------------------------------------------------------ campaign


async def create_campaign(
    pool: asyncpg.Pool, params: CampaignParameters, schedule: CampaignSchedule, prepared_by: str
) -> bool:
    """Record a new campaign (draft); False when the same one already exists
    (a retried request). CampaignConflict when the id is taken by another."""
    payload = params.model_dump(mode="json")
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.fetchval(
            """
            INSERT INTO campaigns (campaign_id, workflow_id, name, timezone, opens_at, closes_at,
                legal_entities, currency, quota_back_on_return, parameters, prepared_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (campaign_id) DO NOTHING
            RETURNING true
            """,
            params.campaign_id,
            campaign_workflow_id(params.campaign_id),
            params.name,
            params.timezone,
            schedule.opens_at,
            schedule.closes_at,
            list(params.legal_entities),
            params.currency,
            params.quota_back_on_return,
            payload,
            prepared_by,
        )
        if not inserted:
            existing = await conn.fetchval(
                "SELECT parameters FROM campaigns WHERE campaign_id = $1", params.campaign_id
            )
            if existing != payload:
                raise CampaignConflict(
                    f"campaign_id: {params.campaign_id} already exists with other parameters"
                )
            return False
        await conn.executemany(
            "INSERT INTO campaign_quotas (campaign_id, grade, max_units, max_amount_minor) "
            "VALUES ($1, $2, $3, $4)",
            [
                (params.campaign_id, grade, q.max_units, q.max_amount_minor)
                for grade, q in params.quotas.items()
            ],
        )
        await conn.executemany(
            "INSERT INTO campaign_stock (campaign_id, sku, name, category, sale_price_minor, "
            "allocated, remaining) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            [
                (
                    params.campaign_id,
                    p.sku,
                    p.name,
                    p.category.value,
                    p.sale_price_minor,
                    p.allocated_units,
                )
                for p in params.prices
            ],
        )
    return True


def _record(row: asyncpg.Record) -> CampaignRecord:
    return CampaignRecord(
        campaign_id=row["campaign_id"],
        workflow_id=row["workflow_id"],
        state=row["state"],
        parameters=CampaignParameters.model_validate(row["parameters"]),
        opens_at=row["opens_at"],
        closes_at=row["closes_at"],
        prepared_by=row["prepared_by"],
        roster_hash=row["roster_hash"],
        roster_rows=row["roster_rows"],
        roster_report=row["roster_report"],
    )


async def get_campaign(db: Executor, campaign_id: str) -> CampaignRecord:
    row = await db.fetchrow("SELECT * FROM campaigns WHERE campaign_id = $1", campaign_id)
    if row is None:
        raise CampaignNotFound(f"no campaign {campaign_id}")
    return _record(row)


async def set_gate(
    db: Executor, campaign_id: str, state: str, schedule: CampaignSchedule | None
) -> None:
    """The workflow moves the gate (idempotent: the same values again change nothing)."""
    await db.execute(
        """
        UPDATE campaigns
        SET state = $2,
            opens_at = coalesce($3, opens_at),
            closes_at = coalesce($4, closes_at),
            updated_at = now()
        WHERE campaign_id = $1
        """,
        campaign_id,
        state,
        schedule.opens_at if schedule else None,
        schedule.closes_at if schedule else None,
    )


async def overlapping(db: Executor, campaign_id: str) -> list[str]:
    """Other live campaigns sharing a legal entity whose window overlaps."""
    rows = await db.fetch(
        """
        SELECT o.campaign_id FROM campaigns c
        JOIN campaigns o ON o.campaign_id <> c.campaign_id
            AND o.legal_entities && c.legal_entities
            AND o.opens_at < c.closes_at AND c.opens_at < o.closes_at
            AND o.state IN ('scheduled', 'open')
        WHERE c.campaign_id = $1
        ORDER BY o.campaign_id
        """,
        campaign_id,
    )
    return [r["campaign_id"] for r in rows]


# -------------------------------------------------------------------- roster


# Connections a roster import writes its personal-data subjects with, in
# parallel (each subject is a few round trips); the store's pool has 10.
ROSTER_WRITERS = 4


def _subject(campaign_id: str, import_id: str, employee_id: str) -> str:
    # One subject per employee per import: a re-import never writes into a
    # subject an earlier one erased, and a failed import leaves only
    # subjects nothing points to, erased by the next import.
    return personal_data.subject_id_for("employee", f"{campaign_id}/{import_id}/{employee_id}")


async def _in_parallel(pool: asyncpg.Pool, items: Sequence[Any], work: Any) -> None:
    """`work(conn, item)` for every item, on ROSTER_WRITERS connections."""
    queue = list(items)

    async def writer() -> None:
        async with pool.acquire() as conn:
            while queue:
                await work(conn, queue.pop())

    await asyncio.gather(*(writer() for _ in range(min(ROSTER_WRITERS, len(queue)))))


async def _put_personal(
    pool: asyncpg.Pool, campaign_id: str, import_id: str, rows: Sequence[RosterRow]
) -> None:
    """Each employee's name and work email as a personal-data subject."""

    async def put(conn: Executor, row: RosterRow) -> None:
        await personal_data.put_subject(
            conn,
            kind="employee",
            fields={"name": row.name, "email": row.work_email},
            subject_id=_subject(campaign_id, import_id, row.employee_id),
            # "campaign": a privacy request finds the campaign's legal hold
            # (not reconciled yet) and lists it in an access export;
            # "campaign_roster": the roster's own subjects (_forget_stale).
            refs=[("campaign", campaign_id), ("campaign_roster", campaign_id)],
        )

    await _in_parallel(pool, rows, put)


async def _forget_stale(pool: asyncpg.Pool, campaign_id: str) -> None:
    """Erase the roster subjects of this campaign the stored roster does not
    point to (an earlier import's, a failed import's)."""
    every = await personal_data.find_subjects(pool, ref=("campaign_roster", campaign_id))
    current = {
        r["subject_id"]
        for r in await pool.fetch(
            "SELECT subject_id FROM campaign_roster WHERE campaign_id = $1", campaign_id
        )
    }
    stale = await personal_data.live_subjects(
        pool, [sid for sid in every if sid not in current], exclude_kinds=["message"]
    )

    async def erase(conn: Executor, subject_id: str) -> None:
        await personal_data.erase_subject(conn, subject_id, reason=f"roster-replaced:{campaign_id}")

    await _in_parallel(pool, stale, erase)


async def _get_personal(db: Executor, subject_id: str) -> tuple[str, str]:
    try:
        fields = await personal_data.get_subject(db, subject_id)
    except (personal_data.UnknownSubject, personal_data.SubjectErased):
        raise OrderInvalid("employee_id", "the employee's personal data was erased") from None
    return fields["name"], fields["email"]


async def import_roster(pool: asyncpg.Pool, campaign_id: str, parsed: RosterParse) -> str:
    """Replace the campaign's roster with `parsed` while the campaign is a
    draft: all rows or none. The employees' personal data is written first
    (in parallel, to subjects of this import only); the roster rows and the
    campaign's hash in one transaction; then the subjects no roster points to
    any more are erased. Returns the roster's hash."""
    if parsed.errors:
        raise ValueError("a roster with errors is never imported")
    digest = roster_hash(parsed.rows)
    await _draft(pool, campaign_id, lock=False)
    import_id = uuid.uuid4().hex[:16]
    await _put_personal(pool, campaign_id, import_id, parsed.rows)
    async with pool.acquire() as conn, conn.transaction():
        await _draft(conn, campaign_id, lock=True)
        await conn.execute("DELETE FROM campaign_roster WHERE campaign_id = $1", campaign_id)
        await conn.copy_records_to_table(
            "campaign_roster",
            records=[
                (
                    campaign_id,
                    r.employee_id,
                    r.line,
                    r.legal_entity,
                    r.country,
                    r.grade,
                    r.start_date,
                    r.leave_date,
                    r.eligible,
                    r.ineligible_reason,
                    _subject(campaign_id, import_id, r.employee_id),
                    personal_data.fingerprint(r.work_email),
                )
                for r in parsed.rows
            ],
            columns=[
                "campaign_id",
                "employee_id",
                "line_number",
                "legal_entity",
                "country",
                "grade",
                "start_date",
                "leave_date",
                "eligible",
                "ineligible_reason",
                "subject_id",
                "email_fingerprint",
            ],
        )
        await conn.execute(
            """
            UPDATE campaigns SET roster_hash = $2, roster_rows = $3, roster_report = $4,
                updated_at = now()
            WHERE campaign_id = $1
            """,
            campaign_id,
            digest,
            len(parsed.rows),
            [i.model_dump(mode="json") for i in parsed.issues],
        )
    await _forget_stale(pool, campaign_id)
    return digest


async def _draft(db: Executor, campaign_id: str, *, lock: bool) -> None:
    state = await db.fetchval(
        "SELECT state FROM campaigns WHERE campaign_id = $1" + (" FOR UPDATE" if lock else ""),
        campaign_id,
    )
    if state is None:
        raise CampaignNotFound(f"no campaign {campaign_id}")
    if state != "draft":
        raise CampaignConflict(
            f"campaign {campaign_id} is {state}: the roster is imported before approval"
        )


async def roster_summary(db: Executor, campaign_id: str) -> RosterSummary:
    digest = await db.fetchval(
        "SELECT roster_hash FROM campaigns WHERE campaign_id = $1", campaign_id
    )
    rows = await db.fetch(
        """
        SELECT grade, count(*) FILTER (WHERE eligible)::int AS eligible,
               count(*) FILTER (WHERE NOT eligible)::int AS excluded
        FROM campaign_roster WHERE campaign_id = $1 GROUP BY grade
        """,
        campaign_id,
    )
    eligible = sum(r["eligible"] for r in rows)
    excluded = sum(r["excluded"] for r in rows)
    return RosterSummary(
        roster_hash=digest,
        rows=eligible + excluded,
        eligible=eligible,
        excluded=excluded,
        grades={r["grade"]: r["eligible"] for r in rows if r["eligible"]},
    )


async def employee_identity(db: Executor, campaign_id: str, employee_id: str) -> dict[str, Any]:
    """What an order review needs of the employee (name and email from the
    personal columns); OrderInvalid for someone not on the roster."""
    row = await db.fetchrow(
        "SELECT country, start_date, subject_id FROM campaign_roster WHERE campaign_id = $1 "
        "AND employee_id = $2",
        campaign_id,
        employee_id,
    )
    if row is None:
        if not await db.fetchval("SELECT true FROM campaigns WHERE campaign_id = $1", campaign_id):
            raise CampaignNotFound(f"no campaign {campaign_id}")
        raise OrderInvalid("employee_id", f"{employee_id} is not on the roster of {campaign_id}")
    name, email = await _get_personal(db, row["subject_id"])
    return {"name": name, "email": email, "country": row["country"], "since": row["start_date"]}


# --------------------------------------------------------------------- quotas


class _Refused(Exception):
    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.refusal = refusal
        self.detail = detail


async def take_quota(
    pool: asyncpg.Pool, campaign_id: str, request: CampaignOrderRequest
) -> QuotaDecision:
    """Accept the order and take its quota and stock, or refuse it whole,
    saying why (window, eligibility, quota, stock, conflict). OrderInvalid
    for an unknown employee or SKU or a payment that does not match."""
    fingerprint = request.fingerprint()
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await _take(conn, campaign_id, request, fingerprint)
    except _Refused as refused:
        # A refusal writes nothing (the answer is a 409: nothing changed); the
        # API logs it with its reason.
        return QuotaDecision(
            order_id=request.order_id,
            accepted=False,
            refusal=refused.refusal,
            detail=f"{refused.refusal.value}: {refused.detail}",
        )


async def _take(
    conn: asyncpg.pool.PoolConnectionProxy,
    campaign_id: str,
    request: CampaignOrderRequest,
    fingerprint: str,
) -> QuotaDecision:
    campaign = await conn.fetchrow(
        "SELECT state, opens_at, closes_at, currency, timezone, now() AS now FROM campaigns "
        "WHERE campaign_id = $1",
        campaign_id,
    )
    if campaign is None:
        raise CampaignNotFound(f"no campaign {campaign_id}")
    employee = await conn.fetchrow(
        """
        SELECT r.eligible, r.ineligible_reason, r.grade, r.units_taken, r.amount_taken_minor,
               q.max_units, q.max_amount_minor
        FROM campaign_roster r
        JOIN campaign_quotas q ON q.campaign_id = r.campaign_id AND q.grade = r.grade
        WHERE r.campaign_id = $1 AND r.employee_id = $2
        FOR UPDATE OF r
        """,
        campaign_id,
        request.employee_id,
    )
    if employee is None:
        raise OrderInvalid(
            "employee_id", f"{request.employee_id} is not on the roster of {campaign_id}"
        )
    # Under the employee's lock: a repeat of this order id sees the first.
    existing = await conn.fetchrow(
        "SELECT campaign_id, fingerprint, units, amount_minor, currency FROM campaign_orders "
        "WHERE order_id = $1",
        request.order_id,
    )
    if existing is not None:
        if existing["campaign_id"] != campaign_id or existing["fingerprint"] != fingerprint:
            raise _Refused(
                Refusal.CONFLICT,
                f"order {request.order_id} was already placed with other lines",
            )
        return QuotaDecision(
            order_id=request.order_id,
            accepted=True,
            units=existing["units"],
            amount_minor=existing["amount_minor"],
            currency=existing["currency"],
            first_time=False,
        )
    skus = sorted(line.sku for line in request.lines)
    prices = {
        r["sku"]: r["sale_price_minor"]
        for r in await conn.fetch(
            "SELECT sku, sale_price_minor FROM campaign_stock "
            "WHERE campaign_id = $1 AND sku = ANY($2::text[])",
            campaign_id,
            skus,
        )
    }
    for index, line in enumerate(request.lines):
        if line.sku not in prices:
            raise OrderInvalid(f"lines[{index}].sku", f"{line.sku} is not on sale in {campaign_id}")
    units = sum(line.quantity for line in request.lines)
    amount = sum(line.quantity * prices[line.sku] for line in request.lines)
    currency = campaign["currency"]
    if request.payment.currency != currency:
        raise OrderInvalid("payment.currency", f"the sale is in {currency}")
    if request.payment.amount_minor != amount:
        raise OrderInvalid(
            "payment.amount_minor",
            f"{request.payment.amount_minor} differs from the order's sale price {amount}",
        )
    now = campaign["now"]
    if campaign["state"] not in ("scheduled", "open") or not (
        campaign["opens_at"] <= now < campaign["closes_at"]
    ):
        raise _Refused(Refusal.WINDOW, _window_text(campaign))
    if not employee["eligible"]:
        raise _Refused(Refusal.ELIGIBILITY, employee["ineligible_reason"] or "not eligible")
    if employee["units_taken"] + units > employee["max_units"]:
        raise _Refused(
            Refusal.QUOTA,
            f"{employee['units_taken']} of {employee['max_units']} units already taken "
            f"(grade {employee['grade']}); this order asks {units}",
        )
    if employee["amount_taken_minor"] + amount > employee["max_amount_minor"]:
        raise _Refused(
            Refusal.QUOTA,
            f"{format_amount(employee['amount_taken_minor'], currency)} of "
            f"{format_amount(employee['max_amount_minor'], currency)} already spent "
            f"(grade {employee['grade']}); this order is {format_amount(amount, currency)}",
        )
    quantities = {line.sku: line.quantity for line in request.lines}
    for sku in skus:
        left = await conn.fetchval(
            "UPDATE campaign_stock SET remaining = remaining - $3 "
            "WHERE campaign_id = $1 AND sku = $2 AND remaining >= $3 RETURNING remaining",
            campaign_id,
            sku,
            quantities[sku],
        )
        if left is None:
            remaining = await conn.fetchval(
                "SELECT remaining FROM campaign_stock WHERE campaign_id = $1 AND sku = $2",
                campaign_id,
                sku,
            )
            raise _Refused(
                Refusal.STOCK, f"{sku}: {remaining} left, this order asks {quantities[sku]}"
            )
    await conn.execute(
        "UPDATE campaign_roster SET units_taken = units_taken + $3, "
        "amount_taken_minor = amount_taken_minor + $4 "
        "WHERE campaign_id = $1 AND employee_id = $2",
        campaign_id,
        request.employee_id,
        units,
        amount,
    )
    inserted = await conn.fetchval(
        "INSERT INTO campaign_orders (order_id, campaign_id, employee_id, units, amount_minor, "
        "currency, fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (order_id) DO NOTHING RETURNING true",
        request.order_id,
        campaign_id,
        request.employee_id,
        units,
        amount,
        currency,
        fingerprint,
    )
    if not inserted:  # the same id by another employee at the same moment
        raise _Refused(Refusal.CONFLICT, f"order {request.order_id} was already placed")
    await conn.executemany(
        "INSERT INTO campaign_order_lines (order_id, sku, quantity, unit_price_minor) "
        "VALUES ($1, $2, $3, $4)",
        [(request.order_id, sku, quantities[sku], prices[sku]) for sku in skus],
    )
    return QuotaDecision(
        order_id=request.order_id,
        accepted=True,
        units=units,
        amount_minor=amount,
        currency=currency,
    )


def _window_text(campaign: asyncpg.Record) -> str:
    now = campaign["now"]
    if campaign["state"] in ("draft",):
        return "the sale is not approved yet"
    if campaign["state"] == "cancelled":
        return "the sale was cancelled"
    if now < campaign["opens_at"]:
        return f"the sale opens at {campaign['opens_at'].isoformat()}"
    return f"the sale closed at {campaign['closes_at'].isoformat()}"


async def release_quota(
    pool: asyncpg.Pool, campaign_id: str, order_id: str, release: QuotaRelease
) -> bool:
    """Give back an item of an accepted order (cancelled or returned) when the
    campaign's rule says so; the release id makes a repeat change nothing.
    False when this release was already applied."""
    async with pool.acquire() as conn, conn.transaction():
        order = await conn.fetchrow(
            "SELECT o.employee_id, c.quota_back_on_return FROM campaign_orders o "
            "JOIN campaigns c USING (campaign_id) WHERE o.order_id = $1 AND o.campaign_id = $2",
            order_id,
            campaign_id,
        )
        if order is None:
            raise OrderInvalid("order_id", f"no accepted order {order_id} in {campaign_id}")
        # The employee's lock first, as take_quota does: no deadlock between them.
        await conn.execute(
            "SELECT 1 FROM campaign_roster WHERE campaign_id = $1 AND employee_id = $2 FOR UPDATE",
            campaign_id,
            order["employee_id"],
        )
        line = await conn.fetchrow(
            "SELECT quantity, released, unit_price_minor FROM campaign_order_lines "
            "WHERE order_id = $1 AND sku = $2 FOR UPDATE",
            order_id,
            release.sku,
        )
        if line is None:
            raise OrderInvalid("sku", f"order {order_id} has no {release.sku}")
        inserted = await conn.fetchval(
            "INSERT INTO campaign_quota_releases (release_id, order_id, sku, quantity, reason, "
            "quota_back) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (release_id) DO NOTHING RETURNING true",
            release.release_id,
            order_id,
            release.sku,
            release.quantity,
            release.reason.value,
            order["quota_back_on_return"],
        )
        if not inserted:
            return False
        if line["released"] + release.quantity > line["quantity"]:
            raise OrderInvalid(
                "quantity",
                f"{release.quantity} more of {release.sku} than the order has left "
                f"({line['quantity'] - line['released']})",
            )
        await conn.execute(
            "UPDATE campaign_order_lines SET released = released + $3 "
            "WHERE order_id = $1 AND sku = $2",
            order_id,
            release.sku,
            release.quantity,
        )
        if order["quota_back_on_return"]:
            await conn.execute(
                "UPDATE campaign_roster SET units_taken = units_taken - $3, "
                "amount_taken_minor = amount_taken_minor - $4 "
                "WHERE campaign_id = $1 AND employee_id = $2",
                campaign_id,
                order["employee_id"],
                release.quantity,
                release.quantity * line["unit_price_minor"],
            )
            await conn.execute(
                "UPDATE campaign_stock SET remaining = remaining + $3 "
                "WHERE campaign_id = $1 AND sku = $2",
                campaign_id,
                release.sku,
                release.quantity,
            )
    return True


async def release_cancelled_order(db: Executor, order_id: str) -> list[str]:
    """An accepted employee order that was cancelled (its review declined or
    cancelled it, or its fulfilment was cancelled) gives back every unit not
    given back yet: one release per SKU (reason cancelled) whose id is derived
    from the order, so a repeated write changes nothing; units, amount and
    stock go back when the campaign's rule says so. Runs inside the caller's
    transaction (store/steps.py writes the outcome in the same one). The SKUs
    released now; [] for any other order."""
    order = await db.fetchrow(
        "SELECT o.campaign_id, o.employee_id, c.quota_back_on_return FROM campaign_orders o "
        "JOIN campaigns c USING (campaign_id) WHERE o.order_id = $1",
        order_id,
    )
    if order is None:
        return []
    # The employee's lock first, as take_quota and release_quota take it.
    await db.execute(
        "SELECT 1 FROM campaign_roster WHERE campaign_id = $1 AND employee_id = $2 FOR UPDATE",
        order["campaign_id"],
        order["employee_id"],
    )
    lines = await db.fetch(
        "SELECT sku, quantity - released AS left_over, unit_price_minor FROM campaign_order_lines "
        "WHERE order_id = $1 AND released < quantity ORDER BY sku FOR UPDATE",
        order_id,
    )
    released: list[str] = []
    for line in lines:
        inserted = await db.fetchval(
            "INSERT INTO campaign_quota_releases (release_id, order_id, sku, quantity, reason, "
            "quota_back) VALUES ($1, $2, $3, $4, 'cancelled', $5) "
            "ON CONFLICT (release_id) DO NOTHING RETURNING true",
            cancel_release_id(order_id, line["sku"]),
            order_id,
            line["sku"],
            line["left_over"],
            order["quota_back_on_return"],
        )
        if not inserted:
            continue
        await db.execute(
            "UPDATE campaign_order_lines SET released = quantity WHERE order_id = $1 AND sku = $2",
            order_id,
            line["sku"],
        )
        if order["quota_back_on_return"]:
            await db.execute(
                "UPDATE campaign_roster SET units_taken = units_taken - $3, "
                "amount_taken_minor = amount_taken_minor - $4 "
                "WHERE campaign_id = $1 AND employee_id = $2",
                order["campaign_id"],
                order["employee_id"],
                line["left_over"],
                line["left_over"] * line["unit_price_minor"],
            )
            await db.execute(
                "UPDATE campaign_stock SET remaining = remaining + $3 "
                "WHERE campaign_id = $1 AND sku = $2",
                order["campaign_id"],
                line["sku"],
                line["left_over"],
            )
        released.append(line["sku"])
    return released


async def campaign_of_order(db: Executor, order_id: str) -> str | None:
    """The campaign an accepted employee order was bought in; None for any other order."""
    campaign: str | None = await db.fetchval(
        "SELECT campaign_id FROM campaign_orders WHERE order_id = $1", order_id
    )
    return campaign


async def employee_usage(db: Executor, campaign_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """
        SELECT r.employee_id, r.grade, r.units_taken, r.amount_taken_minor, q.max_units,
               q.max_amount_minor
        FROM campaign_roster r JOIN campaign_quotas q USING (campaign_id, grade)
        WHERE r.campaign_id = $1 ORDER BY r.employee_id
        """,
        campaign_id,
    )
    return [dict(r) for r in rows]


async def sale_lines(
    db: Executor, campaign_id: str, skus: Sequence[str]
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The campaign's currency and the name, category and sale price of `skus`."""
    rows = await db.fetch(
        "SELECT c.currency, s.sku, s.name, s.category, s.sale_price_minor "
        "FROM campaigns c JOIN campaign_stock s USING (campaign_id) "
        "WHERE c.campaign_id = $1 AND s.sku = ANY($2::text[])",
        campaign_id,
        list(skus),
    )
    if not rows:
        raise CampaignNotFound(f"no campaign {campaign_id} selling {', '.join(skus)}")
    return rows[0]["currency"], {r["sku"]: dict(r) for r in rows}


async def stock_levels(db: Executor, campaign_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT sku, name, category, sale_price_minor, allocated, remaining FROM campaign_stock "
        "WHERE campaign_id = $1 ORDER BY sku",
        campaign_id,
    )
    return [dict(r) for r in rows]


# ------------------------------------------------------------------- requests


async def file_request(
    db: asyncpg.Pool,
    *,
    request_id: str,
    campaign_id: str,
    employee_id: str,
    kind: str,
    description: str,
    opened_by: str,
) -> bool:
    """Record a collaborator's request (its description is personal data and
    stays here); False when this request id was already filed."""
    owner = await db.fetchval(
        "SELECT subject_id FROM campaign_roster WHERE campaign_id = $1 AND employee_id = $2",
        campaign_id,
        employee_id,
    )
    if owner is None:
        raise OrderInvalid("employee_id", f"{employee_id} is not on the roster of {campaign_id}")
    async with db.acquire() as conn, conn.transaction():
        inserted = await conn.fetchval(
            "INSERT INTO campaign_requests (request_id, campaign_id, employee_id, kind, "
            "subject_id, opened_by) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (request_id) DO NOTHING RETURNING true",
            request_id,
            campaign_id,
            employee_id,
            kind,
            personal_data.subject_id_for("message", f"campaign-request/{request_id}"),
            opened_by,
        )
        if not inserted:
            filed_in = await conn.fetchval(
                "SELECT campaign_id FROM campaign_requests WHERE request_id = $1", request_id
            )
            if filed_in != campaign_id:
                # Its words are kept with the other campaign's request: this
                # one would be filed with none.
                raise OrderInvalid("request_id", f"{request_id} is a request of another campaign")
        if inserted:
            await personal_data.put_subject(
                conn,
                kind="message",
                fields={"text": description},
                subject_id=personal_data.subject_id_for(
                    "message", f"campaign-request/{request_id}"
                ),
                owner_id=owner,
                refs=[("campaign", campaign_id), ("campaign_request", request_id)],
            )
    return bool(inserted)


async def request_texts(
    db: Executor, campaign_id: str, request_ids: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """Each request's employee id and the collaborator's words, by request id,
    read with the rows in one query (the subject joined); an erased text
    reads personal_data.ERASED_PLACEHOLDER, a request with no row here is
    left out."""
    if not request_ids:
        return {}
    rows = await db.fetch(
        f"""
        SELECT r.request_id, r.employee_id, {personal_data.joined_columns("pd")}
        FROM campaign_requests r
        LEFT JOIN personal_subjects pd ON pd.subject_id = r.subject_id
        WHERE r.campaign_id = $1 AND r.request_id = ANY($2::text[])
        """,
        campaign_id,
        list(request_ids),
    )
    texts: dict[str, tuple[str, str]] = {}
    for row in rows:
        view = personal_data.view_from_joined(row)
        if view is not None:  # written with the row, in its transaction
            texts[row["request_id"]] = (row["employee_id"], view.get("text"))
    return texts


# ------------------------------------------------------------- reconciliation


async def reconciliation_facts(db: Executor, campaign_id: str) -> list[dict[str, Any]]:
    """Per accepted order: units, amounts captured and refunded (the payment
    ledger), parcels shipped (shipments) and units returned (return lines)."""
    rows = await db.fetch(
        """
        SELECT o.order_id, o.employee_id, o.units, o.amount_minor,
          (SELECT coalesce(sum(l.released), 0) FROM campaign_order_lines l
             WHERE l.order_id = o.order_id)::int AS released,
          (SELECT coalesce(sum(p.amount_minor), 0) FROM payment_ledger p
             WHERE p.order_id = o.order_id AND p.kind = 'capture')::bigint AS captured,
          (SELECT coalesce(sum(p.amount_minor), 0) FROM payment_ledger p
             WHERE p.order_id = o.order_id AND p.kind = 'refund')::bigint AS refunded,
          (SELECT count(*) FROM payment_ledger p
             WHERE p.order_id = o.order_id AND p.kind = 'void')::int AS voids,
          (SELECT count(*) FROM shipments s WHERE s.order_id = o.order_id)::int AS shipments,
          (SELECT coalesce(sum(r.quantity), 0) FROM return_lines r
             WHERE r.order_id = o.order_id)::int AS returned
        FROM campaign_orders o WHERE o.campaign_id = $1 ORDER BY o.order_id
        """,
        campaign_id,
    )
    return [dict(r) for r in rows]


def discrepancies(facts: Sequence[dict[str, Any]]) -> list[Discrepancy]:
    """Every order whose money and goods do not agree."""
    found: list[Discrepancy] = []
    for f in facts:
        order = f["order_id"]
        kept = f["amount_minor"] > 0 and f["released"] < f["units"]
        if kept and f["captured"] == 0 and f["voids"] == 0:
            found.append(
                Discrepancy(
                    kind="order_without_capture",
                    order_id=order,
                    detail=f"{f['units']} unit(s), nothing captured",
                )
            )
        if f["captured"] > 0 and f["shipments"] == 0:
            found.append(
                Discrepancy(
                    kind="capture_without_shipment",
                    order_id=order,
                    detail=f"{f['captured']} captured, no parcel shipped",
                )
            )
        if f["captured"] > f["amount_minor"]:
            found.append(
                Discrepancy(
                    kind="capture_above_order",
                    order_id=order,
                    detail=f"{f['captured']} captured for {f['amount_minor']}",
                )
            )
        if f["refunded"] > 0 and f["returned"] == 0 and f["released"] == 0:
            found.append(
                Discrepancy(
                    kind="refund_without_return",
                    order_id=order,
                    detail=f"{f['refunded']} refunded, nothing returned",
                )
            )
        if f["returned"] > 0 and f["refunded"] == 0:
            found.append(
                Discrepancy(
                    kind="return_without_refund",
                    order_id=order,
                    detail=f"{f['returned']} unit(s) returned, nothing refunded",
                )
            )
        if f["refunded"] > f["captured"]:
            found.append(
                Discrepancy(
                    kind="refund_above_capture",
                    order_id=order,
                    detail=f"{f['refunded']} refunded of {f['captured']}",
                )
            )
    return found


def payroll_csv(facts: Sequence[dict[str, Any]], currency: str) -> tuple[str, int]:
    """Per employee: orders, units kept, net amount (captured minus refunded)."""
    per: dict[str, list[int]] = {}
    for f in facts:
        entry = per.setdefault(f["employee_id"], [0, 0, 0])
        entry[0] += 1
        entry[1] += f["units"] - max(f["returned"], f["released"])
        entry[2] += f["captured"] - f["refunded"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["employee_id", "orders", "units_kept", "net_amount_minor", "currency"])
    for employee in sorted(per):
        orders, units, net = per[employee]
        writer.writerow([employee, orders, units, net, currency])
    return out.getvalue(), len(per)


async def record_export(db: Executor, campaign_id: str, text: str, rows: int) -> None:
    await db.execute(
        "INSERT INTO campaign_exports (campaign_id, csv, rows) VALUES ($1, $2, $3) "
        "ON CONFLICT (campaign_id) DO UPDATE SET csv = EXCLUDED.csv, rows = EXCLUDED.rows, "
        "created_at = now()",
        campaign_id,
        text,
        rows,
    )


async def payroll_export(db: Executor, campaign_id: str) -> str | None:
    text: str | None = await db.fetchval(
        "SELECT csv FROM campaign_exports WHERE campaign_id = $1", campaign_id
    )
    return text


# -------------------------------------------------------------------- figures


async def figures(db: Executor, campaign_id: str) -> dict[str, Any]:
    """The campaign's post-mortem figures, from the store as it is now."""
    record = await get_campaign(db, campaign_id)
    totals = await db.fetchrow(
        "SELECT count(*)::int AS orders, coalesce(sum(units), 0)::int AS units, "
        "coalesce(sum(amount_minor), 0)::bigint AS revenue_minor FROM campaign_orders "
        "WHERE campaign_id = $1",
        campaign_id,
    )
    assert totals is not None  # an aggregate always answers one row
    skus = await db.fetch(
        """
        SELECT s.sku, s.category, s.allocated,
               coalesce(sum(l.quantity), 0)::int AS sold,
               coalesce(sum(l.released), 0)::int AS released,
               coalesce(sum(l.quantity * l.unit_price_minor), 0)::bigint AS revenue_minor
        FROM campaign_stock s
        LEFT JOIN campaign_order_lines l ON l.sku = s.sku
            AND l.order_id IN (SELECT order_id FROM campaign_orders WHERE campaign_id = $1)
        WHERE s.campaign_id = $1
        GROUP BY s.sku, s.category, s.allocated ORDER BY s.sku
        """,
        campaign_id,
    )
    by_category: dict[str, dict[str, int]] = {}
    for s in skus:
        c = by_category.setdefault(s["category"], {"allocated": 0, "sold": 0})
        c["allocated"] += s["allocated"]
        c["sold"] += s["sold"] - s["released"]
    participation = await db.fetch(
        """
        SELECT r.legal_entity,
               count(DISTINCT r.employee_id) FILTER (WHERE r.eligible)::int AS eligible,
               count(DISTINCT o.employee_id)::int AS buyers
        FROM campaign_roster r
        LEFT JOIN campaign_orders o ON o.campaign_id = r.campaign_id
            AND o.employee_id = r.employee_id
        WHERE r.campaign_id = $1 GROUP BY r.legal_entity ORDER BY r.legal_entity
        """,
        campaign_id,
    )
    hours = await db.fetch(
        "SELECT floor(extract(epoch FROM accepted_at - $2) / 3600)::int AS hour, "
        "count(*)::int AS orders FROM campaign_orders WHERE campaign_id = $1 "
        "GROUP BY 1 ORDER BY 1",
        campaign_id,
        record.opens_at,
    )
    returns = await db.fetch(
        "SELECT q.reason, sum(q.quantity)::int AS units FROM campaign_quota_releases q "
        "JOIN campaign_orders o USING (order_id) WHERE o.campaign_id = $1 GROUP BY q.reason "
        "ORDER BY q.reason",
        campaign_id,
    )
    units = totals["units"]
    # Returns only: a cancelled order's units were never kept (they count in
    # returns_by_reason as `cancelled` and leave the sell-through).
    returned = sum(r["units"] for r in returns if r["reason"] == "returned")
    return {
        "campaign_id": campaign_id,
        "name": record.parameters.name,
        "opens_at": record.opens_at.isoformat(),
        "closes_at": record.closes_at.isoformat(),
        "currency": record.parameters.currency,
        "orders": totals["orders"],
        "units": units,
        "revenue_minor": int(totals["revenue_minor"]),
        "return_rate": round(returned / units, 4) if units else 0.0,
        # Units kept (sold less given back) over units allocated: a returned
        # unit sold again counts once.
        "sell_through_by_sku": {
            s["sku"]: round((s["sold"] - s["released"]) / s["allocated"], 4)
            if s["allocated"]
            else 0.0
            for s in skus
        },
        "sell_through_by_category": {
            c: round(v["sold"] / v["allocated"], 4) if v["allocated"] else 0.0
            for c, v in sorted(by_category.items())
        },
        "top_skus": [
            {"sku": s["sku"], "units": s["sold"], "revenue_minor": int(s["revenue_minor"])}
            for s in sorted(skus, key=lambda s: (-s["sold"], s["sku"]))[:10]
            if s["sold"]
        ],
        "participation_by_entity": {
            p["legal_entity"]: round(p["buyers"] / p["eligible"], 4) if p["eligible"] else 0.0
            for p in participation
        },
        "orders_per_hour": {str(h["hour"]): h["orders"] for h in hours},
        "returns_by_reason": {r["reason"]: r["units"] for r in returns},
    }


async def record_figures(db: Executor, campaign_id: str, closed_at: datetime) -> dict[str, Any]:
    values = await figures(db, campaign_id)
    await db.execute(
        "INSERT INTO campaign_figures (campaign_id, closed_at, figures) VALUES ($1, $2, $3) "
        "ON CONFLICT (campaign_id) DO UPDATE SET figures = EXCLUDED.figures, "
        "recorded_at = now()",
        campaign_id,
        closed_at,
        values,
    )
    return values


async def previous_figures(db: Executor, campaign_id: str, limit: int = 5) -> list[dict[str, Any]]:
    """The figures of the campaigns reconciled before this one, latest first."""
    rows = await db.fetch(
        """
        SELECT f.figures FROM campaign_figures f
        WHERE f.campaign_id <> $1 AND f.closed_at < (
            SELECT closes_at FROM campaigns WHERE campaign_id = $1)
        ORDER BY f.closed_at DESC LIMIT $2
        """,
        campaign_id,
        limit,
    )
    return [r["figures"] for r in rows]


# ------------------------------------------------------ the simulated world


async def sim_available(db: Executor, skus: Sequence[str]) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT sku, available FROM sim_stock WHERE sku = ANY($1::text[])", list(skus)
    )
    return {r["sku"]: r["available"] for r in rows}


async def sim_catalogue(db: Executor, skus: Sequence[str]) -> dict[str, CatalogueEntry]:
    rows = await db.fetch(
        "SELECT sku, description, visuals, category FROM sim_catalogue WHERE sku = ANY($1::text[])",
        list(skus),
    )
    return {r["sku"]: CatalogueEntry(**dict(r)) for r in rows}


async def seed_sim_catalogue(db: Executor, entries: Sequence[CatalogueEntry]) -> None:
    await db.executemany(
        "INSERT INTO sim_catalogue (sku, description, visuals, category) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (sku) DO UPDATE SET description = EXCLUDED.description, "
        "visuals = EXCLUDED.visuals, category = EXCLUDED.category",
        [(e.sku, e.description, e.visuals, e.category) for e in entries],
    )


async def seed_sim_stock(db: Executor, stock: dict[str, int]) -> None:
    await db.executemany(
        "INSERT INTO sim_stock (sku, available) VALUES ($1, $2) "
        "ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available",
        list(stock.items()),
    )


async def seed_sim_world_if_missing(
    db: Executor, entries: Sequence[CatalogueEntry], stock: dict[str, int]
) -> list[str]:
    """The simulated catalogue and stock of `entries` where the simulated world
    does not know the SKU yet: what a user or a test set stays as it is.
    The SKUs newly seeded, in order."""
    catalogued = await db.fetch(
        "INSERT INTO sim_catalogue (sku, description, visuals, category) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[]) "
        "ON CONFLICT (sku) DO NOTHING RETURNING sku",
        [e.sku for e in entries],
        [e.description for e in entries],
        [e.visuals for e in entries],
        [e.category for e in entries],
    )
    stocked = await db.fetch(
        "INSERT INTO sim_stock (sku, available) "
        "SELECT * FROM unnest($1::text[], $2::int[]) "
        "ON CONFLICT (sku) DO NOTHING RETURNING sku",
        list(stock),
        list(stock.values()),
    )
    return sorted({r["sku"] for r in catalogued} | {r["sku"] for r in stocked})
