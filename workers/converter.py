"""Steward's Temporal data converter, shared by workers, clients and tests.

Every process that talks to Temporal must use the same converter, or it will
not be able to read what the others wrote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from workers.codec import UNENCRYPTED_METADATA, EncryptionCodec, Keyring
from workers.decision_signing import unencrypted_arguments


class StewardPayloadConverter(PydanticPayloadConverter):
    """Pydantic JSON, noting whether the arguments it decodes arrived unencrypted.

    The worker decodes an update's arguments and runs its validator in the
    same task, right after: the decision verifier (workers/decision_signing.py)
    reads the note to refuse a human decision sent without the codec.
    """

    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: list[type] | None = None
    ) -> list[Any]:
        unencrypted_arguments.set(any(UNENCRYPTED_METADATA in p.metadata for p in payloads))
        return super().from_payloads(payloads, type_hints)


def build_data_converter(keyring: Keyring) -> DataConverter:
    """Pydantic JSON payloads, AES-GCM encrypted, with encrypted failure details.

    The encoded-attributes failure converter moves failure messages and stack
    traces into an (encrypted) payload: an error message such as "address
    'Via Roma 1' is not deliverable" would otherwise sit in clear in history.
    """
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=StewardPayloadConverter,
        payload_codec=EncryptionCodec(keyring, mark_unencrypted=True),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
