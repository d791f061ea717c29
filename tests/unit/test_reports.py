"""The report catalogue's pure computations (domain/reports/), on seeded rows
whose expected figures each test works out by hand or with numpy, never by
calling the report code; plus the periods a schedule covers and the files a
run writes (CSV, PNG, HTML)."""

from __future__ import annotations

import csv
import io
import random
import struct
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy
import pytest
from pydantic import ValidationError

from activities.report_render import render_csv, render_png
from activities.reports import render_files
from domain.reports import (
    CATALOGUE,
    deliveries,
    disputes,
    employee_sales,
    fraud,
    fulfilment,
    ops_desk,
    returns,
    service_levels,
)
from domain.reports.model import ReportChart, ReportParams, ReportTable
from domain.reports.runs import Cadence, ReportRunInput, period_for
from domain.reports.stats import percentile
from store.reports import FETCHERS

T0 = datetime(2026, 11, 2, tzinfo=UTC)
WEEK = ReportParams(period_from=T0, period_to=T0 + timedelta(days=7))


def test_every_report_has_a_fetcher_of_the_same_name() -> None:
    assert set(CATALOGUE) == set(FETCHERS)
    assert set(CATALOGUE) == {
        "fraud",
        "disputes",
        "service_levels",
        "returns",
        "deliveries",
        "ops_desk",
        "fulfilment",
        "employee_sales",
    }


@pytest.mark.parametrize("q", [0, 5, 50, 90, 95, 100])
def test_percentile_matches_numpy(q: float) -> None:
    rng = random.Random(q)
    values = [rng.uniform(0, 100) for _ in range(37)]
    assert percentile(values, q) == pytest.approx(float(numpy.percentile(values, q)))
    assert percentile([], q) is None


def test_params_refuse_naive_reversed_and_endless_periods() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        ReportParams(period_from=datetime(2026, 11, 1), period_to=T0)
    with pytest.raises(ValidationError, match="after period_from"):
        ReportParams(period_from=T0, period_to=T0)
    with pytest.raises(ValidationError, match="at most"):
        ReportParams(period_from=T0, period_to=T0 + timedelta(days=401))
    with pytest.raises(ValidationError, match="manual run names its period"):
        ReportRunInput(report="fraud")
    with pytest.raises(ValidationError, match="unknown time zone"):
        ReportRunInput(report="fraud", cadence=Cadence.DAILY, timezone="Mars/Olympus")


