"""Bench: many users send /start at once against a sandbox with Telegram's flood limits.

    .venv/bin/python bench/flood.py                     # 200 users within 2 s, SQLite
    .venv/bin/python bench/flood.py --users 500 --within 3
    .venv/bin/python bench/flood.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench

The whole bot (`bot.app.Runtime`, polling mode) runs in this process; the sandbox runs in
a child process with `RateLimits()` (30 messages/s per bot, 1/s per private chat, 20/min
per group) and answers 429 past them. Each user (language `en`) sends `/start` once, the
starts spread evenly over `--within` seconds. Counted from the sandbox's recorded calls:
welcomes delivered (chats with at least one), duplicates (welcomes beyond one per chat),
429s, apologies and staff alerts. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.common import peak_rss_mib, recorded_calls, start_sandbox
from bot.app import Runtime
from bot.config import PROJECT_ROOT, Settings
from bot.domain.catalog import load_catalog
from bot.services import build_services
from storage import migrate
from storage.db import Database

FIRST_USER = 700_000_000
STAFF_CHAT = -100_700_000
WAIT = 300  # seconds; a safety net for a hung run, never the measurement


async def prepare(url: str) -> None:
    """Migrate and load the shipped catalogue (as `examdesk db upgrade` + `catalog load`)."""
    database = Database(url)
    try:
        await migrate.upgrade(database.engine)
        await build_services(database).catalog.load(
            load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml")
        )
    finally:
        await database.dispose()


async def control(http: aiohttp.ClientSession, url: str, path: str, body: Any) -> Any:
    async with http.post(f"{url}/_sandbox/{path}", json=body) as resp:
        return await resp.json()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    users = list(range(FIRST_USER, FIRST_USER + args.users))
    print(f"starting sandbox (Telegram-like limits) for {len(users)} users ...", flush=True)
    sandbox = start_sandbox([], {})  # users are created by their first /start, in English
    tmp = tempfile.TemporaryDirectory()
    url = args.db or f"sqlite+aiosqlite:///{tmp.name}/flood.sqlite3"
    runtime: Runtime | None = None
    try:
        if not url.startswith("sqlite"):
            from tests.conftest import create_postgres_database

            url = await create_postgres_database()
        await prepare(url)
        settings = Settings(
            bot_token=sandbox.token,
            bot_api_url=sandbox.url,
            database_url=url,
            listen="127.0.0.1:0",
            secret_key="bench-secret-key-" + "x" * 32,
            staff_chat_id=STAFF_CHAT,
            default_language="zh_Hans",
            _env_file=None,  # type: ignore[call-arg]
        )
        async with aiohttp.ClientSession() as http:
            await control(http, sandbox.url, "groups", {"chat_id": STAFF_CHAT, "title": "Staff"})
            runtime = Runtime(settings)
            await runtime.start()
            gap = args.within / max(1, len(users) - 1)
            started = time.perf_counter()
            for i, user_id in enumerate(users):
                await asyncio.sleep(max(0.0, started + i * gap - time.perf_counter()))
                body = {"command": "/start", "first_name": "Ann", "language_code": "en"}
                await control(http, sandbox.url, f"users/{user_id}/send", body)
            sent_within = time.perf_counter() - started
            # Every update fetched and acknowledged, then every handler finished (a handler
            # waiting out a 429 makes no call the sandbox could see), then the last calls.
            await control(http, sandbox.url, "idle", {"timeout": WAIT, "quiet": 0.5})
            assert await runtime.dispatcher.drain(WAIT), "updates still in flight"
            await control(http, sandbox.url, "idle", {"timeout": WAIT, "quiet": 0.5})
            wall = time.perf_counter() - started
            # 429s the bot waited out and retried (None: no rate limiter, as before issue 9)
            retried = getattr(runtime.application.bot.rate_limiter, "retried", None)
        calls = await recorded_calls(sandbox.url, "sendMessage")
    finally:
        if runtime is not None:
            await runtime.stop()
        if not url.startswith("sqlite"):
            from tests.conftest import drop_postgres_database

            await drop_postgres_database(url)
        sandbox.stop()
        tmp.cleanup()

    welcomes: dict[int, int] = {}
    apologies = staff_alerts = too_many = other = 0
    last_welcome = 0.0
    for call in calls:
        chat_id, text = int(call["params"]["chat_id"]), str(call["params"].get("text", ""))
        if call["status"] == 429:
            too_many += 1
        elif call["status"] != 200:
            other += 1
        elif chat_id == STAFF_CHAT:
            staff_alerts += 1
        elif text.startswith("Welcome"):
            welcomes[chat_id] = welcomes.get(chat_id, 0) + 1
            last_welcome = max(last_welcome, call["at"])
        elif text.startswith("Sorry"):
            apologies += 1
    first_call = min((c["at"] for c in calls), default=0.0)
    return {
        "users": len(users),
        "starts_sent_within_s": round(sent_within, 2),
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "welcomes_delivered": len(welcomes),
        "welcomes_lost": len(set(users) - set(welcomes)),
        "duplicates": sum(n - 1 for n in welcomes.values()),
        "too_many_requests": too_many,
        "retried_after_429": retried,
        "other_errors": other,
        "apologies": apologies,
        "staff_alerts": staff_alerts,
        "first_to_last_welcome_s": round(last_welcome - first_call, 2) if welcomes else None,
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--within", type=float, default=2.0, help="seconds the starts spread over")
    parser.add_argument(
        "--db", help="database URL (default: a fresh SQLite file); PostgreSQL gets a fresh one"
    )
    result = asyncio.run(run(parser.parse_args()))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
