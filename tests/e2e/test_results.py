"""Results release end to end: staff import through the service (no chat upload yet),
`/results_release` → preview → confirm, the release tick, each candidate's message in their
language, `/results` before and after, and a forged confirm press by a non-staff user.

Session 2027-01 of the shipped catalogue: exam 2027-01-09; results at E+28 at 09:00
Asia/Shanghai = 2027-02-06 01:00 UTC; re-mark until 7 days later at 18:00 there.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from bot.crypto import Vault
from storage.db import Database
from storage.models import Candidate, OutboxMessage, Registration, ResultRelease
from storage.uow import UnitOfWork
from tests.e2e.conftest import SECRET_KEY, STAFF_ID, Harness, exchange
from tests.e2e.test_reminders import paid_registration, run_job

RELEASE_AT = datetime(2027, 2, 6, 1, 0, tzinfo=UTC)
ID_NUMBER = "11010519491231002X"


async def _with_id(url: str, telegram_id: int) -> str:
    """Give the candidate an ID number on file; their registration reference."""
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            await uow.session.execute(
                update(Candidate)
                .where(Candidate.telegram_id == telegram_id)
                .values(id_number_encrypted=Vault(SECRET_KEY).encrypt(ID_NUMBER))
            )
            reference = await uow.session.scalar(
                select(Registration.reference)
                .join(Candidate, Candidate.id == Registration.candidate_id)
                .where(Candidate.telegram_id == telegram_id)
            )
            await uow.commit()
            return str(reference)
    finally:
        await database.dispose()


async def _releases(url: str) -> list[tuple[str, str | None]]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.execute(select(ResultRelease.status, ResultRelease.chosen_by))
            return [(r[0], r[1]) for r in rows]
    finally:
        await database.dispose()


async def _results_messages(url: str) -> int:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.idempotency_key.like("results:%"))
            )
            return len(list(rows))
    finally:
        await database.dispose()


async def test_results_release_confirmed_by_staff_tells_each_candidate_once(
    any_bot: Harness,
) -> None:
    bot = any_bot
    ann = bot.sandbox.user(611, first_name="Ann", language_code="en")
    li = bot.sandbox.user(612, first_name="Li", language_code="zh-hans")
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await exchange(bot, ann, ann.send_command("/start"))
    await exchange(bot, li, li.send_command("/start"))
    await paid_registration(bot.database_url, 611)
    await paid_registration(bot.database_url, 612)
    ann_ref = await _with_id(bot.database_url, 611)
    li_ref = await _with_id(bot.database_url, 612)
    assert bot.runtime is not None
    results = bot.runtime.services.results
    data = (
        f"reference,id_last4,theory,practical\n{ann_ref},002X,75,60\n{li_ref},002X,50,70\n"
    ).encode()
    preview = await results.preview("2027-01", "r.csv", data, STAFF_ID)
    await results.confirm(preview.import_id, STAFF_ID)

    before = await exchange(bot, ann, ann.send_command("/results"))
    assert [m["text"] for m in before] == [
        "The results of session 2027-01 will be released on Sat 6 Feb 2027, 09:00 (China time)."
    ]

    shown = await exchange(bot, staff, staff.send_command("/results_release", payload="2027-01"))
    assert [m["text"] for m in shown] == [
        "Release the results of session 2027-01 on Sat 6 Feb 2027, 09:00 (China time) "
        "(the catalogue's release time)? 2 candidates will be told."
    ]
    assert staff.inline_buttons() == [("✅ Schedule the release", "rr:ok:2027-01:0")]

    # A candidate pressing forged staff data changes nothing.
    await exchange(bot, ann, ann.press_data(shown[0]["message_id"], "rr:ok:2027-01:1800000000"))
    assert await _releases(bot.database_url) == []

    await exchange(bot, staff, staff.press("✅ Schedule the release"))
    edited = staff.messages()[-1]
    assert edited["text"] == (
        "📅 The results of session 2027-01 will be released on Sat 6 Feb 2027, 09:00 "
        "(China time). 2 candidates will be told."
    )
    assert await _releases(bot.database_url) == [("scheduled", None)]

    bot.clock.now = RELEASE_AT
    await run_job(bot, "release_results")
    await run_job(bot, "release_results")  # a second tick queues nothing more
    ann_got = await ann.wait_for_message(lambda m: "📊" in m.get("text", ""), timeout=10)
    li_got = await li.wait_for_message(lambda m: "📊" in m.get("text", ""), timeout=10)
    assert ann_got["text"].splitlines() == [
        "📊 Your results for Junior (初级):",
        "• Theory: 75.0 (passed)",
        "• Practical skills: 60.0 (passed)",
        "✅ You passed Junior (初级). Your certificate follows; see /results.",
        "You can ask for a re-mark (复核) until Sat 13 Feb 2027, 18:00 (China time).",
    ]
    assert li_got["text"].splitlines()[:4] + [
        line for line in li_got["text"].splitlines() if "/register" in line
    ] == [
        "📊 您的初级考试成绩：",
        "• 理论知识：50.0（不合格）",
        "• 专业能力：70.0（合格）",
        "要通过初级，请补考：理论知识。",
        "如需补考，请用 /register 报名以后的考期：合格科目成绩保留期间，只需报考其余科目。",
    ]
    assert await _results_messages(bot.database_url) == 2
    assert await _releases(bot.database_url) == [("released", None)]

    after = await exchange(bot, ann, ann.send_command("/results"))
    li_after = await exchange(bot, li, li.send_command("/results"))
    assert after[-1]["text"].splitlines()[0] == "✅ Junior (初级): passed on Sat 6 Feb 2027."
    # Each result says whether it passed, in the catalogue's order (theory first).
    assert li_after[-1]["text"].splitlines()[1:3] == [
        "• 2027年1月9日（周六），理论知识：50.0（不合格）",
        "• 2027年1月9日（周六），专业能力：70.0（合格）",
    ]
