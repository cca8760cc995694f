"""Reminders end to end: the exam reminder with the rules and its button, the staff list of
who has not confirmed, a reminder missed during downtime, and two instances on one
PostgreSQL database sending each reminder exactly once.

Session 2027-01 of the shipped catalogue: exam 2027-01-09 09:00 Asia/Shanghai = 01:00 UTC;
exam reminders at −7 d, −1 d (2027-01-08 01:00 UTC) and −2 h (2027-01-08 23:00 UTC).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.devtools.sandbox import Sandbox
from storage.db import Database
from storage.models import OutboxMessage, Registration, RegistrationState
from storage.uow import UnitOfWork
from tests.conftest import create_postgres_database, drop_postgres_database, require_postgres
from tests.e2e.conftest import STAFF_ID, Harness, exchange, free_port, prepare_database
from tests.factories import Clock


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def paid_registration(url: str, telegram_id: int, session: str = "2027-01") -> int:
    """A PAID junior registration for a candidate the bot already knows
    (payment is another flow)."""
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                await uow.candidates.add_if_missing(
                    telegram_id, chat_id=telegram_id, first_name=f"C{telegram_id}"
                )
                candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            target = await uow.exam_sessions.get_by_code(session)
            registration = Registration(
                candidate_id=candidate.id,
                session_id=target.id,
                level_code="junior",
                state=RegistrationState.PAID,
                reference=f"ED{telegram_id}",
            )
            uow.registrations.add(registration)
            await uow.commit()
            return registration.id
    finally:
        await database.dispose()


async def run_job(harness: Harness, name: str) -> None:
    """Run one scheduler job now, as its next tick would, then let the sender look."""
    assert harness.runtime is not None
    application = harness.runtime.application
    [job] = application.job_queue.get_jobs_by_name(name)
    await job.run(application)
    harness.runtime.outbox_sender.wake()


async def reminder_rows(url: str) -> list[tuple[str, str, str | None]]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "reminder")
                .order_by(OutboxMessage.not_before)
            )
            return [
                (
                    f"{r.payload['params']['kind']}:{r.payload['params']['offset']}",
                    r.status,
                    r.last_error,
                )
                for r in rows
            ]
    finally:
        await database.dispose()


async def test_exam_reminder_carries_the_rules_and_the_staff_list_follows_acknowledgements(
    bot: Harness,
) -> None:
    ann = bot.sandbox.user(601, first_name="Ann", language_code="en")
    await exchange(bot, ann, ann.send_command("/start"))
    registration = await paid_registration(bot.database_url, 601)
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")

    bot.clock.now = utc("2027-01-08T01:05:00")  # just after the −1 d reminder
    await run_job(bot, "plan_reminders")
    reminder = await ann.wait_for_message(
        lambda m: "Exam-day rules" in m.get("text", ""), timeout=10
    )
    assert reminder["text"].startswith(
        "📝 Your Junior (初级) exam (session 2027-01) starts on Sat 9 Jan 2027, 09:00 (China time)"
    )
    assert "No entry later than 15 minutes after the start." in reminder["text"]
    assert (
        "Theory: Sat 9 Jan 2027, 09:00–10:30 (China time), Computer room A301" in reminder["text"]
    )
    assert ann.inline_buttons() == [("✅ I have read the rules", f"rem:ack:{registration}")]

    before = await exchange(bot, staff, staff.send_command("/unacknowledged", payload="2027-01"))
    assert before[-1]["text"].splitlines() == [
        "1 candidate in session 2027-01 has not confirmed the exam-day rules:",
        "• Ann (Telegram 601, Junior (初级))",
        "Page 1 of 1",
    ]
    noted = await exchange(
        bot, ann, ann.press_data(reminder["message_id"], f"rem:ack:{registration}")
    )
    assert [m["text"] for m in noted] == [
        "Noted: you have read the exam-day rules for session 2027-01."
    ]
    after = await exchange(bot, staff, staff.send_command("/unacknowledged", payload="2027-01"))
    assert (
        after[-1]["text"] == "Everyone paid in session 2027-01 has confirmed the exam-day rules."
    )


async def test_forged_acknowledgement_for_another_candidates_registration_is_refused(
    bot: Harness,
) -> None:
    owner = bot.sandbox.user(611, language_code="en")
    await exchange(bot, owner, owner.send_command("/start"))
    registration = await paid_registration(bot.database_url, 611)
    other = bot.sandbox.user(612, language_code="en")
    await exchange(bot, other, other.send_command("/start"))
    pressed = await other.press_data(other.last_message()["message_id"], f"rem:ack:{registration}")
    answer = await other.wait_for_callback_answer(pressed)
    assert answer.get("text") == "This button is no longer valid."


async def test_reminder_missed_during_downtime_is_sent_in_chinese_before_the_exam(
    bot: Harness,
) -> None:
    li = bot.sandbox.user(621, first_name="李", language_code="zh-hans")
    await exchange(bot, li, li.send_command("/start"))
    await paid_registration(bot.database_url, 621)
    bot.clock.now = utc("2027-01-07T12:00:00")
    await run_job(
        bot, "plan_reminders"
    )  # −7 d (still valid: paid just now) goes; −1 d waits for 01-08 01:00
    await li.wait_for_message(lambda m: "考试当天须知" in m.get("text", ""), timeout=10)
    await bot.stop()  # down until after the −2 h reminder
    bot.clock.now = utc("2027-01-08T23:30:00")  # −1 d and −2 h passed; the exam is at 01:00
    await bot.start()
    mark = bot.sandbox.mark()
    await run_job(bot, "plan_reminders")
    reminder = await li.wait_for_message(
        lambda m: "考试当天须知" in m.get("text", ""), timeout=10, after=mark
    )
    assert reminder["text"].startswith(
        "📝 您的初级考试（场次 2027-01）将于2027年1月9日（周六）09:00（北京时间）开始。"
    )
    await _until_counts(bot.database_url, {"sent": 3, "cancelled": 2})
    rows = await reminder_rows(bot.database_url)
    assert [row for row in rows if row[0].startswith("exam:")] == [
        ("exam:-7d", "sent", None),
        ("exam:-1d", "cancelled", "expired"),
        ("exam:-2h", "sent", None),
    ]
    assert [row for row in rows if row[0].startswith("exam_venue:")] == [
        ("exam_venue:-1d", "cancelled", "expired"),  # the map pin goes with its reminder
        ("exam_venue:-2h", "sent", None),
    ]


@pytest.fixture
def postgres() -> None:
    require_postgres()


@pytest.fixture
async def two_instances(
    postgres: None, sandbox: Sandbox
) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two examdesk instances on one PostgreSQL database and one bot, sharing a clock."""
    url = await create_postgres_database()
    await prepare_database(url)
    token = sandbox.add_bot()
    clock = Clock()
    first = Harness(sandbox=sandbox, database_url=url, token=token, clock=clock, port=free_port())
    second = Harness(sandbox=sandbox, database_url=url, token=token, clock=clock, port=free_port())
    try:
        yield first, second
    finally:
        await first.stop()
        await second.stop()
        await drop_postgres_database(url)


