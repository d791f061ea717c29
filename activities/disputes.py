"""Dispute side effects: evidence assembly from Steward's own records, the
response to the provider, the warehouse hold of an early fraud warning, and
the dispute register.

Evidence is read from what Steward itself recorded (orders seen by scoring,
the order review's audit trail, customer messages), never from the simulated
outside world, so the same code works against real providers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import activity_logger
from activities.ports import RateLimitedError, RefusedError
from activities.simulated import FaultPlan
from domain.chargeback import (
    ASSEMBLE_DISPUTE_EVIDENCE,
    HOLD_ORDER_RELEASE,
    RECORD_DISPUTE,
    SUBMIT_DISPUTE_RESPONSE,
    AssembleEvidenceInput,
    AssembleEvidenceResult,
    DisputeProvider,
    DisputeReason,
    DisputeRecordInput,
    EvidenceItem,
    EvidenceKind,
    EvidencePack,
    HoldReleaseInput,
    HoldReleaseResult,
    ResponseAction,
    SubmitResponseInput,
    SubmitResponseResult,
)
from domain.common import format_amount
from domain.ids import order_review_id
from domain.orders import AvsResult, CvvResult, ThreeDSOutcome
from domain.returns import refund_policy_snapshot
from store import disputes as dispute_store
from store import outcomes as outcome_store

DISPUTE_RESPONSE_REFUSED = "DisputeResponseRefused"
UNKNOWN_DISPUTE_PROVIDER = "UnknownDisputeProvider"
DISPUTE_PROVIDER_RATE_LIMITED = "DisputeProviderRateLimited"

# The refund policy quoted when Steward knows no order to take the market's
# policy from (domain/returns.py refund_policy_snapshot does when it does).
REFUND_POLICY_SNAPSHOT = (
    "refund-policy v2026-01: returns within 30 days of delivery, unworn, tags and "
    "security seal attached; refunds to the original card within 14 days of receipt"
)
# The customer's side of the conversation, as the processes record it:
# messages Steward sent (every process's CaseBook.notify) and the customer's
# answers (order review, failed delivery, returns). Only the action, the date
# and the channel are quoted: the free text stays in the audit log.
_SENT = "customer_notified"
_CUSTOMER_ACTIONS = (
    _SENT,
    "customer_answered",
    "customer_replied",
    "customer_replied_after_decision",
    "customer_chose",
)
_VIA = re.compile(r" via ([A-Za-z_]+)")


class DisputeResponseRefusedError(RefusedError):
    """The provider will not take the response (closed dispute, window over...)."""


@dataclass(frozen=True)
class ProviderResponse:
    reference: str
    steps: list[str]


class DisputeResponder(Protocol):
    """A provider's dispute API. Idempotent by key: a repeat performs nothing new."""

    name: str

    async def respond(
        self,
        *,
        idempotency_key: str,
        dispute_id: str,
        action: ResponseAction,
        note: str,
        documents: list[dict[str, Any]],
    ) -> ProviderResponse: ...


# Stripe: update the dispute with evidence (staged, submit=false), then submit
# once - Stripe accepts a single submission. Adyen: supply defence documents,
# then defend. Accepting is Stripe's "close" and Adyen's "accept".
CONTEST_STEPS: dict[DisputeProvider, tuple[str, str]] = {
    DisputeProvider.STRIPE: ("stage_evidence", "submit"),
    DisputeProvider.ADYEN: ("supply_documents", "defend"),
}


class SimulatedDisputeProvider:
    """Stripe's or Adyen's dispute API, keeping its state in sim_dispute_actions."""

    def __init__(
        self, pool: asyncpg.Pool, provider: DisputeProvider, plan: FaultPlan | None = None
    ) -> None:
        self.pool = pool
        self.provider = provider
        self.name = provider.value
        self.plan = plan or FaultPlan()

    async def respond(
        self,
        *,
        idempotency_key: str,
        dispute_id: str,
        action: ResponseAction,
        note: str,
        documents: list[dict[str, Any]],
    ) -> ProviderResponse:
        await self.plan.delay()
        fault = self.plan.next_fault()
        self.plan.fail_before_effect(fault, f"{self.name} disputes", action.value)
        done = await dispute_store.sim_actions(self.pool, self.name, dispute_id)
        if action is ResponseAction.CONTEST:
            if "accept" in done:
                raise DisputeResponseRefusedError(
                    f"dispute {dispute_id} was accepted; it can no longer be contested",
                    "dispute_closed",
                )
            steps = list(CONTEST_STEPS[self.provider])
        else:
            final = CONTEST_STEPS[self.provider][1]
            if final in done:
                raise DisputeResponseRefusedError(
                    f"dispute {dispute_id} was already contested; it cannot be accepted now",
                    "already_submitted",
                )
            steps = ["accept"]
        reference = ""
        for step in steps:
            # One row per (dispute, step): a retry with the same key finds the
            # first step done and goes on with the next one.
            reference = await dispute_store.sim_record_action(
                self.pool,
                provider=self.name,
                dispute_id=dispute_id,
                action=step,
                idempotency_key=f"{idempotency_key}/{step}",
                provider_reference=f"sim_{self.name}_{step}_{uuid.uuid4().hex[:16]}",
                documents=documents if step != steps[-1] else [{"note": note}],
            )
        self.plan.fail_after_effect(fault, f"{self.name} disputes", action.value)
        return ProviderResponse(reference=reference, steps=steps)


