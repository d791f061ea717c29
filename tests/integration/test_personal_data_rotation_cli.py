"""`steward personal-data rotate-key` against a real database: a new active
master key in the keyring file, every live data key re-wrapped with it, the
data still readable with the new key alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from starters.cli import app
from store import personal_data
from store.db import create_pool
from workers.codec import Keyring, load_keyring


@pytest.fixture
def restore_vault() -> Iterator[None]:
    previous = personal_data._vault
    yield
    personal_data._vault = previous


def test_rotate_key_rewraps_every_data_key(
    clean_db: asyncpg.Pool,
    postgres_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    restore_vault: None,
) -> None:
    path = tmp_path / "personal-data-keyring.json"
    path.write_text(Keyring.generate().to_json(), encoding="utf-8")
    personal_data.configure(load_keyring(path))

    async def put() -> list[str]:
        pool = await create_pool(postgres_dsn, min_size=1, max_size=1)
        try:
            return [
                await personal_data.put_subject(pool, kind="customer", fields={"name": n})
                for n in ("Ada", "Grace")
            ]
        finally:
            await pool.close()

    ids = asyncio.run(put())
    monkeypatch.setenv("DATABASE_URL", postgres_dsn)
    monkeypatch.setenv("STEWARD_PERSONAL_DATA_KEYRING", str(path))
    monkeypatch.setenv("STEWARD_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["personal-data", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "active master key k2; 2 data key(s) re-wrapped" in result.output
    rotated = load_keyring(path)
    assert rotated.active == "k2" and set(rotated.keys) == {"k1", "k2"}
    # The new key alone reads everything.
    personal_data.configure(Keyring(active="k2", keys={"k2": rotated.keys["k2"]}))

    async def read() -> list[str]:
        pool = await create_pool(postgres_dsn, min_size=1, max_size=1)
        try:
            views = await personal_data.read_subjects(pool, ids)
            return [v.fields["name"] for v in views.values()]
        finally:
            await pool.close()

    assert asyncio.run(read()) == ["Ada", "Grace"]
