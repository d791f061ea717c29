"""The chaos run's invariant checks (bench/chaos/checks.py) on hand-made rows:
a clean snapshot passes every check, and each check fails on the fault it is
there to find."""

from __future__ import annotations

import dataclasses

import pytest

from bench.chaos.checks import (
    CHECKS,
    AuditDuplicate,
    Authorisation,
    CaseRow,
    Movement,
    OpenTask,
    PendingActivity,
    Snapshot,
    WorkflowRow,
    check_audit,
    check_bounded_errors,
    check_captures,
    check_expectations,
    check_ledger_matches_provider,
    check_money_outcomes,
    check_refund_keys,
    check_refunded_le_captured,
    check_settled,
    check_stories,
    check_tasks,
    check_workflows,
    run_checks,
)
from bench.chaos.load import Expectation

REVIEW = "order-review:FR-1"
RETURN = "return:RMA-1"
DELIVERY = "failed-delivery:SH-2"


def capture(order: str = "FR-1", workflow: str = REVIEW, ref: str = "sim_capture_1") -> Movement:
    return Movement(f"{workflow}/capture", "capture", 10_000, "EUR", ref, order_id=order)


def refund(
    workflow: str = RETURN, amount: int = 10_000, ref: str = "sim_refund_1", op: str = "refund-1"
) -> Movement:
    return Movement(f"{workflow}/{op}", "refund", amount, "EUR", ref, order_id="FR-1")


def at_provider(m: Movement) -> Movement:
    return dataclasses.replace(m, order_id="", authorisation_ref="auth-FR-1")


def clean() -> Snapshot:
    ledger = [capture(), refund()]
    return Snapshot(
        cases=[
            CaseRow(REVIEW, "order-review", "FR-1", "released"),
            CaseRow(RETURN, "return", "RMA-1", "refunded"),
            CaseRow(DELIVERY, "failed-delivery", "SH-2", "awaiting_decision"),
        ],
        open_tasks=[OpenTask(f"{DELIVERY}/decision/1", DELIVERY, "failed-delivery", "SH-2")],
        ledger=ledger,
        provider=[at_provider(m) for m in ledger],
        authorisations=[Authorisation("auth-FR-1", 10_000, 10_000)],
        workflows=[
            WorkflowRow(REVIEW, "OrderReviewWorkflow", "COMPLETED"),
            WorkflowRow(RETURN, "ReturnWorkflow", "COMPLETED"),
            WorkflowRow(DELIVERY, "FailedDeliveryWorkflow", "RUNNING"),
        ],
        expectations=[Expectation(RETURN, frozenset({"refunded"}), "s001")],
    )


def test_a_clean_snapshot_passes_every_check() -> None:
    assert run_checks(clean()) == {name: [] for name in CHECKS}


def test_a_case_still_in_motion_is_not_settled() -> None:
    s = clean()
    s.cases[2] = CaseRow(DELIVERY, "failed-delivery", "SH-2", "refunding")
    (v,) = check_settled(s)
    assert v.case_ids == (DELIVERY,) and "refunding" in v.detail


def test_a_story_whose_case_ended_elsewhere() -> None:
    s = clean()
    s.cases[1] = CaseRow(RETURN, "return", "RMA-1", "refund_failed")
    (v,) = check_expectations(s)
    assert v.case_ids == (RETURN,) and "refund_failed, expected refunded" in v.detail
    s.expectations = [Expectation("return:RMA-9", frozenset({"refunded"}), "s002")]
    assert "missing" in check_expectations(s)[0].detail


def test_a_story_that_could_not_finish() -> None:
    s = clean()
    s.story_failures = {"s001": "qc: return:RMA-1 still received after 150s"}
    s.story_workflows = {"s001": [REVIEW, RETURN]}
    (v,) = check_stories(s)
    assert v.case_ids == (REVIEW, RETURN) and "still received" in v.detail


@pytest.mark.parametrize(
    ("row", "check"),
    [
        (WorkflowRow(RETURN, "ReturnWorkflow", "FAILED"), "workflow_status"),
        (WorkflowRow(RETURN, "ReturnWorkflow", "TERMINATED"), "workflow_status"),
        (WorkflowRow(RETURN, "ReturnWorkflow", "TIMED_OUT"), "workflow_status"),
        (
            WorkflowRow(
                RETURN,
                "ReturnWorkflow",
                "RUNNING",
                pending_activities=(PendingActivity("refund_payment", 7, "HTTP 500"),),
            ),
            "stuck",
        ),
        (
            WorkflowRow(RETURN, "ReturnWorkflow", "RUNNING", workflow_task_attempt=3),
            "failing_workflow_task",
        ),
        (
            WorkflowRow(
                RETURN,
                "ReturnWorkflow",
                "COMPLETED",
                task_failures=(
                    "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR: nondeterminism",
                ),
            ),
            "workflow_task_failed",
        ),
    ],
)
def test_failed_stuck_and_failing_workflows(row: WorkflowRow, check: str) -> None:
    s = clean()
    s.workflows[1] = row
    (v,) = check_workflows(s)
    assert v.check == check and v.case_ids == (RETURN,)


