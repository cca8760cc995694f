"""Registration end to end: full journeys in Chinese and English, bad input, restart, double tap,
forged buttons, /status with cancel, personal data kept out of logs and stored updates."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import select, update

from bot.i18n import I18n
from storage.db import Database
from storage.models import Candidate, ExamSession, InboxUpdate, Registration
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, Harness, exchange
from tests.sandbox.images import png

ID_NUMBER = "11010519491231002X"  # the example of GB 11643-1999, female, born 1949-12-31
ID_NUMBER_2 = "110105199003070017"  # checksum-valid, male
EN = I18n("zh_Hans").translator("en")
TICKETS_FROM = datetime(2027, 1, 2, 1, 0, tzinfo=UTC)  # session 2027-01: E−7 at 09:00 Shanghai


class Person:
    """A sandbox user plus the harness, so each step reads as one line."""

    def __init__(self, bot: Harness, user_id: int, language: str, name: str = "Li") -> None:
        self.bot = bot
        self.user = bot.sandbox.user(user_id, first_name=name, language_code=language)

    async def say(self, text: str) -> list[str]:
        return [
            m.get("text", "")
            for m in await exchange(self.bot, self.user, self.user.send_text(text))
        ]

    async def command(self, command: str) -> list[str]:
        return [
            m.get("text", "")
            for m in await exchange(self.bot, self.user, self.user.send_command(command))
        ]

    async def press(self, data: str) -> list[str]:
        return [
            m.get("text", "") for m in await exchange(self.bot, self.user, self.user.press(data))
        ]

    async def do(self, action) -> list[str]:  # type: ignore[no-untyped-def]
        return [m.get("text", "") for m in await exchange(self.bot, self.user, action)]


async def become_eligible_for_junior(p: Person) -> None:
    await p.command("/eligibility")
    await p.press("elig:a:level:junior")
    await p.press("elig:a:education:bachelor")
    await p.say("2024-06-30")
    await p.press("elig:a:major:automation")
    await p.press("elig:a:title:none")
    verdict = await p.press("elig:a:work_start:none")
    assert "J2" in verdict[-1]


async def check_with_an_unlisted_major(p: Person) -> list[str]:
    """The junior check with a major the catalogue does not list (a manual review case)."""
    await p.command("/eligibility")
    for data in ("elig:a:level:junior", "elig:a:education:bachelor"):
        await p.press(data)
    await p.say("2023-06-30")
    await p.say("Underwater Basket Weaving")
    await p.press("elig:a:title:none")
    return await p.press("elig:a:work_start:none")


async def fill_form(p: Person, *, name: str, id_number: str, email: str) -> str:
    await p.press("reg:start:junior")
    await p.say(name)
    await p.press("reg:c:id_type:resident_id")
    assert (await p.say(id_number))[-1].startswith(("Your mobile phone number", "请提供手机号码"))
    await p.do(p.user.share_contact("8613800138000"))
    await p.say(email)
    await p.say("哈尔滨理工大学")
    await p.press("reg:c:work_unit:none")
    await p.press("reg:c:direction:equipment_application")
    await p.press("reg:c:session:2027-01")
    summary = await p.do(p.user.send_photo(png(413, 579)))
    return summary[-1]


async def _registrations(url: str) -> list[tuple[int, str, str]]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = (
                await uow.session.execute(
                    select(Candidate.telegram_id, Registration.state, Registration.level_code)
                    .join(Candidate, Candidate.id == Registration.candidate_id)
                    .order_by(Registration.id)
                )
            ).all()
            return [tuple(r) for r in rows]
    finally:
        await database.dispose()


async def _stored_payloads(url: str) -> str:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            return repr((await uow.session.scalars(select(InboxUpdate.payload))).all())
    finally:
        await database.dispose()


async def test_full_journey_in_chinese_from_start_to_submitted_registration(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    p = Person(bot, 401, "zh-hans", "张三")
    await p.command("/start")
    await become_eligible_for_junior(p)
    summary = await fill_form(p, name="张三", id_number=ID_NUMBER, email="zhang@example.com")
    assert "1101**********002X" in summary and ID_NUMBER not in summary
    assert summary.startswith("请核对您的报名信息") and "+8613800138000" in summary
    done = await p.press("reg:submit")
    assert done[0].startswith("✅ 已报名初级") and "ED" in done[0]  # then the payment offer
    assert await _registrations(bot.database_url) == [(401, "submitted", "junior")]
    assert (ID_NUMBER in caplog.text, ID_NUMBER in await _stored_payloads(bot.database_url)) == (
        False,
        False,
    )


async def test_full_journey_in_english_with_each_kind_of_bad_input(bot: Harness) -> None:
    p = Person(bot, 402, "en", "Ann")
    await become_eligible_for_junior(p)
    await p.press("reg:start:junior")
    assert (await p.do(p.user.send_sticker()))[0] == "Please type your answer as text."
    assert (await p.say("A" * 61))[0] == "That is too long. Please keep it to 50 characters."
    assert (await p.say("Ann 2000"))[
        0
    ] == "Please type your name with letters only, as on your ID document."
    await p.say("Ann Smith")
    assert (await p.say("resident id please"))[0] == "Please choose one of the buttons."
    await p.press("reg:c:id_type:resident_id")
    assert (await p.say("110105194912310021"))[0].startswith(
        "This ID number's check character does not match"
    )
    assert (await p.say("110105491231002"))[0].startswith("That is an old 15-digit number")
    assert (await p.say("110105194902300020"))[0].startswith(
        "The birth date inside this ID number is not a real date"
    )
    assert (await p.say(ID_NUMBER_2))[0].startswith("Your mobile phone number")
    assert (await p.say("12345"))[0].startswith("That does not look like a valid phone number")
    assert (await p.do(p.user.share_contact("8613900139000", own=False)))[0].startswith(
        "Please share your own phone number"
    )
    assert (await p.say("13800138000")) == ["Phone number saved.", "Your e-mail address:"]
    assert (await p.say("not-an-email"))[0].startswith("That does not look like an e-mail address")
    await p.say("ann@example.com")
    await p.say("HUST")
    await p.say("Weihai Robotics Ltd.")
    await p.press("reg:c:direction:smart_maintenance")
    await p.press("reg:c:session:2027-01")
    assert (
        await p.do(p.user.send_document(b"%PDF-1.4 not a photo", "photo.pdf", "application/pdf"))
    )[0].startswith("That file is not an image")
    assert (await p.do(p.user.send_photo(png(200, 260))))[0].startswith("The photo is too small")
    assert (await p.do(p.user.send_photo(png(800, 600))))[0].startswith(
        "This photo is landscape (wider than tall)"
    )
    summary = (await p.do(p.user.send_photo(png(413, 579))))[-1]
    assert (
        "Weihai Robotics Ltd." in summary
        and "1101**********0017" in summary
        and "Ann Smith" in summary
    )
    done = await p.press("reg:submit")
    assert done[0].startswith("✅ Registered for Junior")  # then the payment offer
    assert await _registrations(bot.database_url) == [(402, "submitted", "junior")]


async def test_restart_mid_registration_resumes_at_the_same_question(bot: Harness) -> None:
    p = Person(bot, 403, "en")
    await become_eligible_for_junior(p)
    await p.press("reg:start:junior")
    await p.say("Li Lei")
    question = (await p.press("reg:c:id_type:resident_id"))[-1]
    await bot.restart()
    after_start = await p.command("/start")
    assert after_start[-1] == question
    assert (await p.say(ID_NUMBER_2))[-1].startswith("Your mobile phone number")


async def test_edit_from_summary_returns_to_summary(bot: Harness) -> None:
    p = Person(bot, 404, "en")
    await become_eligible_for_junior(p)
    await fill_form(p, name="Wang Wu", id_number=ID_NUMBER_2, email="wang@example.com")
    assert (await p.press("reg:edit:email")) == ["Your e-mail address:"]
    summary = (await p.say("wu@example.com"))[-1]
    assert summary.startswith("Please check your registration") and "wu@example.com" in summary


async def test_same_id_number_from_a_second_account_is_refused(bot: Harness) -> None:
    first = Person(bot, 405, "en")
    await become_eligible_for_junior(first)
    await fill_form(first, name="Zhao Liu", id_number=ID_NUMBER_2, email="z@example.com")
    second = Person(bot, 406, "en")
    await become_eligible_for_junior(second)
    await second.press("reg:start:junior")
    await second.say("Zhao Liu")
    await second.press("reg:c:id_type:resident_id")
    refusal = await second.say(ID_NUMBER_2)
    assert refusal[0].startswith(
        "This ID number is already registered with another Telegram account"
    )


async def test_double_tap_on_submit_registers_once(bot: Harness) -> None:
    p = Person(bot, 407, "en")
    await become_eligible_for_junior(p)
    await fill_form(p, name="Qian Qi", id_number=ID_NUMBER_2, email="q@example.com")
    summary = p.user.last_message()
    first = await p.user.press_data(summary["message_id"], "reg:submit")
    second = await p.user.press_data(summary["message_id"], "reg:submit")
    answers = [await p.user.wait_for_callback_answer(u, timeout=10) for u in (first, second)]
    assert await bot.runtime.dispatcher.drain(10)
    assert answers[1].get("text") == "This registration was already submitted. See /status."
    assert await _registrations(bot.database_url) == [(407, "submitted", "junior")]


async def test_forged_cancel_button_for_another_candidates_registration_is_refused(
    bot: Harness,
) -> None:
    owner = Person(bot, 408, "en")
    await become_eligible_for_junior(owner)
    await fill_form(owner, name="Sun Ba", id_number=ID_NUMBER_2, email="s@example.com")
    await owner.press("reg:submit")
    attacker = Person(bot, 409, "en")
    await attacker.command("/start")
    menu = attacker.user.last_message()
    forged = await attacker.user.press_data(menu["message_id"], "reg:cancel_yes:1")
    answer = await attacker.user.wait_for_callback_answer(forged)
    assert answer.get("text") == "This button is no longer valid."
    assert await _registrations(bot.database_url) == [(408, "submitted", "junior")]


async def test_status_then_cancel_after_confirmation(bot: Harness) -> None:
    p = Person(bot, 410, "en")
    await become_eligible_for_junior(p)
    await fill_form(p, name="Zhou Jiu", id_number=ID_NUMBER_2, email="zj@example.com")
    await p.press("reg:submit")
    status = await p.command("/status")
    assert "State: registered, not paid yet" in status[0] and "Payment due by" in status[0]
    confirm = await p.press("✖️ Cancel")
    assert confirm[0].startswith("Cancel your registration")
    await p.press("Yes, cancel it")
    assert p.user.messages()[-1]["text"].endswith("is cancelled.")
    assert await _registrations(bot.database_url) == [(410, "cancelled", "junior")]


async def test_register_before_eligibility_points_to_the_check(bot: Harness) -> None:
    p = Person(bot, 411, "en")
    assert (await p.command("/register")) == ["First let us check which level you may take."]
    assert ("✅ Check my eligibility", "elig:start") in p.user.inline_buttons()


async def _set_in_database(url: str, statement) -> None:  # type: ignore[no-untyped-def]
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            await uow.session.execute(statement)
            await uow.commit()
    finally:
        await database.dispose()


async def _registration(url: str, telegram_id: int) -> tuple[int, str, str]:
    """(id, reference, session code) of the candidate's newest registration."""
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            row = (
                await uow.session.execute(
                    select(Registration.id, Registration.reference, ExamSession.code)
                    .join(Candidate, Candidate.id == Registration.candidate_id)
                    .join(ExamSession, ExamSession.id == Registration.session_id)
                    .where(Candidate.telegram_id == telegram_id)
                    .order_by(Registration.id.desc())
                )
            ).first()
            return int(row[0]), str(row[1]), str(row[2])
    finally:
        await database.dispose()


