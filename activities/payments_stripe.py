"""Stripe behind the PaymentProvider port, on Stripe's official Python library.

The order's `authorisation_ref` is the PaymentIntent id (`pi_...`) the
checkout confirmed with `capture_method=manual`. Steward:
- captures it: POST /v1/payment_intents/{id}/capture with `amount_to_capture`
  (the reference kept is the PaymentIntent's charge, `latest_charge`, which a
  dispute names too);
- voids it: POST /v1/payment_intents/{id}/cancel (the reference is the
  PaymentIntent);
- refunds it: POST /v1/refunds with `payment_intent` and `amount` (the
  reference is the Refund, `re_...`).

Every request carries Steward's idempotency key (`{workflow_id}/{operation}`)
as Stripe's `Idempotency-Key`: a repeat within Stripe's 24 hours answers with
the first result and moves no money twice. Amounts go in Stripe's minor units
(domain.payment_providers.stripe_amount). The library's own retries are off:
Temporal retries, with the same key.

Errors onto the port's contract (activities/ports.py):
- a card decline (402), an invalid request (400/404: already captured or
  cancelled, authorisation expired, amount too large, no such PaymentIntent)
  and an idempotency error: PaymentRefusedError with Stripe's `decline_code`
  or `code`;
- 429 (rate limit, lock timeout): RateLimitedError after `Retry-After`;
- a timeout: PortTimeoutError (the effect may have happened: the key makes
  the retry safe); 5xx, 409, a refused connection, 401/403 (a key to fix,
  not a payment to give up on): PortUnavailableError.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import asyncpg
import httpx
import stripe
import structlog
from stripe.params import PaymentIntentCaptureParams, RefundCreateParams
from temporalio import activity

from activities.ports import (
    PaymentRefusedError,
    PortError,
    PortTimeoutError,
    PortUnavailableError,
    RateLimitedError,
)
from domain.payment_providers import (
    STRIPE_EXPONENTS,
    AmountNotRepresentable,
    PaymentProviderName,
    steward_minor_units,
    stripe_amount,
)
from domain.payments import PaymentOperationInput, PaymentOperationKind
from store import payment_modifications
from store.payment_modifications import ModificationStatus

log = structlog.get_logger(__name__)

# When a 429 carries no Retry-After.
DEFAULT_RETRY_AFTER = timedelta(seconds=2)
# Refund statuses that mean no money goes back.
REFUND_FAILED_STATUSES = frozenset({"failed", "canceled"})
# Not final yet: the refund waits for its `refund.updated` /
# `charge.refund.updated` (succeeded, failed, canceled) or `refund.failed`.
REFUND_PENDING_STATUSES = frozenset({"pending", "requires_action"})


def retry_after(headers: Mapping[str, str] | None) -> timedelta:
    """Retry-After in seconds (what Stripe and Adyen send); the default without one."""
    value = None
    if headers:
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        seconds = None
    return (
        timedelta(seconds=seconds)
        if seconds is not None and seconds >= 0
        else (DEFAULT_RETRY_AFTER)
    )


def port_error(exc: stripe.StripeError, where: str) -> PortError:
    """The port's error for what the library raised."""
    message = f"{where}: {exc.user_message or type(exc).__name__}"
    status = exc.http_status or 0
    if isinstance(exc, stripe.RateLimitError) or status == 429:
        return RateLimitedError(f"{message} (HTTP 429)", retry_after(exc.headers))
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, httpx.TimeoutException):
            return PortTimeoutError(f"{where}: no answer in time")
        return PortUnavailableError(f"{where}: connection failed ({exc.__cause__!r})")
    if isinstance(exc, stripe.CardError | stripe.InvalidRequestError | stripe.IdempotencyError):
        error = exc.error
        code = (
            (getattr(error, "decline_code", None) if error is not None else None)
            or exc.code
            or (getattr(error, "type", None) if error is not None else None)
            or "invalid_request_error"
        )
        return PaymentRefusedError(message, code=str(code))
    # 401/403: the key is wrong or lacks a permission; 409: a concurrent
    # request with the same key; 5xx: Stripe's side. None is the payment's fault.
    return PortUnavailableError(f"{message} (HTTP {status or '?'})", status=status or 503)


