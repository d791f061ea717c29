"""Turn one test's recording into streams that two runs can compare.

What legitimately differs between two runs, and what becomes of it:

* Test-generated ids. The recorder seeds ``uuid.uuid4()`` per test, so the
  same test makes the same ids in both checkouts; still, every id the test
  was handed (the dashed form, any hex prefix of 8 characters or more, in
  either case, and ``uuid.int % 10**14``) is replaced by ``<id:N>``, N
  numbered by first appearance in a canonical walk (workflows sorted by their
  id-blind content). So a harness that draws its ids in another order
  still compares equal, as long as each id is used the same way.
* Run ids (server-made) become ``<run>``.
* Times: ISO-8601 date-times (any precision, any offset), ISO dates,
  ``12 May 2026`` dates, numbers that are epoch seconds or milliseconds
  within five years of the test's start, and durations with a fraction of a
  second (computed as deadline - now; whole-second durations such as
  ``PT4H`` are configuration and stay as they are). In the compared text
  each becomes ``<ts#k>`` (``<date#k>``, ``<epoch#k>``, ``<dur#k>``; k its
  place in the event); the values are compared beside it. Two times match
  when they are equal, or when their offsets from an anchor differ by no
  more than the tolerance plus what the printed form hides (a minute for
  ``%H:%M``); the anchors are the test's wall-clock start (for what the
  test built from ``datetime.now()``) and the workflow's start on the
  server's clock (for what the workflow built from ``workflow.now()``, even
  when the time-skipping server jumped ahead before the workflow started).
  Dates: the same number of days from the anchor's date. Durations: within
  the tolerance. A tolerance of None compares the placeholders only.
* Order across workflows: events are grouped by workflow id; the order
  within one workflow is kept for what the workflow issued (calls) and what
  reached it (inputs). What the worker saw (executions, outcomes) is
  compared as a multiset (executions) or a set (outcomes), without activity
  ids: two activities a workflow started together run, and are numbered, in
  either order.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_TIME_RE = re.compile(
    r"(?P<iso>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
    r"(?:Z|[+-]\d{2}:?\d{2}|\s?UTC)?)"
    r"|(?P<date>(?<!\d)\d{4}-\d{2}-\d{2}(?!\d))"
    rf"|(?P<long>(?<!\d)\d{{1,2}} (?:{_MONTHS}) \d{{4}}(?!\d))"
    # A duration with a fraction of a second was computed from a clock
    # (deadline - now); whole-second durations are configuration, kept as text.
    r"|(?P<dur>(?<![A-Za-z0-9])-?P(?:(?P<d>\d+)D)?T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?"
    r"(?P<s>\d+\.\d+)S(?![A-Za-z0-9]))"
)
_DASHED_RE = re.compile(
    r"(?i)(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])"
)
_HEX_RUN_RE = re.compile(r"(?i)(?<![0-9a-f])[0-9a-f]{8,}")
_STAMP_RE = re.compile(r"<(?:ts|date|epoch|dur)#(\d+)>")
_FIVE_YEARS = 5 * 366 * 86400
_DAY = 86400


@dataclass(frozen=True)
class Stamp:
    """A timestamp taken out of a payload."""

    kind: str  # "ts" (date-time), "date" (day precision), "epoch", "dur" (seconds)
    value: float  # seconds since the epoch, UTC (a duration: its seconds)
    precision: float  # seconds the printed form hides (60 for "%H:%M")
    t0: float  # wall-clock start of the test it was recorded in
    start: float | None  # server-clock start of the workflow it belongs to

    @property
    def offset(self) -> float:
        return self.value - self.t0

    def _days(self, anchor: float) -> int:
        start = datetime.fromtimestamp(anchor, UTC).date()
        return (datetime.fromtimestamp(self.value, UTC).date() - start).days

    def _anchors(self) -> list[float]:
        return [self.t0] if self.start is None else [self.t0, self.start]

    def close_to(self, other: Stamp, tolerance: float | None) -> bool:
        if tolerance is None or self.value == other.value:
            return True
        if self.kind != other.kind:
            return False
        if self.kind == "dur":
            return abs(self.value - other.value) <= tolerance
        # Relative to the test's wall-clock start (what the test built from
        # datetime.now()) or to the workflow's start on the server's clock
        # (what the workflow built from workflow.now(), even after the test
        # server skipped ahead before starting it).
        pairs = [(self.t0, other.t0)]
        if self.start is not None and other.start is not None:
            pairs.append((self.start, other.start))
        if self.kind == "date":
            return any(self._days(a) == other._days(b) for a, b in pairs)
        slack = tolerance + max(self.precision, other.precision)
        return any(abs((self.value - a) - (other.value - b)) <= slack for a, b in pairs)

    def render(self) -> str:
        if self.kind == "dur":
            return f"<~{_span(self.value, with_seconds=True)}>"
        anchor, name = (self.t0, "T0") if self.start is None else (self.start, "WF0")
        if self.kind == "date":
            return f"<{name}{self._days(anchor):+d}d>"
        return f"<{name}{_span(self.value - anchor)}>"


def _span(seconds: float, *, with_seconds: bool = False) -> str:
    total = round(seconds) if with_seconds else round(seconds / 60) * 60
    sign = "-" if total < 0 else "+"
    total = abs(total)
    days, rest = divmod(total, _DAY)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{sign}{days}d{hours:02d}h{minutes:02d}m"
    return out + (f"{secs:02d}s" if with_seconds else "")


@dataclass
class Event:
    kind: str
    label: str  # e.g. "local_activity record_transition"
    value: Any  # normalised JSON, placeholders in place of times
    stamps: list[Stamp]
    text: str = field(init=False)

    def __post_init__(self) -> None:
        self.text = json.dumps(self.value, sort_keys=True, ensure_ascii=False)

    def same_as(self, other: Event, tolerance: float | None) -> bool:
        return (
            self.text == other.text
            and len(self.stamps) == len(other.stamps)
            and all(
                a.close_to(b, tolerance) for a, b in zip(self.stamps, other.stamps, strict=True)
            )
        )

    def pretty(self) -> list[str]:
        text = json.dumps(self.value, sort_keys=True, indent=2, ensure_ascii=False)
        return _STAMP_RE.sub(lambda m: self.stamps[int(m.group(1)) - 1].render(), text).splitlines()


@dataclass
class Workflow:
    key: str  # canonical workflow id
    types: list[str]
    calls: list[Event]  # workflow side, in issue order
    executions: list[Event]  # activity side, sorted
    inputs: list[Event]  # what reached the workflow: its input, signals, updates
    outcomes: list[Event]  # what the activities answered, sorted like executions

    @property
    def finished(self) -> bool:
        """Whether the run's result was recorded (else the test ended first)."""
        return bool(self.calls) and self.calls[-1].kind == "result"


