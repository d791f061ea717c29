"""Failures leaving an activity are bounded by the worker (issue 13, bug 3):
a huge error reaches the workflow as a bounded failure of the same type and
retryability, instead of "Failure exceeds size limit." or a lost completion."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workers.settings import Settings
from workers.worker import build_worker

FIVE_MB = 5 * 1024 * 1024


class Failing:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name="fail_hugely")
    async def fail_hugely(self, kind: str) -> None:
        if kind == "application":
            raise ApplicationError(
                "refund refused: " + "x" * FIVE_MB,
                "y" * FIVE_MB,
                type="HugeRefusal",
                non_retryable=True,
            )
        # A real asyncpg error quoting its argument: PostgreSQL repeats the
        # whole 2 MB value in its message.
        await self.pool.fetchval("SELECT $1::text::int", "z" * 2 * 1024 * 1024)


@workflow.defn(sandboxed=False)
class FailHugely:
    @workflow.run
    async def run(self, kind: str) -> None:
        await workflow.execute_activity(
            "fail_hugely",
            kind,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def failure_of(
    client: Client, pool: asyncpg.Pool, settings: Settings, kind: str
) -> ApplicationError:
    queue = f"failure-size-{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(update={"task_queue": queue})
    worker = build_worker(client, settings, [FailHugely], [Failing(pool).fail_hugely])
    async with worker:
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(
                FailHugely.run,
                kind,
                id=f"failure-size-{uuid.uuid4().hex}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=40),
            )
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError), repr(cause)
    return cause


async def test_a_huge_application_error_leaves_bounded_with_its_type(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> None:
    error = await failure_of(client, db_pool, integration_settings, "application")
    assert error.type == "HugeRefusal"
    assert error.non_retryable is True
    assert error.message.startswith("refund refused: xxx")
    assert len(error.message) < 10_000
    assert error.message.endswith(f"… truncated, {len('refund refused: ') + FIVE_MB} chars")
    (detail,) = error.details
    assert isinstance(detail, str) and detail.startswith("yyy") and len(detail) < 10_000


async def test_a_huge_postgres_error_leaves_bounded_and_retryable(
    client: Client, db_pool: asyncpg.Pool, integration_settings: Settings
) -> None:
    error = await failure_of(client, db_pool, integration_settings, "postgres")
    assert error.type == "InvalidTextRepresentationError"
    assert error.non_retryable is False
    assert error.message.startswith("invalid input syntax for type integer")
    assert len(error.message) < 10_000
    assert "truncated" in error.message
