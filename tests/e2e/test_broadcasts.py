"""Staff broadcasts end to end: composed in the staff chat or privately, previewed with the
exact count, sent through the outbox with one progress message, a report of who was not
reached; non-staff cannot start, confirm or cancel (forged buttons included); a Runtime
restart mid-broadcast resumes without resending."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select

from storage.db import Database
from storage.models import Broadcast
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, STAFF_ID_2, Harness, exchange
from tests.factories import make_candidates

TEXT = "Results of the 2027-01 session are out. Send /status to see yours."


async def _broadcast_status(url: str) -> list[tuple[int, str, int]]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            result = await uow.session.execute(
                select(Broadcast.id, Broadcast.status, Broadcast.recipients).order_by(Broadcast.id)
            )
            return [tuple(r) for r in result.all()]  # type: ignore[misc]
    finally:
        await database.dispose()


async def _add_candidates(url: str, telegram_ids: list[int]) -> None:
    database = Database(url)
    try:
        await make_candidates(database, telegram_ids)
    finally:
        await database.dispose()


def _texts(messages: list[dict]) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in messages]


def _button(message: dict, prefix: str) -> str:
    for row in message["reply_markup"]["inline_keyboard"]:
        for button in row:
            if button.get("callback_data", "").startswith(prefix):
                return button["callback_data"]
    raise AssertionError(f"no {prefix} button")


async def test_broadcast_from_staff_chat_reaches_everyone_and_reports_who_was_not(
    bot: Harness,
) -> None:
    people = [
        bot.sandbox.user(uid, first_name=f"P{uid}", language_code="en") for uid in (301, 302, 303)
    ]
    for person in people:
        await exchange(bot, person, person.send_command("/start"))
    gone = people[2]
    # Gone without the bot knowing (a block it heard of is excluded up front; here no
    # my_chat_member came, e.g. a deleted account): the broadcast finds out (403).
    bot.sandbox.inject_fault("sendMessage", kind="403", chat_id=gone.id, times=10)
    await bot.sandbox.wait_idle(timeout=10)
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await staff.send_command("/broadcast", chat=STAFF_CHAT_ID)
    prompt = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: m.get("text", "").startswith("📣 New broadcast")
    )
    [call] = [
        c
        for c in bot.sandbox.calls_of("sendMessage")
        if c.params.get("chat_id") == STAFF_CHAT_ID
        and c.result
        and c.result["message_id"] == prompt["message_id"]
    ]
    assert call.params["reply_markup"] == {"force_reply": True, "selective": True}
    await staff.send_text(TEXT, chat=STAFF_CHAT_ID, reply_to=prompt["message_id"])
    ask = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: m.get("text") == "Who should receive it?"
    )
    await staff.press_data(ask["message_id"], _button(ask, "bc:aud:"), chat=STAFF_CHAT_ID)
    confirm = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "Recipients:" in m.get("text", "")
    )
    preview = [m for m in bot.sandbox.chat_messages(STAFF_CHAT_ID) if m.get("text") == TEXT]
    # The three people; the staff member never wrote to the bot privately, so has no chat.
    assert (confirm["text"].splitlines()[1:], len(preview)) == (["Recipients: 3 candidates."], 1)
    await staff.press_data(confirm["message_id"], _button(confirm, "bc:now:"), chat=STAFF_CHAT_ID)
    report = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: m.get("text", "").startswith("✅ 群发 #"), timeout=20
    )
    # The staff chat's progress message and report are in the site language (zh_Hans).
    assert report["text"].splitlines()[1:] == [
        "已送达 2/3。未送达：1（无法送达 1，失败 0，已取消 0）。",
        "未送达名单：",
        "• P303（Telegram 303）：无法送达",
    ]
    [(bid, status, recipients)] = await _broadcast_status(bot.database_url)
    progress = bot.sandbox.message(STAFF_CHAT_ID, confirm["message_id"])
    assert (status, recipients, progress["text"].splitlines()) == (
        "done",
        3,
        [
            f"📣 群发 #{bid}：✅ 已完成",
            "发送对象：全部考生",
            "已发送 2 · 失败 0 · 无法送达 1 · 剩余 0",
            "发送报告见下方。",
        ],
    )
    assert [_texts(p.messages()).count(TEXT) for p in people] == [1, 1, 0]
    csv_press = await staff.press_data(
        report["message_id"], _button(report, "bc:csv:"), chat=STAFF_CHAT_ID
    )
    await staff.wait_for_callback_answer(csv_press)
    sent = await bot.sandbox.wait_for_message(STAFF_CHAT_ID, lambda m: "document" in m)
    assert sent["document"]["file_name"].endswith("-not-reached.csv")


async def test_non_staff_cannot_start_confirm_or_cancel_a_broadcast(bot: Harness) -> None:
    intruder = bot.sandbox.user(777, first_name="Mallory", language_code="en")
    answer = await exchange(bot, intruder, intruder.send_command("/broadcast"))
    assert _texts(answer) == [
        "Sorry, I did not understand that. Please choose from the menu, or send /help."
    ]
    in_group = await exchange(
        bot, intruder, intruder.send_command("/broadcast", chat=STAFF_CHAT_ID)
    )
    assert in_group == [] and await _broadcast_status(bot.database_url) == []
    staff = bot.sandbox.user(STAFF_ID_2, first_name="Other", language_code="en")
    await exchange(bot, staff, staff.send_command("/broadcast"))
    ask = (await exchange(bot, staff, staff.send_text(TEXT)))[-1]
    confirm = (await exchange(bot, staff, staff.press(_button(ask, "bc:aud:"))))[-1]
    [(bid, status, _)] = await _broadcast_status(bot.database_url)
    for data in (f"bc:now:{bid}", f"bc:drop:{bid}", f"bc:aud:{bid}:state:paid"):
        forged = await intruder.press_data(confirm["message_id"], data, chat=STAFF_CHAT_ID)
        assert (await intruder.wait_for_callback_answer(forged)).get("text") == (
            "This button is no longer valid. Send /start for the menu."
        )
    assert (status, (await _broadcast_status(bot.database_url))[0][1]) == ("draft", "draft")
    await exchange(bot, staff, staff.press(f"bc:now:{bid}"))
    for data in (f"bc:stop!:{bid}", f"bc:pause:{bid}"):
        forged = await intruder.press_data(confirm["message_id"], data, chat=STAFF_CHAT_ID)
        assert (await intruder.wait_for_callback_answer(forged)).get("text") == (
            "This button is no longer valid. Send /start for the menu."
        )
    # As a candidate Mallory is in the audience: the broadcast reaches them,
    # untouched by the forgeries.
    await staff.wait_for_message(
        lambda m: m.get("text", "").startswith("✅ Broadcast #"), timeout=20
    )
    assert (
        (await _broadcast_status(bot.database_url))[0][1],
        _texts(intruder.messages()).count(TEXT),
    ) == ("done", 1)


async def test_broadcast_resumes_after_restart_without_resending(bot: Harness) -> None:
    ids = list(range(5001, 5091))
    users = [bot.sandbox.user(uid, first_name=f"U{uid}", language_code="en") for uid in ids]
    await _add_candidates(bot.database_url, ids)
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await exchange(bot, staff, staff.send_command("/broadcast"))
    ask = (await exchange(bot, staff, staff.send_text(TEXT)))[-1]
    await exchange(bot, staff, staff.press(_button(ask, "bc:aud:")))
    [(bid, _, _)] = await _broadcast_status(bot.database_url)
    # Not `exchange`: the confirmation wakes the sender, so the bot is busy sending until the
    # broadcast is done and never idle in between; the restart must come mid-broadcast.
    await staff.press(f"bc:now:{bid}")

    def delivered() -> int:
        return sum(_texts(u.messages()).count(TEXT) for u in users)

    async def some_delivered() -> None:
        # The sandbox has no event to await for "10 delivered": polling its log is the point.
        while delivered() < 10:  # noqa: ASYNC110 - nothing to await, see the line above
            await asyncio.sleep(0.02)

    await asyncio.wait_for(some_delivered(), 15)
    [(_, _, recipients)] = await _broadcast_status(bot.database_url)
    await bot.restart()
    at_restart = delivered()
    report = await staff.wait_for_message(
        lambda m: m.get("text", "").startswith("✅ Broadcast #"), timeout=30
    )
    counts = Counter(_texts(u.messages()).count(TEXT) for u in users)
    assert (recipients, at_restart < len(ids), counts) == (
        len(ids) + 1,
        True,
        Counter({1: len(ids)}),
    )
    assert report["text"].splitlines()[1] == (
        f"Reached {len(ids) + 1} of {len(ids) + 1}. Not reached: 0 (unreachable 0, failed 0, "
        "cancelled 0)."
    )
    assert (await _broadcast_status(bot.database_url))[0][1] == "done"


async def test_csv_attached_to_a_private_broadcast_is_the_announcement_not_a_bank_statement(
    bot: Harness,
) -> None:
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await exchange(bot, staff, staff.send_command("/broadcast"))
    replies = await exchange(
        bot,
        staff,
        staff.send_document(
            b"name,score\nLi,88\n", "results.csv", "text/csv", caption="Results are out"
        ),
    )
    assert [
        ("bc:aud:" in str(m.get("reply_markup")), "bank statement" in m.get("text", ""))
        for m in replies
    ][-1:] == [(True, False)]
