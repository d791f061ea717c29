"""Fixtures shared by every suite. Keep this light: no servers start here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from store import personal_data
from workers.codec import Keyring
from workers.settings import get_settings

# Variables Settings reads. A developer's shell (TEMPORAL_ADDRESS pointing at a
# staging cluster, say) must not change what the tests do or touch.
_SETTINGS_ENV_PREFIXES = ("STEWARD_", "TEMPORAL_", "DATABASE_URL")


@pytest.fixture(autouse=True)
def _isolated_settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(_SETTINGS_ENV_PREFIXES):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def keyring() -> Keyring:
    """A fresh in-memory keyring with one random key (k1)."""
    return Keyring.generate()


@pytest.fixture(scope="session", autouse=True)
def _personal_data_keyring() -> None:
    """Every Steward process configures the personal-data keyring at start
    (store/personal_data.py); the test session does too, with a throw-away key."""
    if not personal_data.is_configured():
        personal_data.configure(Keyring.generate())
