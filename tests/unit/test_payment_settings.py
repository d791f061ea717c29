"""Payment provider settings: simulated by default, and a start-up error naming
the variable a configured provider lacks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from workers.settings import Settings

ADYEN_READY = {
    "STEWARD_ADYEN_API_KEY": "AQE-test-key",
    "STEWARD_ADYEN_MERCHANT_ACCOUNT": "StewardECOM",
    "STEWARD_ADYEN_HMAC_KEY": "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
}


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def _refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    with pytest.raises(ValidationError) as refused:
        _settings(monkeypatch, **env)
    return str(refused.value)


def test_simulated_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    assert settings.payment_provider_names == ["simulated"]
    assert settings.adyen_outcome_timeout == timedelta(hours=24)
    assert settings.adyen_checkout_api_version == 71


def test_stripe_without_a_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, STEWARD_PAYMENT_PROVIDERS="simulated,stripe")
    assert "STEWARD_STRIPE_API_KEY: required when STEWARD_PAYMENT_PROVIDERS names stripe" in (
        message
    )


def test_a_stripe_key_of_the_other_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(
        monkeypatch,
        STEWARD_PAYMENT_PROVIDERS="stripe",
        STEWARD_STRIPE_API_KEY="sk_test_123",
        STEWARD_STRIPE_MODE="live",
    )
    assert "STEWARD_STRIPE_API_KEY: not a live secret or restricted key" in message
    settings = _settings(
        monkeypatch,
        STEWARD_PAYMENT_PROVIDERS="stripe",
        STEWARD_STRIPE_API_KEY="rk_live_123",
        STEWARD_STRIPE_MODE="live",
    )
    assert settings.payment_provider_names == ["stripe"]


def test_adyen_names_each_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(
        monkeypatch, STEWARD_PAYMENT_PROVIDERS="adyen", STEWARD_ADYEN_API_KEY="AQE-key"
    )
    assert "STEWARD_ADYEN_API_KEY" not in message
    assert "AQE-key" not in message  # no input in the error: it would print secrets
    assert (
        "STEWARD_ADYEN_MERCHANT_ACCOUNT: required when STEWARD_PAYMENT_PROVIDERS names adyen"
        in (message)
    )
    assert "STEWARD_ADYEN_HMAC_KEY: required when STEWARD_PAYMENT_PROVIDERS names adyen" in message


def test_adyen_live_needs_the_live_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(
        monkeypatch,
        STEWARD_PAYMENT_PROVIDERS="adyen",
        STEWARD_ADYEN_ENVIRONMENT="live",
        **ADYEN_READY,
    )
    assert (
        "STEWARD_ADYEN_LIVE_ENDPOINT_PREFIX: required when STEWARD_ADYEN_ENVIRONMENT is live"
        in (message)
    )
    settings = _settings(
        monkeypatch,
        STEWARD_PAYMENT_PROVIDERS="adyen,stripe",
        STEWARD_ADYEN_ENVIRONMENT="live",
        STEWARD_ADYEN_LIVE_ENDPOINT_PREFIX="1797a841fbb37ca7-StewardCompany",
        STEWARD_STRIPE_API_KEY="sk_test_abc",
        **ADYEN_READY,
    )
    assert settings.payment_provider_names == ["adyen", "stripe"]


def test_an_unknown_provider_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, STEWARD_PAYMENT_PROVIDERS="simulated,paypal")
    assert "STEWARD_PAYMENT_PROVIDERS: unknown provider 'paypal'" in message
