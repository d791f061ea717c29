"""The disputed order's market and amount (issue 14, the `chargeback-order-facts`
patch): a chargeback is listed under its order's market (StewardMarket, the
case row) once the order is known, and an early fraud warning, which names no
amount, shows the order's amount or says it is unknown instead of "0.00 XXX"."""

from __future__ import annotations

import uuid

import pytest

from domain.chargeback import DisputedOrder, DisputeEventKind, DisputeStatus, LinkOrderInput
from domain.common import Role
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from tests.workflows.test_chargeback import dispute_id, event, start
from tests.workflows.test_chargeback_link import unresolved
from workflows.chargeback import ChargebackWorkflow
from workflows.visibility import MARKET

pytestmark = pytest.mark.workflows([ChargebackWorkflow])

FR_ORDER = DisputedOrder(market="FR", amount_minor=245_000, currency="EUR")


def _titles(world: FakeWorld) -> list[str]:
    return [o.title for t in world.audit.transitions for o in t.open_tasks]


async def test_a_dispute_of_a_known_order_is_listed_under_its_market(
    harness: Harness, world: FakeWorld
) -> None:
    first = event(harness.now(), DisputeEventKind.OPENED, dispute_id=dispute_id())
    handle = await start(harness, first.model_copy(update={"order_facts": FR_ORDER}))
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    state = await handle.query(ChargebackWorkflow.status)
    assert state.order_facts == FR_ORDER
    described = await handle.describe()
    assert described.typed_search_attributes.get(MARKET) == "FR"
    assert {c.market for c in world.audit.cases()} == {"FR"}


async def test_without_order_facts_no_market_is_set(harness: Harness, world: FakeWorld) -> None:
    handle = await start(
        harness, event(harness.now(), DisputeEventKind.OPENED, dispute_id=dispute_id())
    )
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    assert (await handle.describe()).typed_search_attributes.get(MARKET) is None
    assert {c.market for c in world.audit.cases()} == {None}


async def test_a_linked_dispute_takes_the_market_of_the_order_it_is_linked_to(
    harness: Harness, world: FakeWorld
) -> None:
    handle = await start(
        harness, unresolved(event(harness.now(), DisputeEventKind.OPENED, dispute_id=dispute_id()))
    )
    await eventually(
        lambda: "order_unresolved" in world.audit.actions(), what="the link task to open"
    )
    assert (await handle.describe()).typed_search_attributes.get(MARKET) is None
    it_order = DisputedOrder(market="IT", amount_minor=99_000, currency="EUR")
    await handle.execute_update(
        ChargebackWorkflow.link_order,
        LinkOrderInput(
            order_id="IT-200002",
            actor="camille",
            role=Role.COORDINATOR,
            order_facts=it_order,
        ),
    )
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    assert (await handle.describe()).typed_search_attributes.get(MARKET) == "IT"
    assert world.audit.cases()[-1].market == "IT"


def _warning(harness: Harness) -> object:
    return event(
        harness.now(),
        DisputeEventKind.EARLY_FRAUD_WARNING,
        dispute_id=f"issfr_{uuid.uuid4().hex[:10]}",
        due_in=None,
        amount_minor=0,
    ).model_copy(update={"currency": "XXX"})


async def test_early_fraud_warning_task_shows_the_orders_amount(
    harness: Harness, world: FakeWorld
) -> None:
    efw = _warning(harness).model_copy(update={"order_facts": FR_ORDER})  # type: ignore[attr-defined]
    handle = await start(harness, efw)
    await wait_for_status(handle, DisputeStatus.AWAITING_COORDINATOR)
    (title,) = _titles(world)
    assert "order 2,450.00 EUR" in title
    assert "XXX" not in title and "0.00" not in title.replace("2,450.00", "")
    description = await handle.describe()
    assert description.typed_search_attributes.get(MARKET) == "FR"


async def test_early_fraud_warning_of_an_unknown_order_says_amount_unknown(
    harness: Harness, world: FakeWorld
) -> None:
    efw = unresolved(_warning(harness))  # type: ignore[arg-type]
    await start(harness, efw)
    await eventually(lambda: _titles(world) != [], what="the link task")
    (title,) = _titles(world)
    assert "amount unknown" in title
    assert "XXX" not in title