async def _registered(bot: Harness, user_id: int, name: str, state: str | None = None) -> Person:
    """An English-speaking candidate registered for junior at 2027-01 (then put in `state`)."""
    p = Person(bot, user_id, "en")
    await become_eligible_for_junior(p)
    await fill_form(p, name=name, id_number=ID_NUMBER_2, email=f"c{user_id}@example.com")
    await p.press("reg:submit")
    if state is not None:
        await _set_in_database(
            bot.database_url,
            update(Registration)
            .where(
                Registration.candidate_id
                == select(Candidate.id).where(Candidate.telegram_id == user_id).scalar_subquery()
            )
            .values(state=state),
        )
    return p


async def test_register_again_for_a_paid_level_shows_the_registration_not_the_summary(
    bot: Harness,
) -> None:
    p = await _registered(bot, 420, "Zhang San", "paid")
    registration_id, reference, _ = await _registration(bot.database_url, 420)

    await p.command("/register")
    shown = await p.press("reg:start:junior")

    # The card /status shows (its further lines, e.g. when the ticket comes, are its own).
    assert (len(shown), shown[0].split("\n")[:3]) == (
        1,
        [
            "You are already registered for this level:",
            f"Junior, session 2027-01 ({EN.date(date(2027, 1, 9))})",
            f"Reference: {reference}. State: paid.",
        ],
    )
    assert ("📝 Request a correction", f"fix:{registration_id}") in p.user.inline_buttons()
    assert all(not data.startswith("reg:edit:") for _, data in p.user.inline_buttons())


