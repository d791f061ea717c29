"""Realistic order traffic for the embedded stack, demos and load tests.

Generation is pure and seeded (`generate_traffic`, `generate_orders`): the same
seed, count and `now` give the same orders, so a demo or a bug report can be
replayed exactly. Sending (`send_orders`) and seeding the store with the
matching customer histories, blocklist entries and freight-forwarder addresses
(`seed_signals`) are separate steps the CLI runs in that order.

What the traffic looks like. Most orders are legitimate: returning clients
with a purchase history (some on the allowlist), new clients, gifts shipped
abroad, client-advisor orders from a boutique. A small share carries one of
the fraud patterns a luxury house actually sees, at rates in the range
reported for high-value card-not-present retail (a few percent of orders in
total):

- card testing: one stolen card tried under several fresh emails within
  minutes, on cheap lines, in bursts (velocity by card);
- freight forwarder: billed in one country, shipped to a reshipping warehouse;
- new account, high-value watch: an account opened minutes before a 10k+ order;
- AVS/CVV mismatch: the card's address or security code does not match;
- no 3-D Secure on a high-value basket;
- blocklisted device: a device already tied to confirmed fraud;
- high-risk destination: shipped to a reshipping hub country.

Personal data is invented: names from common-name lists, emails always
`firstname.lastname@example.com`, IPs from the documentation ranges
(RFC 5737), streets that exist but house numbers that are random.
"""

from __future__ import annotations

import asyncio
import random
import time
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

import asyncpg

from domain.orders import (
    Address,
    AvsResult,
    Channel,
    Customer,
    CvvResult,
    Device,
    ItemCategory,
    Order,
    OrderItem,
    Payment,
    ThreeDSOutcome,
)
from domain.risk_rules import HIGH_RISK_DESTINATIONS, IdentityKind, RiskList
from store import signals

_T = TypeVar("_T")


class FraudPattern(StrEnum):
    NONE = "none"
    CARD_TESTING = "card_testing"
    FREIGHT_FORWARDER = "freight_forwarder"
    NEW_ACCOUNT_WATCH = "new_account_watch"
    AVS_CVV_MISMATCH = "avs_cvv_mismatch"
    NO_3DS_HIGH_VALUE = "no_3ds_high_value"
    BLOCKLISTED_DEVICE = "blocklisted_device"
    HIGH_RISK_DESTINATION = "high_risk_destination"


# Share of *orders* carrying each pattern; the rest are legitimate. About 7.5 %
# in total: above a typical fashion site's fraud attempt rate, in line with what
# luxury (high-resale, high-ticket) merchants see, and enough for a coordinator
# to have a queue in a demo.
PATTERN_RATES: Mapping[FraudPattern, float] = {
    FraudPattern.CARD_TESTING: 0.015,
    FraudPattern.FREIGHT_FORWARDER: 0.010,
    FraudPattern.NEW_ACCOUNT_WATCH: 0.010,
    FraudPattern.AVS_CVV_MISMATCH: 0.015,
    FraudPattern.NO_3DS_HIGH_VALUE: 0.015,
    FraudPattern.BLOCKLISTED_DEVICE: 0.005,
    FraudPattern.HIGH_RISK_DESTINATION: 0.005,
}

# Card testers try one card a few times in a row before it is burnt.
CARD_TESTING_BURST = (3, 6)
AUTHORISATION_VALIDITY = timedelta(days=7)

MARKETS: tuple[str, ...] = ("FR", "GB", "IT", "DE", "US", "CN", "JP", "AE", "KR")
# Rough share of online luxury revenue by market for a European house.
MARKET_WEIGHTS: Mapping[str, float] = {
    "FR": 0.14,
    "GB": 0.12,
    "IT": 0.08,
    "DE": 0.10,
    "US": 0.22,
    "CN": 0.14,
    "JP": 0.08,
    "AE": 0.05,
    "KR": 0.07,
}
MARKET_CURRENCY: Mapping[str, str] = {
    "FR": "EUR",
    "IT": "EUR",
    "DE": "EUR",
    "GB": "GBP",
    "US": "USD",
    "CN": "CNY",
    "JP": "JPY",
    "AE": "AED",
    "KR": "KRW",
}


@dataclass(frozen=True)
class PriceRule:
    """How a house turns its euro price into a local price point."""

    per_eur: float  # local major units per euro, with the usual luxury market uplift
    round_to: int  # local major units: prices end on a round figure
    exponent: int  # minor units per major unit = 10**exponent (0 for JPY, KRW)

    def minor(self, eur: int) -> int:
        local = max(self.round_to, round(eur * self.per_eur / self.round_to) * self.round_to)
        return local * 10**self.exponent


PRICE_RULES: Mapping[str, PriceRule] = {
    "EUR": PriceRule(per_eur=1.0, round_to=5, exponent=2),
    "GBP": PriceRule(per_eur=0.88, round_to=5, exponent=2),
    "USD": PriceRule(per_eur=1.12, round_to=5, exponent=2),
    "CNY": PriceRule(per_eur=8.9, round_to=50, exponent=2),
    "JPY": PriceRule(per_eur=178.0, round_to=1000, exponent=0),
    "AED": PriceRule(per_eur=4.25, round_to=5, exponent=2),
    "KRW": PriceRule(per_eur=1620.0, round_to=10000, exponent=0),
}
# Flat express shipping, charged only on small baskets.
SHIPPING_EUR = 15
FREE_SHIPPING_FROM_EUR = 300


@dataclass(frozen=True)
class CatalogueItem:
    sku: str
    name: str
    category: ItemCategory
    price_eur: int
    serialised: bool = False


def _catalogue(table: str) -> tuple[CatalogueItem, ...]:
    """Rows of `sku | category | price in EUR | serialised | name`."""
    items = []
    for row in table.strip().splitlines():
        sku, category, price, serialised, name = (cell.strip() for cell in row.split("|"))
        items.append(
            CatalogueItem(sku, name, ItemCategory(category), int(price), serialised == "yes")
        )
    return tuple(items)


