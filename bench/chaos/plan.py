"""The seeded plan of a chaos run: what upstream systems send, and when the
faults strike.

`make_plan(profile, seed, now)` is pure: the same profile and seed give the
same stories (orders, returns, parcels, disputes, every decision and every
duplicated or reordered webhook) and the same fault schedule, in seconds from
the start of the load. Only the timestamps inside the orders follow `now`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from activities.simulated import Fault, FaultWindow
from domain.orders import AvsResult, CvvResult, Order
from domain.returns import Resolution, manual_qc_reasons, returned_value_minor
from starters.returns_simulator import ReturnScenario, plan_returns
from starters.simulator import generate_traffic


class Story(StrEnum):
    """One upstream story; each drives one or more Steward cases."""

    # An order review; a risky one waits for a coordinator's decision.
    REVIEW = "review"
    # A captured order comes back: label, scans, the 3PL's QC, the refund
    # (manual QC and finance approval when the case asks for them).
    RETURN = "return"
    # The carrier fails to deliver: the customer answers, a coordinator
    # decides, the parcel comes back and is refunded, or is reshipped.
    FAILED_DELIVERY = "failed_delivery"
    # A return and a Stripe dispute on the same order: the refund is frozen
    # while the dispute is open; a coordinator accepts the dispute.
    DISPUTE = "dispute"
    # A lost parcel: a carrier claim (with the warehouse's CCTV clip) and the
    # failed delivery that refunds the customer meanwhile.
    CLAIM = "claim"


class FaultKind(StrEnum):
    KILL_WORKER = "kill_worker"
    RESTART_TEMPORAL = "restart_temporal"
    RESTART_POSTGRES = "restart_postgres"


@dataclass(frozen=True)
class StoryPlan:
    story_id: str
    kind: Story
    start_at: float
    order: Order
    # A manual review: approve or decline.
    review_decision: str = "approve"
    # Returns (RETURN, DISPUTE): what comes back and what the 3PL says.
    rma_id: str = ""
    return_scenario: ReturnScenario | None = None
    # Manual QC: confirm first choice, or a partial refund, or send it back.
    qc_decision: str = "first_choice"
    # FAILED_DELIVERY: the customer's option and the coordinator's decision.
    remedy: str = "refund"
    # Carrier events as EasyPost (signed) or in Steward's own format.
    easypost: bool = False
    # Webhooks sent twice (by step name), and whether scans arrive out of order.
    duplicate: frozenset[str] = frozenset()
    reorder: bool = False
    # DISPUTE: the Stripe dispute id and the coordinator's answer.
    dispute_id: str = ""


@dataclass(frozen=True)
class FaultEvent:
    at: float
    kind: FaultKind
    # KILL_WORKER: the money movement to aim at ("capture", "refund", "any"),
    # and when: as soon as the call reaches the provider ("before" it moves
    # the money) or once the provider has committed and holds its answer back
    # ("after").
    target: str = "any"
    moment: str = "before"
    # How long the process stays down.
    down_s: float = 3.0


@dataclass(frozen=True)
class ProviderWindow:
    """A FaultWindow in seconds from the start of the load."""

    start: float
    end: float
    systems: tuple[str, ...]
    label: str
    fault: Fault | None = None
    rate: float = 1.0
    latency_ms: int | None = None
    answer_delay_ms: int = 0
    retry_after_s: float | None = None

    def absolute(self, t0: float) -> FaultWindow:
        return FaultWindow(
            start=t0 + self.start,
            end=t0 + self.end,
            systems=frozenset(self.systems),
            fault=self.fault,
            rate=self.rate,
            latency_ms=self.latency_ms,
            answer_delay_ms=self.answer_delay_ms,
            retry_after_s=self.retry_after_s,
            label="" if self.end >= FOREVER else self.label,
        )


@dataclass(frozen=True)
class Profile:
    name: str
    stories: dict[Story, int]
    # Stories start spread over this many seconds.
    load_seconds: float
    kills: int = 0
    temporal_restarts: int = 0
    postgres_restarts: int = 0
    # Rounds of provider faults: 429 with Retry-After, 500, timeout after
    # commit, a latency spike past the activity timeout.
    provider_fault_rounds: int = 0
    # The payment provider's latency for the whole run, before and after the
    # effect (the answer delay makes a kill land after the commit half the time).
    payment_latency_ms: int = 0
    payment_answer_delay_ms: int = 0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    # BURST: every QC result of the returns is sent at once.
    burst: bool = False
    # Bounded waits: one step of a story, the settling after the load, the run.
    step_timeout: float = 150.0
    settle_timeout: float = 180.0
    time_limit: float = 600.0


PROFILES: dict[str, Profile] = {
    # CI: every fault kind once or twice, about three minutes.
    "faults": Profile(
        name="faults",
        stories={
            Story.REVIEW: 14,
            Story.RETURN: 10,
            Story.FAILED_DELIVERY: 8,
            Story.DISPUTE: 3,
            Story.CLAIM: 3,
        },
        load_seconds=75,
        kills=2,
        temporal_restarts=1,
        postgres_restarts=1,
        provider_fault_rounds=1,
        payment_latency_ms=600,
        payment_answer_delay_ms=600,
        duplicate_rate=0.10,
        reorder_rate=0.15,
        step_timeout=150,
        settle_timeout=150,
        time_limit=480,
    ),
    # Issue 13's refund burst: 40 returns whose QC results arrive together,
    # provider latency 1.5 s, no faults.
    "burst": Profile(
        name="burst",
        stories={Story.RETURN: 40},
        load_seconds=20,
        payment_latency_ms=1500,
        burst=True,
        step_timeout=150,
        settle_timeout=150,
        time_limit=420,
    ),
    # The long run: >= 200 cases, >= 5 aimed kills, 2 Temporal restarts, 1
    # PostgreSQL restart, provider faults in three rounds.
    "long": Profile(
        name="long",
        stories={
            Story.REVIEW: 50,
            Story.RETURN: 34,
            Story.FAILED_DELIVERY: 26,
            Story.DISPUTE: 6,
            Story.CLAIM: 6,
        },
        load_seconds=300,
        kills=6,
        temporal_restarts=2,
        postgres_restarts=1,
        provider_fault_rounds=3,
        payment_latency_ms=600,
        payment_answer_delay_ms=600,
        duplicate_rate=0.10,
        reorder_rate=0.15,
        step_timeout=240,
        settle_timeout=300,
        time_limit=1500,
    ),
}


@dataclass(frozen=True)
class Plan:
    profile: Profile
    seed: int
    stories: list[StoryPlan]
    faults: list[FaultEvent]
    windows: list[ProviderWindow] = field(default_factory=list)

    @property
    def load_end(self) -> float:
        ends = [s.start_at for s in self.stories] + [f.at for f in self.faults]
        ends += [w.end for w in self.windows if w.end < 1e8]
        return max(ends, default=0.0)


# The payment provider's FaultPlan name (workers/activities.py).
PAYMENTS = "payments"
FOREVER = 1e9
# The refund and capture activities time out after 30 s (workflows/case.py).
SPIKE_MS = 35_000


def _orders(seed: int, count: int, now: datetime) -> list[Order]:
    """Legitimate orders of the simulator's traffic (starters/simulator.py)."""
    return [o.order for o in generate_traffic(seed, count, now, rates={}).orders]


