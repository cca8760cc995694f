"""Finding a candidate end to end (issue 14 point 2; docs/staff.md "Find a candidate"):
`/find` → the list → the card in English (an admin, both databases) and in Chinese (a
check-in member, whose card has no cancel or full-ID button); the admin's full ID number
as an alert, audited; a forged full-ID press by a member without the admin role; too short
and unknown queries; a candidate's /find and forged card press show nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from bot.crypto import Vault
from bot.domain.roles import Role
from bot.i18n import I18n
from bot.services.notify import audit
from handlers.staff_roles import not_allowed_text
from storage.db import Database
from storage.models import AdmissionTicket, AuditEntry, Candidate, Payment
from storage.uow import UnitOfWork
from tests.e2e.conftest import SECRET_KEY, STAFF_ID, Harness, exchange
from tests.e2e.test_reminders import paid_registration

ZH = I18n("zh_Hans").translator("zh_Hans")
ID_NUMBER = "11010519491231002X"
CHECKIN = 7204
PAID_AT = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


async def _desk(bot: Harness) -> dict[str, int]:
    """张伟明 (611, paid, ticket, Stars payment, one audit entry) and 李伟明 (612, known to
    the bot, no registration)."""
    for telegram_id, name in ((611, "Wei"), (612, "Li")):
        user = bot.sandbox.user(telegram_id, first_name=name, language_code="zh-hans")
        await exchange(bot, user, user.send_command("/start"))
    registration_id = await paid_registration(bot.database_url, 611)
    database = Database(bot.database_url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            await uow.session.execute(
                update(Candidate)
                .where(Candidate.telegram_id == 611)
                .values(
                    full_name="张伟明",
                    id_doc_type="resident_id",
                    id_number_encrypted=Vault(SECRET_KEY).encrypt(ID_NUMBER),
                    id_number_masked="1101**********002X",
                    phone="+8613812345678",
                    email="wei@example.com",
                )
            )
            await uow.session.execute(
                update(Candidate).where(Candidate.telegram_id == 612).values(full_name="李伟明")
            )
            session_id = (await uow.exam_sessions.get_by_code("2027-01")).id
            uow.session.add(
                AdmissionTicket(
                    registration_id=registration_id,
                    session_id=session_id,
                    ticket_number="2027-01-J-0001",
                    seat=1,
                )
            )
            uow.session.add(
                Payment(
                    registration_id=registration_id,
                    method="stars",
                    external_id="charge-611",
                    amount_minor=100,
                    currency="XTR",
                    status="paid",
                    created_at=PAID_AT,
                )
            )
            audit(
                uow,
                "system",
                "registration",
                registration_id,
                "paid",
                PAID_AT,
                from_state="awaiting_payment",
                to_state="paid",
            )
            candidate_id = await uow.session.scalar(
                select(Candidate.id).where(Candidate.telegram_id == 611)
            )
            await uow.commit()
    finally:
        await database.dispose()
    return {"candidate": int(candidate_id), "registration": registration_id}


async def _revealed(bot: Harness) -> list[tuple[str, str]]:
    database = Database(bot.database_url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.execute(
                select(AuditEntry.actor, AuditEntry.entity_id).where(
                    AuditEntry.action == "id_revealed"
                )
            )
            return [(r[0], r[1]) for r in rows]
    finally:
        await database.dispose()


async def test_find_list_card_and_full_id_in_english(any_bot: Harness) -> None:
    bot = any_bot
    ids = await _desk(bot)
    staff = bot.sandbox.user(STAFF_ID, first_name="Admin", language_code="en")

    listed = await exchange(bot, staff, staff.send_command("/find", "伟明"))
    lines = listed[0]["text"].splitlines()
    assert lines[0] == "2 candidates found for “伟明”:"
    assert sorted(lines[1:]) == [
        "1. 张伟明, ID 1101**********002X, phone +8613812345678",
        "2. 李伟明, ID -, phone -",
    ] or sorted(lines[1:]) == [
        "1. 李伟明, ID -, phone -",
        "2. 张伟明, ID 1101**********002X, phone +8613812345678",
    ]
    buttons = staff.inline_buttons()
    assert sorted(text.split(". ")[1] for text, _ in buttons) == ["张伟明", "李伟明"]
    zhang = next(text for text, _ in buttons if text.endswith("张伟明"))
    assert dict(buttons)[zhang] == f"desk:card:{ids['candidate']}"

    card = await exchange(bot, staff, staff.press(zhang))
    assert card[0]["text"].splitlines() == [
        "👤 张伟明",
        "Telegram: Wei, id 611",
        "ID: PRC resident ID card, 1101**********002X",
        "Phone: +8613812345678, e-mail: wei@example.com",
        "Language: 中文. Reachable in the bot.",
        "",
        "📝 Registrations:",
        "• ED611: Junior (初级), session 2027-01 (exam Sat 9 Jan 2027): paid",
        "   Ticket 2027-01-J-0001, seat 1",
        "",
        "💳 Payments:",
        "• #1 ED611: Telegram Stars, 100 Stars, paid",
        "",
        "🕘 Recent history:",
        "Fri 20 Nov 2026, 10:00 (China time), the bot: paid (awaiting payment → paid)",
    ]
    assert ID_NUMBER not in card[0]["text"]
    assert staff.inline_buttons() == [
        ("❌ Cancel ED611", f"desk:cancel:{ids['registration']}"),
        ("💬 Message the candidate", f"desk:msg:{ids['candidate']}"),
        ("🔓 Show the full ID number", f"desk:fullid:{ids['candidate']}"),
    ]

    pressed = await staff.press("🔓 Show the full ID number")
    answer = await staff.wait_for_callback_answer(pressed)
    assert (answer["text"], answer["show_alert"]) == (
        f"Full ID number: {ID_NUMBER}\nThis view is recorded.",
        True,
    )
    assert await _revealed(bot) == [(f"tg:{STAFF_ID}", str(ids["candidate"]))]
    assert all(ID_NUMBER not in m.get("text", "") for m in staff.messages())


async def test_find_in_chinese_for_a_checkin_member(bot: Harness) -> None:
    ids = await _desk(bot)
    admin = bot.sandbox.user(STAFF_ID, first_name="Admin", language_code="en")
    await exchange(bot, admin, admin.send_command("/staff", f"grant {CHECKIN} {Role.CHECKIN}"))
    member = bot.sandbox.user(CHECKIN, first_name="Door", language_code="zh-hans")

    replies = await exchange(bot, member, member.send_command("/find", "ed611"))
    card = [m for m in replies if m["text"].startswith("👤")]
    assert card[-1]["text"].splitlines()[:8] == [
        "👤 张伟明",
        "Telegram：Wei，ID 611",
        "证件：居民身份证，1101**********002X",
        "手机：+8613812345678，电子邮箱：wei@example.com",
        "语言：中文。可通过机器人联系。",
        "",
        "📝 报名：",
        "• ED611：初级，考期 2027-01（考试日期 2027年1月9日（周六））：已缴费",
    ]
    # No cancel (finance) and no full ID (admin) for check-in.
    assert member.inline_buttons() == [("💬 给考生发消息", f"desk:msg:{ids['candidate']}")]
    forged = await member.press_data(card[-1]["message_id"], f"desk:fullid:{ids['candidate']}")
    answer = await member.wait_for_callback_answer(forged)
    assert answer["text"] == not_allowed_text(ZH, (Role.ADMIN,))
    assert await _revealed(bot) == []

    short = await exchange(bot, member, member.send_command("/find", "张"))
    assert [m["text"] for m in short] == [
        "内容太短，无法查找：请输入姓名中至少 2 个字，或手机号码中至少 4 位数字。"
    ]
    none = await exchange(bot, member, member.send_command("/find", "李雷"))
    assert none[-1]["text"].startswith("没有找到与“李雷”相符的考生。")
    usage = await exchange(bot, member, member.send_command("/find"))
    assert usage[-1]["text"].startswith("用法：/find <")


async def test_a_candidate_cannot_find_or_open_a_card(bot: Harness) -> None:
    ids = await _desk(bot)
    wei = bot.sandbox.user(611, first_name="Wei", language_code="zh-hans")
    got = await exchange(bot, wei, wei.send_command("/find", "李伟明"))
    assert all("李伟明" not in m.get("text", "") for m in got)
    message_id = got[-1]["message_id"]
    for data in (f"desk:card:{ids['candidate']}", f"desk:fullid:{ids['candidate']}"):
        pressed = await wei.press_data(message_id, data)
        answer = await wei.wait_for_callback_answer(pressed)
        assert "1101" not in (answer.get("text") or "")
    assert all("1101" not in m.get("text", "") for m in wei.messages())
    assert await _revealed(bot) == []
