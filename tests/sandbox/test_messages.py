"""Messages through a real PTB Bot over HTTP: send, edit, delete, files, errors."""

from __future__ import annotations

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from telegram.error import BadRequest, Forbidden

from bot.devtools.sandbox import Sandbox, SandboxUser

from .images import jpeg, png


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d)] for t, d in pairs])


async def test_get_me_returns_bot_user(bot: Bot, sandbox: Sandbox):
    me = await bot.get_me()
    assert (me.is_bot, me.username, me.id) == (True, "examdesk_bot", sandbox.bot().id)


async def test_add_bot_generates_telegram_shaped_token(sandbox: Sandbox):
    token = sandbox.add_bot(username="other_bot")
    bot_id, secret = token.split(":")
    assert (bot_id.isdigit(), len(secret), secret[:2]) == (True, 35, "AA")


async def test_send_message_with_keyboard_is_stored_and_recorded(
    bot: Bot, sandbox: Sandbox, li: SandboxUser
):
    sent = await bot.send_message(
        li.id, "Choose a level", reply_markup=keyboard(("Level 3", "reg:3"))
    )
    assert li.messages()[-1]["message_id"] == sent.message_id
    assert li.inline_buttons() == [("Level 3", "reg:3")]
    call = sandbox.calls_of("sendMessage")[-1]
    assert (call.params["chat_id"], call.status, call.violations) == (li.id, 200, [])
    assert call.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Level 3", "callback_data": "reg:3"}]]
    }


async def test_send_message_message_ids_increase_per_chat(
    bot: Bot, sandbox: Sandbox, li: SandboxUser
):
    other = sandbox.user(1002)
    await li.send_text("hi")
    first = await bot.send_message(li.id, "a")
    second = await bot.send_message(other.id, "b")
    assert (first.message_id, second.message_id) == (2, 1)


async def test_send_message_html_parse_mode_gives_entities(bot: Bot, li: SandboxUser):
    sent = await bot.send_message(li.id, "<b>Seats</b> left: 3 &lt;", parse_mode="HTML")
    assert li.last_message()["text"] == "Seats left: 3 <"
    assert li.last_message()["entities"] == [{"type": "bold", "offset": 0, "length": 5}]
    assert sent.text == "Seats left: 3 <"


async def test_send_message_unescaped_html_is_bad_request(bot: Bot, li: SandboxUser):
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.send_message(li.id, "score < 60 <b>fail", parse_mode="HTML")


async def test_send_message_unescaped_markdown_v2_is_bad_request(bot: Bot, li: SandboxUser):
    with pytest.raises(BadRequest, match=r"character '\.' is reserved"):
        await bot.send_message(li.id, "Fee: 100.00 CNY", parse_mode="MarkdownV2")


async def test_send_message_empty_text_is_bad_request(bot: Bot, li: SandboxUser):
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(li.id, "   ")


async def test_send_message_too_long_is_bad_request(bot: Bot, li: SandboxUser):
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(li.id, "x" * 4097)


async def test_send_message_unknown_chat_is_chat_not_found(bot: Bot):
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999_999, "hello")


async def test_send_message_long_callback_data_is_button_data_invalid(bot: Bot, li: SandboxUser):
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(li.id, "x", reply_markup=keyboard(("A", "a" * 65)))


