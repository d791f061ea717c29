"""Reports (issue 19): the catalogue, the runs and their files, a run by hand,
and the live metrics endpoint for Prometheus.

Runs are read from PostgreSQL (report_runs); files from the reports
directory (STEWARD_REPORTS_DIR, default <data dir>/reports), only those the
run recorded, so a name can never reach outside the run's directory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import Field, ValidationError

from clients.errors import CaseRefused
from clients.reports import start_report_run
from domain.common import Role, StewardModel
from domain.reports import CATALOGUE
from domain.reports.runs import Cadence, ReportRunInput, ReportRunRow, RunStatus
from starters.api.routes_common import AppSettings, DbPool, TemporalClient, error_responses
from starters.auth import Principal, require_roles
from store import reports as report_store
from workers.metrics import CachedRefresh, exposition

router = APIRouter(prefix="/v1/reports", tags=["reports"])
metrics_router = APIRouter(tags=["metrics"])

# Reports name coordinators and carry fraud losses: management, ops, finance
# and auditors read them; managers and ops run one by hand.
REPORT_READERS = (Role.MANAGER, Role.OPS, Role.FINANCE, Role.AUDITOR)
REPORT_RUNNERS = (Role.MANAGER, Role.OPS)

ReportName = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$", examples=["fraud"])]
RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
FileName = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}\.(csv|png|html)$")]


class CatalogueEntry(StewardModel):
    name: str
    title: str
    audience: str
    description: str


class RunRequest(StewardModel):
    """A report over [period_from, period_to): ISO 8601 date-times with an offset."""

    period_from: datetime = Field(examples=["2026-11-23T00:00:00+01:00"])
    period_to: datetime = Field(examples=["2026-11-30T00:00:00+01:00"])
    market: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", examples=["FR"])
    channel: str | None = Field(default=None, max_length=40, pattern=r"^[a-z0-9_-]+$")
    # Days on the trend charts are cut in this zone.
    timezone: str = Field(default="UTC", examples=["Europe/Paris"])
    # Send it to the distribution list too (scheduled runs always do).
    distribute: bool = False


class RunStarted(StewardModel):
    workflow_id: str
    run_id: str
    report: str


@router.get(
    "/catalogue",
    response_model=list[CatalogueEntry],
    responses=error_responses(401, 403),
    summary="The reports Steward produces",
)
async def catalogue(
    principal: Annotated[Principal, Depends(require_roles(*REPORT_READERS))],
) -> list[CatalogueEntry]:
    return [
        CatalogueEntry(name=d.name, title=d.title, audience=d.audience, description=d.description)
        for d in CATALOGUE.values()
    ]


@router.get(
    "",
    response_model=list[ReportRunRow],
    responses=error_responses(401, 403, 422),
    summary="Report runs, newest first, with their files",
)
async def list_runs(
    principal: Annotated[Principal, Depends(require_roles(*REPORT_READERS))],
    pool: DbPool,
    report: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,64}$")] = None,
    run_status: Annotated[RunStatus | None, Query(alias="status")] = None,
    workflow_id: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ReportRunRow]:
    return await report_store.list_runs(
        pool,
        report=report,
        status=run_status.value if run_status else None,
        workflow_id=workflow_id,
        limit=limit,
    )


@router.get(
    "/{run_id}",
    response_model=ReportRunRow,
    responses=error_responses(401, 403, 404, 422),
    summary="One report run",
)
async def get_run(
    run_id: RunId,
    principal: Annotated[Principal, Depends(require_roles(*REPORT_READERS))],
    pool: DbPool,
) -> ReportRunRow:
    run = await report_store.get_run(pool, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no report run {run_id}")
    return run


@router.get(
    "/{run_id}/files/{name}",
    responses={
        200: {"description": "The file: text/csv, image/png or the HTML page"},
        **error_responses(401, 403, 404, 422),
    },
    summary="Download a file of a run (report.html is the whole report in one page)",
)
async def get_file(
    run_id: RunId,
    name: FileName,
    principal: Annotated[Principal, Depends(require_roles(*REPORT_READERS))],
    pool: DbPool,
    settings: AppSettings,
) -> FileResponse:
    run = await report_store.get_run(pool, run_id)
    recorded = {f.name: f for f in run.files} if run is not None else {}
    path = settings.reports_dir / run_id / name
    if name not in recorded or not path.is_file():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"report run {run_id} has no file {name}"
        )
    return FileResponse(path, media_type=recorded[name].media_type, filename=name)


@router.post(
    "/{name}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunStarted,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Run a report now over a period (`steward reports run`)",
)
async def run_report(
    name: ReportName,
    body: RunRequest,
    principal: Annotated[Principal, Depends(require_roles(*REPORT_RUNNERS))],
    client: TemporalClient,
    settings: AppSettings,
) -> RunStarted:
    if name not in CATALOGUE:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no report named {name} (known: {', '.join(sorted(CATALOGUE))})",
        )
    try:
        input = ReportRunInput(
            report=name,
            cadence=Cadence.MANUAL,
            period_from=body.period_from,
            period_to=body.period_to,
            market=body.market,
            channel=body.channel,
            timezone=body.timezone,
            distribute=body.distribute,
            requested_by=principal.actor,
        )
    except ValidationError as err:
        # The same body fields, so the error names them as the request did.
        raise HTTPException(
            422,
            detail=[
                {"loc": ["body", *(str(p) for p in e["loc"])], "msg": e["msg"], "type": e["type"]}
                for e in err.errors(include_url=False, include_input=False)
            ],
        ) from None
    try:
        workflow_id, run_id = await start_report_run(client, settings.task_queue, input)
    except CaseRefused as err:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=err.message) from None
    return RunStarted(workflow_id=workflow_id, run_id=run_id, report=name)


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text exposition format", "content": {"text/plain": {}}}
    },
    summary="Live metrics for Prometheus: cases, tasks, money, webhooks, report runs",
)
async def metrics(request: Request, pool: DbPool) -> Response:
    refresh = getattr(request.app.state, "metrics_refresh", None)
    if refresh is None or refresh.pool is not pool:
        refresh = request.app.state.metrics_refresh = CachedRefresh(pool)
    await refresh()
    return Response(exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")
