"""Resolving a task no process closes (domain/task_resolution.py): who may,
when a running process keeps its own task, a repeat of the same resolution,
and `steward tasks resolve` (validated before it sends, through the API with
the key, no actor or role in the body)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner

from clients.errors import CaseUnavailable
from clients.task_resolution import process_running
from domain.common import Role
from domain.task_resolution import (
    HANDED_OFF_KINDS,
    TaskResolution,
    TaskResolutionBody,
    TaskResolutionOutcome,
    needs_process_state,
    resolution_refusal,
)
from domain.tasks import TaskRow
from starters import cli

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
HANDLED = TaskResolutionOutcome.HANDLED


def task(kind: str = "refund_reversed", role: Role = Role.FINANCE, **closed: Any) -> TaskRow:
    return TaskRow(
        task_id=f"return:RMA-1/{kind}/1",
        process="return",
        case_id="RMA-1",
        workflow_id="return:RMA-1",
        kind=kind,
        title="Refund of return RMA-1 came back",
        awaited_role=role,
        assignee=None,
        due_at=NOW + timedelta(days=2),
        priority=0,
        escalated=False,
        reminders_sent=0,
        opened_at=NOW,
        closed_at=closed.get("closed_at"),
        closed_by=closed.get("closed_by"),
        outcome=closed.get("outcome"),
    )


def refusal(row: TaskRow, *, role: Role = Role.FINANCE, running: bool | None = None) -> Any:
    return resolution_refusal(
        row, role=role, actor="fiona", outcome=HANDLED, process_running=running
    )


def test_every_kind_no_process_closes_is_handed_off() -> None:
    assert {
        "capture_reversed",
        "refund_reversed",
        "amount_mismatch",
        "late_capture",
        "step_write_failed",
    } <= HANDED_OFF_KINDS
    # A process's own decision tasks are not.
    assert (
        not {"order_review", "refund_approval", "return_qc", "dispute_response"} & HANDED_OFF_KINDS
    )


@pytest.mark.parametrize("kind", sorted(HANDED_OFF_KINDS))
def test_a_handed_off_task_is_resolved_whatever_its_process_does(kind: str) -> None:
    row = task(kind)
    assert not needs_process_state(row)
    assert refusal(row) is None


def test_only_the_awaited_role_resolves_it() -> None:
    refused = refusal(task(), role=Role.COORDINATOR)
    assert refused is not None and refused.status == 403
    assert "awaits finance; role coordinator may not resolve it" in refused.detail
    ops = refusal(task("step_write_failed", Role.OPS), role=Role.FINANCE)
    assert ops is not None and ops.status == 403


def test_a_task_of_a_running_process_is_its_process_s_to_close() -> None:
    row = task("refund_approval")
    assert needs_process_state(row)
    refused = refusal(row, running=True)
    assert refused is not None and refused.status == 409
    assert "belongs to the running process return:RMA-1, which closes it" in refused.detail
    # Once the process ended (or was terminated) and left it open, a person may.
    assert refusal(row, running=False) is None
    with pytest.raises(ValueError, match="whether return:RMA-1 runs is needed"):
        refusal(row, running=None)


def test_the_same_resolution_again_is_accepted_another_one_is_a_conflict() -> None:
    closed = task(closed_at=NOW, closed_by="fiona", outcome="handled")
    assert not needs_process_state(closed)
    assert refusal(closed) is None  # the caller answers it unchanged
    other_outcome = resolution_refusal(
        closed,
        role=Role.FINANCE,
        actor="fiona",
        outcome=TaskResolutionOutcome.DUPLICATE,
        process_running=None,
    )
    assert other_outcome is not None and other_outcome.status == 409
    assert "already closed (by fiona, outcome handled" in other_outcome.detail
    by_process = task("refund_approval", closed_at=NOW, closed_by="steward", outcome="approved")
    refused = refusal(by_process)
    assert refused is not None and refused.status == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "handled", "reason": ""}, "reason"),
        ({"outcome": "handled", "reason": "x" * 1001}, "reason"),
        ({"outcome": "handled", "reason": "nul \x00"}, "reason"),
        ({"outcome": "refunded", "reason": "done"}, "outcome"),
        ({"outcome": "handled"}, "reason"),
        ({"outcome": "handled", "reason": "ok", "actor": "someone"}, "actor"),
    ],
)
def test_a_bad_body_names_its_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as invalid:
        TaskResolutionBody.model_validate(body)
    assert field in {str(e["loc"][0]) for e in invalid.value.errors()}


# ------------------------------------------------------------------ the CLI

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})


class FakeApi:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, status: int, body: Any) -> None:
        self.requests: list[httpx.Request] = []
        self.status, self.body = status, body
        from starters import api_client

        def client() -> api_client.ApiClient:
            return api_client.ApiClient(
                "http://api.test", "k-test", transport=httpx.MockTransport(self.answer)
            )

        monkeypatch.setattr(api_client, "cli_client", client)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)


@pytest.fixture
def no_api(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the CLI called the API before validating its input")

    monkeypatch.setattr("starters.api_client.ApiClient.request", refuse)


@pytest.mark.usefixtures("no_api")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--outcome", "refunded", "--reason", "x"), "unknown outcome 'refunded'"),
        (("--outcome", "handled", "--reason", "  "), "a resolution needs a reason"),
        (("--outcome", "handled"), "Missing option '--reason'"),
        (("--outcome", "handled", "--reason", "x", "--as", "fiona"), "--as is gone"),
    ],
)
def test_resolve_validates_before_it_sends(args: tuple[str, ...], message: str) -> None:
    result = invoke("tasks", "resolve", "order-review:FR-1/late_capture/1", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_resolve_posts_outcome_and_reason_only(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = task("late_capture", closed_at=NOW, closed_by="fiona", outcome="handled")
    api = FakeApi(
        monkeypatch, 200, TaskResolution(task=closed, resolved_now=True).model_dump(mode="json")
    )
    result = invoke(
        "tasks", "resolve", closed.task_id, "--outcome", "handled", "--reason", "refunded by hand"
    )
    assert result.exit_code == 0, result.output
    (request,) = api.requests
    # The id's slashes and colon go as they are: the API reads the id as a path.
    assert request.url.raw_path.decode() == "/v1/tasks/return:RMA-1/late_capture/1/resolution"
    assert request.headers["authorization"] == "Bearer k-test"
    assert json.loads(request.content) == {"outcome": "handled", "reason": "refunded by hand"}
    assert f"resolved {closed.task_id} (late_capture): handled, by fiona" in result.output


def test_resolve_shows_the_api_s_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeApi(monkeypatch, 409, {"detail": "task t belongs to the running process return:RMA-1"})
    result = invoke("tasks", "resolve", "t", "--outcome", "handled", "--reason", "x")
    assert result.exit_code == 1
    assert "refused: task t belongs to the running process return:RMA-1" in result.output


def test_tasks_still_lists_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi(monkeypatch, 200, [])
    result = invoke("tasks", "--awaiting", "finance")
    assert result.exit_code == 0, result.output
    (request,) = api.requests
    assert request.url.path == "/v1/tasks" and request.url.params["role"] == "finance"


# ------------------------------------------------------- asking Temporal


class _Handle:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def describe(self, **kwargs: Any) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


class _Client:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle(self.answer)


async def test_whether_the_process_runs_is_temporal_s_answer() -> None:
    class Description:
        def __init__(self, status: WorkflowExecutionStatus) -> None:
            self.status = status

    def ask(answer: Any) -> Any:
        return process_running(cast(Any, _Client(answer)), "return:RMA-1")

    assert await ask(Description(WorkflowExecutionStatus.RUNNING)) is True
    assert await ask(Description(WorkflowExecutionStatus.TERMINATED)) is False
    # Its history is gone (retention) or it never existed: not running.
    assert await ask(RPCError("not found", RPCStatusCode.NOT_FOUND, b"")) is False
    # Temporal down: no answer, so nothing is closed (the API answers 503).
    with pytest.raises(CaseUnavailable, match="Temporal did not say whether return:RMA-1 runs"):
        await ask(RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b""))
