"""Every recorder script under tests/replay still imports: a helper it uses
from the workflow tests that was renamed or moved fails here, not the next
time someone needs a new history (record_histories.py and
record_delivery_histories.py had rotted that way against the harness).
Running them all is `for m in tests/replay/record_*.py` (docs/testing.md)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPLAY = Path(__file__).resolve().parents[1] / "replay"
RECORDERS = sorted(path.stem for path in REPLAY.glob("record_*.py"))


def test_there_are_recorders() -> None:
    assert {"record_histories", "record_delivery_histories"} <= set(RECORDERS)


@pytest.mark.parametrize("name", RECORDERS)
def test_a_recorder_imports_and_runs_as_a_script(name: str) -> None:
    module = importlib.import_module(f"tests.replay.{name}")
    source = Path(module.__file__ or "").read_text(encoding="utf-8")
    assert 'if __name__ == "__main__":' in source, f"{name} cannot be run with python -m"
