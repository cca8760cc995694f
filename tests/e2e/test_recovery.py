"""Recovery after a crash on PostgreSQL: a dead instance's update is taken within seconds.

Two real examdesk processes share one PostgreSQL database and one bot (webhook mode). The
update reaches instance A, which stores it and hangs in its handler; A is killed with
SIGKILL; instance B, running all along, takes the update at its next recovery sweep
(A's instance lock went with its connection) and answers it, once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.devtools.sandbox import Sandbox
from storage.db import Database
from storage.models import InboxUpdate
from storage.uow import UnitOfWork
from tests.conftest import create_postgres_database, drop_postgres_database, require_postgres
from tests.e2e.conftest import SECRET_KEY, WEBHOOK_SECRET, free_port, prepare_database

INSTANCE = Path(__file__).with_name("instance_process.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
WAIT = 60  # seconds: a safety net for a hung process, never a measurement


@pytest.fixture
def postgres() -> None:
    require_postgres()  # synchronous: it runs its own event loop for the check


@pytest.fixture
async def postgres_url(postgres: None) -> AsyncIterator[str]:
    url = await create_postgres_database()
    await prepare_database(url)
    try:
        yield url
    finally:
        await drop_postgres_database(url)


async def _spawn(url: str, sandbox: Sandbox, token: str, *args: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(INSTANCE),
        "--db",
        url,
        "--api",
        sandbox.url,
        "--token",
        token,
        "--port",
        str(free_port()),
        "--secret-key",
        SECRET_KEY,
        "--webhook-secret",
        WEBHOOK_SECRET,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    return process


async def _line(process: asyncio.subprocess.Process, prefix: str) -> str:
    """The next output line of the process that starts with `prefix`."""
    assert process.stdout is not None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), WAIT)).decode()
        assert line, f"the process ended before printing {prefix!r}"
        if line.startswith(prefix):
            return line.strip()


async def _row(url: str, update_id: int) -> tuple[int | None, bool]:
    """The inbox row's owner, and whether it was processed."""
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            row = await uow.session.get(InboxUpdate, update_id)
            assert row is not None
            return row.owner, row.processed_at is not None
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_update_of_a_killed_instance_is_answered_by_the_other_once(
    sandbox: Sandbox, postgres_url: str
) -> None:
    token = sandbox.add_bot()
    user = sandbox.user(631, language_code="en")
    survivor = await _spawn(postgres_url, sandbox, token)
    victim = None
    try:
        survivor_owner = int((await _line(survivor, "owner ")).split()[1])
        # Started second, so its webhook is the one set: the update goes to the victim.
        victim = await _spawn(postgres_url, sandbox, token, "--hang-on", "help")
        victim_owner = int((await _line(victim, "owner ")).split()[1])
        update = await user.send_command("/help")
        await _line(victim, "hanging on update")  # stored, taken, and stuck in its handler
        stored_by, _ = await _row(postgres_url, update["update_id"])
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
        killed_at = time.monotonic()
        reply = await user.wait_for_message(timeout=WAIT, after=update)
        print(f"recovered {time.monotonic() - killed_at:.1f} s after SIGKILL")  # shown with -s
        await sandbox.wait_idle(timeout=10, quiet=0.5)
        taken_by, processed = await _row(postgres_url, update["update_id"])
    finally:
        for process in (victim, survivor):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
    assert (stored_by, taken_by, processed) == (
        victim_owner,
        survivor_owner,
        True,
    )
    assert reply["text"].startswith("I help you take")
    assert [m["text"][:15] for m in user.messages()] == ["I help you take"]
