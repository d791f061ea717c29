"""The API under fuzzing: a real server on a loopback port, on the embedded stack.

The API app (starters/api/app.py `create_app`), a worker and uvicorn run in a
thread of their own with their own event loop, so a synchronous Hypothesis
test can send real HTTP requests while the API, the worker and their Temporal
and PostgreSQL connections keep running.

Two recorders tell which requests changed something, exactly and cheaply:

- workflows: the API's Temporal client carries an interceptor that records
  every workflow start (start, signal-with-start, update-with-start, schedule)
  and every signal or update that Temporal accepted. The worker has a client of
  its own, so what the workflows do afterwards is not counted against a
  request. At the end the visibility store is reconciled with the recorder.
- rows: the API's connections carry their own `application_name`; a trigger on
  every application table appends one row to `fuzz_api_writes` for each row an
  API connection inserts, updates or deletes (rolled back with the transaction
  that made it). The worker's writes are not counted. The triggers exist only
  while the fuzzer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import uvicorn
from temporalio import client as temporal_client
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

import workflows
from domain.common import Role
from starters.api.app import create_app
from starters.auth import ApiKeyStore
from store.db import _init_connection, _keep_session
from workers import activities
from workers.codec import load_or_create_keyring
from workers.converter import build_data_converter
from workers.settings import Settings

T = TypeVar("T")

API_APPLICATION_NAME = "steward-fuzz-api"

# One key per role; the fuzzer sends every generated request with each of them.
ROLE_KEYS: dict[Role, str] = {role: f"fuzz-{role.value}" for role in Role}

WEBHOOK_SECRETS = {
    "webhook_secret": "fuzz-upstream-secret",
    "stripe_webhook_secrets": "whsec_fuzz",
    "adyen_hmac_keys": "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
    "easypost_webhook_secret": "fuzz-easypost-secret",
}

_CREATE_WRITE_LOG = f"""
CREATE TABLE IF NOT EXISTS fuzz_api_writes (
    id bigserial PRIMARY KEY,
    tbl text NOT NULL,
    op text NOT NULL
);
CREATE OR REPLACE FUNCTION fuzz_log_api_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('application_name') = '{API_APPLICATION_NAME}' THEN
        INSERT INTO fuzz_api_writes (tbl, op) VALUES (TG_TABLE_NAME, TG_OP);
    END IF;
    RETURN NULL;
