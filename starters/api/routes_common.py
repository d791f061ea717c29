"""What every router needs: the Temporal client, the pool, the settings, and the
shared response shapes. The objects live on `app.state`, set by `create_app`
(given) or by its lifespan (connected), which is the seam tests use to run the
API without a Temporal server."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import Depends, HTTPException, Request, status
from pydantic import BaseModel
from temporalio.client import Client

from clients.errors import CaseNotFound, CaseRefused, CaseUnavailable
from workers.settings import Settings

_T = TypeVar("_T")


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: `detail` is a message, or one entry per invalid field (422,
    with a `message` summing them up)."""

    detail: str | list[FieldError]
    message: str | None = None


def _client(request: Request) -> Client:
    client: Client | None = request.app.state.client
    if client is None:  # only before the lifespan connected
        raise RuntimeError("the Temporal client is not connected yet")
    return client


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool | None = request.app.state.pool
    if pool is None:
        raise RuntimeError("the database pool is not open yet")
    return pool


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


TemporalClient = Annotated[Client, Depends(_client)]
DbPool = Annotated[asyncpg.Pool, Depends(_pool)]
AppSettings = Annotated[Settings, Depends(_settings)]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries so /docs shows the error body for each status a route can return."""
    descriptions = {
        400: "Malformed body",
        401: "Missing or unknown API key",
        403: "The API key's role may not call this endpoint",
        404: "No such review",
        409: "Refused by the workflow (closed review, wrong role for this review...)",
        413: "The body is larger than the request limit",
        422: "Invalid request: one entry per field with the reason",
        503: "Temporal or the worker did not answer",
    }
    return {code: {"model": ErrorResponse, "description": descriptions[code]} for code in codes}


async def case_call(coro: Awaitable[_T]) -> _T:
    """Await a client helper, turning the case errors into 404, 409 and 503."""
    try:
        return await coro
    except CaseNotFound as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err)) from None
    except CaseRefused as err:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=err.message) from None
    except CaseUnavailable as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(err)) from None
