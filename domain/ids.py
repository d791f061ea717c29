"""Workflow ids, built in one place.

Ids carry business keys only (order id, dispute id...), never personal data,
because they show in the Temporal UI, in logs and in visibility queries.
"""

from __future__ import annotations

ORDER_REVIEW = "order-review"


def order_review_id(order_id: str) -> str:
    return f"{ORDER_REVIEW}:{order_id}"


RETURN = "return"


def return_id(rma_id: str) -> str:
    return f"{RETURN}:{rma_id}"


FAILED_DELIVERY = "failed-delivery"
CARRIER_CLAIM = "carrier-claim"


def failed_delivery_id(shipment_id: str) -> str:
    return f"{FAILED_DELIVERY}:{shipment_id}"


def carrier_claim_id(carrier: str, tracking_number: str) -> str:
    return f"{CARRIER_CLAIM}:{carrier.lower()}:{tracking_number}"


CHARGEBACK = "chargeback"


def chargeback_id(provider: str, dispute_id: str) -> str:
    return f"{CHARGEBACK}:{provider}:{dispute_id}"


def case_id_from_workflow_id(workflow_id: str) -> str:
    """The business key after the process prefix: `order-review:A1` -> `A1`."""
    _, _, rest = workflow_id.partition(":")
    return rest


CAMPAIGN = "campaign"


def campaign_workflow_id(campaign_id: str) -> str:
    return f"{CAMPAIGN}:{campaign_id}"
