"""Fulfilment rules: outbound QC triggers (versioned like the risk rules), the
sites' carrier capabilities and cut-offs, and the warehouse's timeline.

The QC rule set is evaluated in an activity (activities/fulfilment.py, at
release), never in workflow code: changing a threshold or a material never
breaks the replay of a running fulfilment, and the version it was decided by
is stored with the verdict. Bump `QC_RULE_SET_VERSION` on every change.

The site table (capabilities, cut-offs) is read by the update validators:
validators do not run on replay, so changing it only changes what is
accepted from now on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final

from pydantic import Field

from domain.common import StewardModel
from domain.money_thresholds import MONEY_THRESHOLDS, outbound_qc_from
from domain.orders import ItemCategory
from domain.risk_rules import HIGH_RISK_DESTINATIONS

# qc-2026.12.2: the exotic materials are read from the items' names (materials_named).
# qc-2026.12.3: the value threshold of every currency from domain/money_thresholds.py
# (HKD and SGD got their own; a currency without thresholds checks every order).
QC_RULE_SET_VERSION: Final = "qc-2026.12.3"


class QcRuleInput(StewardModel):
    """What the QC rules read: the goods, the value, the customer's profile,
    the destination. No personal data."""

    market: str
    currency: str
    amount_minor: int = Field(ge=0)
    destination_country: str
    categories: list[ItemCategory]
    materials: list[str] = Field(default_factory=list)
    first_order: bool = False
    vip: bool = False
    prior_dispute_or_claim: bool = False


class QcVerdict(StewardModel):
    needed: bool
    reasons: list[str] = Field(default_factory=list)
    rule_set_version: str


# Materials whose integrity a QA person checks before the parcel leaves.
EXOTIC_MATERIALS: Final = frozenset(
    {"crocodile", "alligator", "python", "ostrich", "lizard", "exotic_leather"}
)


def materials_named(name: str) -> list[str]:
    """The exotic materials a product's name names ("Kelly 28 Porosus
    Crocodile" -> ["crocodile"]): the order carries no material field, the
    catalogue's product names do."""
    return sorted(set(re.findall(r"[a-z]+", name.lower())) & EXOTIC_MATERIALS)


QC_CATEGORIES: Final = frozenset({ItemCategory.JEWELLERY, ItemCategory.WATCHES})
# Above this value (per order, in the order's currency) every order is checked:
# the `outbound_qc_minor` column of domain/money_thresholds.py (issue 15: every
# money threshold per currency, in one place). A currency without a row checks
# every order (qc-2026.12.1 and .2 used 1,000,000 minor units of any currency).
QC_VALUE_THRESHOLDS: Final[Mapping[str, int]] = {
    currency: t.outbound_qc_minor for currency, t in MONEY_THRESHOLDS.items()
}
# A first order is checked from this share of the value threshold on.
FIRST_ORDER_SHARE: Final = 0.5


def evaluate_qc(facts: QcRuleInput) -> QcVerdict:
    """Whether the order needs outbound QC, and why (stable reason codes)."""
    reasons: list[str] = []
    threshold = outbound_qc_from(facts.currency)
    for category in sorted(set(facts.categories) & QC_CATEGORIES):
        reasons.append(f"category:{category}")
    exotic = sorted({m.strip().lower() for m in facts.materials} & EXOTIC_MATERIALS)
    if exotic:
        reasons.append(f"material:{','.join(exotic)}")
    if facts.amount_minor >= threshold:
        reasons.append("value_above_threshold")
    if facts.first_order and facts.amount_minor >= threshold * FIRST_ORDER_SHARE:
        reasons.append("first_order_high_value")
    if facts.vip:
        reasons.append("vip_customer")
    if facts.prior_dispute_or_claim:
        reasons.append("prior_dispute_or_claim")
    if facts.destination_country in HIGH_RISK_DESTINATIONS:
        reasons.append("high_risk_destination")
    return QcVerdict(needed=bool(reasons), reasons=reasons, rule_set_version=QC_RULE_SET_VERSION)


# ------------------------------------------------------------------- sites


