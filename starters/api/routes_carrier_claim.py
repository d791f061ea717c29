"""Carrier claims over HTTP: list and read them; upstream systems relay the
carrier's answer to a filed claim. A claim opens from a carrier event or the
silence sweep (routes_carrier_events.py), never from this router.

Canonical prefix `/v1/carrier-claims`; `/v1/claims`, its first name, is still
served (hidden from the schema) for integrations written against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from clients import carrier_claim
from domain.audit import CaseRow
from domain.claims import CarrierClaimState, ClaimOutcome
from domain.common import BusinessKey, Role
from domain.ids import CARRIER_CLAIM
from starters.api.routes_common import DbPool, TemporalClient, case_call, error_responses
from starters.auth import Principal, authenticate, require_roles
from store import cases as case_store

PREFIX = "/v1/carrier-claims"
DEPRECATED_PREFIXES = ("/v1/claims",)

router = APIRouter(tags=["carrier claims"])

Upstream = Annotated[Principal, Depends(require_roles(Role.SYSTEM, Role.OPS))]
Reader = Annotated[Principal, Depends(authenticate)]
CarrierCode = Annotated[BusinessKey, Path(examples=["ups"])]
TrackingNumber = Annotated[BusinessKey, Path(examples=["1Z999AA10123456784"])]


@router.get(
    "",
    response_model=list[CaseRow],
    responses=error_responses(401, 422),
    summary="Carrier claims, most recently changed first",
)
async def list_claims(
    principal: Reader,
    pool: DbPool,
    status_filter: Annotated[str | None, Query(alias="status", max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Sequence[CaseRow]:
    return await case_store.list_cases(pool, CARRIER_CLAIM, status_filter, limit)


@router.get(
    "/{carrier}/{tracking_number}",
    response_model=CarrierClaimState,
    responses=error_responses(401, 404, 503),
    summary="A carrier claim's current state",
)
async def get_claim(
    carrier: CarrierCode, tracking_number: TrackingNumber, principal: Reader, client: TemporalClient
) -> CarrierClaimState:
    state: CarrierClaimState = await case_call(
        carrier_claim.get_claim(client, carrier.lower(), tracking_number)
    )
    return state


@router.post(
    "/{carrier}/{tracking_number}/outcome",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="The carrier's answer to a filed claim",
)
async def claim_outcome(
    carrier: CarrierCode,
    tracking_number: TrackingNumber,
    body: ClaimOutcome,
    principal: Upstream,
    client: TemporalClient,
) -> dict[str, str]:
    await case_call(
        carrier_claim.relay_claim_outcome(client, carrier.lower(), tracking_number, body)
    )
    return {"status": "accepted", "event_id": body.event_id}


__all__ = ["DEPRECATED_PREFIXES", "PREFIX", "router"]
