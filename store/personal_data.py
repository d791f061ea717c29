"""The personal-data store: every name, email, phone, address and free-text
message Steward keeps, encrypted per subject and erasable (issue 21).

What lives here
    A *subject* is one bundle of personal fields (``{"email": ..., "name":
    ...}``) of one kind: ``customer``, ``address``, ``contact``, ``employee``,
    ``message``... Everything else in Steward (shipments, cases, the audit
    log, the ledger, reports, Temporal payloads) holds only the opaque subject
    id (``subj_...``) and, to match without the value, a keyed fingerprint
    (``fingerprint(value)``). Table layout: store/migrations/0012_personal_data.sql.

Encryption (crypto-shredding)
    Each subject has its own random 256-bit data key; its fields are one
    AES-GCM ciphertext under that key (associated data: the subject id, so a
    ciphertext copied onto another row does not decrypt). The data key is
    stored wrapped (AES-GCM) by the active *master key* of a keyring in the
    payload codec's format (workers/codec.py: ``{"active": kid, "keys": {kid:
    base64}}``), with the master key id beside it. Reading needs the master
    key; erasing destroys the wrapped data key and the ciphertext, so every
    copy of the row (backups, WAL, replicas) is unreadable from then on.

Keyring
    The process configures the master keyring once at start with
    ``configure(keyring)`` (the worker, the API and ``steward up`` do it from
    ``STEWARD_PERSONAL_DATA_KEYRING``, default ``<data dir>/personal-data-keyring.json``;
    tests configure a generated one). Any object with ``active: str`` and
    ``keys: Mapping[str, bytes]`` works, e.g. ``workers.codec.Keyring``.
    Rotation: add a new active key to the file (``steward personal-data
    rotate-key``), restart, then ``rewrap_data_keys`` re-wraps every data key
    still under an older master key. Never drop a master key from the file
    while a data key is still wrapped by it (``count_by_master_key``). The
    fingerprint key is derived from the keyring's first key (``k1``) so
    fingerprints stay stable across rotations.

Errors
    ``UnknownSubject`` (no such id), ``SubjectErased`` (the subject existed
    and was erased: its ``erased_at`` and ``reason`` are public),
    ``PersonalDataKeyError`` (the master key named by the row is not in the
    keyring, or the data failed authentication: a wrong key never yields
    garbage), ``PersonalDataNotConfigured`` (``configure`` was never called).
    No error message ever carries a personal value.

Idempotency
    Activities are retried: pass a deterministic ``subject_id`` (e.g.
    ``subject_id_for("customer", order_id)``) so a retry rewrites the same
    subject instead of creating a second copy. ``put_subject`` on an erased
    subject raises ``SubjectErased`` and changes nothing.

Usage::

    from store import personal_data as pd

    sid = await pd.put_subject(
        db,
        kind="customer",
        fields={"email": order.customer.email, "name": order.customer.full_name},
        subject_id=pd.subject_id_for("customer", order.order_id),
        refs=[("order", order.order_id)],
    )
    fields = await pd.get_subject(db, sid)          # {"email": ..., "name": ...}
    many = await pd.read_subjects(db, [sid, other])  # one query, erased ones marked
    await pd.erase_subject(db, sid, reason="privacy-request:pr_1")
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeAlias

import asyncpg
import asyncpg.pool
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.common import SUBJECT_ID_PATTERN

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

SUBJECT_ID_PREFIX = "subj_"
KEY_BYTES = 32
NONCE_BYTES = 12
# Shown wherever an erased value used to be (labels, exports, the audit view).
ERASED_PLACEHOLDER = "[erased]"
# Fields whose fingerprint is indexed so a privacy request can find the
# subject (a field named so, or a path ending so: "order.customer.email").
MATCH_FIELDS: frozenset[str] = frozenset({"email", "phone"})

_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_FIELD_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,63}$")
_SUBJECT_ID_PATTERN = re.compile(SUBJECT_ID_PATTERN)
_REF_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MAX_FIELD_BYTES = 16_384
_FINGERPRINT_INFO = b"steward personal-data fingerprint v1"
_SUBJECT_ID_INFO = b"steward personal-data subject id v1"


# ------------------------------------------------------------------ errors


class PersonalDataError(Exception):
    """Base of this module's errors; messages never carry a personal value."""


