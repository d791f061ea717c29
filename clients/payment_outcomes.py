"""The outcome of an asynchronous payment modification, routed to the
activity waiting for it.

Adyen answers a capture, cancel or refund with `received`; the payment
activity records the modification with its task token and completes
asynchronously (activities/payments_adyen.py). The webhook hands each
CAPTURE / CANCELLATION / REFUND notification item here, which:

1. under the modification's row lock, records the outcome once (an event
   already recorded changes nothing: Adyen redelivers), and on success writes
   the ledger row the activity would have written (a refund's in the order's
   refund lock, its in-flight row gone); a refused refund's in-flight row
   goes too, no money moved;
2. completes the waiting attempt with the PaymentOperationResult, or fails it
   with the non-retryable PaymentRefused error carrying Adyen's reason (the
   workflows' refusal paths take it from there: a failed refund opens its
   finance task).

An outcome may arrive before the activity recorded the modification: it is
kept, and the activity reads it and answers by itself (writing the ledger as
for a synchronous provider). An attempt that timed out before the outcome
came cannot be completed any more: the next attempt reads the outcome.

CAPTURE_FAILED and REFUND_FAILED end a waiting modification as refused, like
`success: false`; after a confirmed one they reverse its ledger row (as does
REFUNDED_REVERSED for a refund) and open a finance task with an audit row,
once per event. A success notified with another amount than requested is
refused for the process and goes to finance (docs/payments.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.audit import AuditEntry
from domain.common import Role, format_amount
from domain.payment_providers import (
    ModificationOutcome,
    OutcomeEffect,
    PaymentProviderName,
    notified_amount_mismatch,
)
from domain.payments import (
    LEDGER_CONFLICT,
    PAYMENT_REFUSED,
    LedgerEntry,
    PaymentOperationKind,
    PaymentOperationResult,
    PaymentOperationStatus,
)
from domain.tasks import OpenTaskInput
from store import audit, ledger, payment_modifications, payment_outcome_events, refunds_in_flight
from store import tasks as task_store
from store.payment_modifications import Modification, ModificationStatus

log = structlog.get_logger(__name__)


class Routed(StrEnum):
    """What became of one notification item."""

    # Recorded and handed to the waiting activity (or to its next attempt).
    SETTLED = "settled"
    # The same event again: nothing changed.
    DUPLICATE = "duplicate"
    # No operation has recorded this modification yet: the outcome is kept for it.
    KEPT_FOR_LATER = "kept_for_later"
    # Another outcome was recorded for the modification before: left alone.
    CONFLICTING = "conflicting"
    # A capture or refund confirmed before failed after all, or refunded money
    # came back: its ledger row is reversed and finance has a task.
    REVERSED = "reversed"
    # A reversal for a modification Steward never booked: nothing to undo.
    UNMATCHED = "unmatched"


@dataclass(frozen=True)
class RoutedOutcome:
    routed: Routed
    workflow_id: str | None = None


def _result(entry: LedgerEntry) -> PaymentOperationResult:
    return PaymentOperationResult(
        kind=entry.kind,
        idempotency_key=entry.idempotency_key,
        provider_reference=entry.provider_reference,
        status=PaymentOperationStatus.SUCCEEDED,
        amount_minor=entry.amount_minor,
        currency=entry.currency,
    )


def _refusal(row: Modification) -> ApplicationError:
    kind = row.kind.value if row.kind else "modification"
    reason = row.outcome_reason or "no reason given"
    # As the payment activity raises a provider's refusal (activities/payments.py).
    return ApplicationError(
        f"{row.provider} {kind} {row.psp_reference} refused: {reason}",
        row.outcome_reason or "refused",
        type=PAYMENT_REFUSED,
        non_retryable=True,
    )


async def _lock_order_refunds(conn: ledger.Executor, order_id: str) -> None:
    # The payment activity's refund lock (activities/payments.py).
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"refund:{order_id}"
    )


async def _book(conn: ledger.Executor, row: Modification, success: bool) -> LedgerEntry | None:
    """The ledger row of a successful modification (None on a refusal), and
    the end of a refund's in-flight row either way."""
    assert row.idempotency_key and row.workflow_id and row.order_id and row.kind
    assert row.amount_minor is not None and row.currency
    if row.kind is PaymentOperationKind.REFUND:
        await _lock_order_refunds(conn, row.order_id)
        await refunds_in_flight.finish(conn, row.idempotency_key)
    if not success:
        return None
    return await ledger.record(
        conn,
        idempotency_key=row.idempotency_key,
        workflow_id=row.workflow_id,
        order_id=row.order_id,
        kind=row.kind,
        amount_minor=row.amount_minor,
        currency=row.currency,
        provider=row.provider,
        provider_reference=row.psp_reference,
    )


