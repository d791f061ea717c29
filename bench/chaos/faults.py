"""The fault schedule of a chaos run, played against the stack.

- `kill -9` of a worker while a money movement is in flight: the simulated
  payment provider announces each call it is serving (activities/simulated.py:
  ObservedPaymentProvider); the first call of the aimed kind (capture or
  refund) found in flight picks the worker to kill. Whether the provider had
  already moved the money is read after the kill, when nothing can change
  it any more. The worker is started again a few seconds later.
- Temporal dev server restart (graceful stop, same SQLite file).
- PostgreSQL crash and restart (immediate shutdown, recovery on start).
- Provider faults: the windows of the plan, written once for every worker.
- A watchdog: a worker or the API that dies on its own is a finding; it is
  recorded and started again so the run can go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from activities.simulated import read_in_flight, write_fault_windows
from bench.chaos.plan import FaultEvent, FaultKind, Plan
from bench.chaos.stack import ChaosStack, ChildProcess

# How long a kill waits for a movement of its aimed kind, then of any kind.
AIM_S = 20.0
AIM_ANY_AFTER_S = 12.0


@dataclass
class FaultLog:
    counts: Counter[str] = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)
    unexpected_exits: list[str] = field(default_factory=list)

    def record(self, t: float, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        self.lines.append(f"{t:7.1f}s  {kind:<28} {detail}")


class Faults:
    def __init__(self, plan: Plan, stack: ChaosStack, log: FaultLog) -> None:
        self.plan = plan
        self.stack = stack
        self.log = log
        self.t0 = 0.0
        self._restarts: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def arm(self, t0: float) -> None:
        """Write the provider windows, in absolute time, for every worker."""
        self.t0 = t0
        wall0 = time.time() - (time.monotonic() - t0)
        write_fault_windows(self.stack.control_file, [w.absolute(wall0) for w in self.plan.windows])
        for window in self.plan.windows:
            if window.end < 1e8:
                self.log.counts[f"provider: {window.label}"] += 1

    async def run(self) -> None:
        try:
            for event in self.plan.faults:
                await asyncio.sleep(max(0.0, self.t0 + event.at - time.monotonic()))
                await self._play(event)
        finally:
            await asyncio.gather(*self._restarts, return_exceptions=True)

    async def _play(self, event: FaultEvent) -> None:
        try:
            if event.kind is FaultKind.KILL_WORKER:
                await self._kill(event)
            elif event.kind is FaultKind.RESTART_TEMPORAL:
                started = time.monotonic()
                await self.stack.restart_temporal(event.down_s)
                self.log.record(
                    self.now(),
                    "temporal restart",
                    f"down {time.monotonic() - started:.1f}s (graceful stop, same SQLite file)",
                )
            else:
                started = time.monotonic()
                await self.stack.restart_postgres(event.down_s)
                self.log.record(
                    self.now(),
                    "postgres crash-restart",
                    f"down {time.monotonic() - started:.1f}s (immediate shutdown, recovery)",
                )
        except Exception as exc:  # a fault that cannot be played is reported, not fatal
            self.log.record(self.now(), f"{event.kind} FAILED", f"{type(exc).__name__}: {exc}")

    async def _kill(self, event: FaultEvent) -> None:
        deadline = time.monotonic() + AIM_S
        any_after = time.monotonic() + AIM_ANY_AFTER_S
        while time.monotonic() < deadline:
            calls = [
                c
                for c in read_in_flight(self.stack.in_flight_dir)
                if self.stack.worker_by_pid(c.pid) is not None
            ]
            # "after": the provider has moved the money, its answer is held
            # back; "before": the call has reached it, nothing has moved yet.
            calls = [c for c in calls if c.effect_done == (event.moment == "after")]
            aimed = [c for c in calls if c.operation == event.target]
            if time.monotonic() > any_after:
                aimed = aimed or calls
            if aimed:
                call = aimed[0]
                worker = self.stack.worker_by_pid(call.pid)
                assert worker is not None
                await self.stack.kill_worker(worker)
                committed = await self._committed(call.idempotency_key)
                self.log.record(
                    self.now(),
                    f"kill -9 worker ({call.operation})",
                    f"{worker.name} pid {call.pid} during {call.idempotency_key}, provider "
                    + ("had moved the money" if committed else "had not moved it yet"),
                )
                moment = {True: "after", False: "before", None: "unknown: database down"}
                self.log.counts[f"kill -9 {moment[committed]} the provider moved the money"] += 1
                self._restart_later(worker, event.down_s)
                return
            await asyncio.sleep(0.05)
        # Nothing in flight: the fault still happens, unaimed.
        worker = next((w for w in self.stack.workers.values() if w.alive), None)
        if worker is None:
            return
        await self.stack.kill_worker(worker)
        self.log.record(
            self.now(), "kill -9 worker (unaimed)", f"{worker.name}: no money movement in flight"
        )
        self._restart_later(worker, event.down_s)

    async def _committed(self, key: str) -> bool | None:
        assert self.stack.pool is not None
        try:
            return bool(
                await self.stack.pool.fetchval(
                    "SELECT 1 FROM sim_payment_operations WHERE idempotency_key = $1", key
                )
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return None

    def _restart_later(self, worker: ChildProcess, down_s: float) -> None:
        async def restart() -> None:
            await asyncio.sleep(down_s)
            for marker in self.stack.in_flight_dir.glob(f"{worker.pid}-*.json"):
                marker.unlink(missing_ok=True)
            await self.stack.start_child(worker)

        task = asyncio.create_task(restart())
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def watchdog(self) -> None:
        """Restart a worker or the API that died on its own, and say so."""
        while True:
            await asyncio.sleep(1)
            for child in self.stack.children:
                if child.process is None or child.alive or child.expected_exit:
                    continue
                code = child.process.returncode
                self.log.unexpected_exits.append(
                    f"{self.now():.1f}s {child.name} exited with {code}; log {child.log_path}"
                )
                self.log.record(self.now(), "unexpected exit", f"{child.name} code {code}")
                child.expected_exit = True
                with contextlib.suppress(Exception):
                    await self.stack.start_child(child)
