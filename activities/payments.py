"""Capture, void and refund through the payment provider port, recorded in the ledger.

Why a retried activity can never move money twice:
1. The provider receives `input.idempotency_key` (workflow id + operation id,
   never the run id) and performs the effect at most once per key.
2. The ledger has a unique key on the same value; the row is written after
   the provider confirmed, with ON CONFLICT DO NOTHING.
3. A key already in the ledger is answered from the ledger without calling
   the provider again.
If the worker dies between 1 and 2, the retry calls the provider with the same
key, gets the same reference back, and writes the one row.

No connection is held while a provider works (issue 13): a refund checks its
rule and marks itself in flight in one short transaction under the order's
refund lock, calls the provider with no connection held, and records the
outcome in a second short transaction. See `PaymentActivities._refund`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import (
    NotifiedPaymentProvider,
    PaymentProvider,
    PaymentRefusedError,
    RateLimitedError,
)
from domain.payments import (
    AWAIT_CAPTURE_OUTCOME,
    CAPTURE_PAYMENT,
    IDEMPOTENCY_KEY_REUSED,
    LEDGER_CONFLICT,
    PAYMENT_REFUSED,
    PROVIDER_RATE_LIMITED,
    REFUND_PAYMENT,
    UNKNOWN_PAYMENT_PROVIDER,
    VOID_AUTHORISATION,
    LedgerEntry,
    PaymentOperationInput,
    PaymentOperationKind,
    PaymentOperationResult,
    PaymentOperationStatus,
    RefundRefusal,
    refund_freeze,
    refund_refusal,
)
from store import disputes, ledger, refunds_in_flight

ProviderCall = Callable[..., Awaitable[str]]


@runtime_checkable
class FinalOutcomeReader(Protocol):
    """A provider whose modifications may still be pending after the process
    stopped waiting (Adyen): the final outcome of the one an operation sent."""

    async def await_final_outcome(
        self, *, kind: PaymentOperationKind, operation: PaymentOperationInput
    ) -> str | None:
        """The modification's reference when it succeeded, None when it was
        refused or never sent; hands the activity over to asynchronous
        completion while it is pending."""
        ...


@runtime_checkable
class CaptureStatusReader(Protocol):
    """A provider Steward can ask whether an authorisation was captured
    (Stripe's PaymentIntent): no notification tells Steward about a capture
    whose answer it never got."""

    async def captured(self, *, operation: PaymentOperationInput) -> tuple[str, int] | None:
        """(the capture's reference, the amount taken in minor units) when
        the provider took the money, None when it did not."""
        ...


def _raise_refused(refusal: RefundRefusal | None) -> None:
    if refusal is not None:
        raise ApplicationError(
            refusal.message, refusal.details, type=refusal.type, non_retryable=True
        )


def _result(entry: LedgerEntry) -> PaymentOperationResult:
    return PaymentOperationResult(
        kind=entry.kind,
        idempotency_key=entry.idempotency_key,
        provider_reference=entry.provider_reference,
        status=PaymentOperationStatus.SUCCEEDED,
        amount_minor=entry.amount_minor,
        currency=entry.currency,
    )


@dataclass(frozen=True)
class _Refunded:
    row: LedgerEntry
    # Found in the ledger under the lock: another attempt of this operation
    # recorded it while this one waited.
    recorded_before: bool


class PaymentActivities:
    def __init__(self, pool: asyncpg.Pool, providers: Mapping[str, PaymentProvider]) -> None:
        self.pool = pool
        # By the name orders carry in `payment.provider` ("simulated", "adyen"...).
        self.providers = dict(providers)

    @activity.defn(name=CAPTURE_PAYMENT)
    async def capture_payment(self, input: PaymentOperationInput) -> PaymentOperationResult:
        return await self._operate(PaymentOperationKind.CAPTURE, input)

    @activity.defn(name=VOID_AUTHORISATION)
    async def void_authorisation(self, input: PaymentOperationInput) -> PaymentOperationResult:
        return await self._operate(PaymentOperationKind.VOID, input)

    @activity.defn(name=REFUND_PAYMENT)
    async def refund_payment(self, input: PaymentOperationInput) -> PaymentOperationResult:
        return await self._operate(PaymentOperationKind.REFUND, input)

    @activity.defn(name=AWAIT_CAPTURE_OUTCOME)
    async def await_capture_outcome(self, input: PaymentOperationInput) -> PaymentOperationResult:
        """Whether a capture the process gave up on happened after all. Sends
        nothing that moves money: the ledger's answer; for a provider that
        reports by notification, the final outcome of the capture it was sent
        (waited for while pending; the notification completes this activity,
        and books the ledger, as for the capture itself); for a provider that
        can be asked (Stripe, the simulator), its record, a capture
        found booked in the ledger under the capture's key. `status` refused:
        no money was taken."""
        key = input.idempotency_key
        done = await ledger.get(self.pool, key)
        if done is not None:
            return _result(done)
        provider = self.providers.get(input.provider)
        if isinstance(provider, FinalOutcomeReader):
            reference = await provider.await_final_outcome(
                kind=PaymentOperationKind.CAPTURE, operation=input
            )
            if reference is not None:
                # Settled between the two reads: the notification booked it.
                booked = await ledger.get(self.pool, key)
                if booked is not None:
                    return _result(booked)
        if isinstance(provider, CaptureStatusReader):
            found = await provider.captured(operation=input)
            if found is not None:
                reference, amount_minor = found
                # Booked as the capture it was (once: the key is unique), so
                # the ledger shows the money the review then refunds.
                entry = await self._record(
                    self.pool,
                    PaymentOperationKind.CAPTURE,
                    input.model_copy(update={"amount_minor": amount_minor}),
                    reference,
                )
                activity_logger(order_id=input.order_id, idempotency_key=key).warning(
                    "capture_found_at_provider",
                    provider=input.provider,
                    provider_reference=reference,
                    amount_minor=amount_minor,
                )
                return _result(entry)
        activity_logger(order_id=input.order_id, idempotency_key=key).info(
            "capture_not_taken", provider=input.provider
        )
        return PaymentOperationResult(
            kind=PaymentOperationKind.CAPTURE,
            idempotency_key=key,
            provider_reference="",
            status=PaymentOperationStatus.REFUSED,
            amount_minor=input.amount_minor,
            currency=input.currency,
        )

    def _provider(self, name: str) -> PaymentProvider:
        provider = self.providers.get(name)
        if provider is None:
            known = ", ".join(sorted(self.providers)) or "none"
            raise ApplicationError(
                f"no payment provider {name!r} is configured (known: {known})",
                type=UNKNOWN_PAYMENT_PROVIDER,
                non_retryable=True,
            )
        return provider

    def _call(self, provider: PaymentProvider, kind: PaymentOperationKind) -> ProviderCall:
        if kind is PaymentOperationKind.CAPTURE:
            return provider.capture
        if kind is PaymentOperationKind.VOID:
            return provider.void
        return provider.refund

    async def _operate(
        self, kind: PaymentOperationKind, input: PaymentOperationInput
    ) -> PaymentOperationResult:
        key = input.idempotency_key
        log = activity_logger(
            order_id=input.order_id,
            operation=kind.value,
            idempotency_key=key,
            amount_minor=input.amount_minor,
            currency=input.currency,
        )
        done = await ledger.get(self.pool, key)
        if done is not None:
            return self._already_done(kind, input, done, log)
        provider = self._provider(input.provider)
        if kind is PaymentOperationKind.REFUND:
            refunded = await self._refund(provider, input)
            if refunded.recorded_before:
                return self._already_done(kind, input, refunded.row, log)
            entry = refunded.row
        else:
            reference = await self._ask_provider(provider, kind, input)
            entry = await self._record(self.pool, kind, input, reference)
        log.info("payment_operation_succeeded", provider_reference=entry.provider_reference)
        return _result(entry)

    def _already_done(
        self,
        kind: PaymentOperationKind,
        input: PaymentOperationInput,
        done: LedgerEntry,
        log: Any,
    ) -> PaymentOperationResult:
        # The same key must mean the same movement; anything else is a bug in
        # the caller's operation ids, and answering with the old result would
        # hide it.
        if (
            done.kind is not kind
            or done.amount_minor != input.amount_minor
            or done.currency != input.currency
        ):
            raise ApplicationError(
                f"idempotency key {done.idempotency_key} is recorded for a {done.kind} of "
                f"{done.amount_minor} {done.currency}, not a {kind} of {input.amount_minor} "
                f"{input.currency}",
                type=IDEMPOTENCY_KEY_REUSED,
                non_retryable=True,
            )
        log.info("payment_operation_already_recorded", provider_reference=done.provider_reference)
        return _result(done)

    async def _refund(self, provider: PaymentProvider, input: PaymentOperationInput) -> _Refunded:
        """One refund per order at a time, without holding a connection while
        the provider works:

        1. Under the order's refund lock, in one short transaction: the ledger
           row of this very operation (another attempt of it may have finished
           while this one waited for the lock: that row is the answer), the
           refund rule over the ledger plus the order's other refunds in
           flight, and this operation's in-flight row.
        2. The provider, with no connection held, with the operation's key.
        3. Under the lock again: the ledger row, and the in-flight row gone.

        Two attempts of one operation (Temporal starts the second when the
        first passes its start-to-close timeout) both reach the provider with
        the same key and get the same reference; neither counts the other as
        a second refund. Two different refunds still cannot both take the
        last money: each counts the other's in-flight row.
        """
        key = input.idempotency_key
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock_order_refunds(conn, input.order_id)
            done = await ledger.get(conn, key)
            if done is not None:
                return _Refunded(done, recorded_before=True)
            # The rule is domain/payments.py's; this gathers its facts, the
            # dispute first: a frozen refund looks no further.
            dispute = await disputes.open_dispute_for_order(conn, input.order_id)
            _raise_refused(refund_freeze(input.order_id, dispute))
            totals = await ledger.totals_for_order(conn, input.order_id)
            # Money other refunds may be taking right now counts as refunded.
            in_flight = await refunds_in_flight.other_refunds_minor(
                conn, input.order_id, excluding=key
            )
            charged_back = await disputes.chargeback_losses_minor(
                conn, input.order_id, input.currency
            )
            _raise_refused(
                refund_refusal(
                    order_id=input.order_id,
                    amount_minor=input.amount_minor,
                    currency=input.currency,
                    totals=totals.model_copy(
                        update={"refunded_minor": totals.refunded_minor + in_flight}
                    ),
                    chargeback_lost_minor=charged_back,
                )
            )
            started = await refunds_in_flight.start(
                conn,
                idempotency_key=key,
                workflow_id=input.workflow_id,
                order_id=input.order_id,
                amount_minor=input.amount_minor,
                currency=input.currency,
                provider=input.provider,
            )
        if (started.amount_minor, started.currency) != (input.amount_minor, input.currency):
            raise ApplicationError(
                f"idempotency key {key} is in flight for a refund of {started.amount_minor} "
                f"{started.currency}, not {input.amount_minor} {input.currency}",
                type=IDEMPOTENCY_KEY_REUSED,
                non_retryable=True,
            )
        try:
            reference = await self._ask_provider(provider, PaymentOperationKind.REFUND, input)
        except ApplicationError as exc:
            if exc.type == PAYMENT_REFUSED:
                # The provider refused this key: no money moved, and none will
                # under it. Any other failure may have moved money (a timeout
                # after the provider committed): the row stays for the retry.
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._lock_order_refunds(conn, input.order_id)
                    await refunds_in_flight.finish(conn, key)
            raise
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock_order_refunds(conn, input.order_id)
            entry = await self._record(conn, PaymentOperationKind.REFUND, input, reference)
            await refunds_in_flight.finish(conn, key)
        return _Refunded(entry, recorded_before=False)

    @staticmethod
    async def _lock_order_refunds(conn: ledger.Executor, order_id: str) -> None:
        # Transaction-scoped: released at commit or rollback.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"refund:{order_id}"
        )

    async def _ask_provider(
        self, provider: PaymentProvider, kind: PaymentOperationKind, input: PaymentOperationInput
    ) -> str:
        try:
            reference = await self._call(provider, kind)(
                idempotency_key=input.idempotency_key,
                authorisation_ref=input.authorisation_ref,
                amount_minor=input.amount_minor,
                currency=input.currency,
            )
            if isinstance(provider, NotifiedPaymentProvider):
                # The provider only received the request (Adyen): the outcome
                # comes by notification and completes this activity, unless
                # it is known already (activities/payments_adyen.py).
                reference = await provider.await_outcome(
                    kind=kind, operation=input, reference=reference
                )
            return reference
        except PaymentRefusedError as exc:
            activity_logger(order_id=input.order_id).warning(
                "payment_operation_refused", operation=kind.value, code=exc.code
            )
            raise ApplicationError(
                str(exc), exc.code, type=PAYMENT_REFUSED, non_retryable=True
            ) from exc
        except RateLimitedError as exc:
            # Still retryable, but no sooner than the provider asked.
            raise ApplicationError(
                str(exc), type=PROVIDER_RATE_LIMITED, next_retry_delay=exc.retry_after
            ) from exc
        # Timeouts and 5xx (TransientPortError) propagate as they are:
        # Temporal retries them with backoff and the same idempotency key.

    async def _record(
        self,
        db: ledger.Executor,
        kind: PaymentOperationKind,
        input: PaymentOperationInput,
        reference: str,
    ) -> LedgerEntry:
        try:
            return await ledger.record(
                db,
                idempotency_key=input.idempotency_key,
                workflow_id=input.workflow_id,
                order_id=input.order_id,
                kind=kind,
                amount_minor=input.amount_minor,
                currency=input.currency,
                provider=input.provider,
                provider_reference=reference,
            )
        except ledger.LedgerConflictError as exc:
            # Money moved but the books disagree: retrying cannot fix that,
            # a person must look (the error carries both versions).
            raise ApplicationError(str(exc), type=LEDGER_CONFLICT, non_retryable=True) from exc
