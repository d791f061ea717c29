"""Steward's processes: one workflow class per module."""

from workflows.order_review import OrderReviewWorkflow

ALL_WORKFLOWS: list[type] = [OrderReviewWorkflow]

__all__ = ["ALL_WORKFLOWS", "OrderReviewWorkflow"]
