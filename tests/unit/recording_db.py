"""A stand-in for an asyncpg connection that records the statements it is
given, for API unit tests whose route writes to the personal-data store
(store/personal_data.put_subject): every SELECT finds nothing, every write
succeeds. Nothing is stored; the test reads what was sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


class RecordingConnection:
    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def fetchrow(self, sql: str, *args: Any) -> None:
        self.statements.append((sql, args))
        return None

    async def execute(self, sql: str, *args: Any) -> str:
        self.statements.append((sql, args))
        return "OK"

    async def executemany(self, sql: str, rows: Any) -> None:
        for row in rows:
            self.statements.append((sql, tuple(row)))

    def sent(self) -> bytes:
        """Every argument sent, as bytes, to search for a value."""
        return b"\n".join(
            a if isinstance(a, bytes) else str(a).encode()
            for _, args in self.statements
            for a in args
        )