def test_scheduled_periods_are_the_complete_local_day_and_week_before() -> None:
    # 06:00 in Paris on Wednesday 2 December 2026 is 05:00 UTC.
    now = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    paris = ZoneInfo("Europe/Paris")
    start, end = period_for(Cadence.DAILY, now, "Europe/Paris")
    assert (start, end) == (
        datetime(2026, 12, 1, tzinfo=paris),
        datetime(2026, 12, 2, tzinfo=paris),
    )
    assert end.astimezone(UTC) == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    start, end = period_for(Cadence.WEEKLY, now, "UTC")
    assert (start, end) == (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    # Over the autumn clock change the local day is 25 hours long.
    start, end = period_for(Cadence.DAILY, datetime(2026, 10, 26, 5, tzinfo=UTC), "Europe/Paris")
    # (Python subtracts same-zone datetimes on the wall clock: compare instants.)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)


# ------------------------------------------------------------------- fraud


def _decision(decision: str, code: str, actor: str, at: datetime) -> fraud.Decision:
    role = "system" if actor == "steward" else "coordinator"
    return fraud.Decision(decision=decision, reason_code=code, actor=actor, role=role, at=at)


def _review(n: int, **kw: object) -> fraud.ReviewRow:
    base: dict[str, object] = {
        "order_id": f"O{n}",
        "market": "FR",
        "channel": "web",
        "created_at": T0 + timedelta(hours=n),
        "status": "released",
        "routing": "auto_accept",
    }
    base.update(kw)
    return fraud.ReviewRow(**base)  # type: ignore[arg-type]


def test_fraud_report_on_a_seeded_week() -> None:
    # Tuesday 10:00 in Paris: the reviews below fall inside the FR desk's hours
    # (09:00-18:00), so their business time is their elapsed time.
    t = T0 + timedelta(days=1, hours=9)
    reviews = [
        _review(1),
        _review(2),
        _review(3),
        _review(4, routing="auto_decline", status="cancelled", reason_codes=("blocklist_card",)),
        # Reviewed: approved after 2 h by alice.
        _review(
            5,
            routing="review",
            review_opened_at=t,
            decisions=(_decision("approve", "verified_customer", "alice", t + timedelta(hours=2)),),
        ),
        # Asked the customer, then declined after 6 h by bob: fraud decline.
        _review(
            6,
            routing="review",
            status="cancelled",
            review_opened_at=t,
            decisions=(
                _decision("ask_customer", "identity_check_needed", "bob", t + timedelta(hours=1)),
                _decision("decline", "suspected_fraud", "bob", t + timedelta(hours=6)),
            ),
        ),
        # Nobody decided: the default declined at the deadline.
        _review(
            7,
            routing="review",
            status="cancelled",
            review_opened_at=t,
            decisions=(_decision("decline", "policy_default", "steward", t + timedelta(hours=48)),),
        ),
        # Cancelled upstream by the customer while in review.
        _review(8, routing="review", status="cancelled", cancel_requested=True),
        # Cancelled upstream after an early fraud warning.
        _review(9, status="cancelled", cancel_requested=True, early_fraud_warning=True),
        # Not scored yet.
        _review(10, routing=None, status="received"),
    ]
    losses = [
        fraud.FraudLoss("dp_1", "O1", 120_000, "EUR", ("velocity_email", "high_value")),
        fraud.FraudLoss("dp_2", "O2", 30_000, "EUR", ("velocity_email",)),
        fraud.FraudLoss("dp_3", None, 5_000, "GBP", ()),
    ]
    content = fraud.compute(fraud.FraudData(reviews, losses), WEEK)

    # 9 scored, by hand: auto_accept 1, 2, 3, 9; review 5, 6, 7, 8; auto_decline 4.
    routing = content.table("routing")
    assert routing.rows == [
        ["auto_accept", 4, round(4 / 9, 4)],
        ["review", 4, round(4 / 9, 4)],
        ["auto_decline", 1, round(1 / 9, 4)],
    ]
    assert content.headline["orders_received"] == 10
    assert content.headline["orders_scored"] == 9

    assert content.table("manual_decisions_by_reason").rows == [
        ["approve", "verified_customer", 1],
        ["ask_customer", "identity_check_needed", 1],
        ["decline", "suspected_fraud", 1],
    ]
    assert content.table("manual_decisions_by_coordinator").rows == [
        ["alice", "approve", 1],
        ["bob", "ask_customer", 1],
        ["bob", "decline", 1],
    ]
    causes = {r[0]: r[1] for r in content.table("cancellations_by_cause").rows}
    assert causes == {
        "fraud_decline": 2,  # 4 (auto) and 6 (bob)
        "default_at_deadline": 1,  # 7
        "customer": 1,  # 8
        "early_fraud_warning": 1,  # 9
    }
    # Review times by a person: 2 h and 6 h (the default at 48 h is not a review).
    assert content.table("review_time").rows == [
        [
            2,
            round(float(numpy.percentile([2, 6], 50)), 2),
            round(float(numpy.percentile([2, 6], 95)), 2),
        ]
    ]
    assert content.table("fraud_losses").rows == [["EUR", 2, 150_000], ["GBP", 1, 5_000]]
    assert content.table("rule_hits_before_losses").rows == [
        ["velocity_email", 2],
        ["(no rule hit)", 1],
        ["high_value", 1],
    ]
    # One point per day of the week; the four auto-accepts were all on day one.
    chart = content.charts[0]
    assert len(chart.categories) == 7
    assert chart.series["auto_accept"][0] == 4


def test_review_time_is_business_time_of_the_order_s_market() -> None:
    # Opened Friday 6 November 2026 at 17:00 in Paris, decided Monday 9 at
    # 10:00: one hour on Friday, one on Monday (the desk opens 09:00-18:00).
    paris = ZoneInfo("Europe/Paris")
    opened = datetime(2026, 11, 6, 17, tzinfo=paris)
    decided = datetime(2026, 11, 9, 10, tzinfo=paris)
    row = _review(
        1,
        routing="review",
        review_opened_at=opened,
        decisions=(_decision("approve", "verified_customer", "alice", decided),),
    )
    assert fraud.review_hours(row) == (2.0, True)
    # Wednesday 11 November is a public holiday in France, not in Britain.
    opened, decided = (datetime(2026, 11, d, 12, tzinfo=paris) for d in (10, 12))
    fr = _review(
        2,
        routing="review",
        review_opened_at=opened,
        decisions=(_decision("approve", "verified_customer", "alice", decided),),
    )
    assert fraud.review_hours(fr) == (6.0 + 3.0, True)
    # A market without a calendar: elapsed time, and the report says so.
    xx = _review(
        3,
        market="ZZ",
        routing="review",
        review_opened_at=opened,
        decisions=(_decision("approve", "verified_customer", "alice", decided),),
    )
    assert fraud.review_hours(xx) == (48.0, False)
    content = fraud.compute(fraud.FraudData([row, fr, xx]), WEEK)
    assert "1 review(s) were measured on the wall clock" in content.notes[0]


def test_business_hours_agree_with_the_calendar_module() -> None:
    from domain.business_hours import business_time_between, calendar_for_market
    from domain.reports.stats import business_hours_between

    rng = random.Random(19)
    calendar = calendar_for_market("FR", starting=date(2026, 1, 1))
    for _ in range(200):
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(500_000))
        end = start + timedelta(minutes=rng.randrange(20_000))
        expected = business_time_between(calendar, start, end).total_seconds() / 3600
        assert business_hours_between(start, end, market="FR") == (
            pytest.approx(expected),
            True,
        )


