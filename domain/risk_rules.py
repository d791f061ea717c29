"""The order-risk rule set: identity fingerprints, per-market thresholds and
`assess`, which turns an order plus what the store knows into a score, a band,
a routing and reason codes.

Pure (no I/O, no clock): the scoring activity loads the signals and passes
`now`. Rules run in the activity, never in workflow code, so editing a weight
or a threshold here changes new scores without breaking the replay of running
reviews. Bump `RULE_SET_VERSION` on every change: the version is stored with
each assessment and lets analysts compare rule sets in the fraud report.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from domain.common import StewardModel
from domain.money_thresholds import MONEY_THRESHOLDS
from domain.orders import (
    HIGH_RESALE_CATEGORIES,
    Address,
    AvsResult,
    Channel,
    CvvResult,
    Order,
    ThreeDSOutcome,
)
from domain.risk import CustomerSignals, ReasonCode, RiskAssessment, RiskBand, Routing

RULE_SET_VERSION = "2026.11.1"

# --------------------------------------------------------------------------
# Identity fingerprints
#
# Emails, card fingerprints, devices and addresses are personal data: the
# store keeps only SHA-256 hashes of a normalised form, so velocity and list
# look-ups work by equality without the clear value ever being written.
# Normalisation decides what counts as "the same" email or address, so it
# lives here once and every writer and reader (scoring, lists, CLI,
# simulator) goes through it.
# --------------------------------------------------------------------------


class IdentityKind(StrEnum):
    EMAIL = "email"
    CARD = "card"
    DEVICE = "device"
    ADDRESS = "address"
    CUSTOMER = "customer"


class RiskList(StrEnum):
    BLOCK = "block"
    ALLOW = "allow"


# Providers that ignore dots in the local part; fraudsters rotate
# "j.ane@", "ja.ne@"... to slip under email velocity limits.
_DOT_INSENSITIVE_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_email(email: str) -> str:
    """Lowercase and trim; drop a `+tag` (sub-addressing gives one person
    unlimited addresses) and Gmail's insignificant dots."""
    value = email.strip().casefold()
    local, at, domain = value.rpartition("@")
    if not at:
        return value
    local = local.split("+", 1)[0]
    if domain in _DOT_INSENSITIVE_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def _fold_text(value: str) -> str:
    # "Rue de l'Église  12" and "rue de l eglise 12" are the same doorstep.
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_ALNUM.sub(" ", ascii_only).strip()


def normalise_postal_code(postal_code: str) -> str:
    """`sw1a 1aa` and `SW1A1AA` are the same postal code."""
    return _NON_ALNUM.sub("", postal_code.casefold())


def normalise_address(address: Address) -> str:
    """line1 + postal code + country: enough to recognise a doorstep without
    being fooled by a changed line2, city spelling or name."""
    return "|".join(
        (
            _fold_text(address.line1),
            normalise_postal_code(address.postal_code),
            address.country.strip().upper(),
        )
    )


def normalise_token(value: str) -> str:
    # Card fingerprints and device ids are opaque provider tokens and are
    # case-sensitive (e.g. Stripe's base62 fingerprints): trim only.
    return value.strip()


def normalise_identity(kind: IdentityKind, raw: str | Address) -> str:
    if kind is IdentityKind.ADDRESS:
        if not isinstance(raw, Address):
            raise TypeError("an address identity needs an Address, not a string")
        return normalise_address(raw)
    if isinstance(raw, Address):
        raise TypeError(f"a {kind} identity needs a string, not an Address")
    if kind is IdentityKind.EMAIL:
        return normalise_email(raw)
    return normalise_token(raw)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def identity_hash(kind: IdentityKind, raw: str | Address) -> str:
    """The value stored in `orders_seen`, `risk_lists`, `sim_notifications`..."""
    return sha256_hex(normalise_identity(kind, raw))


@dataclass(frozen=True)
class OrderFingerprints:
    customer_hash: str
    email_hash: str
    card_hash: str
    device_hash: str
    shipping_address_hash: str
    billing_address_hash: str

    def by_kind(self) -> dict[IdentityKind, tuple[str, ...]]:
        """The hashes to look up in risk lists, per kind (both addresses count)."""
        addresses = tuple(dict.fromkeys((self.shipping_address_hash, self.billing_address_hash)))
        return {
            IdentityKind.EMAIL: (self.email_hash,),
            IdentityKind.CARD: (self.card_hash,),
            IdentityKind.DEVICE: (self.device_hash,),
            IdentityKind.ADDRESS: addresses,
            IdentityKind.CUSTOMER: (self.customer_hash,),
        }


