"""The returns simulator's plan: seeded, realistic, and valid returns."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from domain.orders import ItemCategory
from domain.returns import ParentReason, QcGrade, parent_reason
from starters.returns_simulator import plan_returns
from starters.simulator import generate_orders

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_same_seed_same_plan() -> None:
    orders = generate_orders(11, 40, NOW)
    first = plan_returns(11, orders, NOW)
    again = plan_returns(11, orders, NOW)
    assert [s.request.model_dump() for s in first] == [s.request.model_dump() for s in again]
    assert [s.fate for s in first] == [s.fate for s in again]


def test_plan_is_realistic() -> None:
    orders = generate_orders(5, 400, NOW)
    plan = plan_returns(5, orders, NOW)
    assert len(plan) == len(orders)
    fates = Counter(s.fate for s in plan)
    assert fates["returned"] > 0.8 * len(plan)
    assert fates["never_shipped"] > 0 and fates["cancelled"] > 0
    grades = Counter(s.qc.grade for s in plan if s.qc is not None)
    assert grades.most_common(1)[0][0] is QcGrade.FIRST_CHOICE
    assert set(grades) == set(QcGrade)
    for scenario in plan:
        request = scenario.request
        # Every returned line is in the order, delivered inside the window.
        line = request.order.line(request.lines[0].sku)
        assert line is not None
        assert NOW - request.order.delivered_at < request.policy.return_window
        assert scenario.fate != "returned" or scenario.qc is not None
    # Fit drives returns of clothes and shoes.
    fitted = [
        s.request
        for s in plan
        if next(i for i in orders if i.order_id == s.request.order.order_id).items[0].category
        in (ItemCategory.READY_TO_WEAR, ItemCategory.SHOES)
        and len(s.request.order.lines) == 1
    ]
    fit_share = sum(parent_reason(r.reason) is ParentReason.FIT for r in fitted) / max(
        len(fitted), 1
    )
    assert fit_share > 0.4