async def test_correction_request_reaches_staff_who_correct_it_and_reissue_the_ticket(
    bot: Harness,
) -> None:
    p = await _registered(bot, 421, "Zhang San", "paid")
    registration_id, reference, _ = await _registration(bot.database_url, 421)
    bot.clock.now = TICKETS_FROM
    await p.command("/ticket")  # ticket 2027-01-J-0001 is issued with the old name
    old_ticket = bot.runtime.services.tickets.signed_reference("2027-01-J-0001")
    staff = Person(bot, STAFF_ID, "en", "Staff")

    await p.command("/status")
    prompt = await p.press(f"fix:{registration_id}")
    sent = await p.say("My name is Zhang Sanfeng, not Zhang San")
    card = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "Zhang Sanfeng" in m.get("text", ""), timeout=15
    )
    intruder = await Person(bot, 429, "en").command(f"/correct {reference} name Mallory | because")
    done = await staff.say(f"/correct {reference} name Zhang Sanfeng | checked the ID card")
    notice = await p.user.wait_for_message(lambda m: m.get("text", "").startswith("✏️"), timeout=15)
    check = await staff.say(f"/checkticket {old_ticket}")
    history = await staff.say(f"/history {reference}")
    verify = f"{bot.web_url}/tickets/verify"
    async with (
        aiohttp.ClientSession() as http,
        http.get(verify, params={"ref": old_ticket}) as old,
    ):
        public = (old.status, await old.json())

    assert prompt[0].startswith("What is wrong, and what should it be?")
    assert sent == [
        f"Sent to the exam centre staff (registration {reference}). They check it against "
        "your ID document and tell you here once it is corrected."
    ]
    assert card["text"].startswith("📝 ") and reference in card["text"]
    assert intruder == [
        "Sorry, I did not understand that. Please choose from the menu, or send /help."
    ]
    assert done == [
        f"✅ {reference}: name corrected from Zhang San to Zhang Sanfeng. Re-issued tickets: "
        "2027-01-J-0001 → 2027-01-J-0002. The candidate is told."
    ]
    assert notice["text"] == (
        f"✏️ The exam centre corrected the name of your registration {reference}: now Zhang "
        "Sanfeng. Reason: checked the ID card. Your admission ticket was re-issued as "
        "2027-01-J-0002; the old one is no longer valid."
    )
    assert check[0].startswith(
        "❌ Ticket 2027-01-J-0001 was replaced by ticket 2027-01-J-0002: it no longer admits "
        "anyone.\nZhang Sanfeng"
    )
    assert "checked the ID card" in history[0] and "My name is Zhang Sanfeng" in history[0]
    assert public == (404, {"valid": False, "reason": "replaced", "replaced_by": "2027-01-J-0002"})


