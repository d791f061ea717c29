"""AES-GCM payload codec: round trips, key rotation, tampering, key file handling."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from workers.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecError,
    EncryptionCodec,
    Keyring,
    KeyringError,
    load_or_create_keyring,
    rotate_keyring,
)
from workers.converter import build_data_converter


def _plain(data: bytes = b'{"order_id":"FR-1","email":"a@example.com"}') -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


async def test_roundtrip_hides_plaintext_and_restores_payload(keyring: Keyring) -> None:
    codec = EncryptionCodec(keyring)
    original = _plain()

    [encrypted] = await codec.encode([original])

    assert encrypted.metadata["encoding"] == ENCODING
    assert encrypted.metadata[KEY_ID_METADATA] == b"k1"
    assert b"a@example.com" not in encrypted.data
    assert b"json/plain" not in encrypted.data  # metadata is encrypted too
    assert await codec.decode([encrypted]) == [original]


async def test_same_payload_encrypts_differently_each_time(keyring: Keyring) -> None:
    codec = EncryptionCodec(keyring)
    first, second = await codec.encode([_plain(), _plain()])
    assert first.data != second.data  # random nonce per payload


async def test_payload_from_old_key_decrypts_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    old_codec = EncryptionCodec(load_or_create_keyring(path))
    [old_payload] = await old_codec.encode([_plain(b'"before rotation"')])

    rotated = rotate_keyring(path)
    new_codec = EncryptionCodec(load_or_create_keyring(path))

    assert rotated.active == "k2"
    assert set(rotated.keys) == {"k1", "k2"}
    assert await new_codec.decode([old_payload]) == [_plain(b'"before rotation"')]
    [new_payload] = await new_codec.encode([_plain(b'"after rotation"')])
    assert new_payload.metadata[KEY_ID_METADATA] == b"k2"
    # A process still on the old keyring cannot read the new key's payloads...
    with pytest.raises(CodecError, match="unknown key id 'k2'"):
        await old_codec.decode([new_payload])
    # ...which is why old keys must be kept: rotation keeps k1 byte for byte.
    assert rotated.keys["k1"] == old_codec.keyring.keys["k1"]


async def test_tampered_ciphertext_is_rejected(keyring: Keyring) -> None:
    codec = EncryptionCodec(keyring)
    [encrypted] = await codec.encode([_plain()])
    flipped = bytearray(encrypted.data)
    flipped[-1] ^= 0x01
    tampered = Payload(metadata=dict(encrypted.metadata), data=bytes(flipped))

    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([tampered])


async def test_truncated_ciphertext_is_rejected(keyring: Keyring) -> None:
    codec = EncryptionCodec(keyring)
    [encrypted] = await codec.encode([_plain()])
    truncated = Payload(metadata=dict(encrypted.metadata), data=encrypted.data[:8])
    with pytest.raises(CodecError, match="truncated"):
        await codec.decode([truncated])


async def test_unknown_key_id_gives_a_clear_error(keyring: Keyring) -> None:
    other = EncryptionCodec(Keyring.generate("k9"))
    [foreign] = await other.encode([_plain()])

    with pytest.raises(CodecError, match=r"unknown key id 'k9'.*\['k1'\]"):
        await EncryptionCodec(keyring).decode([foreign])


async def test_missing_key_id_metadata_is_rejected(keyring: Keyring) -> None:
    codec = EncryptionCodec(keyring)
    [encrypted] = await codec.encode([_plain()])
    without_kid = Payload(metadata={"encoding": ENCODING}, data=encrypted.data)
    with pytest.raises(CodecError, match="no encryption-key-id"):
        await codec.decode([without_kid])


async def test_plaintext_payloads_pass_through_decode(keyring: Keyring) -> None:
    codec = EncryptionCodec(keyring)
    plain = [_plain(), Payload(metadata={"encoding": b"binary/null"})]
    assert await codec.decode(plain) == plain


def test_keyring_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "keyring.json"

    created = load_or_create_keyring(path)
    again = load_or_create_keyring(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert created == again
    raw = json.loads(path.read_text())
    assert raw["active"] == "k1"
    assert set(raw["keys"]) == {"k1"}
    assert len(created.keys["k1"]) == 32


def test_rotated_keyring_file_stays_0600(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    load_or_create_keyring(path)
    rotate_keyring(path)
    rotated = rotate_keyring(path)
    assert rotated.active == "k3"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_keyring(path) == rotated


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"active": "k1"}',
        '{"active": "k2", "keys": {"k1": "' + "A" * 44 + '"}}',
        '{"active": "k1", "keys": {"k1": "c2hvcnQ="}}',
        '{"active": "k1", "keys": {"k1": "%%%"}}',
    ],
)
def test_invalid_keyring_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(content)
    with pytest.raises(KeyringError):
        load_or_create_keyring(path)


async def test_data_converter_encrypts_values_and_failure_messages(keyring: Keyring) -> None:
    converter = build_data_converter(keyring)

    [payload] = await converter.encode([{"email": "a@example.com"}])
    assert payload.metadata["encoding"] == ENCODING
    assert await converter.decode([payload]) == [{"email": "a@example.com"}]

    failure = Failure()
    await converter.encode_failure(
        ApplicationError("address Via Roma 1 is not deliverable", type="Undeliverable"),
        failure,
    )
    # The encoded-attributes failure converter moves the message into an
    # encrypted payload; the server only sees a placeholder.
    assert "Via Roma" not in failure.message
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    decoded = await converter.decode_failure(failure)
    assert "Via Roma 1" in str(decoded)
