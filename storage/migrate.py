"""Schema migrations (Alembic) driven from Python: `examdesk db upgrade` and the tests.

Entry points: `upgrade(engine, revision="head")`, `downgrade(engine, revision)`,
`current(engine)`, `revisions()` (oldest first), `make_revision(url, message)` for developers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def revisions() -> list[str]:
    """All revision ids, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def _run(engine: AsyncEngine, fn: Any, *args: Any) -> None:
    def work(sync_connection: Any) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_connection
        fn(cfg, *args)

    async with engine.begin() as conn:
        await conn.run_sync(work)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, command.downgrade, revision)


async def current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def make_revision(engine: AsyncEngine, message: str) -> None:
    """Autogenerate a new revision against the database at `engine` (developers only)."""
    await _run(engine, lambda cfg: command.revision(cfg, message=message, autogenerate=True))
