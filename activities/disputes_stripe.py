"""Stripe's dispute API behind the DisputeResponder port, on Stripe's official
Python library (stripe 16, API version pinned by the library: see
docs/chargeback.md).

Contest: the evidence document (activities/dispute_documents.py) is uploaded
through Stripe's file uploads (`POST /v1/files`, purpose `dispute_evidence`,
5 MB at most per file), then the dispute is updated with the evidence fields
Steward can fill and submitted in the same call (`POST /v1/disputes/{id}`
with `submit=true`: Stripe takes a single submission). Accept: the dispute is
closed (`POST /v1/disputes/{id}/close`).

Every request carries an idempotency key derived from Steward's
(`{workflow_id}/{operation}/{step}`): a retry after a timeout replays Stripe's
first answer instead of uploading or submitting twice. Errors map onto the
port's contract: 400/404 (closed dispute, evidence past its due date, an
unknown dispute) are refusals carrying Stripe's code; 429 is RateLimitedError
with Retry-After; 5xx, timeouts, connection failures and credentials Stripe
does not accept (a configuration fix makes the retry succeed) are transient.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import httpx
import stripe

from activities.dispute_documents import MB, check_size, evidence_lines, kind_title, render_pdf
from activities.disputes import DisputeResponseRefusedError, ProviderResponse
from activities.ports import PortTimeoutError, PortUnavailableError, RateLimitedError
from domain.chargeback import ResponseAction

STRIPE_FILE_LIMIT_BYTES = 5 * MB
# Stripe's limits on the evidence hash: 20,000 characters per text field.
TEXT_FIELD_LIMIT = 20_000
DEFAULT_RETRY_AFTER = timedelta(seconds=2)


def stripe_client(
    api_key: str, api_base: str = "", *, timeout_seconds: float = 12
) -> stripe.StripeClient:
    """A client on httpx (async) with the library's own retries off: Temporal
    retries the activity with the same idempotency key instead. A contest is
    two calls in one activity attempt of 30 s (workflows/case.py
    OUTSIDE_CALL_TIMEOUT): 12 s each at most by default."""
    base: dict[str, str] = {"api": api_base, "files": api_base} if api_base else {}
    return stripe.StripeClient(
        api_key,
        base_addresses=base,  # type: ignore[arg-type]
        http_client=stripe.HTTPXClient(timeout=timeout_seconds),
        max_network_retries=0,
    )


def evidence_fields(
    documents: Sequence[Mapping[str, Any]], note: str, file_id: str
) -> dict[str, str]:
    """Stripe's evidence hash from Steward's evidence items. Text only where
    Stripe asks for text; the whole statement goes as `uncategorized_file`."""
    by_kind = {str(d.get("kind")): d for d in documents}
    fields: dict[str, str] = {"uncategorized_file": file_id}
    order = by_kind.get("order_and_review")
    if order:
        fields["product_description"] = str(order.get("summary", ""))
    policy = by_kind.get("refund_policy")
    if policy:
        fields["refund_policy_disclosure"] = str(policy.get("summary", ""))
    delivered = by_kind.get("proof_of_delivery")
    reference = str(delivered.get("reference") or "") if delivered else ""
    if ":" in reference:
        carrier, _, tracking = reference.partition(":")
        fields["shipping_carrier"] = carrier
        fields["shipping_tracking_number"] = tracking
    text = [f"{kind_title(str(d.get('kind', '')))}: {d.get('summary', '')}" for d in documents]
    if note and "coordinator_note" not in by_kind:
        text.append(f"{kind_title('coordinator_note')}: {note}")
    fields["uncategorized_text"] = "\n".join(text)
    return {k: v[:TEXT_FIELD_LIMIT] for k, v in fields.items() if v}


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name:
            return str(value)
    return None


def retry_after(headers: Any, default: timedelta = DEFAULT_RETRY_AFTER) -> timedelta:
    value = _header(headers, "retry-after")
    try:
        return timedelta(seconds=max(0.0, float(value))) if value is not None else default
    except ValueError:
        return default


def port_error(exc: stripe.StripeError, what: str) -> Exception:
    """Stripe's error as the port's contract says it."""
    status = exc.http_status or 0
    if isinstance(exc, stripe.RateLimitError) or status == 429:
        return RateLimitedError(f"Stripe rate limit on {what}", retry_after(exc.headers))
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, httpx.TimeoutException):
            return PortTimeoutError(f"Stripe did not answer {what} in time")
        return PortUnavailableError(f"Stripe unreachable for {what}: {exc.user_message}", 503)
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        return PortUnavailableError(
            f"Stripe refused the credentials for {what} (check STEWARD_STRIPE_API_KEY): "
            f"{exc.user_message}",
            status or 401,
        )
    if status >= 500 or status in (0, 409):
        # 409: a request with the same idempotency key is still in progress at
        # Stripe (an earlier attempt), or a lock timeout: try again later.
        return PortUnavailableError(f"Stripe failed on {what}: {exc.user_message}", status or 503)
    code = exc.code or (exc.error.type if exc.error is not None else None) or f"http_{status}"
    return DisputeResponseRefusedError(f"Stripe refused {what}: {exc.user_message}", str(code))


class StripeDisputeResponder:
    """DisputeResponder for Stripe (see the module docstring)."""

    name = "stripe"

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    async def respond(
        self,
        *,
        idempotency_key: str,
        dispute_id: str,
        action: ResponseAction,
        note: str,
        documents: list[dict[str, Any]],
    ) -> ProviderResponse:
        if action is ResponseAction.ACCEPT:
            try:
                closed = await self.client.v1.disputes.close_async(
                    dispute_id, options={"idempotency_key": f"{idempotency_key}/close"}
                )
            except stripe.StripeError as exc:
                raise port_error(exc, f"closing dispute {dispute_id}") from exc
            return ProviderResponse(reference=closed.id, steps=["accept"])

        statement = render_pdf(evidence_lines(dispute_id, documents, note))
        check_size(
            statement,
            limit_bytes=STRIPE_FILE_LIMIT_BYTES,
            provider="Stripe",
            name="the evidence statement",
        )
        upload = io.BytesIO(statement)
        upload.name = f"steward-evidence-{dispute_id}.pdf"
        try:
            uploaded = await self.client.v1.files.create_async(
                params={"purpose": "dispute_evidence", "file": upload},
                options={"idempotency_key": f"{idempotency_key}/file"},
            )
        except stripe.StripeError as exc:
            raise port_error(exc, f"uploading evidence for dispute {dispute_id}") from exc
        try:
            params: Any = {
                "evidence": evidence_fields(documents, note, uploaded.id),
                "submit": True,
            }
            submitted = await self.client.v1.disputes.update_async(
                dispute_id,
                params=params,
                options={"idempotency_key": f"{idempotency_key}/submit"},
            )
        except stripe.StripeError as exc:
            raise port_error(exc, f"submitting evidence for dispute {dispute_id}") from exc
        return ProviderResponse(reference=submitted.id, steps=["upload_evidence", "submit"])