class UnknownSubject(PersonalDataError, LookupError):
    def __init__(self, subject_id: str) -> None:
        super().__init__(f"subject_id: unknown subject {subject_id!r}")
        self.subject_id = subject_id


class SubjectErased(PersonalDataError):
    def __init__(self, subject_id: str, erased_at: datetime | None, reason: str | None) -> None:
        when = erased_at.isoformat() if erased_at else "unknown time"
        super().__init__(f"subject_id: subject {subject_id!r} was erased at {when}")
        self.subject_id = subject_id
        self.erased_at = erased_at
        self.reason = reason


class PersonalDataKeyError(PersonalDataError):
    """The master key is missing from the keyring, or the data failed
    authentication (wrong key, tampered row)."""


class PersonalDataNotConfigured(PersonalDataError):
    pass


class InvalidPersonalData(PersonalDataError, ValueError):
    """Bad arguments (kind, field names, sizes): names the argument, never the value."""


# ----------------------------------------------------------------- keyring


class MasterKeyring(Protocol):
    """What this module needs from a keyring (workers.codec.Keyring fits)."""

    @property
    def active(self) -> str: ...

    @property
    def keys(self) -> Mapping[str, bytes]: ...


def _first_key_id(keys: Mapping[str, bytes]) -> str:
    def order(kid: str) -> tuple[int, int, str]:
        match = re.fullmatch(r"k(\d+)", kid)
        return (0, int(match.group(1)), kid) if match else (1, 0, kid)

    return min(keys, key=order)


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)


@dataclass(frozen=True)
class _Vault:
    active: str
    ciphers: Mapping[str, AESGCM]
    fingerprint_key: bytes
    subject_id_key: bytes

    @classmethod
    def from_keyring(cls, keyring: MasterKeyring) -> _Vault:
        keys = dict(keyring.keys)
        if keyring.active not in keys:
            raise PersonalDataKeyError(
                f"active master key {keyring.active!r} is not in the keyring"
            )
        for kid, key in keys.items():
            if len(key) != KEY_BYTES:
                raise PersonalDataKeyError(f"master key {kid!r} must be {KEY_BYTES} bytes")
        base = keys[_first_key_id(keys)]
        return cls(
            active=keyring.active,
            ciphers={kid: AESGCM(key) for kid, key in keys.items()},
            fingerprint_key=_derive(base, _FINGERPRINT_INFO),
            subject_id_key=_derive(base, _SUBJECT_ID_INFO),
        )


_vault: _Vault | None = None


def configure(keyring: MasterKeyring) -> None:
    """Use `keyring` as the master keyring of this process (call once at start)."""
    global _vault
    _vault = _Vault.from_keyring(keyring)


def is_configured() -> bool:
    return _vault is not None


def active_master_key_id() -> str:
    return _current().active


def _current() -> _Vault:
    if _vault is None:
        raise PersonalDataNotConfigured(
            "the personal-data keyring is not configured: call "
            "store.personal_data.configure(keyring) at process start"
        )
    return _vault


# -------------------------------------------------------- ids, fingerprints


def _normalise(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).split()).casefold()


