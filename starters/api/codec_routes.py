"""Remote codec server for the Temporal Web UI and CLI.

The server and its UI only ever see encrypted payloads. When the UI is
configured with this codec endpoint (`http://127.0.0.1:8400/codec`), the
browser posts the payloads it wants to show to `/codec/decode` and gets them
back decrypted, so keys never leave Steward's processes.

Protocol (Temporal's remote codec): POST `{endpoint}/encode|decode`, body and
response are a `temporal.api.common.v1.Payloads` message in protobuf JSON,
i.e. `{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`;
the namespace comes in the `X-Namespace` header.

Access: decrypting shows customer data, so a caller presents an API key like
everywhere else; the one exception is a browser on this machine (the embedded
stack binds everything to 127.0.0.1), because the dev UI cannot send a key.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from domain.common import Role
from starters.api.routes_common import error_responses
from starters.auth import Principal, in_networks, is_loopback, optional_principal
from workers.codec import CodecError, EncryptionCodec

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/codec", tags=["codec server"])

CODEC_ROLES = frozenset({Role.OPS, Role.MANAGER, Role.AUDITOR, Role.COORDINATOR, Role.SYSTEM})
# Payloads of a large history page; bigger bodies are refused before parsing.
MAX_BODY_BYTES = 8 * 1024 * 1024

_JSON = "application/json"


def _codec(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec = request.app.state.codec
    return codec


async def codec_caller(
    request: Request,
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal | None:
    if principal is not None:
        if principal.role not in CODEC_ROLES:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role.value} may not use the codec",
            )
        return principal
    peer = request.client.host if request.client else None
    trusted = request.app.state.settings.codec_trusted_networks
    if not (is_loopback(peer) or in_networks(peer, trusted)):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="the codec needs an API key from outside this host",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return None


async def _read_payloads(request: Request) -> Payloads:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail="payloads too large")
    try:
        text = body.decode("utf-8") if body else "{}"
    except UnicodeDecodeError as err:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"body must be UTF-8 JSON (invalid byte at position {err.start})",
        ) from None
    try:
        return json_format.Parse(text, Payloads())
    except json_format.ParseError as err:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"body must be a Payloads message in protobuf JSON: {err}",
        ) from None


def _respond(payloads: Payloads) -> Response:
    return Response(content=json_format.MessageToJson(payloads), media_type=_JSON)


_PAYLOADS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            _JSON: {
                "schema": {"type": "object", "properties": {"payloads": {"type": "array"}}},
                "example": {
                    "payloads": [
                        {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJhIjoxfQ=="}
                    ]
                },
            }
        },
    }
}


@router.post(
    "/encode",
    summary="Encrypt payloads (Temporal remote codec protocol)",
    responses=error_responses(400, 401, 403, 413),
    openapi_extra=_PAYLOADS_BODY,
)
async def encode(
    request: Request,
    caller: Annotated[Principal | None, Depends(codec_caller)],
    codec: Annotated[EncryptionCodec, Depends(_codec)],
    namespace: Annotated[str | None, Header(alias="X-Namespace")] = None,
) -> Response:
    payloads = await _read_payloads(request)
    encoded = await codec.encode(list(payloads.payloads))
    log.info("codec_encode", namespace=namespace, count=len(encoded))
    return _respond(Payloads(payloads=encoded))


@router.post(
    "/decode",
    summary="Decrypt payloads for the Temporal UI (remote codec protocol)",
    responses=error_responses(400, 401, 403, 413, 422),
    openapi_extra=_PAYLOADS_BODY,
)
async def decode(
    request: Request,
    caller: Annotated[Principal | None, Depends(codec_caller)],
    codec: Annotated[EncryptionCodec, Depends(_codec)],
    namespace: Annotated[str | None, Header(alias="X-Namespace")] = None,
) -> Response:
    payloads = await _read_payloads(request)
    try:
        decoded = await codec.decode(list(payloads.payloads))
    except CodecError as err:
        # The message names the key id, never payload content.
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(err)) from None
    # Decrypting shows customer data: keep a trace of who looked.
    log.info(
        "codec_decode",
        namespace=namespace,
        count=len(decoded),
        actor=caller.actor if caller else "local-ui",
    )
    return _respond(Payloads(payloads=decoded))
