"""AES-256-GCM payload encryption with key ids, so keys can be rotated.

Temporal stores every workflow input, result, signal and failure payload. These
carry customer data (names, addresses, order contents), so the worker and every
client encrypt them before they leave the process; the Temporal server, its
database and its UI only see ciphertext. The UI decrypts through the API's
codec endpoint (/codec/decode), which uses this same codec.

Wire format (the one used by Temporal's encryption samples): the whole
serialized `Payload` is encrypted; the outer payload has metadata
`encoding=binary/encrypted` and `encryption-key-id=<kid>`, and its data is a
random 12-byte nonce followed by the AES-GCM ciphertext and tag.

Rotation: `rotate_keyring` adds a new active key and keeps the old ones, so
histories written under an old key still decrypt. Processes read the keyring
at start; restart them after a rotation to start writing with the new key.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
# Put by a marking codec (the data converter's) on a payload that arrived
# without encryption, so the worker can refuse such a human decision
# (workers/decision_signing.py); a plain payload is still decoded as before.
UNENCRYPTED_METADATA = "steward-unencrypted"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce size

_KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CodecError(Exception):
    """A payload cannot be decrypted: unknown key id, tampered or truncated data."""


class KeyringError(ValueError):
    """The keyring file or object is invalid."""


@dataclass(frozen=True)
class Keyring:
    """The active key id and every key still needed to read old payloads."""

    active: str
    keys: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise KeyringError(f"active key id {self.active!r} is not in the keyring")
        for kid, key in self.keys.items():
            if not _KEY_ID_PATTERN.match(kid):
                raise KeyringError(f"invalid key id {kid!r}")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {kid!r} must be {KEY_BYTES} bytes, got {len(key)}")

    @classmethod
    def generate(cls, key_id: str = "k1") -> Keyring:
        return cls(active=key_id, keys={key_id: secrets.token_bytes(KEY_BYTES)})

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        try:
            raw = json.loads(text)
            active = raw["active"]
            encoded = raw["keys"]
            if not isinstance(active, str) or not isinstance(encoded, dict):
                raise TypeError("'active' must be a string and 'keys' an object")
            keys = {
                str(kid): base64.b64decode(value, validate=True) for kid, value in encoded.items()
            }
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise KeyringError(f"invalid keyring JSON: {exc}") from exc
        return cls(active=active, keys=keys)

    def to_json(self) -> str:
        encoded = {kid: base64.b64encode(key).decode("ascii") for kid, key in self.keys.items()}
        return json.dumps({"active": self.active, "keys": encoded}, indent=2)

    def with_new_active_key(self) -> Keyring:
        """A copy with a fresh random key that becomes active; old keys stay for decoding."""
        numbers = [int(kid[1:]) for kid in self.keys if re.fullmatch(r"k\d+", kid)]
        new_id = f"k{max(numbers, default=0) + 1}"
        while new_id in self.keys:  # only possible with hand-written ids
            new_id = f"{new_id}x"
        return Keyring(active=new_id, keys={**self.keys, new_id: secrets.token_bytes(KEY_BYTES)})


def _write_private(path: Path, text: str, *, replace: bool) -> bool:
    """Write `text` to `path` with mode 0600, atomically.

    With replace=False the file is only created if absent (returns False when
    another process got there first), so two processes starting together on a
    fresh data dir end up sharing one key instead of each writing its own.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp already creates the file 0600; say so explicitly anyway.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails if path exists: atomic create-if-absent
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def load_keyring(path: Path) -> Keyring:
    return Keyring.from_json(path.read_text(encoding="utf-8"))


def load_or_create_keyring(path: Path) -> Keyring:
    """Read the keyring at `path`, creating one with a fresh random dev key if absent."""
    if not path.exists():
        _write_private(path, Keyring.generate().to_json(), replace=False)
    return load_keyring(path)


def rotate_keyring(path: Path) -> Keyring:
    """Add a new active key to the keyring file, keeping the old keys for decoding."""
    rotated = load_or_create_keyring(path).with_new_active_key()
    _write_private(path, rotated.to_json(), replace=True)
    return rotated


def _marked(payload: Payload) -> Payload:
    copy = Payload()
    copy.CopyFrom(payload)
    copy.metadata[UNENCRYPTED_METADATA] = b"1"
    return copy


class EncryptionCodec(PayloadCodec):
    """Encrypts with the keyring's active key; decrypts with the key named in the payload."""

    def __init__(self, keyring: Keyring, *, mark_unencrypted: bool = False) -> None:
        self._keyring = keyring
        self._mark_unencrypted = mark_unencrypted
        # AESGCM objects are reusable and thread-safe; build them once.
        self._ciphers = {kid: AESGCM(key) for kid, key in keyring.keys.items()}
        self._active_id = keyring.active
        self._active_id_bytes = keyring.active.encode("ascii")

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._mark_unencrypted:
            return [
                self.decrypt(p) if p.metadata.get("encoding") == ENCODING else _marked(p)
                for p in payloads
            ]
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[self._active_id].encrypt(
            nonce, payload.SerializeToString(), None
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self._active_id_bytes},
            data=nonce + ciphertext,
        )

    def decrypt(self, payload: Payload) -> Payload:
        # Payloads written before encryption was switched on, or by a client
        # without the codec, stay readable.
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_kid = payload.metadata.get(KEY_ID_METADATA)
        if raw_kid is None:
            raise CodecError("encrypted payload has no encryption-key-id metadata")
        kid = raw_kid.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise CodecError(
                f"payload encrypted with unknown key id {kid!r}; "
                f"keyring has {sorted(self._ciphers)} (was an old key removed?)"
            )
        if len(payload.data) <= NONCE_BYTES:
            raise CodecError(f"encrypted payload (key id {kid!r}) is truncated")
        nonce, ciphertext = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plaintext = cipher.decrypt(nonce, ciphertext, None)
        except InvalidTag as exc:
            raise CodecError(
                f"payload failed authentication with key id {kid!r} (tampered or wrong key)"
            ) from exc
        return Payload.FromString(plaintext)
