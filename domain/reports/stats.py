"""The arithmetic every report shares. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# Wall-clock hours: issue 17's business-hours calendar has not landed on main;
# every duration a report calls "business hours" says which clock it used.
CLOCK_NOTE = (
    "Review, response and resolution times are wall-clock hours: the business-hours "
    "calendar (issue 17) is not available yet."
)


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
