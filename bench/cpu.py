"""Where the CPU went during a measured segment, read from /proc (Linux).

On a 2-core machine the worker, the Temporal server, PostgreSQL and the load
generator share the cores, so a throughput figure alone does not say what to
optimise. Each segment records the CPU seconds of every component, and of
everything else on the machine: other processes (a test suite running beside
the bench) make the figures noisy, and the report says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PROC = Path("/proc")
# The CPU of the whole machine minus that of the named components.
OTHER_PROCESSES = "other processes"


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces; everything after ")" is fixed.
    return raw.rsplit(")", 1)[1].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_cpu_seconds(pid: int) -> float:
    """CPU (user + system) of `pid` alone; 0 when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_seconds(pid: int, children: Mapping[int, list[int]] | None = None) -> float:
    """CPU of `pid`, its reaped children and its live descendants (PostgreSQL's backends)."""
    tree = children if children is not None else _children_map()
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        fields = _stat_fields(current)
        if fields is None:
            continue
        # Reaped children (exited backends) are folded into cutime/cstime.
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        total += ticks / _TICKS
        stack.extend(tree.get(current, []))
    return total


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores, no idle/iowait)."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()
    except FileNotFoundError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def pid_from_file(path: Path) -> int | None:
    """The first integer in a pid file (postmaster.pid, the dev server's server.pid)."""
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


@dataclass
class CpuSnapshot:
    by_component: dict[str, float]
    machine: float


@dataclass
class CpuMeter:
    """Snapshots the CPU of named processes and of the whole machine.

    `processes` are counted alone; `trees` with their descendants. The bench
    process is the parent of every other component, so it is never a tree.
    """

    processes: dict[str, int] = field(default_factory=dict)
    trees: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> CpuSnapshot:
        children = _children_map()
        by_component = {name: process_cpu_seconds(pid) for name, pid in self.processes.items()}
        by_component.update(
            {name: tree_cpu_seconds(pid, children) for name, pid in self.trees.items()}
        )
        return CpuSnapshot(by_component=by_component, machine=machine_cpu_seconds())

    @staticmethod
    def delta(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
        used = {
            name: max(0.0, after.by_component[name] - before.by_component.get(name, 0.0))
            for name in after.by_component
        }
        machine = max(0.0, after.machine - before.machine)
        used[OTHER_PROCESSES] = max(0.0, machine - sum(used.values()))
        return used
