"""Steward's custom search attributes, shared by workflows, the dev stack and tests.

Never put an email, a name or an address in one: they are stored in clear in
the visibility store and shown in the UI's list views.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

PROCESS = SearchAttributeKey.for_keyword("StewardProcess")
STATUS = SearchAttributeKey.for_keyword("StewardStatus")
AWAITED_ROLE = SearchAttributeKey.for_keyword("StewardAwaitedRole")
DUE_AT = SearchAttributeKey.for_datetime("StewardDueAt")
RISK_BAND = SearchAttributeKey.for_keyword("StewardRiskBand")
MARKET = SearchAttributeKey.for_keyword("StewardMarket")

ALL_KEYS: tuple[SearchAttributeKey, ...] = (
    PROCESS,
    STATUS,
    AWAITED_ROLE,
    DUE_AT,
    RISK_BAND,
    MARKET,
)

# `temporal server start-dev --search-attribute NAME=TYPE` spelling.
DEV_SERVER_TYPES: dict[str, str] = {
    "StewardProcess": "Keyword",
    "StewardStatus": "Keyword",
    "StewardAwaitedRole": "Keyword",
    "StewardDueAt": "Datetime",
    "StewardRiskBand": "Keyword",
    "StewardMarket": "Keyword",
}
