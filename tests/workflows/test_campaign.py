"""The campaign process under the time-skipping server: the whole lifecycle,
validation errors back to draft, four eyes, early close, extension, the
opening at a DST change, cancellation, and a request's SLA.

The campaign's own activities (validation, the quota gate, reconciliation)
are faked here, beside the shared FakeWorld (its audit port records the case
book's writes)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.worker import Worker

from domain.campaign import (
    RECONCILE_CAMPAIGN,
    SET_CAMPAIGN_GATE,
    VALIDATE_CAMPAIGN,
    ApprovalInput,
    CampaignInput,
    CampaignParameters,
    CampaignSchedule,
    CampaignState,
    CampaignStatus,
    CancelInput,
    Discrepancy,
    FileRequestInput,
    GateInput,
    PriceLine,
    Quota,
    ReconcileInput,
    ReconcileResult,
    RequestKind,
    RequestOutcome,
    ResolveRequestInput,
    Severity,
    SubmitInput,
    ValidateCampaignInput,
    ValidationIssue,
    ValidationReport,
    WindowChange,
    schedule_for,
)
from domain.common import Role
from domain.ids import campaign_workflow_id
from domain.orders import ItemCategory
from tests.workflows.conftest import TestServer
from tests.workflows.harness import FakeWorld, Harness, eventually, wait_for_status
from workflows.campaign import CampaignWorkflow

PARIS = ZoneInfo("Europe/Paris")


@dataclass
class FakeCampaign:
    """Launch validation (a queue of reports), the store's quota gate and the
    reconciliation (a queue of discrepancy lists; empty: clean)."""

    reports: list[list[ValidationIssue]] = field(default_factory=list)
    reconciliations: list[list[Discrepancy]] = field(default_factory=list)
    gates: list[GateInput] = field(default_factory=list)
    validations: int = 0

    @activity.defn(name=VALIDATE_CAMPAIGN)
    async def validate(self, input: ValidateCampaignInput) -> ValidationReport:
        self.validations += 1
        issues = self.reports.pop(0) if self.reports else []
        return ValidationReport(validated_at=input.now, roster_hash="abc", issues=issues)

    @activity.defn(name=SET_CAMPAIGN_GATE)
    async def gate(self, input: GateInput) -> None:
        self.gates.append(input)

    @activity.defn(name=RECONCILE_CAMPAIGN)
    async def reconcile(self, input: ReconcileInput) -> ReconcileResult:
        found = self.reconciliations.pop(0) if self.reconciliations else []
        return ReconcileResult(discrepancies=found, orders=3, export_rows=0 if found else 2)

    def gate_states(self) -> list[str]:
        return [g.state for g in self.gates]


@pytest_asyncio.fixture(loop_scope="session")
async def campaign_env(
    test_server: TestServer, world: FakeWorld
) -> AsyncIterator[tuple[Harness, FakeCampaign]]:
    env = test_server.env
    harness = Harness(env, world, await env.get_current_time())
    fake = FakeCampaign()
    try:
        async with Worker(
            env.client,
            task_queue=harness.task_queue,
            workflows=[CampaignWorkflow],
            activities=[*world.activities(), fake.validate, fake.gate, fake.reconcile],
        ):
            yield harness, fake
    finally:
        stalled = await harness.terminate_leftovers()
        if stalled or not await test_server.skips_time():
            await test_server.replace()


def _params(opens_local: datetime, closes_local: datetime) -> CampaignParameters:
    return CampaignParameters(
        campaign_id=f"ES-{uuid.uuid4().hex[:8]}",
        name="Spring sale",
        timezone="Europe/Paris",
        opens_local=opens_local,
        closes_local=closes_local,
        legal_entities=["Maison SAS"],
        countries=["FR"],
        currency="EUR",
        site="PAR-1",
        quotas={"G1": Quota(max_units=3, max_amount_minor=300_000)},
        prices=[
            PriceLine(
                sku="BAG-1",
                name="Tote",
                category=ItemCategory.HANDBAGS,
                list_price_minor=200_000,
                sale_price_minor=100_000,
                allocated_units=10,
            )
        ],
    )


def _local(instant: datetime) -> datetime:
    return instant.astimezone(PARIS).replace(tzinfo=None, second=0, microsecond=0)


async def _start(
    harness: Harness, opens_in: timedelta = timedelta(days=3), lasts: timedelta = timedelta(days=2)
) -> tuple[WorkflowHandle[Any, Any], CampaignSchedule]:
    now = harness.now()
    opens = _local(now + opens_in).replace(hour=9, minute=0)
    params = _params(opens, opens + lasts)
    return await _start_with(harness, params)


async def _start_with(
    harness: Harness, params: CampaignParameters
) -> tuple[WorkflowHandle[Any, Any], CampaignSchedule]:
    schedule = schedule_for(params)
    handle = await harness.start(
        CampaignWorkflow.run,
        CampaignInput(
            campaign_id=params.campaign_id,
            name=params.name,
            timezone=params.timezone,
            schedule=schedule,
            prepared_by="alice",
            legal_entities=params.legal_entities,
            currency=params.currency,
        ),
        id=campaign_workflow_id(params.campaign_id),
    )
    return handle, schedule


async def _state(handle: WorkflowHandle[Any, Any]) -> CampaignState:
    state: CampaignState = await handle.query(CampaignWorkflow.status)
    return state


async def _approved(handle: WorkflowHandle[Any, Any], *, approver: str = "bob") -> CampaignState:
    await handle.execute_update(
        CampaignWorkflow.submit, SubmitInput(actor="alice", role=Role.COORDINATOR)
    )
    await wait_for_status(handle, CampaignStatus.AWAITING_APPROVAL)
    state: CampaignState = await handle.execute_update(
        CampaignWorkflow.approve,
        ApprovalInput(approve=True, acknowledge_warnings=True, actor=approver, role=Role.MANAGER),
    )
    await wait_for_status(handle, CampaignStatus.SCHEDULED)
    return state


def _at(state: CampaignState, status: CampaignStatus) -> datetime:
    return next(h.at for h in state.history if h.status is status)


def near(a: datetime, b: datetime) -> bool:
    """A timer fires on its instant, give or take the server's tick."""
    return abs(a - b) < timedelta(seconds=1)


