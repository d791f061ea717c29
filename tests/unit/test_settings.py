"""Settings: the embedded defaults and the environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.settings import Settings, get_settings


def _settings() -> Settings:
    # No .env file: the tests must not depend on a developer's local one.
    return Settings(_env_file=None)


def test_defaults_point_at_the_embedded_stack() -> None:
    settings = _settings()
    assert settings.temporal_address is None
    assert settings.database_url is None
    assert settings.temporal_target == "127.0.0.1:7233"
    assert settings.database_dsn == "postgresql://postgres@127.0.0.1:55432/steward"
    assert settings.keyring_path == Path(".steward") / "codec-keyring.json"
    assert settings.api_base_url == "http://127.0.0.1:8400"


def test_temporal_address_and_database_url_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("DATABASE_URL", "postgresql://steward:secret@db.internal:5432/steward")

    settings = _settings()

    assert settings.temporal_target == "temporal.internal:7233"
    assert settings.database_dsn == "postgresql://steward:secret@db.internal:5432/steward"


def test_embedded_ports_and_data_dir_follow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_TEMPORAL_PORT", "17233")
    monkeypatch.setenv("STEWARD_POSTGRES_PORT", "15432")
    monkeypatch.setenv("STEWARD_DATA_DIR", "/var/lib/steward")
    monkeypatch.setenv("STEWARD_API_PORT", "9000")

    settings = _settings()

    assert settings.temporal_target == "127.0.0.1:17233"
    assert settings.database_dsn == "postgresql://postgres@127.0.0.1:15432/steward"
    assert settings.keyring_path == Path("/var/lib/steward/codec-keyring.json")
    assert settings.api_base_url == "http://127.0.0.1:9000"


def test_explicit_keyring_path_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_CODEC_KEYRING", "/etc/steward/keys.json")
    assert _settings().keyring_path == Path("/etc/steward/keys.json")


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TEMPORAL_ADDRESS=from-dotenv:7233\nSTEWARD_TASK_QUEUE=q2\n")
    settings = Settings(_env_file=env_file)
    assert settings.temporal_target == "from-dotenv:7233"
    assert settings.task_queue == "q2"


def test_get_settings_is_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("TEMPORAL_ADDRESS", "first:7233")
    first = get_settings()
    monkeypatch.setenv("TEMPORAL_ADDRESS", "second:7233")
    assert get_settings() is first
    assert first.temporal_target == "first:7233"
