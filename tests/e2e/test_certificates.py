"""Certificates end to end: staff send the numbers file (caption `/certificates_import`) and
confirm; each holder is told once in their language with the verification link; /certificate
sends the record PDF (number, level, Chinese name); a revocation is told to the holder with
the reason and the PDF then says REVOKED. Also `/certificates_assign` with its buttons (the
first decision wins, a forged press by a candidate changes nothing), and /certificate
before any certificate.

Session 2027-01 of the shipped catalogue: exam 2027-01-09; certificates at E+70 =
2027-03-20, 09:00 Asia/Shanghai.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import select, update

from bot.crypto import Vault
from bot.devtools.sandbox import UploadedFile
from storage.db import Database
from storage.models import Candidate, Certificate, ComponentResult, OutboxMessage, Registration
from storage.uow import UnitOfWork
from tests.e2e.conftest import SECRET_KEY, STAFF_ID, Harness, exchange
from tests.e2e.test_reminders import paid_registration

RELEASED = datetime(2027, 2, 6, 1, 0, tzinfo=UTC)
ID_NUMBER = "11010519491231002X"


async def _passed(url: str, telegram_id: int, full_name: str) -> str:
    """A paid junior registration of session 2027-01 with both components passed and
    released, and the candidate's name and ID number on file; its reference."""
    registration_id = await paid_registration(url, telegram_id)
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            await uow.session.execute(
                update(Candidate)
                .where(Candidate.telegram_id == telegram_id)
                .values(
                    full_name=full_name,
                    id_doc_type="id_card",
                    id_number_encrypted=Vault(SECRET_KEY).encrypt(ID_NUMBER),
                )
            )
            registration = await uow.registrations.get(registration_id)
            assert registration is not None
            for component, score in (("theory", 750), ("practical", 800)):
                uow.session.add(
                    ComponentResult(
                        registration_id=registration_id,
                        session_id=registration.session_id,
                        component=component,
                        mark="scored",
                        score_tenths=score,
                        released_at=RELEASED,
                        updated_by="cli",
                    )
                )
            reference = registration.reference
            await uow.commit()
            return reference
    finally:
        await database.dispose()


async def _stored(url: str) -> list[tuple[str, str, str]]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.execute(
                select(Registration.reference, Certificate.number, Certificate.status)
                .join(Registration, Registration.id == Certificate.registration_id)
                .order_by(Certificate.id)
            )
            return [(r[0], r[1], r[2]) for r in rows]
    finally:
        await database.dispose()


async def _told(url: str) -> int:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            keys = await uow.session.scalars(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.idempotency_key.like("certificate:%")
                )
            )
            return len(list(keys))
    finally:
        await database.dispose()


def _pdf_text(bot: Harness) -> str:
    upload = bot.sandbox.calls_of("sendDocument")[-1].params["document"]
    assert isinstance(upload, UploadedFile)
    return PdfReader(io.BytesIO(upload.data)).pages[0].extract_text()


