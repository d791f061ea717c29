"""Money the card scheme already took back is not refundable again.

A lost (or accepted) chargeback has returned the amount to the customer
through their bank; refunding it on top would pay them twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities.payments import PaymentActivities
from activities.simulated import SimulatedPaymentProvider
from domain.payments import (
    REFUND_EXCEEDS_CAPTURE,
    PaymentOperationInput,
    PaymentOperationKind,
)
from store import disputes, ledger

CAPTURED = 245_000


async def captured_order(pool: asyncpg.Pool) -> str:
    order_id = f"IT-{uuid.uuid4().hex[:10]}"
    await ledger.record(
        pool,
        idempotency_key=f"order-review:{order_id}/capture",
        workflow_id=f"order-review:{order_id}",
        order_id=order_id,
        kind=PaymentOperationKind.CAPTURE,
        amount_minor=CAPTURED,
        currency="EUR",
        provider="simulated",
        provider_reference=f"cap-{order_id}",
    )
    return order_id


async def closed_dispute(
    pool: asyncpg.Pool, order_id: str, *, stage: str, status: str, amount_minor: int
) -> None:
    now = datetime.now(UTC)
    dispute_id = f"dp_{uuid.uuid4().hex[:12]}"
    await pool.execute(
        """
        INSERT INTO disputes (provider, dispute_id, workflow_id, order_id, stage, status, reason,
                              amount_minor, currency, opened_at, updated_at, closed_at)
        VALUES ('stripe', $1, $2, $3, $4, $5, 'fraudulent', $6, 'EUR', $7, $8, $8)
        """,
        dispute_id,
        f"chargeback:stripe:{dispute_id}",
        order_id,
        stage,
        status,
        amount_minor,
        now - timedelta(days=30),
        now,
    )


def refund(
    order_id: str, amount_minor: int, operation_id: str = "refund-1"
) -> PaymentOperationInput:
    return PaymentOperationInput(
        workflow_id=f"return:{order_id}",
        operation_id=operation_id,
        order_id=order_id,
        provider="simulated",
        authorisation_ref=f"auth-{order_id}",
        amount_minor=amount_minor,
        currency="EUR",
    )


async def test_lost_chargeback_is_not_refundable_again(clean_db: asyncpg.Pool) -> None:
    order_id = await captured_order(clean_db)
    await closed_dispute(clean_db, order_id, stage="dispute", status="lost", amount_minor=CAPTURED)
    payments = PaymentActivities(clean_db, {"simulated": SimulatedPaymentProvider(clean_db)})

    with pytest.raises(ApplicationError) as refused:
        await payments.refund_payment(refund(order_id, 1))
    assert refused.value.type == REFUND_EXCEEDS_CAPTURE
    assert refused.value.non_retryable
    assert "lost to chargebacks 245000" in refused.value.message
    assert await ledger.get(clean_db, refund(order_id, 1).idempotency_key) is None


async def test_partial_chargeback_leaves_the_rest_refundable(clean_db: asyncpg.Pool) -> None:
    order_id = await captured_order(clean_db)
    await closed_dispute(
        clean_db, order_id, stage="dispute", status="accepted", amount_minor=45_000
    )
    # An inquiry that was accepted moved no money: it does not count.
    await closed_dispute(
        clean_db, order_id, stage="pre_dispute", status="accepted", amount_minor=CAPTURED
    )
    await closed_dispute(clean_db, order_id, stage="dispute", status="won", amount_minor=CAPTURED)
    payments = PaymentActivities(clean_db, {"simulated": SimulatedPaymentProvider(clean_db)})
    await clean_db.execute(
        """
        INSERT INTO sim_payment_authorisations
            (authorisation_ref, amount_minor, currency, captured_minor, refunded_minor, status,
             authorised_at, expires_at)
        VALUES ($1, $2, 'EUR', $2, 0, 'captured',
                now() - interval '1 day', now() + interval '6 days')
        """,
        f"auth-{order_id}",
        CAPTURED,
    )

    result = await payments.refund_payment(refund(order_id, CAPTURED - 45_000))
    assert result.amount_minor == CAPTURED - 45_000
    with pytest.raises(ApplicationError) as more:
        await payments.refund_payment(refund(order_id, 1, "refund-2"))
    assert more.value.type == REFUND_EXCEEDS_CAPTURE


async def test_expired_chargeback_is_not_refundable_again(clean_db: asyncpg.Pool) -> None:
    # An expired dispute is one nobody answered in time: lost by default, the
    # card scheme has taken the money back as surely as after a `lost`.
    order_id = await captured_order(clean_db)
    await closed_dispute(
        clean_db, order_id, stage="dispute", status="expired", amount_minor=CAPTURED
    )
    payments = PaymentActivities(clean_db, {"simulated": SimulatedPaymentProvider(clean_db)})

    with pytest.raises(ApplicationError) as refused:
        await payments.refund_payment(refund(order_id, 1))
    assert refused.value.type == REFUND_EXCEEDS_CAPTURE
    assert "lost to chargebacks 245000" in refused.value.message
    assert await ledger.get(clean_db, refund(order_id, 1).idempotency_key) is None


async def test_expired_inquiry_moved_no_money(clean_db: asyncpg.Pool) -> None:
    order_id = await captured_order(clean_db)
    await closed_dispute(
        clean_db, order_id, stage="pre_dispute", status="expired", amount_minor=CAPTURED
    )
    assert await disputes.chargeback_losses_minor(clean_db, order_id, "EUR") == 0
    await closed_dispute(
        clean_db, order_id, stage="pre_arbitration", status="expired", amount_minor=CAPTURED
    )
    assert await disputes.chargeback_losses_minor(clean_db, order_id, "EUR") == CAPTURED