async def test_whole_lifecycle_with_four_eyes_reminders_and_reconciliation(
    campaign_env: tuple[Harness, FakeCampaign], world: FakeWorld
) -> None:
    harness, fake = campaign_env
    fake.reports = [
        [ValidationIssue(field="roster", reason="1 excluded", severity=Severity.WARNING)]
    ]
    fake.reconciliations = [
        [Discrepancy(kind="order_without_capture", order_id="EO-1", detail="nothing captured")],
        [],
    ]
    handle, schedule = await _start(harness)
    await wait_for_status(handle, CampaignStatus.DRAFT)
    await handle.execute_update(
        CampaignWorkflow.submit, SubmitInput(actor="alice", role=Role.COORDINATOR)
    )
    await wait_for_status(handle, CampaignStatus.AWAITING_APPROVAL)

    # Four eyes: the preparer, even as a manager, is refused; nothing changes.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            CampaignWorkflow.approve,
            ApprovalInput(
                approve=True, acknowledge_warnings=True, actor="alice", role=Role.MANAGER
            ),
        )
    assert "alice prepared this campaign" in str(refused.value.cause)
    # A warning needs its acknowledgement.
    with pytest.raises(WorkflowUpdateFailedError) as unacknowledged:
        await handle.execute_update(
            CampaignWorkflow.approve, ApprovalInput(approve=True, actor="bob", role=Role.MANAGER)
        )
    assert "acknowledge_warnings" in str(unacknowledged.value.cause)
    assert (await _state(handle)).status is CampaignStatus.AWAITING_APPROVAL

    await handle.execute_update(
        CampaignWorkflow.approve,
        ApprovalInput(approve=True, acknowledge_warnings=True, actor="bob", role=Role.MANAGER),
    )
    await wait_for_status(handle, CampaignStatus.SCHEDULED)
    assert ("campaign_approval", Role.MANAGER) in world.audit.opened_task_kinds()

    result = await handle.result()
    assert result.status is CampaignStatus.RECONCILED and result.discrepancies == 0
    state = await _state(handle)
    assert [h.status for h in state.history] == [
        CampaignStatus.DRAFT,
        CampaignStatus.VALIDATING,
        CampaignStatus.AWAITING_APPROVAL,
        CampaignStatus.SCHEDULED,
        CampaignStatus.OPEN,
        CampaignStatus.CLOSED,
        CampaignStatus.RECONCILING,
        CampaignStatus.RECONCILED,
    ]
    assert near(_at(state, CampaignStatus.OPEN), schedule.opens_at)
    assert near(_at(state, CampaignStatus.CLOSED), schedule.closes_at)
    assert fake.gate_states() == ["scheduled", "open", "closed"]
    assert fake.gates[0].schedule == schedule
    # The owner's reminders, in the owner's queue, at their times.
    reminders = [e for e in world.audit.entries("owner_reminded")]
    assert len(reminders) == 2
    assert near(reminders[0].occurred_at, schedule.opening_reminder_at)
    assert near(reminders[1].occurred_at, schedule.closing_reminder_at)
    kinds = world.audit.opened_task_kinds()
    assert ("opening_reminder", Role.COORDINATOR) in kinds
    assert ("campaign_discrepancy", Role.FINANCE) in kinds
    # The discrepancy's task closed when the next day's reconciliation was clean.
    assert "resolved" in world.audit.closed_outcomes()
    assert state.reconciliations == 2 and state.approved_by == "bob"


