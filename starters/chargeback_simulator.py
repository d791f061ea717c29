"""Simulated dispute traffic for `steward simulate`: Stripe and Adyen payloads
shaped as the providers send them, run through the same normalisation as the
webhooks, then delivered to chargeback workflows.

As the real ones, they name the payment, not the order: a Stripe dispute
carries its charge and PaymentIntent ids (the order's authorisation reference
plays the PaymentIntent) with empty metadata, a warning no metadata at all,
an Adyen notification the payment's pspReference (`originalReference`). The
intake resolves the order from the references scoring recorded; an order not
scored yet when its dispute arrives opens a task to link it.

Seeded: the same seed and orders give the same disputes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import Client

from clients import chargeback
from domain.chargeback import (
    DisputeEvent,
    DisputePolicy,
    adyen_item_to_dispute_event,
    stripe_event_to_dispute_event,
)
from domain.orders import Order

# Share of orders that come back as a dispute, and as an early fraud warning.
DISPUTE_RATE = 0.04
EFW_RATE = 0.02

STRIPE_REASONS = ("fraudulent", "product_not_received", "product_unacceptable", "duplicate")
ADYEN_REASONS = (("10.4", "visa"), ("13.1", "visa"), ("4853", "mc"), ("13.6", "visa"))


def _charge_id(order: Order) -> str:
    return f"ch_{uuid.uuid5(uuid.NAMESPACE_URL, order.payment.authorisation_ref).hex[:24]}"


def stripe_dispute_event(
    order: Order, rng: random.Random, now: datetime, *, event_type: str = "charge.dispute.created"
) -> dict[str, Any]:
    due = now + timedelta(days=rng.randint(5, 21))
    return {
        "id": f"evt_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(now.timestamp()),
        "livemode": False,
        "type": event_type,
        "data": {
            "object": {
                "id": f"dp_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
                "object": "dispute",
                "amount": order.payment.amount_minor,
                "currency": order.currency.lower(),
                "charge": _charge_id(order),
                "payment_intent": order.payment.authorisation_ref,
                "reason": rng.choice(STRIPE_REASONS),
                "status": "needs_response",
                "evidence_details": {
                    "due_by": int(due.timestamp()),
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "created": int(now.timestamp()),
            }
        },
    }


def stripe_early_fraud_warning(order: Order, rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
        "object": "event",
        "created": int(now.timestamp()),
        "type": "radar.early_fraud_warning.created",
        "data": {
            "object": {
                "id": f"issfr_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
                "object": "radar.early_fraud_warning",
                "actionable": True,
                "charge": _charge_id(order),
                "created": int(now.timestamp()),
                "fraud_type": "made_with_stolen_card",
                "livemode": False,
                "payment_intent": order.payment.authorisation_ref,
            }
        },
    }


def adyen_chargeback_item(order: Order, rng: random.Random, now: datetime) -> dict[str, Any]:
    code, scheme = rng.choice(ADYEN_REASONS)
    return {
        "eventCode": "NOTIFICATION_OF_CHARGEBACK",
        "success": "true",
        "pspReference": f"99{rng.randrange(10**13, 10**14)}",
        "originalReference": order.payment.authorisation_ref,
        "merchantAccountCode": "MaisonSteward",
        "merchantReference": order.order_id,
        "amount": {"value": order.payment.amount_minor, "currency": order.currency},
        "eventDate": now.isoformat(),
        "additionalData": {
            "chargebackReasonCode": code,
            "chargebackSchemeCode": scheme,
            "defensePeriodEndsAt": (now + timedelta(days=rng.randint(7, 25))).isoformat(),
            "disputeStatus": "Undefended",
            "defendable": "true",
        },
    }


def generate_dispute_events(
    seed: int, orders: Sequence[Order], now: datetime
) -> list[DisputeEvent]:
    """Normalised events for a seeded share of `orders`, alternating providers."""
    rng = random.Random(seed * 7919 + 3)
    events: list[DisputeEvent] = []
    for order in orders:
        draw = rng.random()
        if draw < DISPUTE_RATE:
            if len(events) % 2 == 0:
                events.append(stripe_event_to_dispute_event(stripe_dispute_event(order, rng, now)))
            else:
                item = adyen_chargeback_item(order, rng, now)
                events.append(adyen_item_to_dispute_event(item, ""))
        elif draw < DISPUTE_RATE + EFW_RATE:
            events.append(
                stripe_event_to_dispute_event(stripe_early_fraud_warning(order, rng, now))
            )
    return events


@dataclass
class DisputeReport:
    stripe: int = 0
    adyen: int = 0
    early_fraud_warnings: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


async def send_disputes(
    client: Client,
    pool: asyncpg.Pool,
    events: Sequence[DisputeEvent],
    *,
    task_queue: str,
    policy: DisputePolicy,
) -> DisputeReport:
    report = DisputeReport()
    for event in events:
        try:
            await chargeback.deliver_event(
                client, pool, event, task_queue=task_queue, policy=policy
            )
        except Exception as err:  # one bad delivery must not stop the run; it is reported
            report.failed += 1
            report.errors.append(f"{event.provider} {event.dispute_id}: {err}")
            continue
        if event.kind.value == "early_fraud_warning":
            report.early_fraud_warnings += 1
        elif event.provider.value == "stripe":
            report.stripe += 1
        else:
            report.adyen += 1
    return report
