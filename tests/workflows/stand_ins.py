"""Stand-in workflows: what a workflow under test starts by name, reduced to
an answer, registered under the real workflow type names.

The sandbox re-imports this module (and its packages) for every run of a
stand-in, as it does a real workflow's module, so it imports what the real
workflows import in the same way: every model passed through the sandbox
(see workflows/order_review.py), nothing else. Defined in a test module
instead, each run would re-import that module with pytest and the whole
domain inside the sandbox (about a second per worker).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (see workflows/order_review.py)

    from domain.claims import CarrierClaimContract, CarrierClaimInput
    from domain.review import OrderReviewContract, OrderReviewInput


@workflow.defn(name=OrderReviewContract.WORKFLOW_TYPE)
class StandInOrderReview:
    """A replacement order's review: started by name, finishes at once with its order id."""

    @workflow.run
    async def run(self, input: OrderReviewInput) -> str:
        return input.order.order_id


@workflow.defn(name=CarrierClaimContract.WORKFLOW_TYPE)
class StandInCarrierClaim:
    """A lost parcel's claim: started by name, answers with its input."""

    @workflow.run
    async def run(self, input: CarrierClaimInput) -> CarrierClaimInput:
        return input
