"""Risk assessment types. The rules themselves live in domain/risk_rules.py and
are applied by the scoring activity, never by workflow code, so a threshold
change never breaks the replay of a running review."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from domain.common import StewardModel
from domain.orders import Order


class RiskBand(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Routing(StrEnum):
    """What the rule set recommends doing with the order."""

    AUTO_ACCEPT = "auto_accept"
    REVIEW = "review"
    AUTO_DECLINE = "auto_decline"


class ReasonCode(StrEnum):
    VELOCITY_EMAIL = "velocity_email"
    VELOCITY_CARD = "velocity_card"
    VELOCITY_DEVICE = "velocity_device"
    VELOCITY_ADDRESS = "velocity_address"
    BLOCKLIST_EMAIL = "blocklist_email"
    BLOCKLIST_CARD = "blocklist_card"
    BLOCKLIST_DEVICE = "blocklist_device"
    BLOCKLIST_ADDRESS = "blocklist_address"
    # Added after the first four: a customer account blocked as such (e.g. a
    # confirmed reseller), whatever email, card or device it uses next.
    BLOCKLIST_CUSTOMER = "blocklist_customer"
    ALLOWLISTED_CUSTOMER = "allowlisted_customer"
    AVS_MISMATCH = "avs_mismatch"
    CVV_MISMATCH = "cvv_mismatch"
    THREE_DS_FAILED = "three_ds_failed"
    NO_3DS_HIGH_VALUE = "no_3ds_high_value"
    BILLING_SHIPPING_COUNTRY_MISMATCH = "billing_shipping_country_mismatch"
    CARD_COUNTRY_MISMATCH = "card_country_mismatch"
    IP_COUNTRY_MISMATCH = "ip_country_mismatch"
    HIGH_RISK_DESTINATION = "high_risk_destination"
    NEW_ACCOUNT_HIGH_VALUE = "new_account_high_value"
    FREIGHT_FORWARDER = "freight_forwarder"
    PRIOR_CHARGEBACKS = "prior_chargebacks"
    SERIAL_RETURNER = "serial_returner"
    HIGH_RESALE_BASKET = "high_resale_basket"
    TRUSTED_HISTORY = "trusted_history"


class CustomerSignals(StewardModel):
    """What the store knows about this customer, card, device and address,
    loaded by the scoring activity before the rules run."""

    orders_24h_by_email: int = 0
    orders_24h_by_card: int = 0
    orders_24h_by_device: int = 0
    orders_24h_by_address: int = 0
    # Distinct emails seen on the same card in 24 h: a classic card-testing sign.
    emails_24h_by_card: int = 0
    completed_orders: int = 0
    chargebacks: int = 0
    returns: int = 0
    # "email", "card", "device", "address", "customer" (domain.risk_rules.IdentityKind)
    blocklisted: list[str] = Field(default_factory=list)
    allowlisted: bool = False
    freight_forwarder_address: bool = False


class RiskAssessment(StewardModel):
    score: int = Field(ge=0, le=100)
    band: RiskBand
    routing: Routing
    reason_codes: list[ReasonCode]
    rule_set_version: str


class ScoreOrderInput(StewardModel):
    order: Order
    # Issue 21: `order` is pseudonymised and its personal values are read from
    # this personal-data subject (store/order_subjects.py); None: in the order.
    subject_id: str | None = None


SCORE_ORDER = "score_order"
