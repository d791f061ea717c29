"""Fault windows switched from outside the worker (activities/simulated.py:
FaultControl), as the chaos run (bench/chaos) uses them."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
import structlog

from activities.ports import PortTimeoutError, PortUnavailableError, RateLimitedError
from activities.simulated import (
    Fault,
    FaultControl,
    FaultPlan,
    FaultWindow,
    ObservedPaymentProvider,
    read_in_flight,
    write_fault_windows,
)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def window(**fields: object) -> FaultWindow:
    base: dict[str, object] = {"start": 1_000.0, "end": 1_010.0, "systems": ["payments"]}
    return FaultWindow.from_json({**base, **fields})


def test_a_window_applies_to_its_systems_and_only_while_open(tmp_path: Path) -> None:
    clock = Clock(999.0)
    control = FaultControl(tmp_path / "faults.json", clock=clock)
    write_fault_windows(control.path, [window(fault="http_500")])
    payments = FaultPlan(name="payments", control=control)
    warehouse = FaultPlan(name="warehouse", control=control)

    assert payments.next_fault() is Fault.OK  # not open yet
    clock.now = 1_000.0
    assert payments.next_fault() is Fault.HTTP_500
    assert warehouse.next_fault() is Fault.OK
    with pytest.raises(PortUnavailableError):
        payments.fail_before_effect(payments.next_fault(), "payment provider", "capture")
    clock.now = 1_010.0
    assert payments.next_fault() is Fault.OK  # closed


def test_every_system_and_a_rate(tmp_path: Path) -> None:
    control = FaultControl(tmp_path / "faults.json", clock=Clock())
    write_fault_windows(
        control.path, [window(systems=["*"], fault="timeout_after_commit", rate=0.5)]
    )
    plan = FaultPlan(name="carrier", control=control, seed=3)
    drawn = [plan.next_fault() for _ in range(400)]
    hits = drawn.count(Fault.TIMEOUT_AFTER_COMMIT)
    assert 150 < hits < 250 and set(drawn) == {Fault.OK, Fault.TIMEOUT_AFTER_COMMIT}
    with pytest.raises(PortTimeoutError, match="went through"):
        plan.fail_after_effect(Fault.TIMEOUT_AFTER_COMMIT, "carrier", "book")


def test_scripted_faults_still_come_first(tmp_path: Path) -> None:
    control = FaultControl(tmp_path / "faults.json", clock=Clock())
    write_fault_windows(control.path, [window(fault="http_500")])
    plan = FaultPlan(faults=["ok"], name="payments", control=control)
    assert plan.next_fault() is Fault.OK
    assert plan.next_fault() is Fault.HTTP_500


def test_a_429_window_sets_the_retry_after(tmp_path: Path) -> None:
    control = FaultControl(tmp_path / "faults.json", clock=Clock())
    write_fault_windows(control.path, [window(fault="http_429", retry_after_s=7)])
    plan = FaultPlan(name="payments", control=control, retry_after=timedelta(seconds=1))
    with pytest.raises(RateLimitedError) as raised:
        plan.fail_before_effect(plan.next_fault(), "payment provider", "refund")
    assert raised.value.retry_after == timedelta(seconds=7)


async def test_latency_and_answer_delay_windows(tmp_path: Path) -> None:
    control = FaultControl(tmp_path / "faults.json", clock=Clock())
    write_fault_windows(control.path, [window(latency_ms=60, answer_delay_ms=40)])
    plan = FaultPlan(latency_ms=5_000, name="payments", control=control)
    started = time.monotonic()
    await plan.delay()  # the window's fixed latency replaces the plan's 5 s
    await plan.answer_delay()
    assert 0.09 <= time.monotonic() - started < 1.0
    quiet = FaultPlan(name="warehouse", control=control)
    started = time.monotonic()
    await quiet.delay()
    await quiet.answer_delay()
    assert time.monotonic() - started < 0.05


def test_the_file_is_reread_when_it_changes_and_bad_files_mean_no_windows(
    tmp_path: Path,
) -> None:
    control = FaultControl(tmp_path / "faults.json", clock=Clock())
    plan = FaultPlan(name="payments", control=control)
    assert plan.next_fault() is Fault.OK  # no file yet
    write_fault_windows(control.path, [window(fault="http_500")])
    assert plan.next_fault() is Fault.HTTP_500
    control.path.write_text(json.dumps({"windows": [{"start": 1}]}))
    os.utime(control.path, ns=(1, 1))  # a new stamp even within the clock's resolution
    assert plan.next_fault() is Fault.OK
    write_fault_windows(control.path, [])
    assert control.windows() == ()


async def test_overlapping_windows_each_setting_from_the_first_that_has_it(
    tmp_path: Path,
) -> None:
    control = FaultControl(tmp_path / "faults.json", clock=Clock())
    write_fault_windows(
        control.path,
        [
            window(systems=["*"], latency_ms=0, retry_after_s=3),
            window(fault="http_429", retry_after_s=9, answer_delay_ms=50),
            window(fault="http_500", latency_ms=5_000),
        ],
    )
    plan = FaultPlan(name="payments", control=control)
    assert plan.next_fault() is Fault.HTTP_429
    with pytest.raises(RateLimitedError) as raised:
        plan.fail_before_effect(Fault.HTTP_429, "payment provider", "capture")
    assert raised.value.retry_after == timedelta(seconds=3)
    started = time.monotonic()
    await plan.delay()  # 0 ms from the first window, not 5 s from the third
    await plan.answer_delay()
    assert 0.04 <= time.monotonic() - started < 1.0


def test_named_windows_log_what_they_inject(tmp_path: Path) -> None:
    control = FaultControl(tmp_path / "faults.json", clock=Clock())
    write_fault_windows(
        control.path,
        [window(fault="http_500", label="outage"), window(systems=["warehouse"], fault="http_429")],
    )
    with structlog.testing.capture_logs() as logs:
        assert FaultPlan(name="payments", control=control).next_fault() is Fault.HTTP_500
        assert FaultPlan(name="warehouse", control=control).next_fault() is Fault.HTTP_429
    assert [(e["event"], e["system"], e["fault"], e["window"]) for e in logs] == [
        ("sim_fault_injected", "payments", "http_500", "outage")
    ]


def test_a_window_rate_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        window(fault="http_500", rate=1.5)


class _Inner:
    name = "simulated"

    def __init__(self, plan: FaultPlan, seen: list[list[str]], control: FaultControl) -> None:
        self.plan = plan
        self.seen = seen
        self.control = control

    async def _answer(self, key: str) -> str:
        calls = read_in_flight(self.control.in_flight_dir)
        # Announced, and not yet marked done: the provider is still working.
        assert not any(c.effect_done for c in calls)
        self.seen.append([c.idempotency_key for c in calls])
        return f"ref-{key}"

    async def capture(self, *, idempotency_key: str, **_: object) -> str:
        return await self._answer(idempotency_key)

    async def void(self, *, idempotency_key: str, **_: object) -> str:
        return await self._answer(idempotency_key)

    async def refund(self, *, idempotency_key: str, **_: object) -> str:
        return await self._answer(idempotency_key)


async def test_payment_calls_are_announced_while_in_flight(tmp_path: Path) -> None:
    control = FaultControl(tmp_path / "faults.json")
    seen: list[list[str]] = []
    inner = _Inner(FaultPlan(name="payments", control=control), seen, control)
    provider = ObservedPaymentProvider(inner, control)  # type: ignore[arg-type]
    args = {"authorisation_ref": "auth-1", "amount_minor": 100, "currency": "EUR"}

    assert await provider.capture(idempotency_key="review:1/capture", **args) == (
        "ref-review:1/capture"
    )
    assert await provider.refund(idempotency_key="return:1/refund-1", **args)
    assert await provider.void(idempotency_key="review:2/void", **args)

    assert seen == [["review:1/capture"], ["return:1/refund-1"], ["review:2/void"]]
    assert read_in_flight(control.in_flight_dir) == []
    (call,) = await _one_in_flight(provider, control)
    assert call.pid == os.getpid() and call.operation == "refund"
    assert call.effect_done  # the inner provider answered; the answer is held back


async def _one_in_flight(provider: ObservedPaymentProvider, control: FaultControl) -> list:  # type: ignore[type-arg]
    """The marker as another process sees it, while a refund waits for its answer."""
    write_fault_windows(
        control.path,
        [window(start=0, end=time.time() + 60, answer_delay_ms=300)],
    )
    call = asyncio.create_task(
        provider.refund(
            idempotency_key="return:2/refund-1",
            authorisation_ref="auth-2",
            amount_minor=1,
            currency="EUR",
        )
    )
    await asyncio.sleep(0.1)
    found = read_in_flight(control.in_flight_dir)
    assert [c.path.name.endswith(".json") for c in found] == [True]
    await call
    return found
