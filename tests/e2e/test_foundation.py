"""Foundation end to end: languages, /language across restarts, commands menu, webhook, health."""

from __future__ import annotations

import aiohttp
from sqlalchemy import func, select

from bot.devtools.sandbox import Sandbox
from storage.db import Database
from storage.models import InboxUpdate
from storage.uow import UnitOfWork
from tests.e2e.conftest import WEBHOOK_SECRET, Harness

ZH_GREETING = "哈尔滨理工大学"
EN_GREETING = "Harbin University of Science and Technology"


async def _start_text(sandbox: Sandbox, user_id: int, language_code: str | None) -> str:
    user = sandbox.user(user_id, first_name="Li", language_code=language_code)
    await user.send_command("/start")
    return (await user.wait_for_message())["text"]


async def test_start_answers_in_telegram_language_or_default(bot: Harness) -> None:
    texts = [
        await _start_text(bot.sandbox, 101, "zh-hans"),
        await _start_text(bot.sandbox, 102, "en"),
        await _start_text(bot.sandbox, 103, "de"),
    ]
    assert [ZH_GREETING in texts[0], EN_GREETING in texts[1], ZH_GREETING in texts[2]] == [
        True,
        True,
        True,
    ]


async def test_start_with_deep_link_payload_shows_menu(bot: Harness) -> None:
    user = bot.sandbox.user(104, language_code="en")
    await user.send_command("/start", payload="campaign_2027")
    message = await user.wait_for_message()
    assert EN_GREETING in message["text"] and user.inline_buttons(message) != []


async def test_language_choice_persists_across_restart(bot: Harness) -> None:
    user = bot.sandbox.user(105, language_code="zh-hans")
    await user.send_command("/language")
    await user.wait_for_message()
    await user.press("English")
    confirmation = await user.wait_for_message(lambda m: "English" in m.get("text", ""))
    await bot.restart()
    await user.send_command("/start")
    greeting = await user.wait_for_message()
    assert (confirmation["text"], EN_GREETING in greeting["text"]) == (
        "Language set to English.",
        True,
    )


async def test_forged_language_button_is_refused_and_nothing_changes(bot: Harness) -> None:
    user = bot.sandbox.user(106, language_code="en")
    await user.send_command("/language")
    message = await user.wait_for_message()
    update = await user.press_data(message["message_id"], "lang:xx")
    answer = await user.wait_for_callback_answer(update)
    await user.send_command("/start")
    assert (answer.get("text"), EN_GREETING in (await user.wait_for_message())["text"]) == (
        "This button is no longer valid.",
        True,
    )


async def test_commands_menu_is_set_per_language(bot: Harness) -> None:
    zh = [c["description"] for c in bot.sandbox.commands(language_code="zh")]
    en = [c["description"] for c in bot.sandbox.commands(language_code="en")]
    default = [c["command"] for c in bot.sandbox.commands()]
    assert (zh[0], en[0], default) == (
        "主菜单",
        "Main menu",
        [
            "start",
            "eligibility",
            "register",
            "status",
            "ticket",
            "results",
            "certificate",
            "verify",
            "ask",
            "help",
            "language",
            "cancel",
        ],
    )


async def test_text_outside_a_flow_is_offered_to_the_centre_and_a_sticker_is_refused(
    bot: Harness,
) -> None:
    user = bot.sandbox.user(107, language_code="en")
    await user.send_text("asdfgh")
    first = await user.wait_for_message()
    offer = [label for label, _ in user.inline_buttons()]
    await user.send_sticker()
    second = await user.wait_for_message()
    assert [
        first["text"].startswith("I am the exam centre's bot and cannot answer that myself"),
        offer,
        second["text"],
    ] == [
        True,
        ["📨 Send to the exam centre", "✖️ No"],
        "Please write text, or send a photo or a document.",
    ]


async def test_cancel_outside_a_flow_says_nothing_to_cancel(bot: Harness) -> None:
    user = bot.sandbox.user(108, language_code="en")
    await user.send_command("/cancel")
    assert (await user.wait_for_message())["text"] == "There is nothing to cancel."


async def _count_inbox(url: str) -> int:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            return int(await uow.session.scalar(select(func.count()).select_from(InboxUpdate)))
    finally:
        await database.dispose()


def _raw_update(update_id: int, user_id: int) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_795_000_000,
            "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            "chat": {"id": user_id, "type": "private", "first_name": "Raw"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Raw", "language_code": "en"},
        },
    }


async def test_webhook_with_wrong_or_missing_secret_is_refused_and_stores_nothing(
    webhook_bot: Harness,
) -> None:
    url = webhook_bot.web_url + "/telegram/webhook"
    before = await _count_inbox(webhook_bot.database_url)
    async with aiohttp.ClientSession() as http:
        wrong = await http.post(
            url,
            json=_raw_update(9_000_001, 301),
            headers={"X-Telegram-Bot-Api-Secret-Token": "nope"},
        )
        missing = await http.post(url, json=_raw_update(9_000_002, 301))
    assert (wrong.status, missing.status, await _count_inbox(webhook_bot.database_url)) == (
        403,
        403,
        before,
    )


async def test_webhook_same_update_twice_is_handled_once(webhook_bot: Harness) -> None:
    url = webhook_bot.web_url + "/telegram/webhook"
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    webhook_bot.sandbox.user(302, language_code="en")  # the private chat exists on Telegram's side
    async with aiohttp.ClientSession() as http:
        first = await http.post(url, json=_raw_update(9_000_010, 302), headers=headers)
        second = await http.post(url, json=_raw_update(9_000_010, 302), headers=headers)
    assert await webhook_bot.runtime.dispatcher.drain(10)
    await webhook_bot.sandbox.wait_idle(timeout=10)
    replies = list(webhook_bot.sandbox.chat_messages(302))
    assert (first.status, second.status, len(replies)) == (200, 200, 1)


async def test_webhook_mode_serves_real_users_through_the_sandbox(webhook_bot: Harness) -> None:
    user = webhook_bot.sandbox.user(303, language_code="en")
    await user.send_command("/start")
    message = await user.wait_for_message(timeout=10)
    assert EN_GREETING in message["text"]


async def test_healthz_reports_database_and_backlog_in_both_modes(
    bot: Harness, webhook_bot: Harness
) -> None:
    async with aiohttp.ClientSession() as http:
        polling = await (await http.get(bot.web_url + "/healthz")).json()
        webhook = await (await http.get(webhook_bot.web_url + "/healthz")).json()
    assert (polling["status"], polling["mode"], polling["inbox_pending"]) == ("ok", "polling", 0)
    assert (webhook["status"], webhook["mode"], "outbox_pending" in webhook) == (
        "ok",
        "webhook",
        True,
    )


async def test_update_stored_but_not_processed_runs_after_restart(bot: Harness) -> None:
    await bot.stop()
    bot.sandbox.user(304, language_code="en")
    database = Database(bot.database_url)
    try:
        from bot.services import build_services

        await build_services(database, bot.clock).inbox.store(_raw_update(9_000_020, 304))
    finally:
        await database.dispose()
    await bot.start()
    # The replayed update makes no Bot API call until its handler replies, so the sandbox
    # cannot tell when it is done: the dispatcher can.
    assert await bot.runtime.dispatcher.drain(10)
    await bot.sandbox.wait_idle(timeout=10)
    assert (len(bot.sandbox.chat_messages(304)), await _count_inbox(bot.database_url) > 0) == (
        1,
        True,
    )