@dataclass(frozen=True)
class CarrierService:
    carrier: str
    service: str
    timed: bool = False  # offers delivery windows
    signature: bool = True
    white_glove: bool = False


@dataclass(frozen=True)
class Site:
    code: str
    # The carriers' daily collection: an order packed after it leaves the next day.
    cutoff: time
    services: tuple[CarrierService, ...]
    stores: frozenset[str]
    # The warehouse's timeline (simulator and bench): minutes from release.
    allocate_after: timedelta = timedelta(minutes=5)
    pick_duration: timedelta = timedelta(minutes=40)
    pack_duration: timedelta = timedelta(minutes=20)
    # Lead time a timed delivery needs after the next collection.
    timed_lead: timedelta = timedelta(hours=18)


SITES: Final[Mapping[str, Site]] = {
    "PAR-1": Site(
        code="PAR-1",
        cutoff=time(16, 0),
        services=(
            CarrierService("dhl", "express", timed=True),
            CarrierService("ups", "standard"),
            CarrierService("ups", "express"),
            CarrierService("delivengo", "white_glove", timed=True, white_glove=True),
        ),
        stores=frozenset({"PAR-RIVOLI", "PAR-MONTAIGNE", "LYS-REPUBLIQUE"}),
    ),
    "LON-1": Site(
        code="LON-1",
        cutoff=time(15, 30),
        services=(
            CarrierService("dhl", "express", timed=True),
            CarrierService("royal_mail", "special_delivery"),
            CarrierService("luxe_courier", "white_glove", timed=True, white_glove=True),
        ),
        stores=frozenset({"LON-BOND", "LON-SLOANE"}),
        pick_duration=timedelta(minutes=30),
    ),
    "NYC-1": Site(
        code="NYC-1",
        cutoff=time(17, 0),
        services=(
            CarrierService("fedex", "priority_overnight", timed=True),
            CarrierService("ups", "ground", signature=False),
            CarrierService("luxe_courier", "white_glove", timed=True, white_glove=True),
        ),
        stores=frozenset({"NYC-5TH", "NYC-SOHO"}),
        pick_duration=timedelta(minutes=50),
        pack_duration=timedelta(minutes=25),
    ),
}
DEFAULT_SITE: Final = "PAR-1"
SITE_BY_MARKET: Final[Mapping[str, str]] = {"GB": "LON-1", "US": "NYC-1", "CA": "NYC-1"}


def site_for(market: str) -> Site:
    return SITES[SITE_BY_MARKET.get(market, DEFAULT_SITE)]


def site(code: str) -> Site:
    return SITES.get(code) or SITES[DEFAULT_SITE]


def next_collection(site: Site, after: datetime) -> datetime:
    """The first carrier collection (the site's cut-off, UTC) at or after `after`."""
    today = datetime.combine(after.date(), site.cutoff, tzinfo=after.tzinfo)
    return today if after <= today else today + timedelta(days=1)


def arrangement_error(
    site: Site,
    *,
    kind: str,
    carrier: str | None,
    service: str | None,
    store_id: str | None,
    window_start: datetime | None,
    now: datetime,
) -> str | None:
    """Why the site cannot honour the arrangement, or None."""
    if kind == "named_carrier":
        offered = [s for s in site.services if s.carrier == carrier and s.service == service]
        if not offered:
            names = ", ".join(f"{s.carrier}/{s.service}" for s in site.services)
            return f"service: {carrier}/{service} is not offered from {site.code} ({names})"
    if kind == "timed":
        if not any(s.timed for s in site.services):
            return f"kind: {site.code} offers no timed delivery"
        assert window_start is not None
        earliest = next_collection(site, now) + site.timed_lead
        if window_start < earliest:
            return (
                f"window_start: the earliest window from {site.code} starts "
                f"{earliest:%Y-%m-%d %H:%M} UTC (next collection at "
                f"{site.cutoff:%H:%M} plus {int(site.timed_lead.total_seconds() // 3600)} h)"
            )
    if kind == "signature" and not any(s.signature for s in site.services):
        return f"kind: no carrier at {site.code} takes a signature"
    if kind == "collect_in_store" and store_id not in site.stores:
        return f"store_id: {store_id} is not served from {site.code}"
    return None
