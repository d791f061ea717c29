"""The bench-only workflows' inputs and results (see bench/workflows.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

REGULAR = "activity"
LOCAL = "local"


@dataclass
class BareInput:
    # REGULAR / LOCAL, in the order the review runs them.
    steps: list[str] = field(default_factory=list)


@dataclass
class BareResult:
    activities: int
    local_activities: int


@dataclass
class BareDecision:
    decision: str
    actor: str
