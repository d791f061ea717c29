"""The traffic simulator: seeded, valid, realistic, and with its fraud patterns."""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from domain.orders import ItemCategory, Order, ThreeDSOutcome
from domain.risk import CustomerSignals, Routing
from domain.risk_rules import HIGH_RISK_DESTINATIONS, IdentityKind, RiskList, assess, thresholds_for
from starters.simulator import (
    CARD_TESTING_BURST,
    FORWARDERS,
    HIGH_RISK_PLACES,
    MARKET_CURRENCY,
    MARKETS,
    PATTERN_RATES,
    FraudPattern,
    SimulatedOrder,
    Traffic,
    generate_orders,
    generate_traffic,
    send_orders,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EMAIL = re.compile(r"^[a-z]+\.[a-z]+@example\.com$")


@pytest.fixture(scope="module")
def big() -> Traffic:
    return generate_traffic(seed=7, count=20_000, now=NOW)


def by_pattern(traffic: Traffic) -> dict[FraudPattern, list[Order]]:
    grouped: dict[FraudPattern, list[Order]] = defaultdict(list)
    for simulated in traffic.orders:
        grouped[simulated.pattern].append(simulated.order)
    return grouped


def test_same_seed_same_traffic_other_seed_other_traffic() -> None:
    first = generate_traffic(seed=42, count=300, now=NOW)
    again = generate_traffic(seed=42, count=300, now=NOW)
    assert [o.order.model_dump_json() for o in first.orders] == [
        o.order.model_dump_json() for o in again.orders
    ]
    assert first.histories == again.histories and first.risk_lists == again.risk_lists
    other = generate_orders(seed=43, count=300, now=NOW)
    assert [o.model_dump_json() for o in other] != [o.order.model_dump_json() for o in first.orders]


def test_exact_count_and_empty() -> None:
    assert len(generate_orders(seed=1, count=137, now=NOW)) == 137
    assert generate_orders(seed=1, count=0, now=NOW) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_orders(seed=1, count=1, now=NOW.replace(tzinfo=None))


def test_every_order_is_valid_and_plausible(big: Traffic) -> None:
    ids = set()
    for simulated in big.orders:
        order = simulated.order
        # Round trip through JSON, exactly what the API receives.
        assert Order.model_validate_json(order.model_dump_json()) == order
        assert order.order_id not in ids
        ids.add(order.order_id)
        assert order.currency == MARKET_CURRENCY[order.market]
        assert order.payment.amount_minor == order.total_minor
        assert order.placed_at <= NOW
        # Recent enough that a review is nowhere near its authorisation deadline.
        assert NOW - order.placed_at < timedelta(days=1)
        assert order.payment.authorisation_expires_at - NOW > timedelta(days=6)
        assert order.customer.account_created_at <= order.placed_at
        assert EMAIL.match(order.customer.email), order.customer.email
        assert order.device.ip_address.startswith(("192.0.2.", "198.51.100.", "203.0.113."))
        for item in order.items:
            if order.currency in ("JPY", "KRW"):
                # No minor unit: price points are round thousands of yen / won.
                assert item.unit_price_minor % 1000 == 0
            else:
                assert item.unit_price_minor % 100 == 0
            if item.category in (ItemCategory.WATCHES, ItemCategory.JEWELLERY):
                assert item.serial_number
    assert {o.order.market for o in big.orders} == set(MARKETS)


def test_patterns_at_their_configured_share_of_orders(big: Traffic) -> None:
    counts = big.pattern_counts()
    total = len(big.orders)
    for pattern, rate in PATTERN_RATES.items():
        # Binomial spread, widened for card testing where orders come in bursts.
        burst = sum(CARD_TESTING_BURST) / 2 if pattern is FraudPattern.CARD_TESTING else 1
        sd = math.sqrt(total * rate * burst)
        assert abs(counts[pattern] - total * rate) <= 4 * sd, (pattern, counts[pattern])
    legit_share = counts[FraudPattern.NONE] / total
    assert 0.90 <= legit_share <= 0.95


def test_card_testing_is_one_card_under_many_emails(big: Traffic) -> None:
    emails_by_card: dict[str, set[str]] = defaultdict(set)
    for order in by_pattern(big)[FraudPattern.CARD_TESTING]:
        emails_by_card[order.payment.card_fingerprint].add(order.customer.email)
        assert all(i.category in _CHEAP for i in order.items)
        assert order.payment.card_country != order.billing_address.country
    sizes = [len(e) for e in emails_by_card.values()]
    assert min(sizes) >= 2 and max(sizes) <= CARD_TESTING_BURST[1]
    assert sum(sizes) / len(sizes) >= 3


def test_fraud_patterns_carry_their_signature(big: Traffic) -> None:
    grouped = by_pattern(big)
    forwarder_streets = {f.address.line1 for f in FORWARDERS}
    for order in grouped[FraudPattern.FREIGHT_FORWARDER]:
        assert order.shipping_address.line1 in forwarder_streets
        assert order.shipping_address.line2 and order.shipping_address.line2.startswith("Suite")
    for order in grouped[FraudPattern.NEW_ACCOUNT_WATCH]:
        assert order.placed_at - order.customer.account_created_at < timedelta(hours=5)
        assert order.items[0].category is ItemCategory.WATCHES
        amounts = thresholds_for(order.market).amounts_for(order.currency)
        assert order.total_minor >= amounts.high_value_minor
    for order in grouped[FraudPattern.AVS_CVV_MISMATCH]:
        assert "mismatch" in (order.payment.avs_result, order.payment.cvv_result)
    for order in grouped[FraudPattern.NO_3DS_HIGH_VALUE]:
        assert order.payment.three_ds is ThreeDSOutcome.NOT_PERFORMED
        amounts = thresholds_for(order.market).amounts_for(order.currency)
        assert order.total_minor >= amounts.high_value_minor
    blocked = {
        e.value
        for e in big.risk_lists
        if e.list is RiskList.BLOCK and e.kind is IdentityKind.DEVICE
    }
    assert blocked
    for order in grouped[FraudPattern.BLOCKLISTED_DEVICE]:
        assert order.device.device_id in blocked
    for order in grouped[FraudPattern.HIGH_RISK_DESTINATION]:
        assert order.shipping_address.country in HIGH_RISK_DESTINATIONS
    assert set(HIGH_RISK_PLACES) & HIGH_RISK_DESTINATIONS


def test_returning_customers_come_with_histories_and_some_vics(big: Traffic) -> None:
    with_history = {h.customer_id for h in big.histories}
    returning = Counter(
        o.order.customer.customer_id
        for o in big.orders
        if o.order.customer.customer_id in with_history
    )
    assert returning and max(returning.values()) > 1  # the same client buys again
    assert any(h.chargebacks for h in big.histories)
    allowed = [e for e in big.risk_lists if e.list is RiskList.ALLOW]
    assert allowed and all(e.kind is IdentityKind.CUSTOMER for e in allowed)


def test_rules_see_the_patterns(big: Traffic) -> None:
    """With the store seeded as the simulator seeds it, fraud goes to people and
    legitimate clients mostly do not."""
    blocked_devices = {e.value for e in big.risk_lists if e.list is RiskList.BLOCK}
    forwarder_streets = {f.address.line1 for f in FORWARDERS}
    routed: dict[FraudPattern, Counter[Routing]] = defaultdict(Counter)
    for simulated in big.orders:
        order = simulated.order
        signals = CustomerSignals(
            blocklisted=["device"] if order.device.device_id in blocked_devices else [],
            freight_forwarder_address=order.shipping_address.line1 in forwarder_streets,
        )
        routed[simulated.pattern][assess(order, signals, order.placed_at).routing] += 1

    def share_not_accepted(pattern: FraudPattern) -> float:
        counts = routed[pattern]
        return 1 - counts[Routing.AUTO_ACCEPT] / sum(counts.values())

    assert share_not_accepted(FraudPattern.NONE) < 0.05
    assert routed[FraudPattern.BLOCKLISTED_DEVICE] == Counter(
        {Routing.AUTO_DECLINE: sum(routed[FraudPattern.BLOCKLISTED_DEVICE].values())}
    )
    for pattern in (
        FraudPattern.FREIGHT_FORWARDER,
        FraudPattern.NEW_ACCOUNT_WATCH,
        FraudPattern.AVS_CVV_MISMATCH,
        FraudPattern.NO_3DS_HIGH_VALUE,
    ):
        assert share_not_accepted(pattern) > 0.5, (pattern, routed[pattern])


def test_rates_are_checked() -> None:
    with pytest.raises(ValueError, match="rates"):
        generate_traffic(1, 10, NOW, rates={FraudPattern.CARD_TESTING: 1.2})
    clean = generate_traffic(1, 500, NOW, rates={})
    assert clean.pattern_counts() == Counter({FraudPattern.NONE: 500})


def test_send_orders_in_order_and_counts_outcomes() -> None:
    traffic = generate_traffic(seed=3, count=12, now=NOW)
    sent: list[str] = []

    async def start(order: Order) -> bool:
        sent.append(order.order_id)
        if order.order_id == traffic.orders[3].order.order_id:
            raise RuntimeError("Temporal hiccup")
        return order.order_id != traffic.orders[5].order.order_id

    seen: list[tuple[SimulatedOrder, bool | None]] = []
    report = asyncio.run(
        send_orders(start, traffic.orders, rate=1000, on_sent=lambda o, r: seen.append((o, r)))
    )
    assert sent == [o.order.order_id for o in traffic.orders]
    assert (report.started, report.already_existed, report.failed) == (10, 1, 1)
    assert "Temporal hiccup" in report.errors[0]
    assert [r for _, r in seen].count(None) == 1
    with pytest.raises(ValueError, match="rate"):
        asyncio.run(send_orders(start, traffic.orders, rate=0))


_CHEAP = (ItemCategory.FRAGRANCE, ItemCategory.SMALL_LEATHER_GOODS, ItemCategory.ACCESSORIES)