async def test_validation_errors_go_back_to_draft_and_a_refused_approval_too(
    campaign_env: tuple[Harness, FakeCampaign],
) -> None:
    harness, fake = campaign_env
    fake.reports = [[ValidationIssue(field="roster", reason="no roster", severity=Severity.ERROR)]]
    handle, _ = await _start(harness)
    await handle.execute_update(
        CampaignWorkflow.submit, SubmitInput(actor="alice", role=Role.COORDINATOR)
    )
    await eventually(lambda: fake.validations == 1, what="validation")
    await wait_for_status(handle, CampaignStatus.DRAFT)
    assert (await _state(handle)).report is not None
    # A second preparer submits the fixed draft: both are now preparers.
    await handle.execute_update(
        CampaignWorkflow.submit, SubmitInput(actor="carol", role=Role.MANAGER)
    )
    await wait_for_status(handle, CampaignStatus.AWAITING_APPROVAL)
    with pytest.raises(WorkflowUpdateFailedError) as four_eyes:
        await handle.execute_update(
            CampaignWorkflow.approve, ApprovalInput(approve=True, actor="carol", role=Role.MANAGER)
        )
    assert "carol prepared this campaign" in str(four_eyes.value.cause)
    await handle.execute_update(
        CampaignWorkflow.approve,
        ApprovalInput(approve=False, reason="prices not final", actor="bob", role=Role.MANAGER),
    )
    await wait_for_status(handle, CampaignStatus.DRAFT)
    state = await _state(handle)
    assert state.prepared_by == ["alice", "carol"]
    assert [h.status for h in state.history][-2:] == [
        CampaignStatus.AWAITING_APPROVAL,
        CampaignStatus.DRAFT,
    ]


async def test_early_close(campaign_env: tuple[Harness, FakeCampaign]) -> None:
    harness, fake = campaign_env
    handle, schedule = await _start(harness)
    await _approved(handle)
    await harness.sleep(schedule.opens_at - harness.now() + timedelta(hours=1))
    await wait_for_status(handle, CampaignStatus.OPEN)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            CampaignWorkflow.change_window, WindowChange(actor="carl", role=Role.COORDINATOR)
        )
    state = await handle.execute_update(
        CampaignWorkflow.change_window,
        WindowChange(reason="stock sold out", actor="bob", role=Role.MANAGER),
    )
    assert state.schedule.closes_at < schedule.closes_at
    result = await handle.result()
    assert result.status is CampaignStatus.RECONCILED
    final = await _state(handle)
    closed_at = _at(final, CampaignStatus.CLOSED)
    assert near(closed_at, final.schedule.closes_at) and closed_at < schedule.closes_at
    # The gate got the new window before the case closed.
    assert [g.state for g in fake.gates] == ["scheduled", "open", "open", "closed"]
    assert fake.gates[2].schedule is not None
    assert fake.gates[2].schedule.closes_at == final.schedule.closes_at


async def test_extension(campaign_env: tuple[Harness, FakeCampaign]) -> None:
    harness, _ = campaign_env
    handle, schedule = await _start(harness)
    await _approved(handle)
    later = schedule.closes_at + timedelta(days=1)
    state = await handle.execute_update(
        CampaignWorkflow.change_window,
        WindowChange(
            closes_at=later,
            closing_reminder_at=later - timedelta(hours=4),
            reason="one more day",
            actor="bob",
            role=Role.MANAGER,
        ),
    )
    assert state.schedule.closes_at == later
    await handle.result()
    final = await _state(handle)
    assert near(_at(final, CampaignStatus.CLOSED), later)
    assert near(_at(final, CampaignStatus.OPEN), schedule.opens_at)