CATALOGUE: tuple[CatalogueItem, ...] = _catalogue(
    """
HB-TOTE-MM-NOIR    | handbags            |  2450 | no  | Tote MM, black grained calfskin
HB-TOP-25-GOLD     | handbags            |  5900 | no  | Top-handle bag 25, gold box calfskin
HB-MINI-XB-ROSE    | handbags            |  3100 | no  | Mini crossbody bag, rose lambskin
HB-SHLD-CNV-TAN    | handbags            |  2150 | no  | Shoulder bag, canvas and tan leather
HB-TRVL-50-CROC    | handbags            | 48000 | no  | Travel bag 50, matte crocodile
WA-AUTO-38-ST      | watches             |  7800 | yes | Automatic 38 mm, steel bracelet
WA-CHRONO-41-ST    | watches             | 12500 | yes | Chronograph 41 mm, steel
WA-DRESS-36-RG     | watches             | 24500 | yes | Dress watch 36 mm, rose gold
WA-DIVER-42-CER    | watches             | 10900 | yes | Diver 42 mm, black ceramic
WA-QP-40-PT        | watches             | 89000 | yes | Perpetual calendar 40 mm, platinum
JW-KNOT-BR-YG      | jewellery           |  6900 | yes | Love-knot bracelet, 18k yellow gold
JW-SOL-10-PT       | jewellery           | 18500 | yes | Solitaire ring 1.0 ct, platinum
JW-STUD-05-WG      | jewellery           |  5400 | yes | Diamond stud earrings 0.5 ct, white gold
JW-PAVE-PD-WG      | jewellery           |  3800 | yes | Pavé pendant, 18k white gold
RTW-COAT-CSH-CAM   | ready_to_wear       |  4200 | no  | Double-faced cashmere coat, camel
RTW-BLOUSE-SLK-IV  | ready_to_wear       |  1150 | no  | Silk crêpe blouse, ivory
RTW-JKT-WOOL-NVY   | ready_to_wear       |  2650 | no  | Tailored wool jacket, navy
RTW-SWT-CSH-GRY    | ready_to_wear       |  1250 | no  | Cashmere crew-neck sweater, grey
SH-BOOT-ANK-NOIR   | shoes               |  1250 | no  | Leather ankle boots, black
SH-LOAF-CALF-BRN   | shoes               |   890 | no  | Calfskin loafers, brown
SH-PUMP-85-SAT     | shoes               |   790 | no  | Satin pumps 85, midnight
SH-SNKR-LTH-WHT    | shoes               |   690 | no  | Leather sneakers, white
SLG-CARD-CALF-NOIR | small_leather_goods |   350 | no  | Card holder, black calfskin
SLG-WAL-LONG-ROUGE | small_leather_goods |   720 | no  | Long wallet, red grained leather
SLG-KEY-POUCH-TAN  | small_leather_goods |   290 | no  | Key pouch, tan calfskin
AC-SCARF-90-SLK    | accessories         |   490 | no  | Silk twill scarf 90
AC-BELT-35-REV     | accessories         |   620 | no  | Reversible leather belt 35 mm
AC-SUN-ACE-HAV     | accessories         |   450 | no  | Acetate sunglasses, havana
AC-STOLE-CSH       | accessories         |   890 | no  | Cashmere stole
FR-EDP-100         | fragrance           |   210 | no  | Eau de parfum 100 ml
FR-EDT-50          | fragrance           |   135 | no  | Eau de toilette 50 ml
FR-CANDLE-220      | fragrance           |    95 | no  | Scented candle 220 g
"""
)

# What legitimate clients put in their baskets, by category.
LEGIT_CATEGORY_WEIGHTS: Mapping[ItemCategory, float] = {
    ItemCategory.HANDBAGS: 0.22,
    ItemCategory.WATCHES: 0.04,
    ItemCategory.JEWELLERY: 0.06,
    ItemCategory.READY_TO_WEAR: 0.18,
    ItemCategory.SHOES: 0.14,
    ItemCategory.SMALL_LEATHER_GOODS: 0.14,
    ItemCategory.ACCESSORIES: 0.14,
    ItemCategory.FRAGRANCE: 0.08,
}
# The few very expensive lines are rare in any basket.
_RARE_SKUS = frozenset({"HB-TRVL-50-CROC", "WA-QP-40-PT"})
_CHEAP_CATEGORIES = (
    ItemCategory.FRAGRANCE,
    ItemCategory.SMALL_LEATHER_GOODS,
    ItemCategory.ACCESSORIES,
)


@dataclass(frozen=True)
class Place:
    city: str
    postal_code: str
    region: str | None
    streets: tuple[str, ...]


