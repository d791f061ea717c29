"""Business-hours calendars: SLA clocks that stop at night, at weekends, on
public holidays and on a site's closures. Pure; offered to every process.

A calendar is one site's or one market's: a timezone, opening hours per
weekday, and the closed days (public holidays from the maintained `holidays`
library, plus the site's own closures). `calendar_for_site` and
`calendar_for_market` build one covering a few years, as a plain model: a
workflow receives the calendar in its input (a snapshot), so its timers never
depend on the installed holidays release or on a closure added later, and its
history replays the same whatever changes in the library.

Business time is real elapsed time inside opening windows: on the day a
clock changes (DST) an opening window that spans the change is an hour
shorter or longer, as a person at the desk lives it. `add_business_time`
answers "when is this due", `business_time_between` "how much business time
passed" (the reports' business-time-to-resolve).

Example: an SLA of 4 business hours opened on Friday at 17:30 in London
(desk open 09:00-18:00) has 30 minutes on Friday and falls due on Monday at
12:30 (or Tuesday when Monday is a bank holiday).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import Field, field_validator, model_validator

from domain.common import StewardModel


class DayHours(StewardModel):
    """One weekday's opening window, local wall-clock time."""

    opens: time
    closes: time

    @model_validator(mode="after")
    def _opens_before_closing(self) -> DayHours:
        if self.opens >= self.closes:
            raise ValueError("closes must be after opens")
        return self


class BusinessCalendar(StewardModel):
    """A site's or market's working time. `week[0]` is Monday; None: closed."""

    name: str = Field(min_length=1, max_length=100)
    timezone: str
    week: list[DayHours | None] = Field(min_length=7, max_length=7)
    # Public holidays and closures, with their names ("Christmas Day", "stock take").
    closed_days: dict[date, str] = Field(default_factory=dict)
    # The calendar knows its closed days up to here; past it, arithmetic refuses.
    covers_until: date

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {value!r} is not an IANA timezone") from None
        return value

    @model_validator(mode="after")
    def _opens_some_day(self) -> BusinessCalendar:
        if all(day is None for day in self.week):
            raise ValueError("week must have at least one open day")
        return self

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's opening window in UTC, or None when closed that day."""
        hours = self.week[day.weekday()]
        if hours is None or day in self.closed_days:
            return None
        zone = self.zone()
        opens = datetime.combine(day, hours.opens, tzinfo=zone).astimezone(UTC)
        closes = datetime.combine(day, hours.closes, tzinfo=zone).astimezone(UTC)
        return opens, closes

    def is_open(self, at: datetime) -> bool:
        window = self.window(_aware(at).astimezone(self.zone()).date())
        return window is not None and window[0] <= at < window[1]


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a business-time computation needs an aware date-time")
    return at


def _days_from(calendar: BusinessCalendar, start: datetime) -> list[date]:
    first = start.astimezone(calendar.zone()).date()
    if first > calendar.covers_until:
        raise ValueError(
            f"calendar {calendar.name} covers closed days until {calendar.covers_until}, "
            f"not {first}"
        )
    return [first + timedelta(days=n) for n in range((calendar.covers_until - first).days + 1)]


