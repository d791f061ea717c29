"""`python -m bench.chaos --profile faults|burst|long --seed N`: one chaos run.

Starts the real stack (bench/chaos/stack.py), plays the seeded load and fault
schedule (plan.py, load.py, faults.py), waits for the cases to settle
(bounded), checks the invariants from PostgreSQL and Temporal (checks.py),
prints the figures and PASS or FAIL, and exits 1 on any violation (2 when the
run itself could not finish). Everything is stopped at the end, also on a
failure, Ctrl-C, SIGTERM or the profile's time limit; the temp dir is removed
after a PASS and kept (its path printed) after a FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from bench.chaos.checks import (
    CLOSED,
    WAITING,
    Snapshot,
    Violation,
    read_store,
    read_temporal,
    run_checks,
)
from bench.chaos.faults import FaultLog, Faults
from bench.chaos.load import Load, LoadStats
from bench.chaos.plan import PROFILES, Plan, make_plan
from bench.chaos.stack import ChaosStack
from workers.logging import configure_logging

# Beyond the profile's limit, the backstop that kills everything.
BACKSTOP_S = 90


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


class Run:
    def __init__(self, plan: Plan, *, keep_dir: bool, log_level: str) -> None:
        self.plan = plan
        self.keep_dir = keep_dir
        self.stack = ChaosStack(log_level=log_level)
        self.stats = LoadStats()
        self.faults = FaultLog()
        self.timings: dict[str, float] = {}
        self.snapshot = Snapshot()
        self.violations: dict[str, list[Violation]] = {}
        self.error = ""
        self.burst = ""

    async def play(self) -> None:
        profile = self.plan.profile
        async with asyncio.timeout(profile.time_limit):
            async with self.stack as stack:
                self.timings["stack start"] = stack.startup_s
                print(
                    f"stack up in {stack.startup_s:.1f}s in {stack.root}: temporal "
                    f"{stack.temporal.target}, postgres {stack.postgres.dsn}, API "
                    f"{stack.api_url}, workers "
                    + ", ".join(f"{w.name} pid {w.pid}" for w in stack.workers.values()),
                    flush=True,
                )
                load = Load(self.plan, stack, self.stats)
                faults = Faults(self.plan, stack, self.faults)
                t0 = time.monotonic()
                faults.arm(t0)
                watchdog = asyncio.create_task(faults.watchdog())
                try:
                    await asyncio.gather(load.run(t0), faults.run())
                    self.timings["load"] = time.monotonic() - t0
                    started = time.monotonic()
                    await self._settle()
                    self.timings["settle"] = time.monotonic() - started
                finally:
                    watchdog.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watchdog
                started = time.monotonic()
                await self._check()
                self.timings["checks"] = time.monotonic() - started

    async def _settle(self) -> None:
        """Until every case is closed or waiting and no workflow has an
        activity pending, or the profile's bound."""
        stack = self.stack
        assert stack.pool is not None and stack.client is not None
        deadline = time.monotonic() + self.plan.profile.settle_timeout
        while time.monotonic() < deadline:
            try:
                snapshot = Snapshot()
                await read_store(stack.pool, snapshot)
                moving = [
                    c
                    for c in snapshot.cases
                    if c.process in CLOSED
                    and c.status not in CLOSED[c.process] | WAITING[c.process]
                ]
                workflows = await read_temporal(
                    stack.client, histories=False, query="ExecutionStatus = 'Running'"
                )
                busy = [w for w in workflows if w.pending_activities or w.workflow_task_attempt > 1]
                if not moving and not busy:
                    return
            except Exception as exc:  # a server still coming back: try again
                print(f"settle: {type(exc).__name__}: {exc}", flush=True)
            await asyncio.sleep(3)

    async def _check(self) -> None:
        stack = self.stack
        assert stack.pool is not None and stack.client is not None
        snapshot = self.snapshot
        await read_store(stack.pool, snapshot)
        snapshot.workflows = await read_temporal(stack.client)
        snapshot.expectations = self.stats.expectations
        snapshot.story_failures = self.stats.story_failures
        snapshot.story_workflows = self.stats.story_workflows
        for line in self.faults.unexpected_exits:
            snapshot.story_failures[f"process {line.split()[1]}"] = line
        self.violations = run_checks(snapshot)
        self._count_injected_faults()
        if self.plan.profile.burst and self.stats.qc_sent_at:
            first, last = min(self.stats.qc_sent_at), max(self.stats.qc_sent_at)
            row = await stack.pool.fetchrow(
                "SELECT count(*) AS n, extract(epoch FROM min(recorded_at)) AS first, "
                "extract(epoch FROM max(recorded_at)) AS last FROM payment_ledger "
                "WHERE kind = 'refund'"
            )
            self.burst = (
                f"{len(self.stats.qc_sent_at)} QC results sent within {last - first:.2f}s; "
                f"{row['n']} refunds recorded {float(row['first']) - first:.1f}s to "
                f"{float(row['last']) - first:.1f}s after the first"
                if row is not None and row["n"]
                else f"{len(self.stats.qc_sent_at)} QC results sent; no refund recorded"
            )

    def _count_injected_faults(self) -> None:
        """Provider faults the workers served, from their logs."""
        for worker in self.stack.workers.values():
            with contextlib.suppress(OSError):
                for line in worker.log_path.read_text(errors="replace").splitlines():
                    if '"sim_fault_injected"' not in line:
                        continue
                    with contextlib.suppress(ValueError):
                        entry = json.loads(line)
                        self.faults.counts[
                            f"provider calls hit: {entry['fault']} ({entry['system']})"
                        ] += 1

    @property
    def failed(self) -> bool:
        return bool(self.error) or any(self.violations.values())

    def report(self) -> str:
        plan, out = self.plan, []
        verdict = "FAIL" if self.failed else "PASS"
        out.append(f"\n## Chaos run: profile {plan.profile.name}, seed {plan.seed}: {verdict}\n")
        timings = ", ".join(f"{k} {v:.0f}s" for k, v in self.timings.items())
        out.append(f"Timings: {timings}\n")
        by_process: dict[str, Counter[str]] = defaultdict(Counter)
        for case in self.snapshot.cases:
            by_process[case.process][case.status] += 1
        rows = [
            (p, sum(c.values()), ", ".join(f"{s} {n}" for s, n in c.most_common()))
            for p, c in sorted(by_process.items())
        ]
        rows.append(("all", len(self.snapshot.cases), f"{len(plan.stories)} stories"))
        out.append(_table(("process", "cases", "final status"), rows) + "\n")
        fault_rows: list[tuple[str, object]] = sorted(self.faults.counts.items())
        fault_rows += [
            ("webhooks sent twice", self.stats.duplicates_sent),
            *(
                (f"  of which after the case ended, answered {code}", n)
                for code, n in sorted(self.stats.duplicates_after_close.items())
            ),
            ("webhooks out of order", self.stats.reordered),
            ("CCTV requests answered by the warehouse", self.stats.cctv_answered),
            ("API requests retried (5xx or refused)", sum(self.stats.retried.values())),
        ]
        out.append(_table(("fault", "count"), fault_rows) + "\n")
        if self.burst:
            out.append(f"Burst: {self.burst}\n")
        if self.faults.lines:
            out.append("```\n" + "\n".join(self.faults.lines) + "\n```\n")
        out.append(_table(("money", "ledger", "provider"), self._money()) + "\n")
        check_rows = [(name, len(v)) for name, v in self.violations.items()]
        out.append(_table(("check", "violations"), check_rows) + "\n")
        listed = [v for vs in self.violations.values() for v in vs]
        if listed:
            out.append("Violations:")
            for v in listed[:60]:
                out.append(f"- {v.check}: {', '.join(v.case_ids) or '-'}: {v.detail}")
            if len(listed) > 60:
                out.append(f"- ... and {len(listed) - 60} more")
            ids = sorted({i for v in listed for i in v.case_ids})
            out.append(f"\nCase ids: {' '.join(ids[:80])}{' ...' if len(ids) > 80 else ''}")
        if self.error:
            out.append(f"\nThe run did not finish: {self.error}")
        if self.failed:
            out.append(
                f"\nFAIL: seed {plan.seed}; again with `python -m bench.chaos --profile "
                f"{plan.profile.name} --seed {plan.seed}`; data kept in {self.stack.root}"
            )
        else:
            out.append("\nPASS")
        return "\n".join(out)

    def _money(self) -> list[tuple[str, object, object]]:
        snapshot = self.snapshot
        rows: list[tuple[str, object, object]] = []
        for kind in ("capture", "refund", "void"):
            rows.append(
                (
                    f"{kind}s",
                    sum(1 for m in snapshot.ledger if m.kind == kind),
                    sum(1 for m in snapshot.provider if m.kind == kind),
                )
            )
        for currency in sorted({m.currency for m in snapshot.ledger}):
            captured = sum(
                m.amount_minor
                for m in snapshot.ledger
                if m.currency == currency and m.kind == "capture"
            )
            refunded = sum(
                m.amount_minor
                for m in snapshot.ledger
                if m.currency == currency and m.kind == "refund"
            )
            provider_captured = sum(
                m.amount_minor
                for m in snapshot.provider
                if m.currency == currency and m.kind == "capture"
            )
            provider_refunded = sum(
                m.amount_minor
                for m in snapshot.provider
                if m.currency == currency and m.kind == "refund"
            )
            rows.append(
                (
                    f"{currency} captured / refunded (minor units)",
                    f"{captured} / {refunded}",
                    f"{provider_captured} / {provider_refunded}",
                )
            )
        return rows


