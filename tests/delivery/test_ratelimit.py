"""The send budget shared by direct replies and the outbox, and PTB's rate limiter seam on it.

Replies go through a real `ExtBot` with `ReplyRateLimiter` against the sandbox over HTTP;
no test measures time (bench/flood.py does).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from telegram.error import RetryAfter
from telegram.ext import ExtBot

from bot.devtools.sandbox import RateLimits, Sandbox
from bot.runtime.ratelimit import Limits, ReplyRateLimiter, SendBudget, counts_as_message

from .conftest import statuses


@pytest.fixture
async def replies(sandbox: Sandbox, token: str) -> AsyncIterator[ExtBot[int]]:
    """A bot whose calls go through the reply rate limiter (as the application's does)."""
    limiter = ReplyRateLimiter(SendBudget(Limits(per_second=1000)))
    async with ExtBot(
        token, base_url=sandbox.base_url, base_file_url=sandbox.base_file_url, rate_limiter=limiter
    ) as bot:
        yield bot


async def test_reply_429_is_waited_out_and_sent_once(
    sandbox: Sandbox, replies: ExtBot[int]
) -> None:
    sandbox.user(12_001)
    sandbox.inject_fault("sendMessage", kind="429", retry_after=1, chat_id=12_001)
    await replies.send_message(12_001, "Welcome")
    assert statuses(sandbox, 12_001) == [429, 200]
    assert [m["text"] for m in sandbox.chat_messages(12_001)] == ["Welcome"]


async def test_reply_429_beyond_the_retries_is_raised(
    sandbox: Sandbox, replies: ExtBot[int]
) -> None:
    sandbox.user(12_101)
    sandbox.inject_fault("sendMessage", kind="429", retry_after=1, chat_id=12_101, times=5)
    with pytest.raises(RetryAfter):
        await replies.send_message(12_101, "Welcome", rate_limit_args=1)
    assert statuses(sandbox, 12_101) == [429, 429]


async def test_two_replies_to_one_chat_under_telegram_like_limits_both_arrive(
    sandbox: Sandbox, replies: ExtBot[int]
) -> None:
    # Telegram-like: 1/s per chat with no burst; the second reply meets a 429, waits it out.
    sandbox.set_rate_limits(RateLimits())
    sandbox.user(12_201)
    await replies.send_message(12_201, "Saved.")
    await replies.send_message(12_201, "Next question?")
    assert [m["text"] for m in sandbox.chat_messages(12_201)] == ["Saved.", "Next question?"]


def test_only_message_posting_methods_count_against_the_limits() -> None:
    methods = [
        "sendMessage",
        "sendDocument",
        "copyMessage",
        "forwardMessages",
        "sendChatAction",
        "editMessageText",
        "answerCallbackQuery",
        "setWebhook",
        "getUpdates",
    ]
    assert [m for m in methods if counts_as_message(m)] == [
        "sendMessage",
        "sendDocument",
        "copyMessage",
        "forwardMessages",
    ]


async def test_waiting_replies_take_the_bot_wide_slots_before_the_outbox() -> None:
    budget = SendBudget(Limits(per_second=20))
    order: list[str] = []

    async def reply(name: str, chat_id: int) -> None:
        await budget.reply_slot(chat_id)
        order.append(name)

    async def outbox() -> None:
        await budget.outbox_slot()
        order.append("outbox")

    # The replies arrive first and queue for slots; the outbox message waits behind them.
    tasks = [asyncio.create_task(reply(f"reply {i}", 100 + i)) for i in range(4)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(outbox()))
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(reply("late reply", 200)))
    await asyncio.gather(*tasks)
    assert order == ["reply 0", "reply 1", "reply 2", "reply 3", "late reply", "outbox"]


async def test_reply_uses_its_chats_pace_so_the_outbox_waits_for_that_chat() -> None:
    budget = SendBudget(Limits(per_private_chat_per_second=1))
    await budget.reply_slot(12_301)
    now = time.monotonic()
    chat_next, other_next = budget.chat(12_301).peek(now), budget.chat(12_302).peek(now)
    assert (chat_next > now, other_next == now) == (True, True)
