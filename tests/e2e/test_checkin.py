"""Check-in at the door end to end, in English and Chinese: the ticket's QR link opened by
a check-in staff member (the card with the photo and "✅ Present"), the press, a second scan
(deep link and typed), a tampered code, a ticket of another session, a cancelled
registration, staff without the role, a candidate opening the link, `/checkin_status`.

Session 2027-01 of the shipped catalogue: exam 2027-01-09 (Asia/Shanghai), theory 09:00 in
Computer room A301, practical 13:30 in Smart manufacturing lab B105.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update

from bot.domain.lifecycle import RegistrationState
from bot.domain.roles import Role
from handlers.staff_roles import refresh_staff
from storage.db import Database
from storage.models import Attendance, Registration
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_ID, Harness, exchange
from tests.e2e.test_registration import ID_NUMBER, Person, become_eligible_for_junior, fill_form
from tests.e2e.test_reminders import paid_registration

TICKETS_FROM = datetime(2027, 1, 2, 1, 0, tzinfo=UTC)
AT_THE_DOOR = datetime(2027, 1, 9, 0, 30, tzinfo=UTC)  # 08:30 China time
CHECKER = 7001  # a check-in member (English)
RESULTS_ONLY = 7002  # staff without the check-in role


async def _candidate(bot: Harness, user_id: int) -> tuple[Person, str]:
    """张三 registered for 2027-01 through the bot (with a photo), marked PAID; the code of
    the QR link on their ticket."""
    p = Person(bot, user_id, "zh-hans", "张三")
    await become_eligible_for_junior(p)
    await fill_form(p, name="张三", id_number=ID_NUMBER, email="zhang@example.com")
    await p.press("reg:submit")
    await _set_state(bot, RegistrationState.PAID)
    bot.clock.now = TICKETS_FROM
    assert bot.runtime is not None
    ticket = await bot.runtime.services.tickets.ticket(user_id)
    [code] = parse_qs(urlsplit(ticket.qr_payload).query)["start"]
    assert ticket.qr_payload.startswith("https://t.me/")
    return p, code


async def _set_state(
    bot: Harness, state: RegistrationState, telegram_id: int | None = None
) -> None:
    database = Database(bot.database_url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            stmt = update(Registration).values(state=state)
            if telegram_id is not None:
                stmt = stmt.where(Registration.reference == f"ED{telegram_id}")
            await uow.session.execute(stmt)
            await uow.commit()
    finally:
        await database.dispose()


async def _attendance(bot: Harness) -> list[tuple[int, int]]:
    database = Database(bot.database_url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.execute(
                select(Attendance.registration_id, Attendance.checked_in_by)
            )
            return [(r[0], r[1]) for r in rows]
    finally:
        await database.dispose()


async def _staff(bot: Harness) -> None:
    """CHECKER holds the check-in role, RESULTS_ONLY the results role (granted by an admin)."""
    assert bot.runtime is not None
    services = bot.runtime.services
    await services.staff.grant(STAFF_ID, CHECKER, Role.CHECKIN, "Wang Fang")
    await services.staff.grant(STAFF_ID, RESULTS_ONLY, Role.RESULTS, "Li Lei")
    await refresh_staff(bot.runtime.application)


def _text(message: dict) -> str:
    return message.get("caption") or message.get("text", "")


async def test_checkin_scan_present_and_second_scan_in_english(any_bot: Harness) -> None:
    bot = any_bot
    _, code = await _candidate(bot, 601)
    await _staff(bot)
    checker = bot.sandbox.user(CHECKER, first_name="Wang", language_code="en")
    await exchange(bot, checker, checker.send_command("/start"))
    bot.clock.now = AT_THE_DOOR

    [card] = await exchange(bot, checker, checker.send_command("/start", payload=code))

    assert "photo" in card  # the registration photo, to compare with the face
    assert _text(card).splitlines() == [
        "🎫 Ticket 2027-01-J-0001, seat 001",
        "张三, ID 1101**********002X",
        "Session 2027-01 (Sat 9 Jan 2027), Junior (初级)",
        "• Theory: 09:00, Computer room A301",
        "• Practical skills: 13:30, Smart manufacturing lab B105",
        "✅ Valid for today. Compare the photo and the ID card, then press Present.",
    ]
    assert checker.inline_buttons() == [("✅ Present", "ci:ok:1")]

    pressed = await exchange(bot, checker, checker.press("✅ Present"))
    again = await exchange(bot, checker, checker.send_command("/start", payload=code))
    typed = await exchange(bot, checker, checker.send_command("/checkin", "2027-01-J-0001"))

    assert [_text(m) for m in pressed] == [
        "✅ Present: 张三 (2027-01-J-0001) at 08:30.\nSession 2027-01: 1 of 1 checked in."
    ]
    assert _text(again[-1]).splitlines()[-1] == "ℹ️ Already checked in at 08:30 by Wang Fang."
    assert _text(typed[-1]).splitlines()[-1] == "ℹ️ Already checked in at 08:30 by Wang Fang."
    assert checker.inline_buttons(typed[-1]) == []  # no second "Present"
    assert await _attendance(bot) == [(1, CHECKER)]

    status = await exchange(bot, checker, checker.send_command("/checkin_status", "2027-01"))
    assert [m["text"] for m in status] == [
        "🚪 Check-in, session 2027-01 (Sat 9 Jan 2027): 1 of 1 present.\n"
        "• Computer room A301: 1 of 1\n"
        "• Smart manufacturing lab B105: 1 of 1"
    ]


async def test_checkin_refusals_in_chinese(bot: Harness) -> None:
    p, code = await _candidate(bot, 602)
    await _staff(bot)
    # A second candidate, paid for 2027-03, with a ticket for that session.
    other = bot.sandbox.user(603, first_name="Ann", language_code="en")
    await exchange(bot, other, other.send_command("/start"))
    await paid_registration(bot.database_url, 603, session="2027-03")
    bot.clock.now = datetime(2027, 3, 6, 1, 0, tzinfo=UTC)
    assert bot.runtime is not None
    later = await bot.runtime.services.tickets.ticket(603)
    [later_code] = parse_qs(urlsplit(later.qr_payload).query)["start"]
    admin = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="zh-hans")
    bot.clock.now = AT_THE_DOOR

    wrong = await exchange(bot, admin, admin.send_command("/start", payload=later_code))
    tampered = await exchange(
        bot, admin, admin.send_command("/checkin", code.replace("0001", "0002"))
    )
    lacking = bot.sandbox.user(RESULTS_ONLY, first_name="Li", language_code="zh-hans")
    refused = await exchange(bot, lacking, lacking.send_command("/start", payload=code))
    refused_typed = await exchange(
        bot, lacking, lacking.send_command("/checkin", "2027-01-J-0001")
    )
    public = await exchange(bot, p.user, p.user.send_command("/start", payload=code))
    # A forged "Present" from the candidate is not staff's: nothing is recorded.
    await exchange(bot, p.user, p.user.press_data(public[-1]["message_id"], "ci:ok:1"))
    await _set_state(bot, RegistrationState.CANCELLED)
    cancelled = await exchange(bot, admin, admin.send_command("/start", payload=code))

    assert _text(wrong[-1]).splitlines()[-1] == (
        "⛔ 场次不符：此准考证属于2027年3月13日（周六）的 2027-03 场次；"
        "今天的场次是 2027-01。请勿放行。"
    )
    assert admin.inline_buttons(wrong[-1]) == []
    assert [m["text"] for m in tampered] == [
        "❌ 不是有效的准考证：编码未知或已被篡改。请勿放行；请查验身份证件并通过其他方式查找考生。"
    ]
    # The refusal's wording is the roles' (handlers/staff_roles.py); it names the role.
    assert [("检录（考试当天入场）" in m["text"], "/staff" in m["text"]) for m in refused] == [
        (True, True)
    ]
    assert [m["text"] for m in refused_typed] == [m["text"] for m in refused]
    assert [m["text"] for m in public] == [
        "✅ 有效准考证 2027-01-J-0001：张*，2027-01 场次（2027年1月9日（周六）），初级。"
    ]
    assert [m["text"] for m in cancelled] == [
        "❌ 准考证 2027-01-J-0001 已不能入场：报名状态为已取消。\n张三，证件号 1101**********002X"
    ]
    assert await _attendance(bot) == []