async def test_change_session_names_later_sessions_then_moves_only_after_confirmation(
    bot: Harness,
) -> None:
    p = await _registered(bot, 422, "Wu Yi")
    registration_id, reference, _ = await _registration(bot.database_url, 422)

    await p.command("/status")
    nothing_open = await p.press(f"reg:move:{registration_id}")
    await _set_in_database(  # registration for 2027-03 opens
        bot.database_url,
        update(ExamSession)
        .where(ExamSession.code == "2027-03")
        .values(registration_opens_at=bot.clock.now - timedelta(hours=1)),
    )
    await p.command("/status")
    choices = await p.press(f"reg:move:{registration_id}")
    question = await p.press(f"reg:move_to:{registration_id}:2027-03")
    before = await _registration(bot.database_url, 422)
    await p.press("Yes, move it")

    march, june = (
        f"{EN.date(date(2027, 3, 13))} (registration opens "
        f"{EN.datetime(datetime(2027, 1, 27, 1, tzinfo=UTC), 'Asia/Shanghai')})",
        f"{EN.date(date(2027, 6, 12))} (registration opens "
        f"{EN.datetime(datetime(2027, 4, 28, 1, tzinfo=UTC), 'Asia/Shanghai')})",
    )
    assert nothing_open == [
        "No other session of this level is open for registration right now. Later sessions: "
        f"{EN.join([march, june])}. Come back to 📅 Change session once registration opens."
    ]
    assert choices == [
        f"Move to which session? Later sessions, not open for registration yet: {june}."
    ]
    assert question == [
        f"Move your registration {reference} from the exam on {EN.date(date(2027, 1, 9))} to "
        f"the exam on {EN.datetime(datetime(2027, 3, 13, 1, tzinfo=UTC), 'Asia/Shanghai')}? "
        f"Your seat on {EN.date(date(2027, 1, 9))} goes to the next person in line."
    ]
    assert (before[2], (await _registration(bot.database_url, 422))[2]) == ("2027-01", "2027-03")
    assert p.user.messages()[-1]["text"].startswith("Done: you are now registered for session")


async def test_submit_while_changing_the_session_says_what_is_missing(bot: Harness) -> None:
    p = Person(bot, 423, "en")
    await become_eligible_for_junior(p)
    await fill_form(p, name="Zheng Shi", id_number=ID_NUMBER_2, email="zs@example.com")
    summary = p.user.last_message()
    await p.press("reg:edit:session")

    replies = await p.do(p.user.press_data(summary["message_id"], "reg:submit"))

    assert replies[0] == "Not submitted yet: Exam session still missing."
    assert replies[1].startswith("Choose the exam session for Junior:")
    assert await _registrations(bot.database_url) == []
