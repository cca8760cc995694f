"""Fixtures: a running sandbox, a PTB Bot talking to it over HTTP, a raw aiohttp client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.devtools.sandbox import Sandbox, SandboxUser
from tests.sandbox_fixtures import bot, sandbox, token  # shared fixtures


@pytest.fixture
def li(sandbox: Sandbox, token: str) -> SandboxUser:
    return sandbox.user(1001, first_name="Li", username="li_wei", language_code="zh-hans")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
