"""The invariants a chaos run checks at the end, from PostgreSQL and Temporal.

Each check is a pure function of a `Snapshot` (rows read from the case
table, the task table, the payment ledger, the simulated provider's record,
the audit log, and every workflow Temporal knows), returning the violations
it finds. `collect` reads the snapshot; `CHECKS` runs them all.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import asyncpg
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowExecutionStatus

from bench.chaos.load import Expectation

# Per process: the statuses that close a case, and those a case may rest in
# at the end of a run because it waits for a person, the customer, an outside
# system or a durable timer (days away). Anything else is a case in motion.
CLOSED: dict[str, frozenset[str]] = {
    "order-review": frozenset({"released", "cancelled"}),
    "return": frozenset(
        {
            "rejected",
            "refunded",
            "exchanged",
            "store_credited",
            "returned_to_customer",
            "sent_to_repair",
            "quarantined",
            "refund_declined",
            "refund_failed",
            "cancelled",
            "expired",
            "lost_in_transit",
        }
    ),
    "failed-delivery": frozenset({"delivered", "refunded", "closed"}),
    "carrier-claim": frozenset({"approved", "rejected", "no_response", "withdrawn"}),
    "chargeback": frozenset({"won", "lost", "expired", "accepted"}),
}
WAITING: dict[str, frozenset[str]] = {
    "order-review": frozenset({"awaiting_review", "awaiting_customer"}),
    "return": frozenset(
        {
            "label_issued",
            "in_transit",
            "received",
            "manual_qc",
            "awaiting_finance",
            "refund_frozen",
            "awaiting_customer",
        }
    ),
    "failed-delivery": frozenset(
        {
            "awaiting_customer",
            "awaiting_decision",
            "risk_review",
            "reshipped",
            "awaiting_return",
            "refund_frozen",
        }
    ),
    "carrier-claim": frozenset({"gathering_evidence", "filed"}),
    "chargeback": frozenset(
        {"open", "gathering_evidence", "awaiting_coordinator", "submitted", "under_review"}
    ),
}
# The case shows its money moved: a refund paid, a capture taken, a void done.
MONEY_OUTCOMES: dict[tuple[str, str], frozenset[str]] = {
    ("return", "refund"): frozenset({"refunded", "exchanged"}),
    ("failed-delivery", "refund"): frozenset({"refunded"}),
    ("order-review", "capture"): frozenset({"released"}),
    ("order-review", "void"): frozenset({"cancelled"}),
}
# Workflow-task failures that are not a bug: a signal that raced a
# completing task, a sticky queue reset by a restarted worker.
BENIGN_TASK_FAILURES = frozenset(
    {
        WorkflowTaskFailedCause.Name(
            WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
        ),
        WorkflowTaskFailedCause.Name(
            WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_STICKY_TASK_QUEUE
        ),
    }
)
WORKFLOW_OK = frozenset({"RUNNING", "COMPLETED", "CONTINUED_AS_NEW"})
# What the server puts in place of a failure over its size limit.
OVERSIZED_FAILURE = "Failure exceeds size limit."


@dataclass(frozen=True)
class CaseRow:
    workflow_id: str
    process: str
    case_id: str
    status: str


@dataclass(frozen=True)
class OpenTask:
    task_id: str
    workflow_id: str
    process: str
    case_id: str


@dataclass(frozen=True)
class Movement:
    """A payment ledger row, or an operation in the simulated provider's record."""

    idempotency_key: str
    kind: str
    amount_minor: int
    currency: str
    provider_reference: str
    # The ledger knows the order; the provider knows the authorisation.
    order_id: str = ""
    authorisation_ref: str = ""

    @property
    def workflow_id(self) -> str:
        return self.idempotency_key.rsplit("/", 1)[0]


@dataclass(frozen=True)
class Authorisation:
    authorisation_ref: str
    captured_minor: int
    refunded_minor: int


@dataclass(frozen=True)
class AuditDuplicate:
    workflow_id: str
    action: str
    count: int