def test_every_report_takes_an_empty_period() -> None:
    empty = {
        "fraud": fraud.FraudData(),
        "disputes": disputes.DisputesData(),
        "service_levels": service_levels.ServiceLevelData(),
        "returns": returns.ReturnsData(),
        "deliveries": deliveries.DeliveriesData(),
        "ops_desk": ops_desk.OpsDeskData(),
        "fulfilment": fulfilment.FulfilmentData(),
        "employee_sales": employee_sales.EmployeeSalesData(),
    }
    for name, definition in CATALOGUE.items():
        content = definition.compute(empty[name], WEEK)
        assert content.tables, name
        # No rate is invented for an empty period.
        assert all(v in (0, None) for v in content.headline.values()), (name, content.headline)


# ---------------------------------------------------------------- disputes


def test_disputes_report_on_seeded_disputes() -> None:
    due = T0 + timedelta(days=10)

    def d(n: int, reason: str, status: str, **kw: object) -> disputes.DisputeRow:
        base: dict[str, object] = {
            "provider": "stripe" if n % 2 else "adyen",
            "dispute_id": f"dp_{n}",
            "reason": reason,
            "status": status,
            "amount_minor": 1000 * n,
            "currency": "EUR",
            "opened_at": T0,
            "due_by": due,
        }
        base.update(kw)
        return disputes.DisputeRow(**base)  # type: ignore[arg-type]

    rows = [
        d(1, "fraud", "won", answered_at=due - timedelta(hours=20), evidence_complete=True),
        d(2, "fraud", "lost", answered_at=due - timedelta(hours=2), evidence_complete=False),
        d(3, "fraud", "won", answered_at=due - timedelta(days=3), evidence_complete=True),
        d(4, "not_received", "accepted", answered_at=due - timedelta(days=1), by_default=True),
        d(5, "not_received", "expired", evidence_complete=False),
        d(
            6,
            "general",
            "under_review",
            answered_at=due - timedelta(hours=13),
            evidence_complete=True,
        ),
    ]
    content = disputes.compute(disputes.DisputesData(rows, safety_buffer_hours=12), WEEK)
    assert content.table("win_rate_by_reason").rows == [
        ["fraud", 2, 1, round(2 / 3, 4)],
        ["general", 0, 0, None],
        ["not_received", 0, 0, None],
    ]
    assert content.table("win_rate_by_evidence").rows == [
        ["complete", 3, 2, 0, 1.0],
        ["incomplete", 2, 0, 1, 0.0],
        ["not_assembled", 1, 0, 0, None],
    ]
    # Recovered: 1 + 3; lost: 2 (lost) + 4 (accepted) + 5 (expired).
    assert content.table("amounts").rows == [["EUR", 21_000, 4_000, 11_000]]
    # Answered before due - 12 h: 1 (20 h), 3, 4, 6 (13 h); 2 answered 2 h before: late.
    assert content.table("deadline_compliance").rows == [[6, 5, 4, round(4 / 6, 4), 1]]
    by_provider = content.table("outcomes_by_provider_reason")
    assert by_provider.row_by(provider="stripe", reason="fraud") == [
        "stripe",
        "fraud",
        2,
        2,
        0,
        0,
        0,
        0,
        1.0,
    ]


