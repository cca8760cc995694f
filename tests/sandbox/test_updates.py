"""Updates: getUpdates semantics, user actions, callback queries, payments, webhook, idleness."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, Update
from telegram.error import Conflict
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.devtools.sandbox import PaymentDeclined, Sandbox, SandboxError, SandboxUser


async def test_get_updates_offset_confirms_earlier_updates(
    bot: Bot, sandbox: Sandbox, li: SandboxUser
):
    await li.send_text("one")
    await li.send_text("two")
    first = await bot.get_updates()
    again = await bot.get_updates(offset=first[0].update_id + 1)
    assert [u.message.text for u in first] == ["one", "two"]
    assert [u.message.text for u in again] == ["two"]
    assert len(sandbox.pending_updates()) == 1


async def test_get_updates_limit_and_negative_offset(bot: Bot, li: SandboxUser):
    for text in ("a", "b", "c"):
        await li.send_text(text)
    limited = await bot.get_updates(limit=2)
    last = await bot.get_updates(offset=-1)
    assert ([u.message.text for u in limited], [u.message.text for u in last]) == (
        ["a", "b"],
        ["c"],
    )


async def test_get_updates_long_poll_wakes_on_user_action(bot: Bot, li: SandboxUser):
    poll = asyncio.create_task(bot.get_updates(timeout=5, read_timeout=10))
    await asyncio.sleep(0.05)
    await li.send_command("/start", payload="ref42")
    updates = await asyncio.wait_for(poll, 2)
    message = updates[0].message
    assert (message.text, message.entities[0].type, message.entities[0].length) == (
        "/start ref42",
        "bot_command",
        6,
    )


async def test_get_updates_timeout_passes_with_no_updates(bot: Bot):
    assert await bot.get_updates(timeout=1) == ()


async def test_get_updates_allowed_updates_drops_other_kinds(bot: Bot, li: SandboxUser):
    await bot.get_updates(allowed_updates=["callback_query"])
    await li.send_text("ignored")
    await bot.send_message(
        li.id,
        "x",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]]),
    )
    await li.press("A")
    assert [u.callback_query.data for u in await bot.get_updates()] == ["a"]


async def test_get_updates_second_poll_terminates_first_with_conflict(
    bot: Bot, sandbox: Sandbox, token: str
):
    first = asyncio.create_task(bot.get_updates(timeout=5, read_timeout=10))
    await asyncio.sleep(0.05)
    async with Bot(token, base_url=sandbox.base_url) as second_instance:
        second = await second_instance.get_updates()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first
    assert second == ()


async def test_press_button_sends_callback_query_with_message(bot: Bot, li: SandboxUser):
    sent = await bot.send_message(
        li.id,
        "Pick",
        reply_markup=InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Level 4", callback_data="reg:4"),
                    InlineKeyboardButton("Site", url="https://example.org"),
                ]
            ]
        ),
    )
    update = await li.press("Level 4")
    query = (await bot.get_updates())[0].callback_query
    await bot.answer_callback_query(query.id, text="Saved", show_alert=True)
    assert (query.data, query.message.message_id, query.from_user.id) == (
        "reg:4",
        sent.message_id,
        li.id,
    )
    assert li.callback_answer(update) == {"text": "Saved", "show_alert": True}
    assert li.inline_buttons() == [("Level 4", "reg:4"), ("Site", "https://example.org")]


async def test_press_missing_button_raises(bot: Bot, li: SandboxUser):
    await bot.send_message(
        li.id,
        "Pick",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]]),
    )
    with pytest.raises(SandboxError, match="no button 'B'"):
        await li.press("B")


async def test_press_data_forges_any_data(bot: Bot, li: SandboxUser):
    sent = await bot.send_message(li.id, "Pick")
    await li.press_data(sent.message_id, "staff:approve:1")
    assert (await bot.get_updates())[0].callback_query.data == "staff:approve:1"


async def test_answer_callback_query_twice_is_bad_request(bot: Bot, li: SandboxUser):
    await bot.send_message(
        li.id,
        "Pick",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]]),
    )
    await li.press("a")
    query = (await bot.get_updates())[0].callback_query
    await bot.answer_callback_query(query.id)
    with pytest.raises(Exception, match="Query is too old"):
        await bot.answer_callback_query(query.id)


async def test_share_contact_own_carries_user_id(bot: Bot, li: SandboxUser):
    await li.share_contact("8613800138000")
    contact = (await bot.get_updates())[0].message.contact
    assert (contact.phone_number, contact.user_id, contact.first_name) == (
        "8613800138000",
        li.id,
        "Li",
    )


async def test_send_sticker_and_document_build_messages(bot: Bot, li: SandboxUser):
    await li.send_sticker()
    await li.send_document(b"diploma", "diploma.pdf", "application/pdf")
    sticker, document = [u.message for u in await bot.get_updates()]
    assert (sticker.sticker.width, document.document.file_name, document.document.mime_type) == (
        512,
        "diploma.pdf",
        "application/pdf",
    )


async def test_group_message_carries_group_chat(bot: Bot, sandbox: Sandbox, li: SandboxUser):
    staff = sandbox.group(-100777, "Staff")
    await li.send_text("/approve 12", chat=staff)
    message = (await bot.get_updates())[0].message
    assert (message.chat.id, message.chat.type, message.from_user.id) == (
        -100777,
        "supergroup",
        li.id,
    )


async def _invoice(bot: Bot, li: SandboxUser) -> int:
    sent = await bot.send_invoice(
        li.id,
        "Level 3 exam",
        "Exam fee",
        "reg:17",
        "CNY",
        [LabeledPrice("Fee", 30000)],
        provider_token="test-provider",
    )
    return sent.message_id


async def test_send_invoice_stores_invoice_details(bot: Bot, sandbox: Sandbox, li: SandboxUser):
    mid = await _invoice(bot, li)
    stored = sandbox.invoice(li.id, mid)
    assert (
        li.last_message()["invoice"]["total_amount"],
        stored["payload"],
        stored["provider_token"],
    ) == (30000, "reg:17", "test-provider")
    assert stored["prices"] == [{"label": "Fee", "amount": 30000}]


async def test_pay_ok_sends_successful_payment(bot: Bot, li: SandboxUser):
    mid = await _invoice(bot, li)
    paying = asyncio.create_task(li.pay(mid))
    query = (await bot.get_updates(timeout=2))[-1].pre_checkout_query
    await bot.answer_pre_checkout_query(query.id, ok=True)
    update = await paying
    payment = update["message"]["successful_payment"]
    assert (query.total_amount, query.invoice_payload) == (30000, "reg:17")
    assert (payment["total_amount"], payment["invoice_payload"], payment["currency"]) == (
        30000,
        "reg:17",
        "CNY",
    )
    assert payment["telegram_payment_charge_id"] and payment["provider_payment_charge_id"]


async def test_pay_declined_raises_with_error_message(bot: Bot, li: SandboxUser):
    mid = await _invoice(bot, li)
    paying = asyncio.create_task(li.pay(mid, total_amount=1))
    query = (await bot.get_updates(timeout=2))[-1].pre_checkout_query
    await bot.answer_pre_checkout_query(query.id, ok=False, error_message="Amount mismatch")
    with pytest.raises(PaymentDeclined, match="Amount mismatch"):
        await paying


async def test_set_my_commands_is_kept_per_scope_and_language(
    bot: Bot, sandbox: Sandbox, li: SandboxUser
):
    from telegram import BotCommand, BotCommandScopeAllPrivateChats

    await bot.set_my_commands([BotCommand("start", "Start")])
    await bot.set_my_commands(
        [BotCommand("start", "开始"), BotCommand("help", "帮助")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="zh",
    )
    zh = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="zh")
    assert [c.command for c in zh] == ["start", "help"]
    assert [c["description"] for c in li.visible_commands()] == ["开始", "帮助"]
    assert [c["command"] for c in sandbox.commands()] == ["start"]
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()


async def test_set_chat_menu_button_is_returned(bot: Bot, li: SandboxUser):
    from telegram import MenuButtonCommands

    assert await bot.set_chat_menu_button(li.id, MenuButtonCommands()) is True
    assert (await bot.get_chat_menu_button(li.id)).type == "commands"


async def test_wait_for_message_returns_reply_after_action(bot: Bot, li: SandboxUser):
    await bot.send_message(li.id, "old")
    await li.send_text("hello")
    waiter = asyncio.create_task(li.wait_for_message(lambda m: "Hi" in m["text"]))
    await asyncio.sleep(0.01)
    await bot.send_message(li.id, "Hi Li")
    assert (await asyncio.wait_for(waiter, 1))["text"] == "Hi Li"


async def test_wait_for_message_times_out_without_reply(li: SandboxUser):
    with pytest.raises(TimeoutError):
        await li.wait_for_message(timeout=0.1)


RECEIVED = web.AppKey("received", list)


async def _receive(request: web.Request) -> web.Response:
    received = request.app[RECEIVED]
    received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
    return web.Response(status=500 if len(received) == 1 else 200)


async def test_set_webhook_delivers_with_secret_and_retries(
    bot: Bot, sandbox: Sandbox, li: SandboxUser
):
    app = web.Application()
    app[RECEIVED] = []
    runner = web.AppRunner(app)
    app.router.add_post("/hook", _receive)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        update = await li.send_text("via webhook")
        await sandbox.wait_idle(timeout=3)
        info = await bot.get_webhook_info()
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        assert [(s, u["update_id"]) for s, u in app[RECEIVED]] == [
            ("s3cret", update["update_id"])
        ] * 2
        assert (info.pending_update_count, info.last_error_message) == (
            0,
            "Wrong response from the webhook: 500 Internal Server Error",
        )
        await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_wait_idle_after_application_replies(sandbox: Sandbox, token: str, li: SandboxUser):
    async def cmd_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text("Welcome")

    app = (
        Application.builder()
        .token(token)
        .base_url(sandbox.base_url)
        .base_file_url(sandbox.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", cmd_start))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await li.send_command("/start")
        await sandbox.wait_idle(timeout=5)
        replies = [m["text"] for m in li.messages()]
        await app.updater.stop()
        await app.stop()
    assert (replies, sandbox.pending_updates()) == (["Welcome"], [])
