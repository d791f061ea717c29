"""The personal-data store against a real PostgreSQL: put, read, erase,
rotation, references and what stays on disk (store/personal_data.py)."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

from store import personal_data as pd
from workers.codec import Keyring


@pytest.fixture
def ring() -> Iterator[Keyring]:
    keyring = Keyring.generate()
    previous = pd._vault
    pd.configure(keyring)
    yield keyring
    pd._vault = previous


async def test_put_get_and_nothing_in_clear_on_disk(clean_db: asyncpg.Pool, ring: Keyring) -> None:
    sid = await pd.put_subject(
        clean_db,
        kind="customer",
        fields={"email": "Ada.Lovelace@example.com", "name": "Ada Lovelace"},
        refs=[("order", "ord-1")],
    )
    assert pd.is_subject_id(sid)
    assert await pd.get_subject(clean_db, sid) == {
        "email": "Ada.Lovelace@example.com",
        "name": "Ada Lovelace",
    }
    dump = await clean_db.fetchval(
        "SELECT string_agg(t::text, ' ') FROM personal_subjects t"
    ) + await clean_db.fetchval("SELECT string_agg(t::text, ' ') FROM personal_fingerprints t")
    assert "Lovelace" not in dump and "example.com" not in dump
    assert await pd.find_subjects(clean_db, fingerprint_of="ada.lovelace@EXAMPLE.com ") == [sid]
    assert await pd.find_subjects(clean_db, ref=("order", "ord-1")) == [sid]
    info = await pd.subject_info(clean_db, sid)
    assert info.kind == "customer" and info.refs == (("order", "ord-1"),)


async def test_a_repeat_with_the_same_id_rewrites_one_subject(
    clean_db: asyncpg.Pool, ring: Keyring
) -> None:
    sid = pd.subject_id_for("customer", "ord-2")
    for name in ("Ada", "Ada", "Ada L."):
        assert (
            await pd.put_subject(
                clean_db, kind="customer", fields={"name": name, "email": "a@x.io"}, subject_id=sid
            )
            == sid
        )
    assert await clean_db.fetchval("SELECT count(*) FROM personal_subjects") == 1
    assert await clean_db.fetchval("SELECT count(*) FROM personal_fingerprints") == 1
    assert (await pd.get_subject(clean_db, sid))["name"] == "Ada L."


async def test_erasure_destroys_the_key_and_a_second_erasure_changes_nothing(
    clean_db: asyncpg.Pool, ring: Keyring
) -> None:
    sid = await pd.put_subject(clean_db, kind="customer", fields={"email": "e@x.io"})
    other = await pd.put_subject(clean_db, kind="customer", fields={"email": "f@x.io"})
    assert await pd.erase_subject(clean_db, sid, reason="privacy-request:pr-1") is True
    row = await clean_db.fetchrow("SELECT * FROM personal_subjects WHERE subject_id = $1", sid)
    assert row["wrapped_key"] is None and row["ciphertext"] is None
    with pytest.raises(pd.SubjectErased) as err:
        await pd.get_subject(clean_db, sid)
    assert err.value.reason == "privacy-request:pr-1"
    assert await pd.erase_subject(clean_db, sid, reason="again") is False
    assert (await pd.subject_info(clean_db, sid)).erasure_reason == "privacy-request:pr-1"
    with pytest.raises(pd.SubjectErased):
        await pd.put_subject(clean_db, kind="customer", fields={"email": "e@x.io"}, subject_id=sid)
    assert await pd.find_subjects(clean_db, fingerprint_of="e@x.io") == []
    views = await pd.read_subjects(clean_db, [sid, other])
    assert views[sid].erased and views[sid].get("email") == pd.ERASED_PLACEHOLDER
    assert views[other].get("email") == "f@x.io"


async def test_unknown_subjects_are_a_clear_error(clean_db: asyncpg.Pool, ring: Keyring) -> None:
    with pytest.raises(pd.UnknownSubject, match="subj_nothere0"):
        await pd.get_subject(clean_db, "subj_nothere0")
    with pytest.raises(pd.UnknownSubject):
        await pd.erase_subject(clean_db, "subj_nothere0", reason="x")


async def test_rotation_rewraps_every_live_data_key(clean_db: asyncpg.Pool, ring: Keyring) -> None:
    ids = [
        await pd.put_subject(clean_db, kind="address", fields={"line1": f"{n} Rue de Rivoli"})
        for n in range(5)
    ]
    await pd.erase_subject(clean_db, ids[0], reason="test")
    rotated = ring.with_new_active_key()
    pd.configure(rotated)
    assert await pd.count_by_master_key(clean_db) == {"k1": 4}
    assert await pd.rewrap_data_keys(clean_db, batch_size=3) == 4
    assert await pd.count_by_master_key(clean_db) == {"k2": 4}
    assert await pd.rewrap_data_keys(clean_db) == 0
    # k1 can now go: a keyring with k2 alone reads everything.
    pd.configure(Keyring(active="k2", keys={"k2": rotated.keys["k2"]}))
    views = await pd.read_subjects(clean_db, ids[1:])
    assert [v.fields["line1"] for v in views.values()] == [
        f"{n} Rue de Rivoli" for n in range(1, 5)
    ]
    # Without the key that wraps the data: a clear error, never garbage.
    pd.configure(Keyring.generate())
    with pytest.raises(pd.PersonalDataKeyError, match="'k2', which is not in the keyring"):
        await pd.get_subject(clean_db, ids[1])
    pd.configure(Keyring.generate("k2"))
    with pytest.raises(pd.PersonalDataKeyError, match="wrong master key"):
        await pd.get_subject(clean_db, ids[1])


async def test_reading_a_shipment_and_its_personal_data_is_one_query(
    clean_db: asyncpg.Pool, ring: Keyring
) -> None:
    """The hot path (a failed delivery, a claim, a label) pays no extra round
    trip for the personal data: the subject comes in the shipment's query."""
    from datetime import UTC, datetime

    from domain.deliveries import ShipmentRecord
    from store import deliveries
    from tests.factories import make_order

    record = ShipmentRecord(
        shipment_id="SH-ONE-1",
        carrier="ups",
        tracking_number="1ZONE1",
        expected_delivery_at=datetime(2026, 12, 1, tzinfo=UTC),
        order=make_order(order_id="ORD-ONE-1"),
    )
    assert await deliveries.register_shipment(clean_db, record)
    statements: list[str] = []
    async with clean_db.acquire() as conn:
        conn.add_query_logger(lambda q: statements.append(q.query))
        row = await deliveries.get_shipment(conn, record.shipment_id)
        by_tracking = await deliveries.find_by_tracking(conn, "ups", "1ZONE1")
    assert row is not None and row.record == record
    assert by_tracking is not None and by_tracking.record == record
    assert len(statements) == 2
