"""The pure return rules: eligibility, refund amounts, manual-QC triggers and
the validators behind the `qc_decision` and `finance_approval` updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain.common import Role
from domain.returns import (
    CustomerContact,
    Disposition,
    FinanceApprovalInput,
    OrderLine,
    ParentReason,
    QcDecisionInput,
    QcGrade,
    QcOutcome,
    QcResult,
    Resolution,
    ReturnDecisionRejected,
    ReturnInput,
    ReturnLine,
    ReturnOrder,
    ReturnPolicy,
    ReturnReason,
    ReturnState,
    ReturnStatus,
    assess_eligibility,
    disposition_for,
    is_full_return,
    manual_qc_reasons,
    parent_reason,
    refund_amount_minor,
    return_policy_for,
    validate_finance_approval,
    validate_qc_decision,
)

DELIVERED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def request(
    lines: list[tuple[str, int]] | None = None,
    *,
    policy: ReturnPolicy | None = None,
    **order_lines: Any,
) -> ReturnInput:
    catalogue = [
        OrderLine(
            sku="BAG", name="Tote MM", unit_price_minor=245_000, quantity=1, serial_number="SN-1"
        ),
        OrderLine(sku="SCARF", name="Silk scarf", unit_price_minor=45_000, quantity=2),
        OrderLine(
            sku="RING", name="Engraved ring", unit_price_minor=90_000, quantity=1, personalised=True
        ),
        OrderLine(
            sku="BELT", name="Outlet belt", unit_price_minor=30_000, quantity=1, final_sale=True
        ),
    ]
    return ReturnInput(
        rma_id="RMA-1",
        order=ReturnOrder(
            order_id="FR-1",
            market="FR",
            currency="EUR",
            delivered_at=DELIVERED,
            lines=catalogue,
            shipping_minor=2_500,
            duties_minor=4_000,
            authorisation_ref="auth-FR-1",
        ),
        lines=[ReturnLine(sku=s, quantity=q) for s, q in (lines or [("BAG", 1)])],
        reason=ReturnReason.TOO_SMALL,
        resolution=Resolution.REFUND,
        contact=CustomerContact(email="camille@example.fr"),
        requested_by="cs-julie",
        policy=policy or ReturnPolicy(),
        **order_lines,
    )


def codes(refusals: list[Any]) -> list[str]:
    return [r.code for r in refusals]


def test_within_window_is_eligible() -> None:
    assert (
        assess_eligibility(request(), now=DELIVERED + timedelta(days=29), already_returned={}) == []
    )


def test_window_closed_refusal_is_readable_by_the_customer() -> None:
    refusals = assess_eligibility(
        request(), now=DELIVERED + timedelta(days=31), already_returned={}
    )
    assert codes(refusals) == ["window_closed"]
    assert (
        refusals[0].message == "The 30-day return period for this order ended on 02 December 2026."
    )


def test_final_sale_and_personalised_items_are_refused() -> None:
    refusals = assess_eligibility(
        request([("RING", 1), ("BELT", 1)]), now=DELIVERED, already_returned={}
    )
    assert codes(refusals) == ["personalised", "final_sale"]
    assert "Engraved ring was personalised" in refusals[0].message


def test_quantities_already_returned_count() -> None:
    refusals = assess_eligibility(
        request([("SCARF", 2)]), now=DELIVERED, already_returned={"SCARF": 1}
    )
    assert codes(refusals) == ["quantity_exceeded"]
    assert refusals[0].message == "You can return 1 more of Silk scarf; this request asks for 2."
    assert (
        assess_eligibility(request([("SCARF", 1)]), now=DELIVERED, already_returned={"SCARF": 1})
        == []
    )


def test_market_policies_differ() -> None:
    assert return_policy_for("JP").return_window == timedelta(days=14)
    assert return_policy_for("FR") == ReturnPolicy()
    assert return_policy_for("US").refund_duties_on_full_return


def test_refund_adds_shipping_and_duties_only_on_a_full_return() -> None:
    partial = request([("BAG", 1)])
    assert not is_full_return(partial, {})
    assert refund_amount_minor(partial, full_return=False) == 245_000
    everything = request([("BAG", 1), ("SCARF", 2)])
    assert is_full_return(everything, {"RING": 1, "BELT": 1})
    assert refund_amount_minor(everything, full_return=True) == 245_000 + 90_000 + 2_500
    us = request([("BAG", 1)], policy=return_policy_for("US"))
    assert refund_amount_minor(us, full_return=True) == 245_000 + 4_000


def test_input_refuses_unknown_sku_and_exchange_without_replacement() -> None:
    with pytest.raises(ValidationError, match="lines: sku NOPE is not in order FR-1"):
        request([("NOPE", 1)])
    with pytest.raises(ValidationError, match="replacement: an exchange needs"):
        ReturnInput.model_validate({**request().model_dump(), "resolution": Resolution.EXCHANGE})


def test_reason_taxonomy_has_a_parent_for_every_reason() -> None:
    assert parent_reason(ReturnReason.TOO_SMALL) is ParentReason.FIT
    assert {parent_reason(r) for r in ReturnReason} == set(ParentReason)


@pytest.mark.parametrize(
    ("qc", "expected"),
    [
        (QcResult(event_id="q", grade=QcGrade.FIRST_CHOICE, serial_number_seen="SN-1"), []),
        (QcResult(event_id="q", grade=QcGrade.KO, serial_number_seen="SN-1"), ["3PL graded ko"]),
        (
            QcResult(event_id="q", grade=QcGrade.UNCERTAIN, serial_number_seen="SN-1"),
            ["3PL graded uncertain"],
        ),
        (
            QcResult(event_id="q", grade=QcGrade.FIRST_CHOICE, serial_number_seen="SN-9"),
            ["serial number mismatch"],
        ),
        (
            QcResult(
                event_id="q",
                grade=QcGrade.FIRST_CHOICE,
                serial_number_seen="SN-1",
                authenticity_confirmed=False,
            ),
            ["authenticity not confirmed"],
        ),
    ],
)
def test_manual_qc_triggers(qc: QcResult, expected: list[str]) -> None:
    assert manual_qc_reasons(request(), qc) == expected


def test_high_value_needs_manual_qc() -> None:
    cheap_threshold = request(policy=ReturnPolicy(qc_high_value_minor=100_000))
    qc = QcResult(event_id="q", grade=QcGrade.FIRST_CHOICE, serial_number_seen="SN-1")
    assert manual_qc_reasons(cheap_threshold, qc) == ["high value"]


def test_disposition_follows_grade_and_outcome() -> None:
    assert disposition_for(QcGrade.FIRST_CHOICE, None) is Disposition.RESTOCK
    assert disposition_for(QcGrade.KO, QcOutcome.PARTIAL_REFUND) is Disposition.QUARANTINE
    assert disposition_for(QcGrade.KO, QcOutcome.REPAIR) is Disposition.REPAIR
    assert (
        disposition_for(QcGrade.SECOND_CHOICE, QcOutcome.RETURN_TO_CUSTOMER)
        is Disposition.RETURN_TO_CUSTOMER
    )


def state(status: ReturnStatus, **kwargs: Any) -> ReturnState:
    return ReturnState(
        rma_id="RMA-1",
        order_id="FR-1",
        market="FR",
        currency="EUR",
        status=status,
        reason=ReturnReason.TOO_SMALL,
        parent_reason=ParentReason.FIT,
        resolution=Resolution.REFUND,
        lines=[ReturnLine(sku="BAG", quantity=1)],
        value_minor=245_000,
        **kwargs,
    )


def qc_decision(**kwargs: Any) -> QcDecisionInput:
    base: dict[str, Any] = {
        "grade": QcGrade.KO,
        "reason": "stitching torn",
        "outcome": QcOutcome.PARTIAL_REFUND,
        "partial_refund_minor": 100_000,
        "actor": "alice",
        "role": Role.COORDINATOR,
    }
    return QcDecisionInput(**{**base, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "status", "escalated", "message"),
    [
        ({}, ReturnStatus.RECEIVED, False, "status: return RMA-1 is not awaiting a QC decision"),
        ({"role": Role.FINANCE}, ReturnStatus.MANUAL_QC, False, "role: finance may not decide"),
        (
            {},
            ReturnStatus.MANUAL_QC,
            True,
            r"role: coordinator may not decide this QC \(needs manager\)",
        ),
        ({"reason": " "}, ReturnStatus.MANUAL_QC, False, "reason: a manual QC decision needs"),
        (
            {"outcome": None, "partial_refund_minor": None},
            ReturnStatus.MANUAL_QC,
            False,
            "outcome: an item that is not first choice needs an outcome",
        ),
        (
            {"partial_refund_minor": 300_000},
            ReturnStatus.MANUAL_QC,
            False,
            "partial_refund_minor: 300000 exceeds the returned value 245000",
        ),
        (
            {"outcome": QcOutcome.REPAIR},
            ReturnStatus.MANUAL_QC,
            False,
            "partial_refund_minor: only a partial_refund outcome carries an amount",
        ),
        (
            {"grade": QcGrade.FIRST_CHOICE},
            ReturnStatus.MANUAL_QC,
            False,
            "outcome: a first-choice item follows the customer's resolution",
        ),
    ],
)
def test_qc_decision_refusals(
    kwargs: dict[str, Any], status: ReturnStatus, escalated: bool, message: str
) -> None:
    with pytest.raises(ReturnDecisionRejected, match=message):
        validate_qc_decision(
            state(status, escalated=escalated), qc_decision(**kwargs), max_refund_minor=245_000
        )


def test_qc_decision_accepted() -> None:
    validate_qc_decision(state(ReturnStatus.MANUAL_QC), qc_decision(), max_refund_minor=245_000)
    validate_qc_decision(
        state(ReturnStatus.MANUAL_QC, escalated=True),
        qc_decision(
            grade=QcGrade.FIRST_CHOICE, outcome=None, partial_refund_minor=None, role=Role.MANAGER
        ),
        max_refund_minor=245_000,
    )


def test_finance_approval_four_eyes() -> None:
    awaiting = state(ReturnStatus.AWAITING_FINANCE, refund_requested_by="alice")
    with pytest.raises(ReturnDecisionRejected, match="actor: alice requested this refund"):
        validate_finance_approval(
            awaiting, FinanceApprovalInput(approved=True, actor="alice", role=Role.FINANCE)
        )
    with pytest.raises(ReturnDecisionRejected, match="role: manager may not approve refunds"):
        validate_finance_approval(
            awaiting, FinanceApprovalInput(approved=True, actor="marc", role=Role.MANAGER)
        )
    with pytest.raises(ReturnDecisionRejected, match="note: a refused refund needs a note"):
        validate_finance_approval(
            awaiting, FinanceApprovalInput(approved=False, actor="fiona", role=Role.FINANCE)
        )
    with pytest.raises(ReturnDecisionRejected, match="status: return RMA-1 is not awaiting"):
        validate_finance_approval(
            state(ReturnStatus.REFUNDING),
            FinanceApprovalInput(approved=True, actor="fiona", role=Role.FINANCE),
        )
    validate_finance_approval(
        awaiting, FinanceApprovalInput(approved=True, actor="fiona", role=Role.FINANCE)
    )


def test_policy_refuses_incoherent_timing() -> None:
    with pytest.raises(ValidationError, match="label_reminder_before must be shorter"):
        ReturnPolicy(label_validity=timedelta(days=5), label_reminder_before=timedelta(days=7))