def _risky(order: Order) -> Order:
    """The card's address and security code do not match: a coordinator's case."""
    payment = order.payment.model_copy(
        update={"avs_result": AvsResult.MISMATCH, "cvv_result": CvvResult.MISMATCH}
    )
    return order.model_copy(update={"payment": payment})


def _shipped_back(scenario: ReturnScenario) -> bool:
    return scenario.fate == "returned" and scenario.qc is not None


def _refunds_unattended(scenario: ReturnScenario) -> bool:
    """A return that refunds with no person involved: the 3PL's grade stands
    (domain.returns.manual_qc_reasons) and the refund is under the finance
    threshold."""
    request = scenario.request
    # Items plus shipping: at least what a full return refunds.
    value = returned_value_minor(request) + request.order.shipping_minor
    return (
        _shipped_back(scenario)
        and scenario.qc is not None
        and request.resolution is Resolution.REFUND
        and not manual_qc_reasons(request, scenario.qc)
        and value <= request.policy.finance_threshold_minor
    )


def make_plan(profile: Profile, seed: int, now: datetime) -> Plan:
    rng = random.Random(f"chaos/{profile.name}/{seed}")
    kinds = [k for k, n in profile.stories.items() for _ in range(n)]
    rng.shuffle(kinds)
    clean = _orders(seed, 4 * len(kinds) + 20, now)
    returns = plan_returns(seed, clean, now, requested_by="chaos")
    by_order = {s.request.order.order_id: s for s in returns}

    stories: list[StoryPlan] = []
    spacing = profile.load_seconds / max(1, len(kinds))
    clean_iter = iter(clean)

    def next_return(wanted: Callable[[ReturnScenario], bool]) -> tuple[Order, ReturnScenario]:
        for order in clean_iter:
            scenario = by_order[order.order_id]
            if wanted(scenario):
                return order, scenario
        raise ValueError(f"profile {profile.name}: not enough orders for its returns")

    for number, kind in enumerate(kinds, start=1):
        start_at = round((number - rng.random()) * spacing, 2)
        story_id = f"{profile.name[0]}{number:03d}"
        dup = frozenset(
            step for step in _WEBHOOK_STEPS[kind] if rng.random() < profile.duplicate_rate
        )
        reorder = rng.random() < profile.reorder_rate
        if kind is Story.REVIEW:
            order = next(clean_iter)
            if rng.random() < 0.5:
                order = _risky(order)
            stories.append(
                StoryPlan(
                    story_id,
                    kind,
                    start_at,
                    order,
                    review_decision=rng.choice(["approve", "approve", "decline"]),
                    duplicate=dup,
                )
            )
        elif kind in (Story.RETURN, Story.DISPUTE):
            # The burst and the frozen refund need returns no person stops.
            unattended = profile.burst or kind is Story.DISPUTE
            order, scenario = next_return(_refunds_unattended if unattended else _shipped_back)
            stories.append(
                StoryPlan(
                    story_id,
                    kind,
                    start_at,
                    order,
                    rma_id=scenario.request.rma_id,
                    return_scenario=scenario,
                    qc_decision=rng.choice(["first_choice", "first_choice", "return_to_customer"]),
                    duplicate=dup,
                    reorder=reorder,
                    dispute_id=f"dp_chaos{seed}x{number:04d}" if kind is Story.DISPUTE else "",
                )
            )
        else:
            stories.append(
                StoryPlan(
                    story_id,
                    kind,
                    start_at,
                    next(clean_iter),
                    remedy="refund" if kind is Story.CLAIM else rng.choice(["refund", "reship"]),
                    easypost=rng.random() < 0.5,
                    duplicate=dup,
                    reorder=reorder,
                )
            )
    stories.sort(key=lambda s: (s.start_at, s.story_id))
    return Plan(
        profile=profile,
        seed=seed,
        stories=stories,
        faults=_fault_schedule(profile, rng),
        windows=_provider_windows(profile, rng),
    )


