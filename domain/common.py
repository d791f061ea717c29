"""Shared vocabulary: roles, money, ISO codes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError


class Role(StrEnum):
    """Who may act. API keys map to one role; validators check it."""

    COORDINATOR = "coordinator"
    MANAGER = "manager"
    FINANCE = "finance"
    OPS = "ops"
    SYSTEM = "system"
    AUDITOR = "auditor"


# ------------------------------------------------------------------ text

# PostgreSQL text and jsonb refuse U+0000, and no other C0 control character
# (nor DEL) belongs in a name, a SKU or an id. Free text (notes, reasons,
# addresses) may keep tab, line feed and carriage return. An unpaired UTF-16
# surrogate (JSON "\\udc80") is no text at all: it cannot even be encoded.
_CONTROL_CHARACTERS: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_FREE_TEXT_CONTROL_CHARACTERS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def control_character_error(value: str, *, free_text: bool = True) -> str | None:
    """Why `value` cannot be stored, or None: names the first control character."""
    pattern = _FREE_TEXT_CONTROL_CHARACTERS if free_text else _CONTROL_CHARACTERS
    found = pattern.search(value)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"unpaired surrogate U+{code:04X} is not allowed (not encodable as UTF-8)"
    return f"control character U+{code:04X} is not allowed"


def _single_line(value: str) -> str:
    if (error := control_character_error(value, free_text=False)) is not None:
        raise ValueError(error)
    return value


def _free_text(value: str) -> str:
    if (error := control_character_error(value, free_text=True)) is not None:
        raise ValueError(error)
    return value


# One line of text: names, SKUs, references. No control character at all.
SINGLE_LINE: Final = AfterValidator(_single_line)
Text = Annotated[str, SINGLE_LINE]
# Notes and reasons: tab, line feed and carriage return allowed, no other control character.
FreeText = Annotated[str, AfterValidator(_free_text)]


def _known_currency(value: str) -> str:
    if (error := currency_error(value)) is not None:
        raise ValueError(error)
    return value


# An ISO 4217 code Steward knows the exponent of (CURRENCY_EXPONENTS below).
CurrencyCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$", min_length=3, max_length=3),
    AfterValidator(_known_currency),
]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$", min_length=2, max_length=2)]
NonEmptyStr = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_free_text)
]
# Business keys travel in workflow ids and URLs: keep them plain.
BUSINESS_KEY_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
BusinessKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=BUSINESS_KEY_PATTERN),
]
# The largest amount Steward accepts, in minor units: 10^15 (ten trillion
# euros). It fits PostgreSQL bigint (and Temporal's int64 search attributes)
# with room for sums of thousands of such amounts, every provider's amount
# field (Adyen's int64 `value`, Stripe's integer `amount`), and a JSON number a
# browser reads exactly (below 2^53). Computed totals (unit price x quantity,
# an order's total) are held to the same bound.
MAX_MINOR_UNITS: Final = 10**15

# A personal-data subject id (store/personal_data.py subject_id_for/new_subject_id),
# set by Steward's edges, never by a caller (issue 21).
SUBJECT_ID_PATTERN: Final = r"^subj_[A-Za-z0-9_-]{8,64}$"
MinorUnits = Annotated[
    int, Field(ge=0, le=MAX_MINOR_UNITS, description="Amount in minor units (cents)")
]


def _control_characters_in(
    value: Any, loc: tuple[int | str, ...]
) -> Iterator[tuple[tuple[int | str, ...], str, str]]:
    """(location, string, reason) of every string in `value`, however deep in
    lists and dicts, that breaks the free-text rule. Nested models check
    themselves."""
    if value.__class__ is str:
        if (error := control_character_error(value)) is not None:
            yield loc, value, error
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from _control_characters_in(item, (*loc, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _control_characters_in(key, loc)
            yield from _control_characters_in(item, (*loc, str(key)))


_CONTAINERS: Final = frozenset({list, tuple, set, frozenset, dict})


class StewardModel(BaseModel):
    """Base for every model crossing a workflow boundary: strict about unknown
    fields, and no string field (however it is typed) carries a control
    character other than tab, line feed and carriage return: such a value
    would reach the store and fail there for ever."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    @model_validator(mode="after")
    def _storable_text(self) -> Self:
        # One pass over the fields once they are valid (a validator per field
        # costs three times as much); a refusal names each field like pydantic does.
        search = _FREE_TEXT_CONTROL_CHARACTERS.search
        for value in self.__dict__.values():
            kind = value.__class__
            if (kind is str and search(value)) or (
                kind in _CONTAINERS and next(_control_characters_in(value, ()), None)
            ):
                break
        else:
            return self
        errors = [
            InitErrorDetails(type=PydanticCustomError("value_error", reason), loc=loc, input=text)
            for name, value in self.__dict__.items()
            for loc, text, reason in _control_characters_in(value, (name,))
        ]
        raise ValidationError.from_exception_data(type(self).__name__, errors)


# ISO 4217 (list one, active codes): the exponent of every currency Steward
# accepts. A code not in this table (XYZ, XXX "no currency", XTS "testing",
# precious metals) is refused at the edge: its amounts could not be formatted,
# captured or refunded correctly.
_EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT_4 = "CLF UYW"
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS "
    "KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN "
    "MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
    "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS "
    "UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
)
CURRENCY_EXPONENTS: dict[str, int] = {
    code: exponent
    for exponent, codes in ((0, _EXPONENT_0), (2, _EXPONENT_2), (3, _EXPONENT_3), (4, _EXPONENT_4))
    for code in codes.split()
}


def currency_error(currency: str) -> str | None:
    """Why Steward cannot take money in `currency`, or None."""
    if currency not in CURRENCY_EXPONENTS:
        return f"{currency} is not an ISO 4217 currency Steward knows the exponent of"
    return None


# Market policy: the currencies a market sells in. A market not listed here
# takes any known currency (cross-border and new markets).
MARKET_CURRENCIES: dict[str, frozenset[str]] = {
    "FR": frozenset({"EUR"}),
    "DE": frozenset({"EUR"}),
    "IT": frozenset({"EUR"}),
    "ES": frozenset({"EUR"}),
    "GB": frozenset({"GBP", "EUR"}),
    "CH": frozenset({"CHF", "EUR"}),
    "US": frozenset({"USD"}),
    "CN": frozenset({"CNY"}),
    "JP": frozenset({"JPY"}),
    "KR": frozenset({"KRW"}),
    "AE": frozenset({"AED"}),
}


def market_currency_error(market: str, currency: str) -> str | None:
    """Why `market` may not sell in `currency`, or None (checked after `currency_error`)."""
    allowed = MARKET_CURRENCIES.get(market)
    if allowed is not None and currency not in allowed:
        return f"market {market} sells in {', '.join(sorted(allowed))}, not {currency}"
    return None


def format_amount(amount_minor: int, currency: str) -> str:
    """`245000, "EUR"` -> `2,450.00 EUR`; `385000, "JPY"` -> `385,000 JPY`."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    if exponent == 0:
        return f"{amount_minor:,} {currency}"
    return f"{amount_minor / 10**exponent:,.{exponent}f} {currency}"


class Money(StewardModel):
    amount_minor: MinorUnits
    currency: CurrencyCode

    def __str__(self) -> str:
        return format_amount(self.amount_minor, self.currency)


# Business error types every decision validator raises (ApplicationError.type):
# clients map them to a refusal (HTTP 409/422) instead of a server error.
DECISION_REJECTED: Final = "DecisionRejected"
# Another decision is being applied by the main loop right now.
DECISION_IN_PROGRESS: Final = "Rejected"
