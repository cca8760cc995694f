"""Re-marking (复核) end to end, in English and Chinese: results released through the
service, the candidate presses the re-mark button, types a reason (a sticker is refused),
confirms; the staff card arrives; staff type a new score (a bad one is refused) or keep the
score; the candidate is told and `/results` shows the new score; forged candidate and staff
buttons change nothing.

Session 2027-01 of the shipped catalogue: exam 2027-01-09, results 2027-02-06 09:00 China
time, re-marking until 2027-02-13 18:00 there, certificates about E+70 = 2027-03-20.
"""

from __future__ import annotations

from sqlalchemy import select

from storage.db import Database
from storage.models import Candidate, ComponentResult, FlowState, Registration, RemarkRequest
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, STAFF_ID_2, Harness, exchange
from tests.e2e.test_reminders import paid_registration, run_job
from tests.e2e.test_results import RELEASE_AT, _with_id


async def _release(bot: Harness, rows: dict[int, tuple[str, str]]) -> None:
    """Import (theory, practical) per Telegram id through the service, then release."""
    lines = []
    for telegram_id, (theory, practical) in rows.items():
        await paid_registration(bot.database_url, telegram_id)
        lines.append(f"{await _with_id(bot.database_url, telegram_id)},002X,{theory},{practical}")
    assert bot.runtime is not None
    results = bot.runtime.services.results
    data = ("reference,id_last4,theory,practical\n" + "\n".join(lines) + "\n").encode()
    preview = await results.preview("2027-01", "r.csv", data, STAFF_ID)
    await results.confirm(preview.import_id, STAFF_ID)
    bot.clock.now = RELEASE_AT
    await run_job(bot, "release_results")


