"""Steward's custom search attributes, shared by workflows, the dev stack and tests.

Never put an email, a name or an address in one: they are stored in clear in
the visibility store and shown in the UI's list views.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

PROCESS = SearchAttributeKey.for_keyword("StewardProcess")
STATUS = SearchAttributeKey.for_keyword("StewardStatus")
AWAITED_ROLE = SearchAttributeKey.for_keyword("StewardAwaitedRole")
DUE_AT = SearchAttributeKey.for_datetime("StewardDueAt")
RISK_BAND = SearchAttributeKey.for_keyword("StewardRiskBand")
MARKET = SearchAttributeKey.for_keyword("StewardMarket")
# A fulfilment's active hold reasons (issue 16): `StewardHolds = 'outbound_qc'`.
HOLDS = SearchAttributeKey.for_keyword_list("StewardHolds")

ALL_KEYS: tuple[SearchAttributeKey, ...] = (
    PROCESS,
    STATUS,
    AWAITED_ROLE,
    DUE_AT,
    RISK_BAND,
    MARKET,
    HOLDS,
)

# `temporal server start-dev --search-attribute NAME=TYPE` spelling.
DEV_SERVER_TYPES: dict[str, str] = {
    "StewardProcess": "Keyword",
    "StewardStatus": "Keyword",
    "StewardAwaitedRole": "Keyword",
    "StewardDueAt": "Datetime",
    "StewardRiskBand": "Keyword",
    "StewardMarket": "Keyword",
    "StewardHolds": "KeywordList",
}


def case_updates(
    process: str,
    status: str,
    *,
    market: str | None = None,
    risk_band: str | None = None,
    awaited_role: str | None = None,
    due_at: datetime | None = None,
    tracks_awaited_role: bool = True,
) -> list[SearchAttributeUpdate[Any]]:
    """A case's search attributes, in the order every workflow has always
    upserted them. Who is awaited and until when are unset, not left stale,
    when nobody is; a process that never awaits a person leaves the role out."""
    updates: list[SearchAttributeUpdate[Any]] = [PROCESS.value_set(process)]
    if market is not None:
        updates.append(MARKET.value_set(market))
    updates.append(STATUS.value_set(status))
    if risk_band is not None:
        updates.append(RISK_BAND.value_set(risk_band))
    if tracks_awaited_role:
        updates.append(
            AWAITED_ROLE.value_set(awaited_role) if awaited_role else AWAITED_ROLE.value_unset()
        )
    updates.append(DUE_AT.value_set(due_at) if due_at else DUE_AT.value_unset())
    return updates


def start_attributes(
    process: str, status: str, *, market: str | None = None
) -> TypedSearchAttributes:
    """The search attributes a case starts with, so it is listed with its
    process, market and first status from its first moment."""
    pairs: list[SearchAttributePair[Any]] = [SearchAttributePair(PROCESS, process)]
    if market is not None:
        pairs.append(SearchAttributePair(MARKET, market))
    pairs.append(SearchAttributePair(STATUS, status))
    return TypedSearchAttributes(pairs)
