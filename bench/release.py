"""Bench: releasing one session's results to 2,000 candidates (issue 10).

    .venv/bin/python bench/release.py                       # SQLite in a temp dir (~5 min)
    .venv/bin/python bench/release.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/release.py --candidates 300      # smaller; say so when you record it

The shipped catalogue is loaded; session 2027-01 gets `--candidates` PAID junior
registrations, each with a private chat and both component results (a mix of passes,
fails and absences), written with bulk inserts. Its release time is moved into the past,
then:

1. queue: `ResultsReleaseService.release_due()`, the tick, once (releases the session and
   queues one `results_released` message per registration). Baseline, in the same run
   and on the same database: `OutboxService.enqueue_many` of as many plain-text rows.
2. send: the outbox sender drains the release messages against the sandbox (in a child
   process, `RateLimits()`: 30 messages/s per bot, 1/s per chat). Baseline, same run,
   same sender settings: as many plain-text messages to the same chats, sent first.

The last line printed is one JSON object: both times, their ratios to the baselines, the
effective send rates (sandbox timestamps, first to last send), 429s, duplicates, lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, update
from telegram import Bot

import handlers
from bench.common import peak_rss_mib, recorded_calls, start_sandbox, tally
from bot.config import PROJECT_ROOT
from bot.domain.catalog import load_catalog
from bot.domain.lifecycle import RegistrationState
from bot.i18n import I18n
from bot.runtime.delivery import Limits, OutboxSender, SenderConfig
from bot.services.catalog import CatalogService
from bot.services.outbox import OutboxService, OutgoingMessage
from bot.services.results_release import ResultsReleaseService
from storage import migrate
from storage.db import Database
from storage.models import Candidate, ComponentResult, ExamSession, Registration, utcnow
from storage.uow import UnitOfWork

SESSION = "2027-01"
FIRST_TELEGRAM_ID = 800_000_000
CHUNK = 1_000
# (theory, practical) in tenths; None = absent. Cycled over the candidates.
MARKS = [(750, 600), (500, 700), (900, None), (610, 590), (None, None)]


async def populate(database: Database, count: int) -> list[int]:
    """`count` candidates with a PAID registration for SESSION and both results; their
    chat ids."""
    now = utcnow()
    chats = [FIRST_TELEGRAM_ID + i for i in range(count)]
    async with UnitOfWork(database.sessions) as uow:
        session = await uow.exam_sessions.get_by_code(SESSION)
        assert session is not None
        session_id = session.id
        await uow.session.execute(
            insert(Candidate),
            [
                {
                    "telegram_id": chat,
                    "chat_id": chat,
                    "first_name": f"C{i}",
                    "language": "en" if i % 3 == 0 else "zh_Hans",
                    "profile": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i, chat in enumerate(chats)
            ],
        )
        first = int(await uow.session.scalar(select(func.min(Candidate.id))))
        for start in range(0, count, CHUNK):
            await uow.session.execute(
                insert(Registration),
                [
                    {
                        "candidate_id": first + i,
                        "session_id": session_id,
                        "level_code": "junior",
                        "state": RegistrationState.PAID,
                        "reference": f"R{i:09d}",
                        "components": ["practical", "theory"],
                        "eligibility": {},
                        "state_changed_at": now,
                        "created_at": now,
                        "version": 0,
                    }
                    for i in range(start, min(start + CHUNK, count))
                ],
            )
        registrations = list(
            await uow.session.scalars(select(Registration.id).order_by(Registration.id))
        )
        rows = []
        for i, registration_id in enumerate(registrations):
            marks = MARKS[i % len(MARKS)]
            for component, tenths in zip(("theory", "practical"), marks, strict=True):
                rows.append(
                    {
                        "registration_id": registration_id,
                        "session_id": session_id,
                        "component": component,
                        "mark": "absent" if tenths is None else "scored",
                        "score_tenths": tenths,
                        "version": 1,
                        "updated_by": "bench",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        for start in range(0, len(rows), CHUNK):
            await uow.session.execute(insert(ComponentResult), rows[start : start + CHUNK])
        # Due now: the tick releases it at once (the sender uses the real clock too).
        await uow.session.execute(
            update(ExamSession)
            .where(ExamSession.id == session_id)
            .values(results_at=now - timedelta(minutes=1))
        )
        await uow.commit()
    return chats


async def drain(sandbox_token: str, sandbox_url: str, outbox: OutboxService) -> float:
    """Run a fresh sender until the outbox is empty; its wall time."""
    templates = handlers.templates()
    async with Bot(sandbox_token, base_url=f"{sandbox_url}/bot") as bot:
        sender = OutboxSender(bot, outbox, I18n("zh_Hans"), templates, SenderConfig(Limits()))
        started = time.perf_counter()
        await sender.start()
        await sender.wait_drained()
        await sender.stop()
        return time.perf_counter() - started


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory()
    url = args.db or f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
    database = Database(url)
    sandbox = None
    try:
        if not database.is_sqlite:
            from tests.conftest import create_postgres_database

            await database.dispose()
            url = await create_postgres_database()
            database = Database(url)
        await migrate.upgrade(database.engine)

        def uow() -> UnitOfWork:
            return UnitOfWork(database.sessions)

        catalog = CatalogService(uow, utcnow)
        await catalog.load(load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml"))
        started = time.perf_counter()
        chats = await populate(database, args.candidates)
        populate_s = time.perf_counter() - started
        print(f"{len(chats)} candidates with results in {populate_s:.1f} s", flush=True)
        sandbox = start_sandbox(chats, {})  # {} = RateLimits() defaults
        outbox = OutboxService(uow, utcnow)

        # Baseline: the same number of plain rows, queued and sent the same way.
        started = time.perf_counter()
        await outbox.enqueue_many(
            OutgoingMessage(f"bench:{chat}", chat, {"text": "成绩已发布 Results are out"})
            for chat in chats
        )
        base_queue_s = time.perf_counter() - started
        print(f"baseline queued in {base_queue_s:.2f} s; sending ...", flush=True)
        base_send_s = await drain(sandbox.token, sandbox.url, outbox)
        base_calls = len(await recorded_calls(sandbox.url, "sendMessage"))
        await asyncio.sleep(1.1)  # 1 message/s per chat: the release's go to the same chats

        release = ResultsReleaseService(uow, utcnow, catalog)
        started = time.perf_counter()
        queued = await release.release_due()
        queue_s = time.perf_counter() - started
        print(f"release queued {queued} in {queue_s:.2f} s; sending ...", flush=True)
        send_s = await drain(sandbox.token, sandbox.url, outbox)
        calls = await recorded_calls(sandbox.url, "sendMessage")
        progress = await release.progress(SESSION)
    finally:
        await database.dispose()
        if not database.is_sqlite:
            from tests.conftest import drop_postgres_database

            await drop_postgres_database(url)
        if sandbox is not None:
            sandbox.stop()
        tmp.cleanup()

    base = tally(calls[:base_calls], set(chats))
    sent = tally(calls[base_calls:], set(chats))
    return {
        "candidates": args.candidates,
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "populate_seconds": round(populate_s, 2),
        "queue_seconds": round(queue_s, 2),
        "queue_baseline_seconds": round(base_queue_s, 2),
        "queue_ratio": round(queue_s / base_queue_s, 1),
        "queued": queued,
        "send_seconds": round(send_s, 2),
        "send_baseline_seconds": round(base_send_s, 2),
        "send_ratio": round(send_s / base_send_s, 3),
        "rate_per_s": round(sent.rate, 2),
        "baseline_rate_per_s": round(base.rate, 2),
        "limit_per_s": Limits().per_second,
        "sent": sent.ok,
        "too_many_requests": sent.too_many_requests + base.too_many_requests,
        "duplicates": sent.duplicates,
        "lost": sent.lost,
        "progress": {
            "status": progress.status,
            "sent": progress.sent,
            "waiting": progress.waiting,
            "not_reached": len(progress.not_reached),
        },
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=2_000)
    parser.add_argument(
        "--db",
        help="database URL (default: a fresh SQLite file); PostgreSQL gets a fresh database",
    )
    result = asyncio.run(run(parser.parse_args()))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