@dataclass(frozen=True)
class PendingActivity:
    activity_type: str
    attempt: int
    last_failure: str = ""


@dataclass(frozen=True)
class WorkflowRow:
    workflow_id: str
    workflow_type: str
    status: str  # RUNNING, COMPLETED, FAILED, TERMINATED, TIMED_OUT, CANCELED...
    pending_activities: tuple[PendingActivity, ...] = ()
    workflow_task_attempt: int = 0
    # "cause: message" of each WorkflowTaskFailed event in the history.
    task_failures: tuple[str, ...] = ()
    # Activity failures the server replaced for being too large (their
    # reason lost), in the history and pending.
    oversized_failures: int = 0


@dataclass
class Snapshot:
    cases: list[CaseRow] = field(default_factory=list)
    open_tasks: list[OpenTask] = field(default_factory=list)
    ledger: list[Movement] = field(default_factory=list)
    provider: list[Movement] = field(default_factory=list)
    authorisations: list[Authorisation] = field(default_factory=list)
    audit_entry_id_unique: bool = True
    audit_duplicates: list[AuditDuplicate] = field(default_factory=list)
    workflows: list[WorkflowRow] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    story_failures: dict[str, str] = field(default_factory=dict)
    story_workflows: dict[str, list[str]] = field(default_factory=dict)

    def case(self, workflow_id: str) -> CaseRow | None:
        return self._cases().get(workflow_id)

    def _cases(self) -> dict[str, CaseRow]:
        return {c.workflow_id: c for c in self.cases}


@dataclass(frozen=True)
class Violation:
    check: str
    case_ids: tuple[str, ...]
    detail: str


Check = Callable[[Snapshot], list[Violation]]


def _v(check: str, ids: Iterable[str], detail: str) -> Violation:
    return Violation(check, tuple(sorted(set(ids))), detail)


# -- cases --------------------------------------------------------------------


def check_settled(s: Snapshot) -> list[Violation]:
    """Every case is closed or legitimately waiting."""
    out = []
    for case in s.cases:
        closed, waiting = CLOSED.get(case.process), WAITING.get(case.process)
        if closed is None or waiting is None:
            continue  # not a case process this run knows
        if case.status not in closed | waiting:
            out.append(_v("settled", [case.workflow_id], f"still {case.status}"))
    return out


def check_expectations(s: Snapshot) -> list[Violation]:
    """Each case of a story ended where the story's decisions lead."""
    out = []
    for expected in s.expectations:
        case = s.case(expected.workflow_id)
        status = case.status if case else "missing"
        if status not in expected.allowed:
            out.append(
                _v(
                    "expected_outcome",
                    [expected.workflow_id],
                    f"story {expected.story_id}: {status}, expected "
                    f"{' or '.join(sorted(expected.allowed))}",
                )
            )
    return out


def check_stories(s: Snapshot) -> list[Violation]:
    """Every story could be played to its end."""
    return [
        _v("story", s.story_workflows.get(story_id, [story_id]), f"story {story_id}: {reason}")
        for story_id, reason in sorted(s.story_failures.items())
    ]


# -- Temporal -----------------------------------------------------------------


def check_workflows(s: Snapshot) -> list[Violation]:
    """No failed, terminated, timed-out or cancelled workflow; none stuck
    retrying an activity; no failing workflow task, now or in the history."""
    out = []
    for wf in s.workflows:
        if wf.status not in WORKFLOW_OK:
            out.append(_v("workflow_status", [wf.workflow_id], f"{wf.workflow_type} {wf.status}"))
        for activity in wf.pending_activities:
            out.append(
                _v(
                    "stuck",
                    [wf.workflow_id],
                    f"{activity.activity_type} pending, attempt {activity.attempt}"
                    + (f": {activity.last_failure[:200]}" if activity.last_failure else ""),
                )
            )
        if wf.workflow_task_attempt > 1:
            out.append(
                _v(
                    "failing_workflow_task",
                    [wf.workflow_id],
                    f"workflow task at attempt {wf.workflow_task_attempt}",
                )
            )
        bad = [f for f in wf.task_failures if f.split(":", 1)[0] not in BENIGN_TASK_FAILURES]
        if bad:
            out.append(_v("workflow_task_failed", [wf.workflow_id], f"{len(bad)} x {bad[0][:200]}"))
    return out


