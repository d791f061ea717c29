"""Bounded failures: what leaves an activity fits in Temporal's history.

The server refuses a failure above its size limit (2 MB by default): it
records "Failure exceeds size limit." instead, and the reason is lost; above
the gRPC message limit (4 MB) the worker cannot even report the failure and
the attempt ends in its start-to-close timeout. An asyncpg error quoting a
whole argument or query, a provider's HTML error page, a stack of chained
causes: any of them can get there (issue 13).

`BoundedFailureInterceptor` (registered by workers/worker.py on every worker)
checks each exception leaving an activity, local activities included. Within
the limits below it leaves unchanged. Otherwise it raises a bounded copy in
its place:

- an ApplicationError keeps its type, non_retryable, next_retry_delay and
  category; its message is cut at MESSAGE_LIMIT characters and each detail
  at DETAIL_LIMIT characters of its text (a detail that fits is kept as it
  is), at most MAX_DETAILS details;
- any other exception (asyncpg, a port's own errors...) becomes an
  ApplicationError of the exception's class name, retryable, with the cut
  message: what Temporal's failure converter makes of it anyway, bounded;
- the stack trace keeps its innermost frames, at most STACK_LIMIT
  characters; the chain of causes at most MAX_CAUSES links, each bounded
  the same way.

A cut text ends with "… truncated, N chars", N being its full length.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import traceback
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import structlog
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

log = structlog.get_logger(__name__)

# Characters. Worst case per failure: (MESSAGE_LIMIT + STACK_LIMIT +
# MAX_DETAILS * DETAIL_LIMIT) * (1 + MAX_CAUSES), about 150 kB before the
# converter's JSON and encryption: far below the server's 2 MB.
MESSAGE_LIMIT = 4_000
DETAIL_LIMIT = 2_000
MAX_DETAILS = 8
STACK_LIMIT = 8_000
MAX_CAUSES = 3


def truncate(text: str, limit: int) -> str:
    """`text` when it fits, else its first `limit` characters and the note."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… truncated, {len(text)} chars"


def _detail_text(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    try:
        return json.dumps(detail, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(detail)


def _message(error: BaseException) -> str:
    return error.message if isinstance(error, FailureError) else str(error)


def _cause(error: BaseException) -> BaseException | None:
    # The link Temporal's failure converter follows.
    if error.__cause__ is not None:
        return error.__cause__
    if not error.__suppress_context__:
        return error.__context__
    return None


def _stack_size(tb: TracebackType | None) -> int:
    return sum(len(line) for line in traceback.format_tb(tb)) if tb is not None else 0


def _innermost(tb: TracebackType | None, limit: int) -> TracebackType | None:
    """The tail of `tb` (the frames nearest the raise) whose text fits `limit`."""
    nodes: list[TracebackType] = []
    while tb is not None:
        nodes.append(tb)
        tb = tb.tb_next
    kept: TracebackType | None = None
    size = 0
    for node in reversed(nodes):
        size += sum(len(line) for line in traceback.format_tb(node, limit=1))
        if size > limit:
            break
        kept = node
    return kept


def _fits(error: BaseException) -> bool:
    link: BaseException | None = error
    for _ in range(MAX_CAUSES + 1):
        if link is None:
            return True
        if len(_message(link)) > MESSAGE_LIMIT or _stack_size(link.__traceback__) > STACK_LIMIT:
            return False
        if isinstance(link, ApplicationError) and (
            len(link.details) > MAX_DETAILS
            or any(
                not isinstance(d, int | float | bool | None) and len(_detail_text(d)) > DETAIL_LIMIT
                for d in link.details
            )
        ):
            return False
        link = _cause(link)
    return link is None


def _bounded_details(details: Sequence[Any]) -> list[Any]:
    kept = [
        d
        if isinstance(d, int | float | bool | None) or len(_detail_text(d)) <= DETAIL_LIMIT
        else truncate(_detail_text(d), DETAIL_LIMIT)
        for d in details[:MAX_DETAILS]
    ]
    if len(details) > MAX_DETAILS:
        kept.append(f"… {len(details) - MAX_DETAILS} more details dropped")
    return kept


def _bounded_link(error: BaseException) -> ApplicationError:
    message = truncate(_message(error), MESSAGE_LIMIT)
    if isinstance(error, ApplicationError):
        bounded = ApplicationError(
            message,
            *_bounded_details(error.details),
            type=error.type,
            non_retryable=error.non_retryable,
            next_retry_delay=error.next_retry_delay,
            category=error.category,
        )
    else:
        # As temporalio's failure converter turns any exception into a failure:
        # type = the class name, retryable.
        bounded = ApplicationError(message, type=type(error).__name__)
    bounded.__traceback__ = _innermost(error.__traceback__, STACK_LIMIT)
    return bounded


def bound_failure(error: BaseException) -> BaseException:
    """`error` itself when it fits the limits (or is not for us to touch: a
    cancellation, Temporal's own failures, a broken executor the SDK must see),
    else a bounded ApplicationError standing for it, causes bounded too."""
    if not isinstance(error, Exception) or isinstance(error, concurrent.futures.BrokenExecutor):
        return error
    if isinstance(error, FailureError) and not isinstance(error, ApplicationError):
        return error
    if _fits(error):
        return error
    links: list[ApplicationError] = []
    link: BaseException | None = error
    while link is not None and len(links) <= MAX_CAUSES:
        links.append(_bounded_link(link))
        link = _cause(link)
    if link is not None:
        links.append(ApplicationError("… further causes dropped", type="TruncatedCauses"))
    for outer, inner in itertools.pairwise(links):
        outer.__cause__ = inner
    for bounded in links:
        bounded.__suppress_context__ = True
    return links[0]


class _BoundedFailureInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except BaseException as error:
            bounded = bound_failure(error)
            if bounded is error:
                raise
            log.warning(
                "activity_failure_truncated",
                error_type=type(error).__name__,
                message_chars=len(_message(error)),
                message=truncate(_message(error), 200),
            )
            raise bounded from bounded.__cause__


class BoundedFailureInterceptor(Interceptor):
    """Bounds every failure leaving an activity (see the module docstring)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BoundedFailureInbound(next)
