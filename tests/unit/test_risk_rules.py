"""The risk rule set, one rule at a time, on the clean factory order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.orders import Address, Order
from domain.risk import CustomerSignals, ReasonCode, RiskAssessment, RiskBand, Routing
from domain.risk_rules import (
    DEFAULT_THRESHOLDS,
    HIGH_RISK_DESTINATIONS,
    RULE_SET_VERSION,
    WEIGHTS,
    IdentityKind,
    MarketThresholds,
    assess,
    identity_hash,
    normalise_address,
    normalise_email,
    order_fingerprints,
    thresholds_for,
)
from tests.factories import make_order

R = ReasonCode
# A customer with a good record: five completed orders, nothing bad.
HISTORY = CustomerSignals(completed_orders=6)


def score(order: Order | None = None, /, **signals: Any) -> RiskAssessment:
    order = order or make_order()
    return assess(order, CustomerSignals(**signals), now=order.placed_at)


def watch(price_minor: int, quantity: int = 1) -> dict[str, Any]:
    return {
        "sku": "WT-AUTO-40-STEEL",
        "name": "Automatic 40 mm, steel bracelet",
        "category": "watches",
        "unit_price_minor": price_minor,
        "quantity": quantity,
        "serial_number": "SN-884213",
    }


# -- the baseline ---------------------------------------------------------------


def test_factory_order_is_valid_and_realistic() -> None:
    order = make_order("FR-2001")
    assert order.order_id == "FR-2001"
    assert order.market == "FR" and order.currency == "EUR"
    assert order.total_minor == 245_000
    assert order.payment.amount_minor == order.total_minor
    assert order.payment.authorisation_expires_at - order.payment.authorised_at == timedelta(days=7)
    assert order.payment.authorisation_ref == "auth-FR-2001"


def test_clean_order_from_customer_with_history_auto_accepts() -> None:
    order = make_order()
    result = assess(order, HISTORY, now=order.placed_at)
    assert result.routing is Routing.AUTO_ACCEPT
    assert result.band is RiskBand.LOW
    assert result.score == 0
    assert result.reason_codes == [R.TRUSTED_HISTORY]
    assert result.rule_set_version == RULE_SET_VERSION


def test_clean_order_from_new_customer_auto_accepts_with_no_reasons() -> None:
    result = score()
    assert (result.routing, result.score, result.reason_codes) == (Routing.AUTO_ACCEPT, 0, [])


def test_assessment_is_deterministic() -> None:
    order = make_order(payment={"avs_result": "mismatch"}, shipping_address={"country": "DE"})
    signals = CustomerSignals(orders_24h_by_email=5, chargebacks=1)
    assert assess(order, signals, order.placed_at) == assess(order, signals, order.placed_at)


# -- velocity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "limit", "code"),
    [
        ("orders_24h_by_email", 3, R.VELOCITY_EMAIL),
        ("orders_24h_by_card", 3, R.VELOCITY_CARD),
        ("emails_24h_by_card", 2, R.VELOCITY_CARD),
        ("orders_24h_by_device", 4, R.VELOCITY_DEVICE),
        ("orders_24h_by_address", 4, R.VELOCITY_ADDRESS),
    ],
)
def test_velocity_fires_at_the_market_limit(field: str, limit: int, code: ReasonCode) -> None:
    assert code not in score(**{field: limit - 1}).reason_codes
    result = score(**{field: limit})
    assert result.reason_codes == [code]
    assert result.score == WEIGHTS[code]


def test_device_velocity_ignores_client_advisor_orders() -> None:
    # The boutique's tablet places every phone order of the day.
    order = make_order(channel="client_advisor")
    assert R.VELOCITY_DEVICE not in score(order, orders_24h_by_device=12).reason_codes


def test_velocity_on_every_key_sends_to_review() -> None:
    result = score(
        orders_24h_by_email=4, orders_24h_by_card=4, orders_24h_by_device=5, orders_24h_by_address=5
    )
    assert result.score == 60
    assert result.routing is Routing.REVIEW
    assert result.band is RiskBand.MEDIUM


# -- lists ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("email", R.BLOCKLIST_EMAIL),
        ("card", R.BLOCKLIST_CARD),
        ("device", R.BLOCKLIST_DEVICE),
        ("address", R.BLOCKLIST_ADDRESS),
        ("customer", R.BLOCKLIST_CUSTOMER),
    ],
)
def test_any_blocklist_hit_auto_declines(kind: str, code: ReasonCode) -> None:
    result = assess(
        make_order(), HISTORY.model_copy(update={"blocklisted": [kind]}), make_order().placed_at
    )
    assert code in result.reason_codes
    assert result.routing is Routing.AUTO_DECLINE
    assert result.band is RiskBand.HIGH
    assert result.score == 100


def test_allowlist_cannot_override_a_blocklist() -> None:
    result = score(blocklisted=["card"], allowlisted=True, completed_orders=40)
    assert result.routing is Routing.AUTO_DECLINE
    assert result.score == 100
    assert R.BLOCKLIST_CARD in result.reason_codes
    assert R.ALLOWLISTED_CUSTOMER in result.reason_codes  # shown, but without effect


def test_allowlist_lowers_the_score() -> None:
    order = make_order(payment={"avs_result": "mismatch", "cvv_result": "mismatch"})
    without = score(order)
    with_allow = score(order, allowlisted=True)
    assert without.routing is Routing.REVIEW
    assert with_allow.score == without.score + WEIGHTS[R.ALLOWLISTED_CUSTOMER]
    assert with_allow.routing is Routing.AUTO_ACCEPT
    assert R.ALLOWLISTED_CUSTOMER in with_allow.reason_codes


# -- payment checks -------------------------------------------------------------


def test_avs_mismatch_adds_points_but_alone_accepts() -> None:
    result = score(make_order(payment={"avs_result": "mismatch"}))
    assert result.reason_codes == [R.AVS_MISMATCH]
    assert result.routing is Routing.AUTO_ACCEPT
    assert score(make_order(payment={"avs_result": "partial"})).reason_codes == []
    assert score(make_order(payment={"avs_result": "unavailable"})).reason_codes == []


def test_cvv_mismatch_sends_to_review() -> None:
    result = score(make_order(payment={"cvv_result": "mismatch"}))
    assert result.reason_codes == [R.CVV_MISMATCH]
    assert result.routing is Routing.REVIEW


def test_three_ds_failed_sends_to_review() -> None:
    result = score(make_order(payment={"three_ds": "failed"}))
    assert result.reason_codes == [R.THREE_DS_FAILED]
    assert result.routing is Routing.REVIEW


def test_no_three_ds_matters_only_on_high_value() -> None:
    low = make_order(payment={"three_ds": "not_performed"})
    assert score(low).reason_codes == []
    high = make_order(items=[watch(650_000)], payment={"three_ds": "not_performed"})
    assert R.NO_3DS_HIGH_VALUE in score(high).reason_codes
    attempted = make_order(items=[watch(650_000)], payment={"three_ds": "attempted"})
    assert R.NO_3DS_HIGH_VALUE not in score(attempted).reason_codes


def test_no_three_ds_is_expected_on_client_advisor_phone_orders() -> None:
    moto = make_order(
        channel="client_advisor", items=[watch(650_000)], payment={"three_ds": "not_performed"}
    )
    assert R.NO_3DS_HIGH_VALUE not in score(moto).reason_codes


# -- geography ------------------------------------------------------------------


def test_billing_shipping_country_mismatch() -> None:
    order = make_order(
        shipping_address={
            "line1": "Via Monte Napoleone 8",
            "postal_code": "20121",
            "city": "Milano",
            "region": None,
            "country": "IT",
        },
        device={"ip_country": "IT"},
    )
    assert score(order).reason_codes == [R.BILLING_SHIPPING_COUNTRY_MISMATCH]


def test_card_country_mismatch() -> None:
    assert score(make_order(payment={"card_country": "GB"})).reason_codes == [
        R.CARD_COUNTRY_MISMATCH
    ]


def test_ip_country_mismatch() -> None:
    assert score(make_order(device={"ip_country": "BR"})).reason_codes == [R.IP_COUNTRY_MISMATCH]
    # Unknown IP country, or a client advisor's boutique IP: no signal.
    assert score(make_order(device={"ip_country": None})).reason_codes == []
    assert (
        score(make_order(channel="client_advisor", device={"ip_country": "BR"})).reason_codes == []
    )


def test_ip_in_the_shipping_country_is_not_a_mismatch() -> None:
    order = make_order(
        shipping_address={"country": "BE", "postal_code": "1000"}, device={"ip_country": "BE"}
    )
    assert R.IP_COUNTRY_MISMATCH not in score(order).reason_codes


def test_high_risk_destination() -> None:
    country = sorted(HIGH_RISK_DESTINATIONS)[0]
    order = make_order(shipping_address={"country": country}, device={"ip_country": "FR"})
    assert score(order).reason_codes == [
        R.BILLING_SHIPPING_COUNTRY_MISMATCH,
        R.HIGH_RISK_DESTINATION,
    ]


def test_freight_forwarder() -> None:
    result = score(freight_forwarder_address=True)
    assert result.reason_codes == [R.FREIGHT_FORWARDER]
    assert result.score == WEIGHTS[R.FREIGHT_FORWARDER]


# -- the customer ---------------------------------------------------------------


def test_new_account_with_high_value() -> None:
    base = make_order()
    new_account = {"account_created_at": base.placed_at - timedelta(days=3)}
    high_new = make_order(items=[watch(650_000)], customer=new_account)
    assert score(high_new).reason_codes == [R.NEW_ACCOUNT_HIGH_VALUE]
    # A new account buying a handbag, or an old one buying a watch: no signal.
    assert score(make_order(customer=new_account)).reason_codes == []
    assert score(make_order(items=[watch(650_000)])).reason_codes == []


def test_account_age_is_measured_at_now() -> None:
    order = make_order(
        items=[watch(650_000)],
        customer={"account_created_at": make_order().placed_at - timedelta(days=29)},
    )
    assert (
        R.NEW_ACCOUNT_HIGH_VALUE in assess(order, CustomerSignals(), order.placed_at).reason_codes
    )
    later = order.placed_at + timedelta(days=2)
    assert R.NEW_ACCOUNT_HIGH_VALUE not in assess(order, CustomerSignals(), later).reason_codes


def test_prior_chargebacks_weigh_more_when_repeated() -> None:
    once = score(chargebacks=1, completed_orders=10)
    twice = score(chargebacks=2, completed_orders=10)
    assert once.reason_codes == [R.PRIOR_CHARGEBACKS]  # and no trusted history
    assert twice.reason_codes == [R.PRIOR_CHARGEBACKS]
    assert twice.score > once.score
    assert twice.routing is Routing.REVIEW


def test_serial_returner() -> None:
    result = score(completed_orders=6, returns=4)
    assert result.reason_codes == [R.SERIAL_RETURNER]  # and not trusted
    # A few returns over many orders, or too few to judge: no signal.
    assert R.SERIAL_RETURNER not in score(completed_orders=20, returns=3).reason_codes
    assert R.SERIAL_RETURNER not in score(completed_orders=1, returns=2).reason_codes


def test_high_resale_basket_by_quantity_and_by_value() -> None:
    two_bags = make_order(
        items=[
            {
                "sku": "HB-TOTE-MM-NOIR",
                "name": "Tote MM",
                "category": "handbags",
                "unit_price_minor": 245_000,
                "quantity": 2,
            }
        ]
    )
    assert score(two_bags).reason_codes == [R.HIGH_RESALE_BASKET]
    jewels = make_order(
        items=[
            {
                "sku": "JW-RING-01",
                "name": "Ring",
                "category": "jewellery",
                "unit_price_minor": 600_000,
                "quantity": 1,
            },
            {
                "sku": "JW-NECK-02",
                "name": "Necklace",
                "category": "jewellery",
                "unit_price_minor": 450_000,
                "quantity": 1,
            },
        ],
        payment={"three_ds": "authenticated"},
    )
    assert R.HIGH_RESALE_BASKET in score(jewels).reason_codes
    clothes = make_order(
        items=[
            {
                "sku": "RTW-COAT-38",
                "name": "Cashmere coat",
                "category": "ready_to_wear",
                "unit_price_minor": 1_200_000,
                "quantity": 2,
            }
        ]
    )
    assert R.HIGH_RESALE_BASKET not in score(clothes).reason_codes


def test_trusted_history_lowers_the_score() -> None:
    order = make_order(payment={"cvv_result": "mismatch"})
    assert score(order).routing is Routing.REVIEW
    trusted = assess(order, HISTORY, order.placed_at)
    assert trusted.reason_codes == [R.CVV_MISMATCH, R.TRUSTED_HISTORY]
    assert trusted.score == WEIGHTS[R.CVV_MISMATCH] + WEIGHTS[R.TRUSTED_HISTORY]
    assert trusted.routing is Routing.AUTO_ACCEPT
    assert R.TRUSTED_HISTORY not in score(completed_orders=4).reason_codes


# -- scores, bands, markets -------------------------------------------------------


def test_reason_codes_come_in_declaration_order() -> None:
    order = make_order(
        payment={"three_ds": "failed", "avs_result": "mismatch", "card_country": "US"},
        device={"ip_country": "BR"},
    )
    codes = score(order, freight_forwarder_address=True, orders_24h_by_email=9).reason_codes
    assert codes == sorted(codes, key=list(ReasonCode).index)
    assert codes[0] is R.VELOCITY_EMAIL


def test_score_is_clamped_and_many_signals_auto_decline() -> None:
    order = make_order(
        items=[watch(650_000, quantity=3)],
        payment={"three_ds": "failed", "cvv_result": "mismatch", "avs_result": "mismatch"},
        customer={"account_created_at": make_order().placed_at - timedelta(days=1)},
    )
    result = score(order, orders_24h_by_card=5, chargebacks=2)
    assert result.score == 100
    assert result.routing is Routing.AUTO_DECLINE
    assert result.band is RiskBand.HIGH


def test_score_never_goes_below_zero() -> None:
    assert score(allowlisted=True, completed_orders=50).score == 0


def test_market_thresholds_route_differently() -> None:
    # 30 points (AVS mismatch + email velocity): accepted in France, reviewed
    # in the United States, where card-not-present fraud runs higher.
    fr = make_order(payment={"avs_result": "mismatch"})
    us_address = {
        "line1": "725 Fifth Avenue",
        "line2": None,
        "city": "New York",
        "postal_code": "10022",
        "region": "NY",
        "country": "US",
    }
    us = make_order(
        "US-1001",
        market="US",
        currency="USD",
        billing_address=us_address,
        shipping_address=us_address,
        payment={"card_country": "US", "avs_result": "mismatch"},
        device={"ip_country": "US"},
    )
    fr_result = score(fr, orders_24h_by_email=3)
    us_result = score(us, orders_24h_by_email=3)
    assert fr_result.score == us_result.score == 30
    assert fr_result.routing is Routing.AUTO_ACCEPT
    assert us_result.routing is Routing.REVIEW
    assert us_result.band is RiskBand.MEDIUM


def test_china_never_auto_declines_on_score() -> None:
    order = make_order(
        market="CN",
        currency="CNY",
        payment={"three_ds": "failed", "cvv_result": "mismatch", "avs_result": "mismatch"},
    )
    result = score(order, orders_24h_by_card=9)
    assert result.score >= 85
    assert result.routing is Routing.REVIEW


def test_unknown_market_uses_default_thresholds() -> None:
    assert thresholds_for("ZZ") is DEFAULT_THRESHOLDS
    assert score(make_order(market="ZZ")).routing is Routing.AUTO_ACCEPT


def test_foreign_currency_uses_that_currency_amounts() -> None:
    # A GB-market order paid in EUR is judged on EUR amounts (high value from
    # 5,000.00 EUR), not on the GB market's GBP figure (4,500.00).
    below = make_order(market="GB", items=[watch(480_000)], payment={"three_ds": "not_performed"})
    above = make_order(market="GB", items=[watch(520_000)], payment={"three_ds": "not_performed"})
    assert R.NO_3DS_HIGH_VALUE not in score(below).reason_codes
    assert R.NO_3DS_HIGH_VALUE in score(above).reason_codes


def test_unknown_currency_counts_as_high_value() -> None:
    order = make_order(market="ZZ", currency="XAF", payment={"three_ds": "not_performed"})
    assert R.NO_3DS_HIGH_VALUE in score(order).reason_codes


def test_thresholds_must_review_before_declining() -> None:
    with pytest.raises(ValueError, match="review_at"):
        MarketThresholds(currency="EUR", review_at=60, decline_at=50)


# -- identity fingerprints --------------------------------------------------------


def test_email_normalisation() -> None:
    assert normalise_email("  Camille.Durand+shop@Example.FR ") == "camille.durand@example.fr"
    assert normalise_email("j.a.n.e+x@googlemail.com") == "jane@gmail.com"
    same = identity_hash(IdentityKind.EMAIL, "CAMILLE.durand@example.fr")
    assert same == identity_hash(IdentityKind.EMAIL, "camille.durand+promo@example.fr")
    assert len(same) == 64 and int(same, 16) >= 0


def test_address_normalisation_ignores_case_accents_spaces_and_line2() -> None:
    a = Address(
        line1="12, Rue de l'Église", line2="Bât. B", city="Paris", postal_code="75004", country="FR"
    )
    b = Address(
        line1="12 rue de l eglise", line2=None, city="PARIS 4E", postal_code=" 75004", country="FR"
    )
    assert normalise_address(a) == normalise_address(b) == "12 rue de l eglise|75004|FR"
    gb1 = Address(line1="1 Sloane St", city="London", postal_code="sw1x 9ll", country="GB")
    gb2 = Address(line1="1 SLOANE ST.", city="London", postal_code="SW1X9LL", country="GB")
    assert identity_hash(IdentityKind.ADDRESS, gb1) == identity_hash(IdentityKind.ADDRESS, gb2)


def test_card_and_device_tokens_are_case_sensitive() -> None:
    assert identity_hash(IdentityKind.CARD, " Xt5EWLLDS7FJjR1c ") == identity_hash(
        IdentityKind.CARD, "Xt5EWLLDS7FJjR1c"
    )
    assert identity_hash(IdentityKind.CARD, "abc") != identity_hash(IdentityKind.CARD, "ABC")


def test_identity_kinds_need_the_right_value_type() -> None:
    with pytest.raises(TypeError):
        identity_hash(IdentityKind.ADDRESS, "18 rue de grenelle")
    with pytest.raises(TypeError):
        identity_hash(IdentityKind.EMAIL, make_order().billing_address)


def test_order_fingerprints_hash_every_identity() -> None:
    order = make_order()
    fp = order_fingerprints(order)
    assert fp.email_hash == identity_hash(IdentityKind.EMAIL, order.customer.email)
    assert fp.shipping_address_hash == fp.billing_address_hash
    assert fp.by_kind()[IdentityKind.ADDRESS] == (fp.shipping_address_hash,)
    values = [fp.customer_hash, fp.email_hash, fp.card_hash, fp.device_hash]
    assert all(len(v) == 64 for v in values)
    assert order.customer.email not in repr(fp)
