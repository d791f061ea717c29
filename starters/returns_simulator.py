"""Simulated returns: realistic reasons, resolutions and 3PL grades for orders
Steward has captured, and the carrier and 3PL messages that follow.

`plan_returns` is pure and seeded (unit-tested); `run_returns` sends a plan
through the client helpers, as the customer service tool, the carrier and the
3PL would. Rates follow what a luxury house sees: fit drives ready-to-wear and
shoe returns, changed minds drive bags and accessories, and most items come
back first choice.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio.client import Client

from clients import returns
from domain.orders import ItemCategory, Order
from domain.returns import (
    CancelReturnRequest,
    CarrierEvent,
    CarrierEventKind,
    CustomerContact,
    OrderLine,
    QcGrade,
    QcResult,
    Resolution,
    ReturnInput,
    ReturnLine,
    ReturnOrder,
    ReturnReason,
    return_policy_for,
)
from store.returns import Executor

_K = TypeVar("_K")

REASONS_BY_CATEGORY: Mapping[ItemCategory, Mapping[ReturnReason, float]] = {
    ItemCategory.READY_TO_WEAR: {
        ReturnReason.TOO_SMALL: 0.32,
        ReturnReason.TOO_LARGE: 0.28,
        ReturnReason.COLOUR_DIFFERS: 0.12,
        ReturnReason.NO_LONGER_WANTED: 0.18,
        ReturnReason.DEFECTIVE: 0.05,
        ReturnReason.ARRIVED_LATE: 0.05,
    },
    ItemCategory.SHOES: {
        ReturnReason.TOO_SMALL: 0.38,
        ReturnReason.TOO_LARGE: 0.30,
        ReturnReason.NO_LONGER_WANTED: 0.20,
        ReturnReason.DEFECTIVE: 0.07,
        ReturnReason.WRONG_ITEM: 0.05,
    },
}
DEFAULT_REASONS: Mapping[ReturnReason, float] = {
    ReturnReason.NO_LONGER_WANTED: 0.34,
    ReturnReason.GIFT_DECLINED: 0.12,
    ReturnReason.COLOUR_DIFFERS: 0.12,
    ReturnReason.MATERIAL_DIFFERS: 0.12,
    ReturnReason.DEFECTIVE: 0.10,
    ReturnReason.DAMAGED_IN_TRANSIT: 0.08,
    ReturnReason.WRONG_ITEM: 0.06,
    ReturnReason.ARRIVED_LATE: 0.06,
}
RESOLUTIONS: Mapping[Resolution, float] = {
    Resolution.REFUND: 0.80,
    Resolution.STORE_CREDIT: 0.20,
}
GRADES: Mapping[QcGrade, float] = {
    QcGrade.FIRST_CHOICE: 0.78,
    QcGrade.SECOND_CHOICE: 0.10,
    QcGrade.KO: 0.05,
    QcGrade.UNCERTAIN: 0.07,
}
# Share of customers who never post the parcel, and who cancel before shipping.
NEVER_SHIPPED = 0.08
CANCELLED = 0.04
SERIAL_MISMATCH = 0.02


@dataclass(frozen=True)
class ReturnScenario:
    request: ReturnInput
    fate: str  # "returned" | "never_shipped" | "cancelled"
    qc: QcResult | None


def _pick(rng: random.Random, weights: Mapping[_K, float]) -> _K:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def plan_returns(
    seed: int, orders: Sequence[Order], now: datetime, requested_by: str = "cs-simulator"
) -> list[ReturnScenario]:
    """One return per order, for one of its lines, with what will happen to it."""
    rng = random.Random(seed)
    scenarios: list[ReturnScenario] = []
    for number, order in enumerate(orders, start=1):
        item = rng.choice(order.items)
        reasons = REASONS_BY_CATEGORY.get(item.category, DEFAULT_REASONS)
        reason = _pick(rng, reasons)
        resolution = _pick(rng, RESOLUTIONS)
        rma_id = f"RMA-{seed}-{number:05d}"
        request = ReturnInput(
            rma_id=rma_id,
            order=ReturnOrder(
                order_id=order.order_id,
                market=order.market,
                currency=order.currency,
                delivered_at=now - timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 23)),
                lines=[
                    OrderLine(
                        sku=i.sku,
                        name=i.name,
                        unit_price_minor=i.unit_price_minor,
                        quantity=i.quantity,
                        serial_number=i.serial_number,
                    )
                    for i in order.items
                ],
                shipping_minor=order.shipping_minor,
                payment_provider=order.payment.provider,
                authorisation_ref=order.payment.authorisation_ref,
            ),
            lines=[ReturnLine(sku=item.sku, quantity=1)],
            reason=reason,
            resolution=resolution,
            contact=CustomerContact(email=order.customer.email),
            requested_by=requested_by,
            policy=return_policy_for(
                order.market, order.currency, starting=datetime.now(UTC).date()
            ),
        )
        roll = rng.random()
        if roll < NEVER_SHIPPED:
            scenarios.append(ReturnScenario(request, "never_shipped", None))
            continue
        if roll < NEVER_SHIPPED + CANCELLED:
            scenarios.append(ReturnScenario(request, "cancelled", None))
            continue
        # A defect claimed by the customer is more often confirmed by QC.
        grades = dict(GRADES)
        if reason in (ReturnReason.DEFECTIVE, ReturnReason.DAMAGED_IN_TRANSIT):
            grades[QcGrade.KO] = 0.35
        grade = _pick(rng, grades)
        serial = item.serial_number
        if serial and rng.random() < SERIAL_MISMATCH:
            serial = f"{serial}-X"
        qc = QcResult(
            event_id=f"{rma_id}/qc",
            grade=grade,
            notes={
                QcGrade.FIRST_CHOICE: "tags attached, dust bag and box complete",
                QcGrade.SECOND_CHOICE: "light wear on the corners",
                QcGrade.KO: "visible damage; not resaleable",
                QcGrade.UNCERTAIN: "possible use; needs a second look",
            }[grade],
            photos=[f"https://qc.example/{rma_id}/{n}.jpg" for n in range(1, rng.randint(2, 5))],
            serial_number_seen=serial,
        )
        scenarios.append(ReturnScenario(request, "returned", qc))
    return scenarios


@dataclass
class ReturnsReport:
    started: int = 0
    already_existed: int = 0
    failed: int = 0
    fates: Counter[str] = field(default_factory=Counter)
    grades: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


async def _tracking_number(client: Client, rma_id: str, timeout: float = 20.0) -> str | None:
    """The label's tracking number once issued; None if the return was refused."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        state = await returns.get_status(client, rma_id)
        if state.tracking_number:
            return state.tracking_number
        if state.status.value == "rejected":
            return None
        await asyncio.sleep(0.2)
    return None


