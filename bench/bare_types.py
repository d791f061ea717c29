"""The bench-only workflows' inputs and results (see bench/workflows.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

REGULAR = "activity"
LOCAL = "local"


@dataclass
class BareInput:
    # REGULAR / LOCAL, in the order the review runs them.
    steps: list[str] = field(default_factory=list)
    # Before the last step, upsert the search attributes a released review
    # ends with (started with the ones a review starts with): the bare
    # workflow plus the review's visibility writes, to size what those cost.
    publish_case: bool = False
    # The last regular step starts a second bare workflow that waits (started
    # as the release activity starts the order's fulfilment: its own id,
    # REJECT_DUPLICATE, the fulfilment's start search attributes): the bare
    # shape of a review whose release starts a second workflow.
    start_second: bool = False


@dataclass
class BareResult:
    activities: int
    local_activities: int


@dataclass
class BareDecision:
    decision: str
    actor: str
