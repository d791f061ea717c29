"""Small statistics for latency samples and throughput segments."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Sample:
    """Completions and latencies of one measured phase, possibly over several segments."""

    name: str
    completed: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    # CPU seconds used by each component (and by other processes) while it ran.
    cpu_s: dict[str, float] = field(default_factory=dict)

    def add_segment(self, elapsed_s: float, latencies_s: Sequence[float], failed: int) -> None:
        self.elapsed_s += elapsed_s
        self.latencies_s.extend(latencies_s)
        self.completed += len(latencies_s)
        self.failed += failed

    def add_cpu(self, used: dict[str, float]) -> None:
        for name, seconds in used.items():
            self.cpu_s[name] = self.cpu_s.get(name, 0.0) + seconds

    def cpu_per_100(self) -> dict[str, float]:
        """CPU seconds per 100 completed runs, by component."""
        if not self.completed:
            return {}
        return {name: seconds * 100 / self.completed for name, seconds in self.cpu_s.items()}

    @property
    def per_second(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else math.nan

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_s, 50) * 1000

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies_s, 95) * 1000

    def as_json(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed_s, 3),
            "per_second": _round(self.per_second, 2),
            "p50_ms": _round(self.p50_ms, 1),
            "p95_ms": _round(self.p95_ms, 1),
            "cpu_s": {name: round(seconds, 2) for name, seconds in self.cpu_s.items()},
            "cpu_s_per_100_runs": {
                name: round(seconds, 2) for name, seconds in self.cpu_per_100().items()
            },
        }


def _round(value: float, digits: int) -> float | None:
    return None if math.isnan(value) else round(value, digits)
