"""Pytest plugin: record every call the workflows make to the outside world.

Activated only when ``STEWARD_RECORD_BEHAVIOUR=<path.jsonl>`` is set and the
plugin is loaded (``pytest -p tests.behaviour.recorder``); without the
variable it does nothing, so the normal suite is unaffected.

This file is self-contained (stdlib, temporalio, pydantic_core only): the
comparison copies it as a top-level module into a temporary directory so that
the same recorder runs against an older checkout whose ``tests`` package has
no ``behaviour`` folder.

What it records, per test, per workflow id, without anything seen while a
workflow is replaying (cache evictions, queries on closed runs):

* workflow side, in the order the workflow code issued them (a workflow
  interceptor, plus wrappers on the SDK's workflow instance for what the
  interceptor API does not expose):
  ``activity`` / ``local_activity`` (type, input as JSON, options: timeouts,
  retry policy, summary, ...), ``child_workflow`` (type, id, input, options),
  ``signal_external`` / ``signal_child``, ``continue_as_new``,
  ``upsert_search_attributes`` (keys, types, values), ``upsert_memo``,
  ``current_details`` (every call of ``workflow.set_current_details`` that
  changes the value), ``update_result`` (what an update handler returned or
  raised) and ``result`` (the run's result or failure);
* activity side (an activity inbound interceptor): every execution of an
  activity or local activity, its type, attempt and input as the activity
  received it after the payload round trip;
* what the test fed in, kept apart so that a difference caused by a changed
  test (a stand-in answering differently) can be told from one caused by the
  workflow: ``workflow_input``, ``signal_received``, ``update_received``
  (workflow side) and ``activity_outcome`` (what each activity execution
  returned or raised).

Random ids: every ``uuid.uuid4()`` that a module of the ``tests`` package
calls is replaced, for the duration of one test, by a generator seeded with
the test's node id, so the same test produces the same ids in any checkout;
the ids handed out are recorded so the comparison can still recognise them.

Output: one JSON line per test (node id, outcome, wall-clock start, the ids
handed out, the workflows' run ids, the events).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import gc
import importlib
import importlib.util
import json
import os
import random
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from pydantic_core import to_jsonable_python

ENV_VAR = "STEWARD_RECORD_BEHAVIOUR"
# Seconds a test may run before the recorder cancels it (0: never).
TIMEOUT_ENV_VAR = "STEWARD_RECORD_TEST_TIMEOUT"
DEFAULT_TIMEOUT = 90.0
# "old.module=new.module,...": names the tests import that the code renamed.
ALIASES_ENV_VAR = "STEWARD_RECORD_MODULE_ALIASES"
FORMAT_VERSION = 1

# Fields of the SDK's interceptor inputs that are not behaviour (or not data).
_SKIPPED_FIELDS = {"args", "headers", "arg_types", "ret_type", "event_groups", "fn", "executor"}


# --------------------------------------------------------------------------- JSON


def _fallback(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    name = getattr(value, "name", None)
    if isinstance(name, str):  # SearchAttributeKey, nexus operations, ...
        return f"<{type(value).__name__} {name}>"
    return f"<{type(value).__name__} {value!r}>"


def _jsonable(value: Any) -> Any:
    """JSON as the pydantic data converter would write it (to_json ~ to_jsonable)."""
    try:
        return to_jsonable_python(value, fallback=_fallback, serialize_unknown=False)
    except Exception as err:  # never break a workflow because of the recorder
        return f"<unserialisable {type(value).__name__}: {err}>"


def _options(input: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if dataclasses.is_dataclass(input):
        for f in dataclasses.fields(input):
            if f.name not in _SKIPPED_FIELDS:
                out[f.name] = _jsonable(getattr(input, f.name))
    return out


# --------------------------------------------------------------------- recording


class _TestRecording:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.t0 = time.time()
        self.outcome = "passed"
        self.failure: str | None = None
        self.uuids: list[str] = []
        self.run_ids: dict[str, None] = {}
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        # Seeded by the name without parameters, so test_x[world0] and a
        # test_x that no longer parametrises its fixture draw the same ids.
        self.rng = random.Random(f"steward-behaviour:{nodeid.split('[', 1)[0]}")

    def add(self, event: dict[str, Any], run_id: str | None = None) -> None:
        with self._lock:
            event["n"] = len(self.events)
            self.events.append(event)
            if run_id:
                self.run_ids[run_id] = None

    def new_uuid(self) -> uuid.UUID:
        with self._lock:
            value = uuid.UUID(int=self.rng.getrandbits(128), version=4)
            self.uuids.append(value.hex)
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "failure": self.failure,
            "t0": self.t0,
            "uuids": self.uuids,
            "run_ids": list(self.run_ids),
            "events": self.events,
        }


_current: _TestRecording | None = None
_unattributed = 0
# Event loops the tests' workers run on (to cancel a test that hangs).
_loops: dict[asyncio.AbstractEventLoop, None] = {}


def _record(event: dict[str, Any], run_id: str | None = None) -> None:
    global _unattributed
    recording = _current
    if recording is None:
        _unattributed += 1
        return
    recording.add(event, run_id)


# ------------------------------------------------------------ workflow side


def _in_workflow_replay() -> bool:
    import temporalio.workflow

    return temporalio.workflow.unsafe.is_replaying()


def _start_of(info: Any) -> float:
    started = getattr(info, "workflow_start_time", None) or info.start_time
    return float(started.timestamp())


def _wf_event(kind: str, **data: Any) -> None:
    import temporalio.workflow

    if _in_workflow_replay():
        return
    info = temporalio.workflow.info()
    _record(
        {
            "side": "workflow",
            "wf": info.workflow_id,
            "wf_type": info.workflow_type,
            "run": info.run_id,
            "wf_start": _start_of(info),
            "kind": kind,
            **data,
        },
        info.run_id,
    )


def _make_interceptor() -> Any:
    import temporalio.activity
    import temporalio.exceptions
    import temporalio.worker

    class Outbound(temporalio.worker.WorkflowOutboundInterceptor):
        def start_activity(self, input: Any) -> Any:
            _wf_event(
                "activity",
                type=input.activity,
                input=_jsonable(list(input.args)),
                options=_options(input),
            )
            return super().start_activity(input)

        def start_local_activity(self, input: Any) -> Any:
            _wf_event(
                "local_activity",
                type=input.activity,
                input=_jsonable(list(input.args)),
                options=_options(input),
            )
            return super().start_local_activity(input)

        async def start_child_workflow(self, input: Any) -> Any:
            _wf_event(
                "child_workflow",
                type=input.workflow,
                input=_jsonable(list(input.args)),
                options=_options(input),
            )
            return await super().start_child_workflow(input)

        async def signal_child_workflow(self, input: Any) -> None:
            _wf_event(
                "signal_child",
                type=input.signal,
                input=_jsonable(list(input.args)),
                options=_options(input),
            )
            return await super().signal_child_workflow(input)

        async def signal_external_workflow(self, input: Any) -> None:
            _wf_event(
                "signal_external",
                type=input.signal,
                input=_jsonable(list(input.args)),
                options=_options(input),
            )
            return await super().signal_external_workflow(input)

        def continue_as_new(self, input: Any) -> Any:
            _wf_event(
                "continue_as_new",
                type=getattr(input, "workflow", None),
                input=_jsonable(list(input.args)),
                options=_options(input),
            )
            return super().continue_as_new(input)

        async def start_nexus_operation(self, input: Any) -> Any:
            _wf_event("nexus_operation", options=_options(input), input=_jsonable(input.input))
            return await super().start_nexus_operation(input)

    def _failure(err: BaseException) -> dict[str, Any]:
        out: dict[str, Any] = {"error": type(err).__name__, "message": str(err)}
        if isinstance(err, temporalio.exceptions.ApplicationError):
            out["app_type"] = err.type
            out["non_retryable"] = err.non_retryable
            out["details"] = _jsonable(list(err.details))
        return out

    class Inbound(temporalio.worker.WorkflowInboundInterceptor):
        def init(self, outbound: Any) -> None:
            super().init(Outbound(outbound))

        async def execute_workflow(self, input: Any) -> Any:
            _wf_event("workflow_input", input=_jsonable(list(input.args)))
            try:
                result = await super().execute_workflow(input)
            except GeneratorExit:
                raise  # the worker dropping the run (shutdown, eviction): no result
            except BaseException as err:
                _wf_event("result", failure=_failure(err))
                raise
            _wf_event("result", value=_jsonable(result))
            return result

        async def handle_signal(self, input: Any) -> None:
            _wf_event("signal_received", type=input.signal, input=_jsonable(list(input.args)))
            return await super().handle_signal(input)

        async def handle_update_handler(self, input: Any) -> Any:
            _wf_event("update_received", type=input.update, input=_jsonable(list(input.args)))
            try:
                result = await super().handle_update_handler(input)
            except BaseException as err:
                _wf_event("update_result", type=input.update, failure=_failure(err))
                raise
            _wf_event("update_result", type=input.update, value=_jsonable(result))
            return result

    class ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
        async def execute_activity(self, input: Any) -> Any:
            info = temporalio.activity.info()
            common = {
                "side": "activity",
                "wf": info.workflow_id,
                "wf_type": info.workflow_type,
                "run": info.workflow_run_id,
                "type": info.activity_type,
                "activity_id": info.activity_id,
                "attempt": info.attempt,
            }
            local = "local_" if info.is_local else ""
            _record(
                {
                    **common,
                    "kind": f"{local}activity_execution",
                    "input": _jsonable(list(input.args)),
                },
                info.workflow_run_id,
            )
            # What the stand-in answered: an input to the workflow, recorded so
            # a difference caused by a changed test can be told apart.
            try:
                result = await super().execute_activity(input)
            except BaseException as err:
                failure = _failure(err)
                if isinstance(err, temporalio.exceptions.ApplicationError):
                    delay = err.next_retry_delay
                    failure["next_retry_delay"] = None if delay is None else delay.total_seconds()
                _record({**common, "kind": f"{local}activity_outcome", "failure": failure})
                raise
            _record({**common, "kind": f"{local}activity_outcome", "value": _jsonable(result)})
            return result

    class Recorder(temporalio.worker.Interceptor):
        steward_behaviour_recorder = True

        def intercept_activity(self, next: Any) -> Any:
            return ActivityInbound(next)

        def workflow_interceptor_class(self, input: Any) -> Any:
            return Inbound

    return Recorder


def _patch_sdk() -> None:
    """Worker gets the recorder; the workflow instance reports upserts and details."""
    from temporalio.worker import Worker
    from temporalio.worker import _workflow_instance as wi

    recorder_class = _make_interceptor()
    original_init = Worker.__init__

    def worker_init(self: Any, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(RuntimeError):
            _loops[asyncio.get_running_loop()] = None
        if _passthrough:
            from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

            runner = kwargs.get("workflow_runner") or SandboxedWorkflowRunner()
            if isinstance(runner, SandboxedWorkflowRunner):
                restrictions = runner.restrictions.with_passthrough_modules(*_passthrough)
                kwargs["workflow_runner"] = dataclasses.replace(runner, restrictions=restrictions)
        interceptors = list(kwargs.get("interceptors") or ())
        if not any(getattr(i, "steward_behaviour_recorder", False) for i in interceptors):
            interceptors.append(recorder_class())
        kwargs["interceptors"] = interceptors
        original_init(self, *args, **kwargs)

    Worker.__init__ = worker_init  # type: ignore[method-assign]

    impl = wi._WorkflowInstanceImpl
    original_upsert = impl.workflow_upsert_search_attributes
    original_memo = impl.workflow_upsert_memo
    original_details = impl.workflow_set_current_details

    def upsert_search_attributes(self: Any, attributes: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.workflow_is_replaying():
            if isinstance(attributes, Mapping):
                updates = [{"key": k, "value": _jsonable(v)} for k, v in attributes.items()]
            else:
                updates = [
                    {
                        "key": u.key.name,
                        "type": _jsonable(getattr(u.key, "indexed_value_type", None)),
                        "value": _jsonable(u.value),
                    }
                    for u in attributes
                ]
            _record(
                {
                    "side": "workflow",
                    "wf": self._info.workflow_id,
                    "wf_type": self._info.workflow_type,
                    "run": self._info.run_id,
                    "wf_start": _start_of(self._info),
                    "kind": "upsert_search_attributes",
                    "updates": updates,
                },
                self._info.run_id,
            )
        return original_upsert(self, attributes, *args, **kwargs)

    def upsert_memo(self: Any, updates: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.workflow_is_replaying():
            _record(
                {
                    "side": "workflow",
                    "wf": self._info.workflow_id,
                    "wf_type": self._info.workflow_type,
                    "run": self._info.run_id,
                    "wf_start": _start_of(self._info),
                    "kind": "upsert_memo",
                    "updates": _jsonable(dict(updates)),
                },
                self._info.run_id,
            )
        return original_memo(self, updates, *args, **kwargs)

    def set_current_details(self: Any, details: Any) -> Any:
        # Only a change is visible outside (the value goes out with the task
        # completion), so a repeat of the same text is not an event.
        previous = getattr(self, "_steward_behaviour_details", None)
        if details != previous and not self.workflow_is_replaying():
            _record(
                {
                    "side": "workflow",
                    "wf": self._info.workflow_id,
                    "wf_type": self._info.workflow_type,
                    "run": self._info.run_id,
                    "wf_start": _start_of(self._info),
                    "kind": "current_details",
                    "value": _jsonable(details),
                },
                self._info.run_id,
            )
        result = original_details(self, details)
        self._steward_behaviour_details = details
        return result

    impl.workflow_upsert_search_attributes = upsert_search_attributes  # type: ignore[method-assign]
    impl.workflow_upsert_memo = upsert_memo  # type: ignore[method-assign]
    impl.workflow_set_current_details = set_current_details  # type: ignore[method-assign]


# ------------------------------------------------------------------ random ids


class _UuidShim(types.ModuleType):
    """The uuid module as the test modules see it: uuid4 is seeded per test."""

    def __init__(self, uuid4: Callable[[], uuid.UUID]) -> None:
        super().__init__("uuid")
        self.uuid4 = uuid4

    def __getattr__(self, name: str) -> Any:
        return getattr(uuid, name)


def _test_modules() -> Iterator[types.ModuleType]:
    for name, module in list(sys.modules.items()):
        if module is None or name == __name__ or name.startswith("tests.behaviour"):
            continue
        if name == "tests" or name.startswith("tests.") or name.startswith("conftest"):
            yield module


def _seed_uuids(recording: _TestRecording) -> list[tuple[types.ModuleType, str, Any]]:
    restore: list[tuple[types.ModuleType, str, Any]] = []
    shim = _UuidShim(recording.new_uuid)
    for module in _test_modules():
        for attr, value in list(vars(module).items()):
            if value is uuid:
                replacement: Any = shim
            elif value is uuid.uuid4:
                replacement = recording.new_uuid
            else:
                continue
            restore.append((module, attr, value))
            setattr(module, attr, replacement)
    return restore


# ------------------------------------------------------------------- plugin


class _Plugin:
    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.restore: list[tuple[types.ModuleType, str, Any]] = []
        self.watchdogs: list[threading.Timer] = []
        with open(self.path, "w", encoding="utf-8"):
            pass

    def _write(self, recording: _TestRecording) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(recording.to_json(), sort_keys=True) + "\n")

    # A workflow test that waits on a run whose workflow task keeps failing
    # waits for ever; the suite has no timeout of its own. After `timeout`
    # seconds the test's coroutine is cancelled (the test fails, recorded as
    # "timeout"); if the test is still there 30 s later, the recording is
    # written and the process ends, so the comparison is not held up.
    def _cancel(self, recording: _TestRecording, name: str) -> None:
        if _current is not recording:
            return
        recording.outcome = "timeout"
        recording.failure = f"still running after {self.timeout:.0f} s: cancelled by the recorder"

        def cancel_test_task() -> None:
            for task in asyncio.all_tasks():
                code = getattr(task.get_coro(), "cr_code", None)
                if code is not None and code.co_name == name:
                    task.cancel()

        loops = set(_loops)
        loops.update(
            o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)
        )  # a test that hangs before it made a worker
        for loop in loops:
            if loop.is_running() and not loop.is_closed():
                loop.call_soon_threadsafe(cancel_test_task)

    def _abandon(self, recording: _TestRecording) -> None:
        if _current is not recording:
            return
        recording.outcome = "timeout"
        recording.failure = (
            f"still running {self.timeout + 30:.0f} s after it started, even once cancelled: "
            "the recorder ended the test run here"
        )
        self._write(recording)
        sys.stderr.write(f"\nbehaviour recorder: {recording.nodeid} hangs; ending the run\n")
        sys.stderr.flush()
        os._exit(5)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        global _current
        _current = recording = _TestRecording(item.nodeid)
        self.restore = _seed_uuids(recording)
        if self.timeout > 0:
            name = getattr(item, "originalname", None) or item.name.split("[")[0]
            self.watchdogs = [
                threading.Timer(self.timeout, self._cancel, (recording, name)),
                threading.Timer(self.timeout + 30, self._abandon, (recording,)),
            ]
            for watchdog in self.watchdogs:
                watchdog.daemon = True
                watchdog.start()
        yield

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        recording = _current
        if recording is None or recording.nodeid != report.nodeid:
            return
        if report.failed:
            if recording.outcome != "timeout":
                recording.outcome = "failed" if report.when == "call" else f"error-in-{report.when}"
            crash = getattr(report.longrepr, "reprcrash", None)
            message = getattr(crash, "message", None) or str(report.longrepr)
            recording.failure = "\n".join(filter(None, [recording.failure, message[-2000:]]))
        elif report.skipped and recording.outcome == "passed":
            recording.outcome = "skipped"

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        global _current
        recording = _current
        for watchdog in self.watchdogs:
            watchdog.cancel()
        self.watchdogs = []
        for module, attr, value in reversed(self.restore):
            setattr(module, attr, value)
        self.restore = []
        _current = None
        if recording is None or recording.nodeid != nodeid:
            return
        self._write(recording)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(
            f"behaviour recorder: wrote {self.path}"
            + (f" ({_unattributed} events outside any test)" if _unattributed else "")
        )


# Modules the workflow sandbox must take from outside, because an alias was
# put in (a test module that defines a workflow is re-imported in the sandbox).
_passthrough: set[str] = set()


def _resolve(dotted: str) -> Any:
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError:
        module, _, name = dotted.rpartition(".")
        return getattr(importlib.import_module(module), name)


def _alias_modules(spec: str) -> None:
    """old=new,...: let the tests import a module, or a name from a module,
    that the code under test moved (domain.disputes=domain.chargeback,
    domain.returns.X=domain.payments.X). Only where the old one is missing."""
    for item in filter(None, (part.strip() for part in spec.split(","))):
        old, _, new = item.partition("=")
        try:
            if importlib.util.find_spec(old) is not None:
                continue
        except (ModuleNotFoundError, ValueError):
            pass
        parent, _, leaf = old.rpartition(".")
        holder = None
        if parent:
            try:
                holder = importlib.import_module(parent)
            except ModuleNotFoundError:
                holder = None
        if holder is not None and hasattr(holder, leaf):
            continue
        target = _resolve(new)
        if isinstance(target, types.ModuleType):
            sys.modules[old] = target
            _passthrough.add(old)
        if holder is not None:
            setattr(holder, leaf, target)
            _passthrough.add(parent)
        sys.stderr.write(f"behaviour recorder: {old} is {new} here\n")


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(ENV_VAR)
    if not path:
        return
    _alias_modules(os.environ.get(ALIASES_ENV_VAR, ""))
    _patch_sdk()
    timeout = float(os.environ.get(TIMEOUT_ENV_VAR) or DEFAULT_TIMEOUT)
    plugin = _Plugin(os.path.abspath(path), timeout)
    config.pluginmanager.register(plugin, "steward-behaviour-recorder")


__all__: Sequence[str] = ["ALIASES_ENV_VAR", "ENV_VAR", "TIMEOUT_ENV_VAR", "pytest_configure"]
