"""Migration 0012 moves the personal data of older shipments into the
personal-data store and leaves no copy (issue 21): an older database with a
shipment in clear, migrated, sealed, read back whole through store/deliveries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest_asyncio

from domain.deliveries import ShipmentRecord
from store import deliveries, personal_data
from store.db import create_pool
from store.migrate import Migration, apply_migrations, discover_migrations
from tests.factories import make_order
from workers.embedded_postgres import EmbeddedPostgres

PERSONAL = ("camille.durand@example.fr", "Camille Durand", "Rue de Grenelle", "203.0.113.24")


@pytest_asyncio.fixture
async def scratch_dsn(postgres_server: EmbeddedPostgres) -> AsyncIterator[str]:
    """A database of its own: migrated to 0011, then to 0012 by the test."""
    name = f"pd_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_server.dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        yield postgres_server.dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def _clear_text(conn: asyncpg.Connection, *, skip: tuple[str, ...] = ()) -> str:
    tables = await conn.fetch(
        "SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public'"
    )
    dumps = [
        await conn.fetchval(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {t['name']} t")
        for t in tables
        if t["name"] not in skip
    ]
    return "\n".join(dumps)


async def test_older_shipments_lose_their_personal_data_to_the_store(
    scratch_dsn: str, tmp_path: Path
) -> None:
    everything = discover_migrations()
    before = [m for m in everything if m.version < "0012"]
    ours = [m for m in everything if m.version.startswith("0012_")]
    record = ShipmentRecord(
        shipment_id="SH-MIG-1",
        carrier="ups",
        tracking_number="1ZMIG1",
        expected_delivery_at=datetime(2026, 11, 20, tzinfo=UTC) + timedelta(days=2),
        order=make_order(order_id="ORD-MIG-1"),
        attempt=2,
        destination=make_order().shipping_address.model_copy(update={"line1": "9 Quai Voltaire"}),
    )
    conn = await asyncpg.connect(scratch_dsn)
    try:
        await apply_migrations(conn, _as_dir(tmp_path / "to-0011", before))
        await conn.execute(
            """
            INSERT INTO shipments (shipment_id, carrier, tracking_number, order_id, attempt,
                                   expected_delivery_at, record)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
            """,
            record.shipment_id,
            record.carrier,
            record.tracking_number,
            record.order.order_id,
            record.attempt,
            record.expected_delivery_at,
            record.model_dump_json(),
        )
        await apply_migrations(conn, _as_dir(tmp_path / "0012", ours))
        # Moved out of shipments in the migration's own transaction.
        shipments_text = await conn.fetchval("SELECT record::text FROM shipments")
        assert not any(value in shipments_text for value in PERSONAL)
        assert "9 Quai Voltaire" not in shipments_text
    finally:
        await conn.close()

    pool = await create_pool(scratch_dsn, min_size=1, max_size=2)
    try:
        assert await personal_data.seal_pending(pool) == 1
        assert await personal_data.seal_pending(pool) == 0
        row = await deliveries.get_shipment(pool, record.shipment_id)
        assert row is not None and row.record == record
        async with pool.acquire() as conn2:
            clear = await _clear_text(conn2)
        assert not any(value in clear for value in (*PERSONAL, "9 Quai Voltaire"))
        # Erased: the shipment still loads, its personal values shown erased.
        subject = deliveries.shipment_subject_id(record.shipment_id)
        assert await personal_data.find_subjects(pool, ref=("order", "ORD-MIG-1")) == [subject]
        await personal_data.erase_subject(pool, subject, reason="test")
        erased = await deliveries.get_shipment(pool, record.shipment_id)
        assert erased is not None
        assert erased.record.order.customer.full_name == personal_data.ERASED_PLACEHOLDER
        assert erased.record.order.customer.phone is None
        assert erased.record.order.total_minor == record.order.total_minor
        assert erased.record.destination is not None
        assert erased.record.destination.country == "FR"
    finally:
        await pool.close()


def _as_dir(root: Path, migrations: list[Migration]) -> Path:
    root.mkdir()
    for m in migrations:
        (root / f"{m.version}.sql").write_text(m.sql, encoding="utf-8")
    return root