END $$;
"""

_APP_TABLES = """
SELECT quote_ident(tablename) AS name FROM pg_tables
WHERE schemaname = 'public' AND tablename NOT IN ('schema_migrations', 'fuzz_api_writes')
"""


@dataclass
class Recorder:
    """What the API asked Temporal to do, in order (the API's loop only appends)."""

    starts: list[str] = field(default_factory=list)
    # Ids of the workflows in `starts`, same order and length.
    started_ids: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def started(self, what: str, workflow_id: str) -> None:
        self.starts.append(what)
        self.started_ids.append(workflow_id)


class _RecordingOutbound(temporal_client.OutboundInterceptor):
    def __init__(self, next: temporal_client.OutboundInterceptor, recorder: Recorder) -> None:
        super().__init__(next)
        self._recorder = recorder

    async def start_workflow(self, input: Any) -> Any:
        handle = await super().start_workflow(input)
        self._recorder.started(f"start {input.id} (signal {input.start_signal})", input.id)
        return handle

    async def start_update_with_start_workflow(self, input: Any) -> Any:
        handle = await super().start_update_with_start_workflow(input)
        wf_id = input.start_workflow_input.id
        self._recorder.started(f"update-with-start {wf_id}", wf_id)
        return handle

    async def create_schedule(self, input: Any) -> Any:
        handle = await super().create_schedule(input)
        self._recorder.started(f"schedule {input.id}", input.id)
        return handle

    async def signal_workflow(self, input: Any) -> None:
        await super().signal_workflow(input)
        self._recorder.changes.append(f"signal {input.signal} to {input.id}")

    async def start_workflow_update(self, input: Any) -> Any:
        handle = await super().start_workflow_update(input)
        # An update the workflow's validator rejected comes back as a handle
        # whose known outcome is a failure: it never entered the history, so
        # it changed nothing (the API answers it 409).
        outcome = getattr(handle, "_known_outcome", None)
        if outcome is not None and outcome.HasField("failure"):
            return handle
        self._recorder.changes.append(f"update {input.update} of {input.id}")
        return handle


class _RecordingInterceptor(temporal_client.Interceptor):
    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def intercept_client(
        self, next: temporal_client.OutboundInterceptor
    ) -> temporal_client.OutboundInterceptor:
        return _RecordingOutbound(next, self._recorder)


@dataclass(frozen=True)
class Snapshot:
    starts: int
    changes: int
    write_id: int


class FuzzStack:
    """API + worker on their own loop; `run` executes a coroutine there."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self.settings = settings.model_copy(
            update={
                "task_queue": f"fuzz-{uuid.uuid4().hex[:8]}",
                # Every webhook configured as in production, so each route runs
                # its signature check instead of refusing for want of a secret.
                **WEBHOOK_SECRETS,
            }
        )
        self._dsn = dsn
        self.recorder = Recorder()
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._worker: Worker | None = None
        self._pools: list[asyncpg.Pool] = []
        self._check_pool: asyncpg.Pool | None = None
        self.worker_client: Client | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self, port: int) -> None:
        self._thread.start()
        self.run(self._start(port))

    def stop(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _start(self, port: int) -> None:
        check_pool = self._check_pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=2)
        self._pools.append(check_pool)
        async with check_pool.acquire() as conn:
            await conn.execute(_CREATE_WRITE_LOG)
            for row in await conn.fetch(_APP_TABLES):
                await conn.execute(
                    f"CREATE OR REPLACE TRIGGER fuzz_api_write AFTER INSERT OR UPDATE OR DELETE "
                    f"ON {row['name']} FOR EACH ROW EXECUTE FUNCTION fuzz_log_api_write()"
                )
        api_pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=10,
            init=_init_connection,
            reset=_keep_session,
            server_settings={"application_name": API_APPLICATION_NAME},
        )
        worker_pool = await asyncpg.create_pool(
            self._dsn, min_size=1, max_size=10, init=_init_connection, reset=_keep_session
        )
        self._pools += [api_pool, worker_pool]
        converter = build_data_converter(load_or_create_keyring(self.settings.keyring_path))
        target, namespace = self.settings.temporal_target, self.settings.temporal_namespace
        api_client = await Client.connect(
            target,
            namespace=namespace,
            data_converter=converter,
            interceptors=[_RecordingInterceptor(self.recorder)],
        )
        self.worker_client = await Client.connect(
            target, namespace=namespace, data_converter=converter
        )
        self._worker = Worker(
            self.worker_client,
            task_queue=self.settings.task_queue,
            workflows=workflows.ALL_WORKFLOWS,
            activities=activities.build_activities(worker_pool, self.settings),
        )
        await self._worker.__aenter__()
        keys = {key: (f"fuzz-{role.value}", role) for role, key in ROLE_KEYS.items()}
        app = create_app(
            self.settings,
            client=api_client,
            pool=api_pool,
            api_keys=ApiKeyStore.from_mapping(keys),
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if self._serving.done():
                self._serving.result()
            await asyncio.sleep(0.02)
        self.base_url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
        if self.worker_client is not None:
            # What the fuzzer started would wait for ever on a queue nobody polls.
            query = f"TaskQueue = '{self.settings.task_queue}' AND ExecutionStatus = 'Running'"
            async for execution in self.worker_client.list_workflows(query):
                with contextlib.suppress(RPCError):
                    await self.worker_client.get_workflow_handle(execution.id).terminate(
                        reason="fuzz run over"
                    )
        if self._worker is not None:
            await self._worker.__aexit__(None, None, None)
        if self._check_pool is not None:
            async with self._check_pool.acquire() as conn:
                for row in await conn.fetch(_APP_TABLES):
                    await conn.execute(f"DROP TRIGGER IF EXISTS fuzz_api_write ON {row['name']}")
                await conn.execute("DROP TABLE IF EXISTS fuzz_api_writes")
                await conn.execute("DROP FUNCTION IF EXISTS fuzz_log_api_write()")
        for pool in self._pools:
            await pool.close()

    # ------------------------------------------------------------ recorders

    def snapshot(self) -> Snapshot:
        return Snapshot(len(self.recorder.starts), len(self.recorder.changes), self._last_write())

    def _last_write(self) -> int:
        assert self._check_pool is not None
        pool = self._check_pool
        value = self.run(pool.fetchval("SELECT coalesce(max(id), 0) FROM fuzz_api_writes"))
        return int(value)

    def rows_written(self) -> int:
        """Rows the API's connections changed since the run started."""
        return self._last_write()

    def side_effects_since(self, before: Snapshot) -> list[str]:
        """What the API did since `before`: workflow starts, signals, updates, rows."""
        assert self._check_pool is not None
        effects = list(self.recorder.starts[before.starts :])
        effects += self.recorder.changes[before.changes :]
        rows = self.run(
            self._check_pool.fetch(
                "SELECT tbl, op, count(*) AS n FROM fuzz_api_writes WHERE id > $1 "
                "GROUP BY tbl, op ORDER BY tbl, op",
                before.write_id,
            )
        )
        effects += [f"{row['op']} {row['n']} row(s) in {row['tbl']}" for row in rows]
        return effects

    def workflows_on_queue(self) -> list[tuple[str, str | None]]:
        """(workflow id, parent id) of every execution visibility holds on the fuzz queue."""
        assert self.worker_client is not None
        worker_client = self.worker_client

        async def listing() -> list[tuple[str, str | None]]:
            query = f"TaskQueue = '{self.settings.task_queue}'"
            return [(wf.id, wf.parent_id) async for wf in worker_client.list_workflows(query)]

        return self.run(listing())
