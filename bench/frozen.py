"""Bench: two outbox senders share one outbox; one is frozen (SIGSTOP) past its lease.

    .venv/bin/python bench/frozen.py                    # 150 messages, lease 3 s, PostgreSQL
    .venv/bin/python bench/frozen.py --lease 75 --messages 150
    .venv/bin/python bench/frozen.py --db sqlite

Two sender processes (`tests/delivery/sender_process.py`) drain one outbox of `--messages`
rows (one private chat each) against a sandbox with Telegram's limits in a child process.
The first sender starts alone (at `--frozen-rate`); once `--stop-after` of its sends are
recorded in the table, it is frozen with SIGSTOP between two sends, holding the rest of
its claimed batch. The second one (at `--rate`) then starts, takes those rows over after
their lease and drains the outbox. When it has exited (at least `--lease` + 1 s after the
freeze), the frozen one is woken with SIGCONT and runs until it finds nothing to do.
Counted from the sandbox's recorded sends: duplicates (sends beyond one per chat) and
lost (chats without a send). The last line printed is one JSON object.

A send on the wire, or sent but not yet recorded, when a process stops is repeated by
whoever takes the row over (as after a crash: at most `max_in_flight`); freezing between
two sends keeps that case out of what this bench measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import recorded_calls, start_sandbox, tally
from bot.services.outbox import OutboxService, OutgoingMessage
from storage import migrate
from storage.db import Database
from storage.models import utcnow
from storage.uow import UnitOfWork

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "delivery" / "sender_process.py"
FIRST_CHAT = 800_000_000
WAIT = 600  # seconds; a safety net for a hung process, never the measurement


async def spawn(
    url: str, api: str, token: str, rate: float, batch: int, args: argparse.Namespace
) -> Any:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "--db",
        url,
        "--api",
        api,
        "--token",
        token,
        "--rate",
        str(rate),
        "--batch",
        str(batch),
        "--lease",
        str(args.lease),
        "--until-drained",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def counters(proc: Any) -> dict[str, Any]:
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    if proc.returncode != 0:
        raise RuntimeError(f"sender exited {proc.returncode}: {err.decode()[-2000:]}")
    return json.loads(out.decode().splitlines()[-1])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    chats = list(range(FIRST_CHAT, FIRST_CHAT + args.messages))
    sandbox = start_sandbox(chats, {})  # {} = RateLimits(): Telegram's limits
    tmp = tempfile.TemporaryDirectory()
    sqlite = args.db == "sqlite"
    if sqlite:
        url = f"sqlite+aiosqlite:///{tmp.name}/frozen.sqlite3"
    else:
        from tests.conftest import create_postgres_database

        url = await create_postgres_database()
    database = Database(url)
    try:
        await migrate.upgrade(database.engine)
        outbox = OutboxService(lambda: UnitOfWork(database.sessions), utcnow)
        await outbox.enqueue_many(
            OutgoingMessage(f"frozen:{c}", c, {"text": f"notice {c}"}, broadcast_id=1)
            for c in chats
        )
        frozen = await spawn(
            url, sandbox.url, sandbox.token, args.frozen_rate, args.frozen_batch, args
        )
        while True:  # right after a result is committed: between two sends
            if (await outbox.stats(broadcast_id=1)).by_status.get("sent", 0) >= args.stop_after:
                break
            await asyncio.sleep(0.01)
        frozen.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        sent_at_stop = (await outbox.stats(broadcast_id=1)).by_status.get("sent", 0)
        other = await spawn(url, sandbox.url, sandbox.token, args.rate, 0, args)
        other_counters = await counters(other)
        await asyncio.sleep(max(0.0, stopped_at + args.lease + 1 - time.monotonic()))
        frozen_for = time.monotonic() - stopped_at
        frozen.send_signal(signal.SIGCONT)
        frozen_counters = await counters(frozen)
        delivery = tally(await recorded_calls(sandbox.url, "sendMessage"), set(chats))
        table = (await outbox.stats(broadcast_id=1)).by_status
    finally:
        await database.dispose()
        if not sqlite:
            from tests.conftest import drop_postgres_database

            await drop_postgres_database(url)
        sandbox.stop()
        tmp.cleanup()
    return {
        "messages": args.messages,
        "database": "sqlite" if sqlite else "postgresql",
        "lease_s": args.lease,
        "rate_frozen_sender": args.frozen_rate,
        "batch_frozen_sender": args.frozen_batch,
        "rate_other_sender": args.rate,
        "sent_when_frozen": sent_at_stop,
        "frozen_for_s": round(frozen_for, 1),
        "duplicates": delivery.duplicates,
        "lost": delivery.lost,
        "too_many_requests": delivery.too_many_requests,
        "table": table,
        "frozen_sender": frozen_counters,
        "other_sender": other_counters,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=150)
    parser.add_argument("--lease", type=float, default=3.0, help="outbox lease, seconds")
    parser.add_argument("--rate", type=float, default=15.0, help="messages/s, second sender")
    parser.add_argument(
        "--frozen-rate", type=float, default=5.0, help="messages/s of the sender to freeze"
    )
    parser.add_argument(
        "--frozen-batch", type=int, default=60, help="rows the sender to freeze claims at once"
    )
    parser.add_argument("--stop-after", type=int, default=10, help="freeze after this many sends")
    parser.add_argument(
        "--db",
        default="postgresql",
        help="'sqlite' for a file, else a fresh PostgreSQL database (EXAMDESK_TEST_POSTGRES_URL)",
    )
    result = asyncio.run(run(parser.parse_args()))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
