"""Workflow ids, built in one place.

Ids carry business keys only (order id, dispute id...), never personal data,
because they show in the Temporal UI, in logs and in visibility queries.
"""

from __future__ import annotations

ORDER_REVIEW = "order-review"


def order_review_id(order_id: str) -> str:
    return f"{ORDER_REVIEW}:{order_id}"


def case_id_from_workflow_id(workflow_id: str) -> str:
    """The business key after the process prefix: `order-review:A1` -> `A1`."""
    _, _, rest = workflow_id.partition(":")
    return rest
