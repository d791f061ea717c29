"""Business-hours SLA clocks (domain/business_hours.py): weekends, public
holidays from the holidays library, closures and DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.business_hours import (
    MARKET_CALENDARS,
    SITES,
    BusinessCalendar,
    CalendarSpec,
    DayHours,
    add_business_time,
    build_calendar,
    business_time_between,
    calendar_for_market,
    calendar_for_site,
    next_opening,
    weekdays,
)

LONDON = ZoneInfo("Europe/London")
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc,arg-type]


def gb() -> BusinessCalendar:
    return calendar_for_market("GB", starting=date(2026, 1, 1))


def test_four_business_hours_from_friday_evening_fall_due_on_monday() -> None:
    # Friday 6 March 2026, 17:30 in London: 30 minutes left on Friday.
    due = add_business_time(gb(), london(2026, 3, 6, 17, 30), timedelta(hours=4))
    assert due == london(2026, 3, 9, 12, 30)
    assert due.tzinfo is UTC


def test_a_bank_holiday_monday_moves_it_to_tuesday() -> None:
    # Friday 28 August 2026; Monday 31 August is the Late Summer Bank Holiday.
    calendar = gb()
    assert calendar.closed_days[date(2026, 8, 31)] == "Late Summer Bank Holiday"
    due = add_business_time(calendar, london(2026, 8, 28, 17, 30), timedelta(hours=4))
    assert due == london(2026, 9, 1, 12, 30)


def test_easter_closes_good_friday_and_easter_monday() -> None:
    # Thursday 2 April 2026 at 16:00, 8 business hours: 2 on Thursday, then
    # Friday 3 (Good Friday), the weekend and Monday 6 (Easter Monday) are closed.
    due = add_business_time(gb(), london(2026, 4, 2, 16), timedelta(hours=8))
    assert due == london(2026, 4, 7, 15)


def test_christmas_and_the_observed_boxing_day() -> None:
    # Thursday 24 December 2026 at 17:00; 25 (Fri), 26-27 (weekend) and
    # 28 (Boxing Day observed) are closed.
    due = add_business_time(gb(), london(2026, 12, 24, 17), timedelta(hours=2))
    assert due == london(2026, 12, 29, 10)


def test_spring_forward_counts_real_time_inside_the_window() -> None:
    # The New Jersey warehouse opens 08:00-18:00 and Saturday 09:00-13:00; DST
    # starts on Sunday 8 March 2026: Friday and Saturday are EST, Monday EDT.
    calendar = calendar_for_site("NJ1", starting=date(2026, 1, 1))
    due = add_business_time(calendar, datetime(2026, 3, 6, 17, tzinfo=NEW_YORK), timedelta(hours=7))
    # 1 h Friday, 4 h Saturday, 2 h Monday (08:00 EDT -> 10:00 EDT).
    assert due == datetime(2026, 3, 9, 10, tzinfo=NEW_YORK)
    assert due.utcoffset() == timedelta(0)
    assert datetime(2026, 3, 9, 10, tzinfo=NEW_YORK).utcoffset() == timedelta(hours=-4)


def test_a_window_spanning_the_clock_change_is_an_hour_shorter() -> None:
    # A 24-hour desk on Sunday 29 March 2026 in Paris (clocks go 02:00 -> 03:00).
    around_the_clock = DayHours(opens=time(0), closes=time(23, 59))
    spec = CalendarSpec(timezone="Europe/Paris", country="FR", week=[around_the_clock] * 7)
    calendar = build_calendar("test", spec, starting=date(2026, 1, 1))
    start = datetime(2026, 3, 29, 0, tzinfo=PARIS)
    end = datetime(2026, 3, 29, 23, 59, tzinfo=PARIS)
    assert business_time_between(calendar, start, end) == timedelta(hours=22, minutes=59)
    assert add_business_time(calendar, start, timedelta(hours=3)) == datetime(
        2026, 3, 29, 4, tzinfo=PARIS
    )


def test_autumn_back_keeps_wall_clock_opening_hours() -> None:
    # London goes back on Sunday 25 October 2026; the desk opens at 09:00 local
    # on Monday 26: 09:00 GMT (UTC), not 08:00 UTC as the week before.
    calendar = gb()
    before = next_opening(calendar, london(2026, 10, 17, 12))
    after = next_opening(calendar, london(2026, 10, 24, 12))
    assert before == datetime(2026, 10, 19, 8, tzinfo=UTC)
    assert after == datetime(2026, 10, 26, 9, tzinfo=UTC)


def test_business_time_between_skips_nights_weekends_and_holidays() -> None:
    calendar = gb()
    # Friday 10:00 to Tuesday 10:00 around the May Day bank holiday (Mon 4 May).
    elapsed = business_time_between(calendar, london(2026, 5, 1, 10), london(2026, 5, 5, 10))
    assert elapsed == timedelta(hours=8 + 1)
    assert business_time_between(calendar, london(2026, 5, 5, 10), london(2026, 5, 1)) == (
        timedelta(0)
    )


def test_add_and_between_agree() -> None:
    calendar = calendar_for_site("PAR1", starting=date(2026, 1, 1))
    start = datetime(2026, 7, 10, 16, 45, tzinfo=PARIS)  # before Bastille Day (Tue 14)
    for hours in (0.5, 4, 11, 26, 60):
        due = add_business_time(calendar, start, timedelta(hours=hours))
        assert business_time_between(calendar, start, due) == timedelta(hours=hours)
    assert date(2026, 7, 14) in calendar.closed_days


def test_site_closures_are_closed_days() -> None:
    spec = SITES["LON1"].calendar.model_copy(update={"closures": {date(2026, 6, 1): "stock take"}})
    calendar = build_calendar("site:LON1", spec, starting=date(2026, 1, 1))
    due = add_business_time(calendar, london(2026, 5, 29, 17), timedelta(hours=2))  # Friday
    # Saturday 30 May 09:00-13:00 open: 1 h Friday, 1 h Saturday; Monday is the stock take.
    assert due == london(2026, 5, 30, 10)
    assert calendar.closed_days[date(2026, 6, 1)] == "stock take"


def test_refusals() -> None:
    calendar = gb()
    with pytest.raises(ValueError, match="aware"):
        add_business_time(calendar, datetime(2026, 3, 6, 12), timedelta(hours=1))
    with pytest.raises(ValueError, match="runs past the end"):
        add_business_time(calendar, london(2027, 12, 30, 12), timedelta(days=30))
    with pytest.raises(ValueError, match="unknown"):
        calendar_for_site("XX9", starting=date(2026, 1, 1))
    with pytest.raises(ValueError, match="no calendar"):
        calendar_for_market("ZZ", starting=date(2026, 1, 1))
    with pytest.raises(ValueError, match="IANA"):
        BusinessCalendar(
            name="x",
            timezone="Mars/Olympus",
            week=weekdays(time(9), time(17)),
            covers_until=date(2026, 12, 31),
        )
    with pytest.raises(ValueError, match="closes must be after opens"):
        DayHours(opens=time(18), closes=time(9))


def test_every_configured_calendar_builds() -> None:
    for market in MARKET_CALENDARS:
        assert calendar_for_market(market, starting=date(2026, 1, 1)).closed_days
    for site in SITES:
        calendar = calendar_for_site(site, starting=date(2026, 1, 1))
        assert calendar.covers_until == date(2027, 12, 31)
        # Round trip through JSON (a workflow input carries it).
        assert BusinessCalendar.model_validate_json(calendar.model_dump_json()) == calendar


def test_configured_calendars_are_built_without_calling_the_holidays_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Workflows build calendars (a return's exchange builds its replacement's
    # review input): the library's call imports itself and reads the locale,
    # which the workflow sandbox refuses, so configured calendars come from
    # the table worked out at import.
    import holidays

    from domain import business_hours

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("holidays.country_holidays called at build time")

    monkeypatch.setattr(holidays, "country_holidays", refused)
    paris = business_hours.calendar_for_market("FR", starting=date(2026, 12, 2))
    assert paris.closed_days[date(2026, 12, 25)]
    assert date(2027, 7, 14) in paris.closed_days
    london = business_hours.calendar_for_site("LON1", starting=date(2026, 1, 1))
    assert date(2026, 12, 28) in london.closed_days  # Boxing Day observed


def test_a_review_started_by_a_workflow_carries_no_calendar() -> None:
    # A return's exchange starts its replacement's review from inside the
    # returns workflow: the review counts wall-clock there (with the calendar,
    # the holidays library ran in the sandbox and the task failed for ever).
    from domain.review import review_input
    from tests.factories import make_order

    order = make_order(market="FR", currency="EUR")
    assert review_input(order).policy.calendar is not None
    assert review_input(order, business_calendar=False).policy.calendar is None