class DisputeActivities:
    def __init__(
        self, pool: asyncpg.Pool, responders: Mapping[DisputeProvider, DisputeResponder]
    ) -> None:
        self.pool = pool
        self.responders = dict(responders)

    # ------------------------------------------------------------ evidence

    @activity.defn(name=ASSEMBLE_DISPUTE_EVIDENCE)
    async def assemble_dispute_evidence(
        self, input: AssembleEvidenceInput
    ) -> AssembleEvidenceResult:
        pack = EvidencePack()
        pack.put(refund_policy_item(None, None))
        packed_at = None
        if input.order_id is None:
            for kind in EvidenceKind:
                if kind not in (EvidenceKind.REFUND_POLICY, EvidenceKind.COORDINATOR_NOTE):
                    pack.put(
                        EvidenceItem(
                            kind=kind,
                            available=False,
                            summary="the provider named no order Steward knows",
                        )
                    )
            return AssembleEvidenceResult(pack=pack)
        order_id = input.order_id
        order = await self.pool.fetchrow(
            "SELECT customer_id, market, amount_minor, currency, placed_at, outcome, "
            "avs_result, cvv_result, three_ds FROM orders_seen WHERE order_id = $1",
            order_id,
        )
        trail = await self.pool.fetch(
            "SELECT action, reason, after, occurred_at FROM audit_log "
            "WHERE workflow_id = $1 ORDER BY occurred_at, id",
            order_review_id(order_id),
        )
        decisions = [r for r in trail if str(r["action"]).startswith("decision_")]
        scored = next((r for r in trail if r["action"] == "scored"), None)
        released = next(
            (
                r
                for r in trail
                if r["action"] == "status_changed"
                and isinstance(r["after"], dict)
                and r["after"].get("status") == "released"
            ),
            None,
        )
        if order is not None:
            decided = (
                f"{decisions[-1]['action'].removeprefix('decision_')} ({decisions[-1]['reason']})"
                if decisions
                else "accepted by the rule set"
                if released
                else "no review decision on record"
            )
            pack.put(
                EvidenceItem(
                    kind=EvidenceKind.ORDER_AND_REVIEW,
                    available=True,
                    summary=f"order {order_id} placed {order['placed_at']:%Y-%m-%d} in "
                    f"{order['market']}, "
                    f"{format_amount(order['amount_minor'], str(order['currency']).strip())}; "
                    f"review: {decided}",
                    reference=order_review_id(order_id),
                )
            )
        else:
            pack.put(
                EvidenceItem(
                    kind=EvidenceKind.ORDER_AND_REVIEW,
                    available=False,
                    summary=f"order {order_id} never went through Steward's review",
                )
            )
        if order is not None:
            pack.put(refund_policy_item(str(order["market"]), str(order["currency"]).strip()))
        if scored is not None:
            after = scored["after"] if isinstance(scored["after"], dict) else {}
            checks, strong = payment_checks(order)
            # A fraud dispute is won on the cardholder's own authentication:
            # AVS and CVV matching and 3-D Secure. Without them the score
            # alone does not answer "I did not make this purchase".
            usable = strong or input.reason is not DisputeReason.FRAUD
            pack.put(
                EvidenceItem(
                    kind=EvidenceKind.AUTHORISATION_RESULTS,
                    available=usable,
                    summary=f"risk score {after.get('score')} ({after.get('band')}), "
                    f"rule set {after.get('rule_set_version')}; {checks}; signals: "
                    f"{scored['reason'] or 'none raised'}"
                    + ("" if usable else "; not enough to answer a fraud claim"),
                    reference=f"{order_review_id(order_id)}/scored",
                )
            )
        else:
            pack.put(
                EvidenceItem(
                    kind=EvidenceKind.AUTHORISATION_RESULTS,
                    available=False,
                    summary="no scoring on record (AVS, CVV, 3-D Secure unknown)",
                )
            )
        if released is not None:
            packed_at = released["occurred_at"]
        await self._delivery_evidence(order_id, pack)
        pack.put(
            EvidenceItem(
                kind=EvidenceKind.CCTV_CLIP,
                available=False,
                summary="not requested yet" if packed_at else "order was never packed",
            )
        )
        pack.put(await self._communication_evidence(order_id))
        if order is not None:
            prior = await outcome_store.prior_undisputed_delivered(
                self.pool, str(order["customer_id"]), order_id, order["placed_at"]
            )
            pack.put(prior_orders_item(prior))
        else:
            pack.put(
                EvidenceItem(
                    kind=EvidenceKind.PRIOR_ORDERS,
                    available=False,
                    summary="the customer is unknown to Steward",
                )
            )
        activity_logger(order_id=order_id).info(
            "dispute_evidence_assembled",
            available=[i.kind.value for i in pack.items if i.available],
        )
        return AssembleEvidenceResult(pack=pack, packed_at=packed_at)

    async def _communication_evidence(self, order_id: str) -> EvidenceItem:
        """Every message to and from the customer about the order, from every
        process (order review, returns, failed deliveries, claims), with its
        date, direction and channel."""
        rows = await self.pool.fetch(
            """
            SELECT process, action, reason, occurred_at FROM audit_log
            WHERE (order_id = $1 OR workflow_id = $2) AND action = ANY($3::text[])
            ORDER BY occurred_at, id
            """,
            order_id,
            order_review_id(order_id),
            list(_CUSTOMER_ACTIONS),
        )
        if not rows:
            return EvidenceItem(
                kind=EvidenceKind.CUSTOMER_COMMUNICATION,
                available=False,
                summary="no customer messages on record",
            )
        lines = []
        for r in rows:
            if r["action"] == _SENT:
                what = f"sent {r['reason']} by email"
            else:
                via = _VIA.search(str(r["reason"]))
                what = f"customer {str(r['action']).removeprefix('customer_')}" + (
                    f" via {via.group(1)}" if via else ""
                )
            lines.append(f"{r['occurred_at']:%Y-%m-%d} {r['process']}: {what}")
        sent = sum(1 for r in rows if r["action"] == _SENT)
        return EvidenceItem(
            kind=EvidenceKind.CUSTOMER_COMMUNICATION,
            available=True,
            summary=f"{sent} message(s) sent, {len(rows) - sent} from the customer: "
            + "; ".join(lines),
        )

    async def _delivery_evidence(self, order_id: str, pack: EvidencePack) -> None:
        """Proof of delivery and carrier scans from the tracking events Steward
        received for the order's parcels (shipments / carrier_events). When
        there are none the completeness check lists them, so a coordinator can
        attach the carrier's own proof."""
        scans = await self.pool.fetch(
            """
            SELECT s.carrier, s.tracking_number, e.status, e.occurred_at
            FROM shipments s
            JOIN carrier_events e
              ON e.carrier = s.carrier AND e.tracking_number = s.tracking_number
            WHERE s.order_id = $1
            ORDER BY e.occurred_at
            """,
            order_id,
        )
        delivered = next((r for r in reversed(scans) if r["status"] == "delivered"), None)
        if delivered is not None:
            pack.put(
                EvidenceItem(
                    kind=EvidenceKind.PROOF_OF_DELIVERY,
                    available=True,
                    summary=f"delivered by {delivered['carrier']} "
                    f"{delivered['tracking_number']} at "
                    f"{delivered['occurred_at']:%Y-%m-%d %H:%M} UTC",
                    reference=f"{delivered['carrier']}:{delivered['tracking_number']}",
                )
            )
        else:
            pack.put(
                EvidenceItem(
                    kind=EvidenceKind.PROOF_OF_DELIVERY,
                    available=False,
                    summary="no delivery scan on record",
                )
            )
        pack.put(
            EvidenceItem(
                kind=EvidenceKind.CARRIER_SCANS,
                available=bool(scans),
                summary=(
                    f"{len(scans)} scan(s): "
                    + " → ".join(f"{r['status']} {r['occurred_at']:%m-%d %H:%M}" for r in scans)
                    if scans
                    else "no carrier scans on record"
                ),
            )
        )

    # ------------------------------------------------------------ response

    @activity.defn(name=SUBMIT_DISPUTE_RESPONSE)
    async def submit_dispute_response(self, input: SubmitResponseInput) -> SubmitResponseResult:
        log = activity_logger(
            dispute_id=input.dispute_id, provider=input.provider.value, action=input.action.value
        )
        responder = self.responders.get(input.provider)
        if responder is None:
            raise ApplicationError(
                f"no dispute API is configured for {input.provider}",
                type=UNKNOWN_DISPUTE_PROVIDER,
                non_retryable=True,
            )
        try:
            response = await responder.respond(
                idempotency_key=input.idempotency_key,
                dispute_id=input.dispute_id,
                action=input.action,
                note=input.note,
                documents=[i.model_dump(mode="json") for i in input.evidence if i.available],
            )
        except RefusedError as exc:
            log.warning("dispute_response_refused", code=exc.code)
            raise ApplicationError(
                str(exc), exc.code, type=DISPUTE_RESPONSE_REFUSED, non_retryable=True
            ) from exc
        except RateLimitedError as exc:
            raise ApplicationError(
                str(exc), type=DISPUTE_PROVIDER_RATE_LIMITED, next_retry_delay=exc.retry_after
            ) from exc
        log.info("dispute_response_submitted", provider_reference=response.reference)
        return SubmitResponseResult(
            idempotency_key=input.idempotency_key,
            provider_reference=response.reference,
            steps=response.steps,
        )

    # ------------------------------------------------------------ hold

    @activity.defn(name=HOLD_ORDER_RELEASE)
    async def hold_order_release(self, input: HoldReleaseInput) -> HoldReleaseResult:
        """Hold the order at the warehouse. Releasing it (order review) is still
        accepted, but the warehouse does not pick or ship a held order; see
        README "Early fraud warnings" for why the hold lives warehouse-side."""
        release = await dispute_store.sim_release_of_order(self.pool, input.order_id)
        await dispute_store.sim_hold_order(
            self.pool, order_id=input.order_id, reason=input.reason, source_ref=input.workflow_id
        )
        activity_logger(order_id=input.order_id).info(
            "order_release_held", already_released=release is not None
        )
        return HoldReleaseResult(
            order_id=input.order_id, held=True, released_to_warehouse=release is not None
        )

    # ------------------------------------------------------------ register

    @activity.defn(name=RECORD_DISPUTE)
    async def record_dispute(self, input: DisputeRecordInput) -> None:
        applied = await dispute_store.upsert(self.pool, input)
        activity_logger().debug("dispute_recorded", status=input.status.value, applied=applied)


