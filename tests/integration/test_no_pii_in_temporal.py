"""Temporal's own database must never hold a customer's email, name or street
in clear text: payloads are AES-GCM encrypted by the codec, and ids and search
attributes carry business keys only.

The codec's encryption proves little on its own (whoever holds the codec key
reads every payload, and the histories outlive an erasure), so issue 21 asks
for more: the histories hold subject ids, never the values. The second test
runs each process through the API and its webhooks (tests/integration/
pii_probe.py) and decodes every payload of every event of every workflow the
scenario started (inputs, signals, updates, activity inputs and results,
queries' answers are not stored; failures are): none of the values typed may
be there. A leak names the process, the workflow id, the value and the event:

    .venv/bin/pytest tests/integration/test_no_pii_in_temporal.py -k fulfilment
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from clients import fulfilment, order_review
from domain.common import Role
from domain.fulfilment import ChangeAddressInput, FulfilmentStatus
from domain.orders import Address
from domain.review import DecideInput, DecisionReason, ReviewDecision, ReviewStatus
from tests.factories import make_order
from tests.integration import pii_probe as probe
from tests.integration.polling import eventually
from workers import activities
from workers.dev_server import TemporalDevServer
from workers.settings import Settings


@dataclass(frozen=True)
class Principal:
    actor: str
    role: Role


async def test_temporal_database_holds_no_customer_pii(
    client: Client,
    dev_server: TemporalDevServer,
    db_pool: asyncpg.Pool,
    integration_settings: Settings,
) -> None:
    unique = uuid.uuid4().hex[:10]
    order = make_order(
        f"PII-{unique}",
        customer={
            "customer_id": f"C-{unique}",
            "email": f"henriette.{unique}@example.com",
            "full_name": f"Henriette Vauquelin-{unique}",
        },
        billing_address={"line1": f"{unique} rue du Faubourg Saint-Honoré"},
        shipping_address={"line1": f"{unique} rue du Faubourg Saint-Honoré"},
        # A risky order so the review also carries an update, a task and a query.
        payment={
            "avs_result": "mismatch",
            "cvv_result": "mismatch",
            "card_fingerprint": f"fp-{unique}",
        },
        device={"device_id": f"dev-{unique}"},
    )
    settings = integration_settings.model_copy(update={"task_queue": f"pii-{unique}"})
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ):
        await order_review.start_review(client, order, settings.task_queue)
        state = await eventually(
            lambda: order_review.get_status(client, order.order_id),
            lambda s: s.status is ReviewStatus.AWAITING_REVIEW,
            what="the review to wait for a coordinator",
        )
        assert state.status is ReviewStatus.AWAITING_REVIEW
        await order_review.decide(
            client,
            order.order_id,
            DecideInput(
                decision=ReviewDecision.APPROVE,
                reason_code=DecisionReason.VERIFIED_CUSTOMER,
                note="called the client",
                actor="alice",
                role=Role.COORDINATOR,
            ),
        )
        handle = client.get_workflow_handle(f"order-review:{order.order_id}")
        await handle.result()
        # The release started the order's fulfilment; a new address for it
        # (issue 16) reaches the personal-data store, not Temporal in clear.
        await eventually(
            lambda: fulfilment.get_fulfilment(client, order.order_id),
            lambda s: s.status is FulfilmentStatus.RELEASED,
            what="the fulfilment to start at release",
        )
        new_street = f"{unique} quai de Valmy"
        changed = await fulfilment.change_address(
            client,
            order.order_id,
            ChangeAddressInput(
                address=Address(line1=new_street, city="Paris", postal_code="75010", country="FR")
            ),
            Principal("alice", Role.COORDINATOR),
        )
        assert changed.address_changes[-1].outcome == "applied"

    stored = b"".join(
        path.read_bytes() for path in dev_server.db_path.parent.glob(dev_server.db_path.name + "*")
    )
    # The order id is in the workflow id: proof we are reading the right data.
    assert order.order_id.encode() in stored
    for secret in (
        order.customer.email,
        order.customer.full_name,
        order.shipping_address.line1,
        new_street,
        order.payment.card_fingerprint,
    ):
        assert secret.encode() not in stored, f"{secret!r} found in clear in Temporal's database"


@pytest.mark.parametrize("process", sorted(probe.SCENARIOS))
async def test_decoded_histories_hold_no_personal_value(
    process: str, client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> None:
    trail = await probe.trail_of(process, client, db_pool, integration_settings)
    # The scenario's own process's workflows are among those searched.
    own = {"returns": "return", "console": "fulfilment"}.get(process, process)
    assert any(probe.process_of(w) == own for w in trail.workflow_ids), trail.workflow_ids
    found = []
    for workflow_id in sorted(trail.workflow_ids):
        found += await probe.history_leaks(
            client, probe.process_of(workflow_id), workflow_id, trail.values
        )
    assert not found, "personal values in Temporal:\n" + "\n".join(map(str, found))