def check_bounded_errors(s: Snapshot) -> list[Violation]:
    """No activity error so large the server dropped it ("Failure exceeds
    size limit."): errors leaving activities are bounded, the reason kept."""
    return [
        _v(
            "bounded_errors",
            [wf.workflow_id],
            f"{wf.oversized_failures} activity failure(s) replaced by {OVERSIZED_FAILURE!r}",
        )
        for wf in s.workflows
        if wf.oversized_failures
    ]


# -- money --------------------------------------------------------------------


def check_captures(s: Snapshot) -> list[Violation]:
    """At most one capture per order (ledger) and per authorisation (provider)."""
    out = []
    per_order = Counter(m.order_id for m in s.ledger if m.kind == "capture")
    for order_id, n in sorted(per_order.items()):
        if n > 1:
            ids = [m.workflow_id for m in s.ledger if m.order_id == order_id]
            out.append(
                _v("captures_per_order", ids, f"order {order_id}: {n} captures in the ledger")
            )
    per_auth = Counter(m.authorisation_ref for m in s.provider if m.kind == "capture")
    for ref, n in sorted(per_auth.items()):
        if n > 1:
            ids = [m.workflow_id for m in s.provider if m.authorisation_ref == ref]
            out.append(_v("captures_per_order", ids, f"authorisation {ref}: {n} captures"))
    return out


def check_refund_keys(s: Snapshot) -> list[Violation]:
    """At most one refund per operation key, in the ledger and at the provider."""
    out = []
    for side, rows in (("ledger", s.ledger), ("provider", s.provider)):
        for key, n in sorted(
            Counter(m.idempotency_key for m in rows if m.kind == "refund").items()
        ):
            if n > 1:
                out.append(
                    _v("refunds_per_key", [key.rsplit("/", 1)[0]], f"{side}: {n} refunds for {key}")
                )
    return out


def check_refunded_le_captured(s: Snapshot) -> list[Violation]:
    """Never more refunded than captured, per order and per authorisation."""
    out = []
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for m in s.ledger:
        totals[m.order_id][m.kind] += m.amount_minor
    for order_id, sums in sorted(totals.items()):
        if sums["refund"] > sums["capture"]:
            ids = [m.workflow_id for m in s.ledger if m.order_id == order_id]
            out.append(
                _v(
                    "refunded_le_captured",
                    ids,
                    f"order {order_id}: refunded {sums['refund']} > captured {sums['capture']}",
                )
            )
    for auth in s.authorisations:
        if auth.refunded_minor > auth.captured_minor:
            out.append(
                _v(
                    "refunded_le_captured",
                    [auth.authorisation_ref],
                    f"provider {auth.authorisation_ref}: refunded {auth.refunded_minor} > "
                    f"captured {auth.captured_minor}",
                )
            )
    return out


def check_ledger_matches_provider(s: Snapshot) -> list[Violation]:
    """The ledger and the provider's record hold the same movements."""
    out = []
    ledger = {m.idempotency_key: m for m in s.ledger}
    provider = {m.idempotency_key: m for m in s.provider}
    for key in sorted(provider.keys() - ledger.keys()):
        m = provider[key]
        out.append(
            _v(
                "ledger_matches_provider",
                [m.workflow_id],
                f"{m.kind} {m.amount_minor} {m.currency} {key} at the provider, not in the ledger",
            )
        )
    for key in sorted(ledger.keys() - provider.keys()):
        m = ledger[key]
        out.append(
            _v(
                "ledger_matches_provider",
                [m.workflow_id],
                f"{m.kind} {key} in the ledger, unknown to the provider",
            )
        )
    for key in sorted(ledger.keys() & provider.keys()):
        mine, theirs = ledger[key], provider[key]
        # A void releases the whole authorisation whatever amount was asked.
        same_amount = mine.kind == "void" or mine.amount_minor == theirs.amount_minor
        if (
            mine.kind != theirs.kind
            or not same_amount
            or mine.currency != theirs.currency
            or mine.provider_reference != theirs.provider_reference
        ):
            out.append(
                _v(
                    "ledger_matches_provider",
                    [mine.workflow_id],
                    f"{key}: ledger {mine.kind} {mine.amount_minor} {mine.provider_reference}, "
                    f"provider {theirs.kind} {theirs.amount_minor} {theirs.provider_reference}",
                )
            )
    return out


