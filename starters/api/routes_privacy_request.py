"""Privacy requests over HTTP (issue 21, docs/privacy_request.md): file an
erasure or access request, read it, verify the requester, download the
access export (JSON or a readable HTML page).

Prefix `/v1/privacy-requests`. Filing, verifying and exporting need a
coordinator or manager key; reading also an auditor's. The requester's email
is turned into a fingerprint and an encrypted contact here: it never reaches
Temporal, a log line or an error message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import EmailStr, Field

from clients import privacy_request
from domain.common import BusinessKey, FreeText, Role, StewardModel
from domain.privacy_request import (
    Jurisdiction,
    PrivacyRequestKind,
    PrivacyRequestState,
    VerifyDecision,
    VerifyInput,
    privacy_request_workflow_id,
)
from starters.api.routes_common import (
    AppSettings,
    DbPool,
    TemporalClient,
    case_call,
    error_responses,
)
from starters.auth import Principal, require_roles

log = structlog.get_logger(__name__)

PREFIX = "/v1/privacy-requests"
router = APIRouter(tags=["privacy requests"])

Handler = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER))]
Reader = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.MANAGER, Role.AUDITOR))]
RequestId = Annotated[BusinessKey, Path(examples=["PR-2026-0042"])]


class PrivacyRequestBody(StewardModel):
    request_id: BusinessKey = Field(examples=["PR-2026-0042"])
    kind: PrivacyRequestKind
    email: Annotated[EmailStr, Field(max_length=320, examples=["camille.durand@example.fr"])]
    jurisdiction: Jurisdiction


class PrivacyRequestFiled(StewardModel):
    workflow_id: str
    request_id: str
    subjects: int


class VerifyBody(StewardModel):
    decision: VerifyDecision
    reason: Annotated[FreeText, Field(min_length=1, max_length=500)]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PrivacyRequestFiled,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="File an erasure or access request for the holder of an email address",
)
async def file_request(
    body: PrivacyRequestBody,
    principal: Handler,
    client: TemporalClient,
    pool: DbPool,
    settings: AppSettings,
) -> PrivacyRequestFiled:
    try:
        request = await case_call(
            privacy_request.file_request(
                client,
                pool,
                request_id=body.request_id,
                kind=body.kind,
                email=str(body.email),
                jurisdiction=body.jurisdiction,
                requested_by=principal.actor,
                task_queue=settings.task_queue,
                now=datetime.now(UTC),
            )
        )
    except privacy_request.NothingHeld as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err)) from None
    log.info(
        "privacy_request_filed",
        request_id=body.request_id,
        kind=body.kind.value,
        subjects=len(request.subject_ids),
    )
    return PrivacyRequestFiled(
        workflow_id=privacy_request_workflow_id(body.request_id),
        request_id=body.request_id,
        subjects=len(request.subject_ids),
    )


@router.get(
    "/{request_id}",
    response_model=PrivacyRequestState,
    responses=error_responses(401, 403, 404, 503),
    summary="A privacy request's current state (counts and holds, no personal data)",
)
async def get_request(
    request_id: RequestId, principal: Reader, client: TemporalClient
) -> PrivacyRequestState:
    state: PrivacyRequestState = await case_call(privacy_request.get_request(client, request_id))
    return state


@router.post(
    "/{request_id}/verification",
    response_model=PrivacyRequestState,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="The coordinator's verification of the requester's identity",
)
async def verify_request(
    request_id: RequestId,
    body: VerifyBody,
    principal: Handler,
    client: TemporalClient,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> PrivacyRequestState:
    decision = VerifyInput(
        decision=body.decision, reason=body.reason, actor=principal.actor, role=principal.role
    )
    update_id = f"{principal.actor}/{idempotency_key}" if idempotency_key else None
    state: PrivacyRequestState = await case_call(
        privacy_request.verify_request(client, request_id, decision, update_id=update_id)
    )
    log.info("privacy_request_verified", request_id=request_id, decision=body.decision.value)
    return state


@router.get(
    "/{request_id}/export",
    responses={
        **error_responses(401, 403, 404, 409, 503),
        200: {"content": {"application/json": {}, "text/html": {}}},
    },
    summary="The access export: everything Steward holds on the requester",
)
async def export(
    request_id: RequestId,
    principal: Handler,
    client: TemporalClient,
    pool: DbPool,
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> Response:
    built = await case_call(
        privacy_request.access_export(client, pool, request_id, datetime.now(UTC))
    )
    log.info(
        "privacy_export_served", request_id=request_id, format=format, subjects=len(built.subjects)
    )
    if format == "html":
        return HTMLResponse(built.to_html())
    return JSONResponse(built.to_json())
