"""Shared vocabulary: roles, money, ISO codes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class Role(StrEnum):
    """Who may act. API keys map to one role; validators check it."""

    COORDINATOR = "coordinator"
    MANAGER = "manager"
    FINANCE = "finance"
    OPS = "ops"
    SYSTEM = "system"
    AUDITOR = "auditor"


CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$", min_length=3, max_length=3)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$", min_length=2, max_length=2)]
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# Business keys travel in workflow ids and URLs: keep them plain.
BusinessKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"),
]
MinorUnits = Annotated[int, Field(ge=0, description="Amount in minor units (cents)")]


class StewardModel(BaseModel):
    """Base for every model crossing a workflow boundary: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=False)


# ISO 4217 exponents that differ from 2: a yen has no minor unit.
CURRENCY_EXPONENTS: dict[str, int] = {
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "ISK": 0,
    "VND": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}


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
