"""Shared fixtures: real databases (SQLite always, PostgreSQL where a server answers).

PostgreSQL tests skip only when no server is reachable; with CI=true an unreachable
server fails them instead. Each test gets its own fresh, migrated database.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage import migrate
from storage.db import Database

POSTGRES_URL = os.environ.get(
    "EXAMDESK_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_pg_state: dict[str, object] = {}


async def _pg_admin_execute(sql: str) -> None:
    import asyncpg

    url = make_url(POSTGRES_URL)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
        timeout=5,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_reachable() -> bool:
    if "ok" not in _pg_state:
        try:
            asyncio.run(_pg_admin_execute("SELECT 1"))
            _pg_state["ok"] = True
        except Exception as exc:
            _pg_state["ok"] = False
            _pg_state["why"] = f"{type(exc).__name__}: {exc}"
    return bool(_pg_state["ok"])


def require_postgres() -> None:
    """Skip (or under CI fail) a test that needs PostgreSQL when none answers."""
    if postgres_reachable():
        return
    message = f"PostgreSQL not reachable at {POSTGRES_URL} ({_pg_state.get('why')})"
    if IN_CI:
        pytest.fail(message + " — CI=true requires it", pytrace=False)
    pytest.skip(message)


async def create_postgres_database() -> str:
    name = f"examdesk_t_{uuid.uuid4().hex[:12]}"
    await _pg_admin_execute(f'CREATE DATABASE "{name}"')
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    await _pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return request.param


@pytest.fixture
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the parametrised backend (not yet migrated)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'examdesk.sqlite3'}"
        return
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database on each backend."""
    db = Database(database_url)
    await migrate.upgrade(db.engine)
    try:
        yield db
    finally:
        await db.dispose()
