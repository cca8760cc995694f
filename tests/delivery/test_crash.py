"""Senders in separate processes: killed with SIGKILL mid-broadcast, and two at once.

The sandbox runs in the test process; each sender process reaches it over HTTP and the
database (an SQLite file, or a PostgreSQL database) directly. Sends are counted from the
sandbox's recorded calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.devtools.sandbox import Sandbox
from bot.services.outbox import OutboxService
from storage.db import Database

from .conftest import sends_per_chat, texts

WORKER = Path(__file__).with_name("sender_process.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAX_IN_FLIGHT = 8
WAIT = 90  # seconds; a safety net for a hung process, never a measurement


async def spawn(
    database: Database, sandbox: Sandbox, *args: str, token: str | None = None
) -> asyncio.subprocess.Process:
    """A sender process on `database` and `sandbox` (as the first bot unless `token`)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "--db",
        database.url,
        "--api",
        sandbox.url,
        "--token",
        token or sandbox.token,
        "--max-in-flight",
        str(MAX_IN_FLIGHT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )


async def finish(proc: asyncio.subprocess.Process) -> str:
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


def duplicates(counts: dict[int, int]) -> int:
    return sum(n - 1 for n in counts.values() if n > 1)


async def test_sigkill_mid_broadcast_then_restart_loses_nothing(
    sandbox: Sandbox, database: Database, outbox: OutboxService
) -> None:
    sandbox.add_bot()
    chats = list(range(20_001, 20_301))
    for chat_id in chats:
        sandbox.user(chat_id)
    await outbox.enqueue_many(texts(chats, prefix="broadcast", broadcast_id=1))
    # SQLite is a single instance: on restart it takes its old leases back at once.
    # PostgreSQL may have other instances: the restarted worker waits out the 2 s lease.
    restart = ["--release-leases"] if database.is_sqlite else []
    first = await spawn(database, sandbox, "--rate", "150", "--lease", "2")
    await sandbox.wait_for_message(chats[100], timeout=WAIT)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    sent_at_kill = sum(sends_per_chat(sandbox).values())
    await finish(
        await spawn(
            database, sandbox, "--rate", "150", "--lease", "2", "--until-drained", *restart
        )
    )
    counts = sends_per_chat(sandbox)
    stats = await outbox.stats()
    print(
        f"sent before SIGKILL: {sent_at_kill}; duplicates after restart: {duplicates(counts)}"
    )  # shown with -s
    assert (first.returncode, 0 < sent_at_kill < len(chats)) == (-signal.SIGKILL, True)
    assert set(counts) == set(chats)  # every recipient got the message
    assert duplicates(counts) <= MAX_IN_FLIGHT  # only sends in flight at the kill repeat
    assert stats.by_status == {"sent": len(chats)}


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_two_sender_processes_drain_one_outbox_without_duplicates(
    sandbox: Sandbox, database: Database, outbox: OutboxService
) -> None:
    sandbox.add_bot()
    chats = list(range(30_001, 30_501))
    for chat_id in chats:
        sandbox.user(chat_id)
    await outbox.enqueue_many(texts(chats, prefix="broadcast", broadcast_id=2))
    # Small batches so the two workers keep claiming side by side.
    args = ("--rate", "400", "--batch", "20", "--lease", "30", "--until-drained")
    workers = [await spawn(database, sandbox, *args) for _ in range(2)]
    outputs = await asyncio.gather(*(finish(w) for w in workers))
    counts = sends_per_chat(sandbox)
    claims = [json.loads(out.splitlines()[-1])["claims"] for out in outputs]
    assert counts == dict.fromkeys(chats, 1)
    assert (await outbox.stats()).by_status == {"sent": len(chats)}
    assert all(n > 1 for n in claims)  # both took part
