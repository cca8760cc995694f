"""Direct replies: Telegram's flood limits, users who blocked the bot, errors in the user's
language. The real Runtime on each database against the sandbox over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest
from sqlalchemy import select
from telegram.ext import CommandHandler

from bot.devtools.sandbox import RateLimits, Sandbox
from storage.db import Database
from storage.models import Candidate
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_CHAT_ID, Harness, exchange

WAIT = 60  # seconds; a safety net for a hung test, never a measurement
APOLOGY_EN = (
    "Sorry, something went wrong on our side. Your answers are saved. "
    "Please try again in a minute, or send /start."
)


async def settle(harness: Harness) -> None:
    """Every update fetched, every handler finished (one may be waiting out a 429 without
    a call the sandbox could see), then the calls they made at the very end."""
    await harness.sandbox.wait_idle(timeout=WAIT, quiet=0.2)
    assert harness.runtime is not None and await harness.runtime.dispatcher.drain(WAIT)
    await harness.sandbox.wait_idle(timeout=WAIT, quiet=0.2)


async def unreachable_at(harness: Harness, telegram_id: int) -> datetime | None:
    database = Database(harness.database_url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            return await uow.session.scalar(
                select(Candidate.unreachable_at).where(Candidate.telegram_id == telegram_id)
            )
    finally:
        await database.dispose()


def sends_to(sandbox: Sandbox, chat_id: int) -> list[int]:
    return [c.status for c in sandbox.calls_of("sendMessage") if c.params["chat_id"] == chat_id]


async def test_start_from_200_users_within_2s_under_flood_limits_welcomes_each_once(
    any_bot: Harness,
) -> None:
    sandbox = any_bot.sandbox
    sandbox.set_rate_limits(RateLimits())  # 30 messages/s per bot, 1/s per private chat
    users = [sandbox.user(50_000 + i, first_name="Ann", language_code="en") for i in range(200)]
    for user in users:  # 200 starts spread over 2 s
        await user.send_command("/start")
        await asyncio.sleep(0.01)
    await settle(any_bot)
    welcomes: dict[int, int] = {}
    for call in sandbox.calls_of("sendMessage"):
        if call.ok and call.params["text"].startswith("Welcome, Ann!"):
            chat_id = call.params["chat_id"]
            welcomes[chat_id] = welcomes.get(chat_id, 0) + 1
    assert welcomes == {user.id: 1 for user in users}
    assert sandbox.chat_messages(STAFF_CHAT_ID) == []  # no failure, no staff alert


async def test_reply_to_a_user_who_just_blocked_the_bot_marks_them_unreachable_quietly(
    any_bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    user = any_bot.sandbox.user(51_001, language_code="en")
    await exchange(any_bot, user, user.send_command("/start"))
    caplog.set_level(logging.INFO)
    await user.send_command("/help")
    user.block_bot()  # before the bot could answer: its reply meets a 403
    await settle(any_bot)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert sends_to(any_bot.sandbox, user.id) == [200, 403]  # the reply; no apology after it
    assert any_bot.sandbox.chat_messages(STAFF_CHAT_ID) == []
    assert errors == []
    assert await unreachable_at(any_bot, user.id) is not None


async def test_block_and_unblock_mark_the_candidate_unreachable_and_reachable(
    any_bot: Harness,
) -> None:
    user = any_bot.sandbox.user(51_101, language_code="en")
    await exchange(any_bot, user, user.send_command("/start"))
    user.block_bot()  # Telegram sends my_chat_member: member -> kicked
    await settle(any_bot)
    blocked = await unreachable_at(any_bot, user.id)
    user.unblock_bot()  # kicked -> member
    await settle(any_bot)
    unblocked = await unreachable_at(any_bot, user.id)
    user.block_bot()
    await settle(any_bot)
    await exchange(any_bot, user, user.send_command("/help"))  # writing unblocks, too
    assert (blocked is not None, unblocked, await unreachable_at(any_bot, user.id)) == (
        True,
        None,
        None,
    )
    assert sends_to(any_bot.sandbox, user.id) == [200, 200]  # no call while blocked


async def _boom(update, context) -> None:  # type: ignore[no-untyped-def]
    raise RuntimeError("internal detail that must not reach the chat")


async def test_handler_error_apologises_in_the_users_telegram_language(any_bot: Harness) -> None:
    # Group -2: before identity (group -1) chose the translator, as a failure there would be.
    any_bot.runtime.application.add_handler(CommandHandler("boom", _boom), group=-2)
    user = any_bot.sandbox.user(52_001, language_code="en")
    replies = await exchange(any_bot, user, user.send_command("/boom"))
    assert [m["text"] for m in replies] == [APOLOGY_EN]


async def test_handler_error_apologises_in_the_language_the_user_chose(
    any_bot: Harness,
) -> None:
    any_bot.runtime.application.add_handler(CommandHandler("boom", _boom), group=-2)
    user = any_bot.sandbox.user(52_101, language_code="zh-hans")
    await exchange(any_bot, user, user.send_command("/language"))
    await exchange(any_bot, user, user.press("lang:en"))
    replies = await exchange(any_bot, user, user.send_command("/boom"))
    staff = await any_bot.sandbox.wait_for_message(STAFF_CHAT_ID, timeout=10)
    assert [m["text"] for m in replies] == [APOLOGY_EN]
    assert staff["text"].startswith("⚠️ 有一条消息未能处理")  # staff: the site's language
