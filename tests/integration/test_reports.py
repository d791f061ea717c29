"""The reports' SQL over a real PostgreSQL (issue 19): seeded rows in the
shape the workflows write, the expected figures worked out in the test from
the seed itself; market, channel and time-zone edges of the period; an empty
period; and a whole run (files on disk, the run row, one message per
recipient however often the activity is retried)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from activities.reports import ReportActivities
from bench.report_data import Seeder
from domain.reports import CATALOGUE
from domain.reports.model import ReportContent, ReportParams
from domain.reports.runs import Cadence, RunReportInput, RunStatus
from store import reports as report_store

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
T1 = T0 + timedelta(days=7)
PARIS = ZoneInfo("Europe/Paris")

# order, market, channel, created (hours after T0), routing, final status,
# decision (decision, reason_code, coordinator, hours after the task opened)
REVIEWS = [
    ("A1", "FR", "web", 1, "auto_accept", "released", None),
    ("A2", "FR", "app", 2, "auto_accept", "released", None),
    ("A3", "GB", "web", 3, "auto_decline", "cancelled", None),
    ("A4", "FR", "web", 4, "review", "released", ("approve", "verified_customer", "alice", 2)),
    ("A5", "GB", "web", 5, "review", "cancelled", ("decline", "stolen_card", "bob", 5)),
    ("A6", "FR", "app", 6, "review", "cancelled", ("decline", "policy_default", "steward", 48)),
    ("A7", "FR", "web", 7, "review", "released", ("approve", "customer_confirmed", "alice", 9)),
    # Last day of the period in UTC, but the next day in Paris (00:30 local).
    ("A8", "FR", "web", 7 * 24 - 0.5, "auto_accept", "released", None),
    # Before the period in UTC, inside it in Paris (23:30 UTC = 00:30 local).
    ("A0", "FR", "web", -0.5, "auto_accept", "released", None),
]


def _seed_reviews(seeder: Seeder) -> None:
    for order, market, channel, hours, routing, status, decision in REVIEWS:
        at = T0 + timedelta(hours=hours)
        wf = seeder.case("order-review", order, status, at, market=market)
        seeder.step(wf, "review_started", at, reason=f"channel {channel}")
        seeder.step(
            wf,
            "scored",
            at,
            reason="velocity_email" if order == "A5" else "no risk signal",
            after={"routing": routing},
        )
        if decision is not None:
            what, code, who, after_h = decision
            opened = at + timedelta(minutes=1)
            decided = opened + timedelta(hours=after_h)
            seeder.task(
                wf,
                "order_review",
                "coordinator",
                opened,
                opened + timedelta(hours=4),
                closed_at=decided,
                closed_by=who,
            )
            role = "system" if who == "steward" else "coordinator"
            seeder.step(
                wf,
                f"decision_{what}",
                decided,
                actor=who,
                role=role,
                after={"decision": what, "reason_code": code},
            )
        if status == "cancelled":
            seeder.step(
                wf,
                "status_changed",
                at + timedelta(hours=60),
                reason="cancelled",
                after={"status": "cancelled"},
            )


def _seed_others(seeder: Seeder) -> None:
    # Disputes: A5's fraud chargeback lost inside the period, one won, one open.
    lost = seeder.dispute(
        "dp_1",
        "A5",
        "fraud",
        "lost",
        T0 + timedelta(days=1),
        amount_minor=80_000,
        due_by=T0 + timedelta(days=5),
        closed_at=T0 + timedelta(days=6),
    )
    seeder.step(
        lost, "evidence_assembled", T0 + timedelta(days=1), reason="missing: cctv", order_id="A5"
    )
    seeder.step(
        lost, "dispute_contest_submitted", T0 + timedelta(days=4, hours=20), order_id="A5"
    )  # 4 h before the deadline: inside the 12 h buffer
    won = seeder.dispute(
        "dp_2",
        "A4",
        "not_received",
        "won",
        T0 + timedelta(days=1),
        amount_minor=20_000,
        due_by=T0 + timedelta(days=5),
        closed_at=T0 + timedelta(days=6),
    )
    seeder.step(won, "evidence_assembled", T0 + timedelta(days=1), reason="complete", order_id="A4")
    seeder.step(won, "dispute_contest_submitted", T0 + timedelta(days=2), order_id="A4")
    seeder.dispute("dp_3", "A7", "general", "open", T0 + timedelta(days=2))
    # The released orders' lines as fulfilment keeps them (A3 was cancelled).
    for order, items in (
        ("A1", [("SKU-1", "shoes", 1), ("SKU-2", "handbags", 1)]),
        ("A2", [("SKU-1", "shoes", 2), ("SKU-2", "handbags", 1)]),
        ("A3", [("SKU-2", "handbags", 5)]),
        ("A4", [("SKU-3", "ready_to_wear", 1)]),
        ("A7", [("SKU-2", "handbags", 1)]),
        ("A8", [("SKU-1", "shoes", 1)]),
    ):
        seeder.released_order(order, items)
    # Returns: two FR (one refunded after 30 h, frozen first), one GB exchange.
    for rma, order, market, reason, wants, refund_h, lines in (
        ("R1", "A1", "FR", "too_small", "refund", 30, {"SKU-1": 1}),
        ("R2", "A2", "FR", "defective", "refund", None, {"SKU-1": 1, "SKU-2": 1}),
        ("R3", "A4", "GB", "too_large", "exchange", None, {"SKU-3": 1}),
    ):
        at = T0 + timedelta(days=2)
        wf = seeder.case("return", rma, "refunded" if refund_h else "in_transit", at, market=market)
        seeder.step(
            wf,
            "return_requested",
            at,
            reason=f"{reason} (fit), wants {wants}",
            after={"order_id": order, "lines": lines},
            order_id=order,
        )
        if refund_h:
            seeder.step(
                wf,
                "qc_result_received",
                at + timedelta(hours=20),
                after={"grade": "first_choice"},
                order_id=order,
            )
            seeder.step(wf, "refund_frozen", at + timedelta(hours=21), order_id=order)
            seeder.step(wf, "refund_issued", at + timedelta(hours=refund_h), order_id=order)
    # A failed delivery that failed twice, and a claim filed in time and paid.
    fd = seeder.case("failed-delivery", "S1", "closed", T0 + timedelta(days=3))
    seeder.step(fd, "second_failure", T0 + timedelta(days=4), order_id="A1")
    claim = seeder.case(
        "carrier-claim",
        "ups:1Z1",
        "approved",
        T0 + timedelta(days=3),
        workflow_id="carrier-claim:ups:1Z1",
    )
    seeder.step(
        claim,
        "claim_filed",
        T0 + timedelta(days=4),
        order_id="A2",
        after={"filing_deadline": (T0 + timedelta(days=20)).isoformat()},
    )
    seeder.claim_outcome(claim, "A2", "approved", 45_000)


@pytest.fixture
async def seeded(clean_db: asyncpg.Pool) -> asyncpg.Pool:
    seeder = Seeder()
    _seed_reviews(seeder)
    _seed_others(seeder)
    await seeder.write(clean_db)
    return clean_db


async def _run(pool: asyncpg.Pool, name: str, params: ReportParams) -> ReportContent:
    context = report_store.FetchContext(now=T1 + timedelta(days=30))
    data = await report_store.FETCHERS[name](pool, params, context)
    return CATALOGUE[name].compute(data, params)


def _expected_routing(rows: list[tuple[object, ...]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row[4])] = counts.get(str(row[4]), 0) + 1
    return counts


async def test_fraud_report_over_the_store_with_market_channel_and_time_zone(
    seeded: asyncpg.Pool,
) -> None:
    utc = ReportParams(period_from=T0, period_to=T1)
    content = await _run(seeded, "fraud", utc)
    in_utc = [r for r in REVIEWS if 0 <= r[3] < 7 * 24]
    routing = {str(row[0]): row[1] for row in content.table("routing").rows}
    assert routing == {k: _expected_routing(list(in_utc)).get(k, 0) for k in routing}
    assert content.headline["orders_scored"] == len(in_utc) == 8

    # The same week cut in Paris: A0 comes in, A8 goes out.
    paris = ReportParams(
        period_from=datetime(2026, 11, 2, tzinfo=PARIS),
        period_to=datetime(2026, 11, 9, tzinfo=PARIS),
        timezone="Europe/Paris",
    )
    in_paris = [r for r in REVIEWS if -1 <= r[3] < 7 * 24 - 1]
    content_paris = await _run(seeded, "fraud", paris)
    assert content_paris.headline["orders_scored"] == len(in_paris) == 8
    assert {r[0] for r in in_paris} ^ {r[0] for r in in_utc} == {"A0", "A8"}

    # One market, one channel.
    gb = await _run(seeded, "fraud", utc.model_copy(update={"market": "GB"}))
    assert gb.headline["orders_scored"] == sum(1 for r in in_utc if r[1] == "GB") == 2
    app = await _run(seeded, "fraud", utc.model_copy(update={"channel": "app"}))
    assert app.headline["orders_scored"] == sum(1 for r in in_utc if r[2] == "app") == 2

    causes = {row[0]: row[1] for row in content.table("cancellations_by_cause").rows}
    # A3 auto-declined and A5 declined by bob: fraud; A6 by the default.
    assert causes == {"fraud_decline": 2, "default_at_deadline": 1}
    # Review time of the people's decisions, in business hours of the market
    # (Monday 2 November 2026, desks open 09:00-18:00 local, Paris UTC+1,
    # London UTC+0): A4 opened 05:01 Paris, decided 07:01, before opening: 0;
    # A5 opened 05:01 London, decided 10:01: 61 minutes; A7 opened 08:01
    # Paris, decided 17:01: 09:00 to 17:01, 8 h 01.
    hours = sorted([0.0, 61 / 60, 8 + 1 / 60])
    p95 = hours[1] + 0.9 * (hours[2] - hours[1])
    assert content.table("review_time").rows == [[3, round(hours[1], 2), round(p95, 2)]]
    assert content.table("fraud_losses").rows == [["EUR", 1, 80_000]]
    assert content.table("rule_hits_before_losses").rows == [["velocity_email", 1]]
    coordinators = content.table("manual_decisions_by_coordinator").rows
    assert coordinators == [["alice", "approve", 2], ["bob", "decline", 1]]


async def test_the_other_reports_over_the_store(seeded: asyncpg.Pool) -> None:
    params = ReportParams(period_from=T0, period_to=T1)
    disputes = await _run(seeded, "disputes", params)
    assert disputes.headline["opened"] == 3
    assert disputes.headline["win_rate"] == 0.5  # one won, one lost
    assert disputes.table("amounts").rows == [["EUR", 110_000, 20_000, 80_000]]
    # dp_1 answered 4 h before its deadline (buffer 12 h), dp_2 3 days before.
    assert disputes.table("deadline_compliance").rows == [[2, 2, 1, 0.5, 0]]
    assert disputes.table("win_rate_by_evidence").rows == [
        ["complete", 1, 1, 0, 1.0],
        ["incomplete", 1, 0, 1, 0.0],
        ["not_assembled", 1, 0, 0, None],
    ]

    returns = await _run(seeded, "returns", params)
    # Orders released in the week: A1, A2, A4, A7, A8 in FR; none in GB.
    assert returns.table("return_rate_by_market").rows == [
        ["FR", 5, 2, 0.4],
        ["GB", 0, 1, None],
    ]
    assert returns.table("refunds").rows == [[1, 30.0, 30.0, 1]]
    # Units released in the week (A1, A2, A4, A7, A8; A3 was cancelled), all FR:
    # SKU-1 shoes 1 + 2 + 1, SKU-2 handbags 1 + 1 + 1, SKU-3 ready-to-wear 1.
    # Returned: SKU-1 by R1 and R2, SKU-2 by R2 (FR); SKU-3 by R3 (GB).
    assert returns.table("by_category").rows == [
        ["FR", "handbags", 3, 1, 1, round(1 / 3, 4), "defective"],
        ["FR", "ready_to_wear", 1, 0, 0, 0.0, None],
        ["FR", "shoes", 4, 2, 2, 0.5, "defective"],  # a tie: the first reason by name
        ["GB", "ready_to_wear", 0, 1, 1, None, "too_large"],
    ]
    assert returns.table("by_sku").rows == [
        ["SKU-1", "shoes", 4, 2, 2, 0.5, "defective"],
        ["SKU-2", "handbags", 3, 1, 1, round(1 / 3, 4), "defective"],
        ["SKU-3", "ready_to_wear", 1, 1, 1, 1.0, "too_large"],
    ]
    assert returns.table("reasons_by_category").rows == [
        ["handbags", "defective", 1, 1.0],
        ["ready_to_wear", "too_large", 1, 1.0],
        ["shoes", "defective", 1, 0.5],
        ["shoes", "too_small", 1, 0.5],
    ]
    fr_only = await _run(seeded, "returns", ReportParams(period_from=T0, period_to=T1, market="FR"))
    assert [row[:2] for row in fr_only.table("by_category").rows] == [
        ["FR", "handbags"],
        ["FR", "ready_to_wear"],
        ["FR", "shoes"],
    ]
    assert returns.headline["exchange_share"] == round(1 / 3, 4)

    levels = await _run(seeded, "service_levels", params)
    review = levels.table("by_process_kind").row_by(process="order-review", kind="order_review")
    # Four review tasks due 4 h after opening: decided after 2, 5, 48 and 9 h.
    assert review is not None and review[2:6] == [4, 1, 3, 0]
    assert levels.table("by_coordinator").column("closed_by") == ["alice", "bob", "steward"]

    deliveries = await _run(seeded, "deliveries", params)
    assert deliveries.table("second_failures").rows == [[1, 1, 1.0]]
    ups = deliveries.table("claims_by_carrier").row_by(carrier="ups")
    columns = deliveries.table("claims_by_carrier").columns
    assert ups is not None
    assert dict(zip(columns, ups, strict=True))["filed_before_deadline"] == 1
    assert deliveries.table("claims_recovery").rows == [["EUR", 45_000]]


async def test_an_empty_period_gives_empty_tables_not_errors(seeded: asyncpg.Pool) -> None:
    params = ReportParams(period_from=T0 - timedelta(days=60), period_to=T0 - timedelta(days=30))
    for name in CATALOGUE:
        content = await _run(seeded, name, params)
        assert all(v in (0, None) for v in content.headline.values()), name


class RecordingNotifier:
    name = "recording"

    def __init__(self) -> None:
        self.sent: dict[str, str] = {}

    async def send(
        self, *, message_id: str, order_id: str, recipient_email: str, template: str, locale: str
    ) -> bool:
        self.sent.setdefault(message_id, recipient_email)
        return True


async def test_a_run_writes_its_files_records_the_run_and_tells_the_list_once(
    seeded: asyncpg.Pool, tmp_path: Path
) -> None:
    notifier = RecordingNotifier()
    activities = ReportActivities(
        seeded, tmp_path, notifier, ["ops-reports@example.com", "cfo@example.com"]
    )
    run = RunReportInput(
        run_id="run-0001",
        workflow_id="report-run:fraud:test",
        report="fraud",
        cadence=Cadence.WEEKLY,
        params=ReportParams(period_from=T0, period_to=T1),
    )
    first = await activities.run_report(run)
    again = await activities.run_report(run)  # a retried attempt
    assert first.status is RunStatus.SUCCEEDED and first.distributed_to == 2
    assert [f.name for f in again.files] == [f.name for f in first.files]
    assert len(notifier.sent) == 2  # one message per recipient, not four

    rows = await report_store.list_runs(seeded, report="fraud")
    assert len(rows) == 1
    assert rows[0].status is RunStatus.SUCCEEDED and rows[0].attempts == 2
    assert rows[0].headline["orders_scored"] == 8

    page = (tmp_path / "run-0001" / "report.html").read_text()
    assert "<h1>Fraud and cancellations" in page and "<table>" in page
    for chart in (f for f in first.files if f.name.endswith(".png")):
        data = (tmp_path / "run-0001" / chart.name).read_bytes()
        assert struct.unpack(">II", data[16:24]) == (800, 400)
        assert chart.bytes == len(data) > 5_000
    csv_text = (tmp_path / "run-0001" / "routing.csv").read_text()
    assert csv_text.splitlines()[0] == "routing,orders,rate"


async def test_ops_desk_report_reads_the_register(seeded: asyncpg.Pool) -> None:
    rows = [
        # request, type, market, site, order, opened (h after T0), resolved (h), sla_met
        ("OPS-1", "address_change", "GB", "LON1", "A5", 10, 12, True),
        ("OPS-2", "cctv_retrieval", "FR", "PAR1", "A4", 20, None, None),
        ("OPS-3", "address_change", "FR", "PAR1", "A1", 7 * 24 + 1, None, None),  # next week
    ]
    for request, kind, market, site, order, opened_h, resolved_h, met in rows:
        opened = T0 + timedelta(hours=opened_h)
        await seeded.execute(
            """INSERT INTO ops_requests (request_id, workflow_id, type, priority, priority_rank,
                   status, requester, channel, market, site_id, order_id, opened_at,
                   first_response_at, resolved_at, business_seconds_to_resolve, sla_met,
                   root_cause, updated_at)
               VALUES ($1, 'ops-request:' || $1, $2, 'normal', 100, $3, 'cs-agent', 'slack',
                       $4, $5, $6, $7, $8, $9, $10, $11, $12, $7)""",
            request,
            kind,
            "resolved" if resolved_h else "open",
            market,
            site,
            order,
            opened,
            opened + timedelta(minutes=30),
            T0 + timedelta(hours=resolved_h) if resolved_h else None,
            7200 if resolved_h else None,
            met,
            "address_typo" if resolved_h else None,
        )
    params = ReportParams(period_from=T0, period_to=T1)
    content = await _run(seeded, "ops_desk", params)
    assert content.table("by_type").column("type") == ["address_change", "cctv_retrieval"]
    assert content.headline["requests"] == 2 and content.headline["sla_met"] == 1
    assert content.table("root_causes").rows == [["address_typo", 1]]
    fr = await _run(seeded, "ops_desk", params.model_copy(update={"market": "FR"}))
    assert fr.table("by_type").column("type") == ["cctv_retrieval"]
    # A5's channel is web, A4's too; A2 (app) has no request.
    app = await _run(seeded, "ops_desk", params.model_copy(update={"channel": "app"}))
    assert app.headline["requests"] == 0


async def test_fulfilment_report_reads_holds_qc_changes_and_warehouse_times(
    seeded: asyncpg.Pool,
) -> None:
    seeder = Seeder()
    f1 = seeder.case("fulfilment", "A1", "handed_to_carrier", T0 + timedelta(hours=2))
    seeder.step(
        f1,
        "hold_placed",
        T0 + timedelta(hours=3),
        after={"handle": "qc-1", "reason": "outbound_qc"},
    )
    seeder.step(f1, "qc_fail", T0 + timedelta(hours=4))
    seeder.step(f1, "qc_pass", T0 + timedelta(hours=5))
    seeder.step(
        f1,
        "hold_released",
        T0 + timedelta(hours=5),
        after={"handle": "qc-1", "reason": "outbound_qc"},
    )
    seeder.step(f1, "address_changed", T0 + timedelta(hours=2.5), after={"outcome": "applied"})
    seeder.step(f1, "qc_reminder_sent", T0 + timedelta(hours=4))  # not a decision
    f2 = seeder.case("fulfilment", "A3", "released", T0 + timedelta(hours=3), market="GB")
    seeder.step(
        f2, "hold_placed", T0 + timedelta(hours=3), after={"handle": "fraud-1", "reason": "fraud"}
    )
    seeder.step(f2, "pick_refused", T0 + timedelta(hours=6))
    await seeder.write(seeded)
    for n, (kind, hours) in enumerate(
        (("allocated", 2), ("picking_started", 6), ("packing_started", 7), ("packed", 8),
         ("handed_to_carrier", 20))
    ):  # fmt: skip
        await seeded.execute(
            "INSERT INTO warehouse_events (event_id, order_id, kind, occurred_at, routed) "
            "VALUES ($1, 'A1', $2, $3, true)",
            f"wms-{n}",
            kind,
            T0 + timedelta(hours=hours),
        )
    params = ReportParams(period_from=T0, period_to=T1)
    content = await _run(seeded, "fulfilment", params)
    assert content.table("by_status").column("status") == ["handed_to_carrier", "released"]
    assert content.table("holds_by_reason").rows == [
        # A3's fraud hold is still active: held from 03:00 to the end of the week.
        ["fraud", 1, 1, 0, 1, 7 * 24 - 3.0, 7 * 24 - 3.0],
        ["outbound_qc", 1, 1, 1, 0, 2.0, 2.0],
    ]
    assert content.table("outbound_qc").rows == [["fail", 1, 0.5], ["pass", 1, 0.5]]
    assert content.table("address_changes").rows == [["applied", 1, 1.0]]
    assert content.table("time_in_state").rows == [
        ["allocated", 1, 4.0, 4.0, 4.0],
        ["picking", 1, 1.0, 1.0, 1.0],
        ["packing", 1, 1.0, 1.0, 1.0],
        ["packed", 1, 12.0, 12.0, 12.0],
    ]
    assert content.headline["pick_refusals"] == 1
    gb = await _run(seeded, "fulfilment", params.model_copy(update={"market": "GB"}))
    assert gb.headline["fulfilments"] == 1 and gb.table("outbound_qc").rows == []
    # A1 was ordered on the web, A3 too; no fulfilment of an app order.
    app = await _run(seeded, "fulfilment", params.model_copy(update={"channel": "app"}))
    assert app.headline["fulfilments"] == 0


async def test_employee_sales_report_reads_the_campaign_tables(seeded: asyncpg.Pool) -> None:
    await seeded.execute(
        """INSERT INTO campaigns (campaign_id, workflow_id, name, state, timezone, opens_at,
               closes_at, legal_entities, currency, quota_back_on_return, parameters,
               prepared_by)
           VALUES ('C1', 'campaign:C1', 'Winter sale', 'closed', 'Europe/Paris', $1, $2,
                   ARRAY['Maison SA'], 'EUR', true, '{}'::jsonb, 'alice'),
                  ('C2', 'campaign:C2', 'Last year', 'closed', 'Europe/Paris', $3, $4,
                   ARRAY['Maison SA'], 'EUR', true, '{}'::jsonb, 'alice')""",
        T0 + timedelta(days=1),
        T0 + timedelta(days=3),
        T0 - timedelta(days=300),
        T0 - timedelta(days=290),
    )
    await seeded.executemany(
        "INSERT INTO campaign_stock VALUES ('C1', $1, $1, $2, 1000, $3, $4)",
        [("HB-1", "handbags", 10, 4), ("SH-1", "shoes", 5, 4)],
    )
    roster = [("E1", "FR", True), ("E2", "FR", True), ("E3", "GB", True), ("E4", "FR", False)]
    await seeded.executemany(
        """INSERT INTO campaign_roster (campaign_id, employee_id, line_number, legal_entity,
               country, grade, start_date, eligible, subject_id, email_fingerprint)
           VALUES ('C1', $1, $2, 'Maison SA', $3, 'staff', '2020-01-01', $4, 'subj_' || $1,
                   'fp_' || $1)""",
        [(e, n, country, eligible) for n, (e, country, eligible) in enumerate(roster)],
    )
    orders = [
        # order, employee, accepted (days after T0), lines (sku, quantity)
        ("O1", "E1", 1.5, [("HB-1", 2), ("SH-1", 1)]),
        ("O2", "E3", 2.0, [("HB-1", 3)]),
        ("O3", "E1", 8.0, [("HB-1", 1)]),  # next week: out of the period
    ]
    for order, employee, days, lines in orders:
        await seeded.execute(
            "INSERT INTO campaign_orders VALUES ($1, 'C1', $2, $3, $4, 'EUR', $5, 'fp')",
            order,
            employee,
            sum(q for _s, q in lines),
            1000 * sum(q for _s, q in lines),
            T0 + timedelta(days=days),
        )
        await seeded.executemany(
            "INSERT INTO campaign_order_lines (order_id, sku, quantity, unit_price_minor) "
            "VALUES ($1, $2, $3, 1000)",
            [(order, sku, q) for sku, q in lines],
        )
    await seeded.execute(
        "INSERT INTO campaign_quota_releases VALUES ('R1', 'O2', 'HB-1', 1, 'returned', true)"
    )
    params = ReportParams(period_from=T0, period_to=T1)
    content = await _run(seeded, "employee_sales", params)
    # C2's window is a year before: not in the week. O1 and O2: 6 units, 1 returned.
    assert content.table("by_campaign").rows == [
        ["C1", "Winter sale", "closed", 2, 15, 6, 1, round(1 / 6, 4), round(5 / 15, 4),
         3, 2, round(2 / 3, 4), 6000, "EUR"],
    ]  # fmt: skip
    assert content.table("by_category").rows == [
        ["handbags", 10, 5, 1, 0.2, 0.4],
        ["shoes", 5, 1, 0, 0.0, 0.2],
    ]
    fr = await _run(seeded, "employee_sales", params.model_copy(update={"market": "FR"}))
    # E1 only (FR): 3 units; eligible FR employees: E1 and E2.
    assert fr.table("by_campaign").rows[0][3:12] == [1, 15, 3, 0, 0.0, 0.2, 2, 1, 0.5]
    web = await _run(seeded, "employee_sales", params.model_copy(update={"channel": "web"}))
    assert web.tables[0].rows == []
