"""Which adapter serves which provider (workers/activities.py), and the
start-up error naming the variable a configured provider lacks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from activities.carrier_easypost import EasyPostCarrier
from activities.disputes_adyen import AdyenDisputeResponder
from activities.disputes_stripe import StripeDisputeResponder
from domain.chargeback import DisputeProvider
from workers.activities import ProviderSettingMissing, dispute_responders, easypost_carrier
from workers.settings import Settings


class Simulated:
    def __init__(self, provider: DisputeProvider) -> None:
        self.name = provider.value


def settings(**values: Any) -> Settings:
    return Settings.model_validate(values)


# Variable -> field, to build settings that skipped validation (model_copy).
FIELDS = {str(f.validation_alias): name for name, f in Settings.model_fields.items()}


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
    # Settings refuses to load (every command stops before connecting)...
    with pytest.raises(ValidationError, match=f"{missing}: required when STEWARD_DISPUTE_"):
        settings(**values)
    # ... and build_activities checks again (settings built without validation).
    unchecked = settings().model_copy(update={FIELDS[k]: v for k, v in values.items()})
    with pytest.raises(ProviderSettingMissing, match=f"^{missing} is not set") as error:
        dispute_responders(unchecked, Simulated)
    assert "STEWARD_DISPUTE_RESPONDERS" in str(error.value)


def test_an_unknown_dispute_provider_is_named() -> None:
    with pytest.raises(ValidationError, match=r"unknown provider 'paypal'"):
        settings(STEWARD_DISPUTE_RESPONDERS="paypal")
    unchecked = settings().model_copy(update={"dispute_responders": "paypal"})
    with pytest.raises(ProviderSettingMissing, match=r"unknown provider.*paypal"):
        dispute_responders(unchecked, Simulated)


# ------------------------------------------------------------------ EasyPost

EASYPOST = {
    "STEWARD_EASYPOST_API_KEY": "EZTK_test",
    "STEWARD_EASYPOST_WAREHOUSE_ADDRESS_ID": "adr_1",
    "STEWARD_EASYPOST_CLAIM_EMAIL": "claims@maison.example",
}


def test_easypost_only_when_a_carrier_or_the_returns_use_it() -> None:
    assert easypost_carrier(None, settings(**EASYPOST)) is None  # type: ignore[arg-type]
    carrier = easypost_carrier(
        None,  # type: ignore[arg-type]
        settings(**EASYPOST, STEWARD_EASYPOST_CARRIERS="UPS, dhl"),
    )
    assert isinstance(carrier, EasyPostCarrier)
    assert settings(**EASYPOST, STEWARD_EASYPOST_CARRIERS="UPS, dhl").easypost_carrier_names == {
        "ups",
        "dhl",
    }
    assert carrier.parcel.for_units(2) == {"length": 14, "width": 10, "height": 6, "weight": 96}


@pytest.mark.parametrize(
    ("values", "missing", "because"),
    [
        ({"STEWARD_EASYPOST_CARRIERS": "ups"}, "STEWARD_EASYPOST_API_KEY", "CARRIERS=ups"),
        (
            {"STEWARD_EASYPOST_RETURN_CARRIER": "ups", "STEWARD_EASYPOST_API_KEY": "k"},
            "STEWARD_EASYPOST_WAREHOUSE_ADDRESS_ID",
            "RETURN_CARRIER=ups",
        ),
        (
            {
                "STEWARD_EASYPOST_CARRIERS": "ups",
                "STEWARD_EASYPOST_API_KEY": "k",
                "STEWARD_EASYPOST_WAREHOUSE_ADDRESS_ID": "adr_1",
            },
            "STEWARD_EASYPOST_CLAIM_EMAIL",
            "CARRIERS=ups",
        ),
    ],
)
def test_easypost_without_its_settings_stops_the_start(
    values: dict[str, str], missing: str, because: str
) -> None:
    with pytest.raises(ValidationError, match=f"{missing}: required when STEWARD_EASYPOST_"):
        settings(**values)
    unchecked = settings().model_copy(update={FIELDS[k]: v for k, v in values.items()})
    with pytest.raises(ProviderSettingMissing, match=f"^{missing} is not set") as error:
        easypost_carrier(None, unchecked)  # type: ignore[arg-type]
    assert because in str(error.value)


def test_parcel_dimensions_are_checked_when_settings_load() -> None:
    with pytest.raises(ValidationError, match="STEWARD_EASYPOST_PARCEL_DIMENSIONS_IN"):
        settings(STEWARD_EASYPOST_PARCEL_DIMENSIONS_IN="a shoebox")
    assert settings(
        STEWARD_EASYPOST_PARCEL_DIMENSIONS_IN="12 X 9.5 x 4"
    ).easypost_parcel_dimensions_in