@dataclass
class TestBehaviour:
    nodeid: str
    outcome: str
    failure: str | None
    workflows: dict[str, Workflow]


class _Ids:
    """Finds the test's generated ids in a string and names them."""

    def __init__(self, hexes: list[str], run_ids: list[str]) -> None:
        self.hexes = [h.lower() for h in hexes]
        self.by_prefix: dict[str, list[int]] = {}
        for index, h in enumerate(self.hexes):
            self.by_prefix.setdefault(h[:8], []).append(index)
        self.dashed = {str(uuid.UUID(h)): i for i, h in enumerate(self.hexes)}
        self.modulo = {f"{int(h, 16) % 10**14:014d}": i for i, h in enumerate(self.hexes)}
        self.run_ids = set(run_ids)
        self.name: Callable[[int], str] = lambda _: "<id>"

    def _hex_run(self, match: re.Match[str]) -> str:
        run = match.group(0)
        lowered = run.lower()
        best: tuple[int, int] | None = None  # (length, index)
        for index in self.by_prefix.get(lowered[:8], []):
            h = self.hexes[index]
            length = 0
            while length < min(len(h), len(lowered)) and h[length] == lowered[length]:
                length += 1
            if best is None or length > best[0]:
                best = (length, index)
        if best is None:
            return run
        return self.name(best[1]) + run[best[0] :]

    def _dashed(self, match: re.Match[str]) -> str:
        text = match.group(0)
        if text.lower() in self.run_ids or text in self.run_ids:
            return "<run>"
        index = self.dashed.get(text.lower())
        return text if index is None else self.name(index)

    def mask(self, text: str) -> str:
        if not self.hexes and not self.run_ids:
            return text
        text = _DASHED_RE.sub(self._dashed, text)
        for digits, index in self.modulo.items():
            if digits in text:
                text = text.replace(digits, self.name(index))
        return _HEX_RUN_RE.sub(self._hex_run, text)


def _parse_time(match: re.Match[str]) -> tuple[str, float, float] | None:
    raw = match.group(0)
    try:
        if match.group("dur"):
            parts = [float(match.group(g) or 0) for g in ("d", "h", "m", "s")]
            seconds = parts[0] * _DAY + parts[1] * 3600 + parts[2] * 60 + parts[3]
            return "dur", -seconds if raw.startswith("-") else seconds, 0.0
        if match.group("iso"):
            text = raw.replace(" UTC", "+00:00").replace("UTC", "+00:00").replace("Z", "+00:00")
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            seconds = re.match(r"\d{2}:\d{2}(:\d{2})?", raw[11:])
            precision = 1.0 if seconds and seconds.group(1) else 60.0
            return "ts", parsed.timestamp(), precision
        if match.group("date"):
            parsed = datetime.fromisoformat(raw).replace(tzinfo=UTC)
        else:
            parsed = datetime.strptime(raw, "%d %B %Y").replace(tzinfo=UTC)
        return "date", parsed.timestamp(), float(_DAY)
    except ValueError:
        return None


