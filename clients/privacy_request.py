"""Typed helpers for privacy requests (issue 21): file one (the requester's
email becomes a fingerprint and a contact subject here, so no personal value
enters Temporal), read it, verify the requester, build its access export.

The workflow is addressed by its registered names, as in
clients/order_review.py, so the API process never loads workflow code.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from clients.calls import failure_message, query_case
from clients.errors import UPDATE_TIMEOUT, CaseNotFound, CaseRefused
from domain.privacy_request import (
    PRIVACY_REQUEST,
    Jurisdiction,
    PrivacyPolicy,
    PrivacyRequestContract,
    PrivacyRequestInput,
    PrivacyRequestKind,
    PrivacyRequestState,
    PrivacyRequestStatus,
    VerifyInput,
    privacy_request_workflow_id,
)
from store import personal_data, privacy_requests
from workflows import visibility

CONTACT_KIND = "privacy_contact"


class NothingHeld(LookupError):
    """No personal data matches the requester (never held, or erased already)."""


async def file_request(
    client: Client,
    pool: asyncpg.Pool,
    *,
    request_id: str,
    kind: PrivacyRequestKind,
    email: str,
    jurisdiction: Jurisdiction,
    requested_by: str,
    task_queue: str,
    now: datetime,
    policy: PrivacyPolicy | None = None,
) -> PrivacyRequestInput:
    """Start `privacy-request:{request_id}`. CaseRefused (409) when that id is
    taken or another request for the same address is still open;
    NothingHeld (404) when Steward holds nothing on the address. Nothing is
    written or started in either case."""
    workflow_id = privacy_request_workflow_id(request_id)
    if await _exists(client, workflow_id):
        raise CaseRefused(f"request_id: privacy request {request_id} already exists")
    matched = await personal_data.find_subjects(pool, fingerprint_of=email)
    subjects: list[str] = []
    for sid in matched:
        info = await personal_data.subject_info(pool, sid)
        if info.kind == CONTACT_KIND:
            open_request = next((v for k, v in info.refs if k == "privacy_request"), "?")
            raise CaseRefused(
                f"email: privacy request {open_request} for this address is still open"
            )
        subjects.append(sid)
    if not subjects:
        raise NothingHeld(
            "email: Steward holds no personal data matching this address "
            "(never held, or erased already)"
        )
    contact = await personal_data.put_subject(
        pool,
        kind=CONTACT_KIND,
        fields={"email": email},
        # A fresh id: a start that fails erases it, and a retry makes another.
        subject_id=personal_data.new_subject_id(),
        refs=[("privacy_request", request_id)],
    )
    request = PrivacyRequestInput(
        request_id=request_id,
        kind=kind,
        jurisdiction=jurisdiction,
        match_fingerprint=personal_data.fingerprint(email),
        subject_ids=subjects,
        contact_subject_id=contact,
        received_at=now,
        requested_by=requested_by,
        policy=policy or PrivacyPolicy(),
    )
    try:
        await client.start_workflow(
            PrivacyRequestContract.WORKFLOW_TYPE,
            request,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=visibility.start_attributes(
                PRIVACY_REQUEST, PrivacyRequestStatus.RECEIVED.value
            ),
            static_summary=f"Privacy request {request_id} · {kind}",
        )
    except BaseException as err:
        # Nothing started: keep no copy of the address.
        await personal_data.erase_subject(pool, contact, reason=f"{workflow_id} not started")
        if isinstance(err, WorkflowAlreadyStartedError):
            raise CaseRefused(f"request_id: privacy request {request_id} already exists") from None
        raise
    return request


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def get_request(client: Client, request_id: str) -> PrivacyRequestState:
    state: PrivacyRequestState = await query_case(
        client.get_workflow_handle(privacy_request_workflow_id(request_id)),
        PrivacyRequestContract.QUERY_STATUS,
        PrivacyRequestState,
        f"privacy request {request_id}",
    )
    return state


async def verify_request(
    client: Client, request_id: str, decision: VerifyInput, *, update_id: str | None = None
) -> PrivacyRequestState:
    handle = client.get_workflow_handle(privacy_request_workflow_id(request_id))
    try:
        state: PrivacyRequestState = await handle.execute_update(
            PrivacyRequestContract.UPDATE_VERIFY,
            decision,
            id=update_id,
            result_type=PrivacyRequestState,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as err:
        raise CaseRefused(failure_message(err.cause)) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(
                f"no running privacy request {request_id} (closed or unknown)"
            ) from err
        raise
    return state


async def access_export(
    client: Client, pool: asyncpg.Pool, request_id: str, now: datetime
) -> privacy_requests.AccessExport:
    """The export of a verified access request; CaseRefused before it is ready."""
    state = await get_request(client, request_id)
    if state.kind is not PrivacyRequestKind.ACCESS:
        raise CaseRefused(f"request_id: privacy request {request_id} is an {state.kind} request")
    if state.status is not PrivacyRequestStatus.EXPORTED:
        raise CaseRefused(
            f"request_id: privacy request {request_id} is {state.status}; "
            "the export is ready once the requester is verified"
        )
    return await privacy_requests.build_export(pool, request_id, state.export_subject_ids, now)