class StripePaymentProvider:
    """PaymentProvider on Stripe's PaymentIntents and Refunds.

    A refund Stripe answers `pending` (or `requires_action`) is not done: the
    activity records it in payment_modifications with its task token and
    completes asynchronously, like an Adyen modification; the webhook's
    `refund.updated`, `charge.refund.updated` or `refund.failed` with a final
    status completes it (clients/payment_outcomes.py). A later attempt of the
    same operation finds the refund by its key and sends nothing again (Stripe
    keeps an idempotency key for 24 hours only)."""

    name = PaymentProviderName.STRIPE.value

    def __init__(self, client: stripe.StripeClient, pool: asyncpg.Pool | None = None) -> None:
        # See activities/disputes_stripe.py: stripe_client.
        self.client = client
        # Where a pending refund waits for its webhook; without one (tests of
        # the calls alone) a pending refund counts as done.
        self.pool = pool
        # Refunds this worker was answered `pending` for, until the activity
        # registered the wait (`await_outcome`).
        self._pending: set[str] = set()

    def _amount(self, where: str, amount_minor: int, currency: str) -> int:
        try:
            return stripe_amount(amount_minor, currency)
        except AmountNotRepresentable as exc:
            raise PaymentRefusedError(f"{where}: {exc}", code="amount_not_representable") from exc

    async def capture(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        where = f"stripe capture {authorisation_ref}"
        params: PaymentIntentCaptureParams = {
            "amount_to_capture": self._amount(where, amount_minor, currency)
        }
        try:
            intent = await self.client.v1.payment_intents.capture_async(
                authorisation_ref, params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise port_error(exc, where) from exc
        charge = intent.latest_charge
        charge_id = charge if isinstance(charge, str) or charge is None else charge.id
        log.info("stripe_captured", payment_intent=intent.id, status=intent.status)
        return charge_id or intent.id

    async def captured(self, *, operation: PaymentOperationInput) -> tuple[str, int] | None:
        """Whether Stripe took the money of the authorisation a capture was
        given up for (its last attempt may have timed out after Stripe
        captured): the charge's reference and the amount received, in
        Steward's minor units, or None when the PaymentIntent was not captured
        (`requires_capture`, `canceled`...). Reads the PaymentIntent; sends
        nothing that moves money."""
        where = f"stripe read {operation.authorisation_ref}"
        try:
            intent = await self.client.v1.payment_intents.retrieve_async(
                operation.authorisation_ref
            )
        except stripe.StripeError as exc:
            raise port_error(exc, where) from exc
        received = intent.amount_received or 0
        if intent.status != "succeeded" or received <= 0:
            log.info("stripe_not_captured", payment_intent=intent.id, status=intent.status)
            return None
        currency = (intent.currency or "").upper()
        if currency != operation.currency:
            raise PaymentRefusedError(
                f"{where}: captured in {currency}, not {operation.currency}",
                code="currency_mismatch",
            )
        try:
            amount_minor = steward_minor_units(received, currency, STRIPE_EXPONENTS)
        except AmountNotRepresentable as exc:
            raise PaymentRefusedError(f"{where}: {exc}", code="amount_not_representable") from exc
        charge = intent.latest_charge
        charge_id = charge if isinstance(charge, str) or charge is None else charge.id
        log.info("stripe_captured_found", payment_intent=intent.id, amount_received=received)
        return charge_id or intent.id, amount_minor

    async def void(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        where = f"stripe cancel {authorisation_ref}"
        try:
            intent = await self.client.v1.payment_intents.cancel_async(
                authorisation_ref, None, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise port_error(exc, where) from exc
        return intent.id

    async def refund(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        where = f"stripe refund {authorisation_ref}"
        if self.pool is not None:
            waiting = await payment_modifications.by_key(self.pool, self.name, idempotency_key)
            if waiting is not None:
                # An earlier attempt was answered `pending`: its outcome comes
                # by webhook; nothing is sent again.
                self._pending.add(waiting.psp_reference)
                return waiting.psp_reference
        params: RefundCreateParams = {
            "payment_intent": authorisation_ref,
            "amount": self._amount(where, amount_minor, currency),
            # Finance finds Steward's operation from the Dashboard.
            "metadata": {"steward_idempotency_key": idempotency_key},
        }
        try:
            refund = await self.client.v1.refunds.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise port_error(exc, where) from exc
        status = refund.status
        if status in REFUND_FAILED_STATUSES:
            reason = refund.failure_reason or status
            raise PaymentRefusedError(f"{where}: refund {refund.id} {status}", code=str(reason))
        if status in REFUND_PENDING_STATUSES and self.pool is not None:
            self._pending.add(refund.id)
        log.info("stripe_refunded", refund=refund.id, status=status)
        return refund.id

    async def await_outcome(
        self, *, kind: PaymentOperationKind, operation: PaymentOperationInput, reference: str
    ) -> str:
        """A refund answered `pending` waits for its final status (see the
        class); everything else Stripe answered is final already."""
        if kind is not PaymentOperationKind.REFUND or reference not in self._pending:
            return reference
        self._pending.discard(reference)
        assert self.pool is not None
        row = await payment_modifications.register(
            self.pool,
            provider=self.name,
            psp_reference=reference,
            idempotency_key=operation.idempotency_key,
            workflow_id=operation.workflow_id,
            order_id=operation.order_id,
            kind=kind,
            amount_minor=operation.amount_minor,
            currency=operation.currency,
            authorisation_ref=operation.authorisation_ref,
            task_token=activity.info().task_token,
        )
        if row.status is ModificationStatus.SUCCEEDED:
            return reference
        if row.status is ModificationStatus.REFUSED:
            reason = row.outcome_reason or "refused"
            raise PaymentRefusedError(f"stripe refund {reference} {reason}", code=reason)
        log.info(
            "stripe_refund_pending",
            refund=reference,
            workflow_id=operation.workflow_id,
            attempt=activity.info().attempt,
        )
        activity.raise_complete_async()