def test_an_activity_error_too_large_to_keep() -> None:
    s = clean()
    s.workflows[0] = WorkflowRow(REVIEW, "OrderReviewWorkflow", "COMPLETED", oversized_failures=2)
    (v,) = check_bounded_errors(s)
    assert v.case_ids == (REVIEW,) and "Failure exceeds size limit." in v.detail


def test_a_signal_racing_a_completing_task_is_no_failure() -> None:
    s = clean()
    s.workflows[1] = WorkflowRow(
        RETURN,
        "ReturnWorkflow",
        "COMPLETED",
        task_failures=("WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND: new signal",),
    )
    assert check_workflows(s) == []


def test_two_captures_of_one_order() -> None:
    s = clean()
    second = capture(ref="sim_capture_2")
    second = dataclasses.replace(second, idempotency_key=f"{REVIEW}/capture-again")
    s.ledger.append(second)
    s.provider.append(at_provider(second))
    found = check_captures(s)
    assert {v.detail for v in found} == {
        "order FR-1: 2 captures in the ledger",
        "authorisation auth-FR-1: 2 captures",
    }


def test_two_refunds_under_one_key() -> None:
    s = clean()
    s.provider.append(at_provider(refund(ref="sim_refund_2")))
    (v,) = check_refund_keys(s)
    assert v.case_ids == (RETURN,) and "provider: 2 refunds" in v.detail


def test_more_refunded_than_captured() -> None:
    s = clean()
    s.ledger.append(refund(DELIVERY, 500, "sim_refund_3", "refund-failed-delivery"))
    s.authorisations = [Authorisation("auth-FR-1", 10_000, 10_500)]
    found = check_refunded_le_captured(s)
    assert [v.detail for v in found] == [
        "order FR-1: refunded 10500 > captured 10000",
        "provider auth-FR-1: refunded 10500 > captured 10000",
    ]


def test_the_ledger_and_the_provider_disagree() -> None:
    s = clean()
    # Paid at the provider, never written to the books (a worker died between).
    s.provider.append(at_provider(refund(DELIVERY, 500, "sim_refund_3", "refund-failed-delivery")))
    # Different references for the same key.
    s.ledger[0] = capture(ref="sim_capture_other")
    found = check_ledger_matches_provider(s)
    assert [v.case_ids for v in found] == [(DELIVERY,), (REVIEW,)]
    assert found[0].detail.endswith("at the provider, not in the ledger")
    assert "sim_capture_other" in found[1].detail and "sim_capture_1" in found[1].detail
    s = clean()
    s.provider = s.provider[:1]
    assert "unknown to the provider" in check_ledger_matches_provider(s)[0].detail


def test_a_paid_refund_recorded_as_failed() -> None:
    s = clean()
    s.cases[1] = CaseRow(RETURN, "return", "RMA-1", "refund_failed")
    (v,) = check_money_outcomes(s)
    assert v.case_ids == (RETURN,)
    assert v.detail == "refund of 10000 EUR paid (sim_refund_1) but the case is refund_failed"


def test_a_refunded_case_without_a_refund() -> None:
    s = clean()
    s.ledger, s.provider = s.ledger[:1], s.provider[:1]
    (v,) = check_money_outcomes(s)
    assert v.case_ids == (RETURN,) and v.detail == "the case is refunded but no refund was made"


def test_a_duplicated_audit_step_and_a_missing_unique_index() -> None:
    s = clean()
    s.audit_duplicates = [AuditDuplicate(RETURN, "refund_issued", 2)]
    s.audit_entry_id_unique = False
    assert [v.check for v in check_audit(s)] == ["audit_unique", "audit_duplicate"]


def test_an_open_task_of_a_closed_case_or_an_ended_workflow() -> None:
    s = clean()
    s.open_tasks.append(OpenTask(f"{RETURN}/manual_qc/1", RETURN, "return", "RMA-1"))
    (v,) = check_tasks(s)
    assert v.case_ids == (RETURN,) and "case refunded" in v.detail
    s = clean()
    s.workflows[2] = WorkflowRow(DELIVERY, "FailedDeliveryWorkflow", "COMPLETED")
    (v,) = check_tasks(s)
    assert v.case_ids == (DELIVERY,) and "workflow ended" in v.detail
