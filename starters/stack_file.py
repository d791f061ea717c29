"""`data_dir/stack.json`: where the running `steward up` stack listens.

`steward up` writes it once everything is up and removes it on a clean stop;
every other `steward` command started in another terminal reads it, so a stack
started on non-default ports (`STEWARD_TEMPORAL_PORT=17233 make up`) is found
without repeating them. A variable set in the environment or `.env` always
wins over the file. The file holds addresses and paths, never a secret: an
external `DATABASE_URL` (it may carry a password) is not written.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workers.settings import Settings

STACK_FILE = "stack.json"

# Settings field -> the variable that sets it, for what a stack records.
_RECORDED = {
    "temporal_address": "TEMPORAL_ADDRESS",
    "temporal_namespace": "TEMPORAL_NAMESPACE",
    "task_queue": "STEWARD_TASK_QUEUE",
    "temporal_port": "STEWARD_TEMPORAL_PORT",
    "temporal_ui_port": "STEWARD_TEMPORAL_UI_PORT",
    "postgres_port": "STEWARD_POSTGRES_PORT",
    "api_host": "STEWARD_API_HOST",
    "api_port": "STEWARD_API_PORT",
    "codec_keyring_path": "STEWARD_CODEC_KEYRING",
}


@dataclass(frozen=True)
class RunningStack:
    pid: int
    variables: dict[str, str]
    api_url: str
    api_keys_file: str | None


def stack_file_path(data_dir: Path) -> Path:
    return data_dir / STACK_FILE


def write_stack_file(
    settings: Settings, *, api_keys_file: Path | None, temporal_ui_url: str | None
) -> Path:
    """Record this process's stack (atomically: a reader never sees half a file)."""
    variables: dict[str, str] = {}
    for field, variable in _RECORDED.items():
        value = getattr(settings, field)
        if value is not None:
            variables[variable] = str(value.resolve() if isinstance(value, Path) else value)
    content: dict[str, Any] = {
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(),
        "variables": variables,
        "api_url": settings.api_base_url,
        "temporal_ui_url": temporal_ui_url,
        "database": "external" if settings.database_url else settings.database_dsn,
        "api_keys_file": str(api_keys_file.resolve()) if api_keys_file else None,
    }
    path = stack_file_path(settings.data_dir)
    fd, tmp = tempfile.mkstemp(prefix=f".{STACK_FILE}.", dir=settings.data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(content, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def remove_stack_file(data_dir: Path) -> None:
    """On a clean stop, only if the file is still this process's own."""
    stack = read_stack_file(data_dir, require_alive=False)
    if stack is not None and stack.pid == os.getpid():
        stack_file_path(data_dir).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def read_stack_file(data_dir: Path, *, require_alive: bool = True) -> RunningStack | None:
    """The stack recorded under `data_dir`; None when absent, unreadable or (by
    default) when its process is gone (a stack killed without a clean stop)."""
    try:
        raw = json.loads(stack_file_path(data_dir).read_text(encoding="utf-8"))
        stack = RunningStack(
            pid=int(raw["pid"]),
            variables={str(k): str(v) for k, v in dict(raw["variables"]).items()},
            api_url=str(raw["api_url"]),
            api_keys_file=raw.get("api_keys_file"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if require_alive and not _alive(stack.pid):
        return None
    return stack


def use_running_stack(environ: MutableMapping[str, str] | None = None) -> RunningStack | None:
    """Point this process's settings at the stack running under the data dir.

    Each variable the stack recorded is copied into the environment unless the
    environment or `.env` sets it already; call before the first get_settings().
    """
    env = os.environ if environ is None else environ
    try:
        own = Settings()
    except ValueError:
        return None  # the command itself reports invalid settings
    stack = read_stack_file(own.data_dir)
    if stack is None:
        return None
    set_here = {_RECORDED[f] for f in own.model_fields_set if f in _RECORDED}
    for variable, value in stack.variables.items():
        if variable not in set_here and variable not in env:
            env[variable] = value
    return stack
