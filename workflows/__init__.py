"""Steward's processes: one workflow class per module."""

from workflows.carrier_claim import CarrierClaimWorkflow
from workflows.chargeback import ChargebackWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.order_review import OrderReviewWorkflow
from workflows.returns import ReturnWorkflow

ALL_WORKFLOWS: list[type] = [OrderReviewWorkflow, ReturnWorkflow]
ALL_WORKFLOWS += [FailedDeliveryWorkflow, CarrierClaimWorkflow]
ALL_WORKFLOWS += [ChargebackWorkflow]

__all__ = [
    "ALL_WORKFLOWS",
    "CarrierClaimWorkflow",
    "ChargebackWorkflow",
    "FailedDeliveryWorkflow",
    "OrderReviewWorkflow",
    "ReturnWorkflow",
]