async def run_returns(
    client: Client,
    scenarios: Sequence[ReturnScenario],
    task_queue: str,
    *,
    db: Executor | None = None,
) -> ReturnsReport:
    """Open each return and play the carrier's and the 3PL's part. `db`: the
    returns start as the API starts them, their customers' emails kept in
    the personal-data store (issue 21)."""
    report = ReturnsReport()
    for scenario in scenarios:
        request = scenario.request
        try:
            started = await returns.start_return(client, request, task_queue, db=db)
            if not started.started:
                report.already_existed += 1
                continue
            report.started += 1
            report.fates[scenario.fate] += 1
            report.reasons[request.reason.value] += 1
            tracking = await _tracking_number(client, request.rma_id)
            if tracking is None or scenario.fate == "never_shipped":
                continue
            if scenario.fate == "cancelled":
                await returns.cancel(
                    client,
                    request.rma_id,
                    CancelReturnRequest(
                        event_id=f"{request.rma_id}/cancel", reason="customer kept the item"
                    ),
                    db=db,
                )
                continue
            now = datetime.now(UTC)
            for kind in (CarrierEventKind.IN_TRANSIT, CarrierEventKind.DELIVERED_TO_WAREHOUSE):
                await returns.carrier_event(
                    client,
                    request.rma_id,
                    CarrierEvent(
                        event_id=f"{request.rma_id}/{kind}",
                        kind=kind,
                        tracking_number=tracking,
                        occurred_at=now,
                    ),
                )
            assert scenario.qc is not None
            await returns.qc_result(client, request.rma_id, scenario.qc)
            report.grades[scenario.qc.grade.value] += 1
        except Exception as err:  # reported per return; the run goes on
            report.failed += 1
            report.errors.append(f"{request.rma_id}: {type(err).__name__}: {err}")
    return report