# ---------------------------------------------------------- service levels


def test_service_levels_on_seeded_tasks() -> None:
    as_of = T0 + timedelta(days=7)

    def task(
        process: str, opened_h: float, due_h: float, closed_h: float | None, **kw: object
    ) -> service_levels.TaskRow:
        return service_levels.TaskRow(
            process=process,
            kind=str(kw.pop("kind", "review")),
            awaited_role=str(kw.pop("role", "coordinator")),
            opened_at=T0 + timedelta(hours=opened_h),
            due_at=T0 + timedelta(hours=due_h),
            closed_at=None if closed_h is None else T0 + timedelta(hours=closed_h),
            closed_by=kw.pop("by", None),  # type: ignore[arg-type]
            escalated=bool(kw.pop("escalated", False)),
            first_action_at=kw.pop("first", None),  # type: ignore[arg-type]
        )

    tasks = [
        task("order-review", 0, 4, 1, by="alice", first=T0 + timedelta(minutes=30)),
        task("order-review", 0, 4, 9, by="bob", escalated=True),
        task("order-review", 10, 14, None),  # open, overdue at as_of
        task("return", 0, 48, 24, kind="finance_approval", role="finance", by="fin"),
    ]
    backlog = [tasks[2], task("return", 160, 200, None, kind="manual_qc")]
    content = service_levels.compute(
        service_levels.ServiceLevelData(tasks=tasks, backlog=backlog, as_of=as_of), WEEK
    )
    review = content.table("by_process_kind").row_by(process="order-review", kind="review")
    assert review is not None
    # opened 3, met 1, breached 2 (closed at 9 > 4; open past 14), escalated 1.
    assert review[2:7] == [3, 1, 2, 1, round(2 / 3, 4)]
    assert review[7] == 0.5  # one first action, after 30 minutes
    resolved = [1.0, 9.0]
    assert review[9:11] == [
        round(float(numpy.percentile(resolved, 50)), 2),
        round(float(numpy.percentile(resolved, 95)), 2),
    ]
    ageing = content.table("backlog_ageing")
    # The review opened 158 h before as_of (>7d bucket? 158 h = 6.6 d -> 3-7d), overdue;
    # the QC task opened 8 h before: 4-24h, not overdue.
    assert ageing.row_by(process="order-review") == [
        "order-review",
        "coordinator",
        1,
        1,
        0,
        0,
        0,
        1,
        0,
    ]
    assert ageing.row_by(process="return") == ["return", "coordinator", 1, 0, 0, 1, 0, 0, 0]
    assert content.table("by_coordinator").column("closed_by") == ["alice", "bob", "fin"]


