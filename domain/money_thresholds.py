"""Every amount threshold of every process, per currency, in one place.

An amount in minor units means nothing without its currency: 5,000 is 50.00
EUR but 5,000 KRW (about 3 EUR) and 5,000 JPY (about 30 EUR). Each process
that compares an amount with a threshold takes it from here, for the currency
of the amount it compares:

- risk rules (domain/risk_rules.py): `risk_high_value_minor` (no 3-D Secure or
  a new account becomes a signal), `risk_high_resale_minor` (a resale basket);
- chargebacks (domain/chargeback/deadlines.py): `dispute_accept_below_minor`,
  under which the default accepts (contesting costs more than it wins);
- failed deliveries (domain/deliveries.py): `delivery_rescore_minor`, from
  which a new address goes back through risk review;
- returns (domain/returns.py): `return_finance_minor` (a second approval by
  finance above it) and `return_qc_high_value_minor` (manual QC above it);
- fulfilment (domain/fulfilment_rules.py): `outbound_qc_minor`, from which
  every order is checked before it ships (half of it for a first order);
- operations requests (domain/ops_request.py): `ops_write_off_approval_minor`,
  above which an inventory write-off needs finance's approval.

The values are round numbers of roughly equal worth (the EUR column times the
currency's `scale`), each written out in its own currency's minor units (JPY
and KRW have none). A currency not listed has no thresholds: the processes
treat its amounts as high (review, four eyes, manual QC, contest), never as
small. tests/unit/test_money_thresholds.py proves each configured market has
every threshold in each currency it sells in.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ConfigDict, Field

from domain.common import MARKET_CURRENCIES, StewardModel


class MoneyThresholds(StewardModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str
    risk_high_value_minor: int = Field(ge=0)
    risk_high_resale_minor: int = Field(ge=0)
    dispute_accept_below_minor: int = Field(ge=0)
    delivery_rescore_minor: int = Field(ge=0)
    return_finance_minor: int = Field(ge=0)
    return_qc_high_value_minor: int = Field(ge=0)
    outbound_qc_minor: int = Field(ge=0)
    ops_write_off_approval_minor: int = Field(ge=0)


def _row(
    currency: str,
    risk_high_value: int,
    risk_high_resale: int,
    dispute_accept_below: int,
    delivery_rescore: int,
    return_finance: int,
    return_qc_high_value: int,
    outbound_qc: int,
    ops_write_off_approval: int,
) -> MoneyThresholds:
    return MoneyThresholds(
        currency=currency,
        risk_high_value_minor=risk_high_value,
        risk_high_resale_minor=risk_high_resale,
        dispute_accept_below_minor=dispute_accept_below,
        delivery_rescore_minor=delivery_rescore,
        return_finance_minor=return_finance,
        return_qc_high_value_minor=return_qc_high_value,
        outbound_qc_minor=outbound_qc,
        ops_write_off_approval_minor=ops_write_off_approval,
    )


# fmt: off
# currency: risk high value, risk resale basket, dispute accept-below,
#           new-address rescoring, return finance, return manual QC,
#           outbound QC, ops write-off approval
# (minor units of that currency; EUR 500_000 is 5,000.00 EUR, JPY 800_000 is 800,000 JPY)
MONEY_THRESHOLDS: Mapping[str, MoneyThresholds] = {
    t.currency: t
    for t in (
        _row("EUR",   500_000,  1_000_000,  5_000,   300_000,   500_000,  1_000_000,  1_000_000,   100_000),  # noqa: E501
        _row("GBP",   450_000,    900_000,  4_500,   270_000,   450_000,    900_000,    900_000,    90_000),  # noqa: E501
        _row("USD",   550_000,  1_100_000,  5_500,   330_000,   550_000,  1_100_000,  1_100_000,   110_000),  # noqa: E501
        _row("CHF",   500_000,  1_000_000,  5_000,   300_000,   500_000,  1_000_000,  1_000_000,   100_000),  # noqa: E501
        _row("CNY", 4_000_000,  8_000_000, 40_000, 2_400_000, 4_000_000,  8_000_000,  8_000_000,   800_000),  # noqa: E501
        _row("HKD", 4_500_000,  9_000_000, 45_000, 2_700_000, 4_500_000,  9_000_000,  9_000_000,   900_000),  # noqa: E501
        _row("SGD",   750_000,  1_500_000,  7_500,   450_000,   750_000,  1_500_000,  1_500_000,   150_000),  # noqa: E501
        _row("AED", 2_000_000,  4_000_000, 20_000, 1_200_000, 2_000_000,  4_000_000,  4_000_000,   400_000),  # noqa: E501
        _row("JPY",   800_000,  1_600_000,  8_000,   480_000,   800_000,  1_600_000,  1_600_000,   160_000),  # noqa: E501
        _row("KRW", 7_500_000, 15_000_000, 75_000, 4_500_000, 7_500_000, 15_000_000, 15_000_000, 1_500_000),  # noqa: E501
    )
}
# fmt: on

# Where a market sells in several currencies, the first is its home currency
# (the one its own policies were written in).
MARKET_HOME_CURRENCY: Mapping[str, str] = {
    "FR": "EUR",
    "DE": "EUR",
    "IT": "EUR",
    "ES": "EUR",
    "GB": "GBP",
    "CH": "CHF",
    "US": "USD",
    "CN": "CNY",
    "JP": "JPY",
    "KR": "KRW",
    "AE": "AED",
}


def money_thresholds(currency: str) -> MoneyThresholds | None:
    """The thresholds for amounts in `currency`; None for a currency without
    any (its amounts then count as high everywhere)."""
    return MONEY_THRESHOLDS.get(currency)


def home_currency(market: str) -> str:
    return MARKET_HOME_CURRENCY.get(market, "EUR")


def dispute_accept_below(eur_minor: int | None = None) -> dict[str, int]:
    """The dispute accept-below threshold per currency. `eur_minor` (the
    STEWARD_DISPUTE_ACCEPT_BELOW_MINOR setting, in EUR cents) rescales every
    currency's value in proportion (0: the default never accepts on amount)."""
    base = MONEY_THRESHOLDS["EUR"].dispute_accept_below_minor
    out: dict[str, int] = {}
    for currency, t in MONEY_THRESHOLDS.items():
        value = t.dispute_accept_below_minor
        out[currency] = value if eur_minor is None else value * eur_minor // base
    return out


