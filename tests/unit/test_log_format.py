"""Log format: human-readable on a terminal, JSON otherwise or when asked; request lines quiet."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any, cast

import pytest
import structlog
from fastapi.testclient import TestClient
from pydantic import ValidationError

from starters.api.app import create_app
from starters.auth import ApiKeyStore
from workers.codec import EncryptionCodec, Keyring
from workers.logging import choose_format, configure_logging
from workers.settings import Settings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Any:
    yield
    configure_logging("INFO", "json")


def test_auto_is_console_on_a_terminal_and_json_elsewhere() -> None:
    assert choose_format("auto", Terminal()) == "console"
    assert choose_format("auto", io.StringIO()) == "json"
    assert choose_format("json", Terminal()) == "json"
    assert choose_format("console", io.StringIO()) == "console"
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        choose_format("xml", io.StringIO())


def test_settings_default_auto_and_refuse_unknown_format(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).log_format == "auto"
    assert Settings(_env_file=None).access_log is False
    monkeypatch.setenv("STEWARD_LOG_FORMAT", "json")
    monkeypatch.setenv("STEWARD_ACCESS_LOG", "true")
    settings = Settings(_env_file=None)
    assert (settings.log_format, settings.access_log) == ("json", True)
    monkeypatch.setenv("STEWARD_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="STEWARD_LOG_FORMAT"):
        Settings(_env_file=None)


def test_terminal_gets_readable_level_filtered_lines() -> None:
    out = Terminal()
    configure_logging("INFO", "auto", stream=out)
    log = structlog.get_logger("steward.test")
    log.debug("too_chatty", n=1)
    log.info("worker_started", task_queue="steward")
    logging.getLogger("temporalio.worker").warning("from a library")
    text = out.getvalue()
    assert "too_chatty" not in text
    lines = text.splitlines()
    assert len(lines) == 2
    assert "worker_started" in lines[0] and "task_queue" in lines[0]
    assert "from a library" in lines[1]
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)


def test_json_when_not_a_terminal_or_when_asked() -> None:
    for stream, fmt in ((io.StringIO(), "auto"), (Terminal(), "json")):
        configure_logging("INFO", fmt, stream=stream)
        structlog.get_logger("steward.test").info("worker_started", task_queue="steward")
        (line,) = stream.getvalue().splitlines()
        assert json.loads(line)["event"] == "worker_started"
        assert json.loads(line)["task_queue"] == "steward"


def _api(tmp_path: Path, access_log: bool) -> TestClient:
    settings = Settings(
        _env_file=None, STEWARD_DATA_DIR=tmp_path, STEWARD_ACCESS_LOG=str(access_log)
    )
    app = create_app(
        settings,
        client=cast(Any, None),
        pool=cast(Any, None),
        api_keys=ApiKeyStore.from_mapping({}),
        codec=EncryptionCodec(Keyring.generate()),
    )
    return TestClient(app)


def test_request_lines_only_for_failures_unless_access_log(tmp_path: Path) -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    quiet = _api(tmp_path, access_log=False)
    assert quiet.get("/openapi.json").status_code == 200
    assert quiet.get("/v1/tasks").status_code == 401
    requests = [
        json.loads(line)
        for line in out.getvalue().splitlines()
        if json.loads(line)["event"] == "http_request"
    ]
    assert [(r["path"], r["status"]) for r in requests] == [("/v1/tasks", 401)]

    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    assert _api(tmp_path, access_log=True).get("/openapi.json").status_code == 200
    requests = [
        json.loads(line)
        for line in out.getvalue().splitlines()
        if json.loads(line)["event"] == "http_request"
    ]
    assert [(r["path"], r["status"]) for r in requests] == [("/openapi.json", 200)]
