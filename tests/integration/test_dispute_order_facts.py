"""The chargeback intake attaches the disputed order's market and amount from
the store (clients/chargeback.py), so the case is listed under its market."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from clients.chargeback import resolve_order
from domain.chargeback import DisputedOrder, DisputeEvent, DisputeEventKind, DisputeProvider
from store import payment_refs, signals
from tests.factories import make_order


def _event(**values: object) -> DisputeEvent:
    return DisputeEvent(
        event_id="evt_facts_1",
        provider=DisputeProvider.STRIPE,
        dispute_id="dp_facts_1",
        kind=DisputeEventKind.OPENED,
        provider_event="charge.dispute.created",
        occurred_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
        **values,  # type: ignore[arg-type]
    )


async def test_resolved_order_carries_its_market_and_amount(clean_db: asyncpg.Pool) -> None:
    order = make_order("IT-7001", market="IT")
    await signals.record_and_load_signals(clean_db, order)
    await payment_refs.record(
        clean_db, reference="pi_facts_1", order_id=order.order_id, provider="stripe"
    )
    event = await resolve_order(clean_db, _event(payment_refs=["pi_facts_1"]))
    assert event.order_id == "IT-7001"
    assert event.order_facts == DisputedOrder(
        market="IT", amount_minor=order.total_minor, currency=order.currency
    )


async def test_an_order_steward_never_reviewed_has_no_facts(clean_db: asyncpg.Pool) -> None:
    await payment_refs.record(
        clean_db, reference="pi_facts_2", order_id="FR-7002", provider="stripe"
    )
    event = await resolve_order(clean_db, _event(payment_refs=["pi_facts_2"]))
    assert (event.order_id, event.order_facts) == ("FR-7002", None)
    unresolved = await resolve_order(clean_db, _event(payment_refs=["pi_nobody"]))
    assert (unresolved.order_id, unresolved.order_facts) == (None, None)