# A finance task the webhook opens (no process waits for these events any more).
FINANCE_TASK_SLA = timedelta(days=2)
# The audit actor of what a provider reported.
_PROVIDER_ROLE = Role.SYSTEM


async def route_modification_outcome(
    client: Client, pool: asyncpg.Pool, outcome: ModificationOutcome
) -> RoutedOutcome:
    """Record one modification outcome and hand it to the activity waiting for it.

    A failure (refused at once, or CAPTURE_FAILED / REFUND_FAILED) of a
    modification still waiting ends it as refused: the waiting process takes
    its refusal path. One that comes after the modification was confirmed
    (and booked) reverses the ledger row and opens a finance task, as does
    REFUNDED_REVERSED. A success whose amount is not the amount requested is
    not taken as one: recorded, refused for the process, and a finance task.
    """
    effect = outcome.effect
    status = (
        ModificationStatus.SUCCEEDED
        if effect is OutcomeEffect.SUCCEEDED
        else ModificationStatus.REFUSED
    )
    reason = "" if effect is OutcomeEffect.SUCCEEDED else outcome.failure_reason
    conflict: ledger.LedgerConflictError | None = None
    async with pool.acquire() as conn, conn.transaction():
        row = await payment_modifications.lock(conn, outcome.provider, outcome.psp_reference)
        if outcome.provider is PaymentProviderName.STRIPE:
            # A Stripe refund is recorded there only while it is pending; once
            # booked, the ledger row under the key its metadata names is the
            # truth (also when an early event left a row without its operation).
            if not outcome.merchant_reference:
                return RoutedOutcome(Routed.UNMATCHED)
            row = await _confirmed_in_ledger(conn, outcome) or row
        if row is None:
            if effect is OutcomeEffect.REVERSED:
                # No refund of Steward's has this reference: nothing to undo.
                return RoutedOutcome(Routed.UNMATCHED)
            kept = await payment_modifications.record_early_outcome(
                conn,
                provider=outcome.provider,
                psp_reference=outcome.psp_reference,
                status=status,
                outcome_event=outcome.event_key,
                outcome_reason=reason,
                notified_value=outcome.amount_value,
                notified_currency=outcome.currency,
            )
            if kept:
                log.info(
                    "payment_outcome_kept_for_later",
                    provider=outcome.provider,
                    psp_reference=outcome.psp_reference,
                    event_key=outcome.event_key,
                )
                return RoutedOutcome(Routed.KEPT_FOR_LATER)
            # The activity recorded it meanwhile.
            row = await payment_modifications.lock(conn, outcome.provider, outcome.psp_reference)
            assert row is not None
        if row.status is not ModificationStatus.PENDING:
            if row.outcome_event == outcome.event_key or (
                row.status is ModificationStatus.SUCCEEDED and effect is OutcomeEffect.SUCCEEDED
            ):
                return RoutedOutcome(Routed.DUPLICATE, row.workflow_id)
            if (
                row.status is ModificationStatus.SUCCEEDED
                and effect is not OutcomeEffect.SUCCEEDED
                and row.has_operation
            ):
                return await _undo(conn, row, outcome)
            log.warning(
                "payment_outcome_conflicts",
                provider=outcome.provider,
                psp_reference=outcome.psp_reference,
                recorded=row.outcome_event,
                received=outcome.event_key,
            )
            return RoutedOutcome(Routed.CONFLICTING, row.workflow_id)
        if effect is OutcomeEffect.SUCCEEDED and row.has_operation:
            mismatch = _amount_mismatch(row, outcome)
            if mismatch is not None:
                status, reason = ModificationStatus.REFUSED, f"amount_mismatch: {mismatch}"
                await _record_and_tell_finance(
                    conn,
                    row,
                    outcome,
                    effect="amount_mismatch",
                    detail=mismatch,
                    title=f"{_what(row)} {row.psp_reference}: the provider confirmed another "
                    f"amount than requested ({mismatch}); not booked, check it in the "
                    "provider's dashboard",
                )
        await payment_modifications.settle(
            conn,
            provider=outcome.provider,
            psp_reference=outcome.psp_reference,
            status=status,
            outcome_event=outcome.event_key,
            outcome_reason=reason,
        )
        row = await payment_modifications.lock(conn, outcome.provider, outcome.psp_reference)
        assert row is not None
        entry: LedgerEntry | None = None
        try:
            # A savepoint: a conflicting ledger row leaves the outcome recorded.
            async with conn.transaction():
                entry = await _book(conn, row, status is ModificationStatus.SUCCEEDED)
        except ledger.LedgerConflictError as exc:
            conflict = exc
    log.info(
        "payment_outcome_recorded",
        provider=outcome.provider,
        psp_reference=outcome.psp_reference,
        kind=outcome.kind.value,
        event_code=outcome.event_code,
        success=status is ModificationStatus.SUCCEEDED,
        reason=reason,
        workflow_id=row.workflow_id,
        order_id=row.order_id,
    )
    await _complete(client, row, entry, conflict)
    return RoutedOutcome(Routed.SETTLED, row.workflow_id)