def payment_checks(order: Any) -> tuple[str, bool]:
    """The authorisation's AVS, CVV and 3-D Secure results as recorded at
    scoring, and whether they are the cardholder's own authentication."""
    if order is None or order["avs_result"] is None:
        return "AVS/CVV/3-D Secure results not recorded", False
    avs, cvv, three_ds = order["avs_result"], order["cvv_result"], order["three_ds"]
    strong = (
        avs == AvsResult.MATCH.value
        and cvv == CvvResult.MATCH.value
        and three_ds == ThreeDSOutcome.AUTHENTICATED.value
    )
    return f"AVS {avs}, CVV {cvv}, 3-D Secure {three_ds}", strong


def prior_orders_item(prior: outcome_store.PriorOrders) -> EvidenceItem:
    if prior.count == 0 or prior.first_placed_at is None:
        return EvidenceItem(
            kind=EvidenceKind.PRIOR_ORDERS,
            available=False,
            summary="no earlier undisputed, delivered order by the same customer",
        )
    totals = ", ".join(format_amount(v, c) for c, v in sorted(prior.totals.items()))
    return EvidenceItem(
        kind=EvidenceKind.PRIOR_ORDERS,
        available=True,
        summary=f"{prior.count} earlier undisputed, delivered order(s) by the same customer "
        f"since {prior.first_placed_at:%Y-%m-%d}, {totals} in all",
    )


def refund_policy_item(market: str | None, currency: str | None) -> EvidenceItem:
    if market is None:
        return EvidenceItem(
            kind=EvidenceKind.REFUND_POLICY,
            available=True,
            summary=REFUND_POLICY_SNAPSHOT,
            reference="refund-policy/v2026-01",
        )
    summary, reference = refund_policy_snapshot(market, currency)
    return EvidenceItem(
        kind=EvidenceKind.REFUND_POLICY, available=True, summary=summary, reference=reference
    )
