"""Every money threshold is per currency (issue 15): one table
(domain/money_thresholds.py), each configured market covered in every currency
it sells in, and the processes that compare amounts use the amount's currency:
KRW and JPY cases for the dispute default, the new-address rescoring and the
return finance and manual-QC thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.carrier_events import TrackingStatus
from domain.chargeback import (
    ChargebackState,
    DisputePolicy,
    DisputeProvider,
    DisputeReason,
    DisputeStage,
    DisputeStatus,
    EvidenceItem,
    EvidenceKind,
    EvidencePack,
    ResponseAction,
    default_response,
)
from domain.common import CURRENCY_EXPONENTS, MARKET_CURRENCIES
from domain.deliveries import (
    CustomerOption,
    CustomerReply,
    FailedDeliveryPolicy,
    ShipmentRecord,
    failed_delivery_policy,
    needs_risk_review,
    recommend,
)
from domain.money_thresholds import (
    MARKET_HOME_CURRENCY,
    MONEY_THRESHOLDS,
    MoneyThresholds,
    configured_markets,
    dispute_accept_below,
    home_currency,
)
from domain.orders import Address
from domain.returns import MARKET_RETURN_POLICIES, return_policy_for
from domain.risk_rules import MARKET_THRESHOLDS, thresholds_for
from tests.factories import make_order
from workers.settings import Settings

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
THRESHOLD_FIELDS = [f for f in MoneyThresholds.model_fields if f.endswith("_minor")]
# Roughly what one unit of each currency is worth in EUR (late 2026), only to
# check that the table's values are of one order of magnitude in every currency.
EUR_PER_UNIT = {
    "EUR": 1.0,
    "GBP": 1.15,
    "USD": 0.92,
    "CHF": 1.05,
    "CNY": 0.13,
    "HKD": 0.12,
    "SGD": 0.68,
    "AED": 0.25,
    "JPY": 0.0062,
    "KRW": 0.00068,
}


def in_eur(amount_minor: int, currency: str) -> float:
    return amount_minor / 10 ** CURRENCY_EXPONENTS[currency] * EUR_PER_UNIT[currency]


def test_each_configured_market_has_every_threshold_in_each_of_its_currencies() -> None:
    markets = (
        configured_markets()
        | frozenset(MARKET_THRESHOLDS)
        | frozenset(MARKET_RETURN_POLICIES)
        | frozenset(MARKET_CURRENCIES)
    )
    assert {"KR", "JP", "FR", "US", "CN", "GB"} <= markets
    for market in sorted(markets):
        currencies = {home_currency(market), *MARKET_CURRENCIES.get(market, ())}
        for currency in currencies:
            table = MONEY_THRESHOLDS.get(currency)
            assert table is not None, f"{market} sells in {currency}, which has no thresholds"
            assert table.currency == currency
            for name in THRESHOLD_FIELDS:
                assert getattr(table, name) > 0, f"{currency}.{name}"
    assert set(MARKET_HOME_CURRENCY) == set(MARKET_CURRENCIES)
    for market, currencies in MARKET_CURRENCIES.items():
        assert MARKET_HOME_CURRENCY[market] in currencies


def test_every_currency_row_is_worth_about_the_same() -> None:
    """A threshold written in the wrong unit (5,000 KRW for 50 EUR) is off by
    a factor of a thousand; round numbers stay within a factor of two."""
    eur = MONEY_THRESHOLDS["EUR"]
    for currency, row in MONEY_THRESHOLDS.items():
        for name in THRESHOLD_FIELDS:
            ratio = in_eur(getattr(row, name), currency) / in_eur(getattr(eur, name), "EUR")
            assert 0.5 < ratio < 2, f"{currency}.{name} is {ratio:.2f} x the EUR value"


def test_risk_rules_and_their_markets_use_the_same_table() -> None:
    for market, t in MARKET_THRESHOLDS.items():
        row = MONEY_THRESHOLDS[t.currency]
        assert (t.high_value_minor, t.high_resale_minor) == (
            row.risk_high_value_minor,
            row.risk_high_resale_minor,
        ), market
        assert t.currency == home_currency(market)
    korea = thresholds_for("KR").amounts_for("KRW")
    assert korea.high_value_minor == MONEY_THRESHOLDS["KRW"].risk_high_value_minor


# ------------------------------------------------------------ chargebacks


def dispute(amount_minor: int, currency: str, *, complete: bool = True) -> ChargebackState:
    kinds = (
        [
            EvidenceKind.ORDER_AND_REVIEW,
            EvidenceKind.AUTHORISATION_RESULTS,
            EvidenceKind.PROOF_OF_DELIVERY,
            EvidenceKind.PRIOR_ORDERS,
        ]
        if complete
        else []
    )
    return ChargebackState(
        provider=DisputeProvider.STRIPE,
        dispute_id="dp_1",
        order_id="KR-1",
        stage=DisputeStage.DISPUTE,
        status=DisputeStatus.AWAITING_COORDINATOR,
        reason=DisputeReason.FRAUD,
        amount_minor=amount_minor,
        currency=currency,
        evidence=EvidencePack(
            items=[EvidenceItem(kind=k, available=True, summary="x") for k in kinds]
        ),
    )


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        # 60,000 KRW (about 41 EUR) is not worth contesting; the flat 5,000 contested it.
        (60_000, "KRW", ResponseAction.ACCEPT),
        (100_000, "KRW", ResponseAction.CONTEST),
        # 6,000 JPY (about 37 EUR) likewise.
        (6_000, "JPY", ResponseAction.ACCEPT),
        (9_000, "JPY", ResponseAction.CONTEST),
        (4_999, "EUR", ResponseAction.ACCEPT),
        (5_000, "EUR", ResponseAction.CONTEST),
        # No thresholds for this currency: never accepted on amount alone.
        (1, "XOF", ResponseAction.CONTEST),
    ],
)
def test_dispute_default_accepts_below_the_threshold_of_the_disputes_currency(
    amount: int, currency: str, expected: ResponseAction
) -> None:
    policy = Settings(_env_file=None).dispute_policy()
    assert default_response(dispute(amount, currency), policy)[0] is expected


def test_a_running_dispute_keeps_the_flat_threshold_it_started_with() -> None:
    old = DisputePolicy.model_validate({"accept_below_minor": 5_000})
    assert old.accept_below_by_currency == {}
    assert default_response(dispute(60_000, "KRW"), old)[0] is ResponseAction.CONTEST
    assert default_response(dispute(4_000, "KRW"), old)[0] is ResponseAction.ACCEPT


def test_the_setting_rescales_every_currency() -> None:
    assert dispute_accept_below(0) == dict.fromkeys(MONEY_THRESHOLDS, 0)
    doubled = dispute_accept_below(10_000)
    assert (doubled["EUR"], doubled["KRW"], doubled["JPY"]) == (10_000, 150_000, 16_000)


# -------------------------------------------------------- failed delivery

NEW = Address(line1="9 New Road", city="Seoul", postal_code="04524", country="KR")


def parcel(amount_minor: int, currency: str) -> ShipmentRecord:
    order = make_order("KR-9", market="KR", currency=currency)
    item = order.items[0].model_copy(update={"unit_price_minor": amount_minor, "quantity": 1})
    payment = order.payment.model_copy(update={"amount_minor": amount_minor, "currency": currency})
    order = order.model_copy(update={"items": [item], "shipping_minor": 0, "payment": payment})
    return ShipmentRecord(
        shipment_id="SH-KR",
        carrier="ups",
        tracking_number="1ZKR",
        expected_delivery_at=T0 + timedelta(days=2),
        order=order,
    )


def test_new_address_rescoring_compares_in_the_parcels_currency() -> None:
    policy = failed_delivery_policy()
    # 1,000,000 KRW is about 680 EUR: under 3,000 EUR, no rescoring (the flat
    # 300,000 rescored every KRW parcel above about 200 EUR).
    assert not needs_risk_review(parcel(1_000_000, "KRW"), NEW, policy)
    assert needs_risk_review(parcel(4_500_000, "KRW"), NEW, policy)
    assert not needs_risk_review(parcel(400_000, "JPY"), NEW, policy)
    assert needs_risk_review(parcel(480_000, "JPY"), NEW, policy)
    assert needs_risk_review(parcel(1, "XOF"), NEW, policy)
    # A case started before the table keeps its flat threshold under replay.
    assert needs_risk_review(parcel(1_000_000, "KRW"), NEW, FailedDeliveryPolicy())


# ---------------------------------------------------------------- returns


def test_return_thresholds_follow_the_orders_currency() -> None:
    korea = return_policy_for("KR", "KRW")
    assert (korea.finance_threshold_minor, korea.qc_high_value_minor) == (7_500_000, 15_000_000)
    japan = return_policy_for("JP")
    assert (japan.finance_threshold_minor, japan.qc_high_value_minor) == (800_000, 1_600_000)
    assert japan.return_window == timedelta(days=14)  # the market's own rules stay
    # A Swiss order paid in EUR: EUR thresholds, not CHF ones.
    assert return_policy_for("CH", "EUR").finance_threshold_minor == 500_000
    unknown = return_policy_for("SN", "XOF")
    assert (unknown.finance_threshold_minor, unknown.qc_high_value_minor) == (0, 0)


def test_signature_required_follows_the_parcels_currency() -> None:
    policy = failed_delivery_policy()

    def reasons(amount: int, currency: str) -> list[str]:
        return recommend(
            reply=CustomerReply(event_id="m1", option=CustomerOption.RESCHEDULE),
            attempt=1,
            amount_minor=amount,
            policy=policy,
            risk=None,
            trigger=TrackingStatus.DELIVERY_FAILED,
            currency=currency,
        ).reasons

    signature = "high-value parcel: ship with signature required"
    assert signature not in reasons(1_000_000, "KRW")  # about 680 EUR
    assert signature in reasons(4_500_000, "KRW")
    assert signature in reasons(480_000, "JPY")
    assert signature not in reasons(299_999, "EUR")


def test_outbound_qc_checks_from_the_order_currency_s_value() -> None:
    from domain.fulfilment_rules import QC_VALUE_THRESHOLDS, QcRuleInput, evaluate_qc

    def value_checked(amount: int, currency: str) -> bool:
        verdict = evaluate_qc(
            QcRuleInput(
                market="CN",
                currency=currency,
                amount_minor=amount,
                destination_country="HK",
                categories=["handbags"],
            )
        )
        return "value_above_threshold" in verdict.reasons

    expected = {c: t.outbound_qc_minor for c, t in MONEY_THRESHOLDS.items()}
    assert dict(QC_VALUE_THRESHOLDS) == expected
    # 12,500 HKD is about 1,500 EUR: not a high-value order (qc-2026.12.2
    # checked every HKD order from 1,000,000 minor units, about 1,200 EUR).
    assert not value_checked(1_250_000, "HKD")
    assert value_checked(9_000_000, "HKD")
    assert not value_checked(15_000_000 - 1, "KRW")
    assert value_checked(1_600_000, "JPY")
    # A currency without thresholds: every order is checked.
    assert value_checked(100, "NOK")


def test_every_threshold_column_reaches_a_process() -> None:
    from domain.fulfilment_rules import QC_VALUE_THRESHOLDS
    from domain.ops_request import write_off_needs_approval

    for currency, t in MONEY_THRESHOLDS.items():
        assert QC_VALUE_THRESHOLDS[currency] == t.outbound_qc_minor
        assert not write_off_needs_approval(t.ops_write_off_approval_minor, currency)
        assert write_off_needs_approval(t.ops_write_off_approval_minor + 1, currency)


def test_a_market_selling_in_a_currency_without_thresholds_is_refused_at_start() -> None:
    from domain.money_thresholds import missing_thresholds

    assert missing_thresholds() == {}
    assert missing_thresholds({"FR": frozenset({"EUR"}), "NO": frozenset({"NOK", "EUR"})}) == {
        "NO": ["NOK"]
    }
