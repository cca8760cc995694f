"""Manual review and the waitlist end to end: staff cards, first decision wins, outbox notices."""

from __future__ import annotations

from sqlalchemy import update

from storage.db import Database
from storage.models import ExamSession
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, STAFF_ID_2, Harness
from tests.e2e.test_registration import (
    ID_NUMBER,
    ID_NUMBER_2,
    Person,
    become_eligible_for_junior,
    check_with_an_unlisted_major,
    fill_form,
)


async def test_manual_review_goes_to_staff_and_first_decision_wins(bot: Harness) -> None:
    p = Person(bot, 501, "en", "Ann")
    verdict = await check_with_an_unlisted_major(p)
    assert verdict[-1].startswith("🟡 The automatic check cannot confirm Junior")
    assert (await p.press("elig:review:junior")) == [
        "Your request was sent to the exam centre staff. I will tell you their decision here."
    ]
    card = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "资格审核 #" in m.get("text", ""), timeout=15
    )
    assert "Underwater Basket Weaving" in card["text"] and ID_NUMBER not in card["text"]
    intruder = bot.sandbox.user(777, first_name="Mallory", language_code="en")
    staff, staff_2 = (
        bot.sandbox.user(STAFF_ID, first_name="Staff"),
        bot.sandbox.user(STAFF_ID_2, first_name="Other"),
    )
    review_id = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"].split(":")[2]
    forged = await intruder.press_data(
        card["message_id"], f"elig:ok:{review_id}", chat=STAFF_CHAT_ID
    )
    assert (await intruder.wait_for_callback_answer(forged)).get(
        "text"
    ) == "This button is no longer valid. Send /start for the menu."
    await staff.press_data(card["message_id"], f"elig:ok:{review_id}", chat=STAFF_CHAT_ID)
    await bot.sandbox.wait_idle(timeout=10)
    late = await staff_2.press_data(
        card["message_id"], f"elig:no:{review_id}:other", chat=STAFF_CHAT_ID
    )
    late_answer = await staff_2.wait_for_callback_answer(late)
    decided = bot.sandbox.message(STAFF_CHAT_ID, card["message_id"])
    assert decided["text"].endswith("✅ 已通过（处理人：Staff）")
    assert late_answer.get("text") == f"已由用户 {STAFF_ID} 处理（工作人员已批准）。"
    told = await p.user.wait_for_message(
        lambda m: m.get("text", "").startswith("✅ The exam centre approved"), timeout=15
    )
    assert told["text"].endswith("send /register.")
    assert (await p.command("/register")) == ["Which level do you want to register for?"]


async def _fill_session(url: str, code: str, *, free: int) -> None:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            await uow.session.execute(
                update(ExamSession)
                .where(ExamSession.code == code)
                .values(seats_taken=ExamSession.capacity - free)
            )
            await uow.commit()
    finally:
        await database.dispose()


async def test_full_session_waitlist_offer_and_accept(bot: Harness) -> None:
    await _fill_session(bot.database_url, "2027-01", free=1)
    first, second = Person(bot, 601, "en"), Person(bot, 602, "zh-hans", "李")
    await become_eligible_for_junior(first)
    await fill_form(first, name="First Person", id_number=ID_NUMBER_2, email="f@example.com")
    assert (await first.press("reg:submit"))[0].startswith("✅ Registered")
    await become_eligible_for_junior(second)
    await fill_form(second, name="李四", id_number=ID_NUMBER, email="l@example.com")
    full = await second.press("reg:submit")
    assert full[-1].startswith("该场次已满。您可以加入候补（前面有 0 人等候）")
    joined = await second.press("reg:waitlist")
    assert joined[-1].startswith("⏳ 您是 2027-01 场次（初级）候补第 1 位")
    await first.command("/status")
    await first.press("✖️ Cancel")
    await first.press("Yes, cancel it")
    offer = await second.user.wait_for_message(
        lambda m: m.get("text", "").startswith("🎉"), timeout=15
    )
    assert "2027-01" in offer["text"] and (
        "✅ 接受名额",
        "reg:offer:accept:"
        f"{offer['reply_markup']['inline_keyboard'][0][0]['callback_data'].rsplit(':', 1)[1]}",
    ) in second.user.inline_buttons(offer)
    accepted = await second.press("✅ 接受名额")
    assert (
        accepted[0].startswith("✅ 已报名初级") and "请在转账附言中填写报名编号" in accepted[-1]
    )  # then how to pay
