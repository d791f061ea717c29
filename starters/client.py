"""The one way Steward processes connect to Temporal."""

from __future__ import annotations

from temporalio.client import Client

from workers.codec import load_or_create_keyring
from workers.converter import build_data_converter
from workers.decision_signing import DecisionSigner
from workers.settings import Settings, get_settings


async def connect(settings: Settings | None = None) -> Client:
    """A client on `settings.temporal_target` / namespace with Steward's encrypting
    converter, signing every update it sends (workers/decision_signing.py)."""
    settings = settings or get_settings()
    keyring = load_or_create_keyring(settings.keyring_path)
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=build_data_converter(keyring),
        interceptors=[DecisionSigner(load_or_create_keyring(settings.decision_keyring_file))],
    )
