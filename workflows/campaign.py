"""Employee special sale: `campaign:{campaign_id}`.

draft -> validating -> awaiting_approval -> scheduled -> open -> closed ->
reconciling -> reconciled, or cancelled before the sale opens (a failed
validation or a refused approval goes back to draft).

The workflow keeps the calendar and the decisions; the roster and the quotas
live in PostgreSQL (the order endpoint takes quota there, atomically), so no
employee's data or order is in this history. Its timers are UTC instants
computed at the edge from the campaign's local times (domain/campaign.py:
schedule_for), so they are DST-correct and replay never reads a timezone
database. Gift requests and after-sales dossiers are handled beside the
calendar, each with its own SLA and task.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.campaign import (
        CLOSED_CAMPAIGN_STATUSES,
        RECONCILE_CAMPAIGN,
        REQUEST_SLAS,
        SET_CAMPAIGN_GATE,
        VALIDATE_CAMPAIGN,
        ApprovalInput,
        CampaignContract,
        CampaignInput,
        CampaignResult,
        CampaignState,
        CampaignStatus,
        CancelInput,
        Discrepancy,
        FileRequestInput,
        GateInput,
        ReconcileInput,
        ReconcileResult,
        RequestState,
        ResolveRequestInput,
        StatusChange,
        SubmitInput,
        ValidateCampaignInput,
        ValidationReport,
        WindowChange,
        changed_schedule,
        validate_approval,
        validate_cancel,
        validate_file_request,
        validate_resolve_request,
        validate_submit,
        validate_window_change,
    )
    from domain.common import DECISION_REJECTED, Role
    from domain.ids import CAMPAIGN
    from domain.tasks import CloseTaskInput, OpenTaskInput, UpdateTaskInput, task_id
    from workflows.case import CaseBook, CaseFacts, PendingDecision, outside_retry
    from workflows.steps import STEWARD, wait_until

STORE_CALL = timedelta(minutes=2)
STORE_RETRY = outside_retry()
# How long open requests are waited for once the campaign is reconciled.
REQUESTS_GRACE = timedelta(days=90)


@workflow.defn(name=CampaignContract.WORKFLOW_TYPE)
class CampaignWorkflow:
    @workflow.init
    def __init__(self, input: CampaignInput) -> None:
        self._input = input
        self._state = CampaignState(
            campaign_id=input.campaign_id,
            name=input.name,
            status=CampaignStatus.DRAFT,
            timezone=input.timezone,
            schedule=input.schedule,
            prepared_by=[input.prepared_by],
        )
        self._case = CaseBook(
            CAMPAIGN,
            lambda: self._state.campaign_id,
            state=self._state,
            facts=self._facts,
            history=self._history,
            closed=CLOSED_CAMPAIGN_STATUSES,
        )
        self._submit: PendingDecision[SubmitInput] = PendingDecision()
        self._approval: PendingDecision[ApprovalInput] = PendingDecision()
        self._cancel: CancelInput | None = None
        self._window_version = 0
        self._changing_window = False
        self._reconcile_now = False
        self._watchers: list[asyncio.Task[None]] = []
        self._discrepancy_tasks: dict[tuple[str, str], str] = {}
        self._reminders: set[str] = set()

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, input: CampaignInput) -> CampaignResult:
        self._case.audit(
            "campaign_created",
            actor=input.prepared_by,
            reason=input.name,
            after={
                "opens_at": input.schedule.opens_at,
                "closes_at": input.schedule.closes_at,
                "timezone": input.timezone,
            },
        )
        self._case.transition(CampaignStatus.DRAFT, input.prepared_by, "campaign prepared")
        await self._case.flush()
        if await self._prepare() and await self._sell():
            await self._reconcile()
        if not await wait_until(
            self._requests_resolved, until=workflow.now() + REQUESTS_GRACE, timer="requests-grace"
        ):
            self._case.audit("requests_left_open", reason="open requests after the grace period")
            await self._case.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CampaignResult(
            campaign_id=self._state.campaign_id,
            status=self._state.status,
            discrepancies=len(self._state.discrepancies),
        )

    # ----------------------------------------------------- launch and approval

    async def _prepare(self) -> bool:
        """Draft, validation and four-eyes approval, until approved (True) or
        cancelled (False). A draft or an approval not done by the opening
        time cancels the sale: nothing opens unapproved."""
        opens_at = self._state.schedule.opens_at
        while True:
            submitted = await wait_until(
                lambda: self._submit.pending or self._cancel is not None,
                until=opens_at,
                timer="draft-until-opening",
            )
            if self._cancel is not None or not submitted:
                await self._cancelled(self._cancel, "not submitted before the opening")
                return False
            submit = self._submit.take()
            assert submit is not None
            if submit.actor not in self._state.prepared_by:
                self._state.prepared_by.append(submit.actor)
            self._case.transition(
                CampaignStatus.VALIDATING,
                submit.actor,
                submit.note or "submitted for validation",
                role=submit.role,
            )
            await self._case.flush()
            report = await workflow.execute_activity(
                VALIDATE_CAMPAIGN,
                ValidateCampaignInput(campaign_id=self._state.campaign_id, now=workflow.now()),
                result_type=ValidationReport,
                start_to_close_timeout=STORE_CALL,
                retry_policy=STORE_RETRY,
            )
            self._state.report = report
            self._state.warnings_acknowledged = False
            self._case.audit(
                "campaign_validated",
                reason=f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)",
                after={
                    "roster_hash": report.roster_hash,
                    "errors": [f"{i.field}: {i.reason}" for i in report.errors][:20],
                },
            )
            if report.errors:
                self._case.transition(
                    CampaignStatus.DRAFT, STEWARD, f"validation found {len(report.errors)} error(s)"
                )
                await self._case.flush()
                continue
            if await self._await_approval():
                return True
            if self._state.status is CampaignStatus.CANCELLED:
                return False

    async def _await_approval(self) -> bool:
        now = workflow.now()
        opens_at = self._state.schedule.opens_at
        due = min(now + self._input.approval_sla, opens_at)
        self._case.open_human_task(
            "campaign_approval",
            f"Approve employee sale {self._state.campaign_id} (four eyes)",
            Role.MANAGER,
            due,
        )
        self._case.transition(
            CampaignStatus.AWAITING_APPROVAL, STEWARD, "validated; a second manager approves"
        )
        await self._case.flush()

        def decided() -> bool:
            return self._approval.pending or self._cancel is not None

        if not await wait_until(decided, until=due, timer="approval-sla") and due < opens_at:
            self._case.escalate(Role.MANAGER, reason="approval overdue", due=opens_at)
            await self._case.flush()
            await wait_until(decided, until=opens_at, timer="approval-until-opening")
        if self._cancel is not None or not self._approval.pending:
            self._case.close_human_task(STEWARD, "cancelled")
            await self._cancelled(self._cancel, "not approved before the opening")
            return False
        decision = self._approval.take()
        assert decision is not None
        self._case.close_human_task(decision.actor, "approved" if decision.approve else "refused")
        if not decision.approve:
            self._case.audit(
                "approval_refused", actor=decision.actor, role=decision.role, reason=decision.reason
            )
            self._case.transition(
                CampaignStatus.DRAFT, decision.actor, "approval refused", role=decision.role
            )
            await self._case.flush()
            return False
        self._state.approved_by = decision.actor
        self._state.warnings_acknowledged = decision.acknowledge_warnings
        self._case.audit(
            "campaign_approved",
            actor=decision.actor,
            role=decision.role,
            reason=decision.reason or "approved",
            after={
                "warnings_acknowledged": decision.acknowledge_warnings,
                "roster_hash": self._state.report.roster_hash if self._state.report else None,
            },
        )
        return True

    async def _cancelled(self, cancel: CancelInput | None, default: str) -> None:
        actor, role, reason = (
            (cancel.actor, cancel.role, cancel.reason)
            if cancel
            else (STEWARD, Role.SYSTEM, default)
        )
        await self._gate("cancelled")
        self._state.cancelled_reason = reason
        self._case.transition(CampaignStatus.CANCELLED, actor, reason, role=role)
        await self._case.flush()

    # ---------------------------------------------------------------- the sale

    async def _sell(self) -> bool:
        """Scheduled, open, closed; False when cancelled before the opening."""
        await self._gate("scheduled", with_window=True)
        self._case.transition(
            CampaignStatus.SCHEDULED, self._state.approved_by or STEWARD, "approved"
        )
        await self._case.flush()
        schedule = self._state.schedule
        cancelled = lambda: self._cancel is not None  # noqa: E731

        if not await wait_until(
            cancelled, until=schedule.opening_reminder_at, timer="opening-reminder"
        ):
            self._remind_owner("opening_reminder", "opens")
            await self._case.flush()
        if await wait_until(cancelled, until=self._state.schedule.opens_at, timer="opening"):
            self._close_reminder("opening_reminder", "cancelled")
            await self._cancelled(self._cancel, "cancelled")
            return False
        self._close_reminder("opening_reminder", "opened")
        await self._gate("open")
        self._case.transition(CampaignStatus.OPEN, STEWARD, "the sale opened")
        await self._case.flush()

        reminded = False
        while workflow.now() < self._state.schedule.closes_at:
            version = self._window_version
            current = self._state.schedule

            def changed(version: int = version) -> bool:
                return self._window_version != version

            if not reminded and workflow.now() < current.closing_reminder_at:
                if await wait_until(
                    changed, until=current.closing_reminder_at, timer="closing-reminder"
                ):
                    continue
                self._remind_owner("closing_reminder", "closes")
                await self._case.flush()
                reminded = True
                continue
            await wait_until(changed, until=current.closes_at, timer="closing")
        self._close_reminder("closing_reminder", "closed")
        await self._gate("closed")
        self._case.transition(CampaignStatus.CLOSED, STEWARD, "the sale closed")
        await self._case.flush()
        return True

    def _remind_owner(self, kind: str, verb: str) -> None:
        """A reminder in the owner's work queue, closed when the moment comes."""
        owner = self._state.prepared_by[0]
        workflow_id = workflow.info().workflow_id
        due = self._state.schedule.opens_at if verb == "opens" else self._state.schedule.closes_at
        self._case.pending.open_tasks.append(
            OpenTaskInput(
                task_id=task_id(workflow_id, kind, 1),
                process=CAMPAIGN,
                case_id=self._state.campaign_id,
                workflow_id=workflow_id,
                kind=kind,
                title=f"Employee sale {self._state.campaign_id} {verb} at {due.isoformat()}",
                awaited_role=Role.COORDINATOR,
                assignee=owner,
                due_at=due,
                opened_at=workflow.now(),
            )
        )
        self._reminders.add(kind)
        self._state.reminders_sent += 1
        self._case.audit(
            "owner_reminded", reason=f"the sale {verb} at {due.isoformat()}", after={"owner": owner}
        )

    def _close_reminder(self, kind: str, outcome: str) -> None:
        if kind not in self._reminders:
            return
        self._reminders.discard(kind)
        self._case.pending.close_tasks.append(
            CloseTaskInput(
                task_id=task_id(workflow.info().workflow_id, kind, 1),
                closed_by=STEWARD,
                outcome=outcome,
                closed_at=workflow.now(),
            )
        )

    async def _gate(self, state: str, *, with_window: bool = False) -> None:
        """Move the store's quota gate (the order endpoint reads it)."""
        await workflow.execute_activity(
            SET_CAMPAIGN_GATE,
            GateInput(
                campaign_id=self._state.campaign_id,
                state=state,
                schedule=self._state.schedule if with_window else None,
            ),
            start_to_close_timeout=STORE_CALL,
            retry_policy=STORE_RETRY,
        )

    # ------------------------------------------------------------ reconciliation

    async def _reconcile(self) -> None:
        self._case.transition(CampaignStatus.RECONCILING, STEWARD, "reconciling the sale")
        await self._case.flush()
        escalate_at = workflow.now() + self._input.reconcile_for
        escalated = False
        while True:
            self._state.reconciliations += 1
            self._reconcile_now = False
            result = await workflow.execute_activity(
                RECONCILE_CAMPAIGN,
                ReconcileInput(
                    campaign_id=self._state.campaign_id,
                    workflow_id=workflow.info().workflow_id,
                    closed_at=self._state.schedule.closes_at,
                    attempt=self._state.reconciliations,
                ),
                result_type=ReconcileResult,
                start_to_close_timeout=STORE_CALL,
                retry_policy=STORE_RETRY,
            )
            self._sync_discrepancies(result.discrepancies)
            self._case.audit(
                "campaign_reconciled",
                reason=f"{result.orders} order(s), {len(result.discrepancies)} discrepancy(ies)",
                after={"attempt": self._state.reconciliations, "export_rows": result.export_rows},
            )
            if not result.discrepancies:
                self._case.transition(
                    CampaignStatus.RECONCILED,
                    STEWARD,
                    f"clean: payroll export of {result.export_rows} employee(s)",
                )
                await self._case.flush()
                return
            if not escalated and workflow.now() >= escalate_at:
                escalated = True
                self._escalate_discrepancies()
            await self._case.flush()
            await wait_until(
                lambda: self._reconcile_now,
                until=workflow.now() + self._input.reconcile_every,
                timer="reconcile-recheck",
            )

    def _sync_discrepancies(self, found: list[Discrepancy]) -> None:
        """One finance task per discrepancy; a task whose discrepancy went away closes."""
        workflow_id = workflow.info().workflow_id
        current = {(d.kind, d.order_id): d for d in found}
        for key, task in list(self._discrepancy_tasks.items()):
            if key not in current:
                self._case.pending.close_tasks.append(
                    CloseTaskInput(
                        task_id=task,
                        closed_by=STEWARD,
                        outcome="resolved",
                        closed_at=workflow.now(),
                    )
                )
                del self._discrepancy_tasks[key]
        for key, d in current.items():
            if key in self._discrepancy_tasks:
                continue
            task = task_id(workflow_id, f"discrepancy-{d.kind}-{d.order_id}", 1)
            self._discrepancy_tasks[key] = task
            self._case.pending.open_tasks.append(
                OpenTaskInput(
                    task_id=task,
                    process=CAMPAIGN,
                    case_id=self._state.campaign_id,
                    workflow_id=workflow_id,
                    kind="campaign_discrepancy",
                    title=f"{d.kind.replace('_', ' ')}: order {d.order_id} ({d.detail})",
                    awaited_role=Role.FINANCE,
                    due_at=workflow.now() + self._input.reconcile_for,
                    opened_at=workflow.now(),
                )
            )
        self._state.discrepancies = found

    def _escalate_discrepancies(self) -> None:
        for task in self._discrepancy_tasks.values():
            self._case.pending.update_tasks.append(
                UpdateTaskInput(task_id=task, awaited_role=Role.MANAGER, escalated=True)
            )
        self._case.audit(
            "discrepancies_escalated",
            reason=f"{len(self._discrepancy_tasks)} discrepancy(ies) still open",
        )

    # ----------------------------------------------------------------- requests

    def _requests_resolved(self) -> bool:
        return all(r.outcome is not None for r in self._state.requests.values())

    async def _watch_request(self, request: RequestState) -> None:
        """Escalate the request to a manager when its SLA passes unresolved."""
        if await wait_until(
            lambda: request.outcome is not None, until=request.due_at, timer="request-sla"
        ):
            return
        request.escalated = True
        self._case.pending.update_tasks.append(
            UpdateTaskInput(
                task_id=self._request_task(request.request_id),
                awaited_role=Role.MANAGER,
                escalated=True,
            )
        )
        self._case.audit(
            "request_escalated",
            reason=f"{request.kind} request {request.request_id} past its SLA",
            after={"request_id": request.request_id, "due_at": request.due_at},
        )
        await self._case.flush()

    def _request_task(self, request_id: str) -> str:
        return task_id(workflow.info().workflow_id, f"request-{request_id}", 1)

    # ----------------------------------------------------------------- handlers

    @workflow.query(name=CampaignContract.QUERY_STATUS)
    def status(self) -> CampaignState:
        return self._state

    @workflow.update(name=CampaignContract.UPDATE_SUBMIT)
    async def submit(self, submit: SubmitInput) -> CampaignState:
        await self._submit.hand_over(submit)
        return self._state

    @submit.validator
    def _validate_submit(self, submit: SubmitInput) -> None:
        self._submit.validate(lambda: validate_submit(self._state, submit))

    @workflow.update(name=CampaignContract.UPDATE_APPROVE)
    async def approve(self, decision: ApprovalInput) -> CampaignState:
        await self._approval.hand_over(decision)
        return self._state

    @approve.validator
    def _validate_approve(self, decision: ApprovalInput) -> None:
        self._approval.validate(lambda: validate_approval(self._state, decision))

    @workflow.update(name=CampaignContract.UPDATE_CANCEL)
    async def cancel(self, cancel: CancelInput) -> CampaignState:
        self._cancel = cancel
        await workflow.wait_condition(lambda: self._state.status is CampaignStatus.CANCELLED)
        return self._state

    @cancel.validator
    def _validate_cancel(self, cancel: CancelInput) -> None:
        PendingDecision[None]().validate(lambda: self._cancellable(cancel))

    def _cancellable(self, cancel: CancelInput) -> None:
        if self._cancel is not None:
            raise ValueError("status: the campaign is being cancelled")
        validate_cancel(self._state, cancel)

    @workflow.update(name=CampaignContract.UPDATE_CHANGE_WINDOW)
    async def change_window(self, change: WindowChange) -> CampaignState:
        self._changing_window = True
        try:
            before = self._state.schedule
            after = changed_schedule(before, change, workflow.now())
            gate = "open" if self._state.status is CampaignStatus.OPEN else "scheduled"
            await workflow.execute_activity(
                SET_CAMPAIGN_GATE,
                GateInput(campaign_id=self._state.campaign_id, state=gate, schedule=after),
                start_to_close_timeout=STORE_CALL,
                retry_policy=STORE_RETRY,
            )
            self._state.schedule = after
            self._window_version += 1
            self._case.audit(
                "closed_early" if after.closes_at < before.closes_at else "window_extended",
                actor=change.actor,
                role=change.role,
                reason=change.reason or "window changed",
                before={"closes_at": before.closes_at},
                after={"closes_at": after.closes_at},
            )
            self._case.refresh()
            await self._case.flush()
        finally:
            self._changing_window = False
        return self._state

    @change_window.validator
    def _validate_change_window(self, change: WindowChange) -> None:
        PendingDecision[None]().validate(lambda: self._changeable(change))

    def _changeable(self, change: WindowChange) -> None:
        if self._changing_window:
            raise ValueError("closes_local: another window change is being applied")
        validate_window_change(self._state, change, workflow.now())

    @workflow.update(name=CampaignContract.UPDATE_FILE_REQUEST)
    async def file_request(self, request: FileRequestInput) -> RequestState:
        sla, owner = REQUEST_SLAS[request.kind]
        now = workflow.now()
        state = RequestState(
            request_id=request.request_id,
            kind=request.kind,
            owner_role=owner,
            opened_by=request.actor,
            opened_at=now,
            due_at=now + sla,
        )
        self._state.requests[request.request_id] = state
        workflow_id = workflow.info().workflow_id
        self._case.pending.open_tasks.append(
            OpenTaskInput(
                task_id=self._request_task(request.request_id),
                process=CAMPAIGN,
                case_id=self._state.campaign_id,
                workflow_id=workflow_id,
                kind=f"campaign_{request.kind}_request",
                title=f"{request.kind.replace('_', ' ')} request {request.request_id}",
                awaited_role=owner,
                due_at=state.due_at,
                opened_at=now,
            )
        )
        self._case.audit(
            "request_filed",
            actor=request.actor,
            role=request.role,
            reason=f"{request.kind} request",
            after={"request_id": request.request_id, "kind": request.kind, "due_at": state.due_at},
        )
        self._watchers.append(asyncio.create_task(self._watch_request(state)))
        await self._case.flush()
        return state

    @file_request.validator
    def _validate_file_request(self, request: FileRequestInput) -> None:
        PendingDecision[None]().validate(lambda: validate_file_request(self._state, request))

    @workflow.update(name=CampaignContract.UPDATE_RESOLVE_REQUEST)
    async def resolve_request(self, resolve: ResolveRequestInput) -> RequestState:
        request = self._state.requests[resolve.request_id]
        request.outcome = resolve.outcome
        request.reason = resolve.reason
        request.resolved_by = resolve.actor
        request.resolved_at = workflow.now()
        self._case.pending.close_tasks.append(
            CloseTaskInput(
                task_id=self._request_task(resolve.request_id),
                closed_by=resolve.actor,
                outcome=resolve.outcome,
                closed_at=workflow.now(),
            )
        )
        self._case.audit(
            "request_resolved",
            actor=resolve.actor,
            role=resolve.role,
            reason=f"{resolve.outcome}" + (f": {resolve.reason}" if resolve.reason else ""),
            after={"request_id": resolve.request_id, "outcome": resolve.outcome},
        )
        await self._case.flush()
        return request

    @resolve_request.validator
    def _validate_resolve_request(self, resolve: ResolveRequestInput) -> None:
        PendingDecision[None]().validate(lambda: validate_resolve_request(self._state, resolve))

    @workflow.update(name=CampaignContract.UPDATE_RECONCILE_AGAIN)
    async def reconcile_again(self, actor: str) -> CampaignState:
        self._reconcile_now = True
        reconciliations = self._state.reconciliations
        await workflow.wait_condition(
            lambda: (
                self._state.reconciliations > reconciliations
                or self._state.status is CampaignStatus.RECONCILED
            )
        )
        return self._state

    @reconcile_again.validator
    def _validate_reconcile_again(self, actor: str) -> None:
        if self._state.status is not CampaignStatus.RECONCILING:
            raise ApplicationError(
                f"status: the campaign is {self._state.status}, not reconciling",
                type=DECISION_REJECTED,
            )

    # ------------------------------------------------------------- the case

    def _history(self, status: CampaignStatus, actor: str, reason: str) -> None:
        self._state.history.append(
            StatusChange(at=workflow.now(), status=status, actor=actor, reason=reason)
        )

    def _facts(self) -> CaseFacts:
        state = self._state
        return CaseFacts(
            status=state.status,
            details=_details(state),
            amount_minor=0,
            currency=self._input.currency,
            awaited_role=state.awaited_role,
            due_at=state.due_at,
        )


def _details(state: CampaignState) -> str:
    s = state.schedule
    lines = [
        f"**{state.status.replace('_', ' ').capitalize()}** · employee sale {state.campaign_id}",
        f"Opens {s.opens_at:%Y-%m-%d %H:%M} UTC · closes {s.closes_at:%Y-%m-%d %H:%M} UTC "
        f"({state.timezone})",
    ]
    if state.report is not None:
        lines.append(
            f"Validation: {len(state.report.errors)} error(s), "
            f"{len(state.report.warnings)} warning(s)"
        )
    if state.approved_by:
        lines.append(f"Approved by {state.approved_by}")
    if state.discrepancies:
        lines.append(f"Discrepancies: {len(state.discrepancies)}")
    open_requests = sum(1 for r in state.requests.values() if r.outcome is None)
    if open_requests:
        lines.append(f"Open requests: {open_requests}")
    return "\n\n".join(lines)


__all__ = ["CampaignWorkflow"]