# The webhooks each story sends that may be duplicated.
_WEBHOOK_STEPS: dict[Story, tuple[str, ...]] = {
    Story.REVIEW: ("start", "decision"),
    Story.RETURN: ("start", "in_transit", "delivered", "qc", "qc_decision", "finance"),
    Story.DISPUTE: ("start", "in_transit", "delivered", "qc", "dispute", "dispute_closed"),
    Story.FAILED_DELIVERY: ("shipment", "failed", "reply", "decision", "received", "delivered"),
    Story.CLAIM: ("shipment", "lost", "cctv", "reply", "decision", "outcome"),
}


def _fault_schedule(profile: Profile, rng: random.Random) -> list[FaultEvent]:
    """Faults spread over the middle of the load, at least 8 s apart, in a
    seeded order; kills alternate their aim between captures and refunds, and
    between before and after the provider moved the money."""
    kinds = (
        [FaultKind.KILL_WORKER] * profile.kills
        + [FaultKind.RESTART_TEMPORAL] * profile.temporal_restarts
        + [FaultKind.RESTART_POSTGRES] * profile.postgres_restarts
    )
    rng.shuffle(kinds)
    if not kinds:
        return []
    first, last = 0.2 * profile.load_seconds, 0.95 * profile.load_seconds
    step = (last - first) / max(1, len(kinds) - 1) if len(kinds) > 1 else 0.0
    events: list[FaultEvent] = []
    kills = 0
    for index, kind in enumerate(kinds):
        at = round(first + index * step + rng.uniform(-0.15, 0.15) * step, 2)
        if kind is FaultKind.KILL_WORKER:
            target = ("capture", "refund")[kills % 2]
            moment = ("after", "before", "before", "after")[kills % 4]
            kills += 1
            events.append(
                FaultEvent(at, kind, target=target, moment=moment, down_s=rng.uniform(2, 5))
            )
        else:
            events.append(FaultEvent(at, kind, down_s=rng.uniform(2, 5)))
    for earlier, later in itertools.pairwise(events):
        if later.at - earlier.at < 8:
            raise ValueError(f"profile {profile.name}: faults closer than 8 s; lengthen the load")
    return events


