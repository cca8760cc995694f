"""Sandbox fixtures shared by the sandbox and delivery tests: a running sandbox, a bot
token registered in it, and a PTB `Bot` talking to it over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.devtools.sandbox import Sandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    sb = Sandbox(quiet=0.05)
    await sb.start()
    yield sb
    await sb.stop()


@pytest.fixture
def token(sandbox: Sandbox) -> str:
    return sandbox.add_bot()


@pytest.fixture
async def bot(sandbox: Sandbox, token: str) -> AsyncIterator[Bot]:
    async with Bot(token, base_url=sandbox.base_url, base_file_url=sandbox.base_file_url) as b:
        yield b
