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


class ChargebackContract:
    """The names Temporal knows a chargeback by (see OrderReviewContract)."""

    WORKFLOW_TYPE: Final = "ChargebackWorkflow"
    QUERY_STATUS: Final = "status"
    UPDATE_RESPOND: Final = "respond"
    SIGNAL_DISPUTE_EVENT: Final = "dispute_event"
    SIGNAL_CCTV_CLIP_READY: Final = CCTV_CLIP_READY_SIGNAL
    ERRORS: Final = (RESPONSE_REJECTED, DECISION_IN_PROGRESS)
