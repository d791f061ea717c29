"""Stripe-Signature and Adyen HMAC verification: valid, tampered, stale, wrong secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from domain.webhook_signatures import (
    SignatureError,
    adyen_signature,
    adyen_signing_string,
    stripe_signature,
    stripe_signature_header,
    verify_adyen_item,
    verify_stripe_signature,
)

SECRET = "whsec_test_5f2c0e1d"
NOW = 1_790_000_000
BODY = json.dumps({"id": "evt_1", "object": "event", "type": "charge.dispute.created"}).encode()
ADYEN_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"


def test_stripe_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert stripe_signature(SECRET, NOW, BODY) == expected


def test_valid_stripe_signature_returns_its_timestamp() -> None:
    header = stripe_signature_header(SECRET, NOW, BODY)
    assert verify_stripe_signature(body=BODY, header=header, secrets=[SECRET], now=NOW + 10) == NOW


def test_any_of_several_v1_signatures_and_secrets_may_match() -> None:
    good = stripe_signature(SECRET, NOW, BODY)
    header = f"t={NOW},v1={'0' * 64},v0=legacy,v1={good}"
    assert (
        verify_stripe_signature(body=BODY, header=header, secrets=["old", SECRET], now=NOW) == NOW
    )


def test_tampered_body_is_refused() -> None:
    header = stripe_signature_header(SECRET, NOW, BODY)
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        verify_stripe_signature(body=BODY + b" ", header=header, secrets=[SECRET], now=NOW)


def test_stale_timestamp_is_refused_even_with_a_valid_signature() -> None:
    header = stripe_signature_header(SECRET, NOW, BODY)
    with pytest.raises(SignatureError, match="outside the 300 s tolerance"):
        verify_stripe_signature(body=BODY, header=header, secrets=[SECRET], now=NOW + 301)
    # A clock ahead of ours is as suspicious as a replay.
    with pytest.raises(SignatureError, match="tolerance"):
        verify_stripe_signature(body=BODY, header=header, secrets=[SECRET], now=NOW - 301)


def test_wrong_secret_is_refused() -> None:
    header = stripe_signature_header("whsec_someone_else", NOW, BODY)
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        verify_stripe_signature(body=BODY, header=header, secrets=[SECRET], now=NOW)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "header missing"),
        ("", "header missing"),
        (f"v1={'a' * 64}", "no timestamp"),
        (f"t={NOW}", "no v1 signature"),
        (f"t=soon,v1={'a' * 64}", "not an integer"),
    ],
)
def test_malformed_stripe_headers_say_why(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_stripe_signature(body=BODY, header=header, secrets=[SECRET], now=NOW)


def test_no_configured_secret_refuses_everything() -> None:
    header = stripe_signature_header(SECRET, NOW, BODY)
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify_stripe_signature(body=BODY, header=header, secrets=[], now=NOW)


def test_a_blank_secret_counts_as_none() -> None:
    header = stripe_signature_header(" ", NOW, BODY)
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify_stripe_signature(body=BODY, header=header, secrets=[" ", "\t"], now=NOW)
    # Beside a real one it is skipped, and the real one still verifies.
    good = stripe_signature_header(SECRET, NOW, BODY)
    assert verify_stripe_signature(body=BODY, header=good, secrets=[" ", SECRET], now=NOW) == NOW


def adyen_item(**overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "pspReference": "9915555555555555",
        "originalReference": "9913333333333333",
        "merchantAccountCode": "MaisonEU",
        "merchantReference": "FR-100001",
        "amount": {"value": 245000, "currency": "EUR"},
        "eventCode": "NOTIFICATION_OF_CHARGEBACK",
        "success": "true",
        "eventDate": "2026-11-20T10:15:30+01:00",
        "additionalData": {},
    }
    item.update(overrides)
    return item


def test_adyen_signing_string_follows_adyens_field_order() -> None:
    assert adyen_signing_string(adyen_item()) == (
        "9915555555555555:9913333333333333:MaisonEU:FR-100001:245000:EUR:"
        "NOTIFICATION_OF_CHARGEBACK:true"
    )
    assert adyen_signing_string(adyen_item(originalReference=None)).startswith(
        "9915555555555555::MaisonEU"
    )


def test_adyen_signature_uses_the_hex_decoded_key_and_base64() -> None:
    item = adyen_item()
    digest = hmac.new(
        bytes.fromhex(ADYEN_KEY), adyen_signing_string(item).encode(), hashlib.sha256
    ).digest()
    assert adyen_signature(ADYEN_KEY, item) == base64.b64encode(digest).decode()


def test_valid_adyen_item_verifies() -> None:
    item = adyen_item()
    item["additionalData"] = {"hmacSignature": adyen_signature(ADYEN_KEY, item)}
    verify_adyen_item(item, [ADYEN_KEY])


def test_tampered_adyen_amount_is_refused() -> None:
    item = adyen_item()
    item["additionalData"] = {"hmacSignature": adyen_signature(ADYEN_KEY, item)}
    item["amount"] = {"value": 1, "currency": "EUR"}
    with pytest.raises(SignatureError, match="does not match"):
        verify_adyen_item(item, [ADYEN_KEY])


def test_adyen_wrong_key_missing_signature_and_bad_key_are_refused() -> None:
    item = adyen_item()
    item["additionalData"] = {"hmacSignature": adyen_signature(ADYEN_KEY, item)}
    with pytest.raises(SignatureError, match="does not match"):
        verify_adyen_item(item, ["00" * 32])
    with pytest.raises(SignatureError, match="hmacSignature: missing"):
        verify_adyen_item(adyen_item(), [ADYEN_KEY])
    with pytest.raises(SignatureError, match="not valid hex"):
        verify_adyen_item(item, ["not-hex"])


# -- the providers' own libraries -------------------------------------------


def test_a_header_signed_by_stripes_library_verifies_and_spaces_are_tolerated() -> None:
    import stripe

    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET, timestamp=NOW)
    assert verify_stripe_signature(body=BODY, header=header, secrets=[SECRET], now=NOW) == NOW
    spaced = header.replace(",", ", ")
    assert verify_stripe_signature(body=BODY, header=spaced, secrets=[SECRET], now=NOW) == NOW


def test_a_body_that_is_not_utf8_is_refused_like_any_mismatch() -> None:
    body = b"\xff\xfe" + BODY
    header = stripe_signature_header(SECRET, NOW, body)
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        verify_stripe_signature(body=body, header=header, secrets=[SECRET], now=NOW)


def test_rolled_secrets_the_new_one_matches_after_the_old_one_fails() -> None:
    header = stripe_signature_header("whsec_new", NOW, BODY)
    assert (
        verify_stripe_signature(
            body=BODY, header=header, secrets=["whsec_old", "whsec_new"], now=NOW
        )
        == NOW
    )


def test_an_item_signed_by_adyens_library_verifies_and_a_null_field_reads_as_empty() -> None:
    from Adyen.util import generate_notification_sig

    item = adyen_item()
    item["additionalData"] = {
        "hmacSignature": generate_notification_sig(
            {k: v for k, v in item.items() if k != "additionalData"}, ADYEN_KEY
        ).decode()
    }
    verify_adyen_item(item, [ADYEN_KEY])
    # Adyen leaves originalReference out when there is none; a null is the same.
    absent = adyen_item()
    del absent["originalReference"]
    absent["additionalData"] = {"hmacSignature": adyen_signature(ADYEN_KEY, absent)}
    nulled = dict(absent, originalReference=None)
    verify_adyen_item(absent, [ADYEN_KEY])
    verify_adyen_item(nulled, [ADYEN_KEY])