# Streets where luxury clients live or boutiques stand; house numbers are random.
PLACES: Mapping[str, tuple[Place, ...]] = {
    "FR": (
        Place(
            "Paris",
            "75008",
            "Île-de-France",
            ("Avenue Montaigne", "Rue du Faubourg Saint-Honoré", "Avenue George V"),
        ),
        Place(
            "Paris",
            "75016",
            "Île-de-France",
            ("Avenue Victor Hugo", "Rue de la Pompe", "Avenue Foch"),
        ),
        Place(
            "Lyon", "69002", "Auvergne-Rhône-Alpes", ("Rue de la République", "Quai Saint-Antoine")
        ),
        Place(
            "Nice",
            "06000",
            "Provence-Alpes-Côte d'Azur",
            ("Promenade des Anglais", "Boulevard Victor Hugo"),
        ),
        Place(
            "Bordeaux", "33000", "Nouvelle-Aquitaine", ("Cours de l'Intendance", "Allées de Tourny")
        ),
    ),
    "GB": (
        Place(
            "London", "W1K 2TY", None, ("Mount Street", "South Audley Street", "Grosvenor Square")
        ),
        Place("London", "SW1X 9LA", None, ("Sloane Street", "Cadogan Place", "Pont Street")),
        Place("London", "NW3 6JX", None, ("Hampstead High Street", "Heath Street")),
        Place("Manchester", "M2 4LQ", None, ("King Street", "Deansgate")),
        Place("Edinburgh", "EH2 2PF", None, ("George Street", "Queen Street")),
    ),
    "IT": (
        Place("Milano", "20121", "MI", ("Via Monte Napoleone", "Via della Spiga", "Corso Venezia")),
        Place("Roma", "00187", "RM", ("Via dei Condotti", "Via Frattina", "Via del Babuino")),
        Place("Firenze", "50123", "FI", ("Via de' Tornabuoni", "Via della Vigna Nuova")),
        Place("Napoli", "80121", "NA", ("Via Chiaia", "Riviera di Chiaia")),
    ),
    "DE": (
        Place("München", "80539", "Bayern", ("Maximilianstraße", "Residenzstraße")),
        Place("Berlin", "10719", "Berlin", ("Kurfürstendamm", "Fasanenstraße", "Uhlandstraße")),
        Place("Düsseldorf", "40212", "Nordrhein-Westfalen", ("Königsallee", "Benrather Straße")),
        Place("Hamburg", "20354", "Hamburg", ("Neuer Wall", "Jungfernstieg", "Poststraße")),
    ),
    "US": (
        Place("New York", "10022", "NY", ("Madison Avenue", "Park Avenue", "East 57th Street")),
        Place("New York", "10028", "NY", ("Fifth Avenue", "East 86th Street")),
        Place("Beverly Hills", "90210", "CA", ("North Rodeo Drive", "North Canon Drive")),
        Place("Miami Beach", "33139", "FL", ("Collins Avenue", "Ocean Drive")),
        Place("Chicago", "60611", "IL", ("North Michigan Avenue", "East Oak Street")),
        Place("Dallas", "75205", "TX", ("Beverly Drive", "Armstrong Avenue")),
    ),
    "CN": (
        Place("Shanghai", "200040", "Shanghai", ("Nanjing West Road", "Huaihai Middle Road")),
        Place("Beijing", "100020", "Beijing", ("Jianguo Road", "Sanlitun Road")),
        Place("Shenzhen", "518048", "Guangdong", ("Shennan Avenue", "Fuhua Road")),
        Place("Chengdu", "610021", "Sichuan", ("Chunxi Road", "Hongxing Road")),
        Place("Hangzhou", "310006", "Zhejiang", ("Yan'an Road", "Hubin Road")),
    ),
    "JP": (
        Place("Chuo-ku, Tokyo", "104-0061", "Tokyo", ("Ginza", "Tsukiji")),
        Place("Minato-ku, Tokyo", "107-0062", "Tokyo", ("Minami-Aoyama", "Kita-Aoyama")),
        Place("Shibuya-ku, Tokyo", "150-0001", "Tokyo", ("Jingumae",)),
        Place("Chuo-ku, Osaka", "542-0085", "Osaka", ("Shinsaibashisuji",)),
        Place("Naka-ku, Nagoya", "460-0008", "Aichi", ("Sakae",)),
    ),
    "AE": (
        # The UAE has no postal codes; checkout forms send "00000".
        Place(
            "Dubai", "00000", "Dubai", ("Jumeirah Beach Road", "Al Wasl Road", "Sheikh Zayed Road")
        ),
        Place("Dubai", "00000", "Dubai", ("Emirates Hills", "Palm Jumeirah Frond")),
        Place("Abu Dhabi", "00000", "Abu Dhabi", ("Corniche Road", "Saadiyat Island")),
    ),
    "KR": (
        Place("Gangnam-gu, Seoul", "06015", "Seoul", ("Apgujeong-ro", "Dosan-daero")),
        Place("Jung-gu, Seoul", "04539", "Seoul", ("Myeongdong-gil", "Namdaemun-ro")),
        Place("Yongsan-gu, Seoul", "04348", "Seoul", ("Itaewon-ro", "Hannam-daero")),
        Place("Haeundae-gu, Busan", "48058", "Busan", ("Centum-jungang-ro", "Marine City 2-ro")),
    ),
}

# Reshipping hubs with a high chargeback rate (domain.risk_rules.HIGH_RISK_DESTINATIONS).
HIGH_RISK_PLACES: Mapping[str, tuple[Place, ...]] = {
    "NG": (Place("Lagos", "101241", "Lagos", ("Adeola Odeku Street", "Akin Adesola Street")),),
    "GH": (Place("Accra", "GA-183", "Greater Accra", ("Oxford Street", "Ring Road East")),),
    "VN": (Place("Ho Chi Minh City", "700000", None, ("Dong Khoi Street", "Le Thanh Ton Street")),),
    "ID": (Place("Jakarta", "10310", "DKI Jakarta", ("Jalan M.H. Thamrin", "Jalan Sudirman")),),
    "PK": (Place("Karachi", "75600", "Sindh", ("Khayaban-e-Ittehad", "Zamzama Boulevard")),),
}


@dataclass(frozen=True)
class Forwarder:
    name: str
    address: Address


# Invented reshipping warehouses in sales-tax-free US states, where forwarders
# cluster. Every client of a forwarder gets the same street address with their
# own suite number, which is why the store matches on line1 + postal code.
FORWARDERS: tuple[Forwarder, ...] = (
    Forwarder(
        "TransHub Parcel Forwarding",
        Address(
            line1="305 Airport Industrial Road",
            city="New Castle",
            postal_code="19720",
            region="DE",
            country="US",
        ),
    ),
    Forwarder(
        "Willamette Reship",
        Address(
            line1="7400 NE Alderwood Road",
            city="Portland",
            postal_code="97218",
            region="OR",
            country="US",
        ),
    ),
    Forwarder(
        "Delmarva Export Services",
        Address(
            line1="1 Commerce Drive",
            city="Wilmington",
            postal_code="19801",
            region="DE",
            country="US",
        ),
    ),
    Forwarder(
        "Granite State Forwarders",
        Address(
            line1="18 Pease Boulevard",
            city="Portsmouth",
            postal_code="03801",
            region="NH",
            country="US",
        ),
    ),
)


