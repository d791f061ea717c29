"""The chargeback's phase: the one value the workflow's main loop picks its
next stage by - pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.chargeback import (
    ChargebackPhase,
    ChargebackState,
    DisputeProvider,
    DisputeReason,
    DisputeStage,
    DisputeStatus,
    chargeback_phase,
)

DUE = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def state(**changes: Any) -> ChargebackState:
    fields: dict[str, Any] = {
        "provider": DisputeProvider.STRIPE,
        "dispute_id": "dp_1",
        "order_id": "FR-100001",
        "stage": DisputeStage.DISPUTE,
        "status": DisputeStatus.OPEN,
        "reason": DisputeReason.FRAUD,
        "amount_minor": 245_000,
        "currency": "EUR",
        "due_by": DUE,
    }
    return ChargebackState(**(fields | changes))


@pytest.mark.parametrize(
    ("case", "round_open", "phase"),
    [
        (state(), True, ChargebackPhase.RESPONSE_DUE),
        (state(), False, ChargebackPhase.WAITING_FOR_PROVIDER),
        (state(early_fraud_warning=True), True, ChargebackPhase.EARLY_FRAUD_WARNING_DUE),
        (state(defendable=False), True, ChargebackPhase.NO_RESPONSE_POSSIBLE),
        (state(due_by=None), True, ChargebackPhase.NO_RESPONSE_POSSIBLE),
        (state(status=DisputeStatus.SUBMITTED), False, ChargebackPhase.WAITING_FOR_PROVIDER),
        # An outcome ends the round whatever else is pending.
        (state(status=DisputeStatus.WON), True, ChargebackPhase.CLOSED),
        (state(status=DisputeStatus.LOST), False, ChargebackPhase.CLOSED),
        (
            state(status=DisputeStatus.EXPIRED, early_fraud_warning=True),
            True,
            ChargebackPhase.CLOSED,
        ),
    ],
)
def test_the_phase_follows_the_state_and_the_open_round(
    case: ChargebackState, round_open: bool, phase: ChargebackPhase
) -> None:
    assert chargeback_phase(case, round_open=round_open) is phase


def test_a_reopened_case_has_a_response_due_again() -> None:
    # Adyen's second chargeback: a new round on a case that was lost.
    reopened = state(stage=DisputeStage.PRE_ARBITRATION, due_by=DUE + timedelta(days=10))
    assert chargeback_phase(reopened, round_open=True) is ChargebackPhase.RESPONSE_DUE