async def test_send_message_blocked_user_is_forbidden(bot: Bot, sandbox: Sandbox, li: SandboxUser):
    update = li.block_bot()
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(li.id, "reminder")
    assert update["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    assert sandbox.calls_of("sendMessage")[-1].status == 403


async def test_send_text_to_blocked_bot_unblocks_it(bot: Bot, li: SandboxUser):
    li.block_bot()
    await li.send_command("/start")
    assert (li.blocked, (await bot.send_message(li.id, "welcome back")).text) == (
        False,
        "welcome back",
    )


async def test_send_message_reply_keyboard_is_shown_then_removed(bot: Bot, li: SandboxUser):
    await bot.send_message(
        li.id,
        "Share your phone",
        reply_markup=ReplyKeyboardMarkup(
            [[KeyboardButton("Share", request_contact=True)]], one_time_keyboard=True
        ),
    )
    shown = li.reply_keyboard()
    await bot.send_message(li.id, "Thanks", reply_markup=ReplyKeyboardRemove())
    assert (shown, li.reply_keyboard()) == ([[{"text": "Share", "request_contact": True}]], None)
    assert "reply_markup" not in li.messages()[0]


async def test_send_message_reply_parameters_include_replied_message(bot: Bot, li: SandboxUser):
    update = await li.send_text("When is the exam?")
    asked = update["message"]["message_id"]
    sent = await bot.send_message(li.id, "In June", reply_parameters=ReplyParameters(asked))
    assert sent.reply_to_message.text == "When is the exam?"
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(li.id, "x", reply_parameters=ReplyParameters(999))


async def test_send_message_to_group_by_username(bot: Bot, sandbox: Sandbox):
    staff = sandbox.group(-1001234567890, "Exam staff", username="examdesk_staff")
    await bot.send_message("@examdesk_staff", "New payment to review")
    assert [m["text"] for m in staff.messages()] == ["New payment to review"]
    assert sandbox.chat_messages(staff.id)[0]["chat"]["type"] == "supergroup"


async def test_edit_message_text_updates_stored_message(bot: Bot, li: SandboxUser):
    sent = await bot.send_message(li.id, "Pending", reply_markup=keyboard(("Pay", "pay:1")))
    edited = await bot.edit_message_text("Paid", chat_id=li.id, message_id=sent.message_id)
    current = li.messages()[-1]
    assert (current["text"], "reply_markup" in current, "edit_date" in current) == (
        "Paid",
        False,
        True,
    )
    assert edited.edit_date is not None


async def test_edit_message_text_identical_is_not_modified(bot: Bot, li: SandboxUser):
    sent = await bot.send_message(li.id, "Same", reply_markup=keyboard(("A", "a")))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "Same", chat_id=li.id, message_id=sent.message_id, reply_markup=keyboard(("A", "a"))
        )


async def test_edit_message_text_unknown_message_is_not_found(bot: Bot, li: SandboxUser):
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=li.id, message_id=77)


async def test_edit_message_reply_markup_replaces_keyboard(bot: Bot, li: SandboxUser):
    sent = await bot.send_message(li.id, "Pick", reply_markup=keyboard(("A", "a")))
    await bot.edit_message_reply_markup(li.id, sent.message_id, reply_markup=keyboard(("B", "b")))
    assert li.inline_buttons() == [("B", "b")]


async def test_delete_message_removes_it(bot: Bot, li: SandboxUser):
    sent = await bot.send_message(li.id, "temporary")
    assert await bot.delete_message(li.id, sent.message_id) is True
    assert li.messages() == []
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(li.id, sent.message_id)


async def test_send_photo_upload_is_downloadable(bot: Bot, li: SandboxUser):
    data = png(1600, 1200) + b"pixels"
    sent = await bot.send_photo(li.id, data, caption="<i>admit card</i>", parse_mode="HTML")
    sizes = [(p.width, p.height) for p in sent.photo]
    file = await bot.get_file(sent.photo[-1].file_id)
    assert sizes == [(90, 68), (320, 240), (800, 600), (1280, 960)]
    assert (sent.caption, bytes(await file.download_as_bytearray())) == ("admit card", data)


async def test_send_photo_by_file_id_reuses_sizes(bot: Bot, li: SandboxUser):
    first = await bot.send_photo(li.id, png(100, 50))
    again = await bot.send_photo(li.id, first.photo[-1].file_id)
    assert [p.file_id for p in again.photo] == [p.file_id for p in first.photo]


async def test_send_document_upload_keeps_name_and_mime(bot: Bot, li: SandboxUser):
    sent = await bot.send_document(li.id, b"%PDF-1.7 certificate", filename="cert.pdf")
    doc = li.last_message()["document"]
    assert (doc["file_name"], doc["file_size"], sent.document.file_id) == (
        "cert.pdf",
        20,
        doc["file_id"],
    )
    again = await bot.send_document(li.id, doc["file_id"])
    assert again.document.file_name == "cert.pdf"


async def test_send_document_unknown_file_id_is_bad_request(bot: Bot, li: SandboxUser):
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_document(li.id, "BQACAgIAAxkBAAI-nonexistent")


async def test_get_file_of_user_photo_downloads_bytes(bot: Bot, li: SandboxUser):
    data = jpeg(640, 480)
    update = await li.send_photo(data)
    largest = update["message"]["photo"][-1]
    file = await bot.get_file(largest["file_id"])
    assert ((largest["width"], largest["height"]), bytes(await file.download_as_bytearray())) == (
        (640, 480),
        data,
    )


async def test_send_chat_action_and_get_chat(bot: Bot, sandbox: Sandbox, li: SandboxUser):
    assert await bot.send_chat_action(li.id, "typing") is True
    chat = await bot.get_chat(li.id)
    assert (chat.type, chat.first_name, sandbox.chats[li.id].last_action) == (
        "private",
        "Li",
        "typing",
    )
