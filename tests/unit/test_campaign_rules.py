"""Employee special sales, pure rules: the HR roster's CSV (every kind of bad
row, file-level refusals), the schedule in the campaign's timezone (DST),
launch validation and four-eyes approval."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain.campaign import (
    MAX_ROSTER_ROWS,
    ApprovalInput,
    CampaignParameters,
    CampaignSchedule,
    CampaignState,
    CampaignStatus,
    CatalogueEntry,
    PriceLine,
    Quota,
    RosterFileError,
    RosterSummary,
    Severity,
    ValidationIssue,
    ValidationReport,
    WindowChange,
    changed_schedule,
    parse_roster,
    schedule_for,
    validate_approval,
    validate_parameters,
    validate_window_change,
)
from domain.common import Role
from domain.orders import ItemCategory

HEADER = "employee_id,name,work_email,legal_entity,country,grade,start_date,leave_date\n"
OPENS = date(2027, 3, 29)
CLOSES = date(2027, 4, 2)


def params(**changes: object) -> CampaignParameters:
    values: dict[str, object] = {
        "campaign_id": "ES-2027-03",
        "name": "Spring employee sale",
        "timezone": "Europe/Paris",
        "opens_local": datetime(2027, 3, 29, 9, 0),
        "closes_local": datetime(2027, 4, 2, 18, 0),
        "legal_entities": ["Maison SAS", "Maison GmbH"],
        "countries": ["FR", "DE"],
        "currency": "EUR",
        "site": "PAR-1",
        "quotas": {"G1": Quota(max_units=3, max_amount_minor=300_000)},
        "prices": [
            PriceLine(
                sku="BAG-1",
                name="Tote",
                category=ItemCategory.HANDBAGS,
                list_price_minor=200_000,
                sale_price_minor=100_000,
                cost_minor=40_000,
                allocated_units=10,
            )
        ],
    }
    values.update(changes)
    return CampaignParameters.model_validate(values)


def test_every_kind_of_bad_row_is_reported_with_line_field_and_reason() -> None:
    csv = (
        HEADER
        + "E1,Ann Lee,ann@maison.example,Maison SAS,FR,G1,2020-01-06,\n"  # line 2: fine
        + "E1,Bob Roy,bob@maison.example,Maison SAS,FR,G1,2020-01-06,\n"  # 3: duplicate id
        + "E3,Cy Dee,not-an-email,Maison SAS,FR,G1,2020-01-06,\n"  # 4: malformed email
        + "E4,Di Ek,ANN@maison.example,Maison SAS,FR,G1,2020-01-06,\n"  # 5: duplicate email
        + "E5,Ed Fox,ed@maison.example,Maison SAS,FR,G9,2020-01-06,\n"  # 6: unknown grade
        + "E6,Fa Gu,fa@maison.example,Maison SAS,FR,G1,06/01/2020,\n"  # 7: bad date
        + "E7,Gi Ho,gi@maison.example,Maison SAS,FR,G1,2020-01-06,2027-03-30\n"  # 8: leaver
        + "E8,Hu Io,hu@maison.example,Maison SAS,FR,G1,2027-04-01,\n"  # 9: joins after opening
        + "E9,Ia Jo,ia@maison.example,Other Ltd,FR,G1,2020-01-06,\n"  # 10: entity not in sale
        + "E10,Jo Ka,jo@maison.example,Maison SAS,IT,G1,2020-01-06,\n"  # 11: country not in sale
    )
    parsed = parse_roster(csv.encode(), params(), sale_opens=OPENS, sale_closes=CLOSES)
    found = {(i.line, i.field, i.severity) for i in parsed.issues}
    assert found == {
        (3, "employee_id", Severity.ERROR),
        (4, "work_email", Severity.ERROR),
        (5, "work_email", Severity.ERROR),
        (6, "grade", Severity.ERROR),
        (7, "start_date", Severity.ERROR),
        (8, "leave_date", Severity.WARNING),
        (9, "start_date", Severity.WARNING),
        (10, "legal_entity", Severity.WARNING),
        (11, "country", Severity.WARNING),
    }
    reasons = {i.line: i.reason for i in parsed.issues}
    assert reasons[3] == "duplicate of line 2"
    assert reasons[5] == "duplicate of line 2"
    assert "G9" in reasons[6] and "G1" in reasons[6]
    assert "2027-03-30" in reasons[8]
    # Excluded rows are kept (not eligible); rows with errors are not.
    assert [(r.employee_id, r.eligible) for r in parsed.rows] == [
        ("E1", True),
        ("E7", False),
        ("E8", False),
        ("E9", False),
        ("E10", False),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"employee_id,name\nE1,Ann\n", "columns: missing work_email"),
        (HEADER.encode("utf-16"), "not UTF-8"),
        (
            (HEADER + "E1,Zoë,z@maison.example,Maison SAS,FR,G1,2020-01-06,\n").encode("latin-1"),
            "not UTF-8",
        ),
        (b"", "file: empty"),
        (HEADER.encode(), "a header but no employee"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(data: bytes, reason: str) -> None:
    with pytest.raises(RosterFileError, match=reason):
        parse_roster(data, params(), sale_opens=OPENS, sale_closes=CLOSES)


def test_a_roster_over_the_row_limit_is_refused_whole() -> None:
    rows = "".join(
        f"E{n},Name {n},e{n}@maison.example,Maison SAS,FR,G1,2020-01-06,\n"
        for n in range(MAX_ROSTER_ROWS + 1)
    )
    with pytest.raises(
        RosterFileError, match=f"{MAX_ROSTER_ROWS + 1} rows, more than {MAX_ROSTER_ROWS}"
    ):
        parse_roster((HEADER + rows).encode(), params(), sale_opens=OPENS, sale_closes=CLOSES)


def test_a_bom_and_column_order_do_not_matter() -> None:
    csv = (
        "grade,employee_id,name,work_email,legal_entity,country,start_date,leave_date\n"
        "G1,E1,Ann Lee,ann@maison.example,Maison SAS,fr,2020-01-06,\n"
    )
    parsed = parse_roster(
        b"\xef\xbb\xbf" + csv.encode(), params(), sale_opens=OPENS, sale_closes=CLOSES
    )
    assert parsed.issues == []
    assert parsed.rows[0].country == "FR" and parsed.rows[0].eligible


# ------------------------------------------------------------------ schedule


def test_opening_after_the_spring_change_is_utc_plus_two_and_the_reminder_a_clock_day_before() -> (
    None
):
    # Europe/Paris moves from UTC+1 to UTC+2 at 02:00 on 2027-03-28.
    schedule = schedule_for(
        params(opens_local=datetime(2027, 3, 28, 9, 0), closes_local=datetime(2027, 3, 30, 18, 0))
    )
    assert schedule.opens_at == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
    # 09:00 the day before is still winter time: 08:00 UTC, 23 hours earlier.
    assert schedule.opening_reminder_at == datetime(2027, 3, 27, 8, 0, tzinfo=UTC)
    assert schedule.opens_at - schedule.opening_reminder_at == timedelta(hours=23)
    assert schedule.closes_at == datetime(2027, 3, 30, 16, 0, tzinfo=UTC)


def test_a_local_time_the_clocks_skip_or_repeat_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="opens_local: 2027-03-28 02:30 does not exist"):
        schedule_for(params(opens_local=datetime(2027, 3, 28, 2, 30)))
    with pytest.raises(ValueError, match="closes_local: 2027-10-31 02:30 happens twice"):
        schedule_for(params(closes_local=datetime(2027, 10, 31, 2, 30)))
    with pytest.raises(ValueError, match="timezone: Europe/Nowhere is not an IANA timezone"):
        schedule_for(params(timezone="Europe/Nowhere"))


def test_times_at_the_edge_of_the_calendar_are_refused_not_crashing() -> None:
    with pytest.raises(ValueError, match=r"opens_local: .*beyond the calendar's range"):
        schedule_for(params(opens_local=datetime(1, 1, 1, 0, 30)))
    with pytest.raises(ValueError, match="beyond the calendar's range"):
        schedule_for(
            params(
                timezone="Pacific/Pago_Pago",
                opens_local=datetime(9999, 12, 31, 20, 0),
                closes_local=datetime(9999, 12, 31, 22, 0),
            )
        )
    with pytest.raises(ValueError, match="beyond the calendar's range"):
        schedule_for(params(opening_reminder=timedelta(days=3_700_000)))


def test_a_timezone_aware_local_time_is_refused() -> None:
    with pytest.raises(ValueError, match="local wall time"):
        params(opens_local=datetime(2027, 3, 29, 9, 0, tzinfo=UTC))


# ---------------------------------------------------------------- validation


def _validate(p: CampaignParameters, **changes: object) -> list[ValidationIssue]:
    values: dict[str, object] = {
        "now": datetime(2027, 3, 1, tzinfo=UTC),
        "overlapping": [],
        "available": {"BAG-1": 10},
        "catalogue": {
            "BAG-1": CatalogueEntry(sku="BAG-1", description="Tote", visuals=3, category="handbags")
        },
        "roster": RosterSummary(
            roster_hash="h", rows=10, eligible=10, excluded=0, grades={"G1": 10}
        ),
    }
    values.update(changes)
    return validate_parameters(p, **values)  # type: ignore[arg-type]


def test_a_clean_campaign_has_no_issue() -> None:
    assert _validate(params()) == []


def test_every_parameter_problem_is_named() -> None:
    bad = params(
        currency="GBP",
        prices=[
            PriceLine(
                sku="BAG-1",
                name="Tote",
                category=ItemCategory.HANDBAGS,
                list_price_minor=200_000,
                sale_price_minor=20_000,
                cost_minor=40_000,
                allocated_units=50,
            ),
            PriceLine(
                sku="BAG-2",
                name="Clutch",
                category=ItemCategory.HANDBAGS,
                list_price_minor=100_000,
                sale_price_minor=90_000,
                allocated_units=0,
            ),
        ],
    )
    issues = _validate(
        bad,
        now=datetime(2027, 4, 1, tzinfo=UTC),
        overlapping=["ES-2027-02"],
        catalogue={"BAG-1": CatalogueEntry(sku="BAG-1", description="", visuals=0, category=None)},
        roster=RosterSummary(roster_hash="h", rows=3, eligible=2, excluded=1, grades={"G1": 2}),
    )
    text = [(i.field, i.severity.value, i.reason) for i in issues]
    fields = {(f, s) for f, s, _ in text}
    assert ("opens_local", "error") in fields  # in the past, and overlapping
    assert any("overlaps campaign ES-2027-02" in r for _, _, r in text)
    assert ("currency", "error") in fields  # FR and DE sell in EUR
    assert any("discount 90.0% over the cap of 70%" in r for _, _, r in text)
    assert any("below cost (40000)" in r for _, _, r in text)
    assert any("50 allocated, 10 available at PAR-1" in r for _, _, r in text)
    assert any("lacks description, visuals, category" in r for _, _, r in text)
    assert ("prices[1].sku", "error") in fields  # BAG-2 not in the catalogue
    assert ("prices[1].allocated_units", "warning") in fields
    assert ("roster", "warning") in fields  # one excluded row


def test_no_roster_blocks_the_launch() -> None:
    issues = _validate(
        params(), roster=RosterSummary(roster_hash=None, rows=0, eligible=0, excluded=0)
    )
    assert [(i.field, i.reason) for i in issues] == [("roster", "no roster imported")]


def test_a_grade_quota_that_buys_nothing_is_an_error() -> None:
    # The cheapest item on sale is BAG-1 at 1,000.00 EUR.
    quotas = {
        "G1": Quota(max_units=3, max_amount_minor=300_000),
        "G2": Quota(max_units=2, max_amount_minor=99_999),
    }
    issues = _validate(
        params(quotas=quotas),
        roster=RosterSummary(
            roster_hash="h", rows=3, eligible=3, excluded=0, grades={"G1": 2, "G2": 1}
        ),
    )
    assert [(i.field, i.severity.value, i.reason) for i in issues] == [
        (
            "quotas.G2.max_amount_minor",
            "error",
            "999.99 EUR buys nothing: the cheapest item on sale costs 1,000.00 EUR",
        )
    ]


# ------------------------------------------------------------ four eyes


def _state(status: CampaignStatus, warnings: int = 0) -> CampaignState:
    now = datetime(2027, 3, 1, tzinfo=UTC)
    return CampaignState(
        campaign_id="ES-1",
        name="x",
        status=status,
        timezone="Europe/Paris",
        schedule=CampaignSchedule(
            opens_at=now + timedelta(days=2),
            closes_at=now + timedelta(days=5),
            opening_reminder_at=now + timedelta(days=1),
            closing_reminder_at=now + timedelta(days=4),
        ),
        prepared_by=["alice"],
        report=ValidationReport(
            validated_at=now,
            roster_hash="h",
            issues=[
                ValidationIssue(field="roster", reason="r", severity=Severity.WARNING)
                for _ in range(warnings)
            ],
        ),
    )


def test_the_preparer_may_not_approve_even_as_a_manager() -> None:
    state = _state(CampaignStatus.AWAITING_APPROVAL)
    with pytest.raises(ValueError, match="actor: alice prepared this campaign"):
        validate_approval(state, ApprovalInput(approve=True, actor="alice", role=Role.MANAGER))
    with pytest.raises(ValueError, match="role: coordinator may not approve"):
        validate_approval(state, ApprovalInput(approve=True, actor="bob", role=Role.COORDINATOR))
    validate_approval(state, ApprovalInput(approve=True, actor="bob", role=Role.MANAGER))


def test_warnings_need_an_acknowledgement_and_a_refusal_a_reason() -> None:
    state = _state(CampaignStatus.AWAITING_APPROVAL, warnings=2)
    with pytest.raises(ValueError, match="acknowledge_warnings: 2 warning"):
        validate_approval(state, ApprovalInput(approve=True, actor="bob", role=Role.MANAGER))
    validate_approval(
        state,
        ApprovalInput(approve=True, acknowledge_warnings=True, actor="bob", role=Role.MANAGER),
    )
    with pytest.raises(ValueError, match="reason: a refusal says why"):
        validate_approval(state, ApprovalInput(approve=False, actor="bob", role=Role.MANAGER))


def test_window_changes_keep_the_opening_and_refuse_the_past() -> None:
    state = _state(CampaignStatus.OPEN)
    now = state.schedule.opens_at + timedelta(hours=1)
    with pytest.raises(ValueError, match="in the past"):
        validate_window_change(
            state,
            WindowChange(closes_at=now - timedelta(minutes=1), actor="m", role=Role.MANAGER),
            now,
        )
    with pytest.raises(ValueError, match="role: coordinator"):
        validate_window_change(state, WindowChange(actor="c", role=Role.COORDINATOR), now)
    close_now = changed_schedule(state.schedule, WindowChange(actor="m", role=Role.MANAGER), now)
    assert close_now.closes_at == now and close_now.opens_at == state.schedule.opens_at
    assert close_now.closing_reminder_at <= close_now.closes_at
