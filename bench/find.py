"""Bench: `/find` over 100,000 candidates (issue 14 point 2; target: under 200 ms on
PostgreSQL).

    .venv/bin/python bench/find.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/find.py                          # SQLite in a temp dir
    .venv/bin/python bench/find.py --candidates 20000       # smaller; say so when you record it

A fresh database (PostgreSQL: a new one, dropped afterwards) gets the shipped catalogue and
`--candidates` candidates written with bulk inserts: Chinese names (one in ten Latin, as
on a passport), a mobile number, a masked ID number, a Telegram id, one registration each
(every fourth one a second), a ticket and a payment for the paid ones, and one audit entry
per registration. Then `FindService.find` (the whole service call: the role check, the
search, and the card when one candidate matches, as for the reference, ticket number,
Telegram id and whole phone number) is timed for each kind of query, median
of `--runs` runs after one warm-up. On PostgreSQL the same queries run again after
creating the trigram indexes (`TRGM_DDL`, which examdesk does not create: no migration),
to show what they change.

The last line printed is one JSON object with every figure in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text

from bot.config import PROJECT_ROOT
from bot.crypto import Vault
from bot.domain.catalog import load_catalog
from bot.domain.lifecycle import RegistrationState
from bot.services.catalog import CatalogService
from bot.services.find import FindService
from bot.services.staff import StaffService
from storage import migrate
from storage.db import Database
from storage.models import (
    AdmissionTicket,
    AuditEntry,
    Candidate,
    Payment,
    Registration,
    utcnow,
)
from storage.uow import UnitOfWork

SESSION = "2027-01"
ADMIN = 1
FIRST_TELEGRAM_ID = 700_000_000
CHUNK = 2_000  # rows per INSERT: asyncpg allows 32,767 parameters a statement
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋"
    "唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞"
    "平刚桂英华玉萍红娥玲芬燕彬鹏辉宇浩凯健俊帆晨欣怡佳雨"
)
LATIN_SURNAMES = ("SMITH", "NGUYEN", "KIM", "PETROV", "MÜLLER", "GARCIA", "SATO", "SILVA")
LATIN_GIVEN = ("John", "Anna", "Minh", "Olga", "Jonas", "Maria", "Yuki", "Pedro", "Emma")
#: The trigram indexes a PostgreSQL operator may add for the LIKE '%…%' branches of the
#: search (storage/repositories/find.py); examdesk has no migration for them.
TRGM_DDL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_candidates_full_name_trgm "
    "ON candidates USING gin (full_name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_candidates_first_name_trgm "
    "ON candidates USING gin (first_name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_candidates_phone_trgm "
    "ON candidates USING gin (phone gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_candidates_id_number_masked_trgm "
    "ON candidates USING gin (id_number_masked gin_trgm_ops)",
)


def _name(rng: random.Random, i: int) -> tuple[str, str]:
    """(name on the document, Telegram name)."""
    if i % 10 == 9:
        surname, given = rng.choice(LATIN_SURNAMES), rng.choice(LATIN_GIVEN)
        return f"{surname} {given}", given
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given, given


async def populate(database: Database, count: int, seed: int) -> dict[str, Any]:
    """The candidates and their rows; returns values to search for, taken from them."""
    rng = random.Random(seed)
    now = utcnow()
    vault = Vault("bench-" + "k" * 40)
    sample_token = vault.encrypt("110105194912310021")  # encrypting 100k numbers: minutes
    candidates = []
    for i in range(count):
        full_name, first_name = _name(rng, i)
        last4 = f"{rng.randrange(1000):03d}{rng.choice('0123456789X')}"
        candidates.append(
            {
                "telegram_id": FIRST_TELEGRAM_ID + i,
                "chat_id": FIRST_TELEGRAM_ID + i,
                "first_name": first_name,
                "language": "en" if i % 10 == 9 else "zh_Hans",
                "full_name": full_name,
                "id_doc_type": "passport" if i % 10 == 9 else "resident_id",
                "id_number_encrypted": sample_token,
                "id_number_hash": f"{i:064d}",
                "id_number_masked": f"1101**********{last4}",
                "phone": f"+861{rng.choice('3456789')}{rng.randrange(10**9):09d}",
                "profile": {},
                "created_at": now,
                "updated_at": now,
            }
        )
    async with UnitOfWork(database.sessions) as uow:
        session = await uow.exam_sessions.get_by_code(SESSION)
        assert session is not None
        for start in range(0, count, CHUNK):
            await uow.session.execute(insert(Candidate), candidates[start : start + CHUNK])
        first = int(await uow.session.scalar(select(func.min(Candidate.id))))
        registrations = []
        for i in range(count):
            registrations.append((first + i, "junior", f"R{i:08d}", i % 2 == 0))
            if i % 4 == 0:
                registrations.append((first + i, "intermediate", f"S{i:08d}", False))
        for start in range(0, len(registrations), CHUNK):
            await uow.session.execute(
                insert(Registration),
                [
                    {
                        "candidate_id": cid,
                        "session_id": session.id,
                        "level_code": level,
                        "state": RegistrationState.PAID if paid else RegistrationState.CANCELLED,
                        "reference": reference,
                        "components": ["practical", "theory"],
                        "eligibility": {},
                        "state_changed_at": now,
                        "created_at": now,
                        "version": 0,
                    }
                    for cid, level, reference, paid in registrations[start : start + CHUNK]
                ],
            )
        ids = dict(
            (await uow.session.execute(select(Registration.reference, Registration.id))).all()
        )
        paid = [ids[reference] for _, _, reference, is_paid in registrations if is_paid]
        for start in range(0, len(paid), CHUNK):
            part = paid[start : start + CHUNK]
            await uow.session.execute(
                insert(AdmissionTicket),
                [
                    {
                        "registration_id": rid,
                        "session_id": session.id,
                        "ticket_number": f"{SESSION}-J-{start + n + 1:06d}",
                        "seat": start + n + 1,
                        "issued_at": now,
                    }
                    for n, rid in enumerate(part)
                ],
            )
            await uow.session.execute(
                insert(Payment),
                [
                    {
                        "registration_id": rid,
                        "method": "stars",
                        "external_id": f"charge-{rid}",
                        "amount_minor": 100,
                        "currency": "XTR",
                        "status": "paid",
                        "needs_refund": False,
                        "raw": {},
                        "created_at": now,
                    }
                    for rid in part
                ],
            )
        all_ids = list(ids.values())
        for start in range(0, len(all_ids), CHUNK):
            await uow.session.execute(
                insert(AuditEntry),
                [
                    {
                        "at": now,
                        "actor": "system",
                        "entity": "registration",
                        "entity_id": str(rid),
                        "action": "submit",
                        "to_state": "submitted",
                        "details": {},
                    }
                    for rid in all_ids[start : start + CHUNK]
                ],
            )
        await uow.commit()
    pick = candidates[count // 2]  # a Chinese name (i % 10 != 9)
    latin = candidates[count // 2 + (9 - (count // 2) % 10)]
    return {
        "name, 2 characters": pick["full_name"][:2],
        "name, 3 characters": pick["full_name"],
        "Latin name, part": latin["full_name"].split()[0][:4].lower(),
        "Telegram name": latin["first_name"],
        "phone, 4 digits": pick["phone"][-4:],
        "phone, whole": pick["phone"],
        "ID, last 4": pick["id_number_masked"][-4:],
        "Telegram id": str(pick["telegram_id"]),
        "reference": f"r{count // 2:08d}",
        "ticket number": f"{SESSION}-J-{count // 4:06d}",
        "no match": "无此人名",
    }


async def timed(service: FindService, queries: dict[str, str], runs: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for kind, query in queries.items():
        result = await service.find(ADMIN, query)  # warm-up
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            await service.find(ADMIN, query)
            times.append((time.perf_counter() - started) * 1000)
        figures[kind] = {
            "query": query,
            "matches": result.total,
            "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1),
        }
        print(
            f"{kind:32} {query!r:24} {result.total:6} matches  "
            f"median {statistics.median(times):7.1f} ms  max {max(times):7.1f} ms",
            flush=True,
        )
    return figures


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory()
    url = args.db or f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
    database = Database(url)
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
        queries = await populate(database, args.candidates, args.seed)
        populate_s = time.perf_counter() - started
        print(f"{args.candidates} candidates in {populate_s:.1f} s", flush=True)
        if not database.is_sqlite:
            async with database.engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
        staff = StaffService(uow, utcnow, {ADMIN})
        service = FindService(uow, utcnow, staff, Vault("bench-" + "k" * 40))
        result: dict[str, Any] = {
            "candidates": args.candidates,
            "database": "sqlite" if database.is_sqlite else "postgresql",
            "runs": args.runs,
            "populate_seconds": round(populate_s, 1),
            "plain": await timed(service, queries, args.runs),
        }
        if not database.is_sqlite and not args.no_trgm:
            started = time.perf_counter()
            async with database.engine.begin() as conn:
                for ddl in TRGM_DDL:
                    await conn.execute(text(ddl))
                await conn.execute(text("ANALYZE candidates"))
            result["trgm_index_seconds"] = round(time.perf_counter() - started, 1)
            print(f"trigram indexes built in {result['trgm_index_seconds']} s", flush=True)
            result["trgm"] = await timed(service, queries, args.runs)
    finally:
        await database.dispose()
        if not database.is_sqlite:
            from tests.conftest import drop_postgres_database

            await drop_postgres_database(url)
        tmp.cleanup()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (PostgreSQL: a fresh database is made)")
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--no-trgm", action="store_true", help="skip the trigram-index pass")
    print(json.dumps(asyncio.run(run(parser.parse_args())), ensure_ascii=False))


if __name__ == "__main__":
    main()
