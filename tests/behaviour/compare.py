"""Prove that the workflows send the same payloads as at a base commit.

    .venv/bin/python -m tests.behaviour.compare                 # 48bc85a vs this work tree
    .venv/bin/python -m tests.behaviour.compare --tests returns --base HEAD
    .venv/bin/python -m tests.behaviour.compare --tests-from each
    .venv/bin/python -m tests.behaviour.compare --recordings base.jsonl new.jsonl

The base commit is exported with ``git archive`` into a temporary directory
(no worktree, nothing written into the repository). The workflow tests run
with the recorder (tests/behaviour/recorder.py, always this tree's copy,
loaded as the top-level module ``steward_behaviour_recorder``) once against
the base code and once against the code to check (by default this work
tree, uncommitted edits included); each run has its directory first on
PYTHONPATH and as working directory, and the comparison checks before each
run that ``workflows``, ``domain`` and ``tests`` come from where they
should rather than from the editable install.

Which tests (``--tests-from``):

* ``base`` (default): the base tree's tests/workflows run against both
  codes; the new side is a temporary directory holding a copy of the base
  tests and symlinks to everything else of the new tree. Same tests, two
  codes: a changed test (a stand-in that answers differently) cannot pass
  for a changed workflow, and the node ids match. Modules the code renamed
  and names the code moved are aliased for the old tests (``--alias``; the
  defaults cover what moved since 48bc85a: domain.disputes and
  REFUND_FROZEN_BY_DISPUTE). A base test that no longer runs against the
  new code is listed as not compared (a test file that does not import:
  all its tests, as "only in base").
* ``each``: every tree runs its own tests, matched by node id, or by the
  node id without its parameters when that is unambiguous. What the test
  fed in is compared too, and a test whose inputs differ is flagged.

Tests that differ are run again on both sides (``--reruns``): several of
the workflow tests are timing-dependent (a signal lands before or after an
activity completes, so the audit rows are grouped differently), and a test
counts as identical when any base run matches any new run.

Exit status: 0 every test compared and identical; 1 a difference; 2 no
difference, but some tests failed, timed out, were skipped or exist on one
side only (so those are not proven); 3 a run produced no recording at all.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.behaviour.normalise import Event, TestBehaviour, load, normalise

DEFAULT_BASE = "48bc85a"  # the last commit before the case-kernel refactor
PLUGIN_MODULE = "steward_behaviour_recorder"
# What the base tests import that the refactor moved (--tests-from base).
DEFAULT_ALIASES = (
    "domain.disputes=domain.chargeback",
    "domain.returns.REFUND_FROZEN_BY_DISPUTE=domain.payments.REFUND_FROZEN_BY_DISPUTE",
    "domain.deliveries.REFUND_FROZEN_BY_DISPUTE=domain.payments.REFUND_FROZEN_BY_DISPUTE",
)
# Streams that hold what the test fed in rather than what the workflow did.
TEST_STREAMS = {"inputs", "outcomes"}
HERE = Path(__file__).resolve().parent


def _repo_root() -> Path:
    return HERE.parent.parent


# ---------------------------------------------------------------------- running


@dataclass(frozen=True)
class Tree:
    """Where one side's pytest runs: the directory on PYTHONPATH and as cwd,
    and where its code (workflows, domain) and its tests must come from."""

    run_dir: Path
    code: Path
    tests: Path

    def describe(self) -> str:
        if self.code == self.run_dir and self.tests == self.run_dir:
            return str(self.run_dir)
        return f"code of {self.code}, tests of {self.tests} (in {self.run_dir})"


def _env(
    tree: Tree, plugin_dir: Path, recording: Path, options: argparse.Namespace
) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree.run_dir), str(plugin_dir)])
    env["STEWARD_RECORD_BEHAVIOUR"] = str(recording)
    env["STEWARD_RECORD_TEST_TIMEOUT"] = str(options.test_timeout)
    env["STEWARD_RECORD_MODULE_ALIASES"] = ",".join(options.alias)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _check_imports(tree: Tree, env: dict[str, str]) -> None:
    """The tree's modules must win over the editable install of /work/main."""
    probe = (
        "import workflows, domain, tests, " + PLUGIN_MODULE + "; "
        "print(workflows.__file__); print(domain.__file__); print(tests.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tree.run_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"cannot import the code under test in {tree.run_dir}:\n{out.stderr}")
    found = out.stdout.split()
    for line, root in zip(found, (tree.code, tree.code, tree.tests), strict=True):
        if not Path(line).resolve().is_relative_to(root.resolve()):
            raise SystemExit(f"{line} does not come from {root}: PYTHONPATH lost to the install")


def _run_side(
    name: str,
    tree: Tree,
    plugin_dir: Path,
    work: Path,
    selection: Sequence[str],
    options: argparse.Namespace,
) -> Path:
    recording = work / f"{name}.jsonl"
    log = work / f"{name}.log"
    env = _env(tree, plugin_dir, recording, options)
    _check_imports(tree, env)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["--continue-on-collection-errors"]  # one broken file spoils no other
    command += ["-p", PLUGIN_MODULE, *selection]
    started = time.monotonic()
    shown = " ".join(selection) if len(selection) <= 3 else f"{len(selection)} tests"
    print(f"[{name}] {tree.describe()}: pytest {shown}", flush=True)
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            command, cwd=tree.run_dir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    lines = [ln for ln in log.read_text(encoding="utf-8").splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(lines) if " in " in ln and ln[:1] != "="), "")
    print(
        f"[{name}] pytest exit {done.returncode} after {time.monotonic() - started:.0f} s: "
        f"{summary.strip()}",
        flush=True,
    )
    if not recording.exists() or recording.stat().st_size == 0:
        print("\n".join(lines[-30:]))
    else:
        errors = [ln for ln in lines if ln.startswith(("ERROR ", "E   "))]
        for line in list(dict.fromkeys(errors))[:12]:
            print(f"[{name}]   {line}")
    return recording