async def test_import_file_notifies_holders_pdf_then_revoke_in_both_languages(
    any_bot: Harness,
) -> None:
    bot = any_bot
    ann = bot.sandbox.user(711, first_name="Ann", language_code="en")
    li = bot.sandbox.user(712, first_name="Li", language_code="zh-hans")
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    for user in (ann, li, staff):
        await exchange(bot, user, user.send_command("/start"))
    ann_ref = await _passed(bot.database_url, 711, "安娜")
    li_ref = await _passed(bot.database_url, 712, "李雷")
    data = (
        "reference,certificate_number,issue_date\n"
        f"{ann_ref},RC2027-0001,2027-03-20\n{li_ref},RC2027-0002,2027-03-20\n"
        "EDKNOSUCH1,RC2027-0003,2027-03-20\n"
    ).encode()

    before = await exchange(bot, ann, ann.send_command("/certificate"))
    shown = await exchange(
        bot,
        staff,
        staff.send_document(data, "certs.csv", "text/csv", caption="/certificates_import"),
    )
    assert [m["text"] for m in shown] == [
        "📜 Certificates file certs.csv: 3 rows, 2 to record, 0 already recorded, 1 refused.\n"
        "line 4: no registration has this ticket number or reference"
    ]
    buttons = staff.inline_buttons()
    assert [label for label, _ in buttons] == ["✅ Record 2 certificates", "✖️ Discard"]
    # A candidate pressing the staff button (forged data) changes nothing.
    await exchange(bot, ann, ann.press_data(shown[0]["message_id"], buttons[0][1] or ""))
    assert await _stored(bot.database_url) == []

    done = await exchange(bot, staff, staff.press("✅ Record 2 certificates"))
    ann_got = await ann.wait_for_message(lambda m: "📜" in m.get("text", ""), timeout=10)
    li_got = await li.wait_for_message(lambda m: "📜" in m.get("text", ""), timeout=10)

    assert [m["text"] for m in before] == [
        "✅ Junior (初级): passed. Certificates of session 2027-01 are expected around "
        "Sat 20 Mar 2027; I will send you a message when yours is recorded."
    ]
    assert [m["text"] for m in done][-1] == (
        "Recorded: 2 new, 0 already recorded. Each new holder is told."
    )
    assert await _stored(bot.database_url) == [
        (ann_ref, "RC2027-0001", "valid"),
        (li_ref, "RC2027-0002", "valid"),
    ]
    ann_lines = ann_got["text"].splitlines()
    assert ann_lines[0] == (
        "📜 Your Junior (初级) certificate is issued: number RC2027-0001, issued on "
        "Sat 20 Mar 2027."
    )
    assert re.fullmatch(
        r"Anyone can check it here: https://t\.me/\w+\?start=verify_[\w-]{12}", ann_lines[1]
    )
    assert ann_lines[2] == "Send /certificate for the certificate record (PDF)."
    assert li_got["text"].splitlines()[0] == (
        "📜 您的初级证书已颁发：编号 RC2027-0002，发证日期 2027年3月20日（周六）。"
    )

    [ann_pdf] = await exchange(bot, ann, ann.send_command("/certificate"))
    ann_text = _pdf_text(bot)
    [li_pdf] = await exchange(bot, li, li.send_command("/certificate"))
    li_text = _pdf_text(bot)
    assert (ann_pdf["document"]["file_name"], ann_pdf["caption"]) == (
        "certificate-record-RC2027-0001.pdf",
        "📜 Certificate record RC2027-0001 (Junior (初级)), issued on Sat 20 Mar 2027. This is "
        "a record of your certificate, not the certificate itself.",
    )
    assert [
        part in ann_text for part in ("RC2027-0001", "安娜", "初级", "Junior", "证书信息记录")
    ] == [True] * 5
    assert ("RC2027-0002" in li_text, "李雷" in li_text, "REVOKED" in li_text) == (
        True,
        True,
        False,
    )
    assert li_pdf["caption"].startswith("📜 证书信息记录 RC2027-0002（初级）")

    revoked = await exchange(
        bot,
        staff,
        staff.send_command("/certificate_revoke", payload="RC2027-0002 misconduct found"),
    )
    li_told = await li.wait_for_message(lambda m: "⛔" in m.get("text", ""), timeout=10)
    twice = await exchange(
        bot, staff, staff.send_command("/certificate_revoke", payload="rc2027-0002 again")
    )
    [li_revoked_pdf] = await exchange(bot, li, li.send_command("/certificate"))
    revoked_text = _pdf_text(bot)

    assert [m["text"] for m in revoked] == [
        "⛔ Certificate RC2027-0002 revoked. The holder is told, with your reason; the "
        "verification now says revoked, without the reason."
    ]
    assert li_told["text"].splitlines()[:2] == [
        "⛔ 您的证书 RC2027-0002（初级）已于2026年11月26日（周四）20:00（北京时间）撤销。",
        "原因：misconduct found",
    ]
    assert next(m["text"] for m in twice).startswith(
        "Certificate RC2027-0002 was already revoked on "
    )
    assert li_revoked_pdf["caption"].startswith("⛔ 证书 RC2027-0002（初级）已于")
    assert ("已撤销" in revoked_text, "REVOKED" in revoked_text) == (True, True)
    assert await _told(bot.database_url) == 3  # two issued, one revoked: once each


async def test_assign_by_pattern_in_chat_first_decision_wins(any_bot: Harness) -> None:
    bot = any_bot
    ann = bot.sandbox.user(721, first_name="Ann", language_code="en")
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    for user in (ann, staff):
        await exchange(bot, user, user.send_command("/start"))
    reference = await _passed(bot.database_url, 721, "安娜")

    usage = await exchange(
        bot, staff, staff.send_command("/certificates_assign", payload="2027-01 20-03-2027")
    )
    shown = await exchange(
        bot, staff, staff.send_command("/certificates_assign", payload="2027-01 2027-03-20")
    )
    [(_, data), _] = staff.inline_buttons()
    done = await exchange(bot, staff, staff.press("✅ Record 1 certificate"))
    late_update: dict = {}

    async def press_late() -> None:
        late_update.update(await staff.press_data(shown[0]["message_id"], data or ""))

    late = await exchange(bot, staff, press_late())
    again = await exchange(
        bot, staff, staff.send_command("/certificates_assign", payload="2027-01 2027-03-20")
    )
    got = await ann.wait_for_message(lambda m: "📜" in m.get("text", ""), timeout=10)

    assert [m["text"] for m in usage] == [
        "Usage: /certificates_assign SESSION YYYY-MM-DD (the issue date)"
    ]
    assert [m["text"] for m in shown] == [
        "📜 Certificate numbers for session 2027-01, issued on Sat 20 Mar 2027: 1 to assign, "
        "0 already recorded, 0 refused."
    ]
    assert [m["text"] for m in done][-1] == (
        "Recorded: 1 new, 0 already recorded. Each new holder is told."
    )
    assert late == []  # the decided batch: an alert, nothing recorded twice
    answer = await staff.wait_for_callback_answer(late_update)
    assert (answer["text"], answer["show_alert"]) == (
        "Someone else recorded these certificates first.",
        True,
    )
    assert [m["text"] for m in again] == [
        "📜 Certificate numbers for session 2027-01, issued on Sat 20 Mar 2027: 0 to assign, "
        "1 already recorded, 0 refused.\nNothing to record."
    ]
    assert await _stored(bot.database_url) == [(reference, "RC202701-JUNIOR-0001", "valid")]
    assert "RC202701-JUNIOR-0001" in got["text"]
    assert await _told(bot.database_url) == 1


