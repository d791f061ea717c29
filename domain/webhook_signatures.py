"""Webhook signature verification for Stripe and Adyen, pure and clock-injected
so every refusal path is unit-tested without a server.

Stripe: the `Stripe-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`
(several v1 values while a secret is being rolled; v0 and unknown schemes are
ignored). The signature is HMAC-SHA256, keyed with the endpoint secret, over
`{t}.{raw body}` - the raw bytes, never a re-serialised JSON. A timestamp
further than the tolerance from now is refused, which bounds replays.

Adyen: each NotificationRequestItem carries `additionalData.hmacSignature`,
base64 of HMAC-SHA256 keyed with the hex-decoded HMAC key, over
`pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success`
(missing values are empty strings).

The cryptographic checks are the providers' own: Stripe's
`stripe.WebhookSignature.verify_header` and Adyen's
`Adyen.util.is_valid_hmac_notification` (EasyPost's `validate_webhook` in
domain/carrier_events.py). What stays Steward's: parsing the header to say
precisely why a request is refused, the tolerance in both directions against an
injected clock (Stripe's library only bounds the past, on the wall clock),
several secrets during a roll, and the refusal messages. The libraries compare
in constant time (hmac.compare_digest), so a caller cannot learn a valid
signature byte by byte from response times.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from Adyen.util import is_valid_hmac_notification
from stripe import SignatureVerificationError as StripeSignatureError
from stripe import WebhookSignature

STRIPE_SCHEME = "v1"
STRIPE_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The request is not provably from the provider; the message says why
    (never containing the secret or the expected signature)."""


_HEX = re.compile(r"[0-9a-f]+")


def stripe_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex v1 signature Stripe computes for `body` sent at `timestamp`."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def stripe_signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """A header as Stripe sends it (for the simulator and tests)."""
    return f"t={timestamp},{STRIPE_SCHEME}={stripe_signature(secret, timestamp, body)}"


def parse_stripe_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("Stripe-Signature: timestamp t is not an integer") from None
        elif key == STRIPE_SCHEME and value:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("Stripe-Signature: no timestamp (t=...)")
    if not signatures:
        raise SignatureError(f"Stripe-Signature: no {STRIPE_SCHEME} signature")
    return timestamp, signatures


def verify_stripe_signature(
    *,
    body: bytes,
    header: str | None,
    secrets: list[str],
    now: float,
    tolerance_seconds: int = STRIPE_TOLERANCE_SECONDS,
) -> int:
    """Return the signed timestamp when one of `secrets` signed `body`;
    raise SignatureError otherwise. Several secrets: during a roll both the
    old and the new endpoint secret are valid."""
    if not header:
        raise SignatureError("Stripe-Signature: header missing")
    # A blank secret signs nothing (Stripe's library refuses one): not configured.
    secrets = [s for s in secrets if s.strip(" \t\r\n\f\v")]
    if not secrets:
        raise SignatureError("Stripe-Signature: no webhook secret is configured")
    timestamp, signatures = parse_stripe_header(header)
    age = now - timestamp
    if abs(age) > tolerance_seconds:
        raise SignatureError(
            f"Stripe-Signature: timestamp is {int(age)} s from now, outside the "
            f"{tolerance_seconds} s tolerance (stale or replayed)"
        )
    # A v1 signature is lowercase hex; anything else matches nothing (and
    # would make the library's constant-time compare raise TypeError).
    signatures = [sig for sig in signatures if _HEX.fullmatch(sig)]
    if not signatures:
        raise SignatureError("Stripe-Signature: no v1 signature matches the body")
    # The header as Stripe's library reads it (no spaces, v1 values only), so
    # what Steward parsed above is what the library checks.
    canonical = ",".join([f"t={timestamp}", *(f"{STRIPE_SCHEME}={s}" for s in signatures)])
    for secret in secrets:
        try:
            # tolerance=None: the window was checked above, on the injected clock.
            WebhookSignature.verify_header(body, canonical, secret, tolerance=None)
        except StripeSignatureError:
            continue
        except UnicodeDecodeError:
            # Stripe signs the UTF-8 text of its JSON; other bytes are not its.
            break
        return timestamp
    raise SignatureError("Stripe-Signature: no v1 signature matches the body")


# -- Adyen -------------------------------------------------------------------

ADYEN_SIGNED_FIELDS = (
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "value",
    "currency",
    "eventCode",
    "success",
)


def adyen_signing_string(item: Mapping[str, Any]) -> str:
    amount = item.get("amount") or {}
    values = {
        "pspReference": item.get("pspReference"),
        "originalReference": item.get("originalReference"),
        "merchantAccountCode": item.get("merchantAccountCode"),
        "merchantReference": item.get("merchantReference"),
        "value": amount.get("value") if isinstance(amount, Mapping) else None,
        "currency": amount.get("currency") if isinstance(amount, Mapping) else None,
        "eventCode": item.get("eventCode"),
        "success": item.get("success"),
    }
    return ":".join("" if values[f] is None else str(values[f]) for f in ADYEN_SIGNED_FIELDS)


def _adyen_key(hex_key: str) -> bytes:
    try:
        return binascii.unhexlify(hex_key.strip())
    except (binascii.Error, ValueError):
        raise SignatureError("Adyen HMAC key in configuration is not valid hex") from None


def adyen_signature(hex_key: str, item: Mapping[str, Any]) -> str:
    digest = hmac.new(
        _adyen_key(hex_key), adyen_signing_string(item).encode("utf-8"), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_adyen_item(item: Mapping[str, Any], hex_keys: list[str]) -> None:
    """Raise SignatureError unless one of `hex_keys` signed this item."""
    if not hex_keys:
        raise SignatureError("hmacSignature: no Adyen HMAC key is configured")
    additional = item.get("additionalData") or {}
    received = additional.get("hmacSignature") if isinstance(additional, Mapping) else None
    if not isinstance(received, str) or not received:
        raise SignatureError("additionalData.hmacSignature: missing")
    if not received.isascii():
        # Base64 is ASCII; the library's compare would raise TypeError.
        raise SignatureError("additionalData.hmacSignature: does not match the item")
    signed = _adyen_library_item(item, received)
    for key in hex_keys:
        _adyen_key(key)  # a key that is not hex is a configuration error, said as such
        try:
            valid = is_valid_hmac_notification(signed, key)
        except UnicodeEncodeError:
            # A lone surrogate ("\udc80" in the JSON): no UTF-8 text Adyen signed.
            raise SignatureError(
                "additionalData.hmacSignature: the signed fields are not valid UTF-8"
            ) from None
        if valid:
            return
    raise SignatureError("additionalData.hmacSignature: does not match the item")


def _adyen_library_item(item: Mapping[str, Any], received: str) -> dict[str, Any]:
    """The item as Adyen's library signs it: the signed fields only, a missing
    value (absent or null) as an empty string - the library would write
    "None" for a null - and the amount always present."""
    amount = item.get("amount")
    amount = amount if isinstance(amount, Mapping) else {}
    signed: dict[str, Any] = {
        field: item[field]
        for field in ADYEN_SIGNED_FIELDS
        if field not in ("value", "currency") and item.get(field) is not None
    }
    signed["amount"] = {
        "value": "" if amount.get("value") is None else amount["value"],
        "currency": "" if amount.get("currency") is None else amount["currency"],
    }
    signed["additionalData"] = {"hmacSignature": received}
    return signed
