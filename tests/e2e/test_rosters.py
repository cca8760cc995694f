"""Rosters and exports end to end, in English and Chinese: /roster answers with an XLSX and
a CSV document (read back cell by cell, a formula in a name kept as text), full ID numbers
for an admin in a private chat only (audited), /signin with a PDF per room carrying names,
ticket numbers and the registration photo, /export for finance, and the role refusals."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from bot.devtools.sandbox import UploadedFile
from bot.domain.lifecycle import RegistrationState
from bot.domain.roles import Role
from bot.i18n import I18n
from handlers.staff_roles import not_allowed_text, refresh_staff
from storage.db import Database
from storage.models import AuditEntry, ExamSession, Payment
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, Harness, exchange
from tests.e2e.test_registration import TICKETS_FROM
from tests.factories import make_registration

CHECKIN_ID, FINANCE_ID = 93001, 93002
INJECTION = '=HYPERLINK("http://evil.example/","click")'
EN = I18n("zh_Hans").translator("en")
ZH = I18n("zh_Hans").translator("zh_Hans")


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (413, 579), (200, 210, 230)).save(buffer, format="JPEG")
    return buffer.getvalue()


async def _seed(bot: Harness) -> None:
    """Session 2027-01: 张小三 (with a photo the sandbox serves) and INJECTION paid, tickets
    issued; staff members with the checkin and finance roles."""
    assert bot.runtime is not None
    photo = bot.sandbox.store_photo(_jpeg(), 413, 579)[-1]["file_id"]
    database = Database(bot.database_url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            session_id = await uow.session.scalar(
                select(ExamSession.id).where(ExamSession.code == "2027-01")
            )
        registrations = []
        for telegram_id, name, file_id in ((94001, "张小三", photo), (94002, INJECTION, None)):
            registration = await make_registration(
                database,
                telegram_id,
                session_id,
                state=RegistrationState.PAID,
                direction_code="equipment_application",
                candidate={
                    "full_name": name,
                    "gender": "female",
                    "id_doc_type": "resident_id",
                    "id_number_masked": "1101**********002X",
                    "id_number_encrypted": None,
                    "phone": "+8613800138000",
                    "profile": {"photo": {"file_id": file_id}} if file_id else {},
                },
            )
            registrations.append(registration.id)
        async with UnitOfWork(database.sessions) as uow:
            uow.session.add(
                Payment(
                    registration_id=registrations[0],
                    method="stars",
                    external_id="charge-1",
                    amount_minor=800,
                    currency="XTR",
                    status="paid",
                )
            )
            await uow.commit()
    finally:
        await database.dispose()
    bot.clock.now = TICKETS_FROM
    services = bot.runtime.services
    await services.tickets.ticket(94001, registrations[0])
    await services.tickets.ticket(94002, registrations[1])
    await services.staff.grant(STAFF_ID, CHECKIN_ID, Role.CHECKIN)
    await services.staff.grant(STAFF_ID, FINANCE_ID, Role.FINANCE)
    await refresh_staff(bot.runtime.application)


def _documents(bot: Harness, since: int) -> list[UploadedFile]:
    uploads = [c.params["document"] for c in bot.sandbox.calls_of("sendDocument")[since:]]
    assert all(isinstance(u, UploadedFile) for u in uploads)
    return uploads


async def _say(bot: Harness, user_id: int, language: str, text: str, **kw: object) -> list[dict]:
    user = bot.sandbox.user(user_id, language_code=language)
    command, _, payload = text.partition(" ")
    return await exchange(bot, user, user.send_command(command, payload or None, **kw))


async def _audit(bot: Harness) -> list[tuple[str, str]]:
    database = Database(bot.database_url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.execute(
                select(AuditEntry.actor, AuditEntry.action)
                .where(AuditEntry.entity.in_(("exam_session", "export")))
                .order_by(AuditEntry.id)
            )
            return [(r[0], r[1]) for r in rows]
    finally:
        await database.dispose()


async def test_roster_in_english_sends_xlsx_and_csv_read_back_cell_by_cell(bot: Harness) -> None:
    await _seed(bot)
    before = len(bot.sandbox.calls_of("sendDocument"))

    replies = await _say(bot, STAFF_ID, "en", "/roster 2027-01")

    xlsx, text = _documents(bot, before)
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    parsed = list(csv.reader(io.StringIO(text.data.decode("utf-8-sig"))))
    assert [(m["document"]["file_name"], m.get("caption")) for m in replies] == [
        ("roster-2027-01.xlsx", "Roster of session 2027-01: 2 candidates, by ticket number."),
        ("roster-2027-01.csv", None),
    ]
    assert rows == [
        [
            "Ticket number",
            "Name",
            "Gender",
            "ID number",
            "Phone",
            "Level",
            "Direction",
            "Components",
            "Room: Theory",
            "Room: Practical skills",
            "Seat",
            "Payment",
            "Checked in",
        ],
        [
            "2027-01-J-0001",
            "张小三",
            "Female",
            "1101**********002X",
            "+8613800138000",
            "Junior",
            "Smart equipment and production line application",
            "Theory and Practical skills",
            "Computer room A301",
            "Smart manufacturing lab B105",
            "001",
            "paid (Telegram Stars)",
            None,
        ],
        [
            "2027-01-J-0002",
            INJECTION,
            "Female",
            "1101**********002X",
            "+8613800138000",
            "Junior",
            "Smart equipment and production line application",
            "Theory and Practical skills",
            "Computer room A301",
            "Smart manufacturing lab B105",
            "002",
            "paid",
            None,
        ],
    ]
    assert (sheet["B3"].data_type, sheet["B3"].quotePrefix) == ("s", True)
    assert [r[1] for r in parsed] == ["Name", "张小三", "'" + INJECTION]
    assert [r[:2] for r in parsed[1:]] == [
        ["2027-01-J-0001", "张小三"],
        ["2027-01-J-0002", "'" + INJECTION],
    ]
    assert await _audit(bot) == [(f"tg:{STAFF_ID}", "roster_exported")]


async def test_roster_in_chinese_by_checkin_member_and_full_ids_refused(bot: Harness) -> None:
    await _seed(bot)
    before = len(bot.sandbox.calls_of("sendDocument"))

    replies = await _say(bot, CHECKIN_ID, "zh-hans", "/roster 2027-01")
    full = await _say(bot, CHECKIN_ID, "zh-hans", "/roster 2027-01 full")

    xlsx, _ = _documents(bot, before)
    header = [c.value for c in next(load_workbook(io.BytesIO(xlsx.data)).active.iter_rows())]
    assert replies[0]["caption"] == "考试场次 2027-01 名册：共 2 名考生，按准考证号排序。"
    assert header[:4] == ["准考证号", "姓名", "性别", "证件号码"]
    assert [m.get("text") for m in full] == [not_allowed_text(ZH, (Role.ADMIN,))]
    assert len(bot.sandbox.calls_of("sendDocument")) == before + 2


async def test_roster_full_ids_only_in_a_private_chat_and_audited(bot: Harness) -> None:
    await _seed(bot)
    before = len(bot.sandbox.calls_of("sendDocument"))

    in_group = await _say(bot, STAFF_ID, "en", "/roster 2027-01 full", chat=STAFF_CHAT_ID)
    private = await _say(bot, STAFF_ID, "en", "/roster 2027-01 full")

    group = bot.sandbox.chats[STAFF_CHAT_ID].bot_messages()
    assert in_group == []  # the answer is in the group, not the private chat
    assert [m.get("text") for m in group][-1] == ZH.gettext(
        "Full ID numbers are sent only in a private chat with the bot: "
        "send /roster {session} full to me there.",
        session="2027-01",
    )
    assert [m["document"]["file_name"] for m in private] == [
        "roster-2027-01-full-ids.xlsx",
        "roster-2027-01-full-ids.csv",
    ]
    header = next(csv.reader(io.StringIO(_documents(bot, before)[1].data.decode("utf-8-sig"))))
    assert header[3] == "ID number (full)"
    assert await _audit(bot) == [(f"tg:{STAFF_ID}", "roster_full_ids")]


async def test_signin_in_chinese_sends_a_pdf_per_room_with_names_and_photo(bot: Harness) -> None:
    await _seed(bot)
    before = len(bot.sandbox.calls_of("sendDocument"))

    replies = await _say(bot, CHECKIN_ID, "zh-hans", "/signin 2027-01")

    pdfs = _documents(bot, before)
    pages = [PdfReader(io.BytesIO(p.data)).pages[0] for p in pdfs]
    texts = [p.extract_text() for p in pages]
    assert [m["document"]["file_name"] for m in replies] == [
        "signin-2027-01-theory.pdf",
        "signin-2027-01-practical.pdf",
    ]
    assert replies[0]["caption"] == (
        "签到表：考试场次 2027-01，理论知识，机房 A301：共 2 名考生。"
    )
    assert [
        all(
            part in t
            for part in ("签到表", "张小三", INJECTION, "2027-01-J-0001", "2027-01-J-0002")
        )
        for t in texts
    ] == [True, True]
    assert ("机房 A301" in texts[0], [len(p.images) for p in pages]) == (True, [1, 1])
    assert bot.sandbox.calls_of("getFile") != []


async def test_export_payments_by_finance_in_english_and_refused_to_checkin(
    bot: Harness,
) -> None:
    await _seed(bot)
    before = len(bot.sandbox.calls_of("sendDocument"))

    refused = await _say(bot, CHECKIN_ID, "en", "/export payments")
    usage = await _say(bot, FINANCE_ID, "en", "/export tickets")
    replies = await _say(bot, FINANCE_ID, "en", "/export payments 2027-01 paid")

    [xlsx] = _documents(bot, before)
    rows = [[c.value for c in r] for r in load_workbook(io.BytesIO(xlsx.data)).active.iter_rows()]
    assert [m.get("text") for m in refused] == [not_allowed_text(EN, (Role.FINANCE,))]
    assert usage[0]["text"].startswith("Usage: /export registrations|payments [SESSION] [STATE]")
    assert replies[0]["caption"] == "Payments: 1 row (session: 2027-01; state: paid)."
    assert rows[0][:7] == [
        "Payment",
        "Reference",
        "Session",
        "Name",
        "Method",
        "External ID",
        "Amount",
    ]
    assert rows[1][2:9] == ["2027-01", "张小三", "Telegram Stars", "charge-1", 800, "XTR", "paid"]


async def test_export_registrations_in_chinese_by_finance(any_bot: Harness) -> None:
    await _seed(any_bot)
    before = len(any_bot.sandbox.calls_of("sendDocument"))

    replies = await _say(any_bot, FINANCE_ID, "zh-hans", "/export registrations 2027-01")
    nothing = await _say(any_bot, FINANCE_ID, "zh-hans", "/export registrations cancelled")
    unknown = await _say(any_bot, FINANCE_ID, "zh-hans", "/export registrations 2099-09")

    [xlsx] = _documents(any_bot, before)
    rows = [[c.value for c in r] for r in load_workbook(io.BytesIO(xlsx.data)).active.iter_rows()]
    assert replies[0]["caption"] == "报名：共 2 行（考试场次：2027-01；状态：全部）。"
    assert [r[2] for r in rows] == ["姓名", "张小三", INJECTION]
    assert [r[9] for r in rows[1:]] == ["已缴费", "已缴费"]
    assert [m.get("text") for m in nothing] == [
        "没有可导出的内容（考试场次：全部；状态：cancelled）。"
    ]
    assert [m.get("text") for m in unknown] == [ZH.gettext("There is no such session.")]