def _mixed(tests_from: Path, code_from: Path, into: Path) -> Tree:
    """A directory with the tests (and pytest settings) of one tree and
    everything else of another, by symlink."""
    into.mkdir(parents=True)
    shutil.copytree(
        tests_from / "tests", into / "tests", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(tests_from / "pyproject.toml", into / "pyproject.toml")
    for entry in code_from.iterdir():
        if entry.name.startswith(".") or entry.name in ("tests", "pyproject.toml"):
            continue
        (into / entry.name).symlink_to(entry)
    return Tree(run_dir=into, code=code_from, tests=into)


def _export(ref: str, into: Path) -> Path:
    repo = _repo_root()
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    into.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(repo), "archive", commit], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {ref} failed")
    print(f"[base] {ref} = {commit[:12]}, exported to {into}")
    return into


# -------------------------------------------------------------------- comparing


@dataclass
class Difference:
    nodeid: str
    workflow: str
    stream: str
    summary: str
    detail: list[str]


def _block(events: Sequence[Event], start: int) -> list[str]:
    lines: list[str] = []
    for offset, event in enumerate(events):
        lines.append(f"#{start + offset} {event.label}")
        lines.extend("    " + ln for ln in event.pretty())
    return lines


def _diff(a: list[str], b: list[str]) -> list[str]:
    return list(difflib.unified_diff(a, b, "base", "new", n=4, lineterm=""))


def _compare_stream(
    nodeid: str,
    wf: str,
    stream: str,
    base: list[Event],
    new: list[Event],
    tolerance: float | None,
) -> list[Difference]:
    matcher = difflib.SequenceMatcher(
        None, [e.text for e in base], [e.text for e in new], autojunk=False
    )
    found: list[Difference] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                a, b = base[i1 + k], new[j1 + k]
                if not a.same_as(b, tolerance):
                    found.append(
                        Difference(
                            nodeid,
                            wf,
                            stream,
                            f"#{i1 + k} {a.label}: a time differs by more than the tolerance",
                            _diff(_block([a], i1 + k), _block([b], j1 + k)),
                        )
                    )
            continue
        what = {"replace": "differs", "delete": "only in base", "insert": "only in new"}[tag]
        labels = sorted({e.label for e in base[i1:i2]} | {e.label for e in new[j1:j2]})
        where = f"#{i1}" if (i1, j1) == (i2 - 1, j2 - 1) or i1 == j1 else f"base #{i1} / new #{j1}"
        found.append(
            Difference(
                nodeid,
                wf,
                stream,
                f"{where} {what}: {', '.join(labels)}",
                _diff(_block(base[i1:i2], i1), _block(new[j1:j2], j1)),
            )
        )
    return found