def check_money_outcomes(s: Snapshot) -> list[Violation]:
    """A case whose money moved shows it (no refund_failed for a paid
    refund), and a case that shows money moved has the movement."""
    out = []
    cases = s._cases()
    moved: dict[str, set[str]] = defaultdict(set)
    for m in s.provider:
        moved[m.workflow_id].add(m.kind)
        case = cases.get(m.workflow_id)
        if case is None:
            continue
        shows = MONEY_OUTCOMES.get((case.process, m.kind))
        if shows is not None and case.status not in shows:
            out.append(
                _v(
                    "money_outcome_shown",
                    [m.workflow_id],
                    f"{m.kind} of {m.amount_minor} {m.currency} paid ({m.provider_reference}) "
                    f"but the case is {case.status}",
                )
            )
    for case in s.cases:
        for (process, kind), shows in MONEY_OUTCOMES.items():
            if (
                case.process == process
                and case.status in shows
                and kind not in moved[case.workflow_id]
            ):
                # A return refunds or exchanges: either movement shows the outcome.
                if case.process == "order-review" and case.status == "cancelled":
                    continue  # a void that failed (expired) still cancels
                out.append(
                    _v(
                        "money_outcome_shown",
                        [case.workflow_id],
                        f"the case is {case.status} but no {kind} was made",
                    )
                )
    return out


# -- audit and tasks ----------------------------------------------------------


def check_audit(s: Snapshot) -> list[Violation]:
    """No audit step written twice: entry ids are unique (the schema says
    so), and no workflow wrote the same step under two ids."""
    out = []
    if not s.audit_entry_id_unique:
        out.append(_v("audit_unique", [], "audit_log.entry_id has no unique index"))
    for dup in s.audit_duplicates:
        out.append(
            _v("audit_duplicate", [dup.workflow_id], f"{dup.action} written {dup.count} times")
        )
    return out


def check_tasks(s: Snapshot) -> list[Violation]:
    """No open task for a closed case or a finished workflow."""
    out = []
    cases = s._cases()
    running = {w.workflow_id for w in s.workflows if w.status == "RUNNING"}
    known = {w.workflow_id for w in s.workflows}
    for task in s.open_tasks:
        case = cases.get(task.workflow_id)
        closed = CLOSED.get(task.process, frozenset())
        if case is not None and case.status in closed:
            out.append(
                _v(
                    "open_task_closed_case",
                    [task.workflow_id],
                    f"{task.task_id} open, case {case.status}",
                )
            )
        elif task.workflow_id in known and task.workflow_id not in running:
            out.append(
                _v(
                    "open_task_closed_case",
                    [task.workflow_id],
                    f"{task.task_id} open, workflow ended",
                )
            )
    return out


CHECKS: dict[str, Check] = {
    "every case closed or waiting": check_settled,
    "every story's cases where its decisions lead": check_expectations,
    "every story played to its end": check_stories,
    "no failed, stuck or failing workflow": check_workflows,
    "no activity error too large to keep": check_bounded_errors,
    "captures per order <= 1": check_captures,
    "refunds per operation key <= 1": check_refund_keys,
    "refunded <= captured per order": check_refunded_le_captured,
    "ledger = provider's record": check_ledger_matches_provider,
    "money moved = outcome shown": check_money_outcomes,
    "no duplicated audit step": check_audit,
    "no open task for a closed case": check_tasks,
}


