"""The privacy-request rules (domain/privacy_request.py): which subjects are
erased now, which keep their invoice fields, which wait, and until when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.common import Role
from domain.privacy_request import (
    HoldKind,
    LegalHold,
    PrivacyPolicy,
    PrivacyRequestInput,
    VerifyDecision,
    VerifyInput,
    check_verifier,
    plan_erasure,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
A, B, C = "subj_aaaaaaaa", "subj_bbbbbbbb", "subj_cccccccc"


def hold(kind: HoldKind, subjects: list[str], until: datetime | None = None) -> LegalHold:
    return LegalHold(kind=kind, reference="ref-1", subject_ids=subjects, until=until)


def test_without_holds_everything_goes_now() -> None:
    plan = plan_erasure([B, A, A], [], NOW, WEEK)
    assert plan.erase_now == [A, B] and plan.proceed_at is None and plan.reasons == []


def test_an_open_case_blocks_its_subjects_and_is_checked_again_later() -> None:
    plan = plan_erasure([A, B], [hold(HoldKind.DISPUTE, [A])], NOW, WEEK)
    assert plan.erase_now == [B] and plan.blocked == [A]
    assert plan.proceed_at == NOW + WEEK
    assert plan.reasons == ["dispute ref-1 until it closes"]


def test_invoice_retention_keeps_invoice_fields_until_its_date() -> None:
    until = NOW + timedelta(days=3650)
    plan = plan_erasure([A, B], [hold(HoldKind.INVOICE_RETENTION, [A], until)], NOW, WEEK)
    assert plan.erase_now == [B] and plan.retain_invoice_fields == [A] and plan.blocked == []
    assert plan.proceed_at == until


def test_a_retention_that_ended_no_longer_holds() -> None:
    plan = plan_erasure(
        [A], [hold(HoldKind.INVOICE_RETENTION, [A], NOW - timedelta(seconds=1))], NOW, WEEK
    )
    assert plan.erase_now == [A] and plan.proceed_at is None


def test_a_blocking_hold_wins_over_retention_and_the_earliest_date_wakes() -> None:
    plan = plan_erasure(
        [A, B, C],
        [
            hold(HoldKind.INVOICE_RETENTION, [A, B], NOW + timedelta(days=900)),
            hold(HoldKind.RETURN, [A], NOW + timedelta(days=2)),
        ],
        NOW,
        WEEK,
    )
    assert plan.blocked == [A] and plan.retain_invoice_fields == [B] and plan.erase_now == [C]
    assert plan.proceed_at == NOW + timedelta(days=2)


@pytest.mark.parametrize("role", [Role.OPS, Role.FINANCE, Role.AUDITOR, Role.SYSTEM])
def test_only_coordinators_and_managers_verify(role: Role) -> None:
    decision = VerifyInput(decision=VerifyDecision.VERIFIED, reason="checked", actor="x", role=role)
    with pytest.raises(ValueError, match=f"^role: {role} may not verify"):
        check_verifier(decision)
    check_verifier(decision.model_copy(update={"role": Role.MANAGER}))


def test_the_request_carries_no_email_only_its_fingerprint() -> None:
    with pytest.raises(ValidationError, match="match_fingerprint"):
        PrivacyRequestInput(
            request_id="PR-1",
            kind="erasure",
            jurisdiction="EU",
            match_fingerprint="camille.durand@example.fr",
            contact_subject_id="subj_contact01",
            received_at=NOW,
            requested_by="ana",
        )
    with pytest.raises(ValidationError, match="hold_recheck"):
        PrivacyPolicy(hold_recheck=timedelta(0))