async def _db(bot: Harness, query):  # type: ignore[no-untyped-def]
    database = Database(bot.database_url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            return list((await uow.session.execute(query)).all())
    finally:
        await database.dispose()


async def _result_id(bot: Harness, telegram_id: int, component: str) -> int:
    [(result_id,)] = await _db(
        bot,
        select(ComponentResult.id)
        .join(Registration, Registration.id == ComponentResult.registration_id)
        .join(Candidate, Candidate.id == Registration.candidate_id)
        .where(Candidate.telegram_id == telegram_id, ComponentResult.component == component),
    )
    return int(result_id)


async def _requests(bot: Harness) -> list[tuple[str, str]]:
    rows = await _db(bot, select(RemarkRequest.component, RemarkRequest.status))
    return [(r[0], r[1]) for r in rows]


async def _settle(bot: Harness) -> None:
    await bot.sandbox.wait_idle(timeout=15, quiet=0.1)
    assert bot.runtime is not None
    assert await bot.runtime.dispatcher.drain(15)
    await bot.sandbox.wait_idle(timeout=15, quiet=0.05)


def _texts(messages: list[dict]) -> list[str]:
    return [m.get("text", "") for m in messages]


async def test_remark_new_score_in_english_and_unchanged_in_chinese(any_bot: Harness) -> None:
    bot = any_bot
    ann = bot.sandbox.user(621, first_name="Ann", language_code="en")
    li = bot.sandbox.user(622, first_name="Li", language_code="zh-hans")
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    staff_2 = bot.sandbox.user(STAFF_ID_2, first_name="Other", language_code="en")
    mallory = bot.sandbox.user(777, first_name="Mallory", language_code="en")
    for user in (ann, li, staff, staff_2, mallory):
        await exchange(bot, user, user.send_command("/start"))
    await _release(bot, {621: ("55", "70"), 622: ("75", "80")})
    ann_theory = await _result_id(bot, 621, "theory")

    # The results message carries the entry point.
    released = await ann.wait_for_message(lambda m: "📊" in m.get("text", ""), timeout=10)
    assert ann.inline_buttons(released) == [("🔁 Ask for a re-mark (复核)", "rmk:list")]
    listed = await exchange(bot, ann, ann.press("rmk:list", released["message_id"]))
    assert _texts(listed) == [
        "You can ask for a re-mark (复核) of:\n"
        "• Theory, session 2027-01 (55.0), until Sat 13 Feb 2027, 18:00 (China time)\n"
        "• Practical skills, session 2027-01 (70.0), until Sat 13 Feb 2027, 18:00 (China time)"
    ]
    assert ann.inline_buttons()[0] == ("🔁 Re-mark Theory (2027-01)", f"rmk:ask:{ann_theory}")

    # Someone else's result id, or an oversized one: a quiet refusal, nothing changes.
    for forged in (f"rmk:ask:{ann_theory}", "rmk:ask:99999999999"):
        press = await li.press_data(li.messages()[-1]["message_id"], forged)
        assert (await li.wait_for_callback_answer(press)).get("text") == "此按钮已失效。"
    await _settle(bot)
    assert await _db(bot, select(FlowState.flow).where(FlowState.flow == "remark")) == []

    asked = await exchange(bot, ann, ann.press("🔁 Re-mark Theory (2027-01)"))
    assert _texts(asked) == [
        "🔁 Re-mark (复核) of Theory, session 2027-01 (your score: 55.0).\n"
        "Why should it be re-checked? Type the reason in one message. Send /cancel to stop."
    ]
    sticker = await exchange(bot, ann, ann.send_sticker())
    assert _texts(sticker) == [
        "Please type the reason as text: what do you think was marked wrong? Send /cancel to stop."
    ]
    confirm = await exchange(bot, ann, ann.send_text("Question 7 was not counted"))
    assert _texts(confirm) == [
        "Please check your re-mark (复核) request:\nJunior (初级), session 2027-01\n"
        "Theory: 55.0\nReason: Question 7 was not counted\nRe-marking is free.\n"
        "The score may go up, go down or stay the same. You can ask once per component."
    ]
    sent = await exchange(bot, ann, ann.press("✅ Send the request"))
    assert _texts(sent)[-1] == (
        "✅ Your re-mark request for Theory (session 2027-01) was sent to the exam centre. "
        "I will tell you the outcome here."
    )
    again = await exchange(bot, ann, ann.press_data(released["message_id"], "rmk:list"))
    assert (
        "• Theory, session 2027-01: asked on Sat 6 Feb 2027, with the markers" in _texts(again)[0]
    )

    # The staff card (the staff chat speaks the site's language, Chinese).
    card = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "Question 7" in m.get("text", ""), timeout=15
    )
    assert "Ann" in card["text"] and "55.0" in card["text"]
    [[unchanged, new_score]] = card["reply_markup"]["inline_keyboard"]
    request_id = int(new_score["callback_data"].rsplit(":", 1)[1])
    assert (unchanged["callback_data"], new_score["callback_data"]) == (
        f"rmk:same:{request_id}",
        f"rmk:new:{request_id}",
    )

    # A forged staff button from a candidate: the catch-all answers, nothing changes.
    forged = await mallory.press_data(
        card["message_id"], f"rmk:same:{request_id}", chat=STAFF_CHAT_ID
    )
    assert (await mallory.wait_for_callback_answer(forged)).get(
        "text"
    ) == "This button is no longer valid. Send /start for the menu."
    assert await _requests(bot) == [("theory", "open")]

    await staff.press_data(card["message_id"], f"rmk:new:{request_id}", chat=STAFF_CHAT_ID)
    await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "Staff" in m.get("text", "") and "100" in m["text"], timeout=10
    )
    await staff.send_text("sixty-two", chat=STAFF_CHAT_ID)
    refused = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "72.5" in m.get("text", ""), timeout=10
    )
    assert "100" in refused["text"]
    await staff.send_text("62", chat=STAFF_CHAT_ID)
    done = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "55.0 → 62.0" in m.get("text", ""), timeout=10
    )
    assert f"#{request_id}" in done["text"]
    await _settle(bot)
    assert "reply_markup" not in bot.sandbox.message(STAFF_CHAT_ID, card["message_id"])
    assert await _requests(bot) == [("theory", "changed")]

    told = await ann.wait_for_message(lambda m: "your score changed" in m.get("text", ""), 15)
    assert told["text"].splitlines() == [
        "🔁 Re-mark (复核) of Theory, session 2027-01: your score changed from 55.0 to 62.0 "
        "(passed).",
        "✅ You have now passed Junior (初级). Certificates come about Sat 20 Mar 2027; "
        "see /results.",
    ]
    results = await exchange(bot, ann, ann.send_command("/results"))
    lines = _texts(results)[-1].splitlines()
    assert lines[0] == "✅ Junior (初级): passed on Sat 6 Feb 2027."
    assert "• Sat 9 Jan 2027, Theory: 62.0 (passed)" in lines
    assert ann.inline_buttons(results[-1]) == [
        (
            "🔁 Re-mark Practical skills (2027-01)",
            f"rmk:ask:{await _result_id(bot, 621, 'practical')}",
        )
    ]

    # Li, in Chinese, from the /results button; the second staff member keeps the score.
    li_practical = await _result_id(bot, 622, "practical")
    await exchange(bot, li, li.send_command("/results"))
    await exchange(bot, li, li.press(f"rmk:ask:{li_practical}"))
    await exchange(bot, li, li.send_text("实操第三题漏评"))
    li_sent = await exchange(bot, li, li.press(f"rmk:send:{li_practical}"))
    assert _texts(li_sent)[-1].startswith("✅")
    li_card = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "实操第三题漏评" in m.get("text", ""), timeout=15
    )
    li_request = int(li_card["reply_markup"]["inline_keyboard"][0][0]["callback_data"][9:])
    await staff_2.press_data(li_card["message_id"], f"rmk:same:{li_request}", chat=STAFF_CHAT_ID)
    await _settle(bot)
    late = await staff.press_data(
        li_card["message_id"], f"rmk:new:{li_request}", chat=STAFF_CHAT_ID
    )
    assert (await staff.wait_for_callback_answer(late)).get("text", "").startswith("已")
    li_told = await li.wait_for_message(lambda m: "🔁" in m.get("text", ""), timeout=15)
    assert "80.0" in li_told["text"]
    assert sorted(await _requests(bot)) == [("practical", "unchanged"), ("theory", "changed")]


async def test_remark_after_the_window_says_when_it_closed(bot: Harness) -> None:
    ann = bot.sandbox.user(631, first_name="Ann", language_code="en")
    await exchange(bot, ann, ann.send_command("/start"))
    await _release(bot, {631: ("55", "缺考")})
    theory = await _result_id(bot, 631, "theory")
    practical = await _result_id(bot, 631, "practical")
    released = await ann.wait_for_message(lambda m: "📊" in m.get("text", ""), timeout=10)

    absent = await exchange(
        bot, ann, ann.press_data(released["message_id"], f"rmk:ask:{practical}")
    )
    assert _texts(absent) == [
        "You were absent from this component (缺考): there is no marking to re-check, "
        "so it cannot be re-marked."
    ]
    bot.clock.now = RELEASE_AT.replace(day=13, hour=10, minute=1)  # 18:01 China time
    late = await exchange(bot, ann, ann.press_data(released["message_id"], f"rmk:ask:{theory}"))
    listed = await exchange(bot, ann, ann.send_command("/remark"))

    closed = (
        "The re-marking (复核) window closed on Sat 13 Feb 2027, 18:00 (China time): "
        "a request can no longer be made."
    )
    assert (_texts(late), _texts(listed)) == ([closed], [closed])
    assert await _requests(bot) == []