# ----------------------------------------------------------------- returns


def test_returns_report_on_seeded_returns() -> None:
    def r(n: int, market: str, reason: str, **kw: object) -> returns.ReturnRow:
        base: dict[str, object] = {
            "rma_id": f"R{n}",
            "order_id": f"O{n}",
            "market": market,
            "reason": reason,
            "resolution": "refund",
            "status": "refunded",
            "requested_at": T0,
            "lines": {"SKU-A": 1},
        }
        base.update(kw)
        return returns.ReturnRow(**base)  # type: ignore[arg-type]

    rows = [
        r(1, "FR", "too_small", qc_grade="first_choice", refunded_at=T0 + timedelta(hours=50)),
        r(2, "FR", "too_small", qc_grade="first_choice", refunded_at=T0 + timedelta(hours=70)),
        r(3, "FR", "defective", qc_grade="ko", lines={"SKU-B": 2}, refund_frozen=True),
        r(4, "GB", "too_large", resolution="exchange", lines={"SKU-A": 1, "SKU-B": 1}),
    ]
    shoes = {"SKU-A": "shoes", "SKU-B": "handbags"}
    rows = [
        rows[0],
        r(2, "FR", "too_small", qc_grade="first_choice", refunded_at=T0 + timedelta(hours=70),
          categories=shoes),
        r(3, "FR", "defective", qc_grade="ko", lines={"SKU-B": 2}, refund_frozen=True,
          categories=shoes),
        r(4, "GB", "too_large", resolution="exchange", lines={"SKU-A": 1, "SKU-B": 1},
          categories=shoes),
    ]  # fmt: skip
    sold = [
        returns.SoldUnits("FR", "shoes", "SKU-A", 8),
        returns.SoldUnits("FR", "handbags", "SKU-B", 4),
        returns.SoldUnits("GB", "shoes", "SKU-A", 2),
        returns.SoldUnits("IT", "fragrance", "SKU-C", 3),
    ]
    content = returns.compute(
        returns.ReturnsData(rows, {"FR": 30, "GB": 10, "IT": 5}, sold=sold), WEEK
    )
    assert content.table("return_rate_by_market").rows == [
        ["FR", 30, 3, 0.1],
        ["GB", 10, 1, 0.1],
        ["IT", 5, 0, 0.0],
    ]
    # R1's order was never released by Steward: its SKU-A is `unknown` there.
    assert content.table("by_category").rows == [
        # market, category, units sold, returns, units returned, rate, top reason
        ["FR", "handbags", 4, 1, 2, 0.5, "defective"],
        ["FR", "shoes", 8, 1, 1, 0.125, "too_small"],
        ["FR", "unknown", 0, 1, 1, None, "too_small"],
        ["GB", "handbags", 0, 1, 1, None, "too_large"],
        ["GB", "shoes", 2, 1, 1, 0.5, "too_large"],
        ["IT", "fragrance", 3, 0, 0, 0.0, None],
    ]
    assert content.table("reasons_by_category").rows == [
        ["handbags", "defective", 1, 0.5],
        ["handbags", "too_large", 1, 0.5],
        ["shoes", "too_large", 1, 0.5],
        ["shoes", "too_small", 1, 0.5],
        ["unknown", "too_small", 1, 1.0],
    ]
    assert content.table("by_sku").rows == [
        # Equal units: by SKU; a tie between reasons: the first by name. A SKU's
        # category is the known one even where one return did not know it.
        ["SKU-A", "shoes", 10, 3, 3, 0.3, "too_small"],
        ["SKU-B", "handbags", 4, 2, 3, 0.75, "defective"],
    ]
    chart = next(c for c in content.charts if c.name == "returns_by_category")
    assert chart.categories == ["handbags", "shoes", "unknown"]
    assert chart.series == {"units returned": [3.0, 2.0, 1.0]}
    assert content.table("qc_outcomes").rows == [
        ["first_choice", 2, round(2 / 3, 4)],
        ["ko", 1, round(1 / 3, 4)],
    ]
    latencies = [50, 70]
    assert content.table("refunds").rows == [
        [2, float(numpy.percentile(latencies, 50)), float(numpy.percentile(latencies, 95)), 1]
    ]
    assert content.headline["exchange_share"] == 0.25
    assert content.headline["return_rate"] == round(4 / 45, 4)


