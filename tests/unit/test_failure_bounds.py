"""workers/failures.py: the bounds on failures leaving an activity."""

from __future__ import annotations

import asyncio
import traceback
from datetime import timedelta

import asyncpg
import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory, CancelledError

from workers.failures import (
    DETAIL_LIMIT,
    MAX_CAUSES,
    MAX_DETAILS,
    MESSAGE_LIMIT,
    STACK_LIMIT,
    bound_failure,
    truncate,
)

HUGE = 5 * 1024 * 1024


def raised(error: BaseException) -> BaseException:
    """`error` with a traceback, as an activity would leave it."""
    try:
        raise error
    except BaseException as caught:
        return caught


def test_truncate_notes_the_full_length() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdef", 3) == "abc… truncated, 6 chars"


def test_a_failure_within_the_limits_is_left_as_it_is() -> None:
    refusal = raised(
        ApplicationError("refund refused", {"captured_minor": 100}, type="RefundExceedsCapture")
    )
    assert bound_failure(refusal) is refusal
    timeout = raised(TimeoutError("provider timed out"))
    assert bound_failure(timeout) is timeout


def test_a_huge_application_error_keeps_its_type_retryability_and_delay() -> None:
    error = raised(
        ApplicationError(
            "x" * HUGE,
            "short detail",
            {"captured_minor": 100},
            42,
            "y" * HUGE,
            type="PaymentProviderRateLimited",
            non_retryable=False,
            next_retry_delay=timedelta(seconds=7),
            category=ApplicationErrorCategory.BENIGN,
        )
    )
    bounded = bound_failure(error)
    assert isinstance(bounded, ApplicationError) and bounded is not error
    assert bounded.type == "PaymentProviderRateLimited"
    assert bounded.non_retryable is False
    assert bounded.next_retry_delay == timedelta(seconds=7)
    assert bounded.category is ApplicationErrorCategory.BENIGN
    assert bounded.message == "x" * MESSAGE_LIMIT + f"… truncated, {HUGE} chars"
    # Details that fit are kept as they are (workflows read them); a huge one
    # becomes its cut text.
    assert list(bounded.details[:3]) == ["short detail", {"captured_minor": 100}, 42]
    assert bounded.details[3] == "y" * DETAIL_LIMIT + f"… truncated, {HUGE} chars"

    non_retryable = bound_failure(
        raised(ApplicationError("z" * HUGE, type="LedgerConflict", non_retryable=True))
    )
    assert isinstance(non_retryable, ApplicationError)
    assert (non_retryable.type, non_retryable.non_retryable) == ("LedgerConflict", True)


def test_too_many_details_are_dropped_with_a_note() -> None:
    error = raised(ApplicationError("many", *range(MAX_DETAILS + 3), type="Many"))
    bounded = bound_failure(error)
    assert isinstance(bounded, ApplicationError)
    assert list(bounded.details) == [*range(MAX_DETAILS), "… 3 more details dropped"]


def test_a_huge_postgres_error_becomes_a_retryable_application_error_of_its_type() -> None:
    query_text = "SELECT " + ", ".join(f"col_{i}" for i in range(200_000))
    error = raised(asyncpg.exceptions.UndefinedColumnError(f"column missing in {query_text}"))
    bounded = bound_failure(error)
    assert isinstance(bounded, ApplicationError)
    assert bounded.type == "UndefinedColumnError"
    assert bounded.non_retryable is False
    assert bounded.message.startswith("column missing in SELECT col_0, col_1")
    assert bounded.message.endswith(f"… truncated, {len(str(error))} chars")


def test_a_huge_cause_is_bounded_and_the_chain_is_cut() -> None:
    try:
        try:
            raise ConnectionError("q" * HUGE)
        except ConnectionError as inner:
            raise ApplicationError("refund failed", type="Wrapped") from inner
    except ApplicationError as caught:
        error: BaseException = caught
    bounded = bound_failure(error)
    assert isinstance(bounded, ApplicationError) and bounded.type == "Wrapped"
    assert bounded.message == "refund failed"
    cause = bounded.__cause__
    assert isinstance(cause, ApplicationError) and cause.type == "ConnectionError"
    assert len(cause.message) < MESSAGE_LIMIT + 50

    # A longer chain than MAX_CAUSES: the rest is dropped with a note.
    link: BaseException = ValueError("v" * HUGE)
    for n in range(MAX_CAUSES + 3):
        outer = RuntimeError(f"level {n}")
        outer.__cause__ = link
        link = outer
    bounded = bound_failure(link)
    chain = []
    current: BaseException | None = bounded
    while current is not None:
        chain.append(current)
        current = current.__cause__
    assert len(chain) == MAX_CAUSES + 2
    assert isinstance(chain[-1], ApplicationError) and chain[-1].type == "TruncatedCauses"


def test_a_deep_stack_keeps_its_innermost_frames() -> None:
    # Two functions in turn: traceback collapses only repeats of one line.
    def ping(n: int) -> None:
        if n == 0:
            raise KeyError("k" * HUGE)
        pong(n - 1)

    def pong(n: int) -> None:
        ping(n - 1)

    try:
        ping(400)
    except KeyError as caught:
        error: BaseException = caught
    assert sum(map(len, traceback.format_tb(error.__traceback__))) > STACK_LIMIT
    bounded = bound_failure(error)
    kept = traceback.format_tb(bounded.__traceback__)
    assert sum(map(len, kept)) <= STACK_LIMIT
    assert "raise KeyError" in kept[-1]  # where it was raised


@pytest.mark.parametrize(
    "error",
    [asyncio.CancelledError("c" * HUGE), CancelledError("c" * HUGE), KeyboardInterrupt()],
    ids=["asyncio-cancel", "temporal-cancel", "interrupt"],
)
def test_cancellations_are_not_touched(error: BaseException) -> None:
    assert bound_failure(error) is error


async def test_the_encoded_failure_stays_small() -> None:
    # What the worker sends: far below the server's 2 MB failure limit.
    try:
        try:
            raise asyncpg.exceptions.DataError("d" * HUGE)
        except asyncpg.exceptions.DataError as inner:
            raise ApplicationError("e" * HUGE, "f" * HUGE, type="Refused") from inner
    except ApplicationError as caught:
        error = caught
    failure = Failure()
    await DataConverter.default.encode_failure(bound_failure(error), failure)
    assert failure.ByteSize() < 64 * 1024
    assert failure.application_failure_info.type == "Refused"
    assert failure.cause.application_failure_info.type == "DataError"
