"""What a workflow run cost the server, read from its event history."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory

from bench.bare_types import LOCAL, REGULAR

# Marker name the SDK core gives a completed local activity.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass(frozen=True)
class HistoryProfile:
    events: int
    workflow_tasks: int
    activities: int
    local_activities: int
    timers: int
    search_attribute_upserts: int
    updates: int
    signals: int
    # REGULAR / LOCAL in the order the run scheduled them.
    steps: tuple[str, ...]
    by_type: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = list(self.steps)
        return data


def profile(history: WorkflowHistory) -> HistoryProfile:
    counts: Counter[EventType.ValueType] = Counter()
    steps: list[str] = []
    for event in history.events:
        counts[event.event_type] += 1
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            steps.append(REGULAR)
        elif (
            event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        ):
            steps.append(LOCAL)
    return HistoryProfile(
        events=len(history.events),
        workflow_tasks=counts[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        activities=steps.count(REGULAR),
        local_activities=steps.count(LOCAL),
        timers=counts[EventType.EVENT_TYPE_TIMER_STARTED],
        search_attribute_upserts=counts[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES],
        updates=counts[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED],
        signals=counts[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED],
        steps=tuple(steps),
        by_type={
            EventType.Name(kind).removeprefix("EVENT_TYPE_").lower(): n
            for kind, n in sorted(counts.items())
        },
    )


async def fetch_profile(handle: WorkflowHandle[Any, Any]) -> HistoryProfile:
    return profile(await handle.fetch_history())