# -------------------------------------------------------------- deliveries


def test_deliveries_report_on_seeded_cases() -> None:
    fd = [
        deliveries.FailedDeliveryRow("S1", "FR", "delivered", T0),
        deliveries.FailedDeliveryRow("S2", "FR", "reshipped", T0),
        deliveries.FailedDeliveryRow("S3", "FR", "refunded", T0),
        deliveries.FailedDeliveryRow("S4", "FR", "awaiting_customer", T0),
        deliveries.FailedDeliveryRow("S5", "FR", "closed", T0, second_failure=True),
    ]
    deadline = T0 + timedelta(days=20)
    claims = [
        deliveries.ClaimRow(
            "c1", "ups", "approved", T0, T0 + timedelta(days=2), deadline, 45_000, "EUR"
        ),
        deliveries.ClaimRow("c2", "ups", "rejected", T0, deadline + timedelta(hours=1), deadline),
        deliveries.ClaimRow("c3", "dhl", "no_response", T0, T0, deadline),
        deliveries.ClaimRow("c4", "dhl", "gathering_evidence", T0),
    ]
    content = deliveries.compute(deliveries.DeliveriesData(fd, claims), WEEK)
    assert {r[0]: r[1] for r in content.table("failed_delivery_outcomes").rows} == {
        "reshipped": 2,
        "returned": 1,
        "open": 1,
        "closed": 1,
    }
    assert content.table("second_failures").rows == [[5, 1, 0.2]]
    columns = content.table("claims_by_carrier").columns
    ups = dict(
        zip(columns, content.table("claims_by_carrier").row_by(carrier="ups") or [], strict=True)
    )
    assert ups["approved"] == 1 and ups["rejected"] == 1
    assert ups["filed_before_deadline"] == 1 and ups["filed_late"] == 1
    dhl = dict(
        zip(columns, content.table("claims_by_carrier").row_by(carrier="dhl") or [], strict=True)
    )
    assert dhl["no_response"] == 1 and dhl["open"] == 1
    assert content.table("claims_recovery").rows == [["EUR", 45_000]]


# ---------------------------------------------------------------- ops desk


def test_ops_desk_report_on_seeded_requests() -> None:
    london = ZoneInfo("Europe/London")
    monday = datetime(2026, 11, 2, 9, tzinfo=london)  # the LON1 warehouse opens 08:00

    def req(n: int, kind: str, **kw: object) -> ops_desk.OpsRequestRow:
        base: dict[str, object] = {
            "request_id": f"OPS-{n}",
            "type": kind,
            "priority": "normal",
            "status": "resolved",
            "market": "GB",
            "site_id": "LON1",
            "opened_at": monday,
        }
        base.update(kw)
        return ops_desk.OpsRequestRow(**base)  # type: ignore[arg-type]

    rows = [
        # Answered 30 minutes later, resolved in 2 business hours, in time.
        req(
            1,
            "address_change",
            first_response_at=monday + timedelta(minutes=30),
            resolved_at=monday + timedelta(hours=2),
            business_seconds_to_resolve=7200,
            sla_met=True,
            root_cause="customer_error",
        ),
        # Opened Friday 6th 17:00, first answer Monday 9th 09:00: 1 h on Friday,
        # 4 h on Saturday (09:00-13:00), 1 h on Monday (from 08:00).
        req(
            2,
            "address_change",
            opened_at=datetime(2026, 11, 6, 17, tzinfo=london),
            first_response_at=datetime(2026, 11, 9, 9, tzinfo=london),
            resolved_at=datetime(2026, 11, 9, 12, tzinfo=london),
            business_seconds_to_resolve=4 * 3600,
            sla_met=False,
            escalations=1,
            root_cause="customer_error",
        ),
        req(3, "cctv_retrieval", priority="urgent", status="in_progress", sla_met=None),
    ]
    content = ops_desk.compute(ops_desk.OpsDeskData(rows), WEEK)
    address = content.table("by_type").row_by(type="address_change")
    assert address == [
        "address_change",
        2,  # requests
        2,  # resolved
        1,  # SLA met
        1,  # SLA breached
        0.5,
        1,
        round(float(numpy.percentile([0.5, 6.0], 50)), 2),
        round(float(numpy.percentile([0.5, 6.0], 95)), 2),
        round(float(numpy.percentile([2.0, 4.0], 50)), 2),
        round(float(numpy.percentile([2.0, 4.0], 95)), 2),
    ]
    assert content.table("root_causes").rows == [["customer_error", 2]]
    assert content.headline["requests"] == 3 and content.headline["escalated"] == 1
    assert "0 first response(s) were" in content.notes[0]


