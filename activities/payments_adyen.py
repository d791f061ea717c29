"""Adyen behind the PaymentProvider port, on Adyen's official Python library.

The order's `authorisation_ref` is the payment's pspReference (the checkout
authorised it with manual capture). Steward sends Checkout API modifications
(v71 by default, STEWARD_ADYEN_CHECKOUT_API_VERSION):
- POST /payments/{paymentPspReference}/captures  {merchantAccount, amount, reference}
- POST /payments/{paymentPspReference}/cancels   {merchantAccount, reference}
- POST /payments/{paymentPspReference}/refunds   {merchantAccount, amount, reference}
with Steward's idempotency key as Adyen's `Idempotency-Key` (hashed when over
Adyen's 64 characters) and the amount in Adyen's minor units.

Adyen answers `received` with the modification's own pspReference; the
outcome comes later, in a CAPTURE / CANCELLATION / REFUND notification with
`success` true or false. So after the request the activity records the
modification with its task token (store.payment_modifications) and completes
asynchronously; the webhook (clients/payment_outcomes.py) completes it with
the result, or fails it with the refusal. Each activity attempt still has
its 30 s start-to-close timeout: an attempt the notification does not reach
in time times out, and the next one sends nothing again (the row, found by
idempotency key, has the reference), leaves its own token and waits again;
an outcome that arrived between two attempts is read from the row. After
STEWARD_ADYEN_OUTCOME_TIMEOUT_HOURS without a notification the operation is
refused (`adyen_outcome_not_received`) for a person to check in Adyen's
Customer Area; the workflow's own schedule-to-close (2 h for a capture or a
void, 1 day for a return's refund) usually ends the wait first.

Errors of the request itself onto the port's contract: 400/404/422
(validation: unknown pspReference, amount or currency not allowed...):
PaymentRefusedError with Adyen's `errorCode`; 429: RateLimitedError after
`Retry-After`; a timeout: PortTimeoutError; 5xx, a refused connection,
401/403, and an answer marked `Transient-Error: true` (the same idempotency
key still in progress, errorCode 704): PortUnavailableError.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import requests
import structlog
from Adyen import Adyen
from Adyen.exceptions import AdyenAPIResponseError, AdyenError
from temporalio import activity

from activities.payments_stripe import retry_after
from activities.ports import (
    PaymentRefusedError,
    PortError,
    PortTimeoutError,
    PortUnavailableError,
    RateLimitedError,
)
from clients import payment_outcomes
from domain.payment_providers import AmountNotRepresentable, PaymentProviderName, adyen_amount
from domain.payments import OUTCOME_NOT_RECEIVED as PAYMENT_OUTCOME_NOT_RECEIVED
from domain.payments import PaymentOperationInput, PaymentOperationKind
from store import payment_modifications
from store.payment_modifications import ModificationStatus

log = structlog.get_logger(__name__)

PROVIDER = PaymentProviderName.ADYEN.value
# Adyen keeps an idempotency key of at most 64 characters.
ADYEN_IDEMPOTENCY_KEY_MAX = 64
# A modification's `reference` is at most 80 characters.
ADYEN_REFERENCE_MAX = 80
# The refusal code when no notification came in time (domain.payments).
OUTCOME_NOT_RECEIVED = PAYMENT_OUTCOME_NOT_RECEIVED


def adyen_idempotency_key(key: str) -> str:
    """Steward's key as it is when it fits Adyen's 64 characters, else its
    SHA-256 (64 hex characters): the same key always maps to the same value."""
    if len(key) <= ADYEN_IDEMPOTENCY_KEY_MAX:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


def adyen_reference(key: str) -> str:
    return key if len(key) <= ADYEN_REFERENCE_MAX else adyen_idempotency_key(key)


def adyen_checkout(
    *,
    api_key: str,
    environment: str,
    live_endpoint_prefix: str = "",
    checkout_url: str = "",
    api_version: int = 71,
    timeout_seconds: float = 20,
) -> Any:
    """Adyen's Checkout API client (`Adyen(...).checkout`). `checkout_url`
    replaces the test or live endpoint (`/v<api_version>` is appended)."""
    adyen = Adyen(
        xapikey=api_key,
        platform="test" if checkout_url else environment,
        live_endpoint_prefix=live_endpoint_prefix or None,
        http_timeout=max(1, round(timeout_seconds)),
        api_checkout_version=api_version,
        # requests: what the tests intercept, and the library's default when installed.
        http_force="requests",
    )
    checkout = adyen.checkout
    if checkout_url:
        checkout.modifications_api.baseUrl = f"{checkout_url.rstrip('/')}/v{api_version}"
    return checkout


def _error_code(exc: AdyenError) -> str:
    message = exc.message
    if isinstance(message, Mapping) and message.get("errorCode"):
        return str(message["errorCode"])
    return str(exc.error_code or f"http_{exc.status_code}")


def _error_text(exc: AdyenError) -> str:
    message = exc.message
    if isinstance(message, Mapping):
        return str(message.get("message") or message)
    return str(message)[:500]


# "Request already processed or in progress" for an idempotency key.
ADYEN_IN_PROGRESS = "704"


def _transient(exc: AdyenError) -> bool:
    headers = exc.headers if isinstance(exc.headers, Mapping) else {}
    flagged = any(
        k.lower() == "transient-error" and str(v).lower() == "true" for k, v in headers.items()
    )
    return flagged or _error_code(exc) == ADYEN_IN_PROGRESS


def port_error(exc: Exception, where: str) -> PortError:
    """The port's error for what the library (or requests under it) raised."""
    if isinstance(exc, requests.Timeout):
        return PortTimeoutError(f"{where}: no answer in time")
    if isinstance(exc, requests.ConnectionError):
        return PortUnavailableError(f"{where}: connection failed ({exc})")
    if isinstance(exc, AdyenAPIResponseError):
        status = int(exc.status_code or 0)
        text = f"{where}: {_error_text(exc)} (HTTP {status}, errorCode {_error_code(exc)})"
        if status == 429:
            return RateLimitedError(text, retry_after(exc.headers or None))
        if _transient(exc):
            # Adyen's idempotency guide: a request with the same key still in
            # progress (errorCode 704) is marked `Transient-Error: true`; the
            # retry with the same key gets the first request's answer.
            return PortUnavailableError(text, status=status or 503)
        if status in (400, 404, 422):
            return PaymentRefusedError(text, code=_error_code(exc))
        # 401/403 (a key or a role to fix), 5xx (Adyen's side).
        return PortUnavailableError(text, status=status or 503)
    return PortUnavailableError(f"{where}: {type(exc).__name__}: {exc}")


