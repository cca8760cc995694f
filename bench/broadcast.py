"""Bench: one broadcast through the outbox sender against a sandbox with Telegram's limits.

    .venv/bin/python bench/broadcast.py                    # 10,000 recipients at 30/s (~5.5 min)
    .venv/bin/python bench/broadcast.py --recipients 1000  # smaller; say so when you record it
    .venv/bin/python bench/broadcast.py --paid             # paid broadcast, 1000/s limit
    .venv/bin/python bench/broadcast.py --paid --profile   # plus the top functions by own CPU time
    .venv/bin/python bench/broadcast.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench

Each recipient has its own private chat. The sandbox runs in a child process with
`RateLimits()` (30/s per bot, 1/s per chat, 1000/s paid) and answers 429 past them. The
last line printed is one JSON object: effective rate and its fraction of the limit (from
the sandbox's own timestamps, first to last send), 429s, duplicates, lost, peak RSS of
the sending process, and where the time went (database vs HTTP, CPU vs wall).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telegram import Bot

from bench.common import cpu_seconds, peak_rss_mib, recorded_calls, start_sandbox, tally
from bot.i18n import I18n
from bot.runtime.delivery import Limits, OutboxSender, SenderConfig
from bot.runtime.notifications import Templates
from bot.services.outbox import OutboxService, OutgoingMessage
from storage import migrate
from storage.db import Database
from storage.models import utcnow
from storage.uow import UnitOfWork

FIRST_CHAT = 500_000_000
TIMINGS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # name -> [calls, seconds]


def timed(name: str, fn: Any) -> Any:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            TIMINGS[name][0] += 1
            TIMINGS[name][1] += time.perf_counter() - start

    return wrapper


class TimedBot(Bot):
    """Bot whose sends are timed (wall time of the whole HTTP round trip, PTB included)."""

    async def send_message(self, *args: Any, **kwargs: Any) -> Any:
        return await timed("http.send_message", super().send_message)(*args, **kwargs)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    chats = list(range(FIRST_CHAT, FIRST_CHAT + args.recipients))
    print(f"starting sandbox with {len(chats)} private chats ...", flush=True)
    sandbox = start_sandbox(chats, {})  # {} = RateLimits() defaults
    tmp = tempfile.TemporaryDirectory()
    url = args.db or f"sqlite+aiosqlite:///{tmp.name}/bench.sqlite3"
    database = Database(url)
    try:
        if not database.is_sqlite:
            from tests.conftest import create_postgres_database

            await database.dispose()
            url = await create_postgres_database()
            database = Database(url)
        await migrate.upgrade(database.engine)
        outbox = OutboxService(lambda: UnitOfWork(database.sessions), utcnow)
        payload: dict[str, Any] = {
            "text": "Results for the November session are out. 成绩已发布。"
        }
        if args.paid:
            payload["paid"] = True
        started = time.perf_counter()
        for i in range(0, len(chats), 1000):
            await outbox.enqueue_many(
                OutgoingMessage(f"bench:{chat}", chat, payload, kind="broadcast", broadcast_id=1)
                for chat in chats[i : i + 1000]
            )
        enqueue_seconds = time.perf_counter() - started
        print(f"enqueued {len(chats)} rows in {enqueue_seconds:.1f} s; sending ...", flush=True)

        for name in ("claim", "record", "extend_leases", "next_due_at"):
            setattr(outbox, name, timed(f"db.{name}", getattr(outbox, name)))
        config = SenderConfig(limits=Limits(), max_in_flight=args.max_in_flight)
        async with TimedBot(sandbox.token, base_url=f"{sandbox.url}/bot") as bot:
            sender = OutboxSender(bot, outbox, I18n("zh_Hans"), Templates({}), config)
            profiler = cProfile.Profile() if args.profile else None
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
            if profiler:
                profiler.enable()
            await sender.start()
            await sender.wait_drained()
            await sender.stop()
            if profiler:
                profiler.disable()
            wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        stats = await outbox.stats(broadcast_id=1)
        delivery = tally(await recorded_calls(sandbox.url, "sendMessage"), set(chats))
    finally:
        await database.dispose()
        if not database.is_sqlite:
            from tests.conftest import drop_postgres_database

            await drop_postgres_database(url)
        sandbox.stop()
        tmp.cleanup()

    limit = Limits().paid_per_second if args.paid else Limits().per_second
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print(out.getvalue())
    timings = {
        name: {
            "calls": int(n),
            "seconds": round(s, 2),
            "avg_ms": round(1000 * s / n, 2) if n else None,
        }
        for name, (n, s) in sorted(TIMINGS.items())
    }
    return {
        "recipients": args.recipients,
        "mode": "paid" if args.paid else "free",
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "limit_per_s": limit,
        "max_in_flight": args.max_in_flight,
        "effective_rate_per_s": round(delivery.rate, 2),
        "fraction_of_limit": round(delivery.rate / limit, 4),
        "wall_seconds": round(wall, 2),
        "sent": delivery.ok,
        "too_many_requests": delivery.too_many_requests,
        "other_errors": delivery.other_errors,
        "duplicates": delivery.duplicates,
        "lost": delivery.lost,
        "table": stats.by_status,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "sender_cpu_seconds": round(cpu, 2),
        "sender_cpu_share_of_wall": round(cpu / wall, 3),
        "enqueue_rows_per_s": round(len(chats) / enqueue_seconds),
        "timings": timings,
        "profiled": bool(args.profile),
        "stub_sniffio": bool(args.stub_sniffio),
    }


def stub_sniffio() -> None:
    """httpcore imports `sniffio` per connection-pool operation; without
    it each is a failed import."""
    import types

    module = types.ModuleType("sniffio")
    module.current_async_library = lambda: "asyncio"  # type: ignore[attr-defined]
    sys.modules.setdefault("sniffio", module)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--paid", action="store_true", help="payload paid: true, 1000/s limit")
    parser.add_argument(
        "--db",
        help="database URL (default: a fresh SQLite file); PostgreSQL gets a fresh database",
    )
    parser.add_argument("--max-in-flight", type=int, default=SenderConfig().max_in_flight)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the sending phase (slows it)"
    )
    parser.add_argument(
        "--stub-sniffio",
        action="store_true",
        help=(
            "what-if: provide the `sniffio` module httpcore looks for on every request (not "
            "installed here)"
        ),
    )
    args = parser.parse_args()
    if args.stub_sniffio:
        stub_sniffio()
    result = asyncio.run(run(args))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