@pytest.mark.postgres
async def test_two_instances_send_each_reminder_once_and_the_survivor_takes_over(
    two_instances: tuple[Harness, Harness],
    sandbox: Sandbox,
) -> None:
    first, second = two_instances
    people = list(range(700, 720))
    for telegram_id in people:
        sandbox.user(telegram_id, language_code="en")
        await paid_registration(first.database_url, telegram_id)
    await first.start()
    await second.start()
    first.clock.now = utc("2027-01-07T22:00:00")  # −7 d is due; −1 d planned for 01-08 01:00
    await asyncio.gather(run_job(first, "plan_reminders"), run_job(second, "plan_reminders"))
    assert [h.runtime.services.leader.held for h in (first, second)].count(True) == 1
    await _until_counts(first.database_url, {"sent": 20, "pending": 40})  # −1 d and its pin

    await first.stop()  # whichever led, one instance is left to plan and send
    first.clock.now = utc("2027-01-08T23:05:00")  # −1 d missed (expired), −2 h due
    await run_job(second, "plan_reminders")
    assert second.runtime.services.leader.held
    await _until_counts(first.database_url, {"sent": 60, "cancelled": 40})  # −2 h and its pin

    per_chat = Counter(
        call.params["chat_id"]
        for call in sandbox.calls_of("sendMessage")
        if call.params.get("chat_id") in people
        and call.error is None
        and call.params["text"].startswith("📝")
    )
    assert per_chat == dict.fromkeys(people, 2)  # 📝 −7 d and 📝 −2 h: each once
    pins = Counter(
        call.params["chat_id"] for call in sandbox.calls_of("sendVenue") if call.error is None
    )
    assert pins == dict.fromkeys(people, 1)  # the −2 h reminder's map pin, once


async def _until_counts(url: str, expected: dict[str, int], timeout: float = 20.0) -> None:
    """Wait until the reminder rows' statuses are `expected` (the senders run on their own)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        counts = dict(Counter(status for _, status, _ in await reminder_rows(url)))
        if counts == expected:
            return
        if loop.time() > deadline:
            raise AssertionError(f"reminder rows {counts}, expected {expected}")
        await asyncio.sleep(0.2)