def _provider_windows(profile: Profile, rng: random.Random) -> list[ProviderWindow]:
    windows: list[ProviderWindow] = []
    if profile.payment_latency_ms or profile.payment_answer_delay_ms:
        windows.append(
            ProviderWindow(
                0,
                FOREVER,
                (PAYMENTS,),
                "payment provider latency",
                latency_ms=profile.payment_latency_ms,
                answer_delay_ms=profile.payment_answer_delay_ms,
            )
        )
    rounds = profile.provider_fault_rounds
    if not rounds:
        return windows
    # Four kinds per round, in the slots between 10 % and 90 % of the load.
    width = 0.8 * profile.load_seconds / (4 * rounds)
    labels: list[str] = []
    for _ in range(rounds):
        batch = ["http_429", "http_500", "timeout_after_commit", "latency_spike"]
        rng.shuffle(batch)
        labels += batch
    faults: list[ProviderWindow] = []
    for index, label in enumerate(labels):
        start = round(0.1 * profile.load_seconds + index * width, 2)
        end = round(start + 0.7 * width, 2)
        if label == "http_429":
            window = ProviderWindow(
                start, end, (PAYMENTS,), label, Fault.HTTP_429, rate=0.5, retry_after_s=2.0
            )
        elif label == "http_500":
            # Every simulated system answers 500 to half its calls.
            window = ProviderWindow(start, end, ("*",), label, Fault.HTTP_500, rate=0.5)
        elif label == "timeout_after_commit":
            window = ProviderWindow(
                start, end, (PAYMENTS,), label, Fault.TIMEOUT_AFTER_COMMIT, rate=0.4
            )
        else:
            # A few seconds: every payment call it catches outlasts its timeout.
            end = round(start + min(6.0, 0.6 * width), 2)
            window = ProviderWindow(start, end, (PAYMENTS,), label, latency_ms=SPIKE_MS)
        faults.append(window)
    # Fault windows first: their settings win over the baseline latency.
    return faults + windows
