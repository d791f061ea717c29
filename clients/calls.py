"""Calls every process client makes the same way: a query whose failures
become the case errors, a signal to a case only while it runs, and the
message a refused update carries."""

from __future__ import annotations

from typing import Any

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from clients.errors import QUERY_TIMEOUT, CaseNotFound, CaseUnavailable


def failure_message(err: BaseException | None) -> str:
    """The validator's text ("role: ops may not decide ...") of a refused update."""
    if isinstance(err, ApplicationError):
        return err.message
    return str(err) if err else "refused"


async def query_case(
    handle: WorkflowHandle[Any, Any], name: str, result_type: type, what: str
) -> Any:
    """Query `name`; no such case is CaseNotFound, no answer is CaseUnavailable."""
    try:
        return await handle.query(name, result_type=result_type, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(f"no {what}") from err
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise CaseUnavailable(f"{what} did not answer (is a worker running?)") from err
        raise
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
        raise CaseUnavailable(f"{what} could not answer: {err}") from err


async def signal_if_running(client: Client, workflow_id: str, name: str, payload: Any) -> bool:
    """Signal the case; False when it has finished (or never existed)."""
    try:
        await client.get_workflow_handle(workflow_id).signal(name, payload)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False  # the process has finished: the event is only recorded
        raise
    return True


async def signal_running(
    client: Client, workflow_id: str, name: str, payload: Any, what: str
) -> None:
    """Signal the case, or raise CaseNotFound naming `what` when it is not running."""
    if not await signal_if_running(client, workflow_id, name, payload):
        raise CaseNotFound(f"no running {what} (closed or unknown)")