async def _confirmed_in_ledger(
    conn: ledger.Executor, outcome: ModificationOutcome
) -> Modification | None:
    """The ledger row of the operation the event names, as a confirmed
    modification; None when it is not booked (yet)."""
    entry = await ledger.get(conn, outcome.merchant_reference)
    if entry is None or entry.provider_reference != outcome.psp_reference:
        return None
    return Modification(
        provider=entry.provider,
        psp_reference=entry.provider_reference,
        idempotency_key=entry.idempotency_key,
        workflow_id=entry.workflow_id,
        order_id=entry.order_id,
        kind=entry.kind,
        amount_minor=entry.amount_minor,
        currency=entry.currency,
        authorisation_ref=None,
        task_token=None,
        requested_at=None,
        status=ModificationStatus.SUCCEEDED,
        outcome_event=None,
        outcome_reason="",
        settled_at=entry.recorded_at,
    )


async def check_kept_amount(pool: asyncpg.Pool, row: Modification) -> str | None:
    """For an operation that found its outcome kept for it (it came before
    the provider's answer): how the notified amount differs from the one it
    requested, or None. A mismatch is handled as when the notification finds
    the operation waiting: the modification is refused, recorded, and goes to
    finance (once: a later attempt finds it refused)."""
    if row.status is not ModificationStatus.SUCCEEDED or row.kind is None:
        return None
    if row.notified_value is None and row.notified_currency is None:
        return None
    _, _, rest = (row.outcome_event or "").partition(":")
    code = rest.rpartition(":")[0] or row.kind.value.upper()
    outcome = ModificationOutcome(
        provider=PaymentProviderName(row.provider),
        psp_reference=row.psp_reference,
        original_reference=row.authorisation_ref or "",
        kind=row.kind,
        event_code=code,
        success=True,
        event_key=row.outcome_event or f"{row.psp_reference}:{code}:true",
        amount_value=row.notified_value,
        currency=row.notified_currency,
    )
    mismatch = _amount_mismatch(row, outcome)
    if mismatch is None:
        return None
    async with pool.acquire() as conn, conn.transaction():
        locked = await payment_modifications.lock(conn, row.provider, row.psp_reference)
        if locked is not None and await payment_modifications.refuse_settled(
            conn,
            provider=row.provider,
            psp_reference=row.psp_reference,
            outcome_reason=f"amount_mismatch: {mismatch}",
        ):
            await _record_and_tell_finance(
                conn,
                locked,
                outcome,
                effect="amount_mismatch",
                detail=mismatch,
                title=f"{_what(locked)} {row.psp_reference}: the provider confirmed another "
                f"amount than requested ({mismatch}); not booked, check it in the "
                "provider's dashboard",
            )
    return mismatch


def _amount_mismatch(row: Modification, outcome: ModificationOutcome) -> str | None:
    if row.kind is PaymentOperationKind.VOID or row.amount_minor is None or not row.currency:
        # A cancel moves no amount (Adyen names the payment's).
        return None
    return notified_amount_mismatch(outcome, row.amount_minor, row.currency)


def _what(row: Modification) -> str:
    kind = row.kind.value.capitalize() if row.kind else "Modification"
    money = (
        format_amount(row.amount_minor, row.currency)
        if row.amount_minor is not None and row.currency
        else ""
    )
    order = f" of order {row.order_id}" if row.order_id else ""
    return f"{kind} {money}{order}".replace("  ", " ")


# What each late event undoes, and the task finance gets.
_UNDO_REASON = {
    PaymentOperationKind.CAPTURE: "capture_failed",
    PaymentOperationKind.REFUND: "refund_failed",
}


