"""Every side effect Steward performs, grouped by the system it touches.

`build_activities` is what the worker registers: bound methods of small
classes holding their dependencies (the pool, a port).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import asyncpg

from activities.audit import AuditActivities
from activities.notifications import NotificationActivities
from activities.payments import PaymentActivities
from activities.scoring import ScoringActivities
from activities.simulated import (
    FaultPlan,
    SimulatedNotifier,
    SimulatedPaymentProvider,
    SimulatedWarehouse,
)
from activities.tasks import TaskActivities
from activities.warehouse import WarehouseActivities

if TYPE_CHECKING:
    # Only for the annotation: activities must not depend on the worker package.
    from workers.settings import Settings


def build_activities(pool: asyncpg.Pool, settings: Settings) -> list[Callable[..., Any]]:
    """All activities, wired to the simulated outside world configured by
    `settings.sim_latency_ms` and `settings.sim_failure_rate`.

    The last six (audit, case status, transition, tasks) are meant to be
    called as local activities; registering them on the worker is the same
    either way.
    """

    def plan() -> FaultPlan:
        # One plan per system: each has its own scripted queue and random stream.
        return FaultPlan(latency_ms=settings.sim_latency_ms, failure_rate=settings.sim_failure_rate)

    payment_provider = SimulatedPaymentProvider(pool, plan())
    scoring = ScoringActivities(pool, {payment_provider.name: payment_provider})
    payments = PaymentActivities(pool, {payment_provider.name: payment_provider})
    warehouse = WarehouseActivities(SimulatedWarehouse(pool, plan()))
    notifications = NotificationActivities(SimulatedNotifier(pool, plan()))
    audit = AuditActivities(pool)
    tasks = TaskActivities(pool)
    return [
        scoring.score_order,
        payments.capture_payment,
        payments.void_authorisation,
        payments.refund_payment,
        warehouse.release_order_to_warehouse,
        notifications.notify_customer,
        audit.record_audit,
        audit.record_case_status,
        audit.record_transition,
        tasks.open_task,
        tasks.update_task,
        tasks.close_task,
    ]


__all__ = [
    "AuditActivities",
    "NotificationActivities",
    "PaymentActivities",
    "ScoringActivities",
    "TaskActivities",
    "WarehouseActivities",
    "build_activities",
]
