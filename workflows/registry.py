"""Every workflow the worker registers."""

from workflows.campaign import CampaignWorkflow
from workflows.carrier_claim import CarrierClaimWorkflow
from workflows.carrier_sweep import CarrierSilenceSweepWorkflow
from workflows.chargeback import ChargebackWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.fulfilment import FulfilmentWorkflow
from workflows.ops_request import OpsRequestWorkflow
from workflows.order_review import OrderReviewWorkflow
from workflows.privacy_request import PrivacyRequestWorkflow
from workflows.report_run import ReportRunWorkflow
from workflows.returns import ReturnWorkflow

ALL_WORKFLOWS: list[type] = [
    OrderReviewWorkflow,
    ReturnWorkflow,
    FailedDeliveryWorkflow,
    FulfilmentWorkflow,
    CarrierClaimWorkflow,
    ChargebackWorkflow,
    CarrierSilenceSweepWorkflow,
    OpsRequestWorkflow,
    ReportRunWorkflow,
    PrivacyRequestWorkflow,
    CampaignWorkflow,
]
