"""Migrations: the stairway (upgrade → downgrade → upgrade per revision) and model parity."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage import migrate
from storage.db import Database
from storage.models import Base


async def test_stairway_every_revision_upgrades_downgrades_and_upgrades_again(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        previous = "base"
        for revision in migrate.revisions():
            await migrate.upgrade(db.engine, revision)
            assert await migrate.current(db.engine) == revision
            await migrate.downgrade(db.engine, previous)
            assert await migrate.current(db.engine) == (None if previous == "base" else previous)
            await migrate.upgrade(db.engine, revision)
            previous = revision
        assert await migrate.current(db.engine) == migrate.revisions()[-1]
    finally:
        await db.dispose()


async def test_upgrade_head_matches_models(database: Database) -> None:
    async with database.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": False}), Base.metadata
            )
        )
    assert diff == []