async def _cli(bot: Harness, cwd: str, *args: str) -> tuple[int, str]:
    """`examdesk certificates …` in its own process, on the running bot's database."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "EXAMDESK_DATABASE_URL": bot.database_url,
        "EXAMDESK_SECRET_KEY": SECRET_KEY,
        "EXAMDESK_BOT_TOKEN": bot.token,
        "EXAMDESK_BOT_API_URL": bot.sandbox.url,
        "EXAMDESK_DEFAULT_LANGUAGE": "en",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "certificates",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_cli_import_previews_then_records_and_revokes(bot: Harness, tmp_path: Path) -> None:
    ann = bot.sandbox.user(731, first_name="Ann", language_code="en")
    await exchange(bot, ann, ann.send_command("/start"))
    reference = await _passed(bot.database_url, 731, "安娜")
    sheet = tmp_path / "certs.csv"
    sheet.write_text(
        f"报名编号,证书编号,发证日期\n{reference},RC2027-0100,2027-03-20\n", encoding="gb18030"
    )

    previewed = await _cli(bot, str(tmp_path), "import", str(sheet))
    stored_after_preview = await _stored(bot.database_url)
    recorded = await _cli(bot, str(tmp_path), "import", str(sheet), "--yes")
    # The CLI's clock is the real one: the notice it queued is due from the real now.
    bot.clock.now = datetime.now(UTC) + timedelta(minutes=1)
    got = await ann.wait_for_message(lambda m: "📜" in m.get("text", ""), timeout=10)
    again = await _cli(bot, str(tmp_path), "import", str(sheet), "--yes")
    revoked = await _cli(bot, str(tmp_path), "revoke", "RC2027-0100", "--reason", "misconduct")
    twice = await _cli(bot, str(tmp_path), "revoke", "RC2027-0100", "--reason", "again")

    head = "📜 Certificates file certs.csv: 1 row, {} to record, {} already recorded, 0 refused."
    assert previewed == (
        0,
        head.format(1, 0) + "\nPreview only: nothing was saved. Run again with --yes to save.\n",
    )
    assert stored_after_preview == []
    assert recorded == (
        0,
        head.format(1, 0) + "\nRecorded: 1 new, 0 already recorded. Each new holder is told.\n",
    )
    assert again == (0, head.format(0, 1) + "\nNothing to record.\n")
    assert re.search(r"https://t\.me/\w+\?start=verify_[\w-]{12}", got["text"])
    assert revoked == (0, "Certificate RC2027-0100 revoked; the holder is told.\n")
    assert twice[0] == 1 and "was already revoked on" in twice[1]
    assert await _stored(bot.database_url) == [(reference, "RC2027-0100", "revoked")]
    assert await _told(bot.database_url) == 2


async def test_command_first_then_the_file(bot: Harness) -> None:
    """`/certificates_import` needs no arguments: sent alone, the bot waits for the file."""
    ann = bot.sandbox.user(721, first_name="Ann", language_code="en")
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    for user in (ann, staff):
        await exchange(bot, user, user.send_command("/start"))
    ref = await _passed(bot.database_url, 721, "安娜")
    data = f"reference,certificate_number,issue_date\n{ref},RC2027-0011,2027-03-20\n".encode()

    asked = await exchange(bot, staff, staff.send_command("/certificates_import"))
    shown = await exchange(bot, staff, staff.send_document(data, "certs.csv", "text/csv"))

    assert [m["text"].split(" (CSV")[0] for m in asked] == [
        "Send the file for /certificates_import now"
    ]
    assert [m["text"] for m in shown] == [
        "📜 Certificates file certs.csv: 1 row, 1 to record, 0 already recorded, 0 refused."
    ]
    assert await _stored(bot.database_url) == []
