"""Double taps end to end on both databases: the language button, "I have read the rules"
and a broadcast's audience pressed twice before the bot answered the first.

Both presses carry the message as it was (with its buttons), as Telegram sends them; one
user's updates run in order, so the second finds the message already edited and Telegram
says "message is not modified". That is no error: the second press is answered quietly —
no second reply, no apology, no staff alert.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.devtools.sandbox import SandboxUser
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, Harness
from tests.e2e.test_reminders import paid_registration, run_job

APOLOGY = "Sorry, something went wrong on our side."


async def double_tap(
    bot: Harness, user: SandboxUser, message: dict[str, Any], data: str
) -> list[dict[str, Any]]:
    """Two presses of one button, both queued before the bot handles the first."""
    first = await user.press_data(message["message_id"], data)
    second = await user.press_data(message["message_id"], data)
    await bot.sandbox.wait_idle(timeout=15, quiet=0.2)
    assert bot.runtime is not None and await bot.runtime.dispatcher.drain(15)
    await bot.sandbox.wait_idle(timeout=15, quiet=0.2)
    return [await user.wait_for_callback_answer(p) for p in (first, second)]


def texts(bot: Harness, chat_id: int, after: int) -> list[str]:
    """What the bot sent to a chat (not edits) after the `after`-th recorded call."""
    return [
        c.params.get("text", "")
        for c in bot.sandbox.calls[after:]
        if c.method == "sendMessage" and c.params.get("chat_id") == chat_id
    ]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_language_button_double_tap_sets_it_once_and_answers_quietly(
    any_bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    user = any_bot.sandbox.user(5201, first_name="Ann", language_code="zh-hans")
    await user.send_command("/language")
    choice = await user.wait_for_message()
    await any_bot.sandbox.wait_idle(timeout=10)
    mark = len(any_bot.sandbox.calls)

    answers = await double_tap(any_bot, user, choice, "lang:en")

    shown = any_bot.sandbox.message(user.id, choice["message_id"])
    assert (
        [a.get("text") for a in answers],
        shown["text"],
        texts(any_bot, user.id, mark),
        texts(any_bot, STAFF_CHAT_ID, mark),
        errors(caplog),
    ) == ([None, None], "Language set to English.", ["Choose what you want to do:"], [], [])


async def test_rules_acknowledgement_double_tap_is_noted_once_and_answers_quietly(
    any_bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    user = any_bot.sandbox.user(5202, first_name="Ann", language_code="en")
    await user.send_command("/start")
    await user.wait_for_message()
    registration = await paid_registration(any_bot.database_url, 5202)
    any_bot.clock.now = datetime(2027, 1, 8, 1, 5, tzinfo=UTC)  # after the −1 d reminder
    await run_job(any_bot, "plan_reminders")
    reminder = await user.wait_for_message(
        lambda m: "Exam-day rules" in m.get("text", ""), timeout=10
    )
    await any_bot.sandbox.wait_idle(timeout=10)
    mark = len(any_bot.sandbox.calls)

    answers = await double_tap(any_bot, user, reminder, f"rem:ack:{registration}")

    shown = any_bot.sandbox.message(user.id, reminder["message_id"])
    assert (
        [a.get("text") for a in answers],
        "reply_markup" in shown,
        texts(any_bot, user.id, mark),
        texts(any_bot, STAFF_CHAT_ID, mark),
        errors(caplog),
    ) == (
        ["Thank you. Good luck in your exam!"] * 2,
        False,
        ["Noted: you have read the exam-day rules for session 2027-01."],
        [],
        [],
    )


async def test_broadcast_audience_double_tap_previews_once_and_answers_quietly(
    any_bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    text = "The exam room changed to A302."
    staff = any_bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await staff.send_command("/broadcast")
    await staff.wait_for_message(lambda m: m.get("text", "").startswith("📣 New broadcast"))
    await staff.send_text(text)
    ask = await staff.wait_for_message(lambda m: m.get("text") == "Who should receive it?")
    [audience] = [
        b["callback_data"]
        for row in ask["reply_markup"]["inline_keyboard"]
        for b in row
        if b.get("callback_data", "").endswith(":all")
    ]
    await any_bot.sandbox.wait_idle(timeout=10)
    mark = len(any_bot.sandbox.calls)

    answers = await double_tap(any_bot, staff, ask, audience)

    sent = texts(any_bot, staff.id, mark)
    assert (
        [a.get("text") for a in answers],
        sent.count(text),
        len([t for t in sent if "Recipients:" in t]),
        [t for t in sent if t.startswith(APOLOGY)],
        texts(any_bot, STAFF_CHAT_ID, mark),
        errors(caplog),
    ) == ([None, None], 1, 1, [], [], [])
