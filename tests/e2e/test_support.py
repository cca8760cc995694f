"""Talking to candidates end to end ("Ask the exam centre", issue 14 point 4), on both
databases: a question becomes a card in the staff chat, a staff member's Telegram reply to
the card reaches the candidate, and the candidate's answer comes back to the same thread,
across restarts; in English (typed, /ask) and Chinese (menu button, a photo, the Reply
button, a document). Free text outside any flow is offered to the exam centre; a sticker
is not. Staff write to one candidate with /message and the find card's `desk:msg` button;
forged `desk:msg` data gets the stale or catch-all answer. /threads lists open ones.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from bot.i18n import I18n
from storage.db import Database
from storage.models import Candidate, OutboxMessage, SupportMessage, SupportThread
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, Harness, exchange
from tests.e2e.test_reminders import paid_registration
from tests.sandbox.images import png

ZH = I18n("zh_Hans").translator("zh_Hans")
UNKNOWN = "This button is no longer valid. Send /start for the menu."
STALE = "This button is no longer valid."


def _text(message: dict[str, Any]) -> str:
    return message.get("text") or message.get("caption") or ""


def _card(containing: str):  # type: ignore[no-untyped-def]
    return lambda m: containing in _text(m)


def _cards(bot: Harness, containing: str) -> list[dict[str, Any]]:
    return [m for m in bot.sandbox.chat_messages(STAFF_CHAT_ID) if containing in _text(m)]


async def _threads(url: str) -> list[tuple[int, str, int]]:
    """(telegram id, status, number of messages) of every thread."""
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            count = (
                select(func.count())
                .where(SupportMessage.thread_id == SupportThread.id)
                .scalar_subquery()
            )
            rows = await uow.session.execute(
                select(Candidate.telegram_id, SupportThread.status, count)
                .join(Candidate, Candidate.id == SupportThread.candidate_id)
                .order_by(SupportThread.id)
            )
            return [(r[0], r[1], r[2]) for r in rows]
    finally:
        await database.dispose()


async def _card_statuses(url: str) -> list[str]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.scalars(
                select(OutboxMessage.status).where(
                    OutboxMessage.idempotency_key.like("support:%"),
                    OutboxMessage.chat_id == STAFF_CHAT_ID,
                )
            )
            return [str(r) for r in rows]
    finally:
        await database.dispose()


async def _candidate_id(url: str, telegram_id: int) -> int:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            found = await uow.session.scalar(
                select(Candidate.id).where(Candidate.telegram_id == telegram_id)
            )
            return int(found)
    finally:
        await database.dispose()


async def test_question_reply_and_answer_back_across_restarts_in_english(
    any_bot: Harness,
) -> None:
    bot = any_bot
    ann = bot.sandbox.user(701, first_name="Ann", language_code="en")
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await exchange(bot, ann, ann.send_command("/start"))
    await paid_registration(bot.database_url, 701)
    reference = "ED701"  # tests/e2e/test_reminders.paid_registration

    prompt = await exchange(bot, ann, ann.send_command("/ask"))
    # The card's first send meets a 429: it is queued, not sent, when the bot restarts.
    bot.sandbox.inject_fault("sendMessage", kind="429", retry_after=3, chat_id=STAFF_CHAT_ID)
    sent = await exchange(bot, ann, ann.send_text("Where is room A301?"))
    await bot.sandbox.wait_idle(timeout=15, quiet=0.3)
    before_restart = await _card_statuses(bot.database_url)
    await bot.restart()
    bot.clock.now += timedelta(seconds=5)  # past the 429's retry_after
    card = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, _card("Where is room A301?"), timeout=15
    )
    await bot.restart()  # the reply finds the thread from the database
    reply = await staff.send_text(
        "Building A, third floor.", chat=STAFF_CHAT_ID, reply_to=card["message_id"]
    )
    confirmed = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, _card("Ann"), after=reply, timeout=15
    )
    answer = await ann.wait_for_message(_card("Building A"), timeout=15)
    await bot.restart()
    back = await exchange(bot, ann, ann.send_text("Thanks! Which entrance?"))
    follow_up = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, _card("Which entrance?"), timeout=15
    )

    assert prompt[0]["text"].startswith("Write your question to the exam centre")
    assert [m["text"] for m in sent] == [
        "📨 Sent to the exam centre as question #1. They answer here."
    ]
    assert before_restart == ["pending"]
    assert len(_cards(bot, "Where is room A301?")) == 1
    assert card["text"].startswith(ZH.gettext("❓ New question #{thread}", thread=1))
    assert reference in card["text"] and ZH.gettext("paid") in card["text"]
    assert confirmed["text"] == ZH.gettext(
        "✅ Sent to {name} (question #{thread}).", name="Ann", thread=1
    )
    assert answer["text"] == "💬 The exam centre answers: Building A, third floor."
    assert ann.inline_buttons(answer) == [("↩️ Reply", "sup:reply:1")]
    assert [m["text"] for m in back] == [
        "📨 Sent to the exam centre (question #1). They answer here."
    ]
    assert follow_up["text"].startswith(ZH.gettext("↩️ Question #{thread} continues", thread=1))
    assert (
        ZH.gettext("Last answer: “{text}”", text="Building A, third floor.") in (follow_up["text"])
    )
    assert await _threads(bot.database_url) == [(701, "open", 3)]


async def test_question_by_menu_with_photo_reply_button_and_document_in_chinese(
    any_bot: Harness,
) -> None:
    bot = any_bot
    li = bot.sandbox.user(702, first_name="李", language_code="zh-hans")
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await exchange(bot, li, li.send_command("/start"))

    prompt = await exchange(bot, li, li.press("menu:ask"))
    sticker = await exchange(bot, li, li.send_sticker())
    sent = await exchange(bot, li, li.send_photo(png(40, 30), caption="准考证照片不清楚"))
    card = await bot.sandbox.wait_for_message(STAFF_CHAT_ID, _card("准考证照片不清楚"), 15)
    await staff.send_text(
        "请重新上传一张清晰的照片。", chat=STAFF_CHAT_ID, reply_to=card["message_id"]
    )
    answer = await li.wait_for_message(_card("请重新上传"), timeout=15)
    await bot.restart()
    asked = await exchange(bot, li, li.press("↩️ 回复", answer["message_id"]))
    back = await exchange(
        bot, li, li.send_document(b"%PDF-1.4 photo", "photo.pdf", "application/pdf")
    )
    follow_up = await bot.sandbox.wait_for_message(STAFF_CHAT_ID, lambda m: "document" in m, 15)

    assert prompt[0]["text"] == ZH.gettext(
        "Write your question to the exam centre in one message: text, or a photo or a "
        "document with a caption. The staff answer here. Send /cancel to stop."
    )
    assert [m["text"] for m in sticker] == ["请输入文字，或发送图片或文件。"]
    assert [m["text"] for m in sent] == ["📨 已作为咨询 #1 发送给考点，工作人员会在这里答复您。"]
    assert ("photo" in card, card["caption"].startswith("❓ 新咨询 #1")) == (True, True)
    assert answer["text"] == "💬 考点答复：请重新上传一张清晰的照片。"
    assert asked[0]["text"].startswith("请用一条消息写下您要咨询考点的问题")
    assert [m["text"] for m in back] == ["📨 已发送给考点（咨询 #1），工作人员会在这里答复您。"]
    assert follow_up["caption"].startswith("↩️ 咨询 #1（续）")
    assert await _threads(bot.database_url) == [(702, "open", 3)]


async def test_free_text_is_offered_to_the_exam_centre_and_a_sticker_is_not(
    bot: Harness,
) -> None:
    bob = bot.sandbox.user(703, first_name="Bob", language_code="en")
    await exchange(bot, bob, bob.send_command("/start"))

    sticker = await exchange(bot, bob, bob.send_sticker())  # outside any flow
    offer = await exchange(bot, bob, bob.send_text("Can I bring a calculator?"))
    offer_id = offer[0]["message_id"]
    buttons = dict(bob.inline_buttons(offer_id))
    sent = await exchange(bot, bob, bob.press("📨 Send to the exam centre", offer_id))
    press = await bob.press_data(offer_id, buttons["📨 Send to the exam centre"])
    again = await bob.wait_for_callback_answer(press)
    card = await bot.sandbox.wait_for_message(STAFF_CHAT_ID, _card("calculator"), timeout=15)
    dropped_offer = await exchange(bot, bob, bob.send_text("never mind"))
    dropped_id = dropped_offer[0]["message_id"]
    await exchange(bot, bob, bob.press("✖️ No", dropped_id))

    assert offer[0]["text"].startswith("I am the exam centre's bot and cannot answer that")
    assert buttons == {
        "📨 Send to the exam centre": f"sup:send:{offer_id - 1}",  # the candidate's message
        "✖️ No": f"sup:drop:{offer_id - 1}",
    }
    assert bob.inline_buttons(offer_id) == []  # sent: the buttons are gone
    assert sticker[0]["text"].startswith("Sorry, I did not understand")
    assert bot.sandbox.message(bob.id, offer_id)["text"] == (
        "📨 Sent to the exam centre as question #1. They answer here."
    )
    assert sent == []  # the offer was edited in place
    assert again["text"] == STALE  # a second press of the sent offer changes nothing
    assert "Can I bring a calculator?" in card["text"]
    assert bot.sandbox.message(bob.id, dropped_id)["text"] == "Not sent. Send /start for the menu."
    assert len(_cards(bot, "never mind")) == 0
    assert await _threads(bot.database_url) == [(703, "open", 1)]


async def test_staff_message_by_command_and_find_card_button_and_forged_data(
    bot: Harness,
) -> None:
    cy = bot.sandbox.user(704, first_name="Cy", language_code="en")
    intruder = bot.sandbox.user(705, first_name="Mallory", language_code="en")
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await exchange(bot, cy, cy.send_command("/start"))
    await exchange(bot, intruder, intruder.send_command("/start"))
    await paid_registration(bot.database_url, 704)
    reference = "ED704"
    cy_id = await _candidate_id(bot.database_url, 704)

    usage = await exchange(bot, staff, staff.send_command("/message", "nobody"))
    unknown = await exchange(bot, staff, staff.send_command("/message", "NOPE-1 hello"))
    by_command = await exchange(
        bot, staff, staff.send_command("/message", f"{reference} Please bring your ID card.")
    )
    told = await cy.wait_for_message(_card("ID card"), timeout=15)
    ask = await exchange(bot, staff, staff.send_command("/threads"))
    # The find card (another module) carries desk:msg:<candidate id>; a message of the bot
    # to press it on is any: the prompt answers in the chat of the press.
    anchor = ask[0]["message_id"]
    pressed = await exchange(bot, staff, staff.press_data(anchor, f"desk:msg:{cy_id}"))
    typed = await exchange(bot, staff, staff.send_text("Your photo is fine now."))
    told_again = await cy.wait_for_message(_card("photo is fine"), timeout=15)
    forged = []
    for data in (f"desk:msg:{2**31}", "desk:msg:0", "desk:msg:x", f"desk:msg:{2**31 - 1}"):
        press = await staff.press_data(anchor, data)
        forged.append((await staff.wait_for_callback_answer(press))["text"])
    by_intruder = await intruder.press_data(anchor, f"desk:msg:{cy_id}")
    intruder_answer = await intruder.wait_for_callback_answer(by_intruder)
    back = await exchange(bot, cy, cy.send_text("Thank you!"))
    open_now = await exchange(bot, staff, staff.send_command("/threads"))
    # In the staff chat: the button's prompt there, the next message there is the text, and
    # talk after it is not sent.
    listed = await staff.send_command("/threads", chat=STAFF_CHAT_ID)
    in_group = await bot.sandbox.wait_for_message(STAFF_CHAT_ID, after=listed, timeout=15)
    group_press = await staff.press_data(
        in_group["message_id"], f"desk:msg:{cy_id}", chat=STAFF_CHAT_ID
    )
    group_prompt = await bot.sandbox.wait_for_message(STAFF_CHAT_ID, after=group_press)
    typed_in_group = await staff.send_text("Please call us today.", chat=STAFF_CHAT_ID)
    group_done = await bot.sandbox.wait_for_message(STAFF_CHAT_ID, after=typed_in_group)
    told_in_group = await cy.wait_for_message(_card("call us today"), timeout=15)
    talk = await staff.send_text("coffee, anyone?", chat=STAFF_CHAT_ID)
    await bot.sandbox.wait_idle(timeout=15, quiet=0.3)
    assert bot.runtime is not None and await bot.runtime.dispatcher.drain(15)

    assert usage[0]["text"] == "Usage: /message <registration reference or Telegram id> <text>"
    assert unknown[0]["text"] == "No candidate with that registration reference or Telegram id."
    assert by_command[0]["text"] == "✅ Sent to Cy (question #1)."
    assert told["text"] == "💬 The exam centre answers: Please bring your ID card."
    assert ask[0]["text"] == "No question waits for an answer."
    assert pressed[0]["text"].startswith("Type your message to Cy")
    assert typed[0]["text"] == "✅ Sent to Cy (question #1)."
    assert told_again["text"] == "💬 The exam centre answers: Your photo is fine now."
    assert forged == [STALE, STALE, STALE, STALE]
    assert intruder_answer["text"] == UNKNOWN
    assert back[0]["text"] == "📨 Sent to the exam centre (question #1). They answer here."
    assert open_now[0]["text"].startswith("1 question waits for an answer")
    assert "#1 Cy" in open_now[0]["text"]
    assert group_prompt["text"].startswith(
        ZH.gettext(
            "Type your message to {name} (text, or a photo or a document with a caption). "
            "Send /cancel to stop.",
            name="Cy",
        )
    )
    assert group_done["text"] == ZH.gettext(
        "✅ Sent to {name} (question #{thread}).", name="Cy", thread=1
    )
    assert told_in_group["text"] == "💬 The exam centre answers: Please call us today."
    assert [
        m
        for m in bot.sandbox.chat_messages(STAFF_CHAT_ID)
        if m["message_id"] > talk["message"]["message_id"]
    ] == []
    assert [t for t in (m.get("text", "") for m in cy.messages()) if "coffee" in t] == []
    assert await _threads(bot.database_url) == [(704, "answered", 4)]
