"""The Steward worker: every workflow and activity on one task queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import inspect
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from domain.carrier_sweep import CARRIER_SWEEP_SCHEDULE_ID
from domain.ids import case_id_from_workflow_id
from workers.codec import load_or_create_keyring
from workers.decision_signing import DecisionVerifier
from workers.event_loop import running_loop_kind
from workers.failures import BoundedFailureInterceptor
from workers.schedules import ensure_carrier_sweep_schedule, ensure_report_schedules
from workers.settings import Settings

log = structlog.get_logger(__name__)

# In-flight activities get this long to finish on shutdown before they are
# cancelled; long enough for a provider call, short enough for Ctrl-C.
GRACEFUL_SHUTDOWN = timedelta(seconds=10)


class _LogContextInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        # Each activity runs in its own task, so these bindings stay local to it
        # and every structlog line the activity writes carries the case.
        structlog.contextvars.bind_contextvars(
            workflow_id=info.workflow_id,
            case_id=case_id_from_workflow_id(info.workflow_id or ""),
            activity_type=info.activity_type,
            attempt=info.attempt,
        )
        return await self.next.execute_activity(input)


class LogContextInterceptor(Interceptor):
    """Binds workflow_id / case_id / activity_type for structlog in every activity."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _LogContextInbound(next)


def precompile_workflow_code() -> bool:
    """Write the bytecode of the workflow modules once, before any run starts.

    The workflow sandbox re-imports a workflow's module (and workflows/steps.py,
    visibility.py) for every run it starts. Where PYTHONDONTWRITEBYTECODE is set
    (our CI machines, many container images), Python never caches that bytecode,
    so each run compiled the workflow source again: about a tenth of the
    worker's CPU on the auto-accept path (py-spy, `make bench`). Compiling
    explicitly writes the cache regardless of that setting; imports then load it.
    """
    import compileall

    import workflows as workflow_package

    ok = True
    for path in workflow_package.__path__:
        # A read-only install is fine: it then runs as before, only slower.
        ok = bool(compileall.compile_dir(path, quiet=2, maxlevels=0)) and ok
    return ok


def tune_garbage_collector(threshold: int) -> bool:
    """Make the cyclic garbage collector cheap for a long-running worker.

    Every workflow run allocates a fresh sandbox (a module, a class, its
    handlers), so with Python's default threshold of 700 allocations the
    collector ran more than once per order review, and each older-generation
    pass walked every module, class and pydantic schema loaded at start. We
    measured it at about 5 % of the worker's CPU on the auto-accept path.

    Called once, after everything is imported and the worker is built:
    `gc.freeze()` moves what exists then (code that lives as long as the
    process) out of the collector's sight, and a higher threshold lets young
    garbage (most of it freed by reference counting anyway) pile up longer
    between passes. Memory stays bounded: the collector still runs, less often.
    False when `threshold` is 0 and the interpreter's defaults are kept.
    """
    if threshold <= 0:
        return False
    # Collect first so nothing that is already garbage is frozen for good.
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
    return True


def build_worker(
    client: Client,
    settings: Settings,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
) -> Worker:
    if not precompile_workflow_code():
        log.warning("workflow_bytecode_not_cached", reason="workflows/ is not writable")
    # Synchronous activities need a thread pool; async ones run on the loop.
    needs_executor = any(not inspect.iscoroutinefunction(_unwrap(a)) for a in activities)
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=20) if needs_executor else None
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(workflows),
        activities=list(activities),
        activity_executor=executor,
        # Outermost first: the bounded failure's warning carries the log context.
        # The decision verifier refuses an update the API did not sign.
        interceptors=[
            LogContextInterceptor(),
            BoundedFailureInterceptor(),
            DecisionVerifier(load_or_create_keyring(settings.decision_keyring_file)),
        ],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


def _unwrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    # Bound methods of activity classes and callable objects: inspect the call.
    call = getattr(fn, "__call__", None)  # noqa: B004 - we want the attribute itself
    if not inspect.isfunction(fn) and not inspect.ismethod(fn) and call is not None:
        return call
    return fn


async def run_worker(
    client: Client, pool: asyncpg.Pool, settings: Settings, stop: asyncio.Event
) -> None:
    """Poll `settings.task_queue` until `stop` is set, then shut down gracefully."""
    # Imported here so `workers` stays importable while these packages are
    # being written, and because importing every workflow is not free.
    import workflows
    from workers.activities import build_activities, create_world_pool
    from workers.personal_keys import configure_personal_data

    configure_personal_data(settings)

    # The simulated outside world gets connections of its own, never `pool`'s.
    world_pool = await create_world_pool(settings)
    try:
        worker = build_worker(
            client,
            settings,
            workflows.ALL_WORKFLOWS,
            build_activities(pool, settings, world_pool=world_pool),
        )
        # Live metrics (workers/metrics.py): Steward's figures on their own port.
        metrics = serve_worker_metrics(pool, settings, stop)
        try:
            await _run(worker, client, settings, stop)
        finally:
            if metrics is not None:
                metrics.cancel()
    finally:
        await world_pool.close()


def serve_worker_metrics(
    pool: asyncpg.Pool, settings: Settings, stop: asyncio.Event
) -> asyncio.Task[None] | None:
    """Serve the worker's Prometheus endpoint and keep its gauges following
    the store; None when STEWARD_WORKER_METRICS_PORT is 0 or taken."""
    from workers.metrics import refresh_forever, start_worker_metrics

    if not start_worker_metrics(settings):
        return None
    return asyncio.create_task(refresh_forever(pool, stop), name="steward-worker-metrics")


async def _run(worker: Worker, client: Client, settings: Settings, stop: asyncio.Event) -> None:
    tune_garbage_collector(settings.gc_threshold)
    try:
        # The worker process is the composition root of the schedules its
        # workflows serve: created or brought up to date at every start.
        await ensure_carrier_sweep_schedule(client, settings.task_queue)
    except RPCError as err:
        # Sweeps can still be run by hand; the worker's cases must not wait.
        log.error("schedule_not_ensured", schedule_id=CARRIER_SWEEP_SCHEDULE_ID, error=str(err))
    try:
        # Reports (issue 19): one schedule per report and cadence.
        await ensure_report_schedules(
            client,
            settings.task_queue,
            cadences=settings.report_cadence_names,
            timezone=settings.report_timezone,
        )
    except (RPCError, ValueError) as err:
        # A bad STEWARD_REPORT_TIMEZONE or an unreachable server: reports can
        # still be run by hand; the worker's cases must not wait.
        log.error("report_schedules_not_ensured", error=str(err))
    log.info(
        "worker_started",
        task_queue=settings.task_queue,
        namespace=client.namespace,
        event_loop=running_loop_kind(),
    )
    # worker.run() rather than `async with`: a fatal worker error (lost
    # connection for good, bad registration) must end this coroutine instead
    # of going unnoticed while we wait for `stop`.
    run_task = asyncio.create_task(worker.run(), name="steward-worker")
    stop_task = asyncio.create_task(stop.wait(), name="steward-worker-stop")
    try:
        await asyncio.wait({run_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_task.cancel()
        if not run_task.done():
            log.info("worker_stopping", task_queue=settings.task_queue)
            await worker.shutdown()
        # Re-raises the worker's own failure, if that is why we woke up.
        await run_task
    log.info("worker_stopped", task_queue=settings.task_queue)