def fingerprint(value: str) -> str:
    """A keyed hash of `value` (HMAC-SHA256, case and whitespace folded) for
    matching without keeping the value: ``fp_`` + 32 hex characters."""
    digest = hmac.new(
        _current().fingerprint_key, _normalise(value).encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return f"fp_{digest[:32]}"


def subject_id_for(kind: str, business_key: str) -> str:
    """A deterministic, opaque subject id for (kind, business key), e.g. the
    customer of an order: retries and repeats reach the same subject, and the
    id reveals neither the key nor the data."""
    _check_kind(kind)
    mac = hmac.new(
        _current().subject_id_key, f"{kind}\x1f{business_key}".encode(), hashlib.sha256
    ).hexdigest()
    return f"{SUBJECT_ID_PREFIX}{mac[:32]}"


def new_subject_id() -> str:
    return f"{SUBJECT_ID_PREFIX}{secrets.token_hex(16)}"


def is_subject_id(value: object) -> bool:
    return isinstance(value, str) and _SUBJECT_ID_PATTERN.fullmatch(value) is not None


def _check_kind(kind: str) -> None:
    if not isinstance(kind, str) or not _KIND_PATTERN.fullmatch(kind):
        raise InvalidPersonalData("kind: must be lower-case letters, digits, '_' (max 40)")


def _check_subject_id(subject_id: str) -> None:
    if not is_subject_id(subject_id):
        raise InvalidPersonalData("subject_id: must look like 'subj_' + 8-64 [A-Za-z0-9_-]")


def _check_fields(fields: Mapping[str, str]) -> dict[str, str]:
    clean: dict[str, str] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not _FIELD_PATTERN.fullmatch(name):
            raise InvalidPersonalData(f"fields: invalid field name {str(name)[:64]!r}")
        if not isinstance(value, str):
            raise InvalidPersonalData(f"fields.{name}: must be a string")
        if len(value.encode("utf-8")) > _MAX_FIELD_BYTES:
            raise InvalidPersonalData(f"fields.{name}: longer than {_MAX_FIELD_BYTES} bytes")
        clean[name] = value
    return clean


# -------------------------------------------------------------- encryption


def _wrap_aad(subject_id: str) -> bytes:
    return f"steward-pd-key\x1f{subject_id}".encode()


def _data_aad(subject_id: str) -> bytes:
    return f"steward-pd-data\x1f{subject_id}".encode()


def _seal(cipher: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + cipher.encrypt(nonce, plaintext, aad)


def _open(cipher: AESGCM, sealed: bytes, aad: bytes, what: str) -> bytes:
    if len(sealed) <= NONCE_BYTES:
        raise PersonalDataKeyError(f"{what} is truncated")
    try:
        return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise PersonalDataKeyError(
            f"{what} failed authentication (wrong master key or tampered row)"
        ) from None


def _master(vault: _Vault, master_key_id: str, subject_id: str) -> AESGCM:
    cipher = vault.ciphers.get(master_key_id)
    if cipher is None:
        raise PersonalDataKeyError(
            f"subject {subject_id!r}: its data key is wrapped by master key "
            f"{master_key_id!r}, which is not in the keyring {sorted(vault.ciphers)}"
        )
    return cipher


def _unwrap(vault: _Vault, subject_id: str, master_key_id: str, wrapped: bytes) -> bytes:
    return _open(
        _master(vault, master_key_id, subject_id),
        wrapped,
        _wrap_aad(subject_id),
        f"subject {subject_id!r}: data key",
    )


def _decrypt_fields(subject_id: str, data_key: bytes, ciphertext: bytes) -> dict[str, str]:
    plain = _open(AESGCM(data_key), ciphertext, _data_aad(subject_id), f"subject {subject_id!r}")
    decoded = json.loads(plain.decode("utf-8"))
    return {str(k): str(v) for k, v in decoded.items()}


def _encrypt_fields(subject_id: str, data_key: bytes, fields: Mapping[str, str]) -> bytes:
    plain = json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _seal(AESGCM(data_key), plain, _data_aad(subject_id))


# ------------------------------------------------------------------ models


@dataclass(frozen=True)
class SubjectView:
    """One subject as read: its fields, or erased with when and why."""

    subject_id: str
    kind: str
    fields: Mapping[str, str] = field(default_factory=dict)
    erased_at: datetime | None = None
    erasure_reason: str | None = None

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    def get(self, name: str, default: str = "") -> str:
        """The field's value; ERASED_PLACEHOLDER once erased."""
        if self.erased:
            return ERASED_PLACEHOLDER
        return self.fields.get(name, default)


@dataclass(frozen=True)
class SubjectInfo:
    """What Steward knows about a subject without decrypting it."""

    subject_id: str
    kind: str
    owner_id: str | None
    master_key_id: str | None
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None
    erasure_reason: str | None
    refs: tuple[tuple[str, str], ...]


# ------------------------------------------------------------- operations


async def _in_transaction(db: Executor, work: Any) -> Any:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            return await work(conn)
    async with db.transaction():
        return await work(db)


async def put_subject(
    db: Executor,
    *,
    kind: str,
    fields: Mapping[str, str],
    subject_id: str | None = None,
    owner_id: str | None = None,
    refs: Iterable[tuple[str, str]] = (),
) -> str:
    """Store (or replace) a subject's fields, encrypted; returns its subject id.

    `owner_id`: the person subject this one belongs to (an address's
    customer), so a privacy request on the person reaches it. `refs`: business
    records it appears in, e.g. ``[("order", "ord_1")]``, for legal holds and
    exports (added, never removed by a later put). Fields named in
    MATCH_FIELDS get an indexed fingerprint. Raises SubjectErased (nothing
    written) when the subject was erased.
    """
    vault = _current()
    _check_kind(kind)
    clean = _check_fields(fields)
    sid = subject_id if subject_id is not None else new_subject_id()
    _check_subject_id(sid)
    if owner_id is not None:
        _check_subject_id(owner_id)
    ref_rows = _check_refs(refs)

    async def work(conn: asyncpg.Connection) -> str:
        row = await conn.fetchrow(
            """
            SELECT master_key_id, wrapped_key, erased_at, erasure_reason
            FROM personal_subjects WHERE subject_id = $1 FOR UPDATE
            """,
            sid,
        )
        if row is not None and row["erased_at"] is not None:
            raise SubjectErased(sid, row["erased_at"], row["erasure_reason"])
        if row is None:
            data_key = secrets.token_bytes(KEY_BYTES)
            wrapped = _seal(vault.ciphers[vault.active], data_key, _wrap_aad(sid))
            await conn.execute(
                """
                INSERT INTO personal_subjects (subject_id, kind, owner_id, master_key_id,
                                               wrapped_key, ciphertext)
                VALUES ($1, $2, $3, $4, $5, $6)
                """,
                sid,
                kind,
                owner_id,
                vault.active,
                wrapped,
                _encrypt_fields(sid, data_key, clean),
            )
        else:
            data_key = _unwrap(vault, sid, row["master_key_id"], bytes(row["wrapped_key"]))
            await conn.execute(
                """
                UPDATE personal_subjects
                SET kind = $2, owner_id = COALESCE($3, owner_id), ciphertext = $4,
                    updated_at = now()
                WHERE subject_id = $1
                """,
                sid,
                kind,
                owner_id,
                _encrypt_fields(sid, data_key, clean),
            )
            await conn.execute("DELETE FROM personal_fingerprints WHERE subject_id = $1", sid)
        prints = [(sid, name, fingerprint(v)) for name, v in clean.items() if _matches(name)]
        if prints:
            await conn.executemany(
                "INSERT INTO personal_fingerprints (subject_id, field, fingerprint) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                prints,
            )
        if ref_rows:
            await conn.executemany(
                "INSERT INTO personal_subject_refs (subject_id, ref_kind, ref_id) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                [(sid, k, v) for k, v in ref_rows],
            )
        return sid

    result: str = await _in_transaction(db, work)
    return result


def _matches(field_name: str) -> bool:
    """A field whose value a privacy request finds the subject by: named in
    MATCH_FIELDS, alone or as the last part of a path ("order.customer.email")."""
    return field_name.rsplit(".", 1)[-1] in MATCH_FIELDS


def _check_refs(refs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for ref in refs:
        kind, ref_id = ref
        if not isinstance(kind, str) or not _REF_KIND_PATTERN.fullmatch(kind):
            raise InvalidPersonalData("refs: ref kind must be lower-case letters, digits, '_'")
        if not isinstance(ref_id, str) or not 0 < len(ref_id) <= 200:
            raise InvalidPersonalData(f"refs.{kind}: id must be 1-200 characters")
        rows.append((kind, ref_id))
    return rows


async def read_subjects(db: Executor, subject_ids: Sequence[str]) -> dict[str, SubjectView]:
    """Every listed subject in one query, in the order asked; erased ones come
    back marked erased (fields empty). Raises UnknownSubject for an id that
    never existed."""
    vault = _current()
    wanted = list(dict.fromkeys(subject_ids))
    if not wanted:
        return {}
    rows = await db.fetch(
        """
        SELECT subject_id, kind, master_key_id, wrapped_key, ciphertext, erased_at,
               erasure_reason
        FROM personal_subjects WHERE subject_id = ANY($1::text[])
        """,
        wanted,
    )
    views: dict[str, SubjectView] = {}
    for row in rows:
        sid = row["subject_id"]
        if row["erased_at"] is not None:
            views[sid] = SubjectView(sid, row["kind"], {}, row["erased_at"], row["erasure_reason"])
            continue
        data_key = _unwrap(vault, sid, row["master_key_id"], bytes(row["wrapped_key"]))
        views[sid] = SubjectView(
            sid, row["kind"], _decrypt_fields(sid, data_key, bytes(row["ciphertext"]))
        )
    for sid in wanted:
        if sid not in views:
            raise UnknownSubject(sid)
    return {sid: views[sid] for sid in wanted}


async def get_subject(db: Executor, subject_id: str) -> dict[str, str]:
    """The subject's fields. Raises UnknownSubject or SubjectErased."""
    view = (await read_subjects(db, [subject_id]))[subject_id]
    if view.erased:
        raise SubjectErased(subject_id, view.erased_at, view.erasure_reason)
    return dict(view.fields)


async def erase_subject(db: Executor, subject_id: str, *, reason: str) -> bool:
    """Destroy the subject's data key and ciphertext and drop its fingerprints;
    the row stays (kind, refs, when and why erased) so references still
    resolve to "erased". True when erased now, False when it already was.
    Raises UnknownSubject for an id that never existed."""
    if not reason or len(reason) > 500:
        raise InvalidPersonalData("reason: required, at most 500 characters")

    async def work(conn: asyncpg.Connection) -> bool:
        row = await conn.fetchrow(
            "SELECT erased_at FROM personal_subjects WHERE subject_id = $1 FOR UPDATE",
            subject_id,
        )
        if row is None:
            raise UnknownSubject(subject_id)
        if row["erased_at"] is not None:
            return False
        await conn.execute(
            """
            UPDATE personal_subjects
            SET wrapped_key = NULL, ciphertext = NULL, master_key_id = NULL,
                erased_at = now(), erasure_reason = $2, updated_at = now()
            WHERE subject_id = $1
            """,
            subject_id,
            reason,
        )
        await conn.execute("DELETE FROM personal_fingerprints WHERE subject_id = $1", subject_id)
        return True

    erased: bool = await _in_transaction(db, work)
    return erased


async def subject_info(db: Executor, subject_id: str) -> SubjectInfo:
    """Metadata only (no decryption). Raises UnknownSubject."""
    row = await db.fetchrow(
        """
        SELECT s.subject_id, s.kind, s.owner_id, s.master_key_id, s.created_at, s.updated_at,
               s.erased_at, s.erasure_reason,
               COALESCE(array_agg(ARRAY[r.ref_kind, r.ref_id] ORDER BY r.ref_kind, r.ref_id)
                        FILTER (WHERE r.ref_kind IS NOT NULL), '{}') AS refs
        FROM personal_subjects s
        LEFT JOIN personal_subject_refs r USING (subject_id)
        WHERE s.subject_id = $1
        GROUP BY s.subject_id
        """,
        subject_id,
    )
    if row is None:
        raise UnknownSubject(subject_id)
    return SubjectInfo(
        subject_id=row["subject_id"],
        kind=row["kind"],
        owner_id=row["owner_id"],
        master_key_id=row["master_key_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        erased_at=row["erased_at"],
        erasure_reason=row["erasure_reason"],
        refs=tuple((str(k), str(v)) for k, v in (row["refs"] or [])),
    )


async def find_subjects(
    db: Executor,
    *,
    fingerprint_of: str | None = None,
    ref: tuple[str, str] | None = None,
    owner_id: str | None = None,
    matching: str | None = None,
) -> list[str]:
    """Subject ids matching a value (through its fingerprint on MATCH_FIELDS),
    a fingerprint already computed (`matching`, ``fp_...``), a business
    reference, or an owner; erased subjects are found by ref and owner only
    (their fingerprints are gone). Sorted, no duplicates."""
    found: set[str] = set()
    prints = [fingerprint(fingerprint_of)] if fingerprint_of is not None else []
    if matching is not None:
        prints.append(matching)
    if prints:
        rows = await db.fetch(
            "SELECT subject_id FROM personal_fingerprints WHERE fingerprint = ANY($1::text[])",
            prints,
        )
        found.update(r["subject_id"] for r in rows)
    if ref is not None:
        rows = await db.fetch(
            "SELECT subject_id FROM personal_subject_refs WHERE ref_kind = $1 AND ref_id = $2",
            ref[0],
            ref[1],
        )
        found.update(r["subject_id"] for r in rows)
    if owner_id is not None:
        rows = await db.fetch(
            "SELECT subject_id FROM personal_subjects WHERE owner_id = $1 OR subject_id = $1",
            owner_id,
        )
        found.update(r["subject_id"] for r in rows)
    return sorted(found)


async def add_refs(db: Executor, subject_id: str, refs: Iterable[tuple[str, str]]) -> None:
    """Record more business references of a subject (idempotent)."""
    rows = _check_refs(refs)
    if rows:
        await db.executemany(
            "INSERT INTO personal_subject_refs (subject_id, ref_kind, ref_id) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [(subject_id, k, v) for k, v in rows],
        )


# ---------------------------------------------------------------- rotation


async def count_by_master_key(db: Executor) -> dict[str, int]:
    """How many live data keys each master key wraps (a key at 0 may be retired)."""
    rows = await db.fetch(
        """
        SELECT master_key_id, count(*) AS n FROM personal_subjects
        WHERE erased_at IS NULL GROUP BY master_key_id
        """
    )
    return {str(r["master_key_id"]): int(r["n"]) for r in rows}


async def rewrap_data_keys(db: Executor, *, batch_size: int = 500) -> int:
    """Re-wrap every data key not under the active master key; returns how many.

    Only the wrapped key changes (the data stays encrypted under its data key).
    Safe to run while processes read and write, and to run again."""
    vault = _current()
    total = 0
    while True:

        async def work(conn: asyncpg.Connection) -> int:
            rows = await conn.fetch(
                """
                SELECT subject_id, master_key_id, wrapped_key FROM personal_subjects
                WHERE erased_at IS NULL AND master_key_id <> $1
                ORDER BY subject_id LIMIT $2 FOR UPDATE SKIP LOCKED
                """,
                vault.active,
                batch_size,
            )
            updates = []
            for row in rows:
                sid = row["subject_id"]
                data_key = _unwrap(vault, sid, row["master_key_id"], bytes(row["wrapped_key"]))
                rewrapped = _seal(vault.ciphers[vault.active], data_key, _wrap_aad(sid))
                updates.append((sid, vault.active, rewrapped))
            if updates:
                await conn.executemany(
                    "UPDATE personal_subjects SET master_key_id = $2, wrapped_key = $3 "
                    "WHERE subject_id = $1",
                    updates,
                )
            return len(updates)

        done: int = await _in_transaction(db, work)
        total += done
        if done < batch_size:
            return total


# ------------------------------------------- subjects joined to their owner row


def joined_columns(alias: str = "pd") -> str:
    """Columns to select from ``LEFT JOIN personal_subjects <alias>`` so a
    store query reads its rows and their subjects in one round trip; turn them
    back with ``view_from_joined``."""
    return ", ".join(
        f"{alias}.{column} AS pd_{column}"
        for column in (
            "subject_id",
            "kind",
            "master_key_id",
            "wrapped_key",
            "ciphertext",
            "erased_at",
            "erasure_reason",
        )
    )


def view_from_joined(row: asyncpg.Record | Mapping[str, Any]) -> SubjectView | None:
    """The subject of a row selected with ``joined_columns`` (None: no subject)."""
    sid = row["pd_subject_id"]
    if sid is None:
        return None
    if row["pd_erased_at"] is not None:
        return SubjectView(sid, row["pd_kind"], {}, row["pd_erased_at"], row["pd_erasure_reason"])
    vault = _current()
    data_key = _unwrap(vault, sid, row["pd_master_key_id"], bytes(row["pd_wrapped_key"]))
    return SubjectView(
        sid, row["pd_kind"], _decrypt_fields(sid, data_key, bytes(row["pd_ciphertext"]))
    )


# ------------------------------------- personal fields inside JSON documents


def split_document(
    doc: Mapping[str, Any], paths: Iterable[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A deep copy of `doc` without the values at the dotted `paths`, and those
    values (non-null ones) as subject fields named by their path."""
    stripped: dict[str, Any] = json.loads(json.dumps(doc))
    fields: dict[str, str] = {}
    for path in paths:
        *parents, leaf = path.split(".")
        node: Any = stripped
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node.pop(leaf)
        if value is not None:
            fields[path] = str(value)
    return stripped, fields


def merge_document(
    doc: Mapping[str, Any],
    view: SubjectView | None,
    placeholders: Mapping[str, str],
    optional: Iterable[str] = (),
) -> dict[str, Any]:
    """`doc` with the subject's fields put back at their paths. A path the
    subject lacks (erased, or partly erased: kept for invoices only) gets its
    `placeholders` value (valid for the model: a name, an email...) or None
    for the `optional` ones, wherever the parent object is present."""
    merged: dict[str, Any] = json.loads(json.dumps(doc))
    values: dict[str, str | None] = {**dict.fromkeys(optional), **placeholders}
    if view is not None and not view.erased:
        values.update(view.fields)
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node: Any = merged
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[leaf] = value
    return merged


# ------------------------------------------------- data moved by a migration


async def seal_pending(db: Executor, *, batch_size: int = 200) -> int:
    """Encrypt the personal data a migration moved into ``personal_data_pending``
    (it cannot encrypt: the database never has the key) into subjects, point
    the source rows at them and delete the pending rows; returns how many.

    Run at every start after the migrations (``steward migrate``, ``steward
    up``, the worker); a no-op query once nothing is pending."""
    _current()
    total = 0
    while True:

        async def work(conn: asyncpg.Connection) -> int:
            rows = await conn.fetch(
                """
                SELECT source, source_id, kind, refs, fields FROM personal_data_pending
                ORDER BY source, source_id LIMIT $1 FOR UPDATE SKIP LOCKED
                """,
                batch_size,
            )
            for row in rows:
                source, source_id = row["source"], row["source_id"]
                handler = _PENDING_SOURCES.get(source)
                if handler is None:
                    raise PersonalDataError(f"personal_data_pending: unknown source {source!r}")
                sid = subject_id_for(row["kind"], source_id)
                fields, refs = _json(row["fields"]) or {}, _json(row["refs"]) or []
                await put_subject(
                    conn,
                    kind=row["kind"],
                    fields={str(k): str(v) for k, v in fields.items()},
                    subject_id=sid,
                    refs=[(str(k), str(v)) for k, v in refs],
                )
                await conn.execute(handler, source_id, sid)
                await conn.execute(
                    "DELETE FROM personal_data_pending WHERE source = $1 AND source_id = $2",
                    source,
                    source_id,
                )
            return len(rows)

        done: int = await _in_transaction(db, work)
        total += done
        if done < batch_size:
            return total


def _json(value: Any) -> Any:
    # A connection without the store's jsonb codec hands over text.
    return json.loads(value) if isinstance(value, str) else value


# The statement that points a source row at its new subject ($1 source id, $2 subject id).
_PENDING_SOURCES: dict[str, str] = {
    "shipments": "UPDATE shipments SET subject_id = $2 WHERE shipment_id = $1",
}


async def refs_of(db: Executor, subject_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """The business references of each subject (one query)."""
    rows = await db.fetch(
        """
        SELECT subject_id, ref_kind, ref_id FROM personal_subject_refs
        WHERE subject_id = ANY($1::text[]) ORDER BY subject_id, ref_kind, ref_id
        """,
        list(subject_ids),
    )
    refs: dict[str, list[tuple[str, str]]] = {sid: [] for sid in subject_ids}
    for row in rows:
        refs.setdefault(row["subject_id"], []).append((row["ref_kind"], row["ref_id"]))
    return refs


async def live_subjects(
    db: Executor, subject_ids: Sequence[str], *, exclude_kinds: Sequence[str] = ()
) -> list[str]:
    """Those of `subject_ids`, and the subjects they own, not erased yet and
    not of `exclude_kinds` (sorted)."""
    rows = await db.fetch(
        """
        SELECT subject_id FROM personal_subjects
        WHERE (subject_id = ANY($1::text[]) OR owner_id = ANY($1::text[]))
          AND erased_at IS NULL AND kind <> ALL($2::text[])
        ORDER BY subject_id
        """,
        list(subject_ids),
        list(exclude_kinds),
    )
    return [str(r["subject_id"]) for r in rows]