class AdyenPaymentProvider:
    """PaymentProvider on Adyen's Checkout modifications, completed by notification."""

    name = PROVIDER

    def __init__(
        self,
        pool: asyncpg.Pool,
        checkout: Any,
        *,
        merchant_account: str,
        outcome_timeout: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        # Adyen(...).checkout (see `adyen_checkout`); synchronous: called in a thread.
        self.checkout = checkout
        self.merchant_account = merchant_account
        self.outcome_timeout = outcome_timeout
        self.clock = clock

    async def capture(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        return await self._modify(
            PaymentOperationKind.CAPTURE, idempotency_key, authorisation_ref, amount_minor, currency
        )

    async def void(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        return await self._modify(
            PaymentOperationKind.VOID, idempotency_key, authorisation_ref, amount_minor, currency
        )

    async def refund(
        self, *, idempotency_key: str, authorisation_ref: str, amount_minor: int, currency: str
    ) -> str:
        return await self._modify(
            PaymentOperationKind.REFUND, idempotency_key, authorisation_ref, amount_minor, currency
        )

    async def _modify(
        self,
        kind: PaymentOperationKind,
        idempotency_key: str,
        authorisation_ref: str,
        amount_minor: int,
        currency: str,
    ) -> str:
        """The modification's pspReference: Adyen's `received` answer, or the
        one an earlier attempt of this operation recorded (nothing is sent
        again)."""
        sent = await payment_modifications.by_key(self.pool, PROVIDER, idempotency_key)
        if sent is not None:
            return sent.psp_reference
        return await self.send(kind, idempotency_key, authorisation_ref, amount_minor, currency)

    async def send(
        self,
        kind: PaymentOperationKind,
        idempotency_key: str,
        authorisation_ref: str,
        amount_minor: int,
        currency: str,
    ) -> str:
        """One modification request; Adyen's pspReference for it."""
        where = f"adyen {kind.value} {authorisation_ref}"
        body: dict[str, Any] = {
            "merchantAccount": self.merchant_account,
            "reference": adyen_reference(idempotency_key),
        }
        if kind is not PaymentOperationKind.VOID:
            try:
                value = adyen_amount(amount_minor, currency)
            except AmountNotRepresentable as exc:
                raise PaymentRefusedError(
                    f"{where}: {exc}", code="amount_not_representable"
                ) from exc
            body["amount"] = {"value": value, "currency": currency}
        api = self.checkout.modifications_api
        call = {
            PaymentOperationKind.CAPTURE: api.capture_authorised_payment,
            PaymentOperationKind.VOID: api.cancel_authorised_payment_by_psp_reference,
            PaymentOperationKind.REFUND: api.refund_captured_payment,
        }[kind]
        try:
            result = await asyncio.to_thread(
                call,
                body,
                authorisation_ref,
                idempotency_key=adyen_idempotency_key(idempotency_key),
            )
        except (AdyenError, requests.RequestException) as exc:
            raise port_error(exc, where) from exc
        answer = result.message if isinstance(result.message, Mapping) else {}
        psp = answer.get("pspReference") or result.psp
        if not psp:
            raise PortUnavailableError(f"{where}: answer without a pspReference ({answer!r})")
        log.info(
            "adyen_modification_received",
            kind=kind.value,
            payment=authorisation_ref,
            psp_reference=psp,
            status=answer.get("status"),
        )
        return str(psp)

    async def await_outcome(
        self, *, kind: PaymentOperationKind, operation: PaymentOperationInput, reference: str
    ) -> str:
        """Leave this attempt's task token with the modification and complete
        asynchronously; answer at once if the outcome is already known."""
        row = await payment_modifications.register(
            self.pool,
            provider=PROVIDER,
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
            # The outcome came before the answer: its amount is checked now.
            mismatch = await payment_outcomes.check_kept_amount(self.pool, row)
            if mismatch is None:
                return reference
            raise PaymentRefusedError(
                f"adyen {kind.value} {reference} refused: amount_mismatch: {mismatch}",
                code=f"amount_mismatch: {mismatch}",
            )
        if row.status is ModificationStatus.REFUSED:
            reason = row.outcome_reason or "no reason given"
            raise PaymentRefusedError(
                f"adyen {kind.value} {reference} refused: {reason}",
                code=row.outcome_reason or "refused",
            )
        requested_at = row.requested_at or self.clock()
        if self.clock() - requested_at > self.outcome_timeout:
            raise PaymentRefusedError(
                f"adyen {kind.value} {reference}: no {kind.value} notification since "
                f"{requested_at:%Y-%m-%d %H:%M} UTC; check the modification in Adyen's "
                "Customer Area",
                code=OUTCOME_NOT_RECEIVED,
            )
        log.info(
            "adyen_outcome_awaited",
            kind=kind.value,
            psp_reference=reference,
            workflow_id=operation.workflow_id,
            attempt=activity.info().attempt,
        )
        activity.raise_complete_async()

    async def await_final_outcome(
        self, *, kind: PaymentOperationKind, operation: PaymentOperationInput
    ) -> str | None:
        """The final outcome of the modification `operation` sent, however long
        after the process stopped waiting for it: its reference once it
        succeeded, None when it was refused or never sent. While it is pending
        this attempt leaves its token and completes asynchronously (no
        `outcome_timeout` here: the caller's schedule-to-close bounds it)."""
        sent = await payment_modifications.by_key(self.pool, PROVIDER, operation.idempotency_key)
        if sent is None:
            return None
        if sent.status is ModificationStatus.PENDING:
            row = await payment_modifications.register(
                self.pool,
                provider=PROVIDER,
                psp_reference=sent.psp_reference,
                idempotency_key=operation.idempotency_key,
                workflow_id=operation.workflow_id,
                order_id=operation.order_id,
                kind=kind,
                amount_minor=operation.amount_minor,
                currency=operation.currency,
                authorisation_ref=operation.authorisation_ref,
                task_token=activity.info().task_token,
            )
            if row.status is ModificationStatus.PENDING:
                log.info(
                    "adyen_final_outcome_awaited",
                    kind=kind.value,
                    psp_reference=row.psp_reference,
                    workflow_id=operation.workflow_id,
                )
                activity.raise_complete_async()
            sent = row
        return sent.psp_reference if sent.status is ModificationStatus.SUCCEEDED else None
