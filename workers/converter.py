"""Steward's Temporal data converter, shared by workers, clients and tests.

Every process that talks to Temporal must use the same converter, or it will
not be able to read what the others wrote.
"""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from workers.codec import EncryptionCodec, Keyring


def build_data_converter(keyring: Keyring) -> DataConverter:
    """Pydantic JSON payloads, AES-GCM encrypted, with encrypted failure details.

    The encoded-attributes failure converter moves failure messages and stack
    traces into an (encrypted) payload: an error message such as "address
    'Via Roma 1' is not deliverable" would otherwise sit in clear in history.
    """
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