# ------------------------------------------------------------- fulfilment


def test_fulfilment_report_on_seeded_fulfilments() -> None:
    def h(hours: float) -> datetime:
        return T0 + timedelta(hours=hours)

    rows = [
        fulfilment.FulfilmentRow(
            order_id="F1",
            market="FR",
            status="handed_to_carrier",
            started_at=T0,
            holds=(fulfilment.HoldRow("outbound_qc", h(1), h(3)),),
            qc_outcomes=("fail", "pass"),
            address_changes=("applied",),
            pick_refusals=1,
            wms_events=(
                ("allocated", h(0)),
                ("picking_started", h(4)),
                ("packing_started", h(5)),
                ("packed", h(5.5)),
                ("handed_to_carrier", h(10)),
            ),
        ),
        fulfilment.FulfilmentRow(
            order_id="F2",
            market="FR",
            status="picking",
            started_at=T0,
            holds=(fulfilment.HoldRow("fraud", h(2)),),  # still active
            # A repeated allocation after picking started moves nothing back.
            wms_events=(("allocated", h(1)), ("picking_started", h(3)), ("allocated", h(3.5))),
        ),
        fulfilment.FulfilmentRow(
            order_id="F3",
            market="GB",
            status="released",
            started_at=T0,
            address_changes=("intercept_refused",),
        ),
    ]
    content = fulfilment.compute(fulfilment.FulfilmentData(rows, as_of=h(12)), WEEK)
    assert content.table("by_status").rows == [
        ["handed_to_carrier", 1, round(1 / 3, 4)],
        ["picking", 1, round(1 / 3, 4)],
        ["released", 1, round(1 / 3, 4)],
    ]
    assert content.table("holds_by_reason").rows == [
        # reason, holds, orders, released, active, held p50 / p95 (h)
        ["fraud", 1, 1, 0, 1, 10.0, 10.0],  # active: measured up to as_of
        ["outbound_qc", 1, 1, 1, 0, 2.0, 2.0],
    ]
    assert content.table("outbound_qc").rows == [["fail", 1, 0.5], ["pass", 1, 0.5]]
    assert content.table("address_changes").rows == [
        ["applied", 1, 0.5],
        ["intercept_refused", 1, 0.5],
    ]
    allocated = [4.0, 2.0]  # F1 allocated 0 -> picking 4; F2 1 -> 3
    assert content.table("time_in_state").rows == [
        [
            "allocated",
            2,
            round(float(numpy.percentile(allocated, 50)), 2),
            round(float(numpy.percentile(allocated, 95)), 2),
            4.0,
        ],
        ["picking", 1, 1.0, 1.0, 1.0],
        ["packing", 1, 0.5, 0.5, 0.5],
        ["packed", 1, 4.5, 4.5, 4.5],
        # handed_to_carrier: F1 is still there, so it is not counted.
    ]
    assert content.headline == {
        "fulfilments": 3,
        "handed_to_carrier": 1,
        "orders_held": 2,
        "holds_active": 1,
        "qc_decisions": 2,
        "qc_pass_rate": 0.5,
        "address_changes": 2,
        "pick_refusals": 1,
    }


