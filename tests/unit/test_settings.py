"""Settings: the embedded defaults and the environment overrides."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.chargeback import DisputeDefault
from domain.evidence import DEFAULT_CCTV_RETENTION
from workers.settings import UNPREFIXED_VARIABLES, Settings, get_settings


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


def test_webhook_dispute_and_cctv_defaults() -> None:
    settings = _settings()
    assert (settings.stripe_secrets, settings.adyen_keys, settings.easypost_webhook_secret) == (
        [],
        [],
        "",
    )
    assert settings.stripe_tolerance_seconds == 300
    assert settings.cctv_retention == DEFAULT_CCTV_RETENTION
    policy = settings.dispute_policy()
    assert policy.safety_buffer == timedelta(hours=12)
    assert policy.reminder_offsets == [timedelta(hours=72), timedelta(hours=24)]
    assert policy.accept_below_minor == 5_000
    assert policy.default_action is DisputeDefault.SMART


def test_webhook_dispute_and_cctv_variables_keep_their_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STEWARD_STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new")
    monkeypatch.setenv("STEWARD_STRIPE_TOLERANCE_SECONDS", "60")
    monkeypatch.setenv("STEWARD_ADYEN_HMAC_KEY", "00AA")
    monkeypatch.setenv("STEWARD_EASYPOST_WEBHOOK_SECRET", "ep-secret")
    monkeypatch.setenv("STEWARD_DISPUTE_SAFETY_BUFFER_HOURS", "6")
    monkeypatch.setenv("STEWARD_DISPUTE_REMINDER_HOURS", "48, 12")
    monkeypatch.setenv("STEWARD_DISPUTE_ACCEPT_BELOW_MINOR", "0")
    monkeypatch.setenv("STEWARD_DISPUTE_DEFAULT", "accept")
    monkeypatch.setenv("STEWARD_CCTV_RETENTION_DAYS", "90")

    settings = _settings()

    assert settings.stripe_secrets == ["whsec_old", "whsec_new"]
    assert settings.stripe_tolerance_seconds == 60
    assert settings.adyen_keys == ["00AA"]
    assert settings.easypost_webhook_secret == "ep-secret"
    assert settings.cctv_retention == timedelta(days=90)
    policy = settings.dispute_policy()
    assert policy.safety_buffer == timedelta(hours=6)
    assert policy.reminder_offsets == [timedelta(hours=48), timedelta(hours=12)]
    assert policy.accept_below_minor == 0
    assert policy.default_action is DisputeDefault.ACCEPT


def test_cctv_retention_below_a_day_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_CCTV_RETENTION_DAYS", "0")
    with pytest.raises(ValidationError, match="STEWARD_CCTV_RETENTION_DAYS"):
        _settings()


def test_every_setting_is_a_steward_variable() -> None:
    # Only the three names other tools share are outside the STEWARD_ prefix.
    names = {field.validation_alias for field in Settings.model_fields.values()}
    assert all(isinstance(name, str) for name in names)
    unprefixed = {str(name) for name in names if not str(name).startswith("STEWARD_")}
    assert unprefixed == UNPREFIXED_VARIABLES
