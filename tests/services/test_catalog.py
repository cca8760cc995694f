"""CatalogService on real databases: load, reload without change, refusals
leave the DB as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from bot.config import PROJECT_ROOT
from bot.domain.catalog import CatalogError, load_catalog, parse_catalog
from bot.services import build_services
from storage.db import Database
from storage.models import CatalogVersion
from storage.uow import UnitOfWork

CATALOG_FILE = PROJECT_ROOT / "catalog" / "exam-catalog.yaml"


async def _snapshot(database: Database) -> tuple:
    async with UnitOfWork(database.sessions) as uow:
        versions = await uow.session.scalar(select(func.count()).select_from(CatalogVersion))
        sessions = [
            (
                s.code,
                s.capacity,
                s.seats_taken,
                s.registration_opens_at,
                tuple((c.component, c.starts_at, c.room["en"]) for c in s.components),
            )
            for s in await uow.catalog.list_sessions()
        ]
        levels = [(lv.code, lv.rank, lv.active) for lv in await uow.catalog.list_levels()]
        return versions, sessions, levels


async def test_load_shipped_catalogue_creates_levels_and_sessions(database: Database) -> None:
    catalog = load_catalog(CATALOG_FILE)
    result = await build_services(database).catalog.load(catalog)
    versions, sessions, levels = await _snapshot(database)
    assert (result.changed, versions) == (True, 1)
    assert [s[0] for s in sessions] == [
        s.code for s in sorted(catalog.sessions, key=lambda s: s.exam_date)
    ]
    assert [lv[0] for lv in levels] == ["junior", "intermediate", "senior"]
    assert (
        await build_services(database).catalog.current()
    ).content_hash() == catalog.content_hash()


async def test_load_same_catalogue_twice_changes_nothing(database: Database) -> None:
    services = build_services(database)
    await services.catalog.load(load_catalog(CATALOG_FILE))
    before = await _snapshot(database)
    result = await services.catalog.load(load_catalog(CATALOG_FILE))
    assert (result.changed, await _snapshot(database)) == (False, before)


async def test_load_capacity_below_seats_taken_is_refused_and_database_unchanged(
    database: Database,
) -> None:
    services = build_services(database)
    catalog = load_catalog(CATALOG_FILE)
    await services.catalog.load(catalog)
    code = catalog.sessions[0].code
    async with UnitOfWork(database.sessions) as uow:
        row = await uow.exam_sessions.get_by_code(code)
        row.seats_taken = 10
        await uow.commit()
    before = await _snapshot(database)
    document = catalog.model_dump(mode="json")
    document["sessions"][0]["capacity"] = 5
    document["version"] = "2026.11.2"
    with pytest.raises(CatalogError, match=r"sessions\[0\]\.capacity: 10 seats are already taken"):
        await services.catalog.load(parse_catalog(document))
    assert await _snapshot(database) == before


async def test_load_changed_session_time_updates_in_place(database: Database) -> None:
    services = build_services(database)
    catalog = load_catalog(CATALOG_FILE)
    await services.catalog.load(catalog)
    document = catalog.model_dump(mode="json")
    document["sessions"][0]["capacity"] = 80
    document["version"] = "2026.11.2"
    result = await services.catalog.load(parse_catalog(document))
    _, sessions, _ = await _snapshot(database)
    code = catalog.sessions[0].code
    assert (result.sessions_updated[0], {s[0]: s[1] for s in sessions}[code]) == (code, 80)


def _cli(
    args: list[str], env_extra: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXAMDESK_")}
    env |= {"EXAMDESK_SECRET_KEY": "s" * 40, **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_catalog_load_command_refuses_bad_file_naming_the_field(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    assert _cli(["db", "upgrade"], {"EXAMDESK_DATABASE_URL": url}, tmp_path).returncode == 0
    assert (
        _cli(
            ["catalog", "load", str(CATALOG_FILE)], {"EXAMDESK_DATABASE_URL": url}, tmp_path
        ).returncode
        == 0
    )
    document = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    document["sessions"][1]["capacity"] = 0
    document["version"] = "broken"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    result = _cli(["catalog", "load", str(bad)], {"EXAMDESK_DATABASE_URL": url}, tmp_path)
    again = _cli(["catalog", "load", str(CATALOG_FILE)], {"EXAMDESK_DATABASE_URL": url}, tmp_path)
    assert (result.returncode, "sessions[1].capacity" in result.stderr) == (1, True)
    assert (
        again.returncode,
        again.stdout.strip().endswith("is already loaded; nothing changed"),
    ) == (0, True)