def _next_spring_forward(after: datetime) -> datetime:
    """The first day after `after` whose Paris clocks jump an hour (UTC midnight)."""
    day = after.astimezone(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    while True:
        day += timedelta(days=1)
        before = (day - timedelta(hours=12)).astimezone(PARIS).utcoffset()
        after_ = (day + timedelta(hours=12)).astimezone(PARIS).utcoffset()
        if before is not None and after_ is not None and after_ > before:
            return day


async def test_opening_at_the_dst_change(
    campaign_env: tuple[Harness, FakeCampaign], world: FakeWorld
) -> None:
    harness, _ = campaign_env
    change_day = _next_spring_forward(harness.now() + timedelta(days=2))
    # 09:00 in Paris on the day the clocks go forward: 07:00 UTC (not 08:00);
    # the reminder "a day before" is 09:00 the day before: 08:00 UTC, 23 h earlier.
    opens = change_day.astimezone(PARIS).replace(tzinfo=None, hour=9, minute=0)
    params = _params(opens, opens + timedelta(days=1))
    handle, schedule = await _start_with(harness, params)
    assert schedule.opens_at.hour == 7
    assert schedule.opens_at - schedule.opening_reminder_at == timedelta(hours=23)
    await _approved(handle)
    await harness.sleep(schedule.opens_at - harness.now() + timedelta(minutes=5))
    await wait_for_status(handle, CampaignStatus.OPEN)
    state = await _state(handle)
    assert near(_at(state, CampaignStatus.OPEN), schedule.opens_at)
    assert _at(state, CampaignStatus.OPEN).astimezone(PARIS).hour == 9
    reminder = world.audit.entries("owner_reminded")[0].occurred_at
    assert near(reminder, schedule.opening_reminder_at)
    assert reminder.astimezone(PARIS).hour == 9


async def test_cancelled_before_opening_and_never_opens(
    campaign_env: tuple[Harness, FakeCampaign],
) -> None:
    harness, fake = campaign_env
    handle, _ = await _start(harness)
    await _approved(handle)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            CampaignWorkflow.cancel, CancelInput(reason="x", actor="ops1", role=Role.OPS)
        )
    state = await handle.execute_update(
        CampaignWorkflow.cancel,
        CancelInput(reason="entity restructuring", actor="alice", role=Role.COORDINATOR),
    )
    assert state.status is CampaignStatus.CANCELLED
    result = await handle.result()
    assert result.status is CampaignStatus.CANCELLED
    assert fake.gate_states() == ["scheduled", "cancelled"]


async def test_a_draft_never_submitted_is_cancelled_at_the_opening(
    campaign_env: tuple[Harness, FakeCampaign],
) -> None:
    harness, fake = campaign_env
    handle, schedule = await _start(harness)
    result = await handle.result()
    assert result.status is CampaignStatus.CANCELLED
    state = await _state(handle)
    assert state.cancelled_reason == "not submitted before the opening"
    assert near(_at(state, CampaignStatus.CANCELLED), schedule.opens_at)
    assert fake.gate_states() == ["cancelled"]


async def test_a_request_escalates_past_its_sla_and_is_resolved_with_a_reason(
    campaign_env: tuple[Harness, FakeCampaign], world: FakeWorld
) -> None:
    harness, _ = campaign_env
    handle, _ = await _start(harness, opens_in=timedelta(days=30))
    request = await handle.execute_update(
        CampaignWorkflow.file_request,
        FileRequestInput(request_id="GR-1", kind=RequestKind.GIFT, actor="hr1", role=Role.SYSTEM),
    )
    assert request.due_at - request.opened_at == timedelta(days=5)
    await harness.sleep(timedelta(days=5, hours=1))
    await eventually(lambda: world.audit.entries("request_escalated"), what="escalation")
    assert world.audit.escalations() == [Role.MANAGER]
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            CampaignWorkflow.resolve_request,
            ResolveRequestInput(
                request_id="GR-9", outcome=RequestOutcome.SHIPPED, actor="c", role=Role.COORDINATOR
            ),
        )
    resolved = await handle.execute_update(
        CampaignWorkflow.resolve_request,
        ResolveRequestInput(
            request_id="GR-1",
            outcome=RequestOutcome.REFUSED,
            reason="over the gift budget",
            actor="carl",
            role=Role.COORDINATOR,
        ),
    )
    assert resolved.outcome is RequestOutcome.REFUSED and resolved.escalated
    assert world.audit.entry("request_resolved").reason == "refused: over the gift budget"
    assert any(t.endswith("/request-GR-1/1") for t in world.audit.closed_tasks())
