"""Adyen's Disputes API (v30) behind the DisputeResponder port, on Adyen's
official Python library (Adyen 16: `AdyenDisputesApi`).

Contest, in Adyen's order: `retrieveApplicableDefenseReasons` (which defence
reasons this dispute admits and the document types each needs), pick a
reason (Steward's preference where Adyen offers it, else the first Adyen
lists), `supplyDefenseDocument` with one PDF per document type the reason
requires (the evidence items that type is about, or the whole statement),
then `defendDispute` with the reason. Accept: `acceptDispute`.

Adyen refuses a PDF over 2 MB (JPG and TIFF 10 MB; some schemes less): the
document is checked before anything is sent. Adyen answers a request it
cannot act on with HTTP 200 and `disputeServiceResult.success: false` (an
unknown or closed dispute, an expired defence period): that is a refusal
carrying Adyen's message. HTTP errors: 400/422 refusals with Adyen's
errorCode, 429 RateLimitedError with Retry-After, 401/403 (credentials or the
"API dispute management" role missing: a configuration fix makes the retry
succeed), 404, 5xx, timeouts and connection failures transient.

Each request carries an Idempotency-Key derived from Steward's, so a retry
after a timeout is answered with Adyen's first result. The library is
synchronous: each call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests
from Adyen import AdyenClient
from Adyen.exceptions import AdyenAPIResponseError, AdyenError
from Adyen.services.disputes import AdyenDisputesApi

from activities.dispute_documents import MB, check_size, evidence_lines, kind_title, render_pdf
from activities.disputes import DisputeResponseRefusedError, ProviderResponse
from activities.disputes_stripe import retry_after
from activities.ports import PortTimeoutError, PortUnavailableError, RateLimitedError
from domain.chargeback import ResponseAction

ADYEN_PDF_LIMIT_BYTES = 2 * MB
# A contest is three calls, all in one activity attempt of 30 s
# (workflows/case.py OUTSIDE_CALL_TIMEOUT): 8 s each at most.
PDF = "application/pdf"

# Reasons Steward's evidence supports best, tried in this order when Adyen
# offers them (names from Adyen's Disputes API); otherwise Adyen's first.
PREFERRED_DEFENSE_REASONS = (
    "GoodsOrServicesProvided",
    "GoodsWereAsDescribed",
    "GoodsNotReturned",
    "SupplyDefenseMaterial",
)
# Which of Steward's evidence items a document type is about, by words in
# Adyen's type code; a type that matches none gets the whole statement.
_DOCUMENT_TOPICS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("invoice", "tid", "receipt"), ("order_and_review", "authorisation_results")),
    (
        ("delivery", "delivered", "shipping", "provided", "tracking"),
        ("proof_of_delivery", "carrier_scans", "cctv_clip"),
    ),
    (("policy", "cancellation", "refund", "credit", "return"), ("refund_policy",)),
    (("communication", "correspondence"), ("customer_communication",)),
    (
        ("described", "repaired", "replaced"),
        ("order_and_review", "cctv_clip", "customer_communication"),
    ),
)


def disputes_api(
    api_key: str,
    *,
    environment: str = "test",
    base_url: str = "",
    timeout_seconds: int = 8,
) -> AdyenDisputesApi:
    client = AdyenClient(
        xapikey=api_key, platform=environment, http_force="requests", http_timeout=timeout_seconds
    )
    service = AdyenDisputesApi(client=client)
    if base_url:
        service.disputes_api.baseUrl = base_url.rstrip("/")
    return service


def documents_for_type(
    type_code: str, documents: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    words = type_code.lower()
    for keys, kinds in _DOCUMENT_TOPICS:
        if any(k in words for k in keys):
            chosen = [d for d in documents if d.get("kind") in kinds]
            if chosen:
                return chosen
    return list(documents)


def choose_reason(
    reasons: Sequence[Mapping[str, Any]], preferred: Sequence[str] = PREFERRED_DEFENSE_REASONS
) -> Mapping[str, Any] | None:
    by_code = {str(r.get("defenseReasonCode")): r for r in reasons if r.get("defenseReasonCode")}
    for code in preferred:
        if code in by_code:
            return by_code[code]
    return next(iter(by_code.values()), None)


def _required_types(reason: Mapping[str, Any]) -> list[str]:
    types = reason.get("defenseDocumentTypes") or []
    needed = [
        str(t["defenseDocumentTypeCode"])
        for t in types
        if t.get("requirementLevel") in ("Required", "OneOrMore", "AlternativeRequired")
        and not t.get("available")
    ]
    if not needed and not reason.get("satisfied"):
        # Nothing marked required, yet not satisfied: send the first type.
        needed = [str(t["defenseDocumentTypeCode"]) for t in types[:1]]
    return needed


class AdyenDisputeResponder:
    """DisputeResponder for Adyen (see the module docstring)."""

    name = "adyen"

    def __init__(
        self,
        api: AdyenDisputesApi,
        merchant_account: str,
        *,
        preferred_reasons: Sequence[str] = PREFERRED_DEFENSE_REASONS,
    ) -> None:
        self.api = api.disputes_api
        self.merchant_account = merchant_account
        self.preferred_reasons = tuple(preferred_reasons)

    async def _call(
        self, method: Callable[..., Any], request: dict[str, Any], key: str, what: str
    ) -> dict[str, Any]:
        try:
            result = await asyncio.to_thread(method, request, idempotency_key=key)
        except requests.Timeout as exc:
            raise PortTimeoutError(f"Adyen did not answer {what} in time") from exc
        except requests.RequestException as exc:
            raise PortUnavailableError(f"Adyen unreachable for {what}: {exc}", 503) from exc
        except AdyenAPIResponseError as exc:
            raise _port_error(exc, what) from exc
        except AdyenError as exc:
            raise PortUnavailableError(f"Adyen client error on {what}: {exc}", 503) from exc
        message = result.message if isinstance(result.message, dict) else {}
        outcome = message.get("disputeServiceResult") or {}
        if not outcome.get("success", False):
            reason = str(outcome.get("errorMessage") or "no reason given")
            raise DisputeResponseRefusedError(f"Adyen refused {what}: {reason}", _code(reason))
        return message

    async def respond(
        self,
        *,
        idempotency_key: str,
        dispute_id: str,
        action: ResponseAction,
        note: str,
        documents: list[dict[str, Any]],
    ) -> ProviderResponse:
        base = {"disputePspReference": dispute_id, "merchantAccountCode": self.merchant_account}
        if action is ResponseAction.ACCEPT:
            await self._call(
                self.api.accept_dispute,
                dict(base),
                f"{idempotency_key}/accept",
                f"accepting dispute {dispute_id}",
            )
            return ProviderResponse(reference=dispute_id, steps=["accept"])

        answer = await self._call(
            self.api.retrieve_applicable_defense_reasons,
            dict(base),
            f"{idempotency_key}/reasons",
            f"the defence reasons of dispute {dispute_id}",
        )
        reason = choose_reason(answer.get("defenseReasons") or [], self.preferred_reasons)
        if reason is None:
            raise DisputeResponseRefusedError(
                f"Adyen offers no defence reason for dispute {dispute_id}", "no_defense_reason"
            )
        code = str(reason["defenseReasonCode"])
        supplied: list[dict[str, str]] = []
        for type_code in _required_types(reason):
            about = documents_for_type(type_code, documents)
            heading = f"{type_code} ({', '.join(kind_title(str(d.get('kind'))) for d in about)})"
            pdf = render_pdf([heading, "", *evidence_lines(dispute_id, about, note)])
            check_size(
                pdf,
                limit_bytes=ADYEN_PDF_LIMIT_BYTES,
                provider="Adyen",
                name=f"the {type_code} document",
            )
            supplied.append(
                {
                    "content": base64.b64encode(pdf).decode("ascii"),
                    "contentType": PDF,
                    "defenseDocumentTypeCode": type_code,
                }
            )
        steps = ["retrieve_reasons"]
        if supplied:
            await self._call(
                self.api.supply_defense_document,
                {**base, "defenseDocuments": supplied},
                f"{idempotency_key}/documents",
                f"supplying defence documents for dispute {dispute_id}",
            )
            steps.append("supply_documents")
        await self._call(
            self.api.defend_dispute,
            {**base, "defenseReasonCode": code},
            f"{idempotency_key}/defend",
            f"defending dispute {dispute_id}",
        )
        steps.append("defend")
        return ProviderResponse(reference=f"{dispute_id}/{code}", steps=steps)


def _code(message: str) -> str:
    """A short, stable code from Adyen's message ("Dispute not found" ->
    "dispute_not_found") for the audit trail."""
    words = "".join(c.lower() if c.isalnum() else " " for c in message).split()
    return "_".join(words[:6]) or "refused"


def _port_error(exc: AdyenAPIResponseError, what: str) -> Exception:
    status = int(exc.status_code or 0)
    body = exc.message if isinstance(exc.message, dict) else {}
    detail = str(body.get("message") or exc.message)
    if status == 429:
        return RateLimitedError(f"Adyen rate limit on {what}", retry_after(exc.headers))
    if status in (401, 403):
        return PortUnavailableError(
            f"Adyen refused the credentials for {what} (check STEWARD_ADYEN_API_KEY and the "
            f"API dispute management role): {detail}",
            status,
        )
    if status in (400, 422):
        return DisputeResponseRefusedError(
            f"Adyen refused {what}: {detail}",
            str(exc.error_code or body.get("errorCode") or status),
        )
    return PortUnavailableError(f"Adyen failed on {what} (HTTP {status}): {detail}", status or 503)
