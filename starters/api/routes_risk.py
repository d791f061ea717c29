"""What the risk rules read, maintained by the risk team (issue 15,
docs/risk.md): the block and allow lists, known freight-forwarder addresses
and postal codes, and corrections to a customer's history counters.

Prefix `/v1/risk`. The role comes from the API key (`CHANGE_ROLES` in
domain/risk_admin.py): coordinators and managers tighten the rules (block,
un-allow, mark a forwarder), only managers loosen them (allow, unblock,
unmark), managers and order management's system key correct a history;
coordinators, managers and auditors read. Every change is one audit row with
the actor, role, reason code and the state before and after, identities as
fingerprints only (clients/risk_admin.py). An `Idempotency-Key` makes a
repeated request answer the first one; a change that changes nothing answers
`changed: false` and writes nothing.

Clear values (emails, addresses, customer ids) travel in request bodies or a
query string, never in a path: the request log shows paths.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, status

from clients import risk_admin
from domain.common import BusinessKey
from domain.risk_admin import (
    RISK_READERS,
    CustomerHistoryCorrectionBody,
    CustomerHistoryRow,
    ForwarderAddressChange,
    ForwarderPostalCodeChange,
    ForwarderPostalCodeRow,
    ForwarderRow,
    ListEntryChange,
    ListEntryRow,
    RiskChange,
    RiskChangeResult,
    list_change,
    role_refusal,
)
from domain.risk_rules import IdentityKind, RiskList
from starters.api.routes_common import DbPool, error_responses
from starters.auth import Principal, authenticate, require_roles
from store import signals

PREFIX = "/v1/risk"
router = APIRouter(tags=["risk lists and history"])

Caller = Annotated[Principal, Depends(authenticate)]
Reader = Annotated[Principal, Depends(require_roles(*RISK_READERS))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
ListName = Annotated[RiskList, Path(description="block or allow")]
Limit = Annotated[int, Query(ge=1, le=1000)]

_CHANGE_ERRORS = error_responses(401, 403, 404, 409, 422)


def _allowed(principal: Principal, change: RiskChange) -> None:
    if (refusal := role_refusal(change, principal.role)) is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=refusal)


async def _run(call: Awaitable[RiskChangeResult]) -> RiskChangeResult:
    try:
        result = await call
    except risk_admin.RiskChangeError as err:
        if err.field is not None:
            raise HTTPException(
                err.status, detail=[{"field": err.field, "reason": err.message}]
            ) from None
        raise HTTPException(err.status, detail=err.message) from None
    return result


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------- lists


@router.get(
    "/lists/{list_name}/entries",
    response_model=list[ListEntryRow],
    responses=error_responses(401, 403, 422),
    summary="The block or allow list, newest first (fingerprints, never clear values)",
)
async def list_entries(
    list_name: ListName,
    principal: Reader,
    pool: DbPool,
    kind: Annotated[IdentityKind | None, Query()] = None,
    limit: Limit = 200,
) -> list[ListEntryRow]:
    rows = await signals.list_entries(pool, list_name, kind, limit)
    return [
        ListEntryRow(
            list=r["list"],
            kind=r["kind"],
            fingerprint=r["value_hash"],
            reason=r["reason"],
            added_by=r["added_by"],
            added_at=r["added_at"],
        )
        for r in rows
    ]


@router.post(
    "/lists/{list_name}/entries",
    response_model=RiskChangeResult,
    responses=_CHANGE_ERRORS,
    summary="Put an identity on the block list (coordinator, manager) or allow list (manager)",
)
async def add_list_entry(
    list_name: ListName,
    body: ListEntryChange,
    principal: Caller,
    pool: DbPool,
    idempotency_key: IdempotencyKey = None,
) -> RiskChangeResult:
    _allowed(principal, list_change(list_name, add=True))
    return await _run(
        risk_admin.change_list(
            pool,
            list_name,
            body,
            add=True,
            actor=principal.actor,
            role=principal.role,
            idempotency_key=idempotency_key,
            now=_now(),
        )
    )


@router.delete(
    "/lists/{list_name}/entries",
    response_model=RiskChangeResult,
    responses=_CHANGE_ERRORS,
    summary="Take an identity off the block list (manager) or allow list (coordinator, manager)",
)
async def remove_list_entry(
    list_name: ListName,
    body: ListEntryChange,
    principal: Caller,
    pool: DbPool,
    idempotency_key: IdempotencyKey = None,
) -> RiskChangeResult:
    _allowed(principal, list_change(list_name, add=False))
    return await _run(
        risk_admin.change_list(
            pool,
            list_name,
            body,
            add=False,
            actor=principal.actor,
            role=principal.role,
            idempotency_key=idempotency_key,
            now=_now(),
        )
    )


# ------------------------------------------------------- freight forwarders


@router.get(
    "/freight-forwarders/addresses",
    response_model=list[ForwarderRow],
    responses=error_responses(401, 403, 422),
    summary="Known forwarder addresses (fingerprints), newest first",
)
async def list_forwarders(
    principal: Reader, pool: DbPool, limit: Limit = 200
) -> list[ForwarderRow]:
    return [
        ForwarderRow(fingerprint=r["address_hash"], name=r["name"], added_at=r["added_at"])
        for r in await signals.list_freight_forwarders(pool, limit)
    ]


@router.post(
    "/freight-forwarders/addresses",
    response_model=RiskChangeResult,
    responses=_CHANGE_ERRORS,
    summary="Mark an address as a freight forwarder's (coordinator, manager)",
)
async def add_forwarder(
    body: ForwarderAddressChange,
    principal: Caller,
    pool: DbPool,
    idempotency_key: IdempotencyKey = None,
) -> RiskChangeResult:
    _allowed(principal, RiskChange.FORWARDER_ADD)
    return await _run(
        risk_admin.change_forwarder(
            pool,
            body,
            add=True,
            actor=principal.actor,
            role=principal.role,
            idempotency_key=idempotency_key,
            now=_now(),
        )
    )


@router.delete(
    "/freight-forwarders/addresses",
    response_model=RiskChangeResult,
    responses=_CHANGE_ERRORS,
    summary="Unmark a forwarder address (manager)",
)
async def remove_forwarder(
    body: ForwarderAddressChange,
    principal: Caller,
    pool: DbPool,
    idempotency_key: IdempotencyKey = None,
) -> RiskChangeResult:
    _allowed(principal, RiskChange.FORWARDER_REMOVE)
    return await _run(
        risk_admin.change_forwarder(
            pool,
            body,
            add=False,
            actor=principal.actor,
            role=principal.role,
            idempotency_key=idempotency_key,
            now=_now(),
        )
    )


@router.get(
    "/freight-forwarders/postal-codes",
    response_model=list[ForwarderPostalCodeRow],
    responses=error_responses(401, 403, 422),
    summary="Postal codes where forwarders cluster",
)
async def list_postal_codes(
    principal: Reader, pool: DbPool, limit: Limit = 200
) -> list[ForwarderPostalCodeRow]:
    return [
        ForwarderPostalCodeRow(
            country=r["country"],
            postal_code=r["postal_code"],
            name=r["name"],
            added_at=r["added_at"],
        )
        for r in await signals.list_freight_forwarder_postal_codes(pool, limit)
    ]


@router.post(
    "/freight-forwarders/postal-codes",
    response_model=RiskChangeResult,
    responses=_CHANGE_ERRORS,
    summary="Mark a postal code where forwarders cluster (coordinator, manager)",
)
async def add_postal_code(
    body: ForwarderPostalCodeChange,
    principal: Caller,
    pool: DbPool,
    idempotency_key: IdempotencyKey = None,
) -> RiskChangeResult:
    _allowed(principal, RiskChange.FORWARDER_POSTAL_CODE_ADD)
    return await _run(
        risk_admin.change_forwarder_postal_code(
            pool,
            body,
            add=True,
            actor=principal.actor,
            role=principal.role,
            idempotency_key=idempotency_key,
            now=_now(),
        )
    )


@router.delete(
    "/freight-forwarders/postal-codes",
    response_model=RiskChangeResult,
    responses=_CHANGE_ERRORS,
    summary="Unmark a forwarder postal code (manager)",
)
async def remove_postal_code(
    body: ForwarderPostalCodeChange,
    principal: Caller,
    pool: DbPool,
    idempotency_key: IdempotencyKey = None,
) -> RiskChangeResult:
    _allowed(principal, RiskChange.FORWARDER_POSTAL_CODE_REMOVE)
    return await _run(
        risk_admin.change_forwarder_postal_code(
            pool,
            body,
            add=False,
            actor=principal.actor,
            role=principal.role,
            idempotency_key=idempotency_key,
            now=_now(),
        )
    )


# --------------------------------------------------------- customer history


@router.get(
    "/customer-history",
    response_model=CustomerHistoryRow,
    responses=error_responses(401, 403, 422),
    summary="A customer's counters as the rules read them (zeros for a customer never seen)",
)
async def customer_history(
    principal: Reader,
    pool: DbPool,
    customer_id: Annotated[BusinessKey, Query(examples=["C-100234"])],
) -> CustomerHistoryRow:
    return await risk_admin.customer_history(pool, customer_id)


@router.post(
    "/customer-history/corrections",
    response_model=RiskChangeResult,
    responses=_CHANGE_ERRORS,
    summary="Correct some of a customer's counters (manager, or order management's system key)",
)
async def correct_customer_history(
    body: CustomerHistoryCorrectionBody,
    principal: Caller,
    pool: DbPool,
    idempotency_key: IdempotencyKey = None,
) -> RiskChangeResult:
    _allowed(principal, RiskChange.HISTORY_CORRECT)
    return await _run(
        risk_admin.correct_history(
            pool,
            body.customer_id,
            body.correction(),
            actor=principal.actor,
            role=principal.role,
            idempotency_key=idempotency_key,
            now=_now(),
        )
    )
