"""The personal-data store's master keyring for this process (issue 21).

Every process that reads or writes personal data (worker, API, `steward up`,
`steward migrate`, `steward personal-data ...`) calls
`configure_personal_data(settings)` once at start. The keyring file has the
payload codec's format and rotation (workers/codec.py) but is a separate file
(STEWARD_PERSONAL_DATA_KEYRING, default <data dir>/personal-data-keyring.json),
created with a fresh key on first start when absent. See docs/personal_data.md.
"""

from __future__ import annotations

from store import personal_data
from workers.codec import Keyring, load_or_create_keyring, rotate_keyring
from workers.settings import Settings


def configure_personal_data(settings: Settings) -> None:
    """Configure the store from the settings' keyring file, unless this process
    already did (tests configure one keyring for the whole session)."""
    if personal_data.is_configured():
        return
    personal_data.configure(load_or_create_keyring(settings.personal_data_keyring))


def rotate_personal_data_key(settings: Settings) -> Keyring:
    """Add a new active master key to the file and use it in this process;
    the caller then re-wraps the data keys (personal_data.rewrap_data_keys)."""
    keyring = rotate_keyring(settings.personal_data_keyring)
    personal_data.configure(keyring)
    return keyring


async def prepare_personal_data(settings: Settings, db: personal_data.Executor) -> int:
    """At start, after the migrations: configure the keyring and encrypt what a
    migration moved into personal_data_pending; returns how many subjects."""
    configure_personal_data(settings)
    return await personal_data.seal_pending(db)
