"""Fixtures: a running sandbox, a PTB Bot talking to it over HTTP, a raw aiohttp client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import Bot

from bot.sandbox import Sandbox, SandboxUser


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


@pytest.fixture
def li(sandbox: Sandbox, token: str) -> SandboxUser:
    return sandbox.user(1001, first_name="Li", username="li_wei", language_code="zh-hans")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
