"""Decisions only from Steward's API (workers/decision_signing.py), on a real
worker with the verifier and Steward's encrypting converter:

- a decision signed by a Steward client (what the API sends) is applied;
- the same decision sent as an ops person would with the Temporal CLI, by a
  client without the decision key, is refused with a reason, and nothing of
  it enters history;
- one sent without the codec (plain JSON in Temporal) is refused as such;
- a signature for another case, or for a changed decision, does not pass.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowUpdateInput,
    WorkflowUpdateFailedError,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from domain.common import Role
from domain.ids import order_review_id
from domain.review import (
    DecideInput,
    DecisionReason,
    OrderReviewInput,
    ReviewDecision,
    ReviewStatus,
)
from tests.workflows.harness import FakeWorld, Harness, wait_for_status
from tests.workflows.test_order_review import POLICY, REVIEW, fresh_order
from workers.codec import EncryptionCodec, Keyring
from workers.converter import build_data_converter
from workers.decision_signing import (
    DECISION_NOT_SIGNED,
    HEADER,
    DecisionSigner,
    DecisionVerifier,
    sign,
)
from workflows.order_review import OrderReviewWorkflow

pytestmark = [pytest.mark.workflows([OrderReviewWorkflow]), pytest.mark.world(risk=REVIEW)]

CODEC = Keyring.generate()
DECISION_KEYS = Keyring.generate("d1")


def approve(actor: str = "alice", role: Role = Role.COORDINATOR) -> DecideInput:
    return DecideInput(
        decision=ReviewDecision.APPROVE,
        reason_code=DecisionReason.VERIFIED_CUSTOMER,
        note="called the client",
        actor=actor,
        role=role,
    )


class PlainOut(EncryptionCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


class Clients:
    def __init__(self, base: Client) -> None:
        service, namespace = base.service_client, base.namespace
        converter = build_data_converter(CODEC)
        # What the API holds: the codec and the decision key.
        self.api = Client(
            service,
            namespace=namespace,
            data_converter=converter,
            interceptors=[DecisionSigner(DECISION_KEYS)],
        )
        # Someone with the codec (the UI's codec endpoint) but not the decision key.
        self.codec_only = Client(service, namespace=namespace, data_converter=converter)
        # The Temporal CLI without the codec: plain JSON (it cannot read the
        # encrypted refusal either)...
        self.plain = Client(service, namespace=namespace, data_converter=pydantic_data_converter)
        # ...and, to read the reason, plain JSON out with the codec's decoding in.
        self.plain_reading = Client(
            service,
            namespace=namespace,
            data_converter=dataclasses.replace(converter, payload_codec=PlainOut(CODEC)),
            interceptors=[DecisionSigner(DECISION_KEYS)],
        )
        # A client signing with a key the workers do not know.
        self.other_key = Client(
            service,
            namespace=namespace,
            data_converter=converter,
            interceptors=[DecisionSigner(Keyring.generate("d1"))],
        )


@pytest_asyncio.fixture(loop_scope="session")
async def clients(harness: Harness, world: FakeWorld) -> AsyncIterator[Clients]:
    clients = Clients(harness.client)
    queue = f"signed-{uuid.uuid4()}"
    harness.task_queue = queue
    async with Worker(
        clients.api,
        task_queue=queue,
        workflows=[OrderReviewWorkflow],
        activities=world.activities(),
        # The server's clock is skipped by other tests: no age limit here.
        interceptors=[DecisionVerifier(DECISION_KEYS, max_age=None)],
    ):
        yield clients


async def awaiting_review(harness: Harness, clients: Clients) -> Any:
    order = fresh_order(harness.now())
    handle = await clients.api.start_workflow(
        OrderReviewWorkflow.run,
        OrderReviewInput(order=order, policy=POLICY),
        id=order_review_id(order.order_id),
        task_queue=harness.task_queue,
    )
    harness._started.append(handle.id)  # terminated after the test if still running
    await wait_for_status(handle, ReviewStatus.AWAITING_REVIEW)
    return handle


async def refusal(client: Client, workflow_id: str, decision: DecideInput) -> ApplicationError:
    handle = client.get_workflow_handle(workflow_id)
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(OrderReviewWorkflow.decide, decision)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == DECISION_NOT_SIGNED
    return cause


async def test_only_a_signed_encrypted_decision_is_applied(
    harness: Harness, clients: Clients, world: FakeWorld
) -> None:
    handle = await awaiting_review(harness, clients)
    workflow_id = handle.id

    unsigned = await refusal(clients.codec_only, workflow_id, approve(role=Role.MANAGER))
    assert "not signed by the Steward API" in unsigned.message
    await refusal(clients.plain, workflow_id, approve(role=Role.MANAGER))
    # Even signed, a decision sent without the codec is refused.
    plain = await refusal(clients.plain_reading, workflow_id, approve(role=Role.MANAGER))
    assert "sent unencrypted" in plain.message
    forged = await refusal(clients.other_key, workflow_id, approve())
    assert "signed with an unknown key" not in forged.message  # same kid, wrong key
    assert "does not match" in forged.message

    # Nothing of the refused attempts entered history, and no money moved.
    history = await handle.fetch_history()
    assert not [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert world.payments.kinds() == []
    assert (await handle.query(OrderReviewWorkflow.status)).status is ReviewStatus.AWAITING_REVIEW

    state = await clients.api.get_workflow_handle(workflow_id).execute_update(
        OrderReviewWorkflow.decide, approve()
    )
    assert state.decisions[-1].actor == "alice"
    await wait_for_status(handle, ReviewStatus.RELEASED)
    assert world.payments.kinds() == ["capture"]


class CopiedHeader(Interceptor):
    """Sends every update with `header` and update id u-1, as someone would who
    copied a signed decision's header from one case's history."""

    def __init__(self, header: Payload) -> None:
        self._header = header

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        header = self._header

        class Out(OutboundInterceptor):
            async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> Any:
                input.update_id = "u-1"
                input.headers = {**input.headers, HEADER: header}
                return await super().start_workflow_update(input)

        return Out(next)


async def test_a_signature_holds_for_one_case_and_one_decision(
    harness: Harness, clients: Clients
) -> None:
    first = await awaiting_review(harness, clients)
    second = await awaiting_review(harness, clients)
    signed = sign(
        DECISION_KEYS,
        workflow_id=first.id,
        update="decide",
        update_id="u-1",
        args=[approve()],
        now=datetime.now(UTC),
    )
    copying = Client(
        harness.client.service_client,
        namespace=harness.client.namespace,
        data_converter=build_data_converter(CODEC),
        interceptors=[CopiedHeader(signed)],
    )
    other_case = await refusal(copying, second.id, approve())
    assert "does not match this case and decision" in other_case.message
    changed = await refusal(copying, first.id, approve(actor="marc", role=Role.MANAGER))
    assert "does not match" in changed.message
    # The header signed for exactly this case and this decision passes.
    state = await copying.get_workflow_handle(first.id).execute_update(
        OrderReviewWorkflow.decide, approve()
    )
    assert state.decisions[-1].actor == "alice"