def order_fingerprints(order: Order) -> OrderFingerprints:
    return OrderFingerprints(
        customer_hash=identity_hash(IdentityKind.CUSTOMER, order.customer.customer_id),
        email_hash=identity_hash(IdentityKind.EMAIL, order.customer.email),
        card_hash=identity_hash(IdentityKind.CARD, order.payment.card_fingerprint),
        device_hash=identity_hash(IdentityKind.DEVICE, order.device.device_id),
        shipping_address_hash=identity_hash(IdentityKind.ADDRESS, order.shipping_address),
        billing_address_hash=identity_hash(IdentityKind.ADDRESS, order.billing_address),
    )


# --------------------------------------------------------------------------
# Configuration data: thresholds per market, amounts per currency, weights.
# --------------------------------------------------------------------------


class AmountThresholds(StewardModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # From here on, no 3-D Secure or a brand-new account is a signal.
    high_value_minor: int = Field(ge=0)
    # High-resale goods (handbags, watches, jewellery) worth this much in one basket.
    high_resale_minor: int = Field(ge=0)


# Used when an order's currency is not its market's (a CH order paid in EUR).
# From the one table of every process's amount thresholds
# (domain/money_thresholds.py); a market's own values below equal that
# table's for its currency (tests/unit/test_money_thresholds.py).
AMOUNT_THRESHOLDS_BY_CURRENCY: Mapping[str, AmountThresholds] = {
    currency: AmountThresholds(
        high_value_minor=t.risk_high_value_minor, high_resale_minor=t.risk_high_resale_minor
    )
    for currency, t in MONEY_THRESHOLDS.items()
}
# An unknown currency: every order counts as high value (the 3-D Secure and
# new-account rules apply), and the basket rule falls back to quantities only.
UNKNOWN_CURRENCY_AMOUNTS = AmountThresholds(high_value_minor=0, high_resale_minor=2**62)


class MarketThresholds(StewardModel):
    """Where a market draws its lines. Scores at or above `review_at` go to a
    coordinator, at or above `decline_at` are declined without one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str
    review_at: int = Field(default=35, ge=1, le=100)
    decline_at: int = Field(default=85, ge=1, le=101)  # 101: never auto-decline on score
    high_value_minor: int = Field(default=500_000, ge=0)
    high_resale_minor: int = Field(default=1_000_000, ge=0)
    # Two or more units of one high-resale line look like stock for resale.
    high_resale_quantity: int = Field(default=2, ge=2)
    new_account_days: int = Field(default=30, ge=0)
    # Other orders in the previous 24 h (this order excluded) that trigger velocity.
    velocity_email: int = Field(default=3, ge=1)
    velocity_card: int = Field(default=3, ge=1)
    velocity_device: int = Field(default=4, ge=1)
    velocity_address: int = Field(default=4, ge=1)
    # Other distinct emails seen on this card in 24 h: card testing or a stolen card.
    velocity_emails_per_card: int = Field(default=2, ge=1)
    trusted_min_completed: int = Field(default=5, ge=1)
    serial_returner_min_returns: int = Field(default=3, ge=1)
    serial_returner_ratio: float = Field(default=0.5, gt=0)

    @model_validator(mode="after")
    def _review_before_decline(self) -> MarketThresholds:
        if self.review_at >= self.decline_at:
            raise ValueError("review_at must be lower than decline_at")
        return self

    def amounts_for(self, currency: str) -> AmountThresholds:
        if currency == self.currency:
            return AmountThresholds(
                high_value_minor=self.high_value_minor, high_resale_minor=self.high_resale_minor
            )
        return AMOUNT_THRESHOLDS_BY_CURRENCY.get(currency, UNKNOWN_CURRENCY_AMOUNTS)


DEFAULT_THRESHOLDS = MarketThresholds(currency="EUR")

MARKET_THRESHOLDS: Mapping[str, MarketThresholds] = {
    "FR": MarketThresholds(currency="EUR"),
    "IT": MarketThresholds(currency="EUR"),
    "DE": MarketThresholds(currency="EUR"),
    "CH": MarketThresholds(currency="CHF"),
    "GB": MarketThresholds(currency="GBP", high_value_minor=450_000, high_resale_minor=900_000),
    # Card-not-present fraud runs higher: review earlier, decline earlier.
    "US": MarketThresholds(
        currency="USD",
        review_at=30,
        decline_at=80,
        high_value_minor=550_000,
        high_resale_minor=1_100_000,
    ),
    # Cross-border daigou buying is common and mostly legitimate: more goes to
    # a person, nothing is declined on score alone.
    "CN": MarketThresholds(
        currency="CNY",
        decline_at=101,
        high_value_minor=4_000_000,
        high_resale_minor=8_000_000,
        high_resale_quantity=3,
    ),
    "JP": MarketThresholds(currency="JPY", high_value_minor=800_000, high_resale_minor=1_600_000),
    "AE": MarketThresholds(currency="AED", high_value_minor=2_000_000, high_resale_minor=4_000_000),
}


def thresholds_for(market: str) -> MarketThresholds:
    return MARKET_THRESHOLDS.get(market, DEFAULT_THRESHOLDS)


# Shipping destinations with a high chargeback rate in our own history
# (reshipping hubs). Illustrative configuration: the fraud team owns the list.
HIGH_RISK_DESTINATIONS: frozenset[str] = frozenset({"NG", "GH", "VN", "ID", "PK"})

# Points per reason. Blocklist hits are decisive on their own; the rest add
# up so that one weak signal does not send a good customer to review.
WEIGHTS: Mapping[ReasonCode, int] = {
    ReasonCode.VELOCITY_EMAIL: 15,
    ReasonCode.VELOCITY_CARD: 20,
    ReasonCode.VELOCITY_DEVICE: 15,
    ReasonCode.VELOCITY_ADDRESS: 10,
    ReasonCode.BLOCKLIST_EMAIL: 100,
    ReasonCode.BLOCKLIST_CARD: 100,
    ReasonCode.BLOCKLIST_DEVICE: 100,
    ReasonCode.BLOCKLIST_ADDRESS: 100,
    ReasonCode.BLOCKLIST_CUSTOMER: 100,
    ReasonCode.ALLOWLISTED_CUSTOMER: -25,
    ReasonCode.AVS_MISMATCH: 15,
    ReasonCode.CVV_MISMATCH: 35,
    ReasonCode.THREE_DS_FAILED: 40,
    ReasonCode.NO_3DS_HIGH_VALUE: 20,
    ReasonCode.BILLING_SHIPPING_COUNTRY_MISMATCH: 10,
    ReasonCode.CARD_COUNTRY_MISMATCH: 10,
    ReasonCode.IP_COUNTRY_MISMATCH: 10,
    ReasonCode.HIGH_RISK_DESTINATION: 20,
    ReasonCode.NEW_ACCOUNT_HIGH_VALUE: 20,
    ReasonCode.FREIGHT_FORWARDER: 25,
    ReasonCode.PRIOR_CHARGEBACKS: 30,
    ReasonCode.SERIAL_RETURNER: 10,
    ReasonCode.HIGH_RESALE_BASKET: 15,
    ReasonCode.TRUSTED_HISTORY: -15,
}
# A second chargeback is worse than the first; still one reason code.
REPEAT_CHARGEBACK_EXTRA = 15

_BLOCKLIST_CODES: Mapping[str, ReasonCode] = {
    IdentityKind.EMAIL: ReasonCode.BLOCKLIST_EMAIL,
    IdentityKind.CARD: ReasonCode.BLOCKLIST_CARD,
    IdentityKind.DEVICE: ReasonCode.BLOCKLIST_DEVICE,
    IdentityKind.ADDRESS: ReasonCode.BLOCKLIST_ADDRESS,
    IdentityKind.CUSTOMER: ReasonCode.BLOCKLIST_CUSTOMER,
}
# Reason codes are reported in declaration order, whatever order rules fire in,
# so equal assessments compare equal and reports group cleanly.
_CODE_ORDER: Mapping[ReasonCode, int] = {code: i for i, code in enumerate(ReasonCode)}


def band_for(score: int, thresholds: MarketThresholds) -> RiskBand:
    if score >= thresholds.decline_at:
        return RiskBand.HIGH
    if score >= thresholds.review_at:
        return RiskBand.MEDIUM
    return RiskBand.LOW


def _routing_for(score: int, thresholds: MarketThresholds) -> Routing:
    if score >= thresholds.decline_at:
        return Routing.AUTO_DECLINE
    if score >= thresholds.review_at:
        return Routing.REVIEW
    return Routing.AUTO_ACCEPT


def _high_resale_basket(order: Order, t: MarketThresholds, amounts: AmountThresholds) -> bool:
    resale_lines = [i for i in order.items if i.category in HIGH_RESALE_CATEGORIES]
    value = sum(i.unit_price_minor * i.quantity for i in resale_lines)
    return value >= amounts.high_resale_minor or any(
        i.quantity >= t.high_resale_quantity for i in resale_lines
    )


def _is_serial_returner(signals: CustomerSignals, t: MarketThresholds) -> bool:
    if signals.returns < t.serial_returner_min_returns:
        return False
    return signals.returns / max(signals.completed_orders, 1) >= t.serial_returner_ratio


def fired_rules(order: Order, signals: CustomerSignals, now: datetime) -> dict[ReasonCode, int]:
    """Every rule that fires, with its points (negative ones lower the score)."""
    t = thresholds_for(order.market)
    amounts = t.amounts_for(order.currency)
    total = order.total_minor
    high_value = total >= amounts.high_value_minor
    # A client advisor orders from the boutique by phone: the device and IP are
    # the boutique's and the payment is MOTO (outside 3-D Secure by law), so
    # those rules would only measure the boutique.
    remote = order.channel is not Channel.CLIENT_ADVISOR
    fired: dict[ReasonCode, int] = {}

    def fire(code: ReasonCode, extra: int = 0) -> None:
        fired[code] = WEIGHTS[code] + extra

    # Velocity (counts exclude this order, so a retried scoring sees the same numbers).
    if signals.orders_24h_by_email >= t.velocity_email:
        fire(ReasonCode.VELOCITY_EMAIL)
    if (
        signals.orders_24h_by_card >= t.velocity_card
        or signals.emails_24h_by_card >= t.velocity_emails_per_card
    ):
        fire(ReasonCode.VELOCITY_CARD)
    if remote and signals.orders_24h_by_device >= t.velocity_device:
        fire(ReasonCode.VELOCITY_DEVICE)
    if signals.orders_24h_by_address >= t.velocity_address:
        fire(ReasonCode.VELOCITY_ADDRESS)

    # Lists.
    for kind in signals.blocklisted:
        code = _BLOCKLIST_CODES.get(kind)
        if code is not None:
            fire(code)
    if signals.allowlisted:
        fire(ReasonCode.ALLOWLISTED_CUSTOMER)

    # Payment checks.
    if order.payment.avs_result is AvsResult.MISMATCH:
        fire(ReasonCode.AVS_MISMATCH)
    if order.payment.cvv_result is CvvResult.MISMATCH:
        fire(ReasonCode.CVV_MISMATCH)
    if order.payment.three_ds is ThreeDSOutcome.FAILED:
        fire(ReasonCode.THREE_DS_FAILED)
    elif remote and high_value and order.payment.three_ds is ThreeDSOutcome.NOT_PERFORMED:
        fire(ReasonCode.NO_3DS_HIGH_VALUE)

    # Geography.
    billing_country = order.billing_address.country
    shipping_country = order.shipping_address.country
    if billing_country != shipping_country:
        fire(ReasonCode.BILLING_SHIPPING_COUNTRY_MISMATCH)
    if order.payment.card_country != billing_country:
        fire(ReasonCode.CARD_COUNTRY_MISMATCH)
    ip_country = order.device.ip_country
    if remote and ip_country is not None and ip_country not in (billing_country, shipping_country):
        fire(ReasonCode.IP_COUNTRY_MISMATCH)
    if shipping_country in HIGH_RISK_DESTINATIONS:
        fire(ReasonCode.HIGH_RISK_DESTINATION)
    if signals.freight_forwarder_address:
        fire(ReasonCode.FREIGHT_FORWARDER)

    # The customer.
    account_age = now - order.customer.account_created_at
    if high_value and account_age < timedelta(days=t.new_account_days):
        fire(ReasonCode.NEW_ACCOUNT_HIGH_VALUE)
    if signals.chargebacks > 0:
        fire(
            ReasonCode.PRIOR_CHARGEBACKS, REPEAT_CHARGEBACK_EXTRA if signals.chargebacks > 1 else 0
        )
    serial_returner = _is_serial_returner(signals, t)
    if serial_returner:
        fire(ReasonCode.SERIAL_RETURNER)
    if _high_resale_basket(order, t, amounts):
        fire(ReasonCode.HIGH_RESALE_BASKET)
    if (
        signals.completed_orders >= t.trusted_min_completed
        and signals.chargebacks == 0
        and not serial_returner
    ):
        fire(ReasonCode.TRUSTED_HISTORY)
    return fired


def assess(order: Order, signals: CustomerSignals, now: datetime) -> RiskAssessment:
    """Score `order` for its market.

    `now` is the moment the facts are judged at (the scoring activity passes
    the order's `placed_at`, so a retry or a re-score gives the same answer).
    Any blocklist hit declines, whatever else fired: an allowlist lowers a
    score but never overrides a block.
    """
    t = thresholds_for(order.market)
    fired = fired_rules(order, signals, now)
    codes = sorted(fired, key=_CODE_ORDER.__getitem__)
    blocked = any(code in fired for code in _BLOCKLIST_CODES.values())
    score = 100 if blocked else max(0, min(100, sum(fired.values())))
    routing = Routing.AUTO_DECLINE if blocked else _routing_for(score, t)
    band = RiskBand.HIGH if blocked else band_for(score, t)
    return RiskAssessment(
        score=score,
        band=band,
        routing=routing,
        reason_codes=codes,
        rule_set_version=RULE_SET_VERSION,
    )
