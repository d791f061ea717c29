"""Key handling of the personal-data store (store/personal_data.py), no database:
wrapping, rotation, a destroyed key, a wrong key, fingerprints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from store import personal_data as pd
from workers.codec import Keyring


@pytest.fixture
def keyring() -> Iterator[Keyring]:
    ring = Keyring.generate()
    previous = pd._vault
    pd.configure(ring)
    yield ring
    pd._vault = previous


def test_fields_round_trip_under_the_data_key(keyring: Keyring) -> None:
    vault = pd._current()
    sid = pd.new_subject_id()
    data_key = b"\x01" * pd.KEY_BYTES
    sealed = pd._encrypt_fields(sid, data_key, {"email": "ada@example.com", "name": "Ada"})
    assert b"ada@example.com" not in sealed
    wrapped = pd._seal(vault.ciphers[vault.active], data_key, pd._wrap_aad(sid))
    unwrapped = pd._unwrap(vault, sid, vault.active, wrapped)
    assert pd._decrypt_fields(sid, unwrapped, sealed) == {
        "email": "ada@example.com",
        "name": "Ada",
    }


def test_a_ciphertext_moved_to_another_subject_does_not_decrypt(keyring: Keyring) -> None:
    data_key = b"\x02" * pd.KEY_BYTES
    sealed = pd._encrypt_fields("subj_aaaaaaaa", data_key, {"name": "Ada"})
    with pytest.raises(pd.PersonalDataKeyError, match="failed authentication"):
        pd._decrypt_fields("subj_bbbbbbbb", data_key, sealed)


def test_a_wrong_master_key_is_a_clear_error_not_garbage(keyring: Keyring) -> None:
    vault = pd._current()
    sid = pd.new_subject_id()
    wrapped = pd._seal(vault.ciphers[vault.active], b"\x03" * 32, pd._wrap_aad(sid))
    # Same key id, other key material: the file was replaced by someone else's.
    pd.configure(Keyring.generate())
    with pytest.raises(pd.PersonalDataKeyError, match="wrong master key or tampered") as err:
        pd._unwrap(pd._current(), sid, "k1", wrapped)
    assert sid in str(err.value)


def test_a_missing_master_key_names_the_key_id(keyring: Keyring) -> None:
    sid = pd.new_subject_id()
    with pytest.raises(pd.PersonalDataKeyError, match="'k9', which is not in the keyring"):
        pd._unwrap(pd._current(), sid, "k9", b"\x00" * 40)


def test_a_truncated_key_is_refused(keyring: Keyring) -> None:
    with pytest.raises(pd.PersonalDataKeyError, match="truncated"):
        pd._unwrap(pd._current(), "subj_aaaaaaaa", "k1", b"\x00" * 5)


def test_rotation_keeps_old_wraps_readable_and_fingerprints_stable(keyring: Keyring) -> None:
    sid = pd.new_subject_id()
    data_key = b"\x04" * 32
    old = pd._current()
    wrapped_k1 = pd._seal(old.ciphers["k1"], data_key, pd._wrap_aad(sid))
    print_before = pd.fingerprint("Ada@Example.com")
    id_before = pd.subject_id_for("customer", "ord-1")

    rotated = keyring.with_new_active_key()
    pd.configure(rotated)
    assert pd.active_master_key_id() == "k2"
    assert pd._unwrap(pd._current(), sid, "k1", wrapped_k1) == data_key
    assert pd.fingerprint("ada@example.com ") == print_before
    assert pd.subject_id_for("customer", "ord-1") == id_before


def test_a_keyring_whose_active_key_is_missing_is_refused() -> None:
    class Broken:
        active = "k2"
        keys = {"k1": b"\x00" * 32}

    with pytest.raises(pd.PersonalDataKeyError, match="'k2' is not in the keyring"):
        pd.configure(Broken())


def test_unconfigured_use_says_what_to_do() -> None:
    previous = pd._vault
    pd._vault = None
    try:
        with pytest.raises(pd.PersonalDataNotConfigured, match="configure"):
            pd.fingerprint("x")
    finally:
        pd._vault = previous


def test_fingerprints_fold_case_and_space_and_depend_on_the_key(keyring: Keyring) -> None:
    one = pd.fingerprint("  Ada   LOVELACE ")
    assert one == pd.fingerprint("ada lovelace")
    assert one.startswith("fp_") and "ada" not in one
    assert one != pd.fingerprint("ada lovelac")
    pd.configure(Keyring.generate())
    assert pd.fingerprint("ada lovelace") != one


def test_subject_ids_are_opaque_and_deterministic(keyring: Keyring) -> None:
    sid = pd.subject_id_for("customer", "ord-123")
    assert pd.is_subject_id(sid) and "ord" not in sid
    assert sid == pd.subject_id_for("customer", "ord-123")
    assert sid != pd.subject_id_for("address", "ord-123")
    assert pd.is_subject_id(pd.new_subject_id())
    assert not pd.is_subject_id("ord-123")


def test_bad_arguments_name_the_argument_not_the_value(keyring: Keyring) -> None:
    with pytest.raises(pd.InvalidPersonalData, match=r"^kind:"):
        pd._check_kind("Customer!")
    with pytest.raises(pd.InvalidPersonalData, match=r"^fields\.email: must be a string"):
        pd._check_fields({"email": 3})  # type: ignore[dict-item]
    with pytest.raises(pd.InvalidPersonalData, match=r"^fields\.note: longer") as err:
        pd._check_fields({"note": "secret " * 5000})
    assert "secret" not in str(err.value)
    with pytest.raises(pd.InvalidPersonalData, match=r"^subject_id:"):
        pd._check_subject_id("ada@example.com")
