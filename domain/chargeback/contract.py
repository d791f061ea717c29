"""The names Temporal knows a chargeback by (see domain.review.OrderReviewContract):
the workflow's decorators and every client (clients/chargeback.py) use these,
and tests/unit/test_contracts.py compares them with the registered workflow."""

from __future__ import annotations

from typing import Final

from domain.common import DECISION_IN_PROGRESS
from domain.evidence import CCTV_CLIP_READY_SIGNAL

# The `respond` validator's refusal (ApplicationError.type): the answer breaks
# a rule of domain.chargeback.validate_response (role, note, evidence, deadline).
RESPONSE_REJECTED: Final = "ResponseRejected"
# The `link_order` validator's refusal: wrong role, or the dispute is linked already.
LINK_REJECTED: Final = "OrderLinkRejected"


class ChargebackContract:
    """The names Temporal knows a chargeback by (see OrderReviewContract)."""

    WORKFLOW_TYPE: Final = "ChargebackWorkflow"
    QUERY_STATUS: Final = "status"
    UPDATE_RESPOND: Final = "respond"
    # A coordinator names the order of a dispute Steward could not resolve.
    UPDATE_LINK_ORDER: Final = "link_order"
    SIGNAL_DISPUTE_EVENT: Final = "dispute_event"
    SIGNAL_CCTV_CLIP_READY: Final = CCTV_CLIP_READY_SIGNAL
    ERRORS: Final = (RESPONSE_REJECTED, LINK_REJECTED, DECISION_IN_PROGRESS)