# --------------------------------------------------------- employee sales


def test_employee_sales_report_on_seeded_campaigns() -> None:
    campaigns = [
        employee_sales.CampaignRow("C1", "Winter", "open", "EUR", 10, 4, 5, 100_000),
        employee_sales.CampaignRow("C2", "Summer", "closed", "EUR", 0, 0, 0, 0),
    ]
    skus = [
        employee_sales.SkuRow("C1", "SKU-A", "handbags", 10, 6, cancelled=1, returned=1),
        employee_sales.SkuRow("C1", "SKU-B", "shoes", 5, 2),
        employee_sales.SkuRow("C2", "SKU-C", "handbags", 4, 0),
    ]
    content = employee_sales.compute(employee_sales.EmployeeSalesData(campaigns, skus), WEEK)
    assert content.table("by_campaign").rows == [
        # orders, allocated, sold, returned, return rate, sell-through (kept 4 + 2 of 15),
        # eligible, buyers, participation, revenue, currency
        ["C1", "Winter", "open", 5, 15, 8, 1, 0.125, 0.4, 10, 4, 0.4, 100_000, "EUR"],
        ["C2", "Summer", "closed", 0, 4, 0, 0, None, 0.0, 0, 0, None, 0, "EUR"],
    ]
    assert content.table("by_category").rows == [
        ["handbags", 14, 6, 1, round(1 / 6, 4), round(4 / 14, 4)],
        ["shoes", 5, 2, 0, 0.0, 0.4],
    ]
    assert content.table("by_sku").column("sku") == ["SKU-A", "SKU-B", "SKU-C"]
    assert content.table("by_sku").rows[0] == ["C1", "SKU-A", "handbags", 10, 6, 1, 1, 0.4]
    assert content.headline == {
        "campaigns": 2,
        "orders": 5,
        "units_sold": 8,
        "units_returned": 1,
        "return_rate": 0.125,
        "sell_through": round(6 / 19, 4),
        "participation": 0.4,
    }


# ------------------------------------------------------------------ outputs


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_charts_are_real_pictures_and_csv_reads_back() -> None:
    chart = ReportChart(
        name="x", title="t", categories=["a", "b"], series={"one": [1.0, 3.0], "two": [2.0, 0.0]}
    )
    png = render_png(chart)
    assert _png_size(png) == (800, 400)
    # A blank canvas compresses to almost nothing; bars and labels do not.
    assert len(png) > 8_000
    table = ReportTable(name="t", title="t", columns=["a", "b"], rows=[["x,y", None], ["z", 1.5]])
    assert list(csv.reader(io.StringIO(render_csv(table).decode()))) == [
        ["a", "b"],
        ["x,y", ""],
        ["z", "1.5"],
    ]


def test_a_run_writes_a_csv_per_table_a_png_per_chart_and_one_page() -> None:
    reviews = [_review(n, routing=("auto_accept", "review")[n % 2]) for n in range(20)]
    content = fraud.compute(fraud.FraudData(reviews=reviews), WEEK)
    files = render_files(
        CATALOGUE["fraud"], WEEK, content, run_id="run-1", generated_at=T0 + timedelta(days=8)
    )
    assert {f"{t.name}.csv" for t in content.tables} | {f"{c.name}.png" for c in content.charts} | {
        "report.html"
    } == set(files)
    page = files["report.html"].decode()
    # Self-contained: every chart inlined, no external resource.
    assert page.count('src="data:image/png;base64,') == len(content.charts)
    assert "http://" not in page and "https://" not in page
    for table in content.tables:
        assert f'<section id="{table.name}">' in page
    assert "<td>auto_accept</td><td>10</td>" in page
