"""Issue 20: every `steward` command that reads cases or decides goes through
the HTTP API with the caller's key; only the operator commands (and the
traffic simulators, which play the upstream systems) reach Temporal or
PostgreSQL directly. A static check of starters/*cli.py, so a new command
that opens its own Temporal client or database pool fails here; and
`--as` / `--role` are refused in words on every process's commands."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from starters import cli

STARTERS = Path(__file__).resolve().parents[2] / "starters"
# (module file, function): the commands allowed to reach the servers directly.
OPERATOR = {
    ("cli.py", "up"),
    ("cli.py", "migrate"),
    ("cli.py", "worker"),
    ("cli.py", "api"),
    ("cli.py", "_with_pool"),  # migrate's and worker's pool
    # Traffic generators: they play the upstream systems (start cases), not people.
    ("cli.py", "simulate"),
    ("returns_cli.py", "returns_simulate"),
    # The simulated warehouse (issue 16): plays the WMS, feeding the webhook's intake.
    ("fulfilment_cli.py", "simulate_warehouse"),
    # Key rotation re-wraps the personal-data store's keys with the master keyring.
    ("privacy_request_cli.py", "rotate_key"),
}
DIRECT = ("create_pool", "connect(", "Client.connect", "get_workflow_handle", "start_workflow")


def _functions() -> list[tuple[str, str, str, ast.AST]]:
    found = []
    for path in sorted(STARTERS.glob("*cli.py")):
        text = path.read_text()
        for node in ast.parse(text).body:  # nested functions are part of theirs
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((path.name, node.name, ast.get_source_segment(text, node) or "", node))
    return found


def test_only_operator_commands_open_temporal_clients_or_database_pools() -> None:
    offenders = [
        (module, name, [token for token in DIRECT if token in source])
        for module, name, source, _ in _functions()
        if (module, name) not in OPERATOR and any(token in source for token in DIRECT)
    ]
    assert offenders == []
    # The check sees the operator commands (it would not pass vacuously).
    assert ("cli.py", "worker") in {(m, n) for m, n, s, _ in _functions() if "create_pool" in s}


def test_cli_modules_call_no_client_coroutine_outside_the_operator_commands() -> None:
    """`from clients.x import y` inside a command: only errors and pure
    helpers (format_amount...), never a coroutine that talks to Temporal."""
    offenders = []
    for module, name, _, node in _functions():
        if (module, name) in OPERATOR:
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("clients"):
                imported = importlib.import_module(inner.module or "")
                for alias in inner.names:
                    target: Any = getattr(imported, alias.name)
                    if inspect.iscoroutinefunction(target):
                        offenders.append((module, name, f"{inner.module}.{alias.name}"))
    assert offenders == []


@pytest.mark.parametrize(
    "command",
    [
        ("orders", "hold", "A1001", "--reason", "other"),
        ("qc", "decide", "A1001", "--outcome", "pass"),
        ("ops", "resolve", "OPS-1", "--outcome", "done", "--root-cause", "unknown"),
        ("ops", "assign", "OPS-1"),
        ("campaigns", "approve", "ES-1"),
        ("campaigns", "close", "ES-1"),
        ("privacy-request", "verify", "PR-1", "--decision", "verified", "--reason", "id"),
        ("reports", "runs"),
    ],
)
@pytest.mark.parametrize("flag", ["--as", "--role", "--role=manager"])
def test_as_and_role_are_refused_in_words_on_every_process(
    command: tuple[str, ...], flag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the CLI called the API with a retired flag")

    monkeypatch.setattr("starters.api_client.ApiClient.request", refuse)
    args = [*command, flag] if "=" in flag else [*command, flag, "manager"]
    result = CliRunner().invoke(cli.app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 2, result.output
    name = flag.split("=")[0]
    assert f"{name} is gone" in result.output
    assert "comes from your API key" in result.output
