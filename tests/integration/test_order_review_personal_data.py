"""An order review started with its personal values behind a subject id
(issue 21), on a real Temporal and PostgreSQL: the review's history (decoded
through the codec) holds none of them, the scoring reads them from the
personal-data store (a block-listed email is still found), and the release
starts the fulfilment with the real address."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

import workflows
from activities.scoring import ScoringActivities
from clients import order_review
from domain.common import Role
from domain.order_privacy import is_pseudonymised
from domain.review import (
    CustomerAnswer,
    DecideInput,
    DecisionReason,
    ReviewDecision,
    ReviewStatus,
)
from domain.risk import ReasonCode, RiskAssessment, ScoreOrderInput
from domain.risk_rules import IdentityKind, identity_hash
from store import fulfilment as fulfilment_store
from store import order_subjects, personal_data, signals
from tests.factories import make_order
from tests.integration.polling import eventually
from workers import activities
from workers.settings import Settings


def _payloads(message: Message) -> list[Payload]:
    found: list[Payload] = []
    for _, value in message.ListFields():
        if isinstance(value, Payload):
            found.append(value)
        elif isinstance(value, Message):
            found.extend(_payloads(value))
        elif isinstance(value, (str, bytes, int, float, bool)):
            continue
        else:  # a repeated field or a map
            items: Any = value.values() if callable(getattr(value, "values", None)) else value
            for item in items:
                if isinstance(item, Payload):
                    found.append(item)
                elif isinstance(item, Message):
                    found.extend(_payloads(item))
    return found


async def decoded_history(client: Client, workflow_id: str) -> bytes:
    """Every payload of the run's history, decoded by the client's codec."""
    payloads: list[Payload] = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        payloads.extend(_payloads(event))
    codec = client.data_converter.payload_codec
    assert codec is not None
    return b"\n".join(p.data for p in await codec.decode(payloads))


async def test_review_holds_a_subject_id_and_its_activities_read_the_values(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> None:
    unique = uuid.uuid4().hex[:10]
    accepted = make_order(
        f"PDR-A-{unique}",
        customer={
            "customer_id": f"C-A-{unique}",
            "email": f"ottilie.{unique}@example.com",
            "full_name": f"Ottilie Marchetti-{unique}",
        },
        shipping_address={"line1": f"{unique} avenue Montaigne"},
        billing_address={"line1": f"{unique} avenue Montaigne"},
        device={"device_id": f"dev-A-{unique}", "ip_address": "203.0.113.77"},
    )
    blocked_email = f"blocked.{unique}@example.com"
    blocked = make_order(
        f"PDR-B-{unique}",
        customer={"customer_id": f"C-B-{unique}", "email": blocked_email},
        device={"device_id": f"dev-B-{unique}"},
    )
    await signals.add_to_list(db_pool, "block", "email", blocked_email, "test", "tests")
    settings = integration_settings.model_copy(update={"task_queue": f"pdr-{unique}"})
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ):
        for order in (accepted, blocked):
            await order_review.start_review(client, order, settings.task_queue, db=db_pool)
        for order in (accepted, blocked):
            await client.get_workflow_handle(f"order-review:{order.order_id}").result()

        # The scoring read the email from the store: the block list found it.
        declined = await order_review.get_status(client, blocked.order_id)
        assert declined.status is ReviewStatus.CANCELLED
        assert declined.risk is not None
        assert ReasonCode.BLOCKLIST_EMAIL in declined.risk.reason_codes
        released = await order_review.get_status(client, accepted.order_id)
        assert released.status is ReviewStatus.RELEASED

        # The release started the fulfilment with the real address.
        kept = await eventually(
            lambda: fulfilment_store.load_order(db_pool, accepted.order_id),
            lambda o: o is not None,
            what="the fulfilment to keep the released order",
        )
        assert kept is not None
        assert kept.shipping_address.line1 == accepted.shipping_address.line1
        assert kept.customer.email == accepted.customer.email

    # One subject per order, holding the values; the review's history none.
    sid = order_subjects.order_subject_id(accepted.order_id)
    fields = await personal_data.get_subject(db_pool, sid)
    assert fields["customer.email"] == accepted.customer.email
    history = await decoded_history(client, f"order-review:{accepted.order_id}")
    assert accepted.order_id.encode() in history and sid.encode() in history
    for value in (
        accepted.customer.email,
        accepted.customer.full_name,
        accepted.shipping_address.line1,
        accepted.device.ip_address,
    ):
        assert value.encode() not in history, f"{value!r} is in the review's history"
    assert blocked_email.encode() not in await decoded_history(
        client, f"order-review:{blocked.order_id}"
    )


async def test_put_and_load_order_round_trip_and_erasure(db_pool: asyncpg.Pool) -> None:
    order = make_order(f"PDR-R-{uuid.uuid4().hex[:10]}")
    sid, pseudonymised = await order_subjects.put_order(db_pool, order)
    assert is_pseudonymised(pseudonymised)
    assert await order_subjects.load_order(db_pool, pseudonymised, sid) == order
    # A retried start rewrites the same subject.
    assert (await order_subjects.put_order(db_pool, order))[0] == sid
    await personal_data.erase_subject(db_pool, sid, reason="test")
    erased = await order_subjects.load_order(db_pool, pseudonymised, sid)
    assert erased.customer.email == "erased@steward.erased"
    assert erased.shipping_address.line1 == personal_data.ERASED_PLACEHOLDER
    assert erased.payment == order.payment and erased.items == order.items


async def test_a_customer_answer_keeps_its_words_in_the_store(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> None:
    unique = uuid.uuid4().hex[:10]
    order = make_order(
        f"PDR-M-{unique}",
        customer={"customer_id": f"C-M-{unique}", "email": f"m.{unique}@example.com"},
        # Risky, so the review waits for a coordinator who asks the customer.
        payment={"avs_result": "mismatch", "cvv_result": "mismatch"},
        device={"device_id": f"dev-M-{unique}"},
    )
    words = f"Yes it was me, I am travelling to Lyon ({unique})"
    settings = integration_settings.model_copy(update={"task_queue": f"pdm-{unique}"})
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows.ALL_WORKFLOWS,
        activities=activities.build_activities(db_pool, settings),
    ):
        await order_review.start_review(client, order, settings.task_queue, db=db_pool)
        await eventually(
            lambda: order_review.get_status(client, order.order_id),
            lambda s: s.status is ReviewStatus.AWAITING_REVIEW,
            what="the review to wait for a coordinator",
        )
        await order_review.decide(
            client,
            order.order_id,
            DecideInput(
                decision=ReviewDecision.ASK_CUSTOMER,
                reason_code=DecisionReason.IDENTITY_CHECK_NEEDED,
                note="",
                actor="alice",
                role=Role.COORDINATOR,
            ),
        )
        answer = CustomerAnswer(event_id=f"ans-{unique}", confirmed=True, message=words)
        await order_review.answer_customer(client, order.order_id, answer, db=db_pool)
        state = await eventually(
            lambda: order_review.get_status(client, order.order_id),
            lambda s: len(s.customer_answers) == 1 and s.status is ReviewStatus.AWAITING_REVIEW,
            what="the answer to reach the review",
        )

    (kept,) = state.customer_answers
    sid = order_subjects.message_subject_id(order.order_id, answer.event_id)
    assert kept.message == "" and kept.message_subject_id == sid
    shown = await order_review.with_messages(db_pool, state)
    assert shown.customer_answers[0].message == words
    assert words.encode() not in await decoded_history(client, f"order-review:{order.order_id}")
    # A privacy request that finds the customer's order subject reaches it.
    owner = order_subjects.order_subject_id(order.order_id)
    assert sid in await personal_data.live_subjects(db_pool, [owner])
    await personal_data.erase_subject(db_pool, sid, reason="test")
    erased = await order_review.with_messages(db_pool, state)
    assert erased.customer_answers[0].message == personal_data.ERASED_PLACEHOLDER


async def test_scoring_by_subject_costs_one_query_more(db_pool: asyncpg.Pool) -> None:
    """The hot path (issue 21): scoring an order held by subject id reads its
    personal values in one query, and scores it as the order in clear."""
    unique = uuid.uuid4().hex[:10]

    async def score(order_id: str, *, by_subject: bool) -> tuple[RiskAssessment, int]:
        order = make_order(
            order_id,
            customer={"customer_id": f"C-Q-{unique}", "email": f"q.{unique}@example.com"},
            device={"device_id": f"dev-Q-{unique}"},
        )
        subject_id = None
        if by_subject:
            subject_id, order = await order_subjects.put_order(db_pool, order)
        statements: list[str] = []
        async with db_pool.acquire() as conn:
            conn.add_query_logger(lambda q: statements.append(q.query))
            risk = await ActivityEnvironment().run(
                ScoringActivities(conn).score_order,
                ScoreOrderInput(order=order, subject_id=subject_id),
            )
        return risk, len(statements)

    in_clear, plain = await score(f"PDR-Q1-{unique}", by_subject=False)
    by_subject, with_subject = await score(f"PDR-Q2-{unique}", by_subject=True)
    assert with_subject == plain + 1
    assert by_subject.rule_set_version == in_clear.rule_set_version
    # Scored on the real email, not the placeholder: velocity found it.
    recorded = await db_pool.fetchval(
        "SELECT email_hash FROM orders_seen WHERE order_id = $1", f"PDR-Q2-{unique}"
    )
    assert recorded == identity_hash(IdentityKind.EMAIL, f"q.{unique}@example.com")