def _cut(a: list[Event], a_done: bool, b: list[Event], b_done: bool) -> tuple[int, str | None]:
    """How much of two streams to compare when a run was still going at test end."""
    if a_done and b_done:
        return max(len(a), len(b)), None
    if (
        (not a_done and len(a) < len(b))
        or (not b_done and len(b) < len(a))
        or not (a_done or b_done)
    ):
        n = min(len(a), len(b))
        if n < max(len(a), len(b)):
            return n, f"still running at the end of the test; only the first {n} compared"
    return max(len(a), len(b)), None


def compare_tests(
    base: TestBehaviour, new: TestBehaviour, tolerance: float | None
) -> tuple[list[Difference], list[str]]:
    out: list[Difference] = []
    notes: list[str] = []
    for wf in sorted(set(base.workflows) | set(new.workflows)):
        a, b = base.workflows.get(wf), new.workflows.get(wf)
        if a is None or b is None:
            present = a or b
            assert present is not None
            side = "base" if a else "new"
            out.append(
                Difference(
                    base.nodeid,
                    wf,
                    "workflow",
                    f"workflow only in {side} ({', '.join(present.types)}, "
                    f"{len(present.calls)} calls)",
                    _block(present.calls, 0),
                )
            )
            continue
        if a.types != b.types:
            out.append(Difference(base.nodeid, wf, "workflow", f"type {a.types} -> {b.types}", []))
        for stream, xs, ys in (
            ("inputs", a.inputs, b.inputs),
            ("outcomes", a.outcomes, b.outcomes),
            ("calls", a.calls, b.calls),
            ("executions", a.executions, b.executions),
        ):
            n, note = _cut(xs, a.finished, ys, b.finished)
            if note:
                notes.append(f"[{wf}] {stream}: {note} (base {len(xs)}, new {len(ys)})")
            out += _compare_stream(base.nodeid, wf, stream, xs[:n], ys[:n], tolerance)
    return out, notes


