"""Contact and place end to end: /help ends with the exam centre's contact and the exam site
in both languages, and a "📍 Show on the map" button that sends the venue; the exam reminder
and the ticket-ready notice are each followed by one venue pin (its own outbox row, so a
failed pin send repeats neither the reminder nor the pin); the ticket PDF has the address.

Session 2027-01 of the shipped catalogue: exam 2027-01-09 09:00 Asia/Shanghai = 01:00 UTC;
the −1 d exam reminder at 2027-01-08 01:00 UTC; tickets from 2027-01-02 01:00 UTC.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter

from pypdf import PdfReader
from sqlalchemy import select

from storage.db import Database
from storage.models import OutboxMessage
from storage.uow import UnitOfWork
from tests.e2e.conftest import Harness, exchange
from tests.e2e.test_reminders import paid_registration, run_job, utc
from tests.e2e.test_tickets import TICKETS_FROM, _last_pdf, _paid_registration

SITE_ZH = "哈尔滨理工大学 荣成校区"
SITE_EN = "Harbin University of Science and Technology (HUST), Rongcheng campus"
ADDRESS_ZH = "山东省威海市荣成市学府路2006号 哈尔滨理工大学荣成校区"
ADDRESS_EN = "2006 Xuefu Road, Rongcheng, Weihai, Shandong, China — HUST Rongcheng campus"
POINT = {"latitude": 37.165, "longitude": 122.425}


def _venue(title: str, address: str) -> dict:
    return {"location": POINT, "title": title, "address": address}


async def _outbox_keys(url: str, like: str) -> dict[str, str]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.execute(
                select(OutboxMessage.idempotency_key, OutboxMessage.status).where(
                    OutboxMessage.idempotency_key.like(like)
                )
            )
            return {str(key): str(status) for key, status in rows.all()}
    finally:
        await database.dispose()


async def _until_retry(url: str, like: str, timeout: float = 10.0) -> None:
    """Wait until the row's failed send is recorded (pending again, with the error)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    database = Database(url)
    try:
        while loop.time() < deadline:
            async with UnitOfWork(database.sessions) as uow:
                error = await uow.session.scalar(
                    select(OutboxMessage.last_error).where(
                        OutboxMessage.idempotency_key.like(like),
                        OutboxMessage.status == "pending",
                    )
                )
            if error is not None:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"no failed try recorded for {like}")
    finally:
        await database.dispose()


async def test_help_shows_contact_and_site_in_both_languages_and_the_map_button_sends_the_venue(
    any_bot: Harness,
) -> None:
    bot = any_bot
    ann = bot.sandbox.user(631, first_name="Ann", language_code="en")
    li = bot.sandbox.user(632, first_name="李", language_code="zh-hans")

    en_help = await exchange(bot, ann, ann.send_command("/help"))
    zh_help = await exchange(bot, li, li.send_command("/help"))

    assert (len(en_help), len(zh_help)) == (1, 1)  # one /help message, the place at its end
    assert en_help[0]["text"].split("\n\n")[-1].splitlines() == [
        "📞 How to reach the exam centre",
        "Phone: +86 631 0000 0000",
        "E-mail: exam-centre@example.edu.cn",
        "Office hours: Monday to Friday, 8:30–11:30 and 13:30–17:00 China time "
        "(except public holidays)",
        f"📍 Exam site: {SITE_EN}",
        f"Address: {ADDRESS_EN}",
        "⚠️ These contact details are not final yet.",
    ]
    assert zh_help[0]["text"].split("\n\n")[-1].splitlines() == [
        "📞 考试中心联系方式",
        "电话：+86 631 0000 0000",
        "电子邮箱：exam-centre@example.edu.cn",
        "办公时间：周一至周五 8:30–11:30、13:30–17:00（北京时间，法定节假日除外）",
        f"📍 考点：{SITE_ZH}",
        f"地址：{ADDRESS_ZH}",
        "⚠️ 以上联系方式尚未最终确定，请以考试中心的正式通知为准。",
    ]
    assert (ann.inline_buttons(en_help[0])[-1], li.inline_buttons(zh_help[0])[-1]) == (
        ("📍 Show on the map", "place:map"),  # under the main menu
        ("📍 在地图上查看", "place:map"),
    )

    en_map = await exchange(bot, ann, ann.press("📍 Show on the map"))
    zh_map = await exchange(bot, li, li.press("📍 在地图上查看"))

    assert ([m.get("venue") for m in en_map], [m.get("venue") for m in zh_map]) == (
        [_venue(SITE_EN, ADDRESS_EN)],
        [_venue(SITE_ZH, ADDRESS_ZH)],
    )


