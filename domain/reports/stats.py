"""The arithmetic every report shares. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from domain.business_hours import BusinessCalendar, calendar_for_market, calendar_for_site

# Task times of the service-level report are elapsed (wall-clock) hours: a
# task has no market or site of its own to take a calendar from.
CLOCK_NOTE = (
    "Times to first action and to resolution are elapsed (wall-clock) hours; the "
    "fraud review time and the ops desk's times are business hours."
)
BUSINESS_NOTE = (
    "Business hours: the opening hours and public holidays of the order's market "
    "(or the ops request's site) from domain/business_hours.py; {wall} measured on the "
    "wall clock because their market has no calendar."
)


@lru_cache(maxsize=128)
def _calendar(kind: str, key: str, year: int) -> BusinessCalendar | None:
    try:
        if kind == "site":
            return calendar_for_site(key, starting=date(year, 1, 1))
        return calendar_for_market(key, starting=date(year, 1, 1))
    except ValueError:
        return None


def business_hours_between(
    start: datetime, end: datetime, *, market: str | None = None, site: str | None = None
) -> tuple[float, bool]:
    """(hours, True) in the site's or else the market's business calendar;
    (elapsed hours, False) when neither has one."""
    for kind, key in (("site", site), ("market", market)):
        if key:
            calendar = _calendar(kind, key, start.year)
            if calendar is not None and end.date() <= calendar.covers_until:
                return _business_seconds(calendar, start, end) / 3600, True
    return hours_between(start, end), False


def _business_seconds(calendar: BusinessCalendar, start: datetime, end: datetime) -> float:
    """business_time_between's sum over the days from start to end only (it
    walks every day to the end of the calendar: 100k reviews took seconds)."""
    if end <= start:
        return 0.0
    zone = ZoneInfo(calendar.timezone)
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    total = 0.0
    while day <= last:
        window = calendar.window(day)
        if window is not None:
            begin, finish = max(window[0], start), min(window[1], end)
            if finish > begin:
                total += (finish - begin).total_seconds()
        day += timedelta(days=1)
    return total


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between the
    closest ranks (numpy's default); None for no values."""
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def rate(part: int, whole: int) -> float | None:
    """part / whole as a fraction rounded to 4 places; None when whole is 0
    (an empty period has no rate, not a rate of zero)."""
    return None if whole == 0 else round(part / whole, 4)


def hours_between(start: datetime, end: datetime) -> float:
    """Elapsed hours (see CLOCK_NOTE)."""
    return (end - start).total_seconds() / 3600


def local_day(moment: datetime, timezone: str) -> date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def days_of(period_from: datetime, period_to: datetime, timezone: str) -> list[date]:
    """Every local day the period touches, in order (the x axis of a trend)."""
    first = local_day(period_from, timezone)
    last = local_day(period_to - timedelta(microseconds=1), timezone)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def count_by(keys: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("<4h", timedelta(hours=4)),
    ("4-24h", timedelta(hours=24)),
    ("1-3d", timedelta(days=3)),
    ("3-7d", timedelta(days=7)),
)
OLDEST_BUCKET = ">7d"


def age_bucket(age: timedelta) -> str:
    for label, limit in AGE_BUCKETS:
        if age < limit:
            return label
    return OLDEST_BUCKET


def bucket_labels() -> list[str]:
    return [label for label, _ in AGE_BUCKETS] + [OLDEST_BUCKET]