class _Samples:
    """Every recording of every test, on each side, normalised once."""

    def __init__(self, tolerance: float | None) -> None:
        self.tolerance = tolerance
        self.same_tests = False  # both sides ran the same test files
        self.runs: dict[str, list[dict[str, dict[str, Any]]]] = {"base": [], "new": []}
        self._cache: dict[int, TestBehaviour] = {}

    def add(self, side: str, path: Path) -> None:
        self.runs[side].append(load(str(path)) if path.exists() else {})

    def passed(self, side: str, nodeid: str) -> list[dict[str, Any]]:
        return [
            run[nodeid]
            for run in self.runs[side]
            if nodeid in run and run[nodeid]["outcome"] == "passed"
        ]

    def behaviour(self, record: dict[str, Any]) -> TestBehaviour:
        key = id(record)
        if key not in self._cache:
            self._cache[key] = normalise(record)
        return self._cache[key]

    def differences(self, a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
        return compare_tests(self.behaviour(a), self.behaviour(b), self.tolerance)[0]

    def best(self, pair: Pair) -> tuple[list[Difference], list[str], str]:
        """The closest base/new pair of recordings of one test."""
        best: tuple[list[Difference], list[str], str] | None = None
        bases, news = self.passed("base", pair.base), self.passed("new", pair.new)
        for i, a in enumerate(bases):
            for j, b in enumerate(news):
                found, notes = compare_tests(self.behaviour(a), self.behaviour(b), self.tolerance)
                if best is None or len(found) < len(best[0]):
                    best = (found, notes, f"base run {i + 1} vs new run {j + 1}")
                if not found:
                    return best
        assert best is not None
        return best

    def variants(self, side: str, nodeid: str) -> tuple[int, int]:
        """(runs, distinct recordings) of one test on one side."""
        distinct: list[dict[str, Any]] = []
        records = self.passed(side, nodeid)
        for record in records:
            if not any(not self.differences(seen, record) for seen in distinct):
                distinct.append(record)
        return len(records), len(distinct)


@dataclass(frozen=True)
class Pair:
    base: str
    new: str

    @property
    def name(self) -> str:
        return self.new if self.base == self.new else f"{self.new}  (base: {self.base})"


def _bare(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


def pair_tests(
    base: dict[str, Any], new: dict[str, Any]
) -> tuple[list[Pair], list[str], list[str]]:
    """Tests matched by node id, else by node id without its parameters when
    that is unambiguous on both sides (a harness that stops parametrising a
    fixture turns test_x[world0] into test_x)."""
    pairs = [Pair(n, n) for n in sorted(set(base) & set(new))]
    rest_base = sorted(set(base) - set(new))
    rest_new = sorted(set(new) - set(base))
    by_bare_base: dict[str, list[str]] = {}
    by_bare_new: dict[str, list[str]] = {}
    for n in rest_base:
        by_bare_base.setdefault(_bare(n), []).append(n)
    for n in rest_new:
        by_bare_new.setdefault(_bare(n), []).append(n)
    for bare, names in by_bare_base.items():
        others = by_bare_new.get(bare, [])
        if len(names) == 1 and len(others) == 1:
            pairs.append(Pair(names[0], others[0]))
            rest_base.remove(names[0])
            rest_new.remove(others[0])
    return sorted(pairs, key=lambda p: p.new), rest_base, rest_new


@dataclass
class Verdict:
    compared: list[Pair]
    differing: dict[Pair, tuple[list[Difference], list[str], str]]
    notes: dict[Pair, list[str]]
    not_compared: list[str]
    only_base: list[str]
    only_new: list[str]
    events: int


def judge(samples: _Samples) -> Verdict:
    first_base, first_new = samples.runs["base"][0], samples.runs["new"][0]
    pairs, only_base, only_new = pair_tests(first_base, first_new)
    verdict = Verdict([], {}, {}, [], only_base, only_new, 0)
    for pair in pairs:
        a, b = first_base[pair.base], first_new[pair.new]
        if a["outcome"] != "passed" or b["outcome"] != "passed":
            why = []
            for side, rec in (("base", a), ("new", b)):
                if rec["outcome"] != "passed":
                    lines = (rec.get("failure") or "").strip().splitlines()
                    why.append(
                        f"{side} {rec['outcome']}" + (f": {lines[0][:200]}" if lines else "")
                    )
            verdict.not_compared.append(f"{pair.name}\n      " + "\n      ".join(why))
            continue
        verdict.compared.append(pair)
        verdict.events += len(a["events"])
        found, notes, which = samples.best(pair)
        if notes:
            verdict.notes[pair] = notes
        if found:
            verdict.differing[pair] = (found, notes, which)
        elif which != "base run 1 vs new run 1":
            verdict.notes.setdefault(pair, []).append(
                f"differed on the first runs (the test is timing-dependent); identical for {which}"
            )
    return verdict


def _runs(samples: _Samples, pair: Pair) -> str:
    parts = []
    for side, nodeid in (("base", pair.base), ("new", pair.new)):
        runs, distinct = samples.variants(side, nodeid)
        parts.append(f"{side}: {runs} run{'s' * (runs != 1)}, {distinct} distinct")
    return "; ".join(parts)


def report(samples: _Samples, verdict: Verdict, max_diffs: int, max_lines: int) -> int:
    total = len(verdict.compared)
    print()
    print(
        f"compared {total} tests ({verdict.events} recorded events on the base side): "
        f"{total - len(verdict.differing)} identical, {len(verdict.differing)} with differences"
    )
    shown = 0
    if verdict.differing:
        print()
        print(f"DIFFERENCES in {len(verdict.differing)} tests:")
        for pair, (found, _notes, which) in verdict.differing.items():
            print(f"  {pair.name}")
            print(f"      (closest: {which}; {_runs(samples, pair)})")
            if any(d.stream in TEST_STREAMS for d in found):
                print(
                    "      ! what reached the workflow differs (streams inputs/outcomes): "
                    + (
                        "the tests are the same, so the domain code they build inputs with "
                        "(models, parsers) changed; other differences here may follow from it"
                        if samples.same_tests
                        else "the test or its stand-ins changed, so other differences here "
                        "may be the test's doing"
                    )
                )
            for d in found:
                print(f"      [{d.workflow}] {d.stream}: {d.summary}")
        for found, _notes, _which in verdict.differing.values():
            for d in found:
                if shown >= max_diffs:
                    break
                shown += 1
                print()
                print("=" * 100)
                print(f"test:     {d.nodeid}")
                print(f"workflow: {d.workflow}   stream: {d.stream}")
                print(f"what:     {d.summary}")
                lines = d.detail[:max_lines]
                print("\n".join(lines))
                if len(d.detail) > len(lines):
                    print(f"... {len(d.detail) - len(lines)} more lines (--max-lines)")
        hidden = sum(len(f) for f, _, _ in verdict.differing.values()) - shown
        if hidden > 0:
            print("=" * 100)
            print(f"... {hidden} more differences not shown in full (--max-diffs)")
    renamed = [p for p in verdict.compared if p.base != p.new]
    if verdict.notes or renamed:
        print()
        print("NOTES (not differences):")
        if renamed:
            print(f"  {len(renamed)} tests matched by name without their parameters, e.g.")
            print(f"      {renamed[0].base} -> {renamed[0].new}")
        for pair, notes in verdict.notes.items():
            print(f"  {pair.name}")
            for note in notes:
                print(f"      {note}")
    if verdict.not_compared:
        print()
        print(f"NOT COMPARED, failed or skipped on a side ({len(verdict.not_compared)}):")
        for line in verdict.not_compared:
            print(f"  {line}")
    for title, names in (("ONLY IN BASE", verdict.only_base), ("ONLY IN NEW", verdict.only_new)):
        if names:
            print()
            print(f"{title} ({len(names)}), not compared:")
            for name in names:
                print(f"  {name}")
    print()
    if verdict.differing:
        print(f"RESULT: behaviour differs in {len(verdict.differing)} of {total} compared tests")
        return 1
    if verdict.not_compared or verdict.only_base or verdict.only_new or not total:
        print(
            f"RESULT: no difference in the {total} compared tests, but not every test was compared"
        )
        return 2
    print(f"RESULT: identical in all {total} tests")
    return 0


# -------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.behaviour.compare",
        description="Compare what the workflows send out at a base commit and in a tree.",
    )
    parser.add_argument(
        "--base", default=DEFAULT_BASE, help=f"base git ref (default {DEFAULT_BASE})"
    )
    parser.add_argument(
        "--base-tree", type=Path, help="use this checkout as the base instead of exporting --base"
    )
    parser.add_argument(
        "--new",
        type=Path,
        default=_repo_root(),
        help="tree to check (default: this repository's work tree, uncommitted edits included)",
    )
    parser.add_argument("--tests", metavar="PATTERN", help="passed to pytest -k")
    parser.add_argument(
        "--tests-from",
        choices=("base", "each"),
        default="base",
        help="base (default): the base tree's tests run against both trees' code, so "
        "a test change cannot pass for a behaviour change; each: every tree runs its "
        "own tests, matched by node id",
    )
    parser.add_argument(
        "--alias",
        action="append",
        default=list(DEFAULT_ALIASES),
        metavar="OLD=NEW",
        help="a module or module.name the base tests import that the new code moved, "
        "applied only where the old one is missing (defaults: "
        + ", ".join(DEFAULT_ALIASES)
        + "); repeatable",
    )
    parser.add_argument(
        "--test-timeout",
        type=float,
        default=90.0,
        help="seconds before the recorder cancels a hanging test (default 90; 0: never)",
    )
    parser.add_argument(
        "--paths",
        nargs="+",
        default=["tests/workflows"],
        help="test paths, relative to each tree (default tests/workflows)",
    )
    parser.add_argument(
        "--reruns",
        type=int,
        default=4,
        help="times the tests that differ are run again on both sides, to tell a "
        "timing-dependent test from a real difference (default 4; after the "
        "second, only tests whose runs disagree among themselves run again)",
    )
    parser.add_argument(
        "--rerun-limit",
        type=int,
        default=30,
        help="no reruns when more tests than this differ (default 30)",
    )
    parser.add_argument(
        "--time-tolerance",
        type=float,
        default=120.0,
        help="seconds by which two times may differ once anchored to their test's start "
        "or their workflow's start (default 120; negative: compare placeholders only)",
    )
    parser.add_argument("--max-diffs", type=int, default=12, help="differences shown in full")
    parser.add_argument("--max-lines", type=int, default=120, help="lines shown per difference")
    parser.add_argument(
        "--keep", type=Path, help="directory to keep the recordings and pytest logs in"
    )
    parser.add_argument(
        "--recordings",
        nargs=2,
        type=Path,
        metavar=("BASE", "NEW"),
        help="compare two existing recordings (.jsonl), run nothing",
    )
    args = parser.parse_args(argv)
    samples = _Samples(None if args.time_tolerance < 0 else args.time_tolerance)

    if args.recordings:
        samples.add("base", args.recordings[0])
        samples.add("new", args.recordings[1])
        if not samples.runs["base"][0] or not samples.runs["new"][0]:
            print("an empty recording: nothing to compare")
            return 3
        return report(samples, judge(samples), args.max_diffs, args.max_lines)

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="steward-behaviour-"))
    try:
        plugin_dir = work / "plugin"
        plugin_dir.mkdir()
        shutil.copy(HERE / "recorder.py", plugin_dir / f"{PLUGIN_MODULE}.py")
        base_dir = args.base_tree.resolve() if args.base_tree else _export(args.base, work / "base")
        new_dir = args.new.resolve()
        trees = {"base": Tree(base_dir, base_dir, base_dir)}
        if args.tests_from == "base":
            trees["new"] = _mixed(base_dir, new_dir, work / "new-code-base-tests")
            samples.same_tests = True
        else:
            trees["new"] = Tree(new_dir, new_dir, new_dir)
        selection = list(args.paths) + (["-k", args.tests] if args.tests else [])
        for side in ("base", "new"):
            samples.add(side, _run_side(side, trees[side], plugin_dir, work, selection, args))
        if not samples.runs["base"][0] or not samples.runs["new"][0]:
            print("a run left no recording (see the pytest output above): nothing compared")
            return 3
        verdict = judge(samples)
        for round_no in range(2, args.reruns + 2):
            # From the third run on, a test whose runs gave one recording per
            # side every time is settled: only the ones that vary run again.
            again = [
                pair
                for pair in verdict.differing
                if round_no <= 3
                or samples.variants("base", pair.base)[1] > 1
                or samples.variants("new", pair.new)[1] > 1
            ]
            if not again:
                break
            if len(again) > args.rerun_limit:
                print(f"{len(again)} tests differ: more than --rerun-limit, no reruns")
                break
            print(f"{len(again)} tests differ; running them again on both sides (round {round_no})")
            for side in ("base", "new"):
                nodeids = [pair.base if side == "base" else pair.new for pair in again]
                samples.add(
                    side,
                    _run_side(f"{side}-{round_no}", trees[side], plugin_dir, work, nodeids, args),
                )
            verdict = judge(samples)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for path in work.glob("*.jsonl"):
                shutil.copy(path, args.keep / path.name)
            for path in work.glob("*.log"):
                shutil.copy(path, args.keep / path.name)
            print(f"recordings and pytest logs kept in {args.keep}")
        status = report(samples, verdict, args.max_diffs, args.max_lines)
        print(f"(took {time.monotonic() - started:.0f} s)")
        return status
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
