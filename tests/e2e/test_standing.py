"""Standing end to end: `/status` with each registration's results and certificate in both
languages, the eligibility check naming a level passed here (no "which level do you
hold?" question), and `/help` listing /results, /certificate and /verify.

Session 2027-01 of the shipped catalogue: exam 2027-01-09; results at E+28 09:00
Asia/Shanghai = 2027-02-06 01:00 UTC; certificates about E+70 = 2027-03-20.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select, update

from storage.db import Database
from storage.models import Candidate, Certificate, Registration
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_ID, Harness, exchange
from tests.e2e.test_reminders import paid_registration, run_job
from tests.e2e.test_results import RELEASE_AT, _with_id

ANN, LI = 631, 632


async def _sat(bot: Harness) -> None:
    """Ann (English) passed junior in 2027-01, Li (Chinese) did not: results imported."""
    ann = bot.sandbox.user(ANN, first_name="Ann", language_code="en")
    li = bot.sandbox.user(LI, first_name="Li", language_code="zh-hans")
    await exchange(bot, ann, ann.send_command("/start"))
    await exchange(bot, li, li.send_command("/start"))
    await paid_registration(bot.database_url, ANN)
    await paid_registration(bot.database_url, LI)
    ann_ref = await _with_id(bot.database_url, ANN)
    li_ref = await _with_id(bot.database_url, LI)
    assert bot.runtime is not None
    results = bot.runtime.services.results
    data = (
        f"reference,id_last4,theory,practical\n{ann_ref},002X,75,60\n{li_ref},002X,50,缺考\n"
    ).encode()
    preview = await results.preview("2027-01", "r.csv", data, STAFF_ID)
    await results.confirm(preview.import_id, STAFF_ID)


async def _release(bot: Harness) -> None:
    """The release tick at the catalogue's time; both candidates have their message."""
    bot.clock.now = RELEASE_AT
    await run_job(bot, "release_results")
    for telegram_id in (ANN, LI):
        user = bot.sandbox.user(telegram_id)
        await user.wait_for_message(lambda m: m.get("text", "").startswith("📊"), timeout=10)


async def _status_tail(bot: Harness, telegram_id: int, lines: int) -> list[str]:
    """The last `lines` lines of the registration's card (its reference is ED<id>); the
    release message may arrive meanwhile."""
    user = bot.sandbox.user(telegram_id)
    shown = await exchange(bot, user, user.send_command("/status"))
    [card] = [m["text"] for m in shown if f"ED{telegram_id}" in m.get("text", "")]
    return card.splitlines()[-lines:]


async def test_status_before_release_says_when_results_come_out(bot: Harness) -> None:
    await _sat(bot)
    bot.clock.now = datetime(2027, 1, 20, tzinfo=UTC)

    ann = await _status_tail(bot, ANN, 1)
    li = await _status_tail(bot, LI, 1)

    assert ann == ["📊 Results come out on Sat 6 Feb 2027, 09:00 (China time)."]
    assert li == ["📊 成绩将于2027年2月6日（周六）09:00（北京时间）发布。"]


async def test_status_after_release_shows_results_pass_and_certificate(bot: Harness) -> None:
    await _sat(bot)
    await _release(bot)

    ann_card = await _status_tail(bot, ANN, 50)  # the whole card
    ann_buttons = [label for label, _ in bot.sandbox.user(ANN).inline_buttons()]
    ann = await _status_tail(bot, ANN, 5)
    li = await _status_tail(bot, LI, 3)
    await _certificate(bot.database_url, ANN, revoked_at=None)
    issued = await _status_tail(bot, ANN, 1)
    await _certificate(bot.database_url, ANN, revoked_at=datetime(2027, 5, 1, 20, tzinfo=UTC))
    revoked = await _status_tail(bot, ANN, 1)

    # The sitting is over: no "ticket is ready" line or button any more.
    assert (
        next(line for line in ann_card if line.startswith("Reference:")).endswith(
            "State: sat, results released."
        ),
        any("ticket" in line for line in ann_card),
        "🎫 Get my admission ticket" in ann_buttons,
    ) == (True, False, False)
    assert ann == [
        "📊 Results:",
        "• Theory: 75.0 (passed)",
        "• Practical skills: 60.0 (passed)",
        "✅ You passed this level on Sat 6 Feb 2027.",
        "🎓 Your certificate is expected around Sat 20 Mar 2027.",
    ]
    assert li == ["📊 成绩：", "• 理论知识：50.0（不合格）", "• 专业能力：缺考（不合格）"]
    assert issued == ["🎓 Certificate RC2027-01-junior-0001, issued on Sat 20 Mar 2027."]
    # 20:00 UTC on 1 May is 2 May in China: the session's day.
    assert revoked == ["🎓 Certificate RC2027-01-junior-0001 was revoked on Sun 2 May 2027."]


