"""A `steward` command in a second terminal finds the stack `steward up` runs on
non-default ports, through data_dir/stack.json; the environment still wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from starters import cli
from starters.stack_file import (
    read_stack_file,
    remove_stack_file,
    stack_file_path,
    use_running_stack,
    write_stack_file,
)
from workers.settings import Settings

runner = CliRunner()


def _stack_settings(data_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
        STEWARD_DATA_DIR=data_dir,
        STEWARD_TEMPORAL_PORT=17233,
        STEWARD_TEMPORAL_UI_PORT=18233,
        STEWARD_POSTGRES_PORT=45432,
        STEWARD_API_PORT=18400,
        STEWARD_TASK_QUEUE="steward-b",
    )


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_written_file_records_ports_and_keys_file_and_no_secret(tmp_path: Path) -> None:
    keys = tmp_path / "api-keys.txt"
    settings = _stack_settings(tmp_path).model_copy(
        update={"database_url": "postgresql://steward:s3cret@db.internal/steward"}
    )
    path = write_stack_file(settings, api_keys_file=keys, temporal_ui_url="http://127.0.0.1:18233")
    assert path == tmp_path / "stack.json"
    raw = json.loads(path.read_text())
    assert raw["pid"] == os.getpid()
    assert raw["api_url"] == "http://127.0.0.1:18400"
    assert raw["api_keys_file"] == str(keys.resolve())
    assert raw["variables"]["STEWARD_TEMPORAL_PORT"] == "17233"
    assert raw["variables"]["STEWARD_POSTGRES_PORT"] == "45432"
    assert raw["variables"]["STEWARD_TASK_QUEUE"] == "steward-b"
    assert "s3cret" not in path.read_text()


def test_cli_command_uses_the_recorded_ports_unless_the_environment_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stack_file(_stack_settings(tmp_path), api_keys_file=None, temporal_ui_url=None)
    dsns: list[str] = []

    async def record_pool(dsn: str, **kwargs: Any) -> Any:
        dsns.append(dsn)
        raise ConnectionRefusedError("recorded; no server in a unit test")

    monkeypatch.setattr("store.db.create_pool", record_pool)
    env = {"STEWARD_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    # The CLI copies the recorded variables into os.environ: undone after the test.
    for name in ("STEWARD_POSTGRES_PORT", "STEWARD_TEMPORAL_PORT", "STEWARD_TASK_QUEUE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)

    # `migrate` (an operator command) reaches PostgreSQL itself; `tasks` and the
    # other reading commands go through the API (issue 20).
    result = runner.invoke(cli.app, ["migrate"], env=env)
    assert result.exit_code != 0
    assert dsns == ["postgresql://postgres@127.0.0.1:45432/steward"]
    assert cli.get_settings().temporal_target == "127.0.0.1:17233"
    assert cli.get_settings().task_queue == "steward-b"

    # A variable in the environment wins over the file.
    for name in ("STEWARD_POSTGRES_PORT", "STEWARD_TEMPORAL_PORT", "STEWARD_TASK_QUEUE"):
        monkeypatch.delenv(name)
    cli.get_settings.cache_clear()
    result = runner.invoke(cli.app, ["migrate"], env={**env, "STEWARD_POSTGRES_PORT": "5999"})
    assert dsns[-1] == "postgresql://postgres@127.0.0.1:5999/steward"


def test_env_file_wins_over_the_stack_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_stack_file(_stack_settings(tmp_path), api_keys_file=None, temporal_ui_url=None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"STEWARD_DATA_DIR={tmp_path}\nSTEWARD_API_PORT=9000\n")
    environ: dict[str, str] = {}
    assert use_running_stack(environ) is not None
    assert "STEWARD_API_PORT" not in environ  # .env sets it
    assert environ["STEWARD_POSTGRES_PORT"] == "45432"


def test_a_stack_that_died_or_no_file_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEWARD_DATA_DIR", str(tmp_path))
    environ: dict[str, str] = {}
    assert use_running_stack(environ) is None
    write_stack_file(_stack_settings(tmp_path), api_keys_file=None, temporal_ui_url=None)
    raw = json.loads(stack_file_path(tmp_path).read_text())
    raw["pid"] = _dead_pid()
    stack_file_path(tmp_path).write_text(json.dumps(raw))
    assert use_running_stack(environ) is None
    assert environ == {}


def test_only_the_writer_removes_the_file(tmp_path: Path) -> None:
    write_stack_file(_stack_settings(tmp_path), api_keys_file=None, temporal_ui_url=None)
    raw = json.loads(stack_file_path(tmp_path).read_text())
    raw["pid"] = os.getppid()  # another live process: a second stack took over the file
    stack_file_path(tmp_path).write_text(json.dumps(raw))
    remove_stack_file(tmp_path)
    assert read_stack_file(tmp_path) is not None
    raw["pid"] = os.getpid()
    stack_file_path(tmp_path).write_text(json.dumps(raw))
    remove_stack_file(tmp_path)
    assert not stack_file_path(tmp_path).exists()


def test_the_cli_s_api_client_finds_the_running_stack_s_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starters import api_client

    write_stack_file(_stack_settings(tmp_path), api_keys_file=None, temporal_ui_url=None)
    monkeypatch.setenv("STEWARD_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("STEWARD_API_URL", raising=False)
    assert api_client.resolve_api_url({}) == "http://127.0.0.1:18400"
    # STEWARD_API_URL wins over the file.
    assert api_client.resolve_api_url({"STEWARD_API_URL": "http://api:1/"}) == "http://api:1"
