"""End-to-end harness: the real Runtime (PTB application + aiohttp app) against the sandbox.

The bot's Bot API base URL points at the sandbox over HTTP; tests act as Telegram users
through the sandbox and assert on what the bot sent and on the database. After each test
every recorded Bot API call must have passed the check against the official method list.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.app import Runtime
from bot.config import Settings
from bot.devtools.sandbox import Sandbox
from storage import migrate
from storage.db import Database
from tests.factories import Clock, catalogued_services

SECRET_KEY = "e2e-secret-key-" + "x" * 32
WEBHOOK_SECRET = "hook-secret_123"
STAFF_ID = 90001
STAFF_ID_2 = 90002
STAFF_CHAT_ID = -1009001


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Harness:
    """Starts, stops and restarts examdesk on one database against one sandbox."""

    sandbox: Sandbox
    database_url: str
    token: str
    clock: Clock = field(default_factory=Clock)
    webhook: bool = False
    runtime: Runtime | None = None
    port: int = 0

    def settings(self) -> Settings:
        values: dict[str, object] = {
            "bot_token": self.token,
            "bot_api_url": self.sandbox.url,
            "database_url": self.database_url,
            "listen": f"127.0.0.1:{self.port}",
            "secret_key": SECRET_KEY,
            "admin_ids": frozenset({STAFF_ID, STAFF_ID_2}),
            "staff_chat_id": STAFF_CHAT_ID,
            "default_language": "zh_Hans",
            "timezone": "Asia/Shanghai",
            "webhook_url": None,
            "webhook_secret": None,
            "_env_file": None,
        }
        if self.webhook:
            values |= {
                "webhook_url": f"http://127.0.0.1:{self.port}/telegram/webhook",
                "webhook_secret": WEBHOOK_SECRET,
            }
        return Settings(**values)  # type: ignore[arg-type]

    async def start(self) -> Runtime:
        self.runtime = Runtime(self.settings(), clock=self.clock)
        await self.runtime.start()
        return self.runtime

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()
            self.runtime = None

    async def restart(self) -> Runtime:
        await self.stop()
        return await self.start()

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def prepare_database(url: str) -> None:
    """Migrate and load the shipped catalogue, as `examdesk db upgrade` + `catalog load` do."""
    database = Database(url)
    try:
        await migrate.upgrade(database.engine)
        await catalogued_services(database)
    finally:
        await database.dispose()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as box:
        box.group(STAFF_CHAT_ID, "Exam staff")
        yield box
        violations = [(c.method, c.violations) for c in box.calls if c.violations]
        assert violations == [], "Bot API calls that break the official spec"


async def harness_for(
    sandbox: Sandbox,
    url: str,
    *,
    webhook: bool,
    harness_type: type[Harness] = Harness,
    setup: Callable[[str], Awaitable[None]] | None = None,
) -> AsyncIterator[Harness]:
    """Prepare the database at `url` (then `setup` it), run examdesk on it, stop it after."""
    await prepare_database(url)
    if setup is not None:
        await setup(url)
    harness = harness_type(
        sandbox=sandbox,
        database_url=url,
        token=sandbox.add_bot(),
        webhook=webhook,
        port=free_port(),
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


def sqlite_url(tmp_path: Path) -> str:
    """The e2e database file of one test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'e2e.sqlite3'}"


@pytest.fixture
async def bot(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Harness]:
    """examdesk running in polling mode against the sandbox."""
    async for harness in harness_for(sandbox, sqlite_url(tmp_path), webhook=False):
        yield harness


@pytest.fixture
async def webhook_bot(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Harness]:
    """examdesk running in webhook mode: the sandbox POSTs updates to its aiohttp route."""
    async for harness in harness_for(sandbox, sqlite_url(tmp_path), webhook=True):
        yield harness


@pytest.fixture
async def any_bot(sandbox: Sandbox, database_url: str) -> AsyncIterator[Harness]:
    """examdesk in polling mode on SQLite and on PostgreSQL."""
    async for harness in harness_for(sandbox, database_url, webhook=False):
        yield harness


@pytest.fixture
async def any_webhook_bot(sandbox: Sandbox, database_url: str) -> AsyncIterator[Harness]:
    """examdesk in webhook mode on SQLite and on PostgreSQL."""
    async for harness in harness_for(sandbox, database_url, webhook=True):
        yield harness


async def exchange(harness: Harness, user, action) -> list[dict]:  # type: ignore[no-untyped-def]
    """Do one user action, wait until the bot has finished reacting, return its new messages."""
    seen = {m["message_id"] for m in user.messages()}
    await action
    # The sandbox sees the update acknowledged (so it is stored and dispatched); the
    # dispatcher then says when the handlers finished, however long they spent in the
    # database; a last idle wait catches the calls they made at the very end.
    await harness.sandbox.wait_idle(timeout=15, quiet=0.1)
    if harness.runtime is not None:
        assert await harness.runtime.dispatcher.drain(15)
    await harness.sandbox.wait_idle(timeout=15, quiet=0.05)
    return [m for m in user.messages() if m["message_id"] not in seen]
