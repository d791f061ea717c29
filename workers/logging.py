"""structlog logging for every Steward process (worker, API, CLI, stack).

One pipeline for everything: structlog loggers and stdlib loggers (temporalio,
uvicorn, asyncpg) all end in the same stdlib handler, so level filtering and
output format are decided in one place: one JSON object per line on stderr,
or human-readable lines on a terminal (STEWARD_LOG_FORMAT=auto). Context bound
with `structlog.contextvars.bind_contextvars(...)` (workflow_id, case_id,
actor...) is merged into every line, including lines
written by third-party stdlib loggers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Literal, TextIO, cast

import structlog
import structlog.tracebacks
from structlog.typing import EventDict, Processor, WrappedLogger

# Marks the handler we install so a second call replaces it instead of
# stacking a duplicate (pytest, `steward up` after a CLI command, reloads).
_HANDLER_MARK = "_steward_handler"

# temporalio's workflow/activity LoggerAdapters put their context under these
# `extra` keys; we lift the ids to the top level so a query on `workflow_id`
# finds lines from workflows, activities and our own code alike.
_TEMPORAL_EXTRA_KEYS = ("temporal_workflow", "temporal_activity")


def _lift_temporal_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in _TEMPORAL_EXTRA_KEYS:
        info = event_dict.pop(key, None)
        if not isinstance(info, MutableMapping):
            continue
        for src, dst in (
            ("workflow_id", "workflow_id"),
            ("run_id", "run_id"),
            ("workflow_type", "workflow_type"),
            ("activity_type", "activity_type"),
            ("attempt", "attempt"),
            ("task_queue", "task_queue"),
        ):
            # The record's own Temporal info is more precise than whatever
            # context the calling task happened to have bound.
            if src in info:
                event_dict[dst] = info[src]
    return event_dict


_FIRST_KEYS = ("timestamp", "level", "logger", "event")


def _order_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Humans read these lines too: put the fixed fields first.
    ordered = {key: event_dict.pop(key) for key in _FIRST_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


LogFormat = Literal["auto", "json", "console"]


def choose_format(log_format: str, stream: TextIO) -> Literal["json", "console"]:
    """`auto` is human-readable on a terminal and JSON otherwise (a file, a pipe, a collector)."""
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return "console" if isatty is not None and isatty() else "json"
    if log_format in ("json", "console"):
        return cast(Literal["json", "console"], log_format)
    raise ValueError(f"unknown log format {log_format!r} (auto, json or console)")


def _renderers(chosen: Literal["json", "console"], stream: TextIO) -> list[Processor]:
    if chosen == "console":
        isatty = getattr(stream, "isatty", None)
        return [
            structlog.dev.ConsoleRenderer(
                colors=isatty is not None and isatty(),
                # Plain tracebacks: rich's would print frame locals (customer data).
                exception_formatter=structlog.dev.plain_traceback,
            )
        ]
    return [
        # Structured tracebacks, but never frame locals: they would copy
        # customer data (emails, addresses) into the logs.
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        ),
        _order_keys,
        structlog.processors.JSONRenderer(),
    ]


def configure_logging(
    level: str = "INFO", log_format: str = "json", stream: TextIO | None = None
) -> None:
    """Route structlog and stdlib logging to stderr (or `stream`) at `level`.

    `log_format` is json (one object per line), console (human-readable) or
    auto (console when the stream is a terminal). Safe to call more than
    once: the last call wins.
    """
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}")
    out = stream if stream is not None else sys.stderr
    chosen = choose_format(log_format, out)

    shared = _shared_processors()

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            # Hand over to the stdlib handler's ProcessorFormatter, which renders.
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Caching is off so a later configure_logging() call also affects loggers
        # that modules created at import time.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        # Applied to records that did not come through structlog (temporalio, uvicorn...).
        foreign_pre_chain=[
            *shared,
            structlog.stdlib.ExtraAdder(allow=list(_TEMPORAL_EXTRA_KEYS)),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _lift_temporal_context,
            *_renderers(chosen, out),
        ],
    )

    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, _HANDLER_MARK, False):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(numeric_level)

    # temporalio and uvicorn configure nothing themselves, but uvicorn's own
    # handlers would print a second, non-JSON copy; let them propagate to root.
    for name in ("temporalio", "uvicorn", "uvicorn.error", "uvicorn.access"):
        lib_logger = logging.getLogger(name)
        lib_logger.handlers.clear()
        lib_logger.propagate = True
        lib_logger.setLevel(logging.NOTSET)