async def _main(args: argparse.Namespace) -> int:
    # The figures are the output; the servers' and the pool's own lines are not.
    configure_logging("ERROR")
    profile = PROFILES[args.profile]
    plan = make_plan(profile, args.seed, datetime.now(UTC))
    print(
        f"chaos profile {profile.name}, seed {args.seed}: {len(plan.stories)} stories over "
        f"{profile.load_seconds:.0f}s, faults at "
        + (", ".join(f"{f.at:.0f}s {f.kind.value}" for f in plan.faults) or "none")
        + f"; time limit {profile.time_limit:.0f}s",
        flush=True,
    )
    run = Run(plan, keep_dir=args.keep_dir, log_level=args.log_level)
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, main.cancel)

    def backstop(*_: object) -> None:
        print(f"chaos: still running {BACKSTOP_S}s past the time limit; killing everything")
        run.stack.kill_everything_now()
        os._exit(2)

    signal.signal(signal.SIGALRM, backstop)
    signal.alarm(int(profile.time_limit) + BACKSTOP_S)
    started = time.monotonic()
    try:
        await run.play()
    except TimeoutError:
        run.error = f"time limit of {profile.time_limit:.0f}s reached"
    except asyncio.CancelledError:
        run.error = "interrupted"
    except Exception as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)
    run.timings["total"] = time.monotonic() - started
    print(run.report(), flush=True)
    if not run.failed and not args.keep_dir:
        run.stack.remove_dir()
    if run.error:
        return 2
    return 1 if run.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="faults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-dir", action="store_true", help="keep the temp dir after a PASS")
    parser.add_argument("--log-level", default="INFO", help="of the workers and the API")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        print("chaos: interrupted", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
