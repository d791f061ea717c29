"""The worker's garbage-collector tuning (workers/worker.py: tune_garbage_collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from workers.settings import Settings
from workers.worker import tune_garbage_collector


@pytest.fixture
def restore_gc() -> Iterator[None]:
    # The tuning is process-wide; give the rest of the suite the interpreter's state back.
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_raises_the_young_threshold_and_freezes_what_exists() -> None:
    _, older, oldest = gc.get_threshold()

    assert tune_garbage_collector(50_000) is True

    # Only the young generation's threshold moves; the older ones keep their ratios.
    assert gc.get_threshold() == (50_000, older, oldest)
    # Modules, classes and schemas loaded so far are out of the collector's sight.
    assert gc.get_freeze_count() > 1_000


@pytest.mark.usefixtures("restore_gc")
def test_zero_keeps_the_interpreter_defaults() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()

    assert tune_garbage_collector(0) is False

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


@pytest.mark.usefixtures("restore_gc")
def test_cyclic_garbage_is_still_collected() -> None:
    tune_garbage_collector(2_000)
    collections: list[int] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            collections.append(info["collected"])

    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: reference counting alone never frees it

    gc.callbacks.append(seen)
    try:
        for _ in range(10_000):
            Node()
    finally:
        gc.callbacks.remove(seen)

    # Allocations past the threshold start a young collection that frees the cycles.
    assert collections
    assert sum(collections) > 0


def test_the_setting_defaults_and_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).gc_threshold == 50_000
    monkeypatch.setenv("STEWARD_GC_THRESHOLD", "0")
    assert Settings(_env_file=None).gc_threshold == 0


def test_a_negative_threshold_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_GC_THRESHOLD", "-5")
    with pytest.raises(ValidationError, match="STEWARD_GC_THRESHOLD"):
        Settings(_env_file=None)