async def _certificate(url: str, telegram_id: int, *, revoked_at: datetime | None) -> None:
    """Give the candidate's registration its certificate, or revoke it."""
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            candidate_id, registration_id = (
                await uow.session.execute(
                    select(Candidate.id, Registration.id)
                    .join(Registration, Registration.candidate_id == Candidate.id)
                    .where(Candidate.telegram_id == telegram_id)
                )
            ).one()
            if revoked_at is not None:
                await uow.session.execute(
                    update(Certificate)
                    .where(Certificate.registration_id == registration_id)
                    .values(status="revoked", revoked_at=revoked_at, revoked_by="cli")
                )
            else:
                uow.session.add(
                    Certificate(
                        registration_id=registration_id,
                        candidate_id=candidate_id,
                        level_code="junior",
                        number="RC2027-01-junior-0001",
                        number_key="RC202701JUNIOR0001",
                        issued_on=date(2027, 3, 20),
                        verify_code="e2eVerify001",
                        source="assigned",
                        created_by="cli",
                    )
                )
            await uow.commit()
    finally:
        await database.dispose()


async def test_eligibility_for_the_next_level_names_the_pass_and_skips_the_question(
    bot: Harness,
) -> None:
    await _sat(bot)
    await _release(bot)
    bot.clock.now = datetime(2030, 2, 6, 4, 0, tzinfo=UTC)  # three years on
    ann = bot.sandbox.user(ANN)

    await exchange(bot, ann, ann.send_command("/eligibility"))
    await exchange(bot, ann, ann.press("elig:a:level:intermediate"))
    await exchange(bot, ann, ann.press("elig:a:education:bachelor"))
    await exchange(bot, ann, ann.send_text("2020-06-30"))
    await exchange(bot, ann, ann.send_text("Mechanical Engineering"))
    verdict = await exchange(bot, ann, ann.press("elig:a:title:none"))

    paragraphs = verdict[-1]["text"].split("\n\n")
    assert paragraphs[0] == (
        "🎓 You passed Junior here on Sat 6 Feb 2027; the check counts it as your Junior "
        "certificate from that day."
    )
    assert paragraphs[1].startswith("✅ You are eligible for Intermediate")
    assert "by route M2" in paragraphs[1]


async def test_help_lists_results_certificate_and_verify_in_both_languages(
    bot: Harness,
) -> None:
    en = bot.sandbox.user(641, language_code="en")
    zh = bot.sandbox.user(642, language_code="zh-hans")

    en_help = await exchange(bot, en, en.send_command("/help"))
    zh_help = await exchange(bot, zh, zh.send_command("/help"))

    assert [
        line for line in en_help[0]["text"].splitlines() if "/re" in line or "/ce" in line
    ] == [
        "/register: register for the exam",
        "/results: your exam results, once released",
        "/certificate: your certificate (PDF), once issued",
    ]
    assert "/verify: check whether a certificate number is genuine" in en_help[0]["text"]
    assert "/results：我的考试成绩（发布后可查）" in zh_help[0]["text"]
    assert "/verify：查验证书编号的真伪" in zh_help[0]["text"]
