"""LeaderLock: one holder among instances on PostgreSQL; takeover when the holder dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from storage.db import Database
from storage.locks import LeaderLock
from tests.conftest import create_postgres_database, drop_postgres_database, require_postgres


@pytest.fixture
def postgres() -> None:
    require_postgres()  # synchronous: it runs its own event loop for the check


@pytest.fixture
async def two_instances(postgres: None) -> AsyncIterator[tuple[Database, Database]]:
    """Two engines (as two processes would have) on one PostgreSQL database."""
    url = await create_postgres_database()
    first, second = Database(url), Database(url)
    try:
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()
        await drop_postgres_database(url)


async def _kill_holder(database: Database) -> None:
    """End the holder's database session as a crash would (its lock goes with it)."""
    held = (
        "FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    async with database.engine.connect() as conn:
        await conn.execute(text(f"SELECT pg_terminate_backend(pid) {held}"))
        # pg_terminate_backend only signals: the backend (and its lock) goes a moment later.
        for _ in range(100):
            if not await conn.scalar(text(f"SELECT count(*) {held}")):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the terminated holder still holds its advisory lock after 5 s")


@pytest.mark.postgres
async def test_acquire_two_holders_one_wins(two_instances: tuple[Database, Database]) -> None:
    a, b = LeaderLock(two_instances[0].engine), LeaderLock(two_instances[1].engine)
    try:
        results = (await a.acquire(), await b.acquire(), await a.acquire(), await b.acquire())
        assert results == (True, False, True, False)
    finally:
        await a.release()
        await b.release()


@pytest.mark.postgres
async def test_acquire_after_the_holder_releases_the_other_takes_over(
    two_instances: tuple[Database, Database],
) -> None:
    a, b = LeaderLock(two_instances[0].engine), LeaderLock(two_instances[1].engine)
    try:
        assert (await a.acquire(), await b.acquire()) == (True, False)
        await a.release()
        assert (await b.acquire(), await a.acquire()) == (True, False)
    finally:
        await a.release()
        await b.release()


@pytest.mark.postgres
async def test_acquire_after_the_holders_connection_dies_the_other_takes_over(
    two_instances: tuple[Database, Database],
) -> None:
    a, b = LeaderLock(two_instances[0].engine), LeaderLock(two_instances[1].engine)
    try:
        assert (await a.acquire(), await b.acquire()) == (True, False)
        await _kill_holder(two_instances[1])
        assert await b.acquire() is True
        assert (await a.acquire(), a.held) == (False, False)  # the old holder notices it lost
    finally:
        await a.release()
        await b.release()


async def test_acquire_on_sqlite_is_always_granted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'one.sqlite3'}")
    try:
        assert (await LeaderLock(database.engine).acquire(), LeaderLock(database.engine).held) == (
            True,
            True,
        )
    finally:
        await database.dispose()
