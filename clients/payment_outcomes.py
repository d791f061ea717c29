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
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.payment_providers import ModificationOutcome
from domain.payments import (
    LEDGER_CONFLICT,
    PAYMENT_REFUSED,
    LedgerEntry,
    PaymentOperationKind,
    PaymentOperationResult,
    PaymentOperationStatus,
)
from store import ledger, payment_modifications, refunds_in_flight
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


async def route_modification_outcome(
    client: Client, pool: asyncpg.Pool, outcome: ModificationOutcome
) -> RoutedOutcome:
    """Record one modification outcome and hand it to the activity waiting for it."""
    status = ModificationStatus.SUCCEEDED if outcome.success else ModificationStatus.REFUSED
    reason = "" if outcome.success else (outcome.reason or "refused")
    conflict: ledger.LedgerConflictError | None = None
    async with pool.acquire() as conn, conn.transaction():
        row = await payment_modifications.lock(conn, outcome.provider, outcome.psp_reference)
        if row is None:
            kept = await payment_modifications.record_early_outcome(
                conn,
                provider=outcome.provider,
                psp_reference=outcome.psp_reference,
                status=status,
                outcome_event=outcome.event_key,
                outcome_reason=reason,
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
            routed = (
                Routed.DUPLICATE if row.outcome_event == outcome.event_key else Routed.CONFLICTING
            )
            if routed is Routed.CONFLICTING:
                log.warning(
                    "payment_outcome_conflicts",
                    provider=outcome.provider,
                    psp_reference=outcome.psp_reference,
                    recorded=row.outcome_event,
                    received=outcome.event_key,
                )
            return RoutedOutcome(routed, row.workflow_id)
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
                entry = await _book(conn, row, outcome.success)
        except ledger.LedgerConflictError as exc:
            conflict = exc
    log.info(
        "payment_outcome_recorded",
        provider=outcome.provider,
        psp_reference=outcome.psp_reference,
        kind=outcome.kind.value,
        success=outcome.success,
        reason=reason,
        workflow_id=row.workflow_id,
        order_id=row.order_id,
    )
    await _complete(client, row, entry, conflict)
    return RoutedOutcome(Routed.SETTLED, row.workflow_id)


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
