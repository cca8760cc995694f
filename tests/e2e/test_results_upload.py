"""Results by file in the chat, end to end over the sandbox: `/results_import CODE` then
an XLSX (made here with openpyxl), a CSV with bad rows sent with the caption, the previews
with line numbers, a forged save button, save; a bank statement without caption still goes
to the statement import; `/results_release` at a time + confirm, the tick, each candidate's
message; a candidate who blocked the bot shows as not reached in `/results_status` and in
the staff chat's report. In English and Chinese; the waiting command survives a restart.

Session 2027-01 of the shipped catalogue: exam 2027-01-09 (Asia/Shanghai).
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

from openpyxl import Workbook
from sqlalchemy import select

from bot.domain.lifecycle import OutboxStatus
from storage.db import Database
from storage.models import ComponentResult, OutboxMessage, ResultImport
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, STAFF_ID_2, Harness, exchange
from tests.e2e.test_reminders import paid_registration, run_job
from tests.e2e.test_results import _with_id

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOW = datetime(2027, 1, 20, 2, 0, tzinfo=UTC)  # after the exam, before the catalogue's E+28


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["2027-01 成绩"])  # a title line: the header is line 2
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def _db(url: str, stmt):  # type: ignore[no-untyped-def]
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            return list((await uow.session.execute(stmt)).all())
    finally:
        await database.dispose()


async def _imports(url: str) -> list[str]:
    return [r[0] for r in await _db(url, select(ResultImport.status).order_by(ResultImport.id))]


async def _scores(url: str) -> list[tuple[int, str, int | None]]:
    stmt = select(
        ComponentResult.registration_id, ComponentResult.component, ComponentResult.score_tenths
    ).order_by(ComponentResult.registration_id, ComponentResult.component)
    return [tuple(r) for r in await _db(url, stmt)]


async def _settled(url: str, timeout: float = 15) -> None:
    """Wait until the sender has settled every results message."""
    stmt = select(OutboxMessage.status).where(OutboxMessage.idempotency_key.like("results:%"))
    for _ in range(int(timeout / 0.1)):
        if all(s != OutboxStatus.PENDING for (s,) in await _db(url, stmt)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("results messages still pending")


async def _candidates(bot: Harness, people: dict[int, tuple[str, str]]) -> dict[int, str]:
    """Each (id: (name, language)) starts the bot and gets a paid registration with an ID
    number on file; their references."""
    refs = {}
    for telegram_id, (name, language) in people.items():
        user = bot.sandbox.user(telegram_id, first_name=name, language_code=language)
        await exchange(bot, user, user.send_command("/start"))
        await paid_registration(bot.database_url, telegram_id)
        refs[telegram_id] = await _with_id(bot.database_url, telegram_id)
    return refs


async def test_staff_import_by_file_release_and_progress_in_english(any_bot: Harness) -> None:
    bot = any_bot
    bot.clock.now = NOW
    refs = await _candidates(bot, {611: ("Ann", "en"), 612: ("Li", "zh-hans"), 613: ("Bo", "en")})
    await _candidates(bot, {614: ("Dee", "en")})
    ann, bo = bot.sandbox.user(611), bot.sandbox.user(613)
    li = bot.sandbox.user(612)
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")

    # 1. The command first, then an XLSX (Chinese headers, a title line).
    asked = await exchange(bot, staff, staff.send_command("/results_import", payload="2027-01"))
    assert [m["text"] for m in asked] == [
        "Send the file for /results_import 2027-01 now (CSV or XLSX, up to 5 MB), within 15 "
        "minutes. /cancel stops."
    ]
    book = _xlsx(
        [
            ["报名编号", "身份证后四位", "理论知识", "专业能力"],
            [refs[611], "002X", 75, 60],
            [refs[612], "002x", 50, 70],
            [refs[613], "002X", 88, "缺考"],
            ["EDNOPE0000", "002X", 70, 70],
        ]
    )
    shown = await exchange(bot, staff, staff.send_document(book, "results.xlsx", XLSX))
    assert shown[-1]["text"].splitlines() == [
        "results.xlsx: 4 rows for session 2027-01",
        "Passed 1, failed 2, absent 0, refused 1.",
        "line 6: no registration has this ticket number or reference",
        "Save these results?",
    ]
    [(save, save_data), (_, discard_data)] = staff.inline_buttons(shown[-1])
    assert (save, discard_data) == ("✅ Save 3 rows", save_data.replace("ok", "no"))

    # A candidate pressing the staff button (forged data) changes nothing.
    await exchange(bot, ann, ann.press_data(shown[-1]["message_id"], save_data))
    assert await _imports(bot.database_url) == ["preview"]
    assert await _scores(bot.database_url) == []

    done = await exchange(bot, staff, staff.press("✅ Save 3 rows"))
    assert done[-1]["text"] == "Saved: 6 new, 0 replaced, 0 unchanged, 0 removed."
    assert staff.inline_buttons(shown[-1]["message_id"]) == []

    # 2. A CSV with the caption: one change, bad rows with their lines.
    csv = (
        "reference,id_last4,theory,practical\n"
        f"{refs[611]},002X,75,60\n"
        f"{refs[612]},002X,55,70\n"
        f"{refs[613]},002X,88,absent\n"
        "ED614,002X,7x,60\n"
        ",002X,70,70\n"
    ).encode()
    shown = await exchange(
        bot,
        staff,
        staff.send_document(csv, "fix.csv", "text/csv", caption="/results_import 2027-01"),
    )
    assert shown[-1]["text"].splitlines() == [
        "fix.csv: 5 rows for session 2027-01",
        "Passed 1, failed 2, absent 0, refused 2.",
        "Earlier unreleased results: 1 replaced, 0 removed.",
        "line 5: Theory: “7x” is not a score",
        "line 6: no ticket number or registration reference",
        "Save these results?",
    ]
    done = await exchange(bot, staff, staff.press("✅ Save 3 rows"))
    assert done[-1]["text"] == "Saved: 0 new, 1 replaced, 5 unchanged, 0 removed."
    assert await _imports(bot.database_url) == ["confirmed", "confirmed"]

    # 3. A bank statement without a caption still goes to the statement import.
    statement = b"date,amount,reference,payer\n2027-01-20,800.00,EDAAAAAAAA,Nobody\n"
    got = await exchange(bot, staff, staff.send_document(statement, "statement.csv", "text/csv"))
    assert got[-1]["text"].startswith("📄 Bank statement statement.csv: 0 matched")

    # 4. Release at a time staff give; Bo has blocked the bot by then.
    await exchange(bot, bo, asyncio.sleep(0, bo.block_bot()))
    asked = await exchange(
        bot, staff, staff.send_command("/results_release", payload="2027-01 2027-01-20 10:05")
    )
    assert asked[-1]["text"].endswith("3 candidates will be told.")
    await exchange(bot, staff, staff.press("✅ Schedule the release"))
    status = await exchange(bot, staff, staff.send_command("/results_status", payload="2027-01"))
    assert status[-1]["text"].splitlines() == [
        "📊 Results of session 2027-01: 🕒 scheduled",
        "Release: Wed 20 Jan 2027, 10:05 (China time)",
        "Candidates to tell: 3",
    ]

    bot.clock.now = NOW + timedelta(minutes=5)
    await run_job(bot, "release_results")
    ann_got = await ann.wait_for_message(lambda m: "📊" in m.get("text", ""), timeout=10)
    li_got = await li.wait_for_message(lambda m: "📊" in m.get("text", ""), timeout=10)
    assert ann_got["text"].splitlines()[1] == "• Theory: 75.0 (passed)"
    assert li_got["text"].splitlines()[1] == "• 理论知识：55.0（不合格）"
    await _settled(bot.database_url)

    status = await exchange(bot, staff, staff.send_command("/results_status", payload="2027-01"))
    assert status[-1]["text"].splitlines() == [
        "📊 Results of session 2027-01: ✅ released",
        "Released: Wed 20 Jan 2027, 10:05 (China time)",
        "Candidates to tell: 3",
        "Sent 2 · waiting 0 · not reached 1",
        "Not reached:",
        f"• {refs[613]}: blocked the bot",
    ]

    # The next tick tells the staff chat once, in the site's language (Chinese).
    await run_job(bot, "release_results")
    await run_job(bot, "release_results")
    report = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "2027-01" in m.get("text", ""), timeout=10
    )
    assert report["text"].splitlines() == [
        "📊 考试场次 2027-01 的成绩已发布：已通知 2/3 名考生。",
        "未送达：1 人。请用其他方式通知：",
        f"• {refs[613]}：已屏蔽机器人",
        "详情：/results_status 2027-01",
    ]
    await bot.sandbox.wait_idle(timeout=5, quiet=0.2)
    reports = [m for m in bot.sandbox.chat_messages(STAFF_CHAT_ID) if "2027-01" in m["text"]]
    assert len(reports) == 1


async def test_staff_import_refusals_in_chinese(any_bot: Harness) -> None:
    bot = any_bot
    bot.clock.now = NOW
    refs = await _candidates(bot, {621: ("Wang", "zh-hans")})
    staff = bot.sandbox.user(STAFF_ID_2, first_name="员工", language_code="zh-hans")
    caption = "/results_import 2027-01"

    async def send(data: bytes, name: str, mime: str, caption: str = caption) -> str:
        got = await exchange(bot, staff, staff.send_document(data, name, mime, caption=caption))
        return got[-1]["text"]

    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
        b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
        b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    photo = await exchange(bot, staff, staff.send_photo(png, caption=caption))
    assert photo[-1]["text"].startswith("请以文件形式发送成绩（CSV 或 XLSX）")
    assert (await send(b"%PDF-1.4", "r.pdf", "application/pdf")).startswith(
        "“r.pdf”不是 CSV 或 XLSX 文件"
    )
    assert (
        await send(b"\x00\x01garbage", "r.xlsx", XLSX)
        == "无法读取该文件：不是有效的 CSV 或 XLSX 文件。"
    )
    good = f"reference,id_last4,theory,practical\n{refs[621]},002X,61,59\n".encode()
    assert await send(good, "r.csv", "text/csv", "/results_import NOPE") == "没有这个考期。"
    assert await send(good, "r.csv", "text/csv", "/results_import") == (
        "请发送成绩文件，并以 /results_import 考试场次 作为说明文字。"
    )
    assert await _imports(bot.database_url) == []

    shown = await send(good, "r.csv", "text/csv")
    assert shown.splitlines() == [
        "r.csv：考试场次 2027-01 共 1 行",
        "合格 0，不合格 1，缺考 0，拒绝 0。",
        "保存这些成绩吗？",
    ]
    await exchange(bot, staff, staff.press("✖️ 放弃"))
    assert staff.messages()[-1]["text"] == "已丢弃：未保存任何成绩。"
    assert await _imports(bot.database_url) == ["cancelled"]

    status = await exchange(bot, staff, staff.send_command("/results_status", payload="NOPE"))
    assert status[-1]["text"] == "没有这个考期。"


async def test_waiting_command_survives_a_restart_and_cancel_drops_it(bot: Harness) -> None:
    bot.clock.now = NOW
    refs = await _candidates(bot, {631: ("Ann", "en")})
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    good = f"reference,id_last4,theory,practical\n{refs[631]},002X,61,59\n".encode()

    await exchange(bot, staff, staff.send_command("/results_import", payload="2027-01"))
    await bot.restart()
    text = await exchange(bot, staff, staff.send_text("hello"))
    assert text[-1]["text"].startswith("I am waiting for the file for /results_import 2027-01")
    shown = await exchange(bot, staff, staff.send_document(good, "r.csv", "text/csv"))
    assert shown[-1]["text"].startswith("r.csv: 1 row for session 2027-01")

    # /cancel drops a waiting command: the next CSV is a bank statement again.
    await exchange(bot, staff, staff.send_command("/results_import", payload="2027-01"))
    await exchange(bot, staff, staff.send_command("/cancel"))
    got = await exchange(bot, staff, staff.send_document(good, "r.csv", "text/csv"))
    assert got[-1]["text"].startswith("I could not read this file as a bank statement.")

    # A waiting command lapses after 15 minutes.
    await exchange(bot, staff, staff.send_command("/results_import", payload="2027-01"))
    bot.clock.now = NOW + timedelta(minutes=16)
    late = await exchange(bot, staff, staff.send_document(good, "r.csv", "text/csv"))
    assert late[-1]["text"].startswith("I waited 15 minutes for the file for /results_import")
    assert await _imports(bot.database_url) == ["preview"]