async def test_exam_reminder_is_followed_by_one_venue_pin_even_when_the_pin_send_fails_once(
    bot: Harness,
) -> None:
    li = bot.sandbox.user(633, first_name="李", language_code="zh-hans")
    await exchange(bot, li, li.send_command("/start"))
    registration = await paid_registration(bot.database_url, 633)
    bot.clock.now = utc("2027-01-02T01:05:00")  # the ticket date and the −7 d reminder
    await run_job(bot, "issue_due_tickets")
    await run_job(bot, "plan_reminders")
    await li.wait_for_message(lambda m: "venue" in m, timeout=10, after=0)  # the ticket's pin
    await li.wait_for_message(lambda m: m.get("text", "").startswith("📝"), timeout=10, after=0)

    bot.sandbox.inject_fault("sendVenue", times=1, kind="500")  # the pin's first try fails
    bot.clock.now = utc("2027-01-08T01:05:00")  # just after the −1 d reminder
    mark = bot.sandbox.mark()
    await run_job(bot, "plan_reminders")
    await _until_retry(bot.database_url, "reminder:%exam_venue:-1d%")  # its first try failed
    bot.clock.now = utc("2027-01-08T01:10:00")  # past the retry's back-off (the clock is fixed)
    bot.runtime.outbox_sender.wake()
    pin = await li.wait_for_message(lambda m: "venue" in m, timeout=10, after=mark)
    await run_job(bot, "plan_reminders")  # a second tick plans nothing more
    await bot.restart()  # nor does a restart
    await run_job(bot, "plan_reminders")
    await bot.sandbox.wait_idle(timeout=10, quiet=0.3)

    texts = [m.get("text", "")[:1] or "pin" for m in li.messages()]
    sends = Counter(
        (c.method, c.fault is not None)
        for c in bot.sandbox.calls
        if c.params.get("chat_id") == 633 and c.method == "sendVenue"
    )
    # The ticket notice and the −7 d reminder are queued at the same moment, so their
    # order is the sender's; the ticket's pin follows the ticket; −7 d has no pin; −1 d
    # is followed by exactly one.
    first = texts[1:4]
    assert (texts[0], sorted(first), first.index("pin") > first.index("🎫"), texts[4:]) == (
        "李",
        sorted(["🎫", "pin", "📝"]),
        True,
        ["📝", "pin"],
    )
    assert (pin["message_id"], pin["venue"]) == (
        li.messages()[-2]["message_id"] + 1,
        _venue(SITE_ZH, ADDRESS_ZH),
    )  # right after its reminder, in the candidate's language
    assert sends == {("sendVenue", True): 1, ("sendVenue", False): 2}  # ticket pin, −1 d pin
    assert await _outbox_keys(bot.database_url, "reminder:%exam_venue%") == {
        f"reminder:{registration}:2027-01:exam_venue:-1d:20270108T0100Z": "sent",
        f"reminder:{registration}:2027-01:exam_venue:-2h:20270108T2300Z": "pending",
    }


async def test_ticket_ready_notice_is_followed_by_the_venue_and_the_pdf_has_the_address(
    bot: Harness,
) -> None:
    p, registration_id = await _paid_registration(bot, 634)  # a zh-hans candidate
    bot.clock.now = TICKETS_FROM

    assert await bot.runtime.services.tickets.issue_due_tickets() == 1
    bot.runtime.outbox_sender.wake()
    ready = await p.user.wait_for_message(
        lambda m: "准考证已可领取" in m.get("text", ""), timeout=10
    )
    pin = await p.user.wait_for_message(lambda m: "venue" in m, timeout=10, after=0)
    await exchange(bot, p.user, p.user.send_command("/ticket"))
    text = PdfReader(io.BytesIO(_last_pdf(bot))).pages[0].extract_text()
    flat = "".join(text.split())  # the PDF wraps long lines

    assert (pin["message_id"], pin["venue"]) == (
        ready["message_id"] + 1,
        _venue(SITE_ZH, ADDRESS_ZH),
    )
    assert await _outbox_keys(bot.database_url, "ticket:%") == {
        f"ticket:{registration_id}": "sent",
        f"ticket:{registration_id}:venue": "sent",
    }
    assert (
        "".join(ADDRESS_ZH.split()) in flat,
        "".join(ADDRESS_EN.split()) in flat,
    ) == (True, True)
