"""The chaos run's seeded plan (bench/chaos/plan.py): the same seed gives the
same load and the same fault schedule; the profiles hold what they promise."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from bench.chaos.plan import FOREVER, PROFILES, FaultKind, Plan, Story, make_plan
from domain.returns import Resolution, manual_qc_reasons

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
# The Steward cases each story drives (bench/chaos/load.py).
CASES_PER_STORY = {
    Story.REVIEW: 1,
    Story.RETURN: 2,
    Story.FAILED_DELIVERY: 2,
    Story.DISPUTE: 3,
    Story.CLAIM: 3,
}


def shape(plan: Plan) -> list[tuple[object, ...]]:
    """Everything but the timestamps inside the orders."""
    return [
        (
            s.story_id,
            s.kind,
            s.start_at,
            s.order.order_id,
            s.order.payment.amount_minor,
            s.order.payment.avs_result,
            s.review_decision,
            s.rma_id,
            s.qc_decision,
            s.remedy,
            s.easypost,
            s.duplicate,
            s.reorder,
            s.dispute_id,
        )
        for s in plan.stories
    ]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_same_seed_gives_the_same_load_and_faults(profile: str) -> None:
    first = make_plan(PROFILES[profile], 7, NOW)
    again = make_plan(PROFILES[profile], 7, NOW)
    assert first == again
    # Started an hour later: the same stories and schedule, orders placed later.
    later = make_plan(PROFILES[profile], 7, NOW + timedelta(hours=1))
    assert shape(later) == shape(first)
    assert (later.faults, later.windows) == (first.faults, first.windows)
    assert later.stories[0].order.placed_at == first.stories[0].order.placed_at + timedelta(hours=1)


def test_another_seed_gives_another_run() -> None:
    one, two = (make_plan(PROFILES["faults"], seed, NOW) for seed in (1, 2))
    assert shape(one) != shape(two)
    assert [f.at for f in one.faults] != [f.at for f in two.faults]


def test_the_faults_profile_injects_every_kind() -> None:
    plan = make_plan(PROFILES["faults"], 1, NOW)
    kinds = [f.kind for f in plan.faults]
    assert kinds.count(FaultKind.KILL_WORKER) == 2
    kills = {(f.target, f.moment) for f in plan.faults if f.kind is FaultKind.KILL_WORKER}
    assert kills == {("capture", "after"), ("refund", "before")}
    assert kinds.count(FaultKind.RESTART_TEMPORAL) == kinds.count(FaultKind.RESTART_POSTGRES) == 1
    assert {w.label for w in plan.windows if w.end < FOREVER} == {
        "http_429",
        "http_500",
        "timeout_after_commit",
        "latency_spike",
    }
    spike = next(w for w in plan.windows if w.label == "latency_spike")
    assert spike.latency_ms is not None and spike.latency_ms > 30_000  # the activity timeout
    assert {s.kind for s in plan.stories} == set(Story)
    assert any(s.duplicate for s in plan.stories) and any(s.reorder for s in plan.stories)
    times = [f.at for f in plan.faults]
    assert times == sorted(times) and min(b - a for a, b in itertools.pairwise(times)) >= 8


def test_the_burst_is_forty_unattended_refunds_at_1_5_s() -> None:
    plan = make_plan(PROFILES["burst"], 1, NOW)
    assert plan.faults == [] and len(plan.stories) == 40
    assert {s.kind for s in plan.stories} == {Story.RETURN}
    for story in plan.stories:
        scenario = story.return_scenario
        assert scenario is not None and scenario.qc is not None
        assert scenario.request.resolution is Resolution.REFUND
        assert manual_qc_reasons(scenario.request, scenario.qc) == []
    (latency,) = plan.windows
    assert latency.latency_ms == 1500 and latency.end >= FOREVER


def test_the_long_profile_is_as_big_as_issue_13_asks() -> None:
    plan = make_plan(PROFILES["long"], 1, NOW)
    cases = sum(CASES_PER_STORY[s.kind] for s in plan.stories)
    kinds = [f.kind for f in plan.faults]
    assert cases >= 200
    assert kinds.count(FaultKind.KILL_WORKER) >= 5
    assert kinds.count(FaultKind.RESTART_TEMPORAL) >= 2
    assert kinds.count(FaultKind.RESTART_POSTGRES) == 1