async def _undo(
    conn: ledger.Executor, row: Modification, outcome: ModificationOutcome
) -> RoutedOutcome:
    """A confirmed capture or refund failed after all (or a refund came back):
    the ledger row is reversed once, with an audit row and a finance task."""
    assert row.idempotency_key and row.kind
    reversal = (
        "refunded_reversed"
        if outcome.effect is OutcomeEffect.REVERSED
        else _UNDO_REASON.get(row.kind, "failed")
    )
    first = await payment_outcome_events.record(
        conn,
        provider=row.provider,
        event_key=outcome.event_key,
        psp_reference=row.psp_reference,
        event_code=outcome.event_code,
        workflow_id=row.workflow_id,
        order_id=row.order_id,
        effect=f"{row.kind.value}_reversed",
        detail=outcome.failure_reason,
    )
    if not first:
        return RoutedOutcome(Routed.DUPLICATE, row.workflow_id)
    if row.kind is PaymentOperationKind.REFUND:
        await _lock_order_refunds(conn, row.order_id or "")
    booked = await ledger.get(conn, row.idempotency_key)
    reversed_now = booked is not None and await payment_outcome_events.reverse(
        conn,
        idempotency_key=row.idempotency_key,
        reason=reversal,
        provider=row.provider,
        event_key=outcome.event_key,
    )
    if row.kind is PaymentOperationKind.CAPTURE:
        title = (
            f"{_what(row)} {row.psp_reference} failed after it was confirmed "
            f"({outcome.failure_reason}): the order may be released without payment"
        )
    elif outcome.effect is OutcomeEffect.REVERSED:
        title = (
            f"{_what(row)} {row.psp_reference} came back to the merchant account "
            "(REFUNDED_REVERSED): the customer was not refunded"
        )
    else:
        title = (
            f"{_what(row)} {row.psp_reference} failed after it was confirmed "
            f"({outcome.failure_reason}): the customer was not refunded"
        )
    await _tell_finance(conn, row, outcome, title=title, action=f"{row.kind.value}_reversed")
    log.warning(
        "payment_outcome_reversed",
        provider=row.provider,
        psp_reference=row.psp_reference,
        event_code=outcome.event_code,
        workflow_id=row.workflow_id,
        order_id=row.order_id,
        ledger_reversed=reversed_now,
    )
    return RoutedOutcome(Routed.REVERSED, row.workflow_id)


async def _record_and_tell_finance(
    conn: ledger.Executor,
    row: Modification,
    outcome: ModificationOutcome,
    *,
    effect: str,
    detail: str,
    title: str,
) -> None:
    await payment_outcome_events.record(
        conn,
        provider=row.provider,
        event_key=outcome.event_key,
        psp_reference=row.psp_reference,
        event_code=outcome.event_code,
        workflow_id=row.workflow_id,
        order_id=row.order_id,
        effect=effect,
        detail=detail,
    )
    await _tell_finance(conn, row, outcome, title=title, action=effect)


async def _tell_finance(
    conn: ledger.Executor,
    row: Modification,
    outcome: ModificationOutcome,
    *,
    title: str,
    action: str,
) -> None:
    """An audit row on the case and a finance task, each once per event."""
    assert row.workflow_id
    process, _, case_id = row.workflow_id.partition(":")
    now = datetime.now(UTC)
    await audit.insert_entry(
        conn,
        AuditEntry(
            entry_id=f"{row.workflow_id}/payment-event/{outcome.event_key}",
            workflow_id=row.workflow_id,
            process=process,
            case_id=case_id or row.workflow_id,
            actor=row.provider,
            role=_PROVIDER_ROLE,
            action=action,
            reason=title,
            after={
                "event_code": outcome.event_code,
                "psp_reference": row.psp_reference,
                "idempotency_key": row.idempotency_key,
                "amount_value": outcome.amount_value,
                "currency": outcome.currency,
            },
            occurred_at=now,
            order_id=row.order_id,
        ),
    )
    await task_store.open(
        conn,
        OpenTaskInput(
            task_id=f"{row.workflow_id}/{action}/{outcome.event_key}",
            process=process,
            case_id=case_id or row.workflow_id,
            workflow_id=row.workflow_id,
            kind=action,
            title=title[:500],
            awaited_role=Role.FINANCE,
            due_at=now + FINANCE_TASK_SLA,
        ),
    )


async def _complete(
    client: Client,
    row: Modification,
    entry: LedgerEntry | None,
    conflict: ledger.LedgerConflictError | None,
) -> None:
    """Complete the waiting attempt. One that timed out meanwhile is gone: its
    next attempt reads the recorded outcome, so failing to complete loses nothing."""
    if row.task_token is None:
        return
    handle = client.get_async_activity_handle(task_token=row.task_token)
    try:
        if conflict is not None:
            await handle.fail(
                ApplicationError(str(conflict), type=LEDGER_CONFLICT, non_retryable=True)
            )
        elif entry is not None:
            await handle.complete(_result(entry))
        else:
            await handle.fail(_refusal(row))
    except RPCError as err:
        log.info(
            "payment_outcome_not_completed",
            provider=row.provider,
            psp_reference=row.psp_reference,
            workflow_id=row.workflow_id,
            reason="attempt no longer waiting"
            if err.status == RPCStatusCode.NOT_FOUND
            else str(err),
        )