def delivery_rescore_from() -> dict[str, int]:
    """New-address rescoring threshold per currency (failed deliveries)."""
    return {c: t.delivery_rescore_minor for c, t in MONEY_THRESHOLDS.items()}


def outbound_qc_from(currency: str) -> int:
    """From this order value on, outbound QC checks every order; 0 (check
    every order) for a currency without thresholds."""
    t = MONEY_THRESHOLDS.get(currency)
    return t.outbound_qc_minor if t is not None else 0


def ops_write_off_approval_above(currency: str) -> int:
    """An inventory write-off above this needs finance's approval; 0 (every
    write-off) for a currency without thresholds."""
    t = MONEY_THRESHOLDS.get(currency)
    return t.ops_write_off_approval_minor if t is not None else 0


def configured_markets() -> frozenset[str]:
    """Every market some policy names."""
    return frozenset(MARKET_CURRENCIES) | frozenset(MARKET_HOME_CURRENCY)


def missing_thresholds(
    markets: Mapping[str, frozenset[str]] = MARKET_CURRENCIES,
) -> dict[str, list[str]]:
    """Market -> the currencies it sells in that have no row here (each would
    count every amount as high in every process)."""
    missing = {
        market: sorted(c for c in currencies if c not in MONEY_THRESHOLDS)
        for market, currencies in markets.items()
    }
    homes = {m: c for m, c in MARKET_HOME_CURRENCY.items() if c not in MONEY_THRESHOLDS}
    for market, currency in homes.items():
        missing.setdefault(market, []).append(currency)
    return {market: currencies for market, currencies in missing.items() if currencies}


# Checked when any process starts (every worker and the API import this
# module): a market configured to sell in a currency without thresholds is a
# configuration error, not a silent "everything is high".
if _missing := missing_thresholds():
    raise RuntimeError(f"money thresholds missing for {_missing} (domain/money_thresholds.py)")
