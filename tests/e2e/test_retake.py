"""Retake with carry-over end to end, in English and Chinese: a candidate sat session 2027-01
(theory passed, practical failed), the results were released, and they /register for
2027-03. No eligibility questions (their verdicts are gone: the earlier registration's
snapshot stands), the summary says what carries over and books practical only, the offer
asks the per-component fee, they pay it in Stars, and the ticket lists practical only.

Session 2027-01 of the shipped catalogue: exam 2027-01-09, results at 2027-02-06 01:00 UTC.
Session 2027-03: exam 2027-03-13, registration until 2027-02-20, tickets from 2027-03-06
09:00 Asia/Shanghai.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pypdf import PdfReader
from sqlalchemy import select, update

from bot.config import PROJECT_ROOT
from bot.devtools.sandbox import Sandbox, UploadedFile
from bot.domain.catalog import parse_catalog
from bot.services import build_services
from storage.db import Database
from storage.models import Candidate, Registration, RegistrationState
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_ID, exchange, harness_for, sqlite_url
from tests.e2e.test_payments import PaymentsHarness, invoice_of
from tests.e2e.test_registration import ID_NUMBER, Person, become_eligible_for_junior, fill_form
from tests.e2e.test_reminders import run_job
from tests.factories import Clock

RELEASE_AT = datetime(2027, 2, 6, 1, 0, tzinfo=UTC)
TICKETS_FROM = datetime(2027, 3, 6, 1, 0, tzinfo=UTC)

TEXTS = {
    "en": {
        "language": "en",
        "carry": "🔁 You passed Theory on Sat 9 Jan 2027; it carries over until Sun 9 Jan 2028.",
        "book": "You book only: Practical skills.",
        "when": "Session: Sat 13 Mar 2027, 13:30 (China time)",  # the practical's start
        "fee": "Exam fee for Junior (初级): CN¥400.00.",
        "stars": "⭐ Pay with 4300 Stars",
        "status": "Retake: Practical skills only (your other results carry over).",
        "paid": "✅ Payment received for registration ED",
        "sat": "State: sat, results released.",
        "which": "Which level do you want to register for?",
        "level": "Junior",
    },
    "zh-hans": {
        "language": "zh-hans",
        "carry": "🔁 您已于2027年1月9日（周六）通过理论知识，成绩保留至2028年1月9日（周日）。",
        "book": "本次只需报考：专业能力。",
        "when": "场次：2027年3月13日（周六）13:30（北京时间）",
        "fee": "初级考试费用：¥400.00。",
        "stars": "⭐ 使用 4300 颗星支付",
        "status": "补考：仅专业能力（其他成绩保留）。",
        "paid": "✅ 已收到报名 ED",
        "sat": "状态：已参加考试，成绩已发布。",
        "which": "您要报名哪个等级？",
        "level": "初级",
    },
}


async def load_component_fees(url: str) -> None:
    """The shipped catalogue with every fee confirmed, the per-component ones too."""
    document = yaml.safe_load(
        (PROJECT_ROOT / "catalog" / "exam-catalog.yaml").read_text(encoding="utf-8")
    )
    for fee in document["fees"]["levels"].values():
        fee["confirmed"] = True
        fee["component"]["confirmed"] = True
    database = Database(url)
    try:
        await build_services(database, Clock()).catalog.load(parse_catalog(document))
    finally:
        await database.dispose()


@pytest.fixture
async def retake_bot(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[PaymentsHarness]:
    async for harness in harness_for(
        sandbox,
        sqlite_url(tmp_path),
        webhook=False,
        harness_type=PaymentsHarness,
        setup=load_component_fees,
    ):
        yield harness


async def _sat_and_forgot_verdicts(url: str, telegram_id: int) -> int:
    """The 2027-01 registration paid (the payments flow's job); the candidate's eligibility
    verdicts wiped, so only the registration's snapshot can let them register again."""
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            assert candidate is not None
            registration_id = await uow.session.scalar(
                select(Registration.id).where(Registration.candidate_id == candidate.id)
            )
            await uow.session.execute(
                update(Registration)
                .where(Registration.id == registration_id)
                .values(state=RegistrationState.PAID)
            )
            await uow.session.execute(
                update(Candidate)
                .where(Candidate.id == candidate.id)
                .values(profile={k: v for k, v in candidate.profile.items() if k != "verdicts"})
            )
            await uow.commit()
            return int(registration_id)
    finally:
        await database.dispose()


async def _registrations(url: str) -> list[tuple[str, list[str]]]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.execute(
                select(Registration.state, Registration.components).order_by(Registration.id)
            )
            return [(r[0], list(r[1])) for r in rows]
    finally:
        await database.dispose()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
async def test_retake_books_practical_only_at_the_component_fee_paid_in_stars(
    retake_bot: PaymentsHarness, language: str
) -> None:
    bot, texts = retake_bot, TEXTS[language]
    p = Person(bot, 631, language, "Li")
    await become_eligible_for_junior(p)
    await fill_form(p, name="Li Lei", id_number=ID_NUMBER, email="li@example.com")
    await p.press("reg:submit")
    first = await _sat_and_forgot_verdicts(bot.database_url, 631)
    reference = await _reference(bot.database_url, first)
    assert bot.runtime is not None
    results = bot.runtime.services.results
    data = f"reference,id_last4,theory,practical\n{reference},002X,75,45\n".encode()
    preview = await results.preview("2027-01", "r.csv", data, STAFF_ID)
    await results.confirm(preview.import_id, STAFF_ID)
    bot.clock.now = RELEASE_AT
    await run_job(bot, "release_results")
    await p.user.wait_for_message(lambda m: "📊" in m.get("text", ""), timeout=10)

    levels = await p.command("/register")
    level_buttons = p.user.inline_buttons()
    await p.press("reg:start:junior")  # no eligibility questions: the form goes on
    summary = (await p.press("reg:c:session:2027-03"))[-1]
    submitted = await p.press("reg:submit")
    pay_buttons = p.user.inline_buttons()
    [rid] = {int(d.rsplit(":", 1)[1]) for _, d in pay_buttons if d.startswith("pay:receipt:")}
    invoice = await invoice_of(bot, p, rid, "stars")
    stored = bot.sandbox.invoice(p.user.id, invoice["message_id"])
    paid = await exchange(bot, p.user, p.user.pay(invoice["message_id"]))
    status = await p.command("/status")
    bot.clock.now = TICKETS_FROM
    await p.command("/ticket")
    ticket = _last_pdf_text(bot)

    assert (levels, level_buttons) == ([texts["which"]], [(texts["level"], "reg:start:junior")])
    assert texts["carry"] in summary.splitlines()
    assert texts["book"] in summary.splitlines()
    assert texts["when"] in summary.splitlines()
    assert submitted[1].startswith(texts["fee"])
    assert texts["stars"] in [t for t, _ in pay_buttons]
    assert (stored["currency"], stored["total_amount"]) == ("XTR", 4300)
    assert await _registrations(bot.database_url) == [
        ("completed", ["practical", "theory"]),
        ("paid", ["practical"]),
    ]
    assert texts["status"] in status[0].splitlines()  # newest first
    assert status[1].splitlines()[1].endswith(texts["sat"])
    # The ticket is bilingual: practical in both languages, theory in neither.
    assert [name in ticket for name in ("Practical skills", "专业能力", "Theory", "理论知识")] == [
        True,
        True,
        False,
        False,
    ]
    assert paid[-1]["text"].startswith(texts["paid"])


async def _reference(url: str, registration_id: int) -> str:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            return str(
                await uow.session.scalar(
                    select(Registration.reference).where(Registration.id == registration_id)
                )
            )
    finally:
        await database.dispose()


def _last_pdf_text(bot: PaymentsHarness) -> str:
    upload = bot.sandbox.calls_of("sendDocument")[-1].params["document"]
    assert isinstance(upload, UploadedFile)
    return PdfReader(io.BytesIO(upload.data)).pages[0].extract_text()