def _names(by_market: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    return {m: tuple(n.strip() for n in text.split(",")) for m, text in by_market.items()}


FIRST_NAMES: Mapping[str, tuple[str, ...]] = _names(
    {
        "FR": "Camille, Louise, Hugo, Léa, Arthur, Chloé, Gabriel, Inès, Jules, Manon, Élise",
        "GB": "Olivia, Amelia, George, Charlotte, Henry, Isla, Oliver, Sophie, Edward, Harriet",
        "IT": "Giulia, Francesca, Lorenzo, Alessandro, Chiara, Matteo, Sofia, Leonardo, Beatrice",
        "DE": "Sophie, Maximilian, Hannah, Felix, Charlotte, Leon, Marie, Paul, Clara, Konstantin",
        "US": "Emma, Madison, Ethan, Olivia, Michael, Ava, William, Grace, Alexander, Natalie",
        "CN": "Wei, Jing, Xinyi, Hao, Yutong, Zihan, Mei, Jun, Ruoxi, Chen",
        "JP": "Yuki, Haruto, Sakura, Ren, Aoi, Hina, Sota, Yui, Kenji, Mio",
        "AE": "Fatima, Mohammed, Aisha, Omar, Mariam, Khalid, Noora, Hamdan, Layla, Saeed",
        "KR": "Minjun, Seoyeon, Jiwoo, Hayoon, Doyun, Jiho, Soojin, Yuna, Hyunwoo, Eunji",
    }
)
LAST_NAMES: Mapping[str, tuple[str, ...]] = _names(
    {
        "FR": "Durand, Lefèvre, Moreau, Laurent, Girard, Bonnet, Dupont, Fontaine, Chevalier",
        "GB": "Smith, Harrison, Whitmore, Ashford, Clarke, Fletcher, Hughes, Pemberton, Wright",
        "IT": "Rossi, Bianchi, Ferrari, Esposito, Romano, Colombo, Ricci, Marino, Greco, Conti",
        "DE": "Müller, Schmidt, Schneider, Fischer, Weber, Wagner, Becker, Hoffmann, Schäfer",
        "US": "Johnson, Williams, Brown, Miller, Davis, Anderson, Taylor, Thompson, Carter",
        "CN": "Wang, Li, Zhang, Liu, Chen, Yang, Huang, Zhao, Wu, Zhou",
        "JP": "Sato, Suzuki, Takahashi, Tanaka, Watanabe, Ito, Yamamoto, Nakamura, Kobayashi",
        "AE": "Al Maktoum, Al Mansoori, Al Falasi, Al Shamsi, Al Suwaidi, Al Mazrouei, Al Ketbi",
        "KR": "Kim, Lee, Park, Choi, Jung, Kang, Cho, Yoon, Jang, Lim",
    }
)
PHONE_PREFIX: Mapping[str, str] = {
    "FR": "+33 6",
    "GB": "+44 7700",
    "IT": "+39 347",
    "DE": "+49 151",
    "US": "+1 212",
    "CN": "+86 138",
    "JP": "+81 90",
    "AE": "+971 50",
    "KR": "+82 10",
}
# Documentation address ranges (RFC 5737): realistic shape, routable nowhere.
_IP_PREFIXES = ("192.0.2", "198.51.100", "203.0.113")


# ----------------------------------------------------------------- results


@dataclass(frozen=True)
class SimulatedOrder:
    order: Order
    pattern: FraudPattern


@dataclass(frozen=True)
class CustomerHistorySeed:
    customer_id: str
    completed_orders: int
    chargebacks: int
    returns: int


@dataclass(frozen=True)
class RiskListSeed:
    list: RiskList
    kind: IdentityKind
    value: str  # the clear value; the store hashes it (domain.risk_rules.identity_hash)
    reason: str


@dataclass(frozen=True)
class Traffic:
    """Orders in sending order, plus what the store must know before they are scored."""

    orders: list[SimulatedOrder]
    histories: list[CustomerHistorySeed] = field(default_factory=list)
    risk_lists: list[RiskListSeed] = field(default_factory=list)
    forwarders: tuple[Forwarder, ...] = FORWARDERS

    def pattern_counts(self) -> Counter[FraudPattern]:
        return Counter(o.pattern for o in self.orders)


# --------------------------------------------------------------- generation


def _ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


@dataclass
class _Client:
    customer: Customer
    market: str
    home: Address
    card_fingerprint: str
    card_country: str
    device_id: str
    history: CustomerHistorySeed | None


class _Generator:
    def __init__(self, seed: int, now: datetime) -> None:
        # A private Random: generation never touches the global RNG, and the
        # same seed always gives the same traffic.
        self.rng = random.Random(seed)
        self.seed = seed
        self.now = now
        self.order_number = 0
        self.customer_number = 0
        self.clients: dict[str, list[_Client]] = {m: [] for m in MARKETS}
        self.histories: list[CustomerHistorySeed] = []
        self.risk_lists: list[RiskListSeed] = []
        # Devices of a fraud ring the fraud team already blocked.
        self.blocked_devices = [self._token("dev") for _ in range(6)]
        for device in self.blocked_devices:
            self.risk_lists.append(
                RiskListSeed(
                    RiskList.BLOCK,
                    IdentityKind.DEVICE,
                    device,
                    "device tied to confirmed fraud ring",
                )
            )

    # -- small helpers

    def _token(self, prefix: str, length: int = 16) -> str:
        return f"{prefix}_{self.rng.getrandbits(length * 4):0{length}x}"

    def _weighted(self, weights: Mapping[_T, float]) -> _T:
        keys = list(weights)
        return self.rng.choices(keys, weights=[weights[k] for k in keys])[0]

    def _ip(self) -> str:
        return f"{self.rng.choice(_IP_PREFIXES)}.{self.rng.randint(1, 254)}"

    def _address(self, country: str, places: Mapping[str, tuple[Place, ...]] = PLACES) -> Address:
        place = self.rng.choice(places[country])
        street = self.rng.choice(place.streets)
        number = self.rng.randint(1, 180)
        if country in ("FR", "IT", "DE"):
            line1 = f"{number} {street}" if country == "FR" else f"{street} {number}"
        elif country == "JP":
            chome, block, house = (self.rng.randint(1, n) for n in (7, 20, 15))
            line1 = f"{street} {chome}-{block}-{house}"
        elif country == "AE":
            line1 = f"Villa {number}, {street}"
        else:
            line1 = f"{number} {street}"
        line2 = self.rng.choice([None, None, f"Apt {self.rng.randint(1, 40)}"])
        return Address(
            line1=line1,
            line2=line2,
            city=place.city,
            postal_code=place.postal_code,
            region=place.region,
            country=country,
        )

    def _name(self, market: str) -> tuple[str, str]:
        return self.rng.choice(FIRST_NAMES[market]), self.rng.choice(LAST_NAMES[market])

    def _new_customer(self, market: str, account_age: timedelta, placed_at: datetime) -> Customer:
        self.customer_number += 1
        first, last = self._name(market)
        return Customer(
            customer_id=f"C{self.seed % 100000:05d}-{self.customer_number:06d}",
            email=f"{_ascii_slug(first)}.{_ascii_slug(last)}@example.com",
            full_name=f"{first} {last}",
            phone=f"{PHONE_PREFIX[market]} {self.rng.randint(100, 999)} "
            f"{self.rng.randint(1000, 9999)}",
            account_created_at=placed_at - account_age,
        )

    def _client(self, market: str, placed_at: datetime, *, returning: bool) -> _Client:
        """A returning client (reused, with a history in the store) or a new one."""
        pool = self.clients[market]
        if returning and len(pool) >= 3 and self.rng.random() < 0.6:
            return self.rng.choice(pool)
        if returning:
            age = timedelta(days=self.rng.randint(120, 9 * 365))
        else:
            age = timedelta(days=self.rng.randint(0, 60), minutes=self.rng.randint(1, 1440))
        client = _Client(
            customer=self._new_customer(market, age, placed_at),
            market=market,
            home=self._address(market),
            card_fingerprint=self._token("fp"),
            card_country=market,
            device_id=self._token("dev"),
            history=None,
        )
        if returning:
            client.history = self._history_for(client)
            self.histories.append(client.history)
            pool.append(client)
        return client

    def _history_for(self, client: _Client) -> CustomerHistorySeed:
        completed = self.rng.choice([1, 2, 3, 4, 6, 8, 12, 20, 35])
        roll = self.rng.random()
        chargebacks = 1 if roll < 0.03 else 0
        # A few clients return most of what they buy (bracketing sizes).
        returns = (
            max(3, int(completed * 0.7)) if roll > 0.95 else self.rng.randint(0, completed // 4)
        )
        if completed >= 12 and self.rng.random() < 0.4:
            # Very important clients known to the boutique teams.
            self.risk_lists.append(
                RiskListSeed(
                    RiskList.ALLOW,
                    IdentityKind.CUSTOMER,
                    client.customer.customer_id,
                    "VIC known to boutique client advisors",
                )
            )
        return CustomerHistorySeed(
            customer_id=client.customer.customer_id,
            completed_orders=completed,
            chargebacks=chargebacks,
            returns=returns,
        )

    def _pick_item(self, categories: Mapping[ItemCategory, float]) -> CatalogueItem:
        category = self._weighted(categories)
        lines = [c for c in CATALOGUE if c.category is category]
        weights = [0.05 if c.sku in _RARE_SKUS else 1.0 for c in lines]
        return self.rng.choices(lines, weights=weights)[0]

    def _line(self, item: CatalogueItem, currency: str, quantity: int = 1) -> OrderItem:
        serial = f"SN{self.rng.randint(10**7, 10**8 - 1)}" if item.serialised else None
        return OrderItem(
            sku=item.sku,
            name=item.name,
            category=item.category,
            unit_price_minor=PRICE_RULES[currency].minor(item.price_eur),
            quantity=quantity,
            serial_number=serial if quantity == 1 else None,
        )

    def _legit_basket(self, currency: str) -> list[OrderItem]:
        count = self.rng.choices([1, 2, 3], weights=[0.7, 0.22, 0.08])[0]
        chosen: dict[str, CatalogueItem] = {}
        while len(chosen) < count:
            item = self._pick_item(LEGIT_CATEGORY_WEIGHTS)
            chosen[item.sku] = item
        return [self._line(item, currency) for item in chosen.values()]

    def _shipping(self, items: Sequence[OrderItem], currency: str) -> int:
        rule = PRICE_RULES[currency]
        total = sum(i.unit_price_minor * i.quantity for i in items)
        if total >= rule.minor(FREE_SHIPPING_FROM_EUR):
            return 0
        return rule.minor(SHIPPING_EUR)

    def _next_order_id(self, market: str) -> str:
        self.order_number += 1
        return f"SIM-{market}-{self.seed % 100000:05d}-{self.order_number:06d}"

    def _order(
        self,
        *,
        market: str,
        customer: Customer,
        billing: Address,
        shipping: Address,
        items: list[OrderItem],
        placed_at: datetime,
        card_fingerprint: str,
        card_country: str,
        device_id: str,
        ip_country: str,
        channel: Channel = Channel.WEB,
        avs: AvsResult | None = None,
        cvv: CvvResult = CvvResult.MATCH,
        three_ds: ThreeDSOutcome | None = None,
    ) -> Order:
        currency = MARKET_CURRENCY[market]
        shipping_minor = self._shipping(items, currency)
        total = sum(i.unit_price_minor * i.quantity for i in items) + shipping_minor
        if avs is None:
            # AVS is a US/GB/CA check; elsewhere issuers mostly do not answer.
            avs = AvsResult.MATCH if billing.country in ("US", "GB") else AvsResult.UNAVAILABLE
        if three_ds is None:
            three_ds = self._legit_three_ds(market, channel)
        authorised_at = placed_at + timedelta(seconds=self.rng.randint(2, 40))
        return Order(
            order_id=self._next_order_id(market),
            market=market,
            channel=channel,
            currency=currency,
            placed_at=placed_at,
            customer=customer,
            billing_address=billing,
            shipping_address=shipping,
            items=items,
            shipping_minor=shipping_minor,
            payment=Payment(
                provider="simulated",
                authorisation_ref=self._token("auth", 20),
                amount_minor=total,
                currency=currency,
                card_fingerprint=card_fingerprint,
                card_country=card_country,
                avs_result=avs,
                cvv_result=cvv,
                three_ds=three_ds,
                authorised_at=authorised_at,
                authorisation_expires_at=authorised_at + AUTHORISATION_VALIDITY,
            ),
            device=Device(device_id=device_id, ip_address=self._ip(), ip_country=ip_country),
        )

    def _legit_three_ds(self, market: str, channel: Channel) -> ThreeDSOutcome:
        if channel is Channel.CLIENT_ADVISOR:
            return ThreeDSOutcome.NOT_PERFORMED  # phone orders (MOTO) are outside 3-D Secure
        if market in ("FR", "IT", "DE", "GB"):
            # PSD2 strong customer authentication: nearly always authenticated.
            return ThreeDSOutcome.AUTHENTICATED
        return self.rng.choices(
            [ThreeDSOutcome.AUTHENTICATED, ThreeDSOutcome.ATTEMPTED],
            weights=[0.6, 0.4],
        )[0]

    # -- patterns

    def legit(self, placed_at: datetime) -> list[SimulatedOrder]:
        market = self._weighted(MARKET_WEIGHTS)
        client = self._client(market, placed_at, returning=self.rng.random() < 0.55)
        channel = self.rng.choices(
            [Channel.WEB, Channel.APP, Channel.CLIENT_ADVISOR], weights=[0.6, 0.3, 0.1]
        )[0]
        shipping = client.home
        if self.rng.random() < 0.04:
            # A gift to family abroad: a weak signal on its own.
            shipping = self._address(self.rng.choice([m for m in MARKETS if m != market]))
        elif self.rng.random() < 0.1:
            shipping = self._address(market)  # office or second home
        order = self._order(
            market=market,
            customer=client.customer,
            billing=client.home,
            shipping=shipping,
            items=self._legit_basket(MARKET_CURRENCY[market]),
            placed_at=placed_at,
            card_fingerprint=client.card_fingerprint,
            card_country=client.card_country,
            device_id=client.device_id,
            ip_country=market,
            channel=channel,
        )
        return [SimulatedOrder(order, FraudPattern.NONE)]

    def card_testing(self, placed_at: datetime, remaining: int) -> list[SimulatedOrder]:
        # One stolen card, issued abroad, tried under fresh identities on cheap
        # lines; the burst stops when the card is burnt.
        market = self._weighted(MARKET_WEIGHTS)
        card = self._token("fp")
        card_country = self.rng.choice([m for m in MARKETS if m != market])
        device = self._token("dev")
        size = min(remaining, self.rng.randint(*CARD_TESTING_BURST))
        out: list[SimulatedOrder] = []
        for n in range(size):
            customer = self._new_customer(
                market, timedelta(minutes=self.rng.randint(1, 30)), placed_at
            )
            home = self._address(market)
            item = self._pick_item({c: 1.0 for c in _CHEAP_CATEGORIES})
            order = self._order(
                market=market,
                customer=customer,
                billing=home,
                shipping=home,
                items=[self._line(item, MARKET_CURRENCY[market])],
                placed_at=placed_at + timedelta(seconds=45 * n + self.rng.randint(0, 30)),
                card_fingerprint=card,
                card_country=card_country,
                device_id=device if self.rng.random() < 0.7 else self._token("dev"),
                ip_country=card_country,
                cvv=CvvResult.MISMATCH if self.rng.random() < 0.3 else CvvResult.MATCH,
            )
            out.append(SimulatedOrder(order, FraudPattern.CARD_TESTING))
        return out

    def freight_forwarder(self, placed_at: datetime) -> list[SimulatedOrder]:
        market = self.rng.choice(["GB", "FR", "DE", "IT", "US"])
        customer = self._new_customer(market, timedelta(days=self.rng.randint(0, 20)), placed_at)
        billing = self._address(market)
        forwarder = self.rng.choice(FORWARDERS)
        suite = f"Suite FW-{self.rng.randint(10000, 99999)}"
        shipping = forwarder.address.model_copy(update={"line2": suite})
        items = [
            self._line(
                self._pick_item({ItemCategory.HANDBAGS: 0.6, ItemCategory.JEWELLERY: 0.4}),
                MARKET_CURRENCY[market],
            )
        ]
        order = self._order(
            market=market,
            customer=customer,
            billing=billing,
            shipping=shipping,
            items=items,
            placed_at=placed_at,
            card_fingerprint=self._token("fp"),
            card_country=market,
            device_id=self._token("dev"),
            ip_country=market,
        )
        return [SimulatedOrder(order, FraudPattern.FREIGHT_FORWARDER)]

    def new_account_watch(self, placed_at: datetime) -> list[SimulatedOrder]:
        market = self._weighted(MARKET_WEIGHTS)
        # The account was opened for this order.
        customer = self._new_customer(
            market, timedelta(minutes=self.rng.randint(3, 240)), placed_at
        )
        home = self._address(market)
        watches = [
            c for c in CATALOGUE if c.category is ItemCategory.WATCHES and c.price_eur >= 10000
        ]
        item = self.rng.choice(watches)
        order = self._order(
            market=market,
            customer=customer,
            billing=home,
            shipping=home,
            items=[self._line(item, MARKET_CURRENCY[market])],
            placed_at=placed_at,
            card_fingerprint=self._token("fp"),
            card_country=market,
            device_id=self._token("dev"),
            ip_country=market,
        )
        return [SimulatedOrder(order, FraudPattern.NEW_ACCOUNT_WATCH)]

    def avs_cvv_mismatch(self, placed_at: datetime) -> list[SimulatedOrder]:
        # AVS answers only where issuers support it; a CVV mismatch is universal.
        market = self.rng.choice(["US", "GB", "US", "GB", "FR", "DE"])
        client = self._client(market, placed_at, returning=False)
        kind = self.rng.choice(["both", "cvv", "avs"])
        avs = AvsResult.MISMATCH if kind in ("both", "avs") and market in ("US", "GB") else None
        cvv = CvvResult.MISMATCH if kind in ("both", "cvv") or avs is None else CvvResult.MATCH
        order = self._order(
            market=market,
            customer=client.customer,
            billing=client.home,
            shipping=client.home,
            items=self._legit_basket(MARKET_CURRENCY[market]),
            placed_at=placed_at,
            card_fingerprint=client.card_fingerprint,
            card_country=market,
            device_id=client.device_id,
            ip_country=market,
            avs=avs,
            cvv=cvv,
        )
        return [SimulatedOrder(order, FraudPattern.AVS_CVV_MISMATCH)]

    def no_3ds_high_value(self, placed_at: datetime) -> list[SimulatedOrder]:
        # Outside the EU's strong authentication, a merchant may skip 3-D
        # Secure; fraudsters pick those markets for high tickets.
        market = self.rng.choice(["US", "US", "AE", "CN", "JP", "KR"])
        client = self._client(market, placed_at, returning=False)
        lines = [
            c
            for c in CATALOGUE
            if c.category in (ItemCategory.HANDBAGS, ItemCategory.JEWELLERY, ItemCategory.WATCHES)
            and c.price_eur >= 5000
            and c.sku not in _RARE_SKUS
        ]
        items = [self._line(self.rng.choice(lines), MARKET_CURRENCY[market])]
        if self.rng.random() < 0.4:
            items.append(
                self._line(self._pick_item(LEGIT_CATEGORY_WEIGHTS), MARKET_CURRENCY[market])
            )
            if items[0].sku == items[1].sku:
                items.pop()
        order = self._order(
            market=market,
            customer=client.customer,
            billing=client.home,
            shipping=client.home,
            items=items,
            placed_at=placed_at,
            card_fingerprint=client.card_fingerprint,
            card_country=market,
            device_id=client.device_id,
            ip_country=self.rng.choice([market, market, "GB", "NG"]) if market != "GB" else "GB",
            three_ds=ThreeDSOutcome.NOT_PERFORMED,
        )
        return [SimulatedOrder(order, FraudPattern.NO_3DS_HIGH_VALUE)]

    def blocklisted_device(self, placed_at: datetime) -> list[SimulatedOrder]:
        market = self._weighted(MARKET_WEIGHTS)
        client = self._client(market, placed_at, returning=False)
        order = self._order(
            market=market,
            customer=client.customer,
            billing=client.home,
            shipping=client.home,
            items=self._legit_basket(MARKET_CURRENCY[market]),
            placed_at=placed_at,
            card_fingerprint=client.card_fingerprint,
            card_country=market,
            device_id=self.rng.choice(self.blocked_devices),
            ip_country=market,
        )
        return [SimulatedOrder(order, FraudPattern.BLOCKLISTED_DEVICE)]

    def high_risk_destination(self, placed_at: datetime) -> list[SimulatedOrder]:
        market = self.rng.choice(["GB", "FR", "DE", "US", "IT"])
        client = self._client(market, placed_at, returning=False)
        # Follow the fraud team's current list (domain.risk_rules) where we have streets.
        destinations = sorted(set(HIGH_RISK_PLACES) & HIGH_RISK_DESTINATIONS) or sorted(
            HIGH_RISK_PLACES
        )
        destination = self.rng.choice(destinations)
        order = self._order(
            market=market,
            customer=client.customer,
            billing=client.home,
            shipping=self._address(destination, HIGH_RISK_PLACES),
            items=[
                self._line(
                    self._pick_item(
                        {
                            ItemCategory.HANDBAGS: 0.5,
                            ItemCategory.WATCHES: 0.2,
                            ItemCategory.SHOES: 0.3,
                        }
                    ),
                    MARKET_CURRENCY[market],
                )
            ],
            placed_at=placed_at,
            card_fingerprint=client.card_fingerprint,
            card_country=market,
            device_id=client.device_id,
            ip_country=destination,
        )
        return [SimulatedOrder(order, FraudPattern.HIGH_RISK_DESTINATION)]


def _event_weights(rates: Mapping[FraudPattern, float]) -> dict[FraudPattern, float]:
    """Per-event weights that give `rates` as shares of *orders*.

    A card-testing event yields a burst of several orders, so it is drawn
    proportionally less often.
    """
    unknown = set(rates) - set(PATTERN_RATES)
    if unknown or any(r < 0 for r in rates.values()) or sum(rates.values()) >= 1:
        raise ValueError("pattern rates must be known patterns, >= 0, summing to less than 1")
    mean_burst = sum(CARD_TESTING_BURST) / 2
    weights = {p: r for p, r in rates.items() if r > 0}
    if FraudPattern.CARD_TESTING in weights:
        weights[FraudPattern.CARD_TESTING] /= mean_burst
    weights[FraudPattern.NONE] = 1 - sum(rates.values())
    return weights


def generate_traffic(
    seed: int,
    count: int,
    now: datetime,
    rates: Mapping[FraudPattern, float] = PATTERN_RATES,
) -> Traffic:
    """`count` orders placed over the minutes before `now`, with the store seeds they need."""
    if count < 0:
        raise ValueError("count must be >= 0")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    gen = _Generator(seed, now)
    weights = _event_weights(rates)
    # Orders arrive every few seconds, ending just before `now`; a recent
    # placed_at keeps each review far from its authorisation deadline.
    placed_at = now - timedelta(seconds=3 * count + 60)
    orders: list[SimulatedOrder] = []
    while len(orders) < count:
        pattern = gen._weighted(weights)
        placed_at += timedelta(seconds=gen.rng.uniform(0.5, 5.5))
        produced: list[SimulatedOrder]
        match pattern:
            case FraudPattern.CARD_TESTING:
                produced = gen.card_testing(placed_at, count - len(orders))
            case FraudPattern.FREIGHT_FORWARDER:
                produced = gen.freight_forwarder(placed_at)
            case FraudPattern.NEW_ACCOUNT_WATCH:
                produced = gen.new_account_watch(placed_at)
            case FraudPattern.AVS_CVV_MISMATCH:
                produced = gen.avs_cvv_mismatch(placed_at)
            case FraudPattern.NO_3DS_HIGH_VALUE:
                produced = gen.no_3ds_high_value(placed_at)
            case FraudPattern.BLOCKLISTED_DEVICE:
                produced = gen.blocklisted_device(placed_at)
            case FraudPattern.HIGH_RISK_DESTINATION:
                produced = gen.high_risk_destination(placed_at)
            case _:
                produced = gen.legit(placed_at)
        orders.extend(produced)
        placed_at = max(placed_at, produced[-1].order.placed_at)
    # The last card-testing burst may run past `now`: move the whole stream
    # back so no order is in the future, keeping every interval (order to
    # order, account to order, authorisation to expiry) as generated.
    excess = max((o.order.placed_at for o in orders), default=now) - now
    if excess > timedelta(0):
        orders = [SimulatedOrder(_shift(o.order, excess), o.pattern) for o in orders]
    return Traffic(orders=orders, histories=gen.histories, risk_lists=gen.risk_lists)


def _shift(order: Order, by: timedelta) -> Order:
    payment = order.payment.model_copy(
        update={
            "authorised_at": order.payment.authorised_at - by,
            "authorisation_expires_at": order.payment.authorisation_expires_at - by,
        }
    )
    customer = order.customer.model_copy(
        update={"account_created_at": order.customer.account_created_at - by}
    )
    return order.model_copy(
        update={"placed_at": order.placed_at - by, "payment": payment, "customer": customer}
    )


def generate_orders(seed: int, count: int, now: datetime) -> list[Order]:
    """The orders of `generate_traffic`, without the labels and seeds."""
    return [o.order for o in generate_traffic(seed, count, now).orders]


# ------------------------------------------------------------------ sending


@dataclass
class SendReport:
    started: int = 0
    already_existed: int = 0
    failed: int = 0
    by_pattern: Counter[FraudPattern] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


StartFn = Callable[[Order], Awaitable[bool]]


async def send_orders(
    start: StartFn,
    orders: Sequence[SimulatedOrder],
    rate: float,
    on_sent: Callable[[SimulatedOrder, bool | None], None] | None = None,
) -> SendReport:
    """Send `orders` in order at about `rate` per second through `start`.

    `start` returns True when it started a review (the CLI passes
    `clients.order_review.start_review` bound to a client and task queue).
    Sequential on purpose: a card-testing burst must reach scoring in order
    for velocity to build up the way it does in production. A failed start is
    counted and reported, not fatal: a demo keeps going.
    """
    if rate <= 0:
        raise ValueError("rate must be > 0")
    report = SendReport()
    interval = 1.0 / rate
    next_at = time.monotonic()
    for simulated in orders:
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        next_at = max(next_at + interval, time.monotonic())
        outcome: bool | None
        try:
            outcome = await start(simulated.order)
        except Exception as err:  # reported per order; the run goes on
            outcome = None
            report.failed += 1
            report.errors.append(f"{simulated.order.order_id}: {type(err).__name__}: {err}")
        else:
            if outcome:
                report.started += 1
                report.by_pattern[simulated.pattern] += 1
            else:
                report.already_existed += 1
        if on_sent is not None:
            on_sent(simulated, outcome)
    return report


# ------------------------------------------------------------------ seeding


@dataclass(frozen=True)
class SeedReport:
    histories: int
    list_entries: int
    forwarders: int


SIMULATOR_ACTOR = "simulator"


async def seed_signals(pool: asyncpg.Pool, traffic: Traffic) -> SeedReport:
    """Write what the store must know before `traffic` is scored.

    Customer histories, blocklisted devices, allowlisted clients and the
    forwarders' warehouse addresses. Every write is an upsert, so running the
    same seed twice leaves the same store.
    """
    async with pool.acquire() as conn, conn.transaction():
        for history in traffic.histories:
            await signals.set_customer_history(
                conn,
                history.customer_id,
                completed_orders=history.completed_orders,
                chargebacks=history.chargebacks,
                returns=history.returns,
            )
        for entry in traffic.risk_lists:
            await signals.add_to_list(
                conn, entry.list, entry.kind, entry.value, entry.reason, SIMULATOR_ACTOR
            )
        for forwarder in traffic.forwarders:
            await signals.add_freight_forwarder(conn, forwarder.address, forwarder.name)
    return SeedReport(
        histories=len(traffic.histories),
        list_entries=len(traffic.risk_lists),
        forwarders=len(traffic.forwarders),
    )