def add_business_time(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """When `duration` of business time after `start` has passed (UTC).

    A zero duration opened outside business hours is due at the next opening.
    """
    start = _aware(start).astimezone(UTC)
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    left = duration
    for day in _days_from(calendar, start):
        window = calendar.window(day)
        if window is None:
            continue
        opens, closes = window
        begin = max(opens, start)
        if begin >= closes:
            continue
        available = closes - begin
        if left <= available:
            return begin + left
        left -= available
    raise ValueError(
        f"{duration} of business time after {start.isoformat()} runs past the end of calendar "
        f"{calendar.name} ({calendar.covers_until})"
    )


def business_time_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Business time from `start` to `end` (zero when end is not after start)."""
    start = _aware(start).astimezone(UTC)
    end = _aware(end).astimezone(UTC)
    total = timedelta(0)
    if end <= start:
        return total
    last = end.astimezone(calendar.zone()).date()
    for day in _days_from(calendar, start):
        if day > last:
            break
        window = calendar.window(day)
        if window is None:
            continue
        begin, finish = max(window[0], start), min(window[1], end)
        if finish > begin:
            total += finish - begin
    return total


def next_opening(calendar: BusinessCalendar, at: datetime) -> datetime:
    """`at` when the desk is open then, else when it next opens."""
    return add_business_time(calendar, at, timedelta(0))


# ------------------------------------------------------------ calendars


def weekdays(
    opens: time, closes: time, *, saturday: DayHours | None = None
) -> list[DayHours | None]:
    day = DayHours(opens=opens, closes=closes)
    return [day, day, day, day, day, saturday, None]


class CalendarSpec(StewardModel):
    """Where a calendar's closed days come from: the holidays library's
    country (and subdivision) and the site's own closures."""

    timezone: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    subdivision: str | None = None
    week: list[DayHours | None]
    closures: dict[date, str] = Field(default_factory=dict)


OFFICE_WEEK: Final = weekdays(time(9), time(18))
WAREHOUSE_WEEK: Final = weekdays(
    time(8), time(18), saturday=DayHours(opens=time(9), closes=time(13))
)

# The markets' customer-service desks (the order-review queue's calendars).
MARKET_CALENDARS: Final[dict[str, CalendarSpec]] = {
    "GB": CalendarSpec(timezone="Europe/London", country="GB", subdivision="ENG", week=OFFICE_WEEK),
    "FR": CalendarSpec(timezone="Europe/Paris", country="FR", week=OFFICE_WEEK),
    "IT": CalendarSpec(timezone="Europe/Rome", country="IT", week=OFFICE_WEEK),
    "DE": CalendarSpec(timezone="Europe/Berlin", country="DE", subdivision="BE", week=OFFICE_WEEK),
    "CH": CalendarSpec(timezone="Europe/Zurich", country="CH", subdivision="GE", week=OFFICE_WEEK),
    "US": CalendarSpec(
        timezone="America/New_York", country="US", subdivision="NY", week=OFFICE_WEEK
    ),
    "JP": CalendarSpec(timezone="Asia/Tokyo", country="JP", week=OFFICE_WEEK),
    "CN": CalendarSpec(timezone="Asia/Shanghai", country="CN", week=OFFICE_WEEK),
    "AE": CalendarSpec(
        timezone="Asia/Dubai",
        country="AE",
        # Monday to Friday since 2022, as the UAE's public sector.
        week=OFFICE_WEEK,
    ),
}


class Site(StewardModel):
    """A warehouse: its calendar, the market it serves and its CCTV retention."""

    site_id: str
    market: str
    calendar: CalendarSpec
    cctv_retention: timedelta = timedelta(days=30)
    camera_zones: frozenset[str] = frozenset(
        {"inbound", "storage", "picking", "packing", "outbound"}
    )


SITES: Final[dict[str, Site]] = {
    "LON1": Site(
        site_id="LON1",
        market="GB",
        calendar=CalendarSpec(
            timezone="Europe/London", country="GB", subdivision="ENG", week=WAREHOUSE_WEEK
        ),
        cctv_retention=timedelta(days=31),
    ),
    "PAR1": Site(
        site_id="PAR1",
        market="FR",
        calendar=CalendarSpec(timezone="Europe/Paris", country="FR", week=WAREHOUSE_WEEK),
        # CNIL's guidance: video surveillance kept no longer than a month.
        cctv_retention=timedelta(days=30),
    ),
    "MIL1": Site(
        site_id="MIL1",
        market="IT",
        calendar=CalendarSpec(timezone="Europe/Rome", country="IT", week=WAREHOUSE_WEEK),
        cctv_retention=timedelta(days=7),
    ),
    "NJ1": Site(
        site_id="NJ1",
        market="US",
        calendar=CalendarSpec(
            timezone="America/New_York", country="US", subdivision="NJ", week=WAREHOUSE_WEEK
        ),
        cctv_retention=timedelta(days=90),
    ),
}

# Markets whose coordinator tasks count their SLAs in business hours (the
# others keep wall-clock SLAs).
BUSINESS_HOURS_MARKETS: Final = frozenset({"GB", "FR", "IT", "DE", "CH"})

# How many years of closed days a calendar snapshot carries from its start.
CALENDAR_YEARS: Final = 2


# Public holidays of every configured calendar for these years, worked out
# once at import (about 50 ms).
PRECOMPUTED_YEARS: Final = range(2020, 2041)


def _public_holidays() -> dict[tuple[str, str | None], dict[date, str]]:
    """Every configured country's public holidays, worked out at import.

    The holidays library imports itself again at each call and names the days
    through gettext and the process locale. Inside a workflow that is refused
    by the sandbox, and rightly so (a locale is not deterministic): a return's
    exchange builds its replacement's review input, calendar included, inside
    the workflow, and its task failed on every attempt. Workflows import
    domain/ through the sandbox's pass-through, so this table is computed
    outside any workflow and only read there."""
    specs = [*MARKET_CALENDARS.values(), *(site.calendar for site in SITES.values())]
    table: dict[tuple[str, str | None], dict[date, str]] = {}
    for spec in specs:
        days = holidays.country_holidays(
            spec.country, subdiv=spec.subdivision, years=PRECOMPUTED_YEARS
        )
        table[(spec.country, spec.subdivision)] = {day: str(label) for day, label in days.items()}
    return table


_PUBLIC_HOLIDAYS: Final = _public_holidays()


def public_holidays(country: str, subdivision: str | None, years: list[int]) -> dict[date, str]:
    """The public holidays of `years`: from the import-time table for the
    configured calendars (the only ones workflows use), else from the library."""
    known = _PUBLIC_HOLIDAYS.get((country, subdivision))
    if known is not None:
        # A configured calendar never calls the library (it may run inside a
        # workflow): years past the table have no public holidays on record.
        return {day: label for day, label in known.items() if day.year in years}
    days = holidays.country_holidays(country, subdiv=subdivision, years=years)
    return {day: str(label) for day, label in days.items()}


def build_calendar(
    name: str, spec: CalendarSpec, *, starting: date, years: int = CALENDAR_YEARS
) -> BusinessCalendar:
    """The calendar from `starting`'s year for `years` years: public holidays
    from the holidays library, plus the spec's closures."""
    span = list(range(starting.year, starting.year + years))
    public = public_holidays(spec.country, spec.subdivision, span)
    closed: dict[date, str] = dict(sorted(public.items()))
    closed.update(spec.closures)
    return BusinessCalendar(
        name=name,
        timezone=spec.timezone,
        week=spec.week,
        closed_days=closed,
        covers_until=date(starting.year + years - 1, 12, 31),
    )


def calendar_for_site(site_id: str, *, starting: date) -> BusinessCalendar:
    site = SITES.get(site_id)
    if site is None:
        raise ValueError(f"site {site_id!r} is unknown (known: {', '.join(sorted(SITES))})")
    return build_calendar(f"site:{site_id}", site.calendar, starting=starting)


def calendar_for_market(market: str, *, starting: date) -> BusinessCalendar:
    spec = MARKET_CALENDARS.get(market)
    if spec is None:
        raise ValueError(
            f"market {market!r} has no calendar (known: {', '.join(sorted(MARKET_CALENDARS))})"
        )
    return build_calendar(f"market:{market}", spec, starting=starting)


def coordinator_calendar(market: str | None, *, starting: date) -> BusinessCalendar | None:
    """The market desk's calendar when the market counts its coordinator
    tasks' SLAs in business hours (BUSINESS_HOURS_MARKETS), else None:
    wall-clock. Workflows may call it: a configured calendar reads the
    import-time table of public holidays and never the holidays library."""
    if market is None or market not in BUSINESS_HOURS_MARKETS or market not in MARKET_CALENDARS:
        return None
    return calendar_for_market(market, starting=starting)


def sla_due(
    calendar: BusinessCalendar | None,
    start: datetime,
    *,
    business: timedelta,
    wall_clock: timedelta,
) -> datetime:
    """When a coordinator task opened at `start` is due: `business` of the
    calendar's business time, or `wall_clock` later without a calendar or past
    the calendar's end (a snapshot covers two years: a case still open after
    them falls back to wall-clock rather than failing its workflow)."""
    if calendar is None:
        return start + wall_clock
    try:
        return add_business_time(calendar, start, business)
    except ValueError:
        return start + wall_clock