def run_checks(snapshot: Snapshot) -> dict[str, list[Violation]]:
    return {name: check(snapshot) for name, check in CHECKS.items()}


# -- reading the snapshot -----------------------------------------------------


async def read_store(pool: asyncpg.Pool, snapshot: Snapshot) -> None:
    rows = await pool.fetch("SELECT workflow_id, process, case_id, status FROM cases")
    snapshot.cases = [CaseRow(**dict(r)) for r in rows]
    rows = await pool.fetch(
        "SELECT task_id, workflow_id, process, case_id FROM human_tasks WHERE closed_at IS NULL"
    )
    snapshot.open_tasks = [OpenTask(**dict(r)) for r in rows]
    rows = await pool.fetch(
        "SELECT idempotency_key, kind, amount_minor, currency, provider_reference, order_id "
        "FROM payment_ledger"
    )
    snapshot.ledger = [Movement(**dict(r)) for r in rows]
    rows = await pool.fetch(
        "SELECT idempotency_key, kind, amount_minor, currency, provider_reference, "
        "authorisation_ref FROM sim_payment_operations"
    )
    snapshot.provider = [Movement(**dict(r)) for r in rows]
    rows = await pool.fetch(
        "SELECT authorisation_ref, captured_minor, refunded_minor FROM sim_payment_authorisations"
    )
    snapshot.authorisations = [Authorisation(**dict(r)) for r in rows]
    snapshot.audit_entry_id_unique = bool(
        await pool.fetchval(
            """
            SELECT count(*) FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = 'audit_log'::regclass AND i.indisunique
              AND i.indnatts = 1 AND a.attname = 'entry_id'
            """
        )
    )
    # The same step twice under two entry ids: same workflow, action, actor,
    # reason and content, whatever the time (a workflow task that died after
    # its local write and the retry that wrote it again are seconds apart).
    rows = await pool.fetch(
        """
        SELECT workflow_id, action, count(*) AS count FROM audit_log
        GROUP BY workflow_id, action, actor, reason, before, after
        HAVING count(*) > 1
        """
    )
    snapshot.audit_duplicates = [AuditDuplicate(**dict(r)) for r in rows]


async def read_temporal(
    client: Client, *, histories: bool = True, query: str | None = None
) -> list[WorkflowRow]:
    executions = [e async for e in client.list_workflows(query)]
    semaphore = asyncio.Semaphore(8)

    async def one(execution: object) -> WorkflowRow:
        workflow_id = execution.id  # type: ignore[attr-defined]
        run_id = execution.run_id  # type: ignore[attr-defined]
        status = execution.status  # type: ignore[attr-defined]
        workflow_type = execution.workflow_type  # type: ignore[attr-defined]
        name = WorkflowExecutionStatus(status).name if status else "UNKNOWN"
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        pending: tuple[PendingActivity, ...] = ()
        task_attempt = 0
        failures: tuple[str, ...] = ()
        oversized = 0
        async with semaphore:
            if name == "RUNNING":
                raw = (await handle.describe()).raw_description
                pending = tuple(
                    PendingActivity(
                        a.activity_type.name,
                        a.attempt,
                        a.last_failure.message if a.HasField("last_failure") else "",
                    )
                    for a in raw.pending_activities
                )
                if raw.HasField("pending_workflow_task"):
                    task_attempt = raw.pending_workflow_task.attempt
            if histories:
                history = await handle.fetch_history()
                failed = [
                    e.workflow_task_failed_event_attributes
                    for e in history.events
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
                ]
                failures = tuple(
                    f"{WorkflowTaskFailedCause.Name(a.cause)}: {a.failure.message}" for a in failed
                )
                oversized = sum(
                    1
                    for e in history.events
                    if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                    and e.activity_task_failed_event_attributes.failure.message == OVERSIZED_FAILURE
                )
        oversized += sum(1 for a in pending if a.last_failure == OVERSIZED_FAILURE)
        return WorkflowRow(
            workflow_id, workflow_type, name, pending, task_attempt, failures, oversized
        )

    return list(await asyncio.gather(*(one(e) for e in executions)))
