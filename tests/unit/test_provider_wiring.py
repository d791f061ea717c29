"""Which adapter serves which provider (workers/activities.py), and the
start-up error naming the variable a configured provider lacks."""

from __future__ import annotations

from typing import Any

import pytest

from activities.disputes_adyen import AdyenDisputeResponder
from activities.disputes_stripe import StripeDisputeResponder
from domain.chargeback import DisputeProvider
from workers.activities import ProviderSettingMissing, dispute_responders
from workers.settings import Settings


class Simulated:
    def __init__(self, provider: DisputeProvider) -> None:
        self.name = provider.value


def settings(**values: Any) -> Settings:
    return Settings.model_validate(values)


def test_simulated_by_default() -> None:
    responders = dispute_responders(settings(), Simulated)
    assert {p: type(r) for p, r in responders.items()} == {
        DisputeProvider.STRIPE: Simulated,
        DisputeProvider.ADYEN: Simulated,
    }


def test_a_named_provider_gets_its_real_adapter_the_other_stays_simulated() -> None:
    responders = dispute_responders(
        settings(STEWARD_DISPUTE_RESPONDERS="stripe", STEWARD_STRIPE_API_KEY="sk_test_1"),
        Simulated,
    )
    assert isinstance(responders[DisputeProvider.STRIPE], StripeDisputeResponder)
    assert isinstance(responders[DisputeProvider.ADYEN], Simulated)
    both = dispute_responders(
        settings(
            STEWARD_DISPUTE_RESPONDERS="Stripe, adyen",
            STEWARD_STRIPE_API_KEY="sk_test_1",
            STEWARD_ADYEN_API_KEY="AQE_1",
            STEWARD_ADYEN_MERCHANT_ACCOUNT="MaisonEU",
        ),
        Simulated,
    )
    assert isinstance(both[DisputeProvider.ADYEN], AdyenDisputeResponder)


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({"STEWARD_DISPUTE_RESPONDERS": "stripe"}, "STEWARD_STRIPE_API_KEY"),
        ({"STEWARD_DISPUTE_RESPONDERS": "adyen"}, "STEWARD_ADYEN_API_KEY"),
        (
            {"STEWARD_DISPUTE_RESPONDERS": "adyen", "STEWARD_ADYEN_API_KEY": "AQE_1"},
            "STEWARD_ADYEN_MERCHANT_ACCOUNT",
        ),
    ],
)
def test_a_configured_provider_without_credentials_stops_the_start(
    values: dict[str, str], missing: str
) -> None:
    with pytest.raises(ProviderSettingMissing, match=f"^{missing} is not set") as error:
        dispute_responders(settings(**values), Simulated)
    assert "STEWARD_DISPUTE_RESPONDERS" in str(error.value)


def test_an_unknown_dispute_provider_is_named() -> None:
    with pytest.raises(ProviderSettingMissing, match=r"unknown provider.*paypal"):
        dispute_responders(settings(STEWARD_DISPUTE_RESPONDERS="paypal"), Simulated)
