"""Bench: reminder planning for 100,000 registrations.

    .venv/bin/python bench/reminders.py                        # SQLite in a temp dir
    .venv/bin/python bench/reminders.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/reminders.py --registrations 10000  # smaller; say so when you record it

The shipped catalogue is loaded (three sessions); registrations are spread over the
sessions (60 % PAID, 30 % AWAITING_PAYMENT, 10 % CANCELLED), plus `--eligible` candidates
with a settled eligibility and no registration (they get `registration_closing`). All of
it is written with bulk inserts, then `RemindersService.plan()` runs:

1. cold: a horizon longer than the whole timeline, so every reminder of every
   registration is planned in one tick (the worst case; the running bot plans 24 h ahead);
2. no change: the next tick, which only compares the fingerprint;
3. after one registration changes state: a full reconcile (cancel its rows) plus the
   anti-joined inserts over everything;
4. a tick at the default 24 h horizon 20 h before the first exam, on an empty outbox
   (ticket, exam −1 d and −2 h for that session's PAID registrations).

The last line printed is one JSON object with the times, the rows created and cancelled,
and the peak RSS of this process (which also generated the data).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete, func, insert, select, update

from bench.common import peak_rss_mib
from bot.config import PROJECT_ROOT
from bot.domain.catalog import load_catalog
from bot.services.catalog import CatalogService
from bot.services.reminders import RemindersService
from storage import migrate
from storage.db import Database
from storage.models import Candidate, ExamSession, OutboxMessage, Registration, RegistrationState
from storage.uow import UnitOfWork

CHUNK = 5_000
FIRST_TELEGRAM_ID = 700_000_000
STATES = (
    [RegistrationState.PAID] * 6
    + [RegistrationState.AWAITING_PAYMENT] * 3
    + [RegistrationState.CANCELLED]
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def populate(database: Database, registrations: int, eligible: int, now: datetime) -> None:
    """Candidates and registrations by bulk INSERT, CHUNK rows per statement."""
    async with UnitOfWork(database.sessions) as uow:
        sessions = [(s.id, s.levels[0]) for s in await uow.catalog.list_sessions()]
    verdict = {"verdicts": {"junior": {"status": "eligible", "route": "J2"}}}
    total = registrations + eligible
    for start in range(0, total, CHUNK):
        ids = range(start, min(start + CHUNK, total))
        async with UnitOfWork(database.sessions) as uow:
            await uow.session.execute(
                insert(Candidate),
                [
                    {
                        "telegram_id": FIRST_TELEGRAM_ID + i,
                        "chat_id": FIRST_TELEGRAM_ID + i,
                        "first_name": f"C{i}",
                        "profile": verdict if i >= registrations else {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            await uow.commit()
    async with UnitOfWork(database.sessions) as uow:
        first_id = int(await uow.session.scalar(select(func.min(Candidate.id))))
    for start in range(0, registrations, CHUNK):
        ids = range(start, min(start + CHUNK, registrations))
        async with UnitOfWork(database.sessions) as uow:
            await uow.session.execute(
                insert(Registration),
                [
                    {
                        "candidate_id": first_id + i,
                        "session_id": sessions[i % len(sessions)][0],
                        "level_code": sessions[i % len(sessions)][1],
                        "state": STATES[i % len(STATES)],
                        "reference": f"B{i:09d}",
                        "components": [],
                        "eligibility": {},
                        "state_changed_at": now,
                        "created_at": now,
                        "version": 0,
                    }
                    for i in ids
                ],
            )
            await uow.commit()


async def timed_plan(service: RemindersService) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await service.plan()
    return time.perf_counter() - started, result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory()
    url = args.db or f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
    database = Database(url)
    try:
        await migrate.upgrade(database.engine)
        clock = Clock(
            datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
        )  # registration open, nothing sent yet
        catalog = CatalogService(lambda: UnitOfWork(database.sessions), clock)
        await catalog.load(load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml"))
        started = time.perf_counter()
        await populate(database, args.registrations, args.eligible, clock.now)
        populate_s = time.perf_counter() - started
        rss_before = peak_rss_mib()

        def service(plan_ahead: timedelta) -> RemindersService:
            return RemindersService(
                lambda: UnitOfWork(database.sessions), clock, catalog, plan_ahead=plan_ahead
            )

        planner = service(timedelta(days=400))
        cold_s, cold = await timed_plan(planner)
        noop_s, noop = await timed_plan(planner)
        async with UnitOfWork(database.sessions) as uow:
            some = await uow.session.scalar(
                select(Registration.id)
                .where(Registration.state == RegistrationState.PAID)
                .limit(1)
            )
            await uow.session.execute(
                update(Registration)
                .where(Registration.id == some)
                .values(state=RegistrationState.CANCELLED, version=Registration.version + 1)
            )
            await uow.commit()
        change_s, change = await timed_plan(planner)

        async with UnitOfWork(database.sessions) as uow:
            first = await uow.session.scalar(
                select(ExamSession).order_by(ExamSession.exam_date).limit(1)
            )
            await uow.session.execute(
                delete(OutboxMessage)
            )  # a fresh start: plan only what is due
            await uow.commit()
        clock.now = datetime.combine(first.exam_date, datetime.min.time(), tzinfo=UTC) - timedelta(
            hours=20
        )
        horizon_s, horizon = await timed_plan(service(timedelta(hours=24)))
        async with UnitOfWork(database.sessions) as uow:
            rows = int(await uow.session.scalar(select(func.count()).select_from(OutboxMessage)))
        return {
            "db": "postgresql" if url.startswith("postgresql") else "sqlite",
            "registrations": args.registrations,
            "eligible_without_registration": args.eligible,
            "populate_s": round(populate_s, 2),
            "plan_cold_s": round(cold_s, 2),
            "plan_cold_created": cold.created,
            "plan_no_change_s": round(noop_s, 3),
            "plan_no_change_skipped": noop.skipped,
            "plan_after_one_change_s": round(change_s, 2),
            "plan_after_one_change": {"created": change.created, "cancelled": change.cancelled},
            "plan_24h_horizon_s": round(horizon_s, 2),
            "plan_24h_horizon_created": horizon.created,
            "outbox_rows": rows,
            "peak_rss_mib_before_planning": round(rss_before, 1),
            "peak_rss_mib": round(peak_rss_mib(), 1),
        }
    finally:
        await database.dispose()
        tmp.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=100_000)
    parser.add_argument(
        "--eligible", type=int, default=10_000, help="candidates with no registration"
    )
    parser.add_argument(
        "--db",
        help="database URL (default: a temporary SQLite file); PostgreSQL: an empty database",
    )
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
