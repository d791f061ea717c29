"""Audit entry ids survive a retried workflow task (domain/audit.py
AuditEntryIds), found by `make chaos`: a worker died after a task's local
write committed and before the task completed; the retry took a signal that
had arrived meanwhile first. With ids from a per-run counter the signal's
entry took the id of an entry already written (and was dropped by the
store's ON CONFLICT DO NOTHING) while an entry already written landed again
under the next id. The store side of this is tested with PostgreSQL in
tests/integration/test_store.py."""

from __future__ import annotations

from typing import Any

from domain.audit import AuditEntryIds

RUN = "9d1f0c52-0000-4000-8000-000000000001"


def entry(action: str, **after: Any) -> dict[str, Any]:
    return {
        "workflow_id": "carrier-claim:SH-1",
        "run_id": RUN,
        "case_id": "SH-1",
        "actor": "steward",
        "role": "system",
        "action": action,
        "reason": "",
        "before": {},
        "after": dict(after),
    }


FILED = entry("claim_filed", claim="C-1")
STATUS_FILED = entry("status_changed", status="filed")
OUTCOME = entry("carrier_outcome", outcome="approved")


def ids_of(entries: list[dict[str, Any]]) -> list[str]:
    ids = AuditEntryIds()
    return [ids.next_id(**e) for e in entries]


def test_the_retry_of_a_task_that_took_a_signal_first_names_old_entries_as_before() -> None:
    killed = ids_of([FILED, STATUS_FILED])
    retried = ids_of([OUTCOME, FILED, STATUS_FILED])
    # What the dead task wrote is recognised (the store skips it) ...
    assert retried[1:] == killed
    # ... and the signal's entry is new, so it is written, not dropped.
    assert retried[0] not in killed


def test_the_same_content_twice_in_a_run_gets_two_ids() -> None:
    reminder = entry("reminder_sent", task="review/1")
    first, second = ids_of([reminder, reminder])
    assert first != second
    assert first.endswith(".1") and second.endswith(".2")


def test_any_difference_in_content_or_run_changes_the_id() -> None:
    base = ids_of([STATUS_FILED])[0]
    assert ids_of([entry("status_changed", status="paid")])[0] != base
    assert ids_of([{**STATUS_FILED, "reason": "carrier paid"}])[0] != base
    assert ids_of([{**STATUS_FILED, "actor": "ana", "role": "coordinator"}])[0] != base
    assert ids_of([{**STATUS_FILED, "run_id": RUN[:-1] + "2"}])[0] != base


def test_ids_name_the_workflow_and_the_action() -> None:
    (entry_id,) = ids_of([FILED])
    assert entry_id.startswith("carrier-claim:SH-1/claim_filed/")
