"""Recorded chargeback histories must replay on the current workflow code.

A failure means a change altered commands a running dispute already issued:
guard it with `workflow.patched` instead of re-recording.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.chargeback import ChargebackWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("chargeback_*.json"))


def test_chargeback_histories_are_recorded() -> None:
    names = {p.stem for p in HISTORIES}
    assert {
        "chargeback_adyen_pre_arbitration",
        "chargeback_stripe_default_accept",
        # Since the chargeback-link-order patch (issue 12).
        "chargeback_stripe_link_order",
        "chargeback_efw_unlinked_default",
        # Since the chargeback-order-facts patch (issue 14).
        "chargeback_stripe_order_market",
        "chargeback_efw_order_amount",
        # Since the chargeback-efw-fulfilment patch (issue 16).
        "chargeback_efw_fulfilment_told",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_chargeback_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[ChargebackWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
