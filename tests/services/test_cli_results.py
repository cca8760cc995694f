"""`examdesk results import FILE --session CODE`: the preview with line-numbered refusals,
preview only without a terminal, saved with --yes (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from bot.config import PROJECT_ROOT
from storage.db import Database
from storage.models import ComponentResult
from storage.uow import UnitOfWork
from tests.factories import make_session
from tests.services.test_results_import import SECRET, _seat, _services


def _run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXAMDESK_")} | {
        "EXAMDESK_SECRET_KEY": SECRET,
        "EXAMDESK_DATABASE_URL": database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "results", "import", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


async def _saved(database: Database) -> int:
    async with UnitOfWork(database.sessions) as uow:
        return await uow.session.scalar(select(func.count()).select_from(ComponentResult))


async def test_results_import_command_previews_then_saves_with_yes(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    await _services(database)
    s1 = await make_session(database, "S1")
    _, ref1 = await _seat(database, 1, s1)
    _, ref2 = await _seat(database, 2, s1)
    source = tmp_path / "s1.csv"
    source.write_text(
        f"reference,id_last4,theory,practical\n{ref1},002X,75,60\n{ref2},1234,80,80\n"
        "EDNOTHERE,002X,70,70\n",
        encoding="utf-8",
    )

    preview = _run(database_url, str(source), "--session", "S1", "--lang", "en")
    saved_after_preview = await _saved(database)
    confirmed = _run(database_url, str(source), "--session", "S1", "--lang", "en", "--yes")

    assert (preview.returncode, preview.stdout.splitlines()) == (
        0,
        [
            "s1.csv: 3 rows for session S1",
            "Passed 1, failed 0, absent 0, refused 2.",
            "line 3: the last 4 characters of the ID number do not match",
            "line 4: no registration has this ticket number or reference",
            "Preview only: nothing was saved. Run again with --yes to save.",
        ],
    )
    assert (confirmed.returncode, confirmed.stdout.splitlines()[-1]) == (
        0,
        "Saved: 2 new, 0 replaced, 0 unchanged, 0 removed.",
    )
    assert (saved_after_preview, await _saved(database)) == (0, 2)


async def test_results_import_command_unknown_session_fails_in_chinese(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    await _services(database)
    source = tmp_path / "s1.csv"
    source.write_text("reference,id_last4,theory\nEDX,002X,75\n", encoding="utf-8")

    result = _run(database_url, str(source), "--session", "NOPE", "--lang", "zh_Hans")

    assert (result.returncode, result.stderr.strip()) == (1, "examdesk: 没有考试场次 NOPE。")