class _Normaliser:
    def __init__(self, record: dict[str, Any]) -> None:
        self.t0: float = record["t0"]
        self.ids = _Ids(record.get("uuids", []), record.get("run_ids", []))
        self.start: float | None = None  # the workflow start of the event at hand

    def string(self, text: str, stamps: list[Stamp]) -> str:
        text = self.ids.mask(text)

        def replace(match: re.Match[str]) -> str:
            parsed = _parse_time(match)
            if parsed is None:
                return match.group(0)
            kind, value, precision = parsed
            stamps.append(Stamp(kind, value, precision, self.t0, self.start))
            return f"<{kind}#{len(stamps)}>"

        return _TIME_RE.sub(replace, text)

    def number(self, value: float, stamps: list[Stamp]) -> Any:
        for scale in (1.0, 1000.0):
            seconds = value / scale
            if abs(seconds - self.t0) < _FIVE_YEARS:
                stamps.append(Stamp("epoch", seconds, 1.0, self.t0, self.start))
                return f"<epoch#{len(stamps)}>"
        return value

    def value(self, value: Any, stamps: list[Stamp]) -> Any:
        if isinstance(value, str):
            return self.string(value, stamps)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            return self.number(value, stamps)
        if isinstance(value, list):
            return [self.value(v, stamps) for v in value]
        if isinstance(value, dict):
            out = {}
            for k in sorted(value):
                out[self.string(str(k), stamps)] = self.value(value[k], stamps)
            return out
        return value


_DROPPED = {"n", "side", "wf", "wf_type", "run", "wf_start"}
# Workflow-side events that are inputs (what the test sent), not behaviour.
INPUT_KINDS = {"workflow_input", "signal_received", "update_received"}


def _event(
    normaliser: _Normaliser, raw: dict[str, Any], starts: dict[str, float] | None = None
) -> Event:
    stamps: list[Stamp] = []
    normaliser.start = raw.get("wf_start") or (starts or {}).get(raw.get("run") or "")
    body = {k: v for k, v in raw.items() if k not in _DROPPED}
    value = normaliser.value(body, stamps)
    label = raw["kind"] + (f" {raw['type']}" if raw.get("type") else "")
    return Event(kind=raw["kind"], label=label, value=value, stamps=stamps)


def normalise(record: dict[str, Any]) -> TestBehaviour:
    normaliser = _Normaliser(record)
    grouped: dict[str, list[dict[str, Any]]] = {}
    starts: dict[str, float] = {}  # run id -> workflow start, for activity-side events
    for raw in record["events"]:
        grouped.setdefault(raw["wf"], []).append(raw)
        if raw.get("wf_start") and raw.get("run"):
            starts.setdefault(raw["run"], raw["wf_start"])

    # Pass 1, ids blind: a canonical order of workflows that does not depend on
    # which random id each one got.
    def blind_key(wf: str) -> tuple[str, str]:
        events = grouped[wf]
        return normaliser.ids.mask(wf), "\n".join(
            _event(normaliser, e, starts).text for e in events
        )

    order = sorted(grouped, key=blind_key)

    # Pass 2: name the ids by first appearance along that order.
    names: dict[int, str] = {}

    def name(index: int) -> str:
        if index not in names:
            names[index] = f"<id:{len(names) + 1}>"
        return names[index]

    normaliser.ids.name = name
    workflows: dict[str, Workflow] = {}
    for wf in order:
        key = normaliser.ids.mask(wf)
        events = grouped[wf]
        calls = [
            _event(normaliser, e, starts)
            for e in events
            if e["side"] == "workflow" and e["kind"] not in INPUT_KINDS
        ]
        inputs = [_event(normaliser, e, starts) for e in events if e["kind"] in INPUT_KINDS]
        # Worker side: a multiset. Two activities started together run and
        # get their ids in either order; the order that matters is the one
        # the workflow issued them in (calls).
        by_activity = sorted(
            (
                _event(normaliser, {k: v for k, v in e.items() if k != "activity_id"}, starts)
                for e in events
                if e["side"] == "activity"
            ),
            key=lambda e: (e.kind, e.label, e.text),
        )
        executions = [e for e in by_activity if not e.kind.endswith("_outcome")]
        # Outcomes as a set: how often an answer came is the workflow's doing
        # (executions); which answers the stand-ins gave is the test's.
        outcomes = list(
            {
                (e.kind, e.label, e.text): e for e in by_activity if e.kind.endswith("_outcome")
            }.values()
        )
        types = sorted({e.get("wf_type") or "?" for e in events})
        if key in workflows:  # two workflows only told apart by an id the test did not make
            key = f"{key} #{sum(1 for k in workflows if k.startswith(key))}"
        workflows[key] = Workflow(key, types, calls, executions, inputs, outcomes)
    return TestBehaviour(
        nodeid=record["nodeid"],
        outcome=record.get("outcome", "?"),
        failure=record.get("failure"),
        workflows=workflows,
    )


def load(path: str) -> dict[str, dict[str, Any]]:
    """Recordings by node id (the last one wins if a test ran twice)."""
    out: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                out[record["nodeid"]] = record
    return out
