"""Each process's contract in domain/ names exactly what its workflow registers.

Clients address workflows by these names without loading workflow code, so a
signal renamed on the workflow alone would only fail in production; here it
fails the suite.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio import workflow

from domain.chargeback import ChargebackContract
from domain.claims import CarrierClaimContract
from domain.deliveries import FailedDeliveryContract
from domain.fulfilment import FulfilmentContract
from domain.ops_request import OpsRequestContract
from domain.privacy_request import PrivacyRequestContract
from domain.reports.runs import ReportRunContract
from domain.returns import ReturnContract
from domain.review import OrderReviewContract
from workflows.carrier_claim import CarrierClaimWorkflow
from workflows.chargeback import ChargebackWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.fulfilment import FulfilmentWorkflow
from workflows.ops_request import OpsRequestWorkflow
from workflows.order_review import OrderReviewWorkflow
from workflows.privacy_request import PrivacyRequestWorkflow
from workflows.report_run import ReportRunWorkflow
from workflows.returns import ReturnWorkflow

CONTRACTS: list[tuple[type, type]] = [
    (OrderReviewWorkflow, OrderReviewContract),
    (ReturnWorkflow, ReturnContract),
    (FailedDeliveryWorkflow, FailedDeliveryContract),
    (CarrierClaimWorkflow, CarrierClaimContract),
    (ChargebackWorkflow, ChargebackContract),
    (FulfilmentWorkflow, FulfilmentContract),
    (ReportRunWorkflow, ReportRunContract),
    (OpsRequestWorkflow, OpsRequestContract),
    (PrivacyRequestWorkflow, PrivacyRequestContract),
]


def _names(contract: type, prefix: str) -> set[str]:
    return {
        value
        for name, value in vars(contract).items()
        if name.startswith(prefix) and isinstance(value, str)
    }


@pytest.mark.parametrize(
    ("workflow_class", "contract"), CONTRACTS, ids=[c.__name__ for _, c in CONTRACTS]
)
def test_the_workflow_registers_exactly_the_contract(workflow_class: type, contract: Any) -> None:
    definition = workflow._Definition.must_from_class(workflow_class)
    assert definition.name == contract.WORKFLOW_TYPE
    assert set(definition.signals) == _names(contract, "SIGNAL_")
    assert set(definition.updates) == _names(contract, "UPDATE_")
    assert set(definition.queries) == _names(contract, "QUERY_")


def test_a_parcel_s_followers_take_carrier_events_under_one_name() -> None:
    # The ingest path (clients/carrier_events.py) signals whichever process a
    # shipment is tracked by, a failed delivery or a carrier claim, by one name.
    assert FailedDeliveryContract.SIGNAL_CARRIER_EVENT == CarrierClaimContract.SIGNAL_CARRIER_EVENT
