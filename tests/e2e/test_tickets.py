"""Admission tickets end to end: /ticket before the ticket date and after it (a PDF document
through the sandbox), the "ticket ready" notification and its button, staff /checkticket,
and the public check route."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import aiohttp
from pypdf import PdfReader
from sqlalchemy import select, update

from bot.devtools.sandbox import UploadedFile
from bot.i18n import I18n
from storage.db import Database
from storage.models import Registration, RegistrationState
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_ID, Harness, exchange
from tests.e2e.test_registration import ID_NUMBER, Person, become_eligible_for_junior, fill_form

TICKETS_FROM = datetime(
    2027, 1, 2, 1, 0, tzinfo=UTC
)  # session 2027-01: E−7 at 09:00 Asia/Shanghai
ZH = I18n("zh_Hans").translator("zh_Hans")


async def _paid_registration(bot: Harness, user_id: int) -> tuple[Person, int]:
    """A candidate registered for 2027-01 through the bot, then marked PAID in the database
    (the payments flow's job; this test does not depend on it)."""
    p = Person(bot, user_id, "zh-hans", "张三")
    await become_eligible_for_junior(p)
    await fill_form(p, name="张三", id_number=ID_NUMBER, email="zhang@example.com")
    await p.press("reg:submit")
    database = Database(bot.database_url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            registration_id = await uow.session.scalar(select(Registration.id))
            await uow.session.execute(
                update(Registration)
                .where(Registration.id == registration_id)
                .values(state=RegistrationState.PAID)
            )
            await uow.commit()
    finally:
        await database.dispose()
    return p, int(registration_id)


def _last_pdf(bot: Harness) -> bytes:
    upload = bot.sandbox.calls_of("sendDocument")[-1].params["document"]
    assert isinstance(upload, UploadedFile)
    return upload.data


async def test_ticket_before_ticket_date_says_when_it_is_available(bot: Harness) -> None:
    p, _ = await _paid_registration(bot, 601)

    replies = await p.command("/ticket")

    when = ZH.datetime(TICKETS_FROM, "Asia/Shanghai", "short")
    assert (replies, bot.sandbox.calls_of("sendDocument")) == (
        [f"准考证将于 {when} 起开放领取，届时我会通知您。"],
        [],
    )


async def test_ticket_unpaid_registration_says_payment_comes_first(bot: Harness) -> None:
    p = Person(bot, 602, "en", "Ann")
    bot.clock.now = TICKETS_FROM

    replies = await p.command("/ticket")

    assert replies == ["You have no registration with an admission ticket. See /status."]


async def test_ticket_paid_registration_on_ticket_date_sends_the_pdf(bot: Harness) -> None:
    p, _ = await _paid_registration(bot, 603)
    bot.clock.now = TICKETS_FROM

    [message] = await exchange(bot, p.user, p.user.send_command("/ticket"))

    pdf = _last_pdf(bot)
    reader = PdfReader(io.BytesIO(pdf))
    text = reader.pages[0].extract_text()
    [reference] = re.findall(r"tk:[\w-]+\.[\w-]+", text)
    check = await bot.runtime.services.tickets.verify(reference)
    tampered = await bot.runtime.services.tickets.verify(reference.replace("J-0001", "J-0002"))
    actual = (
        pdf[:5],
        len(reader.pages),
        "张三" in text,
        "1101**********002X" in text,
        message["document"]["file_name"],
        message["caption"].startswith("🎫 这是您"),
        (check.valid, check.ticket_number, check.telegram_id),
        tampered.valid,
        [c.params["file_id"] for c in bot.sandbox.calls_of("getFile")]
        != [],  # the photo was fetched
    )
    expected = (
        b"%PDF-",
        1,
        True,
        True,
        "admission-ticket-2027-01-J-0001.pdf",
        True,
        (True, "2027-01-J-0001", 603),
        False,
        True,
    )
    assert actual == expected


async def test_ticket_ready_notification_button_sends_the_pdf(bot: Harness) -> None:
    p, registration_id = await _paid_registration(bot, 604)
    bot.clock.now = TICKETS_FROM

    assert await bot.runtime.services.tickets.issue_due_tickets() == 1
    bot.runtime.outbox_sender.wake()
    ready = await p.user.wait_for_message(
        lambda m: "准考证已可领取" in m.get("text", ""), timeout=10
    )
    before = len(bot.sandbox.calls_of("sendDocument"))
    await exchange(bot, p.user, p.user.press(f"tk:get:{registration_id}"))

    actual = (
        [
            b[1]
            for row in ready["reply_markup"]["inline_keyboard"]
            for b in [(x["text"], x["callback_data"]) for x in row]
        ],
        len(bot.sandbox.calls_of("sendDocument")) - before,
        _last_pdf(bot)[:5],
    )
    assert actual == ([f"tk:get:{registration_id}"], 1, b"%PDF-")


async def test_checkticket_by_staff_says_valid_and_tampered_says_invalid(bot: Harness) -> None:
    p, _ = await _paid_registration(bot, 605)
    bot.clock.now = TICKETS_FROM
    await p.command("/ticket")
    [reference] = re.findall(
        r"tk:[\w-]+\.[\w-]+", PdfReader(io.BytesIO(_last_pdf(bot))).pages[0].extract_text()
    )
    staff = Person(bot, STAFF_ID, "en", "Staff")

    genuine = await staff.say(f"/checkticket {reference}")
    forged = await staff.say(f"/checkticket {reference[:-2]}xx")
    by_candidate = await p.say(f"/checkticket {reference}")

    assert genuine[0].startswith(
        "✅ Valid admission ticket.\nTicket 2027-01-J-0001: 张三, ID 1101**********002X"
    )
    assert forged == [
        "❌ Not a valid admission ticket: the reference is unknown or has been altered."
    ]
    # The −7 d exam reminder falls due at the ticket date too and may arrive meanwhile.
    assert [t for t in by_candidate if not t.startswith("📝")] == [
        ZH.gettext("Sorry, I did not understand that. Please choose from the menu, or send /help.")
    ]


async def test_verify_route_answers_masked_json_and_404_for_tampered(bot: Harness) -> None:
    p, _ = await _paid_registration(bot, 606)
    bot.clock.now = TICKETS_FROM
    await p.command("/ticket")
    [reference] = re.findall(
        r"tk:[\w-]+\.[\w-]+", PdfReader(io.BytesIO(_last_pdf(bot))).pages[0].extract_text()
    )

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{bot.web_url}/tickets/verify", params={"ref": reference}) as ok:
            genuine = (ok.status, await ok.json())
        async with http.get(
            f"{bot.web_url}/tickets/verify", params={"ref": reference.replace("0001", "0009")}
        ) as bad:
            tampered = (bad.status, await bad.json())

    assert genuine == (
        200,
        {
            "valid": True,
            "ticket_number": "2027-01-J-0001",
            "name_masked": "张*",
            "session": "2027-01",
            "level": "junior",
        },
    )
    assert tampered == (404, {"valid": False})
